"""The rust_* rules and their attributes, with rules_rust's attribute names."""

def _rust_impl(ctx):
    # Declaration only for now: the compile actions come with the action-graph layer.
    return []

_COMMON_ATTRS = {
    "srcs": attr.label_list(allow_files = [".rs"], doc = "Rust sources of the crate."),
    "crate_root": attr.label(allow_single_file = [".rs"], doc = "The root source; defaults as in rules_rust."),
    "crate_name": attr.string(doc = "Crate name; defaults to the target name with '-' replaced by '_'."),
    "deps": attr.label_list(doc = "Crates this crate links against."),
    "proc_macro_deps": attr.label_list(cfg = "exec", doc = "Procedural macros this crate uses."),
    "edition": attr.string(doc = "Rust edition; defaults to the toolchain's."),
    "crate_features": attr.string_list(doc = "Passed as --cfg feature=\"x\"."),
    "rustc_flags": attr.string_list(doc = "Extra rustc flags."),
    "rustc_env": attr.string_dict(doc = "Environment for rustc (read with env!)."),
    "rustc_env_files": attr.label_list(allow_files = True),
    "compile_data": attr.label_list(allow_files = True, doc = "Files rustc reads (include_str! and friends)."),
    "data": attr.label_list(allow_files = True, doc = "Files needed at run time."),
    "aliases": attr.label_keyed_string_dict(doc = "Rename dependencies: {label: crate name}."),
    "version": attr.string(default = "0.0.0"),
    "stamp": attr.int(default = -1, values = [-1, 0, 1]),
    "lint_config": attr.label(),
}

_LIBRARY_ATTRS = dict(_COMMON_ATTRS, disable_pipelining = attr.bool(default = False))

_BINARY_ATTRS = dict(
    _COMMON_ATTRS,
    binary_name = attr.string(),
    crate_type = attr.string(default = "bin"),
    out_binary = attr.bool(default = False),
    linker_script = attr.label(allow_single_file = True),
)

_TEST_ATTRS = dict(
    _COMMON_ATTRS,
    crate = attr.label(doc = "Library whose sources are compiled as a test (unit tests)."),
    use_libtest_harness = attr.bool(default = True),
)

rust_library = rule(implementation = _rust_impl, attrs = _LIBRARY_ATTRS)
rust_proc_macro = rule(implementation = _rust_impl, attrs = _LIBRARY_ATTRS)
rust_binary = rule(implementation = _rust_impl, attrs = _BINARY_ATTRS, executable = True)
rust_test = rule(implementation = _rust_impl, attrs = _TEST_ATTRS, test = True)
