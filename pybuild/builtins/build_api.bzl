# Everything a BUILD file gets without load(): Bazel's native functions and rules.

load(":native_rules.bzl", _alias = "alias", _filegroup = "filegroup", _toolchain = "toolchain", _toolchain_type = "toolchain_type")

filegroup = _filegroup
alias = _alias
toolchain = _toolchain
toolchain_type = _toolchain_type
