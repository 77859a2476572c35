"""One command at a time per workspace: the output tree and the cache have a single writer."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from pybuild.errors import PybuildError


class LockHeldError(PybuildError):
    """Another pybuild holds the workspace and --noblock_for_lock was given."""

    exit_code = 9  # Bazel's exit code when the lock is held and blocking was refused


@contextlib.contextmanager
def workspace_lock(output_base: Path, block: bool) -> Iterator[None]:
    output_base.mkdir(parents=True, exist_ok=True)
    path = output_base / "lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            if not block:
                raise LockHeldError(
                    f"another pybuild command ({holder}) is running in this workspace; "
                    "not waiting because of --noblock_for_lock"
                ) from None
            print(
                f"INFO: another pybuild command ({holder}) is running in this workspace; waiting for it...",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
        handle.flush()
        yield


def _holder(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown process"
