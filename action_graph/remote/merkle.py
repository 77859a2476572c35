"""An action's input root as a Merkle tree of REAPI `Directory` messages.

File digests come from `FileDigests` (remembered by size and mtime, persisted between builds), so the
~370 MB toolchain is hashed once; a directory whose entries are unchanged reuses its serialized message,
so the toolchain subtree that every rustc action shares is encoded once per process as well. Symlinks
(the sysroot is one) are followed: the tree holds the files' contents, never a client path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from action_graph.digests import FileDigests, hash_file
from action_graph.remote.cas import Blob
from action_graph.remote.protos import digest_of, re_pb2


@dataclass(frozen=True)
class _File:
    digest: re_pb2.Digest
    is_executable: bool
    path: str  # on this machine, to read it for an upload


@dataclass
class _Dir:
    entries: dict[str, _File | _Dir] = field(default_factory=dict)


@dataclass
class InputRoot:
    digest: re_pb2.Digest
    blobs: list[Blob]  # every directory message and file of the tree


class MerkleTreeBuilder:
    def __init__(self, exec_root: Path, digests: FileDigests) -> None:
        self.exec_root = exec_root
        self.digests = digests
        self._directories: dict[tuple, tuple[re_pb2.Digest, bytes]] = {}
        self._lock = threading.Lock()

    def build(self, inputs: Iterable[str], empty_dirs: Iterable[str] = ()) -> InputRoot:
        """The tree of `inputs` (files or directories, relative to the execution root) plus `empty_dirs`.

        Raises FileNotFoundError naming a missing input."""
        root = _Dir()
        for path in sorted(set(inputs)):
            for relative, full in self._files(path):
                _insert(root, relative, self._file(relative, full))
        for path in empty_dirs:
            _directory_at(root, path)
        blobs: dict[str, Blob] = {}
        digest = self._encode(root, blobs)
        return InputRoot(digest, list(blobs.values()))

    def _files(self, path: str) -> Iterator[tuple[str, str]]:
        _check_relative(path)
        full = os.path.join(self.exec_root, path)
        if not os.path.isdir(full):
            if not os.path.exists(full):
                raise FileNotFoundError(2, "No such file or directory", path)
            yield path, full
            return
        for directory, _, names in os.walk(full, followlinks=True):
            for name in names:
                child = os.path.join(directory, name)
                yield os.path.relpath(child, self.exec_root), child

    def _file(self, relative: str, full: str) -> _File:
        stat = os.stat(full)
        digest = re_pb2.Digest(hash=self.digests.digest(relative), size_bytes=stat.st_size)
        return _File(digest, bool(stat.st_mode & 0o111), full)

    def _encode(self, directory: _Dir, blobs: dict[str, Blob]) -> re_pb2.Digest:
        """Digest of `directory`'s message; adds it, its files and its subdirectories to `blobs`."""
        files = sorted((name, e) for name, e in directory.entries.items() if isinstance(e, _File))
        children = sorted(
            (name, self._encode(e, blobs)) for name, e in directory.entries.items() if isinstance(e, _Dir)
        )
        for _, entry in files:
            blobs.setdefault(entry.digest.hash, Blob(entry.digest, path=entry.path))
        key = (
            tuple((name, e.digest.hash, e.digest.size_bytes, e.is_executable) for name, e in files),
            tuple((name, d.hash, d.size_bytes) for name, d in children),
        )
        with self._lock:
            encoded = self._directories.get(key)
        if encoded is None:
            message = re_pb2.Directory(
                files=[re_pb2.FileNode(name=n, digest=e.digest, is_executable=e.is_executable) for n, e in files],
                directories=[re_pb2.DirectoryNode(name=n, digest=d) for n, d in children],
            )
            data = message.SerializeToString(deterministic=True)
            encoded = (digest_of(data), data)
            with self._lock:
                self._directories[key] = encoded
        digest, data = encoded
        blobs.setdefault(digest.hash, Blob(digest, data=data))
        return digest


def _check_relative(path: str) -> None:
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"input path '{path}' is not a normalized path relative to the execution root")


def _directory_at(root: _Dir, path: str) -> _Dir:
    node = root
    for part in path.split("/") if path else []:
        child = node.entries.setdefault(part, _Dir())
        if not isinstance(child, _Dir):
            raise ValueError(f"'{path}' is both a file and a directory in the input root")
        node = child
    return node


def _insert(root: _Dir, path: str, entry: _File) -> None:
    parent, _, name = path.rpartition("/")
    directory = _directory_at(root, parent)
    existing = directory.entries.get(name)
    if isinstance(existing, _Dir):
        raise ValueError(f"'{path}' is both a file and a directory in the input root")
    directory.entries[name] = entry


def output_tree(directory: Path) -> tuple[re_pb2.Digest, list[Blob]]:
    """A directory an action wrote, as the digest of a REAPI `Tree` and the blobs of the Tree and files."""
    blobs: dict[str, Blob] = {}
    children: dict[str, re_pb2.Directory] = {}
    root = _encode_output_dir(directory, blobs, children)
    tree = re_pb2.Tree(root=root, children=[children[k] for k in sorted(children)])
    data = tree.SerializeToString(deterministic=True)
    tree_digest = digest_of(data)
    blobs[tree_digest.hash] = Blob(tree_digest, data=data)
    return tree_digest, list(blobs.values())


def _encode_output_dir(
    directory: Path, blobs: dict[str, Blob], children: dict[str, re_pb2.Directory]
) -> re_pb2.Directory:
    message = re_pb2.Directory()
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.is_dir():
            child = _encode_output_dir(Path(entry.path), blobs, children)
            data = child.SerializeToString(deterministic=True)
            digest = digest_of(data)
            children[digest.hash] = child
            message.directories.add(name=entry.name, digest=digest)
        else:
            digest = re_pb2.Digest(hash=hash_file(entry.path), size_bytes=entry.stat().st_size)
            blobs.setdefault(digest.hash, Blob(digest, path=entry.path))
            executable = bool(entry.stat().st_mode & 0o111)
            message.files.add(name=entry.name, digest=digest, is_executable=executable)
    return message
