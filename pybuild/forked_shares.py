"""Work shared out to forked copies of this process, each handing its result back pickled through a pipe.

Loading evaluates one BUILD file after another, and analysis one rule implementation after another, on one
core: the GIL (and starlark-pyo3, which holds it) leaves threads no way around that. A fork, unlike a new
interpreter, starts with everything this process has loaded, the .bzl modules included. Callers run in a
forked copy only what they can also do here: a share whose process fails gives None, and the caller does that
share's work itself.

A copy's stderr (starlark-rust's print() writes there) is held back and handed over too: the caller writes it
out when it takes the copies' results, so that messages come in the order of the shares, and not twice when
the caller redoes a share.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any


def can_fork() -> bool:
    """Whether this process may fork copies: not while other threads run, since a fork copies this thread
    alone and not the locks the others may hold."""
    return threading.active_count() == 1


class ForkedShares:
    """`function(share)` for each share, each in a forked process of its own, started at once."""

    def __init__(self, function: Callable[[Any], Any], shares: list[Any]) -> None:
        self._children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        self._stderr: list[bytes] = []  # what each copy that handed over a result wrote to stderr
        try:
            for share in shares:
                self._children.append(_fork(function, share))
        except OSError:
            self.stop()
            raise

    def results(self) -> list[Any | None]:
        """Each share's result in order, once its process has ended; None where it failed."""
        handed = [_result(pid, pipe) for pid, pipe in self._children]
        self._children = []
        self._stderr = [stderr for result, stderr in handed if result is not None]
        return [result for result, _ in handed]

    def write_stderr(self) -> None:
        """Write out, in the order of the shares, what the copies that handed over a result wrote to stderr."""
        write_stderr(b"".join(self._stderr))

    def stop(self) -> None:
        """Kill the processes still running (the caller failed) and reap them."""
        for pid, pipe in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.close(pipe)
            os.waitpid(pid, 0)
        self._children = []


@contextlib.contextmanager
def forked_shares(function: Callable[[Any], Any], shares: list[Any]) -> Iterator[ForkedShares]:
    """ForkedShares, stopped if the caller's block raises before it took the results."""
    running = ForkedShares(function, shares)
    try:
        yield running
    finally:
        running.stop()


class HeldStderr:
    """What a block wrote to stderr, once it has ended."""

    output: bytes = b""


@contextlib.contextmanager
def stderr_held() -> Iterator[HeldStderr]:
    """Hold back what this process writes to its stderr descriptor in the block (print() from Starlark too)."""
    held = HeldStderr()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as file:
        os.dup2(file.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            file.seek(0)
            held.output = file.read()


def write_stderr(output: bytes) -> None:
    sys.stderr.flush()
    while output:
        output = output[os.write(2, output) :]


def _fork(function: Callable[[Any], Any], share: Any) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: do the share, write its result, and leave without running this process's exit code
        code = 1
        try:
            os.close(read)
            with stderr_held() as stderr:
                result = function(share)
            data = pickle.dumps((result, stderr.output), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write, "wb") as pipe:
                pipe.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _result(pid: int, pipe: int) -> tuple[Any | None, bytes]:
    with os.fdopen(pipe, "rb") as reader:
        data = reader.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None, b""
    try:
        return pickle.loads(data)
    except Exception:  # a result cut short: the caller does the share itself
        return None, b""
