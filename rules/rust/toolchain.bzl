"""rules_rust's toolchain entry point; the rule itself lives in pybuild's toolchains/."""

load("@pybuild_toolchains//:rust_toolchain.bzl", _rust_toolchain = "rust_toolchain")

rust_toolchain = _rust_toolchain
