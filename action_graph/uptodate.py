"""Deciding quickly which actions of a build are action-cache hits with their outputs in place.

Per action, execution computes a key from the digests of its inputs (about a hundred: the toolchain's
files are inputs of every rustc action), reads the cache entry of that key, checks that the entry's
blobs exist and that the outputs in the tree have the recorded digests. For a no-op build of 1,000
crates that is ~170,000 stats and 1,300 JSON files. `UpToDate.check` asks exactly the same questions,
but about each distinct file once, and it reuses answers a previous build computed from the same
facts: an action's key for the same action and the same input digests, a cache entry's result for
an entry file with the same stat identity (entries are replaced by rename, so a new entry is a new
inode). An action it cannot vouch for, and every action after it, goes to the scheduler, which does the
work as always: after an edit of one crate only that crate and its dependents do (Bazel's dirty
propagation), not the thousand cache hits around them.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from action_graph.action import Action
from action_graph.cache import ActionCache, ActionResult
from action_graph.digests import FileDigests, Identity, action_key, file_identity
from action_graph.fileutil import atomic_write_bytes
from action_graph.graph import ActionGraph
from action_graph.scheduler import Outcome, ScheduleResult

STATE_FILE = "uptodate.pickle"
_FORMAT = 3


@dataclass
class _State:
    """What the last successful build computed, and from what."""

    format: int = _FORMAT
    token: str | None = None  # the graph's ActionGraph.token
    # primary output -> (the token of the analysis that made the action (ActionGraph.token_of), or the action
    # itself if it has none; the digests of its inputs in `inputs` order; its key). An action with a token
    # need not be kept here nor compared field by field.
    keys: dict[str, tuple[Action | str, tuple[str | None, ...], str]] = field(default_factory=dict)
    # action key -> (identity of its cache entry file, the entry)
    entries: dict[str, tuple[Identity, ActionResult]] = field(default_factory=dict)

    def record(
        self,
        action: Action,
        token: str | None,
        digests: tuple[str, ...],
        key: str,
        identity: Identity,
        entry: ActionResult,
    ) -> None:
        self.keys[action.primary_output] = (token or action, digests, key)
        self.entries[key] = (identity, entry)


class UpToDate:
    """The cached-actions check of one execution, and what it remembers for the next one."""

    def __init__(self, state_dir: Path, digests: FileDigests, cache: ActionCache) -> None:
        self.path = state_dir / STATE_FILE
        self.digests = digests
        self.cache = cache
        self.answered = False  # whether check() vouched for the whole build (then there is nothing new to remember)
        self._learned = False  # whether check() computed what the state did not know
        self._found = _State()  # the keys and entries of the actions check() vouched for
        # After check() answered or remember() ran: action key -> cache entry, for each action of the build.
        self.entries: dict[str, ActionResult] | None = None

    def check(self, graph: ActionGraph, started: float) -> ScheduleResult:
        """Cached outcomes for the actions of `graph` that certainly need no work: none without a record of
        the last build, all of them when the build is up to date. Each action it leaves out leaves out its
        dependents, whose inputs it may change."""
        state = self._load()
        self._found = _State(token=graph.token)  # what this check found out, for the next one
        if state is None:
            return ScheduleResult()
        actions = graph.actions
        digest = _memoized(self.digests.digest)
        self._learned = False
        inputs = _digests_or_none(dict.fromkeys(chain.from_iterable(a.inputs for a in actions)), digest)
        predecessors = graph.predecessors()
        failed: set[str] = set()  # no cached result, or after an action without one
        found = []
        for node, action in graph.items():  # analysis order: producers come first, as a rule
            cached = None
            if not (failed and any(map(failed.__contains__, predecessors[node]))):
                cached = self._cached(action, graph.token_of(node), state, inputs, digest)
            if cached is None:
                failed.add(node)
            else:
                found.append((action, *cached))
        # Whatever follows a failure in the graph, even if it came first in that order, is left out.
        left = graph.downstream(failed) if failed else failed
        results = []
        for action, digests, key, identity, result in found:
            if action.primary_output not in left:
                self._found.record(action, graph.token_of(action.primary_output), digests, key, identity, result)
                results.append((action, result))
        self.answered = not left
        if self.answered:
            self.entries = {key: result for key, (_, result) in self._found.entries.items()}
            if self._learned:  # e.g. a new analysis of the same actions: spare the next check the key computations
                self._write(self._found)
        now = time.monotonic() - started
        outcomes = [Outcome(a, True, cached=True, duration=r.duration, start=now, end=now, slot=1) for a, r in results]
        return ScheduleResult(outcomes=outcomes)

    def _cached(
        self,
        action: Action,
        token: str | None,
        state: _State,
        inputs: dict[str, str | None],
        digest: Callable[[str], str],
    ) -> tuple[tuple[str, ...], str, Identity, ActionResult] | None:
        """(its input digests, its key, its cache entry file's identity, the entry) if the action (made by the
        analysis with this token) is a cache hit with its outputs in place."""
        digests = tuple(map(inputs.__getitem__, action.inputs))
        if None in digests:
            return None  # a missing input: the scheduler reports it, or makes it first
        key = _known_key(action, token, state, digests)
        if key is None:
            key, self._learned = action_key(action, inputs.__getitem__), True
        identity, result = self._entry(key, state)
        if result is None or identity is None:
            return None
        try:
            if any(digest(record.path) != record.digest for record in result.outputs):
                return None  # execution would restore it from the cache first
        except OSError:
            return None
        return digests, key, identity, result

    def _entry(self, key: str, state: _State) -> tuple[Identity | None, ActionResult | None]:
        """ActionCache.lookup(key), answered from the state when the entry file is the one seen last time;
        with the entry file's identity."""
        identity = file_identity(self.cache.entry_file(key))
        known = state.entries.get(key)
        if known is not None and identity == known[0]:
            result = known[1]
            return identity, result if all(self.cache.has_blob(o.digest) for o in result.outputs) else None
        self._learned = True
        return identity, self.cache.lookup(key)

    def remember(self, graph: ActionGraph, result: ScheduleResult) -> None:
        """After a build in which every action succeeded: record keys and entries for the next check (those
        the check found stand: the build did not touch what their actions read or wrote)."""
        if self.answered or result.failures or result.skipped:
            return
        digest = _memoized(self.digests.digest)
        state = self._found if self._found.token == graph.token else _State(token=graph.token)
        for action in graph.actions:
            if action.primary_output not in state.keys:
                self._remember_action(action, graph.token_of(action.primary_output), state, digest)
        self.entries = {key: result for key, (_, result) in state.entries.items()}
        self._write(state)

    def _write(self, state: _State) -> None:
        with contextlib.suppress(OSError):  # only a later build's speed depends on it
            atomic_write_bytes(self.path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def _remember_action(self, action: Action, token: str | None, state: _State, digest: Callable[[str], str]) -> None:
        try:
            digests = tuple(digest(path) for path in action.inputs)
            key = action_key(action, digest)
        except OSError:
            return  # an input vanished after the build used it: the next check computes afresh
        identity = file_identity(self.cache.entry_file(key))
        entry = self.cache.lookup(key)
        if identity is not None and entry is not None:
            state.record(action, token, digests, key, identity, entry)

    def _load(self) -> _State | None:
        try:
            with open(self.path, "rb") as handle:
                state = pickle.load(handle)
        except Exception:  # missing, truncated or from another version: no shortcut, never a wrong answer
            return None
        return state if isinstance(state, _State) and state.format == _FORMAT else None


def _known_key(action: Action, token: str | None, state: _State, digests: tuple[str, ...]) -> str | None:
    """The key the last build computed, if the action (made by the analysis with this token) and every input
    digest are the same now."""
    known = state.keys.get(action.primary_output)
    if known is None:
        return None
    stored, known_digests, key = known
    if not (stored == token if isinstance(stored, str) else stored == action):
        return None
    return key if digests == known_digests else None


def _digests_or_none(paths: Iterable[str], digest: Callable[[str], str]) -> dict[str, str | None]:
    """Each path's digest, None for one that cannot be read (an output a build has not made, or deleted)."""
    digests: dict[str, str | None] = {}
    for path in paths:
        try:
            digests[path] = digest(path)
        except OSError:
            digests[path] = None
    return digests


def _memoized(function: Callable[[str], str]) -> Callable[[str], str]:
    """One digest per path for the whole check: a file is read (statted) once, not once per action."""
    memo: dict[str, str] = {}

    def digest(path: str) -> str:
        value = memo.get(path)
        if value is None:
            value = memo[path] = function(path)
        return value

    return digest
