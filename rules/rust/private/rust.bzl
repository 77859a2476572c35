"""rust_library, rust_proc_macro, rust_binary and rust_test, with rules_rust's attributes."""

load(":providers.bzl", "CrateInfo", "DepInfo")
load(":rustc.bzl", "compile_crate")

TOOLCHAIN_TYPE = "@rules_rust//rust:toolchain_type"

def _label_string(ctx):
    repo = "@" + ctx.label.workspace_name if ctx.label.workspace_name else ""
    return "%s//%s:%s" % (repo, ctx.label.package, ctx.label.name)

def _crate_hash(owner, crate_type):
    """Distinct -C metadata and file suffix per target, so equal crate names never collide."""
    digits = "%x" % (hash(owner + "|" + crate_type) & 0xffffffff)
    return ("0" * 8 + digits)[-8:]

def _crate_root(ctx, srcs, default_name):
    """rules_rust's rule: crate_root, else the only source, else lib.rs/main.rs or <name>.rs."""
    if ctx.file.crate_root != None:
        if ctx.file.crate_root not in srcs:
            fail("crate_root '%s' is not in srcs" % ctx.file.crate_root.short_path)
        return ctx.file.crate_root
    if len(srcs) == 1:
        return srcs[0]
    wanted = [default_name, ctx.label.name + ".rs"]
    candidates = [f for f in srcs if f.basename in wanted]
    if not candidates:
        fail("no crate root found among srcs: add %s or set crate_root" % " or ".join(wanted))
    return candidates[0]

def _collect_deps(ctx, extra_crates = [], extra_proc_macros = []):
    """(extern name, CrateInfo, DepInfo) of deps and proc_macro_deps, checked for their kind."""
    crates, proc_macros = list(extra_crates), list(extra_proc_macros)
    for dep in ctx.attr.deps:
        if CrateInfo not in dep:
            fail("deps: '%s' is not a Rust crate (it provides no CrateInfo)" % dep["label"])
        info = dep[CrateInfo]
        if info.type == "proc-macro":
            fail("deps: '%s' is a proc-macro; list it in proc_macro_deps instead" % dep["label"])
        if info.type == "bin":
            fail("deps: '%s' is a binary, not a library" % dep["label"])
        crates.append((ctx.attr.aliases.get(dep["label"], info.name), info, dep[DepInfo]))
    for dep in ctx.attr.proc_macro_deps:
        if CrateInfo not in dep or dep[CrateInfo].type != "proc-macro":
            fail("proc_macro_deps: '%s' is not a proc-macro; list it in deps instead" % dep["label"])
        info = dep[CrateInfo]
        proc_macros.append((ctx.attr.aliases.get(dep["label"], info.name), info, dep[DepInfo]))
    return struct(crates = crates, proc_macros = proc_macros)

def _crate(ctx, crate_type, srcs, root, **overrides):
    owner = _label_string(ctx)
    fields = dict(
        name = ctx.attr.crate_name or ctx.label.name.replace("-", "_"),
        type = crate_type,
        root = root,
        srcs = srcs,
        edition = ctx.attr.edition or ctx.toolchains[TOOLCHAIN_TYPE].default_edition,
        features = ctx.attr.crate_features,
        rustc_flags = ctx.attr.rustc_flags,
        rustc_env = ctx.attr.rustc_env,
        compile_data = ctx.files.compile_data,
        is_test = False,
        hash = _crate_hash(owner, crate_type),
        owner = owner,
        output_name = ctx.label.name,
        disable_pipelining = getattr(ctx.attr, "disable_pipelining", False),
        process_wrapper = ctx.file._process_wrapper,
    )
    fields.update(overrides)
    return struct(**fields)

def _runfiles(ctx, files):
    return ctx.runfiles(files = files + ctx.files.data)

def _library_impl(ctx, crate_type):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    srcs = ctx.files.srcs
    crate = _crate(ctx, crate_type, srcs, _crate_root(ctx, srcs, "lib.rs"))
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, _collect_deps(ctx))
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
    crate = _crate(ctx, "bin", srcs, _crate_root(ctx, srcs, "main.rs"), output_name = ctx.attr.binary_name or ctx.label.name)
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, _collect_deps(ctx))
    return [_executable_info(ctx, crate_info), crate_info, dep_info]

def _rust_test_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    if ctx.attr.crate == None:
        srcs = ctx.files.srcs
        crate = _crate(ctx, "bin", srcs, _crate_root(ctx, srcs, "main.rs"), is_test = ctx.attr.use_libtest_harness)
        deps = _collect_deps(ctx)
    else:
        # Unit tests: the library's sources compiled with --test, under the library's crate name.
        library = ctx.attr.crate[CrateInfo]
        srcs = library.srcs.to_list() + ctx.files.srcs
        crate = _crate(
            ctx, "bin", srcs, library.root,
            name = library.name,
            edition = ctx.attr.edition or library.edition,
            features = library.features + ctx.attr.crate_features,
            rustc_env = dict(library.rustc_env, **ctx.attr.rustc_env),
            rustc_flags = library.rustc_flags + ctx.attr.rustc_flags,
            compile_data = library.compile_data + ctx.files.compile_data,
            is_test = ctx.attr.use_libtest_harness,
        )
        deps = _collect_deps(ctx, library.deps.crates, library.deps.proc_macros)
    crate_info, dep_info = compile_crate(ctx, toolchain, crate, deps)
    return [_executable_info(ctx, crate_info), crate_info, dep_info]

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
    "_pipelined_compilation": attr.label(default = "//settings:pipelined_compilation"),
    "_no_codegen_pipelining": attr.label(
        default = "//settings:incompatible_use_unstable_no_codegen_for_pipelining",
    ),
    "_process_wrapper": attr.label(default = "//util/process_wrapper:process_wrapper.py", allow_single_file = True),
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

rust_library = rule(implementation = _rust_library_impl, attrs = _LIBRARY_ATTRS, toolchains = [TOOLCHAIN_TYPE])
rust_proc_macro = rule(implementation = _rust_proc_macro_impl, attrs = _LIBRARY_ATTRS, toolchains = [TOOLCHAIN_TYPE])
rust_binary = rule(
    implementation = _rust_binary_impl,
    attrs = _BINARY_ATTRS,
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
rust_test = rule(implementation = _rust_test_impl, attrs = _TEST_ATTRS, test = True, toolchains = [TOOLCHAIN_TYPE])
