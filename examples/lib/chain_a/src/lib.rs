//! Bottom of the library chain (built as crate `chain_alpha`).

mod math;

pub use math::{fib, triangle};

/// Banner embedded at compile time. The file is listed in `compile_data`.
pub const BANNER: &str = include_str!("../data/banner.txt");

/// The banner split into lines.
pub fn banner_lines() -> Vec<&'static str> {
    BANNER.lines().collect()
}

/// Name of this layer of the chain.
pub fn layer() -> &'static str {
    "chain_a"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_is_embedded() {
        assert_eq!(banner_lines().len(), 3);
        assert!(BANNER.contains("pybuild example"));
    }

    #[test]
    fn layer_name() {
        assert_eq!(layer(), "chain_a");
    }

    #[test]
    fn math_is_reexported() {
        assert_eq!(fib(10), 55);
        assert_eq!(triangle(4), 10);
    }
}
