"""The worker's local copy of CAS blobs, hard-linked into each action's input root.

A blob is fetched once per worker: the ~370 MB toolchain arrives with the first rustc action and every
later action links it in. Entries are read-only (so an action cannot write through a link into the
cache) and come in two variants, since hard links share one mode: `<hash>_<size>` and `<hash>_<size>.x`
for executables. Every entry is written to a temporary name and renamed, so several worker processes
may share one cache directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from action_graph.remote.cas import CasClient
from action_graph.remote.protos import digest_key, re_pb2

_READ_ONLY = 0o444
_EXECUTABLE = 0o555
_LOCKED_BYTES = 1024 * 1024


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._fetching: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def path(self, digest: re_pb2.Digest, executable: bool = False) -> Path:
        name = f"{digest.hash}_{digest.size_bytes}{'.x' if executable else ''}"
        return self.root / digest.hash[:2] / name

    def ensure(self, wanted: Iterable[tuple[re_pb2.Digest, bool]], cas: CasClient) -> None:
        """Every (digest, executable) present in the cache, fetching what is missing; a blob that
        several actions need at once is fetched by one of them."""
        missing = {self._name(d, x): (d, x) for d, x in wanted if not self.path(d, x).exists()}
        mine, theirs = self._claim(missing)
        try:
            self._fill(mine, cas)
        finally:
            with self._lock:
                for name in mine:
                    self._fetching.pop(name).set()
        for event in theirs:
            event.wait()
        retry = [item for name, item in missing.items() if name not in mine and not self.path(*item).exists()]
        self._fill({self._name(d, x): (d, x) for d, x in retry}, cas)

    def read(self, digests: Iterable[re_pb2.Digest], cas: CasClient) -> dict[str, bytes]:
        """Contents of small blobs (Directory, Action, Command messages) by `hash/size`, cached."""
        unique = {digest_key(d): d for d in digests}
        self.ensure(((d, False) for d in unique.values()), cas)
        return {key: self.path(d).read_bytes() for key, d in unique.items()}

    def adopt(self, path: Path, digest: re_pb2.Digest, executable: bool) -> None:
        """Take a file an action wrote into the cache (a hard link), so later actions need no fetch."""
        destination = self.path(digest, executable)
        if destination.exists():
            return
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".adopt.{uuid.uuid4().hex}.tmp")
        try:
            os.link(path, temp)
        except OSError:
            shutil.copyfile(path, temp)
        os.chmod(temp, _EXECUTABLE if executable else _READ_ONLY)
        os.replace(temp, destination)

    def _name(self, digest: re_pb2.Digest, executable: bool) -> str:
        return self.path(digest, executable).name

    def _claim(self, missing: dict[str, tuple[re_pb2.Digest, bool]]):
        mine: dict[str, tuple[re_pb2.Digest, bool]] = {}
        theirs: list[threading.Event] = []
        with self._lock:
            for name, item in missing.items():
                if name in self._fetching:
                    theirs.append(self._fetching[name])
                else:
                    self._fetching[name] = threading.Event()
                    mine[name] = item
        return mine, theirs

    def _fill(self, items: dict[str, tuple[re_pb2.Digest, bool]], cas: CasClient) -> None:
        """Fetch blobs. A large one is fetched under a file lock, so workers sharing this cache (the
        local cluster's) fetch the toolchain once between them."""
        small = {name: item for name, item in items.items() if item[0].size_bytes < _LOCKED_BYTES}
        self._fetch(small, cas)
        for name, (digest, executable) in items.items():
            if name in small:
                continue
            with self._file_lock(digest):
                if not self.path(digest, executable).exists():
                    self._fetch({name: (digest, executable)}, cas)

    @contextlib.contextmanager
    def _file_lock(self, digest: re_pb2.Digest) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        with open(locks / digest.hash, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _fetch(self, items: dict[str, tuple[re_pb2.Digest, bool]], cas: CasClient) -> None:
        """Fetch blobs; a blob already cached in the other variant is copied instead of fetched."""
        fetch: dict[str, tuple[re_pb2.Digest, Path, int]] = {}
        for digest, executable in items.values():
            other = self.path(digest, not executable)
            target = self.path(digest, executable)
            mode = _EXECUTABLE if executable else _READ_ONLY
            if other.exists():
                self._copy(other, target, mode)
            else:
                fetch.setdefault(digest_key(digest), (digest, target, mode))
        cas.fetch_files(list(fetch.values()))
        for digest, executable in items.values():  # both variants of one blob in a single request
            target = self.path(digest, executable)
            if not target.exists():
                self._copy(self.path(digest, not executable), target, _EXECUTABLE if executable else _READ_ONLY)

    def _copy(self, source: Path, target: Path, mode: int) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".copy.", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(source, temp)
        os.chmod(temp, mode)
        os.replace(temp, target)
