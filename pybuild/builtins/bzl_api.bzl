# Everything a user .bzl file gets without load(): the Bazel rule API and `native`.

load(":bzl_prelude.bzl", _DefaultInfo = "DefaultInfo", _attr = "attr", _depset = "depset", _provider = "provider", _rule = "rule")
load(":native_rules.bzl", _alias = "alias", _filegroup = "filegroup")

rule = _rule
attr = _attr
provider = _provider
depset = _depset
DefaultInfo = _DefaultInfo

native = struct(
    glob = glob,
    package_name = package_name,
    repository_name = repository_name,
    exports_files = exports_files,
    existing_rules = existing_rules,
    filegroup = _filegroup,
    alias = _alias,
)
