"""`.pybuildrc` in the workspace root, in Bazel's rc syntax: `build --jobs=4`, `common --verbose_failures`."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import UsageError

RC_NAME = ".pybuildrc"
# Commands that take the options of another command too, as in Bazel.
_INHERITS = {"test": ("build",), "run": ("build",), "aquery": ("build",), "info": ("build",)}


@dataclass(frozen=True)
class RcLine:
    command: str
    args: tuple[str, ...]
    where: str  # ".pybuildrc:3"


def read_rc(root: Path) -> list[RcLine]:
    path = root / RC_NAME
    if not path.is_file():
        return []
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{RC_NAME}:{number}"
        try:
            words = shlex.split(text, comments=True)
        except ValueError as error:
            raise UsageError(f"cannot parse line: {error}", where) from None
        if words:
            if words[0].startswith("-"):
                raise UsageError(f"line must start with a command (like 'build' or 'common'), got '{words[0]}'", where)
            lines.append(RcLine(words[0], tuple(words[1:]), where))
    return lines


def options_for(command: str, lines: list[RcLine]) -> list[RcLine]:
    """The rc lines that apply to `command`, in the order Bazel applies them."""
    wanted = ("common", *_INHERITS.get(command, ()), command)
    return [line for name in wanted for line in lines if line.command == name]
