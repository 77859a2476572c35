"""Evaluation of Starlark files (MODULE.bazel, BUILD, .bzl) with starlark-pyo3.

This is the one module that knows the interpreter's quirks: values cross into Python as JSON,
Starlark functions never do, loads go through a FileLoader callback, and errors come back as text.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import starlark as sl

from pybuild.errors import PybuildError
from pybuild.labels import Label, parse_label
from pybuild.workspace import BUILTINS_REPO, Workspace

GLOBALS = sl.Globals.extended_by(
    [
        sl.LibraryExtension.StructType,
        sl.LibraryExtension.Print,
        sl.LibraryExtension.Json,
        sl.LibraryExtension.CallStack,
    ]
)

_BUILD_NATIVES = ("glob", "package", "exports_files", "package_name", "repository_name", "existing_rules")
_BZL_API = ("rule", "attr", "provider", "depset", "DefaultInfo", "platform_common", "config", "native")
_BUILD_API = (*_BUILD_NATIVES, "filegroup", "alias", "toolchain", "toolchain_type")


def _load_statement(file: str, names: tuple[str, ...]) -> str:
    return f'load("@{BUILTINS_REPO}//:{file}", ' + ", ".join(f'"{n}"' for n in names) + ")"


_BZL_HEADER_SOURCE = _load_statement("bzl_api.bzl", _BZL_API)
_BUILD_HEADER_SOURCE = _load_statement("build_api.bzl", _BUILD_API)
# Builtin files and what they load implicitly; bzl_prelude.bzl is the base and loads nothing.
_BUILTIN_HEADERS = {
    "native_rules.bzl": 'load(":bzl_prelude.bzl", "rule", "attr", "depset", "DefaultInfo")',
}
_PRELUDE = Label(BUILTINS_REPO, "", "bzl_prelude.bzl")
# Host functions each builtin file gets as globals.
_BUILTIN_HOST_FUNCTIONS = {
    "bzl_prelude.bzl": (
        "host_register_rule",
        "host_export_rule",
        "host_register_provider",
        "host_export_provider",
        "host_provider_name",
        "host_new_depset",
        "host_instantiate",
    ),
    "bzl_api.bzl": ("glob", "package_name", "repository_name", "exports_files", "existing_rules"),
    "build_api.bzl": _BUILD_NATIVES,
    "analysis.bzl": ("host_begin_target", "host_register_action"),
}
# A top-level assignment: only names bound at column 0 can be exported rules or providers.
_TOP_LEVEL_ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*=(?!=)", re.M)
_LOCATION = re.compile(r"^\s*--> (.+?):(\d+):(\d+)\s*$", re.M)
_FRAME = re.compile(r"^\s*\* (.+?):(\d+), in ", re.M)
# How messages name pybuild's own Starlark; errors point past it, at the user's file that called it.
_BUILTIN_HEADER = "<builtin header>"
_DRIVER = "<analysis driver>"
_BUILTIN_DISPLAYS = (_BUILTIN_HEADER, _DRIVER, f"@{BUILTINS_REPO}//")


@dataclass(frozen=True)
class SourceFile:
    """A Starlark file to evaluate: where it is, how messages name it, and the label loads resolve against."""

    path: Path
    display: str
    label: Label


def frame_locations(call_stack: str) -> list[str]:
    """`file:line` of each frame of a Starlark call_stack() text, outermost first."""
    return [f"{file}:{line}" for file, line in _FRAME.findall(call_stack)]


def _parse_dialect(build_file: bool) -> sl.Dialect:
    dialect = sl.Dialect.standard()
    dialect.enable_def = not build_file  # as in Bazel: BUILD files define no functions
    dialect.enable_keyword_only_arguments = True
    dialect.enable_f_strings = True
    return dialect


_BZL_DIALECT = _parse_dialect(build_file=False)
_BUILD_DIALECT = _parse_dialect(build_file=True)


class StarlarkHost:
    """Loads .bzl modules once, evaluates BUILD and MODULE.bazel files, and turns failures into PybuildError."""

    def __init__(self, workspace: Workspace, host_functions: dict[str, Callable[..., Any]]) -> None:
        self.workspace = workspace
        self._host_functions = host_functions
        self._modules: dict[Label, sl.FrozenModule] = {}
        self._load_stack: list[Label] = []
        # What each evaluated file loaded, and the digest of each .bzl text evaluated: the load cache
        # keys a BUILD file's result on the .bzl files behind it.
        self._direct_loads: dict[Label, list[Label]] = {}
        self._bzl_digests: dict[Label, tuple[str, str]] = {}  # label -> (path, sha256 of the text)
        self._pending: PybuildError | None = None
        self._bzl_header = sl.parse(_BUILTIN_HEADER, _BZL_HEADER_SOURCE)
        self._build_header = sl.parse(_BUILTIN_HEADER, _BUILD_HEADER_SOURCE)

    # Host callables -------------------------------------------------------------------------------

    def _callable(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a host function so the PybuildError it raises survives the trip through Starlark."""
        signature = inspect.signature(function)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except PybuildError as error:
                self._pending = error
                raise
            except TypeError:
                # Binding is checked only on failure (Signature.bind costs more than most host calls);
                # a TypeError from inside the function, with arguments that bind, propagates unchanged.
                error = _binding_error(name, signature, args, kwargs)
                if error is None:
                    raise
                self._pending = error
                raise error from None

        return call

    def _new_module(self, names: tuple[str, ...] = ()) -> sl.Module:
        module = sl.Module()
        for name in names:
            module.add_callable(name, self._callable(name, self._host_functions[name]))
        return module

    # Evaluation -----------------------------------------------------------------------------------

    def load(self, label: Label, requested_by: str | None = None) -> sl.FrozenModule:
        """The frozen module of a .bzl file, evaluating it on first use."""
        if label in self._modules:
            return self._modules[label]
        if label in self._load_stack:
            chain = " -> ".join(str(x) for x in [*self._load_stack[self._load_stack.index(label) :], label])
            raise PybuildError(f"cycle in load() graph: {chain}")
        source = self._bzl_source(label, requested_by)
        self._load_stack.append(label)
        try:
            module = self._eval_bzl(source)
        finally:
            self._load_stack.pop()
        self._modules[label] = module
        return module

    @property
    def loading_bzl(self) -> bool:
        """Whether a .bzl file's top level is being evaluated (a BUILD file's load() of it)."""
        return bool(self._load_stack)

    def current_file(self) -> Label:
        """The .bzl file being evaluated: rule() and provider() record where they were declared."""
        if not self._load_stack:
            raise PybuildError("rule() and provider() can only be called while a .bzl file is loaded")
        return self._load_stack[-1]

    def _bzl_source(self, label: Label, requested_by: str | None) -> SourceFile:
        if not label.name.endswith(".bzl"):
            raise PybuildError(f"cannot load '{label}': only .bzl files can be loaded", requested_by)
        path = self.workspace.repository_root(label.repo) / label.package / label.name
        if not path.is_file():
            raise PybuildError(f"cannot load '{label}': file {path} does not exist", requested_by)
        display = str(label) if label.repo == BUILTINS_REPO else self.workspace.display_path(path)
        return SourceFile(path, display, label)

    def _eval_bzl(self, source: SourceFile) -> sl.FrozenModule:
        builtin = source.label.repo == BUILTINS_REPO
        module = self._new_module(self._builtin_host_names(source.label.name) if builtin else ())
        header = self._builtin_header(source.label.name) if builtin else self._bzl_header
        text = self._read(source)
        self._bzl_digests[source.label] = (str(source.path), text_digest(text))
        if header is not None:
            self._eval(module, header, source)
        self._eval(module, self._parse(source, text, _BZL_DIALECT), source)
        self._export_rules_and_providers(module, source, text)
        return module.freeze()

    def add_host_functions(self, functions: dict[str, Callable[..., Any]]) -> None:
        """More host functions for builtin files not loaded yet (analysis adds its own)."""
        self._host_functions.update(functions)

    def _builtin_host_names(self, name: str) -> tuple[str, ...]:
        return _BUILTIN_HOST_FUNCTIONS.get(name, ())

    def _builtin_header(self, name: str) -> sl.AstModule | None:
        source = _BUILTIN_HEADERS.get(name)
        return sl.parse(_BUILTIN_HEADER, source) if source else None

    def _export_rules_and_providers(self, module: sl.Module, source: SourceFile, text: str) -> None:
        """Tell the host the names rules and providers got, as Bazel names them on export."""
        names = sorted(set(_TOP_LEVEL_ASSIGNMENT.findall(text)))
        if not names:
            return
        candidates = ", ".join(f'"{n}": {n}' for n in names)
        snippet = f"pybuild_export({{{candidates}}})\n"
        if source.label != _PRELUDE:  # the prelude defines pybuild_export itself
            snippet = f'load("{_PRELUDE}", "pybuild_export")\n' + snippet
        self._eval(module, sl.parse(source.display, snippet), source)

    def eval_build_file(self, source: SourceFile, text: str | None = None) -> None:
        """Evaluate a BUILD file; `text` is its content when the caller has read it already."""
        module = self._new_module()
        self._eval(module, self._build_header, source)
        self._eval(module, self._parse(source, self._read(source) if text is None else text, _BUILD_DIALECT), source)

    def loaded_bzl_files(self, file: Label) -> list[tuple[Label, str, str]]:
        """(label, path, digest) of every .bzl file `file` loaded, directly or not, except pybuild's own."""
        seen: dict[Label, None] = {}
        pending = list(self._direct_loads.get(file, ()))
        while pending:
            label = pending.pop()
            if label not in seen and label.repo != BUILTINS_REPO:
                seen[label] = None
                pending.extend(self._direct_loads.get(label, ()))
        return [(label, *self._bzl_digests[label]) for label in sorted(seen)]

    def eval_driver(self, text: str, functions: dict[str, Callable[..., Any]]) -> None:
        """Evaluate a module generated by pybuild (the analysis driver), loading from any repository. Messages
        leave it out of call chains: its lines (one per rule and chunk of targets) tell a user nothing."""
        source = SourceFile(Path(_DRIVER), _DRIVER, Label("", "", _DRIVER))
        module = sl.Module()
        for name, function in functions.items():
            module.add_callable(name, self._callable(name, function))
        self._eval(module, self._parse(source, text, _BZL_DIALECT), source)

    def eval_plain_file(
        self, source: SourceFile, functions: dict[str, Callable[..., Any]], header: str | None = None
    ) -> None:
        """Evaluate a file that loads nothing (MODULE.bazel) with the given host functions.

        `header` is Starlark (functions allowed) evaluated first, for API that cannot be written in Python.
        """
        module = sl.Module()
        for name, function in functions.items():
            module.add_callable(name, self._callable(name, function))
        if header is not None:
            self._eval(module, sl.parse(_BUILTIN_HEADER, header, _BZL_DIALECT), source)
        self._eval(module, self._parse(source, self._read(source), _BUILD_DIALECT), source)

    def _read(self, source: SourceFile) -> str:
        try:
            return source.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PybuildError(f"cannot read {source.display}: {error}") from None

    def _parse(self, source: SourceFile, text: str, dialect: sl.Dialect) -> sl.AstModule:
        try:
            return sl.parse(source.display, text, dialect)
        except sl.StarlarkError as error:
            raise _translate(_located_parse_error(source.display, text, dialect, error), None) from None

    def _eval(self, module: sl.Module, ast: sl.AstModule, source: SourceFile) -> None:
        loader = sl.FileLoader(lambda module_id: self._load_from(source, module_id))
        self._pending = None
        try:
            sl.eval(module, ast, GLOBALS, loader)
        except sl.StarlarkError as error:
            pending, self._pending = self._pending, None
            raise _translate(error, pending) from None

    def _load_from(self, source: SourceFile, module_id: str) -> sl.FrozenModule:
        try:
            label = parse_label(module_id, repo=source.label.repo, package=source.label.package)
            module = self.load(label)
            self._direct_loads.setdefault(source.label, []).append(label)
            return module
        except PybuildError as error:
            self._pending = error
            raise


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _binding_error(name: str, signature: inspect.Signature, args: Any, kwargs: dict[str, Any]) -> PybuildError | None:
    """A bad call of a host function is the user's mistake: say so without Python's internal names."""
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        return PybuildError(f"{name}(): {error}")
    return None


def _located_parse_error(display: str, text: str, dialect: sl.Dialect, error: sl.StarlarkError) -> sl.StarlarkError:
    """starlark-rust places an error at the end of the file (an unclosed bracket) at 1:1 when the file ends
    with a newline; without the trailing whitespace it points at the last line instead."""
    if ":1:1\n" not in str(error) or text == text.rstrip():
        return error
    try:
        sl.parse(display, text.rstrip(), dialect)
    except sl.StarlarkError as located:
        return located
    return error


def _is_builtin(location: str) -> bool:
    return location.startswith(_BUILTIN_DISPLAYS)


def _translate(error: sl.StarlarkError, pending: PybuildError | None) -> PybuildError:
    """One paragraph from starlark-rust's rendered error: location, message, and the call chain."""
    text = str(error)
    frames = [frame for frame in frame_locations(text) if not _is_builtin(frame)]
    locations = [f"{file}:{line}:{column}" for file, line, column in _LOCATION.findall(text)]
    where = locations[0] if locations else None
    if where is None or _is_builtin(where):
        # An error inside pybuild's Starlark (e.g. rule() rejecting its arguments): blame the caller.
        where = frames[-1] if frames else where
    if pending is not None:
        if pending.where is None:
            pending.where = where
        return pending
    return PybuildError(_message_of(text, frames, where), where)


def _message_of(text: str, frames: list[str], where: str | None) -> str:
    message = next((line[len("error: ") :] for line in text.splitlines() if line.startswith("error: ")), text)
    # The innermost frame is the failing call itself when a function (like fail()) raised the error;
    # for an operator error it is the caller, which the message must still name.
    if frames and where is not None and (where == frames[-1] or where.startswith(frames[-1] + ":")):
        frames = frames[:-1]
    if frames:
        message += f" (called from {' -> '.join(frames)})"
    return message
