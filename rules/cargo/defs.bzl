"""rules_rust's Cargo entry point: load("@rules_rust//cargo:defs.bzl", "cargo_build_script")."""

load("//cargo/private:cargo_build_script.bzl", _cargo_build_script = "cargo_build_script")

cargo_build_script = _cargo_build_script
