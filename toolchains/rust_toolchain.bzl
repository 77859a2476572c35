"""rust_toolchain: the compiler and what rules need to know about it."""

def _rust_toolchain_impl(ctx):
    rustc_lib = depset(ctx.files.rustc_lib)
    return [platform_common.ToolchainInfo(
        rustc = ctx.file.rustc,
        rustdoc = ctx.file.rustdoc,
        rustc_lib = rustc_lib,
        # What a rustc action needs of the toolchain: one depset that every action shares.
        all_files = depset([ctx.file.rustc], transitive = [rustc_lib]),
        target_cfg = ctx.file.target_cfg,
        sysroot = ctx.attr.sysroot,
        target_triple = ctx.attr.target_triple,
        exec_triple = ctx.attr.exec_triple or ctx.attr.target_triple,
        default_edition = ctx.attr.default_edition,
        channel = ctx.attr.channel,
        version = ctx.attr.version,
    )]

rust_toolchain = rule(
    implementation = _rust_toolchain_impl,
    attrs = {
        "rustc": attr.label(mandatory = True, allow_single_file = True),
        "rustdoc": attr.label(allow_single_file = True),
        "rustc_lib": attr.label_list(allow_files = True, doc = "Libraries rustc needs at run time."),
        "target_cfg": attr.label(
            allow_single_file = True,
            doc = "`rustc --print cfg` for the target; cargo_build_script needs it (CARGO_CFG_*).",
        ),
        "sysroot": attr.string(doc = "The compiler's sysroot, for information; rustc finds it itself."),
        "target_triple": attr.string(mandatory = True),
        "exec_triple": attr.string(),
        "default_edition": attr.string(default = "2021"),
        "channel": attr.string(default = "stable", values = ["stable", "beta", "nightly"]),
        "version": attr.string(),
    },
)
