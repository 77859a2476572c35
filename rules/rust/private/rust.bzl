"""rust_library, rust_proc_macro, rust_binary and rust_test, with rules_rust's attributes."""

load(":crate.bzl", "COMPILE_ATTRS", "TOOLCHAIN_TYPE", "collect_deps", "crate_from_attrs", "crate_root")
load(":providers.bzl", "CrateInfo")
load(":rustc.bzl", "compile_crate")

def _runfiles(ctx, files):
    return ctx.runfiles(files = files + ctx.files.data)

def _library_impl(ctx, crate_type):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    srcs = ctx.files.srcs
    crate = crate_from_attrs(ctx, crate_type, srcs, crate_root(ctx, srcs, "lib.rs"))
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, collect_deps(ctx))
    return [
        DefaultInfo(files = depset([crate_info.output]), runfiles = _runfiles(ctx, [])),
        crate_info,
        dep_info,
    ]

def _rust_library_impl(ctx):
    return _library_impl(ctx, "rlib")

def _rust_proc_macro_impl(ctx):
    return _library_impl(ctx, "proc-macro")

def _executable_info(ctx, crate_info):
    return DefaultInfo(
        files = depset([crate_info.output]),
        executable = crate_info.output,
        runfiles = _runfiles(ctx, [crate_info.output]),
    )

def _rust_binary_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    srcs = ctx.files.srcs
    crate = crate_from_attrs(
        ctx, "bin", srcs, crate_root(ctx, srcs, "main.rs"), output_name = ctx.attr.binary_name or ctx.label.name,
    )
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, collect_deps(ctx))
    return [_executable_info(ctx, crate_info), crate_info, dep_info]

def _rust_test_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    if ctx.attr.crate == None:
        srcs = ctx.files.srcs
        crate = crate_from_attrs(
            ctx, "bin", srcs, crate_root(ctx, srcs, "main.rs"), is_test = ctx.attr.use_libtest_harness,
        )
        deps = collect_deps(ctx)
    else:
        # Unit tests: the library's sources compiled with --test, under the library's crate name.
        library = ctx.attr.crate[CrateInfo]
        srcs = library.srcs.to_list() + ctx.files.srcs
        crate = crate_from_attrs(
            ctx, "bin", srcs, library.root,
            name = library.name,
            version = library.version,
            edition = ctx.attr.edition or library.edition,
            features = library.features + ctx.attr.crate_features,
            rustc_env = dict(library.rustc_env, **ctx.attr.rustc_env),
            rustc_flags = library.rustc_flags + ctx.attr.rustc_flags,
            compile_data = library.compile_data + ctx.files.compile_data,
            is_test = ctx.attr.use_libtest_harness,
        )
        deps = collect_deps(ctx, library.deps.crates, library.deps.proc_macros, library.deps.build_info)
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, deps)
    return [_executable_info(ctx, crate_info), crate_info, dep_info]

_COMMON_ATTRS = dict(
    COMPILE_ATTRS,
    rustc_env_files = attr.label_list(allow_files = True),
    stamp = attr.int(default = -1, values = [-1, 0, 1]),
    lint_config = attr.label(),
)

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

rust_library = rule(implementation = _rust_library_impl, attrs = _LIBRARY_ATTRS, toolchains = [TOOLCHAIN_TYPE])
rust_proc_macro = rule(implementation = _rust_proc_macro_impl, attrs = _LIBRARY_ATTRS, toolchains = [TOOLCHAIN_TYPE])
rust_binary = rule(
    implementation = _rust_binary_impl,
    attrs = _BINARY_ATTRS,
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
rust_test = rule(implementation = _rust_test_impl, attrs = _TEST_ATTRS, test = True, toolchains = [TOOLCHAIN_TYPE])
