//! Right side of the diamond.

/// Label of the right node.
pub fn label() -> String {
    base::tag("right")
}

/// Weight of the right node: three times the base.
pub fn weight() -> u32 {
    base::BASE_WEIGHT * 3
}
