"""Bazel labels (`@repo//pkg:name`) and target patterns (`//pkg/...`, `-//pkg:x`).

The grammar and validation rules follow Bazel's `LabelParser`, `LabelValidator` and
`RepositoryName` so that BUILD files and command lines written for Bazel mean the same here.
Parsing is pure string work: whether a package exists is the resolver's business.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from pybuild.errors import LabelError

# Bazel allows every printable ASCII character in package and target names except ':' (it
# separates package from target) and '\' (a path separator on Windows).
_PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F)) - {":", "\\"}
_REPO_CHARS = frozenset(string.ascii_letters + string.digits + "_.~+-")
_REPO_CHARS_HELP = "A-Z, a-z, 0-9, '_', '.', '~', '+' and '-'"
_COLON_HINT = " (a label has one ':', between package and target)"

# Wildcard target names in patterns. They win over a real target of the same name, as in Bazel.
_WILDCARDS = {"all": "rules", "*": "all_targets", "all-targets": "all_targets"}
_RECURSIVE = "..."


class Label(NamedTuple):
    """A fully resolved target name. Field order makes sorting go by (repo, package, name).

    A NamedTuple rather than a dataclass: labels are hashed millions of times while loading a large
    graph, and tuple hashing and comparison run in C.
    """

    repo: str  # without '@'; "" is the main repository
    package: str  # "a/b", or "" for the root package
    name: str  # may contain '/', e.g. "src/lib.rs"

    def __str__(self) -> str:
        # Always the long form with ':', like `bazel query`, so one target has one spelling.
        return f"{self.package_id}:{self.name}"

    @property
    def package_id(self) -> str:
        prefix = f"@{self.repo}" if self.repo else ""
        return f"{prefix}//{self.package}"

    def sibling(self, name: str) -> Label:
        """The target `name` in the same package (e.g. an output next to its rule)."""
        _raise_if(_target_error(name), "target name", name)
        return Label(self.repo, self.package, name)


@dataclass(frozen=True)
class TargetPattern:
    """One command-line target pattern, parsed but not yet resolved against the workspace."""

    repo: str
    package: str  # the package, or the base directory of a recursive pattern ("" = root)
    kind: str  # "single", "rules" (:all) or "all_targets" (:*, :all-targets)
    recursive: bool  # a `/...` pattern: every package at or below `package`
    name: str | None  # the target name when kind == "single"
    negative: bool  # a leading '-' subtracts these targets
    text: str  # as the user wrote it, for error messages
    fallback: Label | None  # the second reading of a relative `foo/bar`, tried if the first fails

    def matches_package(self, package: str) -> bool:
        if not self.recursive:
            return package == self.package
        # Compare whole segments so that base "foo" does not match package "foobar".
        return not self.package or package == self.package or package.startswith(self.package + "/")


# ---------------------------------------------------------------------------------------------
# Labels


@functools.lru_cache(maxsize=1 << 16)
def parse_label(text: str, *, repo: str = "", package: str | None = None) -> Label:
    """Parse `text` as written in a BUILD file of package `package` in repository `repo`.

    `repo`/`package` give the context for relative labels (`:x`, `x`, `dir/file.rs`) and the
    repository for `//x`; `package=None` means there is no context and relative labels fail.
    """
    if not text:
        _fail("label", text, "a label may not be empty")
    if text.startswith("@"):
        own_repo, body = _split_repo(text, text, "label")
        if body is None:
            return Label(own_repo, "", own_repo)  # `@repo` is short for `@repo//:repo`
        return Label(own_repo, *_split_package_and_name(body, text, "label"))
    if text.startswith("//"):
        # A label is relative to the repository of the file containing it, as in Bazel.
        return Label(repo, *_split_package_and_name(text[2:], text, "label"))
    return _relative_label(text, repo, package)


def _relative_label(text: str, repo: str, package: str | None) -> Label:
    _reject_single_slash(text, text, "label")
    if package is None:
        raise LabelError(f"relative label '{text}' needs a package context")
    prefix, colon, name = text.partition(":")
    if colon and prefix:
        # Bazel refuses `pkg:name` in BUILD files: it is unclear what `pkg` is relative to.
        _fail("label", text, f"a package name must start with '//' (did you mean '//{text}'?)")
    if not colon:
        name = text  # `dir/file.rs` is a file target in this package, not a package
    _raise_if(_target_error(name), "label", text)
    return Label(repo, package, name)


def _split_package_and_name(body: str, text: str, what: str) -> tuple[str, str]:
    """Split `pkg:name` or `pkg` (short for `pkg:<last segment of pkg>`) and validate both."""
    package, colon, name = body.partition(":")
    if not colon:
        if not package:
            _fail(what, text, "the root package has no default target name; add ':name'")
        name = package.rsplit("/", 1)[-1]
    _raise_if(_package_error(package, name), what, text)
    _raise_if(_target_error(name), what, text)
    return package, name


def _split_repo(body: str, text: str, what: str) -> tuple[str, str | None]:
    """Split `@repo//rest` or `@@repo//rest` into (repo, rest); rest is None for bare `@repo`."""
    # '@@' marks a canonical name; without repo mappings both spellings name the same repo.
    body = body[2:] if body.startswith("@@") else body[1:]
    repo, slashes, rest = body.partition("//")
    # `@//pkg` is the main repository, even when written inside another repository.
    _raise_if(_repo_error(repo, allow_main=bool(slashes)), what, text)
    return repo, (rest if slashes else None)


def _reject_single_slash(body: str, text: str, what: str) -> None:
    # '/abs' is neither absolute ('//') nor a sensible relative name; most likely a typo.
    if body.startswith("/") and not body.startswith("//"):
        _fail(what, text, f"it starts with a single '/' (did you mean '/{body}'?)")


# ---------------------------------------------------------------------------------------------
# Target patterns


def parse_target_pattern(text: str, *, working_package: str = "") -> TargetPattern:
    """Parse a command-line pattern; relative ones resolve against `working_package`.

    `working_package` is the current directory relative to the workspace root ("" at the root).
    """
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if not body:
        _fail("target pattern", text, "a target pattern may not be empty")
    if body.startswith("@"):
        repo, rest = _split_repo(body, text, "target pattern")
        if rest is None:
            return _single(text, negative, Label(repo, "", repo))
        return _absolute_pattern(text, negative, repo, rest)
    if body.startswith("//"):
        return _absolute_pattern(text, negative, "", body[2:])
    return _relative_pattern(text, negative, body, working_package)


def _absolute_pattern(text: str, negative: bool, repo: str, body: str) -> TargetPattern:
    path, colon, target = body.partition(":")
    if _is_recursive(path):
        return _recursive(text, negative, repo, path, target if colon else None)
    if colon and target in _WILDCARDS:
        _raise_if(_package_error(path, ""), "target pattern", text)
        return TargetPattern(repo, path, _WILDCARDS[target], False, None, negative, text, None)
    package, name = _split_package_and_name(body, text, "target pattern")
    return _single(text, negative, Label(repo, package, name))


def _is_recursive(path: str) -> bool:
    return path == _RECURSIVE or path.endswith("/" + _RECURSIVE)


def _recursive(text: str, negative: bool, repo: str, path: str, target: str | None) -> TargetPattern:
    # `//p/...` alone means `//p/...:all`; a plain target name after '...' means nothing.
    if target is not None and target not in _WILDCARDS:
        error = f"only ':all', ':*' or ':all-targets' may follow '...', not ':{target}'"
        _fail("target pattern", text, error)
    base = path.removesuffix(_RECURSIVE).removesuffix("/")
    _raise_if(_package_error(base, ""), "target pattern", text)
    kind = "rules" if target is None else _WILDCARDS[target]
    return TargetPattern(repo, base, kind, True, None, negative, text, None)


def _relative_pattern(text: str, negative: bool, body: str, working_package: str) -> TargetPattern:
    _reject_single_slash(body, text, "target pattern")
    path, colon, target = body.partition(":")
    path = _join_relative(path, working_package, text)
    if colon or _is_recursive(path):
        return _absolute_pattern(text, negative, "", f"{path}{colon}{target}")
    return _package_or_file(text, negative, path)


def _package_or_file(text: str, negative: bool, path: str) -> TargetPattern:
    # `foo/bar` is //wp/foo/bar:bar if that package exists, else the target //wp/foo:bar.
    # Only the resolver can tell, so it gets both readings.
    parent, _, name = path.rpartition("/")
    fallback = Label("", parent, name)
    try:
        package, name = _split_package_and_name(path, text, "target pattern")
    except LabelError:
        # Some file names are no valid package names (e.g. non-ASCII): then only one reading is left.
        if _package_error(parent, "") or _target_error(name):
            raise
        return _single(text, negative, fallback)
    return _single(text, negative, Label("", package, name), fallback)


def _join_relative(path: str, working_package: str, text: str) -> str:
    """Resolve `path` and its '.' and '..' segments against `working_package`, as a shell would."""
    if not path:
        return working_package
    segments = working_package.split("/") if working_package else []
    for segment in path.split("/"):
        if segment == "..":
            if not segments:
                _fail("target pattern", text, "'..' goes above the workspace root")
            segments.pop()
        elif segment != ".":
            segments.append(segment)  # empty segments stay, so that 'a//b' is still reported
    return "/".join(segments)


def _single(text: str, negative: bool, label: Label, fallback: Label | None = None) -> TargetPattern:
    return TargetPattern(label.repo, label.package, "single", False, label.name, negative, text, fallback)


# ---------------------------------------------------------------------------------------------
# Validation. Each check returns what is wrong, or None; the caller says which text it was.


def _repo_error(repo: str, *, allow_main: bool) -> str | None:
    if not repo:
        return None if allow_main else "the repository name is empty"
    bad = next((char for char in repo if char not in _REPO_CHARS), None)
    if bad is not None:
        return f"repository names may contain only {_REPO_CHARS_HELP}, not {_describe(bad)}"
    if repo in (".", ".."):
        return f"'{repo}' is not a valid repository name"
    if repo.startswith("~"):
        return "repository names may not start with '~' (shells expand it)"
    return None


def _package_error(package: str, name: str) -> str | None:
    if not package:
        return None  # the root package
    error = _path_error(package, "package", allow_non_ascii=False)
    # Bazel rejects every all-dots segment here ('.', '..', '...'): they would alias directories.
    error = error or _segment_error(package, "package", lambda segment: not segment.strip("."))
    if error and name and package.endswith("/" + name):
        error += f" (perhaps you meant ':{name}'?)"  # Bazel's hint for `//a/b.rs` vs `//a:b.rs`
    return error


def _target_error(name: str) -> str | None:
    if not name:
        return "the target name is empty"
    error = _path_error(name, "target", allow_non_ascii=True)
    # Target names are file paths relative to the package; '.' and '..' would escape or alias it.
    return error or _segment_error(name, "target", lambda segment: segment in (".", ".."))


def _segment_error(path: str, what: str, is_bad: Callable[[str], bool]) -> str | None:
    bad = next((segment for segment in path.split("/") if is_bad(segment)), None)
    return None if bad is None else f"{what} names may not contain a '{bad}' path segment"


# Names made only of these characters need no character-by-character check (the common case).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_./+-]*\Z")


def _path_error(path: str, what: str, *, allow_non_ascii: bool) -> str | None:
    """Checks shared by package and target names: characters and slashes."""
    for char in "" if _PLAIN_NAME.match(path) else path:
        # Bazel takes non-ASCII target names (they name files) but only ASCII package names.
        if char not in _PRINTABLE_ASCII and not (allow_non_ascii and ord(char) > 0x7F):
            return f"{what} names may not contain {_describe(char)}{_COLON_HINT if char == ':' else ''}"
    if path.startswith("/"):
        return f"{what} names may not start with '/'"
    if path.endswith("/"):
        return f"{what} names may not end with '/'"
    if "//" in path:
        return f"{what} names may not contain '//'"
    return None


def _describe(char: str) -> str:
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"the control character {char!r}"
    if ord(char) > 0x7F:
        return f"the non-ASCII character '{char}'"
    return f"'{char}'"


def _raise_if(error: str | None, what: str, text: str) -> None:
    if error is not None:
        _fail(what, text, error)


def _fail(what: str, text: str, error: str) -> NoReturn:
    raise LabelError(f"invalid {what} '{text}': {error}")
