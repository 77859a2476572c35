"""How rustc is invoked: the command line and the compile actions of one crate.

Every rustc argument is built by `rustc_arguments`; the pipelining modes differ only in which
actions they declare, what they emit and which dependency files they compile against.
"""

load("//settings:settings.bzl", "BuildSettingInfo")
load(":crate.bzl", "package_version_env")
load(":providers.bzl", "CrateInfo", "DepInfo")

# rules_rust's -c mapping: (opt-level, debuginfo).
_COMPILATION_MODES = {"fastbuild": ("0", "0"), "dbg": ("0", "2"), "opt": ("3", "0")}

# Every rustc action gets this PATH: rustc finds the linker (cc) and the process wrapper its python3.
_ACTION_PATH = "/usr/local/bin:/usr/bin:/bin"

def pipelining_mode(ctx):
    """"none", "rmeta" or "hollow", from the build settings."""
    if not ctx.attr._pipelined_compilation[BuildSettingInfo].value:
        return "none"
    if ctx.attr._no_codegen_pipelining[BuildSettingInfo].value:
        return "hollow"
    return "rmeta"

def manages_unstable_features(rustc_env, rustc_flags):
    """Whether the target opted in to unstable features itself (so -Zallow-features= is not added)."""
    if "RUSTC_BOOTSTRAP" in rustc_env:
        return True
    for index, flag in enumerate(rustc_flags):
        normalized = flag.replace("_", "-")
        if normalized.startswith("-Zallow-features"):
            return True
        following = rustc_flags[index + 1].replace("_", "-") if index + 1 < len(rustc_flags) else ""
        if normalized == "-Z" and following.startswith("allow-features"):
            return True
    return False

def rustc_arguments(crate, compilation_mode, emit, externs, search_dirs, extra_flags):
    """The rustc command line, minus the program itself."""
    opt_level, debuginfo = _COMPILATION_MODES[compilation_mode]
    args = [
        crate.root.path,
        "--crate-name=" + crate.name,
        "--crate-type=" + crate.type,
        "--edition=" + crate.edition,
        "--emit=" + emit,
        "--codegen=opt-level=" + opt_level,
        "--codegen=debuginfo=" + debuginfo,
        # Nothing reads LLVM bitcode from rlibs without LTO, which pybuild does not do; like Cargo, skip
        # writing it (a fifth of codegen time on heavy crates). A tracked option: every action of a crate has it.
        "--codegen=embed-bitcode=no",
        "--codegen=metadata=" + crate.hash,
        "--codegen=extra-filename=-" + crate.hash,
        # Where the action runs must not reach outputs or the crate hash (see process_wrapper.py).
        "--remap-path-prefix=${pwd}=.",
    ]
    if crate.is_test:
        args.append("--test")
    for feature in crate.features:
        args.extend(["--cfg", 'feature="%s"' % feature])
    if crate.type == "proc-macro":
        args.append("--extern=proc_macro")
    args.extend(["--extern=%s=%s" % (name, path) for name, path in externs])
    args.extend(["-Ldependency=" + directory for directory in search_dirs])
    return args + extra_flags + crate.rustc_flags

def _dependency_view(deps, use_metadata):
    """--extern pairs, search directories and input files for compiling against `deps`."""
    direct = deps.crates + deps.proc_macros
    externs = [(name, (info.metadata if use_metadata else info.output).path) for name, info, _ in direct]
    files = depset(transitive = [
        dep_info.transitive_metadata if use_metadata else dep_info.transitive_outputs
        for _, _, dep_info in direct
    ])
    directories = {f.dirname: None for f in files.to_list()}
    return externs, list(directories), files

def _invocation(crate, dependency_files, env):
    """What every rustc action of the crate shares: its inputs (one depset, so the host flattens them once),
    its environment and the process wrapper's flags for the crate's build script results."""
    wrapper_flags = []
    extra_inputs = crate.compile_data + [crate.root]
    build_info = crate.build_info
    if build_info != None:
        # The crate's build script results, fed to both the metadata and the full action.
        wrapper_flags = ["--arg-file", build_info.rustc_flags.path, "--env-file", build_info.rustc_env.path]
        env = dict(env, OUT_DIR = "${pwd}/" + build_info.out_dir.path)
        extra_inputs = extra_inputs + [build_info.out_dir, build_info.rustc_flags, build_info.rustc_env]
    return struct(
        inputs = depset(crate.srcs + extra_inputs, transitive = [dependency_files]),
        env = dict(env, PATH = _ACTION_PATH),
        wrapper_flags = wrapper_flags,
    )

def _run_rustc(ctx, toolchain, crate, invocation, mnemonic, arguments, outputs, wrapper_flags = [],
               execution_requirements = {}):
    """rustc always runs under the process wrapper: it substitutes ${pwd} (see process_wrapper.py)."""
    ctx.actions.run(
        executable = crate.process_wrapper,
        arguments = wrapper_flags + invocation.wrapper_flags + ["--", toolchain.rustc.path] + arguments,
        inputs = invocation.inputs,
        tools = toolchain.all_files,
        outputs = outputs,
        env = invocation.env,
        mnemonic = mnemonic,
        progress_message = "Compiling Rust %s %s (%s)" % (crate.type, crate.name, mnemonic),
        execution_requirements = execution_requirements,
    )

def _cargo_env(crate):
    """What Cargo tells every crate it compiles (env!("CARGO_PKG_VERSION") and friends)."""
    return dict(
        package_version_env(crate.version),
        CARGO_CRATE_NAME = crate.name,
        CARGO_PKG_NAME = crate.name,
        CARGO_MANIFEST_DIR = "${pwd}/" + crate.manifest_dir,
    )

def _declare_outputs(ctx, crate, mode):
    """(output, metadata): the full artifact and what dependents compile against."""
    stem = "lib%s-%s" % (crate.name, crate.hash)
    if crate.type == "proc-macro":
        output = ctx.actions.declare_file(stem + ".so")
        return output, output
    if crate.type == "bin":
        return ctx.actions.declare_file(crate.output_name), None
    output = ctx.actions.declare_file(stem + ".rlib")
    if mode == "hollow":
        return output, ctx.actions.declare_file("_meta/%s_meta.rlib" % stem)
    if mode == "rmeta":
        return output, ctx.actions.declare_file("_pipelined/%s.rmeta" % stem)
    return output, output

def _rmeta_emit(directory, crate):
    stem = "%s/lib%s-%s" % (directory, crate.name, crate.hash)
    return "dep-info=%s/%s-%s.d,metadata=%s.rmeta,link=%s.rlib" % (directory, crate.name, crate.hash, stem, stem)

def _early_rmeta(output, crate):
    """The full action's rustc writes the same .rmeta before codegen (its contents do not depend on the
    output directory): pybuild may run one process for both actions, as Cargo does (see scheduler.py)."""
    return {
        "early-output-of": output.path,
        "early-output-path": "%s/lib%s-%s.rmeta" % (output.dirname, crate.name, crate.hash),
    }

def compile_crate(ctx, toolchain, crate, deps):
    """Declare the rustc actions of `crate`; return its [CrateInfo, DepInfo]."""
    global_mode = pipelining_mode(ctx)
    mode = global_mode if crate.type == "rlib" and not crate.disable_pipelining else "none"
    output, metadata = _declare_outputs(ctx, crate, mode)
    compilation_mode = ctx.var["COMPILATION_MODE"]

    # Libraries compile against metadata whenever pipelining is on; anything that links needs full rlibs.
    externs, search_dirs, dep_files = _dependency_view(deps, crate.type == "rlib" and global_mode != "none")
    crate = _with_build_info(crate, deps.build_info)
    env = dict(_cargo_env(crate), **crate.rustc_env)
    extra = []
    link_flags = _link_flag_files(deps)
    if crate.type != "rlib":
        _check_unique_crate_names(dep_files)
    if crate.type != "rlib" and link_flags:
        # Linking: native libraries that build scripts of any crate below asked for.
        dep_files = depset(link_flags, transitive = [dep_files])
    if mode == "hollow":
        # -Zno-codegen is unstable. Both actions get RUSTC_BOOTSTRAP=1, because it enters the crate
        # hash: a hollow rlib and a full rlib built differently would fail to link (E0460).
        env["RUSTC_BOOTSTRAP"] = "1"
        if toolchain.channel != "nightly" and not manages_unstable_features(crate.rustc_env, crate.rustc_flags):
            extra.append("-Zallow-features=")  # but user code must not silently gain unstable features

    def arguments(emit, more):
        return rustc_arguments(crate, compilation_mode, emit, externs, search_dirs, extra + more)

    link_wrapper_flags = [flag for f in link_flags for flag in ["--arg-file", f.path]] if crate.type != "rlib" else []
    invocation = _invocation(crate, dep_files, env)

    if mode == "hollow":
        # Once the full rlib is built, pybuild may cut this hollow rlib from it instead (see rlib.py).
        _run_rustc(ctx, toolchain, crate, invocation, "RustcMetadata",
                   arguments("link=" + metadata.path, ["-Zno-codegen"]), [metadata],
                   execution_requirements = {"hollow-rlib-of": output.path})
        _run_rustc(ctx, toolchain, crate, invocation, "Rustc", arguments("link=" + output.path, []), [output])
    elif mode == "rmeta":
        json_flags = ["--error-format=json", "--json=artifacts"]
        _run_rustc(ctx, toolchain, crate, invocation, "RustcMetadata",
                   arguments(_rmeta_emit(metadata.dirname, crate), json_flags), [metadata],
                   ["--rustc-quit-on-rmeta", "--render-json-diagnostics"], _early_rmeta(output, crate))
        _run_rustc(ctx, toolchain, crate, invocation, "Rustc", arguments(_rmeta_emit(output.dirname, crate), json_flags),
                   [output], ["--render-json-diagnostics"])
    else:
        _run_rustc(ctx, toolchain, crate, invocation, "Rustc", arguments("link=" + output.path, []), [output],
                   link_wrapper_flags)

    crate_info = CrateInfo(
        name = crate.name,
        type = crate.type,
        root = crate.root,
        srcs = depset(crate.srcs),
        edition = crate.edition,
        output = output,
        metadata = metadata,
        owner = crate.owner,
        version = crate.version,
        features = crate.features,
        rustc_env = crate.rustc_env,
        rustc_flags = crate.rustc_flags,
        compile_data = crate.compile_data,
        deps = deps,
    )
    return crate_info, _dep_info(crate, output, metadata, deps)

def _check_unique_crate_names(dep_files):
    """Two different crates named alike in one link make rustc pick either; say which targets collide."""
    owners = {}
    for f in dep_files.to_list():
        if f.extension not in ("rlib", "rmeta", "so") or not f.basename.startswith("lib"):
            continue
        name = f.basename[3:].rsplit("-", 1)[0]
        if name in owners and owners[name] != f.owner:
            fail("two crates named '%s' in one link: %s and %s; give one of them another crate_name" % (
                name, owners[name], f.owner))
        owners[name] = f.owner

def _with_build_info(crate, build_info):
    return struct(**dict({k: getattr(crate, k) for k in dir(crate)}, build_info = build_info))

def _link_flag_files(deps):
    own = [deps.build_info.link_flags] if deps.build_info != None else []
    return depset(own, transitive = [d.transitive_link_flags for _, _, d in deps.crates]).to_list()

def _dep_info(crate, output, metadata, deps):
    if crate.type == "proc-macro":
        # Consumers run the macro; its own dependencies are linked into the .so already.
        return DepInfo(transitive_metadata = depset([output]), transitive_outputs = depset([output]),
                       transitive_link_flags = depset())
    direct = deps.crates + deps.proc_macros
    own_link_flags = [deps.build_info.link_flags] if deps.build_info != None else []
    return DepInfo(
        transitive_metadata = depset([metadata], transitive = [d.transitive_metadata for _, _, d in direct]),
        transitive_outputs = depset([output], transitive = [d.transitive_outputs for _, _, d in direct]),
        transitive_link_flags = depset(own_link_flags, transitive = [d.transitive_link_flags for _, _, d in deps.crates]),
    )
