"""The no-op record: `pybuild build` answers at once when nothing it depends on has changed.

A no-op build otherwise imports the loading, analysis and execution machinery (and networkx with it),
reads the load, analysis and up-to-date caches, and stats every input, only to learn that nothing
changed: most of its time. After a build that executed nothing, pybuild writes a record of every path
that build depended on, with their stat identities (size, mtime, ctime, inode):

- pybuild's own code (the files the load cache's fingerprint hashes);
- every directory and file of every repository it knew (BUILD and .bzl files, glob listings, package
  boundaries, MODULE.bazel, repositories.json: loading reads nothing else), skipping only what
  loading skips (.git, pybuild-*);
- every action input, every output, every action cache entry and every blob an entry names;
- pybuild-out/external, whose symlinks name the external repositories.

The record is keyed by the parsed command line (after .pybuildrc), the working directory, the Python
interpreter and the variables that choose the Rust toolchain. The next `pybuild build` with the same
key refreshes @local_rust exactly as loading does (so a new rustc is noticed), stats the recorded
paths, and if every identity is unchanged prints the same `Build OK` line; otherwise it builds as always.

Why unchanged identities are enough: file system clocks are coarse, so an edit in the same clock tick as
the stat that recorded a file could keep its identity. A record is therefore written only when every
identity in it is older than the start of the build that writes it (less a margin larger than any
clock granularity): a file changed while that build ran, or at any time after, has a newer ctime,
which no one can set back. Anything unusual (a symlinked directory, a directory used as an input, a
report flag, remote execution, PYBUILD_LOAD_CACHE=0) means no record and the full build.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import time
import zlib
from argparse import Namespace
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from stat import S_ISDIR
from typing import TYPE_CHECKING, Any

from action_graph.fileutil import atomic_symlink, atomic_write_bytes, keep_newest
from pybuild.workspace import BIN_LINK_NAME, OUTPUT_DIR_NAME, Workspace

if TYPE_CHECKING:
    from action_graph.cache import ActionCache, ActionResult
    from action_graph.scheduler import Outcome

_FORMAT = 2
_DIRECTORY = ("cache", "noop")  # under the output base
_KEEP = 4  # records kept (one per recent command line)
_ENABLED_VARIABLE = "PYBUILD_LOAD_CACHE"  # the switch of the load cache turns this shortcut off too
# What chooses the rustc that @local_rust describes (toolchains/local_rust.py reads these).
_TOOLCHAIN_VARIABLES = ("PATH", "RUSTC", "HOME", "CARGO_HOME")
_TOOLCHAIN_PREFIXES = ("RUSTUP_",)
# Flags whose builds do more than a no-op build reports (files written, a server asked).
_UNRECORDED_FLAGS = ("profile", "timings", "execution_log_json_file", "remote_executor", "remote_cache")
# Older than the build's start by more than this, an identity cannot hide an edit made during the build
# (ext4 and tmpfs stamp with a clock of a few milliseconds; some file systems to the second or two).
RACY_SECONDS = 3.0
_OWN_ROOT_ENTRIES = frozenset({OUTPUT_DIR_NAME, BIN_LINK_NAME})

Identity = tuple[int, int, int, int] | None  # size, mtime_ns, ctime_ns, inode; None if missing


# A record is a dict of these (marshal: plain data that loads faster than pickle imports):
# key: _key()'s text; paths and their identities, in order; actions: the `total actions` of the Build OK
# line; bin_link: the convenience link and its target, which a build refreshes; local_rust: @local_rust's
# directory if the build made it (refreshed first); root_listing: see root_listing.
_FIELDS = frozenset({"format", "key", "paths", "identities", "actions", "bin_link", "local_rust", "root_listing"})


def cache_enabled() -> bool:
    """PYBUILD_LOAD_CACHE=0 turns off every cache of loading and analysis results, this one included."""
    return os.environ.get(_ENABLED_VARIABLE, "1").lower() not in ("0", "false", "no")


def code_files() -> list[Path]:
    """pybuild's Python and Starlark sources: what it computes depends on them (and on starlark-pyo3)."""
    import action_graph
    import pybuild
    import toolchains

    files = []
    for package in (pybuild, action_graph, toolchains):
        for directory in (Path(package.__file__).parent, Path(package.__file__).parent / "builtins"):
            files.extend(sorted(directory.glob("*.py")) + sorted(directory.glob("*.bzl")))
    return files


def starlark_files() -> list[os.DirEntry[str]]:
    """The files of the starlark-pyo3 package (its native module among them), sorted by name."""
    import starlark

    directory = Path(getattr(starlark, "__file__", None) or ".").parent
    return sorted((e for e in os.scandir(directory) if e.is_file()), key=lambda e: e.name)


def applies(args: Namespace) -> bool:
    return args.command == "build" and cache_enabled() and not any(getattr(args, f) for f in _UNRECORDED_FLAGS)


class Start:
    """A build command's start: the wall clock, and the workspace root's listing (see root_listing),
    taken before loading looks at the root, so that an entry added while the build runs is noticed."""

    def __init__(self, output_base: Path) -> None:
        self.output_base = output_base
        self.ns = time.time_ns()
        try:
            self.root_listing: tuple[str, ...] | None = root_listing(output_base.parent)
        except OSError:  # the full build reports it
            self.root_listing = None


def answer(args: Namespace, start: Start) -> int | None:
    """The number of actions of the no-op build this command is, if its record says so; else None."""
    if not applies(args) or start.root_listing is None:
        return None
    try:
        return _answer(_key(args), start)
    except OSError:  # e.g. an unreadable record directory: the full build reports anything that matters
        return None


def _answer(key: str, start: Start) -> int | None:
    record = _read(_record_path(start.output_base, key))
    if record is None or record["key"] != key or record["root_listing"] != start.root_listing:
        return None
    if record["local_rust"] is not None and not _refresh_local_rust(Path(record["local_rust"])):
        return None
    if identities(record["paths"]) != record["identities"]:
        return None
    link, target = record["bin_link"]
    atomic_symlink(Path(target), Path(link))
    return record["actions"]


def write(
    args: Namespace,
    workspace: Workspace,
    bin_dir: str,
    outcomes: list[Outcome],
    entries: dict[str, ActionResult],
    cache: ActionCache,
    start: Start,
) -> None:
    """Record the build that just executed nothing (`entries`: action key -> its cache entry), unless
    something it depends on may have changed since it started or cannot be recorded."""
    if not applies(args) or start.root_listing is None:
        return
    try:
        paths = _watched_paths(workspace, outcomes, entries, cache)
    except _Unrecordable:
        return
    current = identities(paths)
    if None in current:
        return  # gone since the build used it (or a dangling link): nothing to vouch for
    if max(max(i[1], i[2]) for i in current if i is not None) >= start.ns - RACY_SECONDS * 1e9:
        return  # racy: the next no-op build records it
    key = _key(args)
    local_rust = workspace.repositories.get("local_rust") if "local_rust" in workspace.repository_factories else None
    record = {
        "format": _FORMAT,
        "key": key,
        "paths": paths,
        "identities": current,
        "actions": len(outcomes),
        "bin_link": (str(workspace.root / BIN_LINK_NAME), str(workspace.root / bin_dir)),
        "local_rust": None if local_rust is None else str(local_rust),
        "root_listing": start.root_listing,
    }
    path = _record_path(workspace.output_base, key)
    with contextlib.suppress(OSError):  # without a record the next no-op build is only slower
        atomic_write_bytes(path, marshal.dumps(record))
        keep_newest(path.parent, "*.marshal", _KEEP)


class _Unrecordable(Exception):
    """The build depends on something a list of stat identities cannot vouch for."""


def _watched_paths(
    workspace: Workspace, outcomes: list[Outcome], entries: dict[str, ActionResult], cache: ActionCache
) -> list[str]:
    if len(entries) != len(outcomes):
        raise _Unrecordable  # an action without its cache entry (or two actions with one key)
    root = str(workspace.root)
    code = [str(path) for path in code_files()] + [entry.path for entry in starlark_files()]
    # Their directories too: the load cache's fingerprint also changes when a code file is added.
    paths = sorted({os.path.dirname(path) for path in code}) + code
    made = workspace.repository_factories
    for name, directory in sorted(workspace.repositories.items()):
        tree = _tree(str(directory), links_ok=name in made)
        paths.extend(tree if name else list(tree)[1:])  # the root itself: by its listing
    if workspace.external_dir.is_dir():  # made when the first external repository is linked
        paths.append(str(workspace.external_dir))
    # Distinct paths first: every action reads the toolchain's ~100 files, and joining each of them once
    # per action was most of writing a record of 1,000 crates.
    distinct = dict.fromkeys(chain.from_iterable(outcome.action.inputs for outcome in outcomes))
    inputs = [os.path.join(root, path) for path in distinct]
    if any(os.path.isdir(path) for path in inputs):
        raise _Unrecordable  # a directory's content would need a listing, not an identity
    paths.extend(inputs)
    for key, result in entries.items():
        paths.append(cache.entry_file(key))
        for output in result.outputs:
            paths.append(os.path.join(root, output.path))
            paths.append(str(cache.blob_path(output.digest)))
    return list(dict.fromkeys(paths))  # an output is often another action's input


def _tree(top: str, links_ok: bool) -> Iterator[str]:
    """Every directory and file under `top` (top included) that loading could look at.

    Loading follows symlinked directories (globs do), so one makes the tree unrecordable, except in a
    repository pybuild generates (@local_rust's sysroot, which its refresh checks file by file)."""
    from pybuild.globbing import is_ignored_dir  # the no-op check itself never walks

    pending = [top]
    while pending:
        directory = pending.pop()
        yield directory
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError:
            continue  # unreadable or gone: its identity in the record stands for it
        for entry in entries:
            if not entry.is_dir():
                yield entry.path
            elif is_ignored_dir(entry.name):
                continue
            elif not entry.is_symlink():
                pending.append(entry.path)
            elif links_ok:
                yield entry.path
            else:
                raise _Unrecordable


def root_listing(root: Path) -> tuple[str, ...]:
    """The names in the workspace root, but the output tree and the convenience link: every build
    replaces that link (a -c opt build points it elsewhere), which changes the root's identity."""
    return tuple(sorted(name for name in os.listdir(root) if name not in _OWN_ROOT_ENTRIES))


def _refresh_local_rust(directory: Path) -> bool:
    """What loading does when a build uses @local_rust: detect rustc again if anything that decides it
    changed (then its BUILD file, which the record covers, changes too). False if that failed."""
    from toolchains import local_rust

    try:
        local_rust.write_repository(directory)
    except Exception:  # e.g. rustc is gone: the full build reports it
        return False
    return True


def identities(paths: Iterable[str]) -> list[Identity]:
    found: list[Identity] = []
    append, stat = found.append, os.stat
    for path in paths:
        try:
            st = stat(path)
        except OSError:
            append(None)
            continue
        # A directory's size is its listing's; mode bits (a file made executable) change ctime.
        append((st.st_size if not S_ISDIR(st.st_mode) else 0, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return found


def _key(args: Namespace) -> str:
    options = sorted((name, repr(value)) for name, value in vars(args).items())
    variables = sorted(
        (name, value)
        for name, value in os.environ.items()
        if name in _TOOLCHAIN_VARIABLES or name.startswith(_TOOLCHAIN_PREFIXES)
    )
    return repr((_FORMAT, options, os.getcwd(), sys.version, sys.executable, variables))


def _record_path(output_base: Path, key: str) -> Path:
    """Named by a checksum of the key (the record holds the key itself, which decides)."""
    return output_base.joinpath(*_DIRECTORY, f"{zlib.crc32(key.encode('utf-8', 'surrogatepass')):08x}.marshal")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            record = marshal.loads(handle.read())  # marshal.load(handle) reads in small pieces: 10x slower
    except Exception:  # missing, truncated or from another version: the full build, never a wrong answer
        return None
    if not (isinstance(record, dict) and record.keys() == _FIELDS and record["format"] == _FORMAT):
        return None
    return record
