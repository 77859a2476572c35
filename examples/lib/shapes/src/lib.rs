//! Simple shapes that derive `Describe`.

mod point;

pub use point::Point;

use derive_describe::Describe;

/// An axis-aligned rectangle (named fields, one of them a nested struct).
#[derive(Debug, Clone, PartialEq, Describe)]
pub struct Rect {
    pub origin: Point,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// Area of the rectangle.
    pub fn area(&self) -> u32 {
        self.width * self.height
    }
}

/// A tuple struct.
#[derive(Debug, Clone, PartialEq, Describe)]
pub struct Label(pub String, pub u8);

/// A unit struct.
#[derive(Debug, Clone, Copy, PartialEq, Describe)]
pub struct Origin;

/// A fixed set of sample shapes, in a deterministic order.
pub fn samples() -> (Point, Rect, Label, Origin) {
    (
        Point { x: 1, y: 2 },
        Rect {
            origin: Point { x: 0, y: 0 },
            width: 3,
            height: 4,
        },
        Label("hello".to_string(), 7),
        Origin,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use describe::Describe as _;

    #[test]
    fn describe_named_fields() {
        let (_, rect, _, _) = samples();
        assert_eq!(
            rect.describe(),
            "Rect { origin: Point { x: 0, y: 0 }, width: 3, height: 4 }"
        );
        assert_eq!(rect.type_label(), "Rect");
        assert_eq!(rect.area(), 12);
    }

    #[test]
    fn describe_tuple_and_unit() {
        let (_, _, label, origin) = samples();
        assert_eq!(label.describe(), "Label(\"hello\", 7)");
        assert_eq!(origin.describe(), "Origin");
    }

    #[test]
    fn render_uses_trait_object() {
        let (point, _, _, _) = samples();
        assert_eq!(describe::render(&point), "Point: Point { x: 1, y: 2 }");
    }
}
