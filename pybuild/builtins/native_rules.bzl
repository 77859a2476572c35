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
    return ctx.attr.actual.values()

alias = rule(
    implementation = _alias_impl,
    attrs = {"actual": attr.label(mandatory = True)},
)
