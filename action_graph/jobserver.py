"""A GNU make jobserver for the processes of a local build or of a remote worker, as Cargo gives one to rustc.

Without one, each rustc makes its own with 32 tokens and runs up to that many LLVM threads: two at once on
two cores then compete with a few dozen threads, a pipelined front end among them. With this one, the
running processes and every extra thread they start share `jobs` tokens. A pipe holds the tokens (each a
byte); a running process holds one, the first one implicitly, as make's first job does. The scheduler of a
local build asks for tokens (`request`) and counts them itself; the worker's slots, a thread each, hold one
for as long as their process runs (`holding`).

A process killed while it holds tokens takes them with it. A build then has fewer for its rest, as with
make; a worker, which lives longer, puts them back whenever none of its processes runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sys
import termios
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

TOKEN = b"|"
_RECHECK_SECONDS = 0.05  # how often a slot waiting for a token looks whether it can run without one


class Jobserver:
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._read, self._write = os.pipe()  # not inherited, except by the actions given `fds`
        os.write(self._write, TOKEN * (jobs - 1))
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobserver")
        self._requested: Future[bytes] | None = None
        # For `holding`: the pipe opened again, non-blocking for this process alone (a flag on the pipe's own
        # descriptor would make rustc's reads fail; Linux's /proc opens it so), the processes that hold or
        # wait for a token, and the tokens taken for them.
        self._own_read: int | None = None
        self._lock = threading.Lock()
        self._processes = 0
        self._held: list[bytes] = []

    @property
    def fds(self) -> tuple[int, int]:
        return self._read, self._write

    @property
    def environment(self) -> dict[str, str]:
        """What tells rustc (and make, and cc) where the tokens are. `--jobserver-fds` for older readers."""
        fds = f"{self._read},{self._write}"
        return {"CARGO_MAKEFLAGS": f"-j --jobserver-fds={fds} --jobserver-auth={fds}"}

    def request(self) -> Future[bytes]:
        """A token, once one is free: it is read on a thread of its own, so the caller can wait for other
        things too. One request at a time."""
        self._requested = self._reader.submit(os.read, self._read, 1)
        return self._requested

    def release(self, token: bytes) -> None:
        os.write(self._write, token)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold a token (or the implicit one) while the caller's process runs; wait until there is one."""
        with self._lock:
            self._processes += 1
            if self._own_read is None:
                self._own_read = os.open(f"/proc/self/fd/{self._read}", os.O_RDONLY | os.O_NONBLOCK)
        try:
            while not self._covered():
                if select.select([self._own_read], [], [], _RECHECK_SECONDS)[0]:
                    with contextlib.suppress(BlockingIOError), self._lock:
                        self._held.append(os.read(self._own_read, 1))
            yield
        finally:
            with self._lock:
                self._processes -= 1
                self._give_back_spares()
                if self._processes == 0:
                    self._restock()

    def _covered(self) -> bool:
        """Whether every process counted has a token: one of those held, or the implicit one."""
        with self._lock:
            covered = len(self._held) >= self._processes - 1
            self._give_back_spares()
            return covered

    def _give_back_spares(self) -> None:
        while len(self._held) > max(0, self._processes - 1):
            os.write(self._write, self._held.pop())

    def _restock(self) -> None:
        """With no process running, every token but the implicit one belongs in the pipe: put back lost ones."""
        available = self.available()
        if available < self.jobs - 1:
            os.write(self._write, TOKEN * (self.jobs - 1 - available))

    def available(self) -> int:
        """The tokens in the pipe now."""
        return int.from_bytes(fcntl.ioctl(self._read, termios.FIONREAD, bytes(4)), sys.byteorder)

    def __enter__(self) -> Jobserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop; a request still waiting gets a token written for it and is then forgotten."""
        if self._requested is not None and not self._requested.done():
            os.write(self._write, TOKEN)
        self._reader.shutdown(wait=True)
        for fd in (self._own_read, self._read, self._write):
            if fd is not None:
                os.close(fd)


def popen_settings(jobserver: Jobserver | None, env: dict[str, str]) -> dict[str, Any]:
    """subprocess.Popen's `env` and `pass_fds` for a process that gets the jobserver, if there is one. Not
    part of the action that starts it: how many threads a compiler uses changes nothing it writes."""
    if jobserver is None:
        return {"env": env}
    return {"env": {**env, **jobserver.environment}, "pass_fds": jobserver.fds}
