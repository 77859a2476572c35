"""cargo_build_script: compile build.rs for the host, run it as Cargo would, hand its results on.

The run is an action: its directives (cargo:rustc-cfg and friends) become files that the crate's
rustc actions read through the process wrapper (see BuildInfo in providers.bzl).
"""

load("//rust/private:crate.bzl", "COMPILE_ATTRS", "TOOLCHAIN_TYPE", "collect_deps", "crate_from_attrs", "crate_root", "manifest_dir", "package_version_env")
load("//rust/private:providers.bzl", "BuildInfo")
load("//rust/private:rustc.bzl", "compile_crate")

# Cargo's PROFILE, OPT_LEVEL and DEBUG for each compilation mode.
_PROFILES = {"fastbuild": ("debug", "0", "false"), "dbg": ("debug", "0", "true"), "opt": ("release", "3", "false")}

def _feature_env(features):
    return {"CARGO_FEATURE_" + f.upper().replace("-", "_"): "1" for f in features}

def _script_env(ctx, toolchain, crate):
    profile, opt_level, debug = _PROFILES[ctx.var["COMPILATION_MODE"]]
    env = dict(package_version_env(crate.version))
    env.update({
        "CARGO_PKG_NAME": ctx.attr.pkg_name or crate.name,
        "CARGO_MANIFEST_LINKS": ctx.attr.links,
        "TARGET": toolchain.target_triple,
        "HOST": toolchain.exec_triple,
        "PROFILE": profile,
        "OPT_LEVEL": opt_level,
        "DEBUG": debug,
        "NUM_JOBS": "1",
        "CARGO_ENCODED_RUSTFLAGS": "",
        "RUSTC_LINKER": "cc",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    })
    env.update(_feature_env(crate.features))
    env.update(ctx.attr.build_script_env)
    return env

def _target_cfg(toolchain):
    # The toolchain's `rustc --print cfg`, detected once: an input, so another rustc reruns the script.
    if not toolchain.target_cfg:
        fail("cargo_build_script needs a rust_toolchain with target_cfg (a file of `rustc --print cfg`)")
    return toolchain.target_cfg

def _cargo_build_script_impl(ctx):
    toolchain = ctx.toolchains[TOOLCHAIN_TYPE]
    target_cfg = _target_cfg(toolchain)
    srcs = ctx.files.srcs
    script = crate_from_attrs(
        ctx, "bin", srcs, crate_root(ctx, srcs, "build.rs"),
        name = ctx.attr.crate_name or "build_script_build",
        output_name = ctx.label.name + "_script",
    )
    script_info, _ = compile_crate(ctx, toolchain, script, collect_deps(ctx))

    out_dir = ctx.actions.declare_directory(ctx.label.name + ".out_dir")
    rustc_flags = ctx.actions.declare_file(ctx.label.name + ".rustc_flags")
    rustc_env = ctx.actions.declare_file(ctx.label.name + ".rustc_env")
    link_flags = ctx.actions.declare_file(ctx.label.name + ".link_flags")
    ctx.actions.run(
        executable = ctx.file._runner,
        arguments = [
            "--script", script_info.output.path,
            "--manifest-dir", manifest_dir(ctx),
            "--rustc", toolchain.rustc.path,
            "--target-cfg", target_cfg.path,
            "--out-dir", out_dir.path,
            "--rustc-flags", rustc_flags.path,
            "--rustc-env", rustc_env.path,
            "--link-flags", link_flags.path,
            "--label", script_info.owner,
        ],
        inputs = depset([script_info.output, target_cfg] + ctx.files.data + ctx.files.srcs),
        tools = depset(ctx.files.tools, transitive = [toolchain.all_files]),
        outputs = [out_dir, rustc_flags, rustc_env, link_flags],
        env = _script_env(ctx, toolchain, script),
        mnemonic = "CargoBuildScriptRun",
        progress_message = "Running Cargo build script %s" % (ctx.attr.pkg_name or ctx.label.name),
    )
    return [
        DefaultInfo(files = depset([out_dir])),
        BuildInfo(out_dir = out_dir, rustc_flags = rustc_flags, rustc_env = rustc_env, link_flags = link_flags),
    ]

cargo_build_script = rule(
    implementation = _cargo_build_script_impl,
    attrs = dict(
        COMPILE_ATTRS,
        links = attr.string(doc = "The package's `links` key (CARGO_MANIFEST_LINKS)."),
        pkg_name = attr.string(doc = "The Cargo package name (CARGO_PKG_NAME); defaults to the crate name."),
        build_script_env = attr.string_dict(doc = "Extra environment for running the script."),
        tools = attr.label_list(allow_files = True, cfg = "exec", doc = "Programs the script runs."),
        _runner = attr.label(default = "//cargo/private:build_script_runner.py", allow_single_file = True),
    ),
    toolchains = [TOOLCHAIN_TYPE],
)
