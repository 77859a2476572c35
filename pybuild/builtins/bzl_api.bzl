# Everything a user .bzl file gets without load(): the Bazel rule API and `native`.

load(
    ":bzl_prelude.bzl",
    _DefaultInfo = "DefaultInfo",
    _attr = "attr",
    _config = "config",
    _depset = "depset",
    _platform_common = "platform_common",
    _provider = "provider",
    _rule = "rule",
)
load(":native_rules.bzl", _alias = "alias", _filegroup = "filegroup", _toolchain = "toolchain", _toolchain_type = "toolchain_type")

rule = _rule
attr = _attr
provider = _provider
depset = _depset
DefaultInfo = _DefaultInfo
platform_common = _platform_common
config = _config

native = struct(
    glob = glob,
    package_name = package_name,
    repository_name = repository_name,
    exports_files = exports_files,
    existing_rules = existing_rules,
    filegroup = _filegroup,
    alias = _alias,
    toolchain = _toolchain,
    toolchain_type = _toolchain_type,
)
