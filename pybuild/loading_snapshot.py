"""The loading snapshot: a warm load of the main repository that stats files instead of reading them.

The load cache checks each package entry by content: it re-reads the BUILD file and the .bzl files it
loaded and re-runs its globs over the package's files, and `//...` first lists every directory to find the
packages. For 10,000 targets that is half a second of every command, even one that changed no BUILD file.

After a command that walked the main repository, pybuild writes a snapshot: the packages each walk found,
the load cache entries of those packages, and the stat identity (size, mtime, ctime, inode) of every
directory the walks listed and every BUILD and .bzl file the packages read. Adding, removing or renaming an
entry changes its directory's identity, and that is all package boundaries and globs see; writing a file
changes the file's. The next command stats those paths once; a path whose identity changed is compared
by content (a directory's entries, a file's digest, both recorded too), since editors save by renaming a
new file over the old one. It takes from the snapshot each walk and each package none of whose paths
changed, and loads the rest as before, checking each package by content: after an edit of one BUILD file
only that package is loaded again. A change to the workspace root's listing means no snapshot.

As for the no-op record (noop_record.py), a snapshot is written only if every identity in it is older than
the command's start by more than a file system clock's step, and the workspace root is compared by its
listing, since every build replaces the bin link in it. A package whose globs could see past what the walk
listed (a symlinked or .bazelignored directory in it) stays out, and so does any uncacheable package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from action_graph.fileutil import atomic_open
from pybuild.globbing import PackageWalk
from pybuild.noop_record import RACY_SECONDS, Identity, identities, root_listing
from pybuild.workspace import Workspace

if TYPE_CHECKING:
    from pybuild.load_cache import LoadCache

_FORMAT = 3
_FILE = "snapshot.pickle"  # in the load cache's directory: one per workspace, the newest


@dataclass
class Walk:
    """What walk_packages found below a directory, and the paths it read: every directory it listed but the
    workspace root, which counts by its listing, and .bazelignore."""

    packages: list[str]
    paths: list[str]
    root_listing: tuple[str, ...]
    package_directories: dict[str, list[str]]  # of each package whose globs see only what the walk listed

    @classmethod
    def of(cls, walk: PackageWalk, root: str, listing: tuple[str, ...]) -> Walk:
        paths: list[str] = []
        owned: dict[str, list[str]] = {package: [] for package in walk.listings}
        for relative, package in walk.directories.items():
            if relative:
                paths.append(os.path.join(root, relative))
                if package in owned:
                    owned[package].append(paths[-1])
        bazelignore = os.path.join(root, ".bazelignore")
        if os.path.isfile(bazelignore):  # if there is none, creating one changes the root's listing
            paths.append(bazelignore)
        return cls(walk.packages, paths, listing, owned)


@dataclass
class PackageSnapshot:
    entry: Any  # the load cache's _PackageEntry
    files: list[str]  # the package's files, as the walk listed them (source file targets are checked there)
    paths: list[str]  # BUILD file, .bzl files, the package's directories


@dataclass
class _Stored:
    format: int
    fingerprint: str
    walks: dict[str, Walk]
    packages: dict[str, PackageSnapshot]
    paths: list[str]
    identities: list[Identity]
    contents: list[str | None]  # of each path (see _content): what decides when its identity changed


@dataclass
class LoadingSnapshot:
    """The snapshot this process may use, and what it used: the next one."""

    workspace: Workspace
    load_cache: LoadCache
    started_ns: int = field(default_factory=time.time_ns)
    # What this process used, from the snapshot or found afresh: the next snapshot.
    walks: dict[str, Walk] = field(default_factory=dict)
    packages: dict[str, PackageSnapshot] = field(default_factory=dict)
    _stored: _Stored | None = None
    _read: bool = False
    _new: bool = False  # whether this process found walks or packages afresh

    def walk(self, base: str) -> list[str] | None:
        """The packages at or below `base` if the snapshot vouches for them, else None."""
        stored = self._valid()
        if stored is None or base not in stored.walks:
            return None
        self.walks[base] = stored.walks[base]
        return stored.walks[base].packages

    def package(self, name: str) -> PackageSnapshot | None:
        """Package `name` (its load cache entry and files) if the snapshot vouches for it, else None."""
        stored = self._valid()
        if stored is None or name not in stored.packages:
            return None
        self.packages[name] = stored.packages[name]
        return stored.packages[name]

    def add_walk(self, base: str, walk: Walk) -> None:
        self.walks[base] = walk
        self._new = True

    def walked(self, name: str) -> bool:
        """Whether a walk this process made or took from the snapshot found package `name` (and listed its
        directories: a package's files are what such a walk saw)."""
        return any(name in walk.package_directories for walk in self.walks.values())

    def add_package(self, name: str, files: list[str]) -> None:
        """Package `name` (see walked), loaded as the load cache says, with its files."""
        entry = self.load_cache.entries.get(("", name))
        owned = next((w.package_directories[name] for w in self.walks.values() if name in w.package_directories), None)
        if entry is not None and owned is not None:
            record = entry.record
            paths = [record.build_path, *(bzl[1] for bzl in record.bzl_files), *owned]
            self.packages[name] = PackageSnapshot(entry, files, paths)
            self._new = True

    def _valid(self) -> _Stored | None:
        if not self._read:
            self._read = True
            stored = self._load()
            self._stored = self._still_valid(stored) if stored is not None else None
        return self._stored

    def _load(self) -> _Stored | None:
        try:
            with open(self._path(), "rb") as handle:
                stored = pickle.load(handle)
        except Exception:  # missing, damaged or from another version: load as without a snapshot
            return None
        fingerprint = self.load_cache.fingerprint()
        if not isinstance(stored, _Stored) or stored.format != _FORMAT or stored.fingerprint != fingerprint:
            return None
        return stored if len(stored.paths) == len(stored.identities) == len(stored.contents) else None

    def _path(self) -> str:
        return os.path.join(self.load_cache.directory, _FILE)

    def _still_valid(self, stored: _Stored) -> _Stored | None:
        """What of the snapshot holds: the walks and packages whose paths are all as recorded, by identity or
        else by content (an editor that saves by renaming a new file over the old one changes its directory's
        identity, not its listing). None if the workspace root's listing changed: the root package's globs
        and every walk see it."""
        listing = root_listing(self.workspace.root)
        if any(walk.root_listing != listing for walk in stored.walks.values()):
            return None
        recorded = zip(stored.paths, stored.identities, stored.contents, strict=True)
        changed = {
            path
            for (path, identity, content), now in zip(recorded, identities(stored.paths), strict=True)
            if now != identity and (now is None or _content(path) != content)
        }
        if not changed:
            return stored
        walks = {base: walk for base, walk in stored.walks.items() if changed.isdisjoint(walk.paths)}
        packages = {name: package for name, package in stored.packages.items() if changed.isdisjoint(package.paths)}
        return dataclasses.replace(stored, walks=walks, packages=packages)

    def save(self) -> None:
        """Write what this process used, with the rest of a valid current snapshot, as the next snapshot;
        unless all of it comes from the current one."""
        if not self._new:
            return
        self._new = False  # written now or left to the next command: in both cases not tried again for it
        if self._stored is not None:  # still valid: keep what other patterns (//a/... and //b/...) need
            self.walks = {**self._stored.walks, **self.walks}
            self.packages = {**self._stored.packages, **self.packages}
        paths = list(dict.fromkeys(p for item in [*self.walks.values(), *self.packages.values()] for p in item.paths))
        current = identities(paths)
        if None in current:
            return  # gone since this process read it: nothing to vouch for
        if max((max(i[1], i[2]) for i in current if i is not None), default=0) >= self.started_ns - RACY_SECONDS * 1e9:
            return  # changed while this command ran, or just before: the next command writes it
        contents = [_content(path) for path in paths]
        stored = _Stored(_FORMAT, self.load_cache.fingerprint(), self.walks, self.packages, paths, current, contents)
        with contextlib.suppress(OSError), atomic_open(Path(self._path())) as handle:
            pickle.dump(stored, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _content(path: str) -> str | None:
    """SHA-256 of a file, or of a directory's entries (name, whether a directory, whether a link); None if
    unreadable."""
    try:
        if os.path.isdir(path):
            with os.scandir(path) as scan:
                data = repr(sorted((entry.name, entry.is_dir(), entry.is_symlink()) for entry in scan)).encode()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest()
