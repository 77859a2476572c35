"""What every Rust rule (and cargo_build_script) shares: the crate record built from attributes,
the crate root rule and the checked dependency lists."""

load(":providers.bzl", "BuildInfo", "CrateInfo", "DepInfo")

TOOLCHAIN_TYPE = "@rules_rust//rust:toolchain_type"

def label_string(ctx):
    repo = "@" + ctx.label.workspace_name if ctx.label.workspace_name else ""
    return "%s//%s:%s" % (repo, ctx.label.package, ctx.label.name)

def crate_hash(owner, crate_type):
    """Distinct -C metadata and file suffix per target, so equal crate names never collide."""
    digits = "%x" % (hash(owner + "|" + crate_type) & 0xffffffff)
    return ("0" * 8 + digits)[-8:]

def crate_root(ctx, srcs, default_name):
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

def collect_deps(ctx, extra_crates = [], extra_proc_macros = [], build_info = None):
    """(extern name, CrateInfo, DepInfo) of deps and proc_macro_deps, checked for their kind, and the
    BuildInfo of the crate's own cargo_build_script if it is among the deps."""
    crates, proc_macros = list(extra_crates), list(extra_proc_macros)
    for dep in ctx.attr.deps:
        if BuildInfo in dep:
            build_info = dep[BuildInfo]
            continue
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
    return struct(crates = crates, proc_macros = proc_macros, build_info = build_info)

def manifest_dir(ctx):
    """The package directory in the execution root: what Cargo calls CARGO_MANIFEST_DIR."""
    parts = [p for p in [ctx.label.workspace_root, ctx.label.package] if p]
    return "/".join(parts) if parts else "."

def package_version_env(version):
    """Cargo's CARGO_PKG_VERSION and its parts (build metadata after '+' is not part of PATCH)."""
    numbers = (version.split("-", 1)[0].split("+", 1)[0].split(".") + ["0", "0", "0"])[:3]
    return {
        "CARGO_PKG_VERSION": version,
        "CARGO_PKG_VERSION_MAJOR": numbers[0],
        "CARGO_PKG_VERSION_MINOR": numbers[1],
        "CARGO_PKG_VERSION_PATCH": numbers[2],
        "CARGO_PKG_VERSION_PRE": version.split("-", 1)[1] if "-" in version else "",
    }

def crate_from_attrs(ctx, crate_type, srcs, root, **overrides):
    owner = label_string(ctx)
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
        hash = crate_hash(owner, crate_type),
        owner = owner,
        output_name = ctx.label.name,
        version = ctx.attr.version,
        manifest_dir = manifest_dir(ctx),
        disable_pipelining = getattr(ctx.attr, "disable_pipelining", False),
        process_wrapper = ctx.file._process_wrapper,
    )
    fields.update(overrides)
    return struct(**fields)

# Attributes of every rule that compiles a crate, with rules_rust's names.
COMPILE_ATTRS = {
    "srcs": attr.label_list(allow_files = [".rs"], doc = "Rust sources of the crate."),
    "crate_root": attr.label(allow_single_file = [".rs"], doc = "The root source; defaults as in rules_rust."),
    "crate_name": attr.string(doc = "Crate name; defaults to the target name with '-' replaced by '_'."),
    "deps": attr.label_list(doc = "Crates this crate links against (and its cargo_build_script)."),
    "proc_macro_deps": attr.label_list(cfg = "exec", doc = "Procedural macros this crate uses."),
    "edition": attr.string(doc = "Rust edition; defaults to the toolchain's."),
    "crate_features": attr.string_list(doc = "Passed as --cfg feature=\"x\"."),
    "rustc_flags": attr.string_list(doc = "Extra rustc flags."),
    "rustc_env": attr.string_dict(doc = "Environment for rustc (read with env!)."),
    "compile_data": attr.label_list(allow_files = True, doc = "Files rustc reads (include_str! and friends)."),
    "data": attr.label_list(allow_files = True, doc = "Files needed at run time."),
    "aliases": attr.label_keyed_string_dict(doc = "Rename dependencies: {label: crate name}."),
    "version": attr.string(default = "0.0.0", doc = "Crate version, as CARGO_PKG_VERSION."),
    "_pipelined_compilation": attr.label(default = "//settings:pipelined_compilation"),
    "_no_codegen_pipelining": attr.label(
        default = "//settings:incompatible_use_unstable_no_codegen_for_pipelining",
    ),
    "_process_wrapper": attr.label(default = "//util/process_wrapper:process_wrapper.py", allow_single_file = True),
}
