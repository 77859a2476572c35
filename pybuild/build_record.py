"""What happened in one build, as plain data: phases, every action's slot and times, and which
action fed which. Profiles, the timings report and benchmarks are all read from it."""

from __future__ import annotations

import bisect
import graphlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from action_graph.fileutil import atomic_write_text
from action_graph.scheduler import Outcome
from pybuild.phase_bound import phase_bound


@dataclass(frozen=True)
class ActionRecord:
    mnemonic: str
    owner: str
    primary_output: str  # identifies the action
    cached: bool
    ok: bool
    slot: int
    start: float  # seconds since the build started
    end: float
    peak_rss_kb: int = 0
    shares_process: bool = False  # ran inside another action's process (fused rmeta pipelining), or in none
    waited_for: str | None = None  # an action it waited for beyond its inputs (a cut hollow rlib's full compile)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class BuildRecord:
    jobs: int
    wall: float = 0.0
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start, end)
    actions: list[ActionRecord] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (producer output, consumer output)

    def critical_path(self) -> list[ActionRecord]:
        """The chain of dependent actions with the largest summed duration in this run."""
        by_output = {a.primary_output: a for a in self.actions}
        predecessors = self._predecessors()
        # graphlib, not networkx: this runs on every build and networkx alone takes ~0.1 s to import.
        best: dict[str, tuple[float, str | None]] = {}
        for node in graphlib.TopologicalSorter(predecessors).static_order():
            before = max(((best[p][0], p) for p in predecessors[node]), default=(0.0, None))
            best[node] = (before[0] + by_output[node].duration, before[1])
        node = max(best, key=lambda n: best[n][0], default=None)
        path = []
        while node is not None:
            path.append(by_output[node])
            node = best[node][1]
        return list(reversed(path))

    def bound(self) -> float:
        """No schedule on `jobs` slots can beat this: max(critical path, total action time / jobs). An action that
        shared another one's process added no work of its own, so only the critical path counts it."""
        critical = sum(a.duration for a in self.critical_path())
        total = sum(a.duration for a in self.actions if not a.shares_process)
        return max(critical, total / max(1, self.jobs))

    def phase_bound(self) -> float:
        """A floor no schedule of these actions beats, which also counts what must run alone (see phase_bound.py).

        A fused metadata action is its full compile's front end: here the compile is cut in two at the moment
        the metadata appeared, the front end taking the slot and its dependents waiting for it alone, the
        rest after it. Letting the rest move to any slot only lowers the floor, so it stays a floor."""
        durations = {a.primary_output: a.duration for a in self.actions}
        preds = self._predecessors()
        slotless = set()
        hosts = _ProcessesBySlot(a for a in self.actions if not a.shares_process)
        for action in self.actions:
            host = None if action.waited_for or not action.shares_process else hosts.running(action.slot, action.end)
            if host is not None:  # a fused front end: it and the rest of its compile
                durations[action.primary_output] = max(0.0, action.end - host.start)
                durations[host.primary_output] = max(0.0, host.end - action.end)
                preds[host.primary_output].add(action.primary_output)
            elif action.shares_process:  # a cut hollow rlib, or a front end whose compile is not recorded
                slotless.add(action.primary_output)
        return phase_bound(durations, preds, self.jobs, slotless)

    def _predecessors(self) -> dict[str, set[str]]:
        """Each action's producers among the recorded actions, and for a cut hollow rlib its full compile."""
        predecessors: dict[str, set[str]] = {a.primary_output: set() for a in self.actions}
        waits = [(a.waited_for, a.primary_output) for a in self.actions if a.waited_for]
        for producer, consumer in [*self.edges, *waits]:
            if producer in predecessors and consumer in predecessors:
                predecessors[consumer].add(producer)
        return predecessors

    def to_json(self) -> str:
        data = asdict(self)
        data["critical_path"] = [a.primary_output for a in self.critical_path()]
        data["bound"] = self.bound()
        data["phase_bound"] = self.phase_bound()
        return json.dumps(data, indent=1) + "\n"

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())

    def save_execution_log(self, path: Path) -> None:
        """--execution_log_json_file: one record per action that ran or was restored, in start order."""
        rows = [dict(asdict(a), duration=round(a.duration, 6)) for a in sorted(self.actions, key=lambda a: a.start)]
        atomic_write_text(path, json.dumps(rows, indent=1) + "\n")


class _ProcessesBySlot:
    """The actions that held slots, to find which one a slot ran at a given time (one at a time per slot)."""

    def __init__(self, actions: Iterable[ActionRecord]) -> None:
        self._by_slot: dict[int, list[ActionRecord]] = {}
        for action in sorted(actions, key=lambda a: a.start):
            self._by_slot.setdefault(action.slot, []).append(action)
        self._starts = {slot: [a.start for a in runs] for slot, runs in self._by_slot.items()}

    def running(self, slot: int, time: float) -> ActionRecord | None:
        index = bisect.bisect_right(self._starts.get(slot, []), time) - 1
        candidate = self._by_slot[slot][index] if index >= 0 else None
        return candidate if candidate is not None and time <= candidate.end else None


def action_records(outcomes: list[Outcome], offset: float) -> list[ActionRecord]:
    """Outcomes of a schedule, with times moved by `offset` seconds (from execution to build start)."""
    return [
        ActionRecord(
            mnemonic=o.action.mnemonic,
            owner=o.action.owner,
            primary_output=o.action.primary_output,
            cached=o.cached,
            ok=o.ok,
            slot=o.slot,
            start=round(o.start + offset, 6),
            end=round(o.end + offset, 6),
            peak_rss_kb=o.peak_rss_kb,
            shares_process=o.shares_process,
            waited_for=o.waited_for,
        )
        for o in outcomes
    ]
