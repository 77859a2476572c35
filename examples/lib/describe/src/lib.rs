//! The `Describe` trait. Usually implemented with `#[derive(Describe)]`
//! from the `derive_describe` proc-macro crate.

/// A value that can describe itself in one line.
pub trait Describe {
    /// Name of the implementing type.
    fn type_label(&self) -> &'static str;

    /// One-line description of the value, e.g. `Point { x: 1, y: 2 }`.
    fn describe(&self) -> String;
}

/// Renders a value as `<type>: <description>`.
pub fn render(item: &dyn Describe) -> String {
    format!("{}: {}", item.type_label(), item.describe())
}
