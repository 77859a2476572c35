"""The scheduler's plan on fake actions (pure logic: no processes run): fusion of an early-output action
with the action whose process writes that output, and what happens when that process fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from action_graph.action import Action
from action_graph.graph import ActionGraph
from action_graph.scheduler import EARLY_OUTPUT_OF, EARLY_OUTPUT_PATH, Budget, Outcome, Scheduler


def _crate(name: str, deps: list[str]) -> list[Action]:
    """A crate in rmeta pipelining: its .rmeta can come early from the process of its full compile."""
    inputs = tuple(f"{dep}.rmeta" for dep in deps)
    requirements = ((EARLY_OUTPUT_OF, f"{name}.rlib"), (EARLY_OUTPUT_PATH, f"out/{name}.rmeta"))
    return [
        Action(
            "RustcMetadata", f"//:{name}", ("rustc",), (f"{name}.rmeta",), inputs, execution_requirements=requirements
        ),
        Action("Rustc", f"//:{name}", ("rustc",), (f"{name}.rlib",), inputs),
    ]


def _chain() -> ActionGraph:
    link = Action("Rustc", "//:app", ("rustc",), ("app",), ("a.rlib", "b.rlib"))
    graph = ActionGraph([*_crate("a", []), *_crate("b", ["a"]), link])
    graph.link()
    return graph


class _Recorder:
    """Fake executors that log (event, action) in order; a fused run settles the early action halfway."""

    def __init__(self, fail: str | None = None, settle: bool = True) -> None:
        self.events: list[tuple[str, str]] = []
        self.fused: list[tuple[str, str, int]] = []
        self.fail = fail
        self.settle = settle
        self._lock = threading.Lock()

    def _log(self, event: str, action: Action) -> None:
        with self._lock:
            self.events.append((event, action.primary_output))

    def execute(self, action: Action, slot: int) -> Outcome:
        self._log("start", action)
        time.sleep(0.05)
        self._log("end", action)
        return Outcome(action, action.primary_output != self.fail, slot=slot)

    def execute_fused(self, early: Action, main: Action, slot: int, settle: Callable[[Outcome], None]) -> Outcome:
        self.fused.append((early.primary_output, main.primary_output, slot))
        self._log("start", main)
        time.sleep(0.05)
        if self.settle:
            self._log("early", early)
            settle(Outcome(early, True, slot=slot))
        time.sleep(0.2)  # codegen: long enough for dependents to start meanwhile
        self._log("end", main)
        return Outcome(main, main.primary_output != self.fail, slot=slot)


def _run(recorder: _Recorder, jobs: int, fuse: bool = True):
    scheduler = Scheduler(_chain(), jobs, cost=lambda a: 1.0, keep_going=False)
    fused = recorder.execute_fused if fuse else None
    return scheduler.run(recorder.execute, lambda a, s: None, lambda o: None, lambda: None, fused)


def test_one_process_serves_metadata_and_full_compile_and_dependents_start_before_it_ends() -> None:
    recorder = _Recorder()
    result = _run(recorder, jobs=2)
    assert [(e, m) for e, m, _ in recorder.fused] == [("a.rmeta", "a.rlib"), ("b.rmeta", "b.rlib")]
    assert result.executed == 5 and not result.failures
    events = recorder.events
    # b's process starts once a's metadata is out, while a's process still runs its codegen.
    assert events.index(("early", "a.rmeta")) < events.index(("start", "b.rlib")) < events.index(("end", "a.rlib"))
    assert events.index(("end", "b.rlib")) < events.index(("start", "app"))


def test_a_fused_run_holds_one_slot_so_one_job_runs_everything_in_order() -> None:
    recorder = _Recorder()
    result = _run(recorder, jobs=1)
    assert {slot for _, _, slot in recorder.fused} == {1}
    started = [output for event, output in recorder.events if event == "start"]
    assert started == ["a.rlib", "b.rlib", "app"]
    assert result.executed == 5


def test_without_a_fusing_executor_every_action_runs_on_its_own() -> None:
    recorder = _Recorder()
    result = _run(recorder, jobs=2, fuse=False)
    assert recorder.fused == []
    assert sorted(o for e, o in recorder.events if e == "start") == ["a.rlib", "a.rmeta", "app", "b.rlib", "b.rmeta"]
    assert result.executed == 5


def test_a_process_that_never_writes_the_early_output_fails_both_actions_and_stops_dependents() -> None:
    recorder = _Recorder(fail="a.rlib", settle=False)
    result = _run(recorder, jobs=2)
    failed = {o.action.primary_output: o.error for o in result.failures}
    assert set(failed) == {"a.rmeta", "a.rlib"}
    assert "Rustc a.rlib (owner //:a), its process, did not write it" in (failed["a.rmeta"] or "")
    assert {a.primary_output for a in result.skipped} == {"b.rmeta", "b.rlib", "app"}


def test_the_most_critical_action_that_fits_the_memory_budget_starts_next() -> None:
    """big and mid together exceed the budget: with big running, small (less critical than mid) starts
    beside it, and mid waits for big to end."""
    actions = {name: Action("Rustc", f"//:{name}", ("rustc",), (name,), ()) for name in ("big", "mid", "small")}
    graph = ActionGraph(actions.values())
    graph.link()
    costs, memory = {"big": 3.0, "mid": 2.0, "small": 1.0}, {"big": 300.0, "mid": 300.0, "small": 100.0}
    budget = Budget(450.0, lambda action: memory[action.primary_output])
    scheduler = Scheduler(graph, 2, cost=lambda a: costs[a.primary_output], keep_going=False, budget=budget)
    recorder = _Recorder()
    result = scheduler.run(recorder.execute, lambda a, s: None, lambda o: None, lambda: None)
    assert result.executed == 3
    assert [output for event, output in recorder.events if event == "start"] == ["big", "small", "mid"]
    assert recorder.events.index(("end", "big")) < recorder.events.index(("start", "mid"))


def test_a_graph_without_the_done_actions_starts_what_they_produced_for_at_once() -> None:
    """The up-to-date check hands the scheduler the graph without the actions it vouched for: their
    dependents start as if those had just finished, and nothing else of the graph runs."""
    a, b, c = (
        Action("Rustc", f"//:{n}", ("rustc",), (f"{n}.rlib",), inputs)
        for n, inputs in (("a", ()), ("b", ("a.rlib",)), ("c", ("b.rlib",)))
    )
    graph = ActionGraph([a, b, c])
    graph.link()
    left = graph.without({"a.rlib"})
    assert left.predecessors() == {"b.rlib": (), "c.rlib": ("b.rlib",)}
    recorder = _Recorder()
    scheduler = Scheduler(left, 2, cost=lambda action: 1.0, keep_going=False)
    result = scheduler.run(recorder.execute, lambda a, s: None, lambda o: None, lambda: None)
    assert (result.executed, result.skipped) == (2, [])
    assert [output for event, output in recorder.events if event == "start"] == ["b.rlib", "c.rlib"]
