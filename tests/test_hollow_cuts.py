"""Hollow rlibs cut from full rlibs, on fake archives and fake actions (pure logic: no rustc runs; the real
rustc's bytes are compared in test_fusion.py): the archive surgery, the plan, and the scheduler's part."""

from __future__ import annotations

import io
import threading
from itertools import pairwise
from pathlib import Path

import pytest

from action_graph import scheduler
from action_graph.action import Action
from action_graph.graph import ActionGraph
from action_graph.hollow_cuts import plan_cuts
from action_graph.list_schedule import ScheduleGraph
from action_graph.rlib import metadata_span, write_hollow_rlib
from action_graph.scheduler import HOLLOW_RLIB_OF, Outcome, Scheduler


def _member(name: bytes, data: bytes, mode: bytes = b"644") -> bytes:
    header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + mode.ljust(8) + str(len(data)).encode().ljust(10)
    return header + b"`\n" + data + (b"\n" if len(data) % 2 else b"")


_EMPTY_SYMBOLS = _member(b"/", bytes(8), mode=b"0")
_LONG_NAMES = b"crate-1234.crate.0123456789abcdef-cgu.0.rcgu.o/\n"


def _full_rlib(metadata: bytes, extra: bytes = b"") -> bytes:
    symbols = _member(b"/", b"\x00\x00\x00\x01\x00\x00\x00\x44sym\x00")
    objects = _member(b"//", _LONG_NAMES) + _member(b"/0", b"\x7fELF object") + _member(b"a.rcgu.o/", b"obj")
    return b"!<arch>\n" + symbols + objects + _member(b"lib.rmeta/", metadata) + extra


def _cut(tmp_path: Path, archive: bytes) -> bytes | None:
    full = tmp_path / "full.rlib"
    full.write_bytes(archive)
    span = metadata_span(full)
    if span is None:
        return None
    hollow = io.BytesIO()
    write_hollow_rlib(full, span, hollow)
    return hollow.getvalue()


@pytest.mark.parametrize("metadata", [b"rust metadata", b"odd-sized metadata"])  # 13 and 18 bytes
def test_the_hollow_rlib_is_an_empty_symbol_table_and_the_metadata_member_as_it_was(
    tmp_path: Path, metadata: bytes
) -> None:
    expected = b"!<arch>\n" + _EMPTY_SYMBOLS + _member(b"lib.rmeta/", metadata)
    assert _cut(tmp_path, _full_rlib(metadata)) == expected


@pytest.mark.parametrize(
    "archive",
    [
        _full_rlib(b"meta", extra=_member(b"libfoo.o/", b"native code")),  # a bundled native library
        b"!<arch>\n" + _member(b"a.rcgu.o/", b"obj"),  # no metadata
        b"!<arch>\n#1/20           0           0     0     644     24        `\n",  # BSD names
        b"!<arch>\n" + b"lib.rmeta/".ljust(48) + b"size?".ljust(10) + b"`\n",  # not a size
        b"\x7fELF not an archive",
    ],
)
def test_an_archive_with_anything_but_metadata_and_codegen_objects_is_not_cut(tmp_path: Path, archive: bytes) -> None:
    assert _cut(tmp_path, archive) is None


def _makespan(durations: dict[str, float], predecessors: dict[str, list[str]], **variant) -> float:
    return ScheduleGraph(durations, predecessors, variant.get("extra")).makespan(durations, 2, **variant)


def test_the_list_schedule_packs_slots_and_lets_slotless_actions_run_beside_them() -> None:
    three = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert _makespan(three, {}) == 2.0
    assert _makespan(three, {}, slotless={"c"}) == 1.0
    assert _makespan(three, {"b": ["a"], "c": ["b"]}) == 3.0
    # An extra edge of a variant: c waits for a, then takes no time and no slot.
    assert _makespan({**three, "c": 0.0}, {}, extra={"c": "a"}, slotless={"c"}) == 1.0
    # The longest remaining path goes first: x starts at once, so y and z share the other slot after.
    assert _makespan({"x": 3.0, "y": 1.0, "z": 1.0, "w": 1.0}, {"w": ["y"]}) == 3.0


def _plan(costs: dict[str, float], predecessors: dict[str, list[str]], pairs: dict[str, str]) -> dict[str, str]:
    return plan_cuts(ScheduleGraph(costs, predecessors, pairs), costs, pairs, jobs=2).cuts


def _crate_costs(names: list[str], meta: float, full: float) -> dict[str, float]:
    return {f"{n}.{kind}": cost for n in names for kind, cost in (("meta", meta), ("rlib", full))}


def test_a_chain_that_waits_on_each_metadata_action_keeps_them_all() -> None:
    names = [f"c{i}" for i in range(6)]
    costs = _crate_costs(names, meta=1.0, full=4.0)
    predecessors = {f"{n}.{kind}": [f"{p}.meta"] for p, n in pairwise(names) for kind in ("meta", "rlib")}
    pairs = {f"{n}.meta": f"{n}.rlib" for n in names[:-1]}
    assert _plan(costs, predecessors, pairs) == {}


def test_many_crates_ready_at_once_on_few_slots_are_all_cut() -> None:
    leaves = [f"leaf{i}" for i in range(8)]
    costs = {**_crate_costs(leaves, meta=1.0, full=1.2), "top.rlib": 1.0}
    predecessors = {"top.rlib": [f"{n}.meta" for n in leaves]}
    pairs = {f"{n}.meta": f"{n}.rlib" for n in leaves}
    assert _plan(costs, predecessors, pairs) == pairs


def test_only_crates_off_the_critical_path_are_cut_when_that_ends_first() -> None:
    # A long chain s0 <- s1 <- s2 <- s3 gates the build; two small crates feed only its last library.
    # (s3's metadata action is not there: no library reads it.)
    spine = [f"s{i}" for i in range(4)]
    costs = {**_crate_costs(spine[:-1], meta=2.0, full=2.5), **_crate_costs(["x", "y"], meta=0.4, full=0.5)}
    costs["s3.rlib"] = 2.5
    predecessors = {f"{n}.{kind}": [f"{p}.meta"] for p, n in pairwise(spine[:-1]) for kind in ("meta", "rlib")}
    predecessors["s3.rlib"] = ["s2.meta", "x.meta", "y.meta"]
    pairs = {f"{n}.meta": f"{n}.rlib" for n in [*spine[:-1], "x", "y"]}
    assert _plan(costs, predecessors, pairs) == {"x.meta": "x.rlib", "y.meta": "y.rlib"}


def _hollow_crate(name: str, deps: list[str]) -> list[Action]:
    inputs = tuple(f"{dep}.meta" for dep in deps)
    cut_from = ((HOLLOW_RLIB_OF, f"{name}.rlib"),)
    return [
        Action("RustcMetadata", f"//:{name}", ("rustc",), (f"{name}.meta",), inputs, execution_requirements=cut_from),
        Action("Rustc", f"//:{name}", ("rustc",), (f"{name}.rlib",), inputs),
    ]


def _wide_graph() -> ActionGraph:
    """Four independent crates under one library: on 2 slots their metadata actions only add work."""
    leaves = ["a", "b", "c", "d"]
    top = Action("Rustc", "//:top", ("rustc",), ("top.rlib",), tuple(f"{n}.meta" for n in leaves))
    graph = ActionGraph([action for n in leaves for action in _hollow_crate(n, [])] + [top])
    graph.link()
    return graph


class _Executors:
    def __init__(self, fail: str | None = None) -> None:
        self.ran: list[str] = []
        self.cut: list[tuple[str, str, int]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def execute(self, action: Action, slot: int) -> Outcome:
        with self._lock:
            self.ran.append(action.primary_output)
        return Outcome(action, action.primary_output != self.fail, slot=slot)

    def execute_cut(self, hollow: Action, full: Action, slot: int) -> Outcome:
        with self._lock:
            assert full.primary_output in self.ran  # only once the full rlib is built
            self.cut.append((hollow.primary_output, full.primary_output, slot))
            self.ran.append(hollow.primary_output)
        return Outcome(hollow, True, slot=slot, shares_process=True)


def _run(executors: _Executors, cut: bool = True):
    costs = {"RustcMetadata": 1.0, "Rustc": 1.2}
    scheduler = Scheduler(_wide_graph(), 2, cost=lambda a: costs[a.mnemonic], keep_going=False)
    execute_cut = executors.execute_cut if cut else None
    return scheduler.run(executors.execute, lambda a, s: None, lambda o: None, lambda: None, None, execute_cut)


def test_cut_metadata_actions_never_run_and_each_follows_its_full_compile_in_its_slot() -> None:
    executors = _Executors()
    result = _run(executors)
    assert sorted(hollow for hollow, _, _ in executors.cut) == ["a.meta", "b.meta", "c.meta", "d.meta"]
    assert all(hollow[0] == full[0] and slot in (1, 2) for hollow, full, slot in executors.cut)
    assert executors.ran.index("top.rlib") > max(executors.ran.index(h) for h, _, _ in executors.cut)
    assert result.executed == 9 and not result.failures


def test_without_a_cutting_executor_every_metadata_action_runs() -> None:
    executors = _Executors()
    result = _run(executors, cut=False)
    assert executors.cut == [] and {"a.meta", "d.meta"} <= set(executors.ran)
    assert result.executed == 9


def test_a_graph_too_big_to_plan_quickly_gets_no_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler, "PLANNED_EDGES", 3)  # the wide graph has 4 edges
    executors = _Executors()
    _run(executors)
    assert executors.cut == [] and {"a.meta", "d.meta"} <= set(executors.ran)


def test_a_failed_full_compile_leaves_its_hollow_rlib_uncut_and_its_dependents_unbuilt() -> None:
    executors = _Executors(fail="b.rlib")
    result = _run(executors)
    assert "b.meta" not in executors.ran
    assert {a.primary_output for a in result.skipped} >= {"b.meta", "top.rlib"}
