"""A GNU make jobserver for the actions of a local build, as Cargo gives one to rustc.

Without one, each rustc makes its own with 32 tokens and runs up to that many LLVM threads: two at once on
two cores then compete with a few dozen threads, a pipelined front end among them. With this one, the
running actions and every extra thread they start share `jobs` tokens. A pipe holds the tokens (each a
byte); an action in a slot holds one, the first one implicitly, as make's first job does (see Scheduler).

A process killed while it holds tokens takes them with it; the rest of that build has fewer, as with make.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

TOKEN = b"|"


class Jobserver:
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._read, self._write = os.pipe()  # not inherited, except by the actions given `fds`
        os.write(self._write, TOKEN * (jobs - 1))
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobserver")
        self._requested: Future[bytes] | None = None

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

    def __enter__(self) -> Jobserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop; a request still waiting gets a token written for it and is then forgotten."""
        if self._requested is not None and not self._requested.done():
            os.write(self._write, TOKEN)
        self._reader.shutdown(wait=True)
        os.close(self._read)
        os.close(self._write)
