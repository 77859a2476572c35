"""Build options from the command line: compilation mode, pipelining flags and Starlark build settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pybuild.errors import PybuildError, UsageError

if TYPE_CHECKING:  # the command line is parsed before (and often without) any loading or analysis
    from pybuild.analysis import BuildConfig
    from pybuild.labels import Label
    from pybuild.packages import PackageLoader

# Native flags that are shorthands for the bundled rules' build settings.
SETTING_FLAGS = {
    "pipelined_compilation": "@rules_rust//settings:pipelined_compilation",
    "incompatible_use_unstable_no_codegen_for_pipelining": (
        "@rules_rust//settings:incompatible_use_unstable_no_codegen_for_pipelining"
    ),
}
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def split_starlark_flags(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Take out `--@repo//pkg:name=value`, `--//pkg:name`, `--no//pkg:name` (before any `--`)."""
    rest: list[str] = []
    settings: dict[str, str] = {}
    for index, arg in enumerate(argv):
        if arg == "--":
            return rest + list(argv[index:]), settings
        body = arg[2:] if arg.startswith("--") else ""
        negated = body.startswith("no@") or body.startswith("no//")
        if negated:
            body = body[2:]
        if body.startswith("@") or body.startswith("//"):
            name, _, value = body.partition("=")
            settings[name] = "false" if negated else (value or "true")
        else:
            rest.append(arg)
    return rest, settings


def build_config(
    loader: PackageLoader, compilation_mode: str, native: dict[str, bool | None], starlark: dict[str, str]
) -> BuildConfig:
    from pybuild.analysis import BuildConfig
    from pybuild.labels import parse_label

    requested = {SETTING_FLAGS[name]: str(value).lower() for name, value in native.items() if value is not None}
    requested.update(starlark)
    settings: dict[Label, Any] = {}
    for text, value in requested.items():
        flag = f"--{text}"
        try:
            label = _actual_setting(loader, parse_label(text))
        except PybuildError as error:
            raise UsageError(f"{flag}: {error.message}") from None
        settings[label] = _coerce(flag, loader.target(label).rule_class.build_setting, value)
    return BuildConfig(compilation_mode=compilation_mode, build_settings=settings)


def _actual_setting(loader: PackageLoader, label: Label) -> Label:
    for _ in range(32):  # aliases of aliases, bounded against alias cycles
        target = loader.target(label)
        if target.kind != "alias":
            break
        label = target.attrs["actual"]
    rule_class = loader.target(label).rule_class
    if rule_class is None or rule_class.build_setting is None:
        raise PybuildError(f"'{label}' is not a build setting")
    return label


def _coerce(flag: str, kind: str | None, value: str) -> Any:
    if kind == "bool":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise UsageError(f"{flag}: '{value}' is not a boolean (use true or false)")
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{flag}: '{value}' is not an integer") from None
    return value
