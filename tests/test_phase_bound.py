"""The phase floor: exact on small shapes, never above a real schedule, never below max(path, work / jobs)."""

from __future__ import annotations

import random

import pytest

from action_graph.list_schedule import ScheduleGraph
from pybuild.build_record import ActionRecord, BuildRecord
from pybuild.phase_bound import _bottleneck_flags, phase_bound


def _diamond(width: int) -> dict[str, list[str]]:
    middle = [f"m{i}" for i in range(width)]
    return {"top": [], **{m: ["top"] for m in middle}, "bottom": middle}


def test_a_diamond_s_first_and_last_actions_run_alone() -> None:
    durations = {"top": 1.0, "bottom": 1.0, **{f"m{i}": 1.0 for i in range(4)}}
    # max(critical path 3, work 6 / 2) is 3; top and bottom each hold a slot while the other one idles.
    assert phase_bound(durations, _diamond(4), jobs=2) == pytest.approx(1 + 4 / 2 + 1)


def test_without_bottlenecks_it_is_the_usual_bound() -> None:
    durations = {"a1": 2.0, "a2": 2.0, "b1": 1.0, "b2": 1.0}
    preds = {"a2": ["a1"], "b2": ["b1"]}
    assert phase_bound(durations, preds, jobs=2) == pytest.approx(max(4.0, 6.0 / 2))
    assert phase_bound(durations, preds, jobs=1) == pytest.approx(6.0)


def test_a_chain_is_its_own_critical_path() -> None:
    durations = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert phase_bound(durations, {"b": ["a"], "c": ["b"]}, jobs=4) == pytest.approx(6.0)


def test_a_slotless_action_lengthens_a_path_but_adds_no_work() -> None:
    durations = {"full": 4.0, "cut": 0.5, **{f"m{i}": 1.0 for i in range(4)}}
    preds = {"cut": ["full"], **{f"m{i}": ["cut"] for i in range(4)}}
    assert phase_bound(durations, preds, jobs=2, slotless={"cut"}) == pytest.approx(4.0 + 0.5 + 4 / 2)


def test_predecessors_that_are_not_actions_count_as_done() -> None:
    assert phase_bound({"a": 1.0}, {"a": ["cached elsewhere"]}, jobs=2) == pytest.approx(1.0)


def _random_dag(rng: random.Random, size: int) -> tuple[dict[str, float], dict[str, list[str]]]:
    names = [f"n{i}" for i in range(size)]
    density = rng.choice([0.1, 0.3, 0.6])
    preds = {n: [p for p in names[:i] if rng.random() < density] for i, n in enumerate(names)}
    return {n: rng.choice([0.0, 0.5, 1.0, 3.0]) for n in names}, preds


def _naive_bottlenecks(durations: dict[str, float], preds: dict[str, list[str]]) -> set[str]:
    def closure(node: str, edges: dict[str, list[str]]) -> set[str]:
        found, todo = set(), list(edges.get(node, []))
        while todo:
            other = todo.pop()
            if other not in found:
                found.add(other)
                todo.extend(edges.get(other, []))
        return found

    succs: dict[str, list[str]] = {n: [] for n in durations}
    for node, producers in preds.items():
        for producer in producers:
            succs[producer].append(node)
    return {n for n in durations if closure(n, preds) | closure(n, succs) | {n} == set(durations)}


@pytest.mark.parametrize("seed", range(40))
def test_bottlenecks_are_the_nodes_every_other_node_precedes_or_follows(seed: int) -> None:
    rng = random.Random(seed)
    durations, preds = _random_dag(rng, rng.randint(1, 12))
    order = list(durations)  # generated in a topological order
    pred_sets = {n: set(p) for n, p in preds.items()}
    succ_sets: dict[str, set[str]] = {n: set() for n in order}
    for node, producers in preds.items():
        for producer in producers:
            succ_sets[producer].add(node)
    flags = _bottleneck_flags(order, pred_sets, succ_sets)
    assert {n for n, flag in zip(order, flags, strict=True) if flag} == _naive_bottlenecks(durations, preds)


@pytest.mark.parametrize("seed", range(60))
def test_the_floor_lies_between_the_usual_bound_and_a_real_schedule(seed: int) -> None:
    rng = random.Random(1000 + seed)
    durations, preds = _random_dag(rng, rng.randint(2, 30))
    slotless = {n for n in durations if rng.random() < 0.15}
    jobs = rng.randint(1, 3)
    floor = phase_bound(durations, preds, jobs, slotless)
    schedule = ScheduleGraph(durations, preds).makespan(durations, jobs, slotless=slotless)
    graph = ScheduleGraph(durations, preds)
    critical = max(graph.remaining(durations).values())
    work = sum(d for n, d in durations.items() if n not in slotless)
    assert max(critical, work / jobs) - 1e-9 <= floor <= schedule + 1e-9


def _action(output: str, slot: int, start: float, end: float, **kwargs: object) -> ActionRecord:
    return ActionRecord("Rustc", "//x", output, False, True, slot, start, end, **kwargs)


def test_a_fused_front_end_is_split_from_its_compile() -> None:
    # rmeta mode: b, c and d compile against a's metadata, which appears 1 s into a's 2 s compile, in its process.
    record = BuildRecord(
        jobs=2,
        actions=[
            _action("a.rlib", 0, 0.0, 2.0),
            _action("a.rmeta", 0, 0.0, 1.0, shares_process=True),
            _action("b.rlib", 1, 1.0, 3.0),
            _action("c.rlib", 0, 2.0, 4.0),
            _action("d.rlib", 1, 3.0, 5.0),
            _action("bin", 0, 5.0, 6.0),
        ],
        edges=[(p, c) for p in ("a.rmeta",) for c in ("b.rlib", "c.rlib", "d.rlib")]
        + [(p, "bin") for p in ("a.rlib", "b.rlib", "c.rlib", "d.rlib")],
    )
    # a's front end runs alone, then a's codegen (1 s) and b, c, d (2 s each) on 2 slots, then the link alone.
    assert record.phase_bound() == pytest.approx(1 + 7 / 2 + 1)
    # max(critical path a.rmeta, b, bin = 4, work 9 / 2): the usual bound lets the link share its time.
    assert record.bound() == pytest.approx(4.5)


def test_a_cut_hollow_rlib_waits_for_the_compile_it_was_cut_from() -> None:
    record = BuildRecord(
        jobs=2,
        actions=[
            _action("a.rlib", 0, 0.0, 3.0),
            _action("a_meta.rlib", 0, 3.0, 3.1, shares_process=True, waited_for="a.rlib"),
            _action("b.rlib", 0, 3.1, 5.1),
            _action("c.rlib", 1, 3.1, 5.1),
        ],
        edges=[("a_meta.rlib", "b.rlib"), ("a_meta.rlib", "c.rlib")],
    )
    assert record.phase_bound() == pytest.approx(3.0 + 0.1 + 2.0)
