"""glob(): Bazel's file patterns over one package, never crossing into a subpackage."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pybuild.errors import PybuildError
from pybuild.workspace import BUILD_FILE_NAMES

# Directories that never hold sources: version control and pybuild's own outputs.
IGNORED_DIR_NAMES = frozenset({".git", ".hg", ".svn"})


def is_ignored_dir(name: str) -> bool:
    return name in IGNORED_DIR_NAMES or name.startswith("pybuild-")


def is_package_dir(path: Path | str) -> bool:
    # os.path, not pathlib: this runs for every directory of the workspace.
    return any(os.path.isfile(os.path.join(path, name)) for name in BUILD_FILE_NAMES)


def package_files(package_dir: Path | str) -> list[str]:
    """Every file of the package (relative, '/'-separated), skipping subpackages and ignored dirs.

    Symlinked directories are followed, as Bazel's glob does (the toolchain's sysroot is one).
    os.scandir and plain strings, not os.walk and pathlib: this runs once per package, and a
    subdirectory's own listing tells whether it is a subpackage, so that costs no stat either.
    """
    files: list[str] = []
    pending = [(os.fspath(package_dir), "")]
    while pending:
        directory, prefix = pending.pop()
        entries = scan_dir(directory)
        if prefix and _has_build_file(entries):
            continue  # a subpackage: its files belong to it
        for entry in entries:
            if not entry.is_dir:
                files.append(prefix + entry.name)
            elif not is_ignored_dir(entry.name):
                pending.append((entry.path, f"{prefix}{entry.name}/"))
    return sorted(files)


class Entry(NamedTuple):
    name: str
    path: str
    is_dir: bool  # following symlinks; False when the type cannot be read, as os.walk counts it
    is_link: bool


def _has_build_file(entries: list[Entry]) -> bool:
    return any(entry.name in BUILD_FILE_NAMES and os.path.isfile(entry.path) for entry in entries)


def scan_dir(directory: str) -> list[Entry]:
    """The entries of a directory, typed from the listing itself (no stat); nothing if it is unreadable."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return []
    new = tuple.__new__  # Entry(...) runs a Python-level __new__: this is one per file of the workspace
    try:
        return [new(Entry, (e.name, e.path, e.is_dir(), e.is_symlink())) for e in entries]
    except OSError:
        return [Entry(e.name, e.path, _is_dir(e), e.is_symlink()) for e in entries]


@dataclass
class PackageWalk:
    """What walk_packages saw below a directory."""

    packages: list[str]  # depth first, in sorted order
    listings: dict[str, list[str]]  # package -> its files, as package_files would list them
    directories: dict[str, str | None]  # every directory listed -> the package it belongs to, if any


def walk_packages(root: str, base: str, ignored: set[str]) -> PackageWalk:
    """Every package at or below `base`, and, from the same listings, the files of each package.

    Symlinked directories and `ignored` ones (.bazelignore) are not entered; package_files does enter
    them, so a package holding one gets no listing here (nor one whose subpackage has an odd BUILD file).
    """
    found: list[str] = []
    listings: dict[str, list[str]] = {}
    directories: dict[str, str | None] = {}
    incomplete: set[str] = set()
    pending: list[tuple[str, str | None, str]] = [(base, None, "")]  # directory, its package, path in it
    while pending:
        relative, owner, prefix = pending.pop()
        entries = scan_dir(os.path.join(root, relative))
        builds = [e for e in entries if e.name in BUILD_FILE_NAMES and not e.is_dir]
        if builds:
            if owner is not None and any(e.is_link or not os.path.isfile(e.path) for e in builds):
                incomplete.add(owner)  # package_files might not see a subpackage here
            found.append(relative)
            owner, prefix = relative, ""
            listings[owner] = []
        directories[relative] = owner
        children = []
        for entry in entries:
            if not entry.is_dir:
                if owner is not None:
                    listings[owner].append(prefix + entry.name)
            elif not is_ignored_dir(entry.name):
                child = f"{relative}/{entry.name}" if relative else entry.name
                if not (entry.is_link or child in ignored):
                    children.append((child, owner, f"{prefix}{entry.name}/"))
                elif owner is not None:
                    incomplete.add(owner)
        pending.extend(sorted(children, reverse=True))
    complete = {package: sorted(files) for package, files in listings.items() if package not in incomplete}
    return PackageWalk(found, complete, directories)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


@functools.lru_cache(maxsize=4096)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            # Zero or more whole directories; at the end it also matches the files below.
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


def _segment_regex(segment: str) -> str:
    out = []
    for char in segment:
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def validate_pattern(pattern: str) -> None:
    problem = None
    if not pattern:
        problem = "empty pattern"
    elif pattern.startswith("/"):
        problem = "pattern must be relative to the package"
    elif any(segment in ("", ".", "..") for segment in pattern.split("/")):
        problem = "pattern segments may not be empty, '.' or '..'"
    elif any("**" in segment and segment != "**" for segment in pattern.split("/")):
        problem = "'**' must be a whole path segment"
    if problem:
        raise PybuildError(f"glob pattern '{pattern}': {problem}")


def glob(files: list[str], include: list[str], exclude: list[str], allow_empty: bool) -> list[str]:
    """Match `files` (from package_files) like Bazel: sorted, each include pattern checked for matches."""
    for pattern in [*include, *exclude]:
        validate_pattern(pattern)
    excluded = [_pattern_regex(p) for p in exclude]
    matched: set[str] = set()
    for pattern in include:
        regex = _pattern_regex(pattern)
        hits = {f for f in files if regex.match(f)}
        if not hits and not allow_empty:
            raise PybuildError(f"glob pattern '{pattern}' didn't match anything, but allow_empty is False")
        matched |= hits
    result = sorted(f for f in matched if not any(r.match(f) for r in excluded))
    if not result and include and not allow_empty:
        raise PybuildError(f"all files matched by glob({include}) are excluded, but allow_empty is False")
    return result
