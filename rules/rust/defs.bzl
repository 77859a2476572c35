"""Public entry point, as in rules_rust: load("@rules_rust//rust:defs.bzl", "rust_library", ...)."""

load(
    "//rust/private:rust.bzl",
    _rust_binary = "rust_binary",
    _rust_library = "rust_library",
    _rust_proc_macro = "rust_proc_macro",
    _rust_test = "rust_test",
)

rust_library = _rust_library
rust_proc_macro = _rust_proc_macro
rust_binary = _rust_binary
rust_test = _rust_test
