//! A 2D point, in its own module to show the derive working anywhere.

use derive_describe::Describe;

/// A point with attributes and visibility on its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Describe)]
pub struct Point {
    /// Horizontal coordinate.
    pub x: i32,
    #[doc = "Vertical coordinate."]
    pub y: i32,
}

impl Point {
    /// Manhattan distance from the origin.
    pub fn manhattan(&self) -> u32 {
        self.x.unsigned_abs() + self.y.unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use describe::Describe as _;

    #[test]
    fn describe_point() {
        let p = Point { x: -3, y: 4 };
        assert_eq!(p.describe(), "Point { x: -3, y: 4 }");
        assert_eq!(p.manhattan(), 7);
    }
}
