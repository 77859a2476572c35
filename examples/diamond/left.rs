//! Left side of the diamond.

/// Label of the left node.
pub fn label() -> String {
    base::tag("left")
}

/// Weight of the left node: twice the base.
pub fn weight() -> u32 {
    base::BASE_WEIGHT * 2
}
