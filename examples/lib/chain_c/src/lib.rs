//! Top of the library chain (target `chain-c`, crate `chain_c`).
//! Only depends on `chain_b`; everything from chain_a arrives through it.

/// Set through `rustc_env` in the BUILD file.
pub const GREETING: &str = env!("GREETING");

/// A greeting for `name`.
pub fn greet(name: &str) -> String {
    format!("{}, {}!", GREETING, name)
}

/// The whole chain, bottom to top.
pub fn chain() -> String {
    let mut layers = chain_b::layers();
    layers.push("chain_c");
    layers.join(" -> ")
}

/// Active output style of chain_b.
pub fn style() -> &'static str {
    chain_b::style()
}

/// The banner embedded by chain_a.
pub fn banner() -> Vec<&'static str> {
    chain_b::banner_lines()
}

/// Decorated fib lines for 1..=count.
pub fn fib_lines(count: u32) -> Vec<String> {
    (1..=count).map(chain_b::fib_line).collect()
}
