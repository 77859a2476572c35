"""Content digests of files and the cache key of an action."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from stat import S_ISDIR

from action_graph.action import Action
from action_graph.fileutil import atomic_write_text

_CHUNK = 1 << 20

Identity = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def stat_identity(stat: os.stat_result) -> Identity:
    """What vouches for a file's content without reading it. ctime and inode too, as Bazel: an edit that keeps
    the size and restores the mtime still changes the ctime, and a replaced file has another inode."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def file_identity(path: str | os.PathLike[str]) -> Identity | None:
    """stat_identity of the file at `path`, None if there is none."""
    try:
        return stat_identity(os.stat(path))
    except OSError:
        return None


class MachineDigests:
    """Digests of files outside any workspace (the toolchain: ~250 MB, half a second of hashing), kept by real
    path for every build on this machine, so neither `pybuild clean` nor another checkout hashes them again.
    The same (size, mtime, ctime, inode) identity as FileDigests vouches for an entry."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: dict[str, tuple] | None = None  # read on first use: most builds hash nothing outside
        self._changed = False
        self._lock = threading.Lock()

    def get(self, real_path: str, identity: tuple) -> str | None:
        with self._lock:
            entry = self._loaded().get(real_path)
        return entry[4] if entry and tuple(entry[:4]) == identity else None

    def put(self, real_path: str, identity: tuple, digest: str) -> None:
        with self._lock:
            self._loaded()[real_path] = (*identity, digest)
            self._changed = True

    def save(self) -> None:
        if not self._changed:
            return
        with contextlib.suppress(OSError):  # an unwritable home costs hashing time later, nothing else
            atomic_write_text(Path(self.path), json.dumps(self._entries))

    def _loaded(self) -> dict[str, tuple]:
        if self._entries is None:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self._entries = {k: tuple(v) for k, v in json.load(handle).items()}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries


def machine_digests_path() -> str:
    """$XDG_CACHE_HOME/pybuild/digests.json (~/.cache/pybuild when XDG_CACHE_HOME is unset)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "pybuild", "digests.json")


class FileDigests:
    """SHA-256 of files, remembered by (path, size, mtime) so unchanged files are hashed once."""

    def __init__(self, root: str = ".", machine: MachineDigests | None = None) -> None:
        self.root = root
        self.machine = machine  # for inputs whose real path lies outside the workspace
        self._real_root = os.path.realpath(root)
        self._cache: dict[str, tuple] = {}  # path -> (size, mtime_ns, ctime_ns, inode, digest)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._loaded_from: str | None = None
        self._changed = False  # since load(): save() to the same file can then be skipped

    def digest(self, path: str) -> str:
        full = os.path.join(self.root, path)
        stat = os.stat(full)  # one stat serves both the directory test and the identity
        if S_ISDIR(stat.st_mode):
            return self._tree_digest(path)
        identity = stat_identity(stat)
        cached = self._cache.get(path)
        if cached and tuple(cached[:4]) == identity:
            return cached[4]
        with self._hashing(path):
            cached = self._cache.get(path)  # another thread may have just hashed it
            if cached and tuple(cached[:4]) == identity:
                return cached[4]
            digest = self._hash(full, identity)
            self._cache[path] = (*identity, digest)
            self._changed = True
        return digest

    def _hash(self, full: str, identity: tuple) -> str:
        real = os.path.realpath(full)
        if self.machine is None or os.path.commonpath([real, self._real_root]) == self._real_root:
            return hash_file(full)  # the workspace's own files: its digests.json is enough
        digest = self.machine.get(real, identity)
        if digest is None:
            digest = hash_file(full)
            self.machine.put(real, identity, digest)
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

    def learn(self, known: dict[str, tuple[int, int, int, int, str]]) -> None:
        """Take digests computed elsewhere (the action cache hashes every output it stores), keyed by
        absolute path: an output is then not hashed again, by its dependents' keys nor by the next build."""
        prefix = os.path.join(os.path.abspath(self.root), "")
        for path, entry in known.items():
            relative = path[len(prefix) :]
            if path.startswith(prefix) and self._cache.get(relative) != entry:
                self._cache[relative] = entry
                self._changed = True

    def load(self, path: str) -> None:
        """Take over digests remembered by an earlier build (stale ones are detected by size and mtime)."""
        had_entries = bool(self._cache)
        try:
            with open(path, encoding="utf-8") as handle:
                self._cache.update({k: tuple(v) for k, v in json.load(handle).items()})
        except (OSError, ValueError):
            return
        if had_entries:
            self._changed = True  # the cache is no longer just this file's content
        else:
            self._loaded_from = path

    def save(self, path: str) -> None:
        if path == self._loaded_from and not self._changed and os.path.exists(path):
            return  # the file holds exactly what was loaded from it
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
