"""Rust toolchains: the rust_toolchain rule (Starlark) and detection of the local rustc (Python)."""
