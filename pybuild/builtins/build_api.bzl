# Everything a BUILD file gets without load(): Bazel's native functions and rules.

load(":native_rules.bzl", _alias = "alias", _filegroup = "filegroup")

filegroup = _filegroup
alias = _alias
