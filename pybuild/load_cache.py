"""A persistent cache of loading and analysis, so that an unchanged workspace runs no Starlark.

Loading: per package, the evaluated package and everything its evaluation observed: the BUILD file's
path and text, each .bzl file it loaded (directly or not; by label, path and text), and the result of
each glob() it called. A lookup re-reads the BUILD and .bzl files, re-runs the globs over the package's
current files, and uses the entry only if all of it is unchanged (and pybuild itself and MODULE.bazel
are too): adding or removing a file a glob matches, or editing a loaded .bzl file, re-evaluates.

Analysis: per set of requested labels and build configuration, the analysis result, with the content key
of every package loaded by then (what it declares, not how its BUILD file spells it), the key of every
rule target analyzed and every source file of the target graph; a lookup re-validates them all. The last
result of each configuration is also found without the labels: analysis starts from it after an edit
(see Analysis).

Nothing here is ever trusted blindly: an entry that is missing, unreadable, corrupt, from another
pybuild or for other inputs is a miss, and the work is done as without a cache. Writes are atomic.
Set PYBUILD_LOAD_CACHE=0 to bypass the cache (benchmarks of the cold path do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import pickle
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from action_graph.fileutil import atomic_open, atomic_write_bytes, keep_newest, read_text_or_none
from pybuild import globbing
from pybuild.errors import PybuildError
from pybuild.labels import Label
from pybuild.noop_record import cache_enabled, code_files, starlark_files
from pybuild.rules import RuleClass
from pybuild.starlark_host import text_digest
from pybuild.workspace import Workspace

_FORMAT = 1
_KEEP_ANALYSES = 4  # analysis entries kept (one per recent command line and configuration)

GlobCall = tuple[tuple[str, ...], tuple[str, ...], bool, tuple[str, ...]]  # include, exclude, allow_empty, result
BzlFile = tuple[Label, str, str]  # label, path, digest of the text


@dataclass
class PackageRecord:
    """What evaluating one BUILD file saw, and what it produced.

    `package` is the package as plain data (Package.frozen()); its targets name their rule classes by
    index into `rule_classes`, which the cache stores once each (see LoadCache).
    """

    build_path: str
    build_digest: str
    bzl_files: tuple[BzlFile, ...]
    globs: tuple[GlobCall, ...]
    package: tuple[Any, ...]
    rule_classes: list[RuleClass]
    # Name what analysis reads of the package and of each target (see PackageLoader.package_key and
    # target_key): analysis entries record them.
    content_key: str
    target_keys: dict[str, str]

    key: str = ""  # names everything the evaluation depended on

    def __post_init__(self) -> None:
        if not self.key:
            self.key = _digest(repr((self.build_path, self.build_digest, self.bzl_files, self.globs)))


@dataclass
class _PackageEntry:
    fingerprint: str
    record: PackageRecord
    rule_keys: tuple[str, ...]  # RuleClass.cache_key of record.rule_classes, which are stored apart


@dataclass
class _AnalysisEntry:
    fingerprint: str
    key: str
    packages: tuple[tuple[tuple[str, str], str], ...]  # (repo, package) -> PackageRecord.content_key
    targets: dict[str, str]  # label text -> PackageRecord.target_keys[name], of every rule target analyzed
    # Per package, the names of the source files the analysis read: (repo, package, names). Plain tuples are
    # cheaper to read back than labels, and a package's files are checked with set operations.
    source_files: tuple[tuple[str, str, tuple[str, ...]], ...]
    repositories: tuple[str, ...]  # external repositories the result's actions name
    result: Any  # AnalysisResult


@dataclass
class CachedAnalysis:
    """An analysis the load cache holds, and what it read."""

    result: Any  # AnalysisResult
    repositories: tuple[str, ...]  # external repositories its actions name
    exact: bool  # of the targets asked for
    packages: dict[tuple[str, str], str]  # (repo, package) -> PackageRecord.content_key, of every package it read
    targets: dict[str, str]  # label text -> PackageRecord.target_keys[name], of every rule target it analyzed
    source_files: tuple[tuple[str, str, tuple[str, ...]], ...]  # see _AnalysisEntry

    def unchanged(
        self,
        package_key: Callable[[str, str], str | None],
        are_source_files: Callable[[str, str, tuple[str, ...]], bool],
    ) -> bool:
        """Whether every package it read declares the same now, and every source file it read is one still.

        `package_key` loads a package (through the package cache) and returns its content key;
        `are_source_files(repo, package, names)` tells whether those labels all still name source files.
        """
        try:
            if any(package_key(*package) != recorded for package, recorded in self.packages.items()):
                return False
            return all(are_source_files(*files) for files in self.source_files)
        except PybuildError:
            return False  # the analysis without the cache reports it

    def changed(
        self, packages: Iterable[tuple[str, str]], package_key: Callable[[str, str], str | None]
    ) -> set[tuple[str, str]]:
        """Those of `packages` it did not read, or that declare something else now."""
        return {package for package in packages if self.packages.get(package) != package_key(*package)}


class LoadCache:
    """The cache of one workspace, under pybuild-out/cache/loading.

    Rule classes are stored once each (under rules/, named by RuleClass.cache_key) and package entries
    refer to them, so that a thousand packages using rust_library share one RuleClass when loaded.
    `new_rule_id` numbers the rule classes this process takes from the cache.
    """

    def __init__(self, workspace: Workspace, new_rule_id: Callable[[], int], enabled: bool | None = None) -> None:
        self.workspace = workspace
        self.directory = workspace.output_base / "cache" / "loading"
        self.enabled = cache_enabled() if enabled is None else enabled
        self._new_rule_id = new_rule_id
        self._fingerprint: str | None = None
        self._file_digests: dict[str, str | None] = {}
        self._bzl_checked: dict[BzlFile, bool] = {}
        self._rules: dict[str, RuleClass] = {}  # cache key -> the one RuleClass of this process
        self._stored_rules: set[str] = set()
        # (repo, package) -> the entry of each package this process found valid or stored (see loading_snapshot.py)
        self.entries: dict[tuple[str, str], _PackageEntry] = {}

    # Packages -----------------------------------------------------------------------------------

    def lookup_package(
        self,
        repo: str,
        name: str,
        build_path: Path,
        build_text: str,
        bzl_path: Callable[[Label], Path],
        files: Callable[[], list[str]],
    ) -> PackageRecord | None:
        """The recorded package if nothing its evaluation observed has changed since."""
        if not self.enabled:
            return None
        entry = self._read(self._package_path(repo, name))
        if not isinstance(entry, _PackageEntry) or entry.fingerprint != self.fingerprint():
            return None
        record = entry.record
        if record.build_path != str(build_path) or record.build_digest != text_digest(build_text):
            return None
        if not all(self._bzl_unchanged(bzl, bzl_path) for bzl in record.bzl_files):
            return None
        if record.globs and not _globs_unchanged(record.globs, files()):
            return None
        found = self.entry_record(entry)
        if found is not None:
            self.entries[repo, name] = entry
        return found

    def entry_record(self, entry: _PackageEntry) -> PackageRecord | None:
        """The entry's record with this process's rule classes; None if one of them is not in the cache."""
        if entry.fingerprint != self.fingerprint():
            return None
        rule_classes = [self._rule_class(key) for key in entry.rule_keys]
        if any(rule_class is None for rule_class in rule_classes):
            return None
        return dataclasses.replace(entry.record, rule_classes=[r for r in rule_classes if r is not None])

    def store_package(self, repo: str, name: str, record: PackageRecord) -> None:
        keys = tuple(rule_class.cache_key for rule_class in record.rule_classes)  # a digest each: made once
        for key, rule_class in zip(keys, record.rule_classes, strict=True):
            self._rules.setdefault(key, rule_class)  # known even when disabled: adopt gives forked loads these
            if self.enabled:
                self._store_rule_class(key, rule_class)
        if not self.enabled:
            return
        entry = _PackageEntry(self.fingerprint(), dataclasses.replace(record, rule_classes=[]), keys)
        self._write(Path(self._package_path(repo, name)), entry)
        self.entries[repo, name] = entry

    @staticmethod
    def handed_over(record: PackageRecord) -> tuple[Any, dict[str, RuleClass]]:
        """A record as a forked loading process hands it back (see adopt): each rule class once, by key."""
        rule_classes = {rule_class.cache_key: rule_class for rule_class in record.rule_classes}
        return (dataclasses.replace(record, rule_classes=[]), tuple(rule_classes)), rule_classes

    def adopt(self, repo: str, name: str, handed: Any, rule_classes: dict[str, RuleClass]) -> PackageRecord | None:
        """The record of a package a forked process loaded (and stored, if the cache is enabled), with this
        process's rule class of each key: one it has, else the other process's, given an id of this one."""
        for key, rule_class in rule_classes.items():
            if key not in self._rules:
                rule_class.rule_id = self._new_rule_id()
                self._rules[key] = rule_class
                self._stored_rules.add(key)  # by the other process, which wrote the package's entry too
        record, keys = handed
        entry = _PackageEntry(self.fingerprint(), record, keys)
        if self.enabled:
            self.entries[repo, name] = entry
        return self.entry_record(entry)

    def _store_rule_class(self, key: str, rule_class: RuleClass) -> None:
        """Store a rule class once (by its key)."""
        if key not in self._stored_rules:
            self._stored_rules.add(key)
            self._write(self._rule_path(key), (self.fingerprint(), rule_class))

    def _rule_class(self, key: str) -> RuleClass | None:
        """The process's rule class of that key, read on first use; None if it is not in the cache."""
        rule_class = self._rules.get(key)
        if rule_class is None:
            stored = self._read(self._rule_path(key))
            if not isinstance(stored, tuple) or stored[0] != self.fingerprint() or not isinstance(stored[1], RuleClass):
                return None
            rule_class = self._rules[key] = stored[1]
            rule_class.rule_id = self._new_rule_id()  # ids are per process; the analysis driver uses them
            self._stored_rules.add(key)
        return rule_class

    def _rule_path(self, key: str) -> Path:
        return self.directory / "rules" / f"{key}.pickle"

    def _bzl_unchanged(self, bzl: BzlFile, bzl_path: Callable[[Label], Path]) -> bool:
        """Whether the label still names that file with that text; checked once per process."""
        known = self._bzl_checked.get(bzl)
        if known is None:
            label, path, digest = bzl
            try:
                current = str(bzl_path(label))
            except PybuildError:
                current = None  # its repository is gone
            known = self._bzl_checked[bzl] = current == path and self._file_digest(path) == digest
        return known

    def _file_digest(self, path: str) -> str | None:
        """The digest of a .bzl file's text, read once per process (many BUILD files load the same)."""
        if path not in self._file_digests:
            try:
                self._file_digests[path] = text_digest(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                self._file_digests[path] = None
        return self._file_digests[path]

    def _package_path(self, repo: str, name: str) -> str:
        """A string, not a Path: a warm load of 10,000 targets asks for 2,000 of them."""
        digest = _digest(f"{repo}\0{name}")
        return f"{self.directory}/packages/{digest[:2]}/{digest}.pickle"

    # Analysis -----------------------------------------------------------------------------------

    def analysis_key(self, parts: Iterable[object]) -> str:
        return _digest(repr((self.fingerprint(), *parts)))

    def lookup_analysis(self, key: str, latest: str) -> CachedAnalysis | None:
        """The analysis stored under this key, else the last one stored under `latest` (the same configuration,
        other targets asked for). Whether what it read is unchanged, CachedAnalysis answers."""
        if not self.enabled:
            return None
        entry = self._analysis_entry(key) or self._analysis_entry(read_text_or_none(self._latest_path(latest)))
        if entry is None:
            return None
        exact = entry.key == key
        packages = dict(entry.packages)
        return CachedAnalysis(entry.result, entry.repositories, exact, packages, entry.targets, entry.source_files)

    def store_analysis(
        self,
        key: str,
        latest: str,
        packages: dict[tuple[str, str], str | None],
        targets: dict[str, str],
        source_files: Iterable[Label],
        repositories: Iterable[str],
        result: Any,
    ) -> None:
        if not self.enabled:
            return
        entry = _AnalysisEntry(
            self.fingerprint(),
            key,
            tuple(sorted(packages.items())),
            targets,
            _by_package(source_files),
            tuple(sorted(repositories)),
            result,
        )
        self._write(self._analysis_path(key), entry)
        with contextlib.suppress(OSError):
            atomic_write_bytes(self._latest_path(latest), key.encode())
        keep_newest(self._analysis_path(key).parent, "*.pickle", _KEEP_ANALYSES)

    def _analysis_entry(self, key: str | None) -> _AnalysisEntry | None:
        entry = self._read(self._analysis_path(key)) if key else None
        if not isinstance(entry, _AnalysisEntry) or (entry.fingerprint, entry.key) != (self.fingerprint(), key):
            return None
        return entry

    def _latest_path(self, latest: str) -> Path:
        return self.directory / "analysis" / f"{latest}.latest"

    def _analysis_path(self, key: str) -> Path:
        return self.directory / "analysis" / f"{key}.pickle"

    # Fingerprint and files ----------------------------------------------------------------------

    def fingerprint(self) -> str:
        """pybuild itself (its code and builtin Starlark), the interpreter, and the workspace's
        MODULE.bazel and repositories: when any of it changes, no entry is trusted."""
        if self._fingerprint is None:
            module = self.workspace.root / "MODULE.bazel"
            # Repositories made on first use (@local_rust) are left out: when a command first uses them
            # varies, and their BUILD files are checked like any other.
            made = self.workspace.repository_factories
            repositories = sorted((n, str(p)) for n, p in self.workspace.repositories.items() if n not in made)
            build_files = sorted((name, str(path)) for name, path in self.workspace.build_files.items())
            parts = (_FORMAT, _code_fingerprint(), read_text_or_none(module), repositories, build_files)
            self._fingerprint = _digest(repr(parts))
        return self._fingerprint

    def _read(self, path: Path | str) -> object:
        # Streamed: the analysis entry of a large workspace is tens of MB, which need not sit in memory twice.
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except Exception:  # unreadable, truncated, corrupt or from another version of a class: a miss
            return None

    def _write(self, path: Path, entry: object) -> None:
        with contextlib.suppress(OSError), atomic_open(path) as handle:  # a full disk costs speed, not correctness
            pickle.dump(entry, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _by_package(labels: Iterable[Label]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    names: dict[tuple[str, str], list[str]] = {}
    for label in labels:
        names.setdefault((label.repo, label.package), []).append(label.name)
    return tuple((repo, package, tuple(sorted(found))) for (repo, package), found in sorted(names.items()))


def _globs_unchanged(globs: tuple[GlobCall, ...], files: list[str]) -> bool:
    for include, exclude, allow_empty, result in globs:
        try:
            if tuple(globbing.glob(files, list(include), list(exclude), allow_empty)) != result:
                return False
        except PybuildError:
            return False
    return True


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """Digest of pybuild's Python and Starlark sources, the Python version and starlark-pyo3's."""
    # starlark-pyo3's files by name and identity (cheaper than reading its package metadata).
    starlark = [(e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in starlark_files()]
    hasher = hashlib.sha256(repr((sys.version, platform.machine(), starlark)).encode())
    for path in code_files():
        hasher.update(path.name.encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
