//! Middle of the library chain. Depends on `chain_alpha` (//lib/chain_a).

mod style;

pub use style::{decorate, style};

/// Re-export of the banner, so that chain_c only needs to depend on chain_b.
pub fn banner_lines() -> Vec<&'static str> {
    chain_alpha::banner_lines()
}

/// The layers of the chain up to and including this one.
pub fn layers() -> Vec<&'static str> {
    vec![chain_alpha::layer(), "chain_b"]
}

/// One decorated line describing fib(n).
pub fn fib_line(n: u32) -> String {
    decorate(&format!("fib({}) = {}", n, chain_alpha::fib(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_in_order() {
        assert_eq!(layers(), vec!["chain_a", "chain_b"]);
    }

    #[test]
    fn fib_line_contains_value() {
        let line = fib_line(6);
        assert!(line.contains("fib(6) = 8"), "got {:?}", line);
    }

    #[test]
    fn banner_passes_through() {
        assert_eq!(banner_lines().len(), 3);
    }
}
