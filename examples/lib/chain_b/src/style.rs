//! Output styling controlled by the "fancy" crate feature.

/// Decorates a line of output; the "fancy" feature adds stars around it.
#[cfg(feature = "fancy")]
pub fn decorate(line: &str) -> String {
    format!("*** {} ***", line)
}

/// Decorates a line of output; without the "fancy" feature it is unchanged.
#[cfg(not(feature = "fancy"))]
pub fn decorate(line: &str) -> String {
    line.to_string()
}

/// Name of the active style.
pub fn style() -> &'static str {
    if cfg!(feature = "fancy") {
        "fancy"
    } else {
        "plain"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written so that it holds with or without the feature enabled.
    #[test]
    fn decorate_matches_style() {
        let got = decorate("x");
        match style() {
            "fancy" => assert_eq!(got, "*** x ***"),
            _ => assert_eq!(got, "x"),
        }
    }
}
