"""Content digests of files and the cache key of an action."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable

from action_graph.action import Action

_CHUNK = 1 << 20


class FileDigests:
    """SHA-256 of files, remembered by (path, size, mtime) so unchanged files are hashed once."""

    def __init__(self, root: str = ".") -> None:
        self.root = root
        self._cache: dict[str, tuple] = {}  # path -> (size, mtime_ns, ctime_ns, inode, digest)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def digest(self, path: str) -> str:
        full = os.path.join(self.root, path)
        if os.path.isdir(full):
            return self._tree_digest(path)
        stat = os.stat(full)
        # ctime and inode too, as Bazel: an edit that keeps size and restores mtime still changes ctime.
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        cached = self._cache.get(path)
        if cached and list(cached[:4]) == identity:
            return cached[4]
        with self._hashing(path):
            cached = self._cache.get(path)  # another thread may have just hashed it
            if cached and list(cached[:4]) == identity:
                return cached[4]
            digest = hash_file(full)
            self._cache[path] = (*identity, digest)
        return digest

    def _hashing(self, path: str) -> threading.Lock:
        """One lock per path, so parallel actions sharing a big input (the toolchain) hash it once."""
        with self._locks_lock:
            return self._locks.setdefault(path, threading.Lock())

    def _tree_digest(self, path: str) -> str:
        """A directory output (like a build script's OUT_DIR) is known by its files and their digests."""
        names = sorted(os.listdir(os.path.join(self.root, path)))
        entries = [(name, self.digest(os.path.join(path, name))) for name in names]
        return hashlib.sha256(json.dumps(entries).encode("utf-8")).hexdigest()

    def load(self, path: str) -> None:
        """Take over digests remembered by an earlier build (stale ones are detected by size and mtime)."""
        try:
            with open(path, encoding="utf-8") as handle:
                self._cache.update({k: tuple(v) for k, v in json.load(handle).items()})
        except (OSError, ValueError):
            pass

    def save(self, path: str) -> None:
        temp = f"{path}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(self._cache, handle)
        os.replace(temp, path)


def hash_file(path: str) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def action_key(action: Action, input_digest: Callable[[str], str | None]) -> str:
    """Digest of everything that decides an action's outputs: argv, env, inputs (with their digests
    where `input_digest` knows them, which includes the toolchain's tools), outputs and file contents."""
    record = {
        "argv": list(action.argv),
        "env": list(action.env),
        "inputs": [(path, input_digest(path)) for path in sorted(action.inputs)],
        "outputs": sorted(action.outputs),
        "content": action.content,
        "is_executable": action.is_executable,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
