# Bazel's native rules that pybuild supports, written as ordinary Starlark rules.

def _filegroup_impl(ctx):
    files = depset(transitive = [src[DefaultInfo].files for src in ctx.attr.srcs])
    return [DefaultInfo(files = files)]

filegroup = rule(
    implementation = _filegroup_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "data": attr.label_list(allow_files = True),
        "output_group": attr.string(),
    },
)

def _alias_impl(ctx):
    # Analysis forwards every provider of `actual`; the alias itself adds nothing.
    return [p for key, p in ctx.attr.actual.items() if key != "label"]

alias = rule(
    implementation = _alias_impl,
    attrs = {"actual": attr.label(mandatory = True)},
)

def _toolchain_type_impl(ctx):
    return []

toolchain_type = rule(implementation = _toolchain_type_impl)

def _toolchain_impl(ctx):
    # Resolution reads `toolchain` and `toolchain_type` from the target's attributes.
    return []

toolchain = rule(
    implementation = _toolchain_impl,
    attrs = {
        "toolchain": attr.label(mandatory = True),
        "toolchain_type": attr.label(mandatory = True),
        "target_settings": attr.label_list(),
    },
)
