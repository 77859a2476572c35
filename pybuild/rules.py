"""Rule classes declared by rule() in .bzl files, and attribute type checking for their targets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pybuild.errors import PybuildError
from pybuild.labels import Label, parse_label

# Bazel adds these to every rule; tests and executables get a few more.
_COMMON_ATTRS: dict[str, dict[str, Any]] = {
    "visibility": {"type": "label_list", "default": None},
    "testonly": {"type": "bool", "default": False},
    "tags": {"type": "string_list", "default": []},
    "deprecation": {"type": "string", "default": ""},
    "features": {"type": "string_list", "default": []},
    "compatible_with": {"type": "label_list", "default": [], "nodep": True},
    "target_compatible_with": {"type": "label_list", "default": [], "nodep": True},
    "exec_compatible_with": {"type": "label_list", "default": [], "nodep": True},
    "exec_properties": {"type": "string_dict", "default": {}},
    "toolchains": {"type": "label_list", "default": []},
    "licenses": {"type": "string_list", "default": []},
    "applicable_licenses": {"type": "label_list", "default": [], "nodep": True},
    "package_metadata": {"type": "label_list", "default": [], "nodep": True},
    "restricted_to": {"type": "label_list", "default": [], "nodep": True},
    "aspect_hints": {"type": "label_list", "default": [], "nodep": True},
}
_EXECUTABLE_ATTRS: dict[str, dict[str, Any]] = {
    "args": {"type": "string_list", "default": []},
    "env": {"type": "string_dict", "default": {}},
    "output_licenses": {"type": "string_list", "default": []},
}
_TEST_ATTRS: dict[str, dict[str, Any]] = {
    **_EXECUTABLE_ATTRS,
    "size": {"type": "string", "default": "medium", "values": ["small", "medium", "large", "enormous"]},
    "timeout": {"type": "string", "default": "", "values": ["", "short", "moderate", "long", "eternal"]},
    "flaky": {"type": "bool", "default": False},
    "shard_count": {"type": "int", "default": -1},
    "local": {"type": "bool", "default": False},
    "env_inherit": {"type": "string_list", "default": []},
}

LABEL_TYPES = ("label", "label_list", "label_keyed_string_dict")


class _Missing:
    """The default of a mandatory attribute: there is none."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # unpickles as the one MISSING, so `is MISSING` holds for cached rule classes


MISSING: Any = _Missing()


@dataclass
class Attribute:
    """One attribute of a rule class, as declared with attr.<type>(...)."""

    name: str
    type: str
    mandatory: bool = False
    default: Any = None
    values: list[Any] = field(default_factory=list)
    nodep: bool = False  # a label attribute that is not a dependency edge (like Bazel's nodep labels)

    @classmethod
    def from_schema(cls, name: str, schema: dict[str, Any]) -> Attribute:
        return cls(
            name=name,
            type=schema["type"],
            mandatory=bool(schema.get("mandatory", False)),
            default=schema.get("default"),
            values=list(schema.get("values") or []),
            nodep=bool(schema.get("nodep", False)),
        )

    @property
    def is_dependency(self) -> bool:
        return self.type in LABEL_TYPES and not self.nodep


@dataclass
class RuleClass:
    """A rule declared in a .bzl file. `kind` is the name it was first exported under."""

    rule_id: int
    implementation: str  # "file.bzl._impl", as Starlark prints the function
    defined_in: Label
    attrs: dict[str, Attribute]
    executable: bool = False
    test: bool = False
    toolchain_types: list[Label] = field(default_factory=list)
    build_setting: str | None = None  # "bool", "string" or "int" for build setting rules
    kind: str | None = None

    _defaults: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _without_default: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _dependencies: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)
    # Digest of what rule() was given: with `kind`, it names the rule across processes (the load cache).
    signature: str = field(default="", repr=False, compare=False)

    @property
    def description(self) -> str:
        return f"{self.kind or '<unexported rule>'} rule"

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(f"{self.signature}\0{self.kind}".encode()).hexdigest()

    def defaults(self) -> dict[str, Any]:
        """Every attribute in declaration order with its default (labels resolved), computed once.

        Attributes without a usable default hold MISSING. Targets share these values, as they already shared the
        schema's own default lists: attribute values are never mutated after loading.
        """
        if self._defaults is None:
            self._defaults = {name: self._default_or_missing(attribute) for name, attribute in self.attrs.items()}
            self._without_default = tuple(name for name, value in self._defaults.items() if value is MISSING)
        return self._defaults

    def dependency_attributes(self) -> tuple[str, ...]:
        """Names of the label attributes that are dependency edges, in declaration order."""
        if self._dependencies is None:
            self._dependencies = tuple(n for n, a in self.attrs.items() if a.is_dependency and n != "visibility")
        return self._dependencies

    def without_default(self) -> tuple[str, ...]:
        """Attributes a target must set: mandatory ones, and those whose default label is invalid."""
        self.defaults()
        return self._without_default

    def _default_or_missing(self, attribute: Attribute) -> Any:
        if attribute.mandatory:
            return MISSING
        try:
            return _default(attribute, self.resolve_default)
        except Exception:  # any failure is reported (by _coerce_all) only to targets that leave it unset
            return MISSING

    def resolve_default(self, text: str) -> Label:
        """Default labels are written in the .bzl file, so they resolve against its repository."""
        return parse_label(text, repo=self.defined_in.repo, package=self.defined_in.package)


def build_rule_class(
    rule_id: int,
    implementation: str,
    defined_in: Label,
    attrs: dict[str, dict[str, Any]],
    executable: bool,
    test: bool,
    toolchain_types: list[str],
    build_setting: str | None,
) -> RuleClass:
    declared = dict(_COMMON_ATTRS)
    if executable or test:
        declared.update(_TEST_ATTRS if test else _EXECUTABLE_ATTRS)
    declared.update(attrs)
    if build_setting:
        # Bazel gives build setting rules this attribute: the value when the command line sets none.
        declared["build_setting_default"] = {"type": build_setting, "mandatory": True}
    given = (implementation, str(defined_in), declared, executable, test, toolchain_types, build_setting)
    return RuleClass(
        signature=hashlib.sha256(repr(given).encode("utf-8", "surrogatepass")).hexdigest(),
        rule_id=rule_id,
        implementation=implementation,
        defined_in=defined_in,
        attrs={name: Attribute.from_schema(name, schema) for name, schema in declared.items()},
        executable=executable,
        test=test,
        toolchain_types=[parse_label(t, repo=defined_in.repo, package=defined_in.package) for t in toolchain_types],
        build_setting=build_setting,
    )


def coerce_attributes(
    rule_class: RuleClass,
    target: str,
    values: dict[str, Any],
    resolve: Callable[[str], Label],
) -> dict[str, Any]:
    """Check `values` against the rule's schema; return every attribute with labels resolved.

    Raises PybuildError with a message naming the target and attribute (the caller adds the location).
    """
    result = _coerce_given(rule_class, values, resolve)
    if result is None:
        # Something is wrong: the full check finds the same first error, in attribute order, as always.
        return _coerce_all(rule_class, target, values, resolve)
    return result


def _coerce_given(
    rule_class: RuleClass, values: dict[str, Any], resolve: Callable[[str], Label]
) -> dict[str, Any] | None:
    """The fast path: start from the precomputed defaults and coerce only what the BUILD file set.

    Returns None on any problem, so that _coerce_all reports it exactly as before.
    """
    attrs = rule_class.attrs
    result = dict(rule_class.defaults())
    try:
        for name, value in values.items():
            attribute = attrs.get(name)
            if attribute is None or name.startswith("_"):
                return None
            if value is not None:
                result[name] = _coerce(attribute, value, resolve, "")
    except Exception:  # whatever it is, _coerce_all raises it again in the order users always saw
        return None
    if any(result[name] is MISSING for name in rule_class.without_default()):
        return None
    return result


def _coerce_all(
    rule_class: RuleClass,
    target: str,
    values: dict[str, Any],
    resolve: Callable[[str], Label],
) -> dict[str, Any]:
    """Every attribute in declaration order, reporting the first problem."""
    for name in values:
        if name not in rule_class.attrs:
            raise PybuildError(f"{rule_class.description} {target}: no such attribute '{name}'")
        if name.startswith("_"):
            raise PybuildError(f"{rule_class.description} {target}: attribute '{name}' is private")
    result: dict[str, Any] = {}
    for name, attribute in rule_class.attrs.items():
        if name in values and values[name] is not None:
            result[name] = _coerce(attribute, values[name], resolve, f"{rule_class.description} {target}")
        elif attribute.mandatory:
            raise PybuildError(f"{rule_class.description} {target}: missing value for mandatory attribute '{name}'")
        else:
            result[name] = _default(attribute, rule_class.resolve_default)
    return result


def _default(attribute: Attribute, resolve: Callable[[str], Label]) -> Any:
    value = attribute.default
    if value is None:
        return [] if attribute.type.endswith("_list") else None
    if attribute.type == "label":
        return resolve(value)
    if attribute.type == "label_list":
        return [resolve(v) for v in value]
    return value


_TYPE_NAMES = {
    "string": "a string",
    "label": "a label string",
    "output": "a string",
    "bool": "a boolean",
    "int": "an integer",
    "string_list": "a list of strings",
    "label_list": "a list of label strings",
    "output_list": "a list of strings",
    "string_dict": "a dict of string to string",
    "label_keyed_string_dict": "a dict of label string to string",
    "string_list_dict": "a dict of string to list of strings",
}


def _coerce(attribute: Attribute, value: Any, resolve: Callable[[str], Label], owner: str) -> Any:
    if not _has_type(attribute.type, value):
        raise PybuildError(
            f"{owner}: attribute '{attribute.name}' must be {_TYPE_NAMES[attribute.type]}, "
            f"got {_starlark_type(value)} {value!r}"
        )
    if attribute.values and value not in attribute.values:
        raise PybuildError(
            f"{owner}: attribute '{attribute.name}' has value {value!r}, expected one of {attribute.values}"
        )
    try:
        return _resolve_labels(attribute.type, value, resolve)
    except PybuildError as error:
        raise PybuildError(f"{owner}: attribute '{attribute.name}': {error.message}") from None


def _resolve_labels(kind: str, value: Any, resolve: Callable[[str], Label]) -> Any:
    if kind == "label":
        return resolve(value)
    if kind == "label_list":
        labels = [resolve(v) for v in value]
        _reject_duplicates(labels)
        return labels
    if kind == "label_keyed_string_dict":
        return {resolve(k): v for k, v in value.items()}
    if kind == "bool":
        return bool(value)
    return value


def _reject_duplicates(labels: list[Label]) -> None:
    seen: set[Label] = set()
    for label in labels:
        if label in seen:
            raise PybuildError(f"label '{label}' is duplicated")
        seen.add(label)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_str_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "label": lambda v: isinstance(v, str),
    "output": lambda v: isinstance(v, str),
    # Bazel accepts 0 and 1 for booleans.
    "bool": lambda v: isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string_list": _is_str_list,
    "label_list": _is_str_list,
    "output_list": _is_str_list,
    "string_dict": _is_str_dict,
    "label_keyed_string_dict": _is_str_dict,
    "string_list_dict": lambda v: isinstance(v, dict) and all(_is_str_list(x) for x in v.values()),
}


def _has_type(kind: str, value: Any) -> bool:
    return _TYPE_CHECKS[kind](value)


def _starlark_type(value: Any) -> str:
    names = {bool: "bool", int: "int", str: "string", list: "list", dict: "dict", type(None): "NoneType"}
    return names.get(type(value), type(value).__name__)


def parse_label_in(package_repo: str, package: str) -> Callable[[str], Label]:
    """A resolver for label strings written in a BUILD file of `package`."""

    def resolve(text: str) -> Label:
        return parse_label(text, repo=package_repo, package=package)

    return resolve
