"""glob(): Bazel's file patterns over one package, never crossing into a subpackage."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.workspace import BUILD_FILE_NAMES

# Directories that never hold sources: version control and pybuild's own outputs.
IGNORED_DIR_NAMES = frozenset({".git", ".hg", ".svn"})


def is_ignored_dir(name: str) -> bool:
    return name in IGNORED_DIR_NAMES or name.startswith("pybuild-")


def is_package_dir(path: Path | str) -> bool:
    # os.path, not pathlib: this runs for every directory of the workspace.
    return any(os.path.isfile(os.path.join(path, name)) for name in BUILD_FILE_NAMES)


def package_files(package_dir: Path) -> list[str]:
    """Every file of the package (relative, '/'-separated), skipping subpackages and ignored dirs."""
    files: list[str] = []
    # Symlinked directories are followed, as Bazel's glob does (the toolchain's sysroot is one).
    for directory, dirnames, filenames in os.walk(package_dir, followlinks=True):
        current = Path(directory)
        dirnames[:] = sorted(d for d in dirnames if not is_ignored_dir(d) and not is_package_dir(current / d))
        relative = current.relative_to(package_dir).as_posix()
        prefix = "" if relative == "." else relative + "/"
        files.extend(prefix + name for name in filenames)
    return sorted(files)


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
