"""Build settings set from the command line (`--flag` or `--@rules_rust//settings:name=value`)."""

BuildSettingInfo = provider(doc = "The value of a build setting.", fields = ["value"])

def _build_setting_impl(ctx):
    return [BuildSettingInfo(value = ctx.build_setting_value)]

bool_flag = rule(implementation = _build_setting_impl, build_setting = config.bool(flag = True))
string_flag = rule(
    implementation = _build_setting_impl,
    build_setting = config.string(flag = True),
    attrs = {"values": attr.string_list()},
)
