//! Top of the diamond: joins `left` and `right`, both built on `base`.

/// Sum of both sides.
pub fn total() -> u32 {
    left::weight() + right::weight()
}

/// One-line summary of the diamond.
pub fn summary() -> String {
    format!("top({}, {}) = {}", left::label(), right::label(), total())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_five() {
        assert_eq!(total(), 5);
    }

    #[test]
    fn summary_mentions_both_sides() {
        assert_eq!(summary(), "top(base/left, base/right) = 5");
    }
}
