"""Errors that reach the user as one clear paragraph instead of a traceback."""

from __future__ import annotations


class PybuildError(Exception):
    """A user-facing error. `where` names the culprit: a file:line:col, a target or a flag."""

    exit_code = 1

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def render(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"ERROR: {prefix}{self.message}"


class LabelError(PybuildError):
    """A label or target pattern that does not follow Bazel's grammar."""


class UsageError(PybuildError):
    """A bad command line: unknown flag, bad flag value, missing argument."""

    exit_code = 2


class NoTestsError(PybuildError):
    """`test` found nothing to run (Bazel's exit code 4)."""

    exit_code = 4
