//! Bottom of the diamond, shared by `left` and `right`.

/// Weight of the base node.
pub const BASE_WEIGHT: u32 = 1;

/// Tags a node name with the base prefix.
pub fn tag(name: &str) -> String {
    format!("base/{}", name)
}
