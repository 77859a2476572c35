"""Runs an action graph on N slots, always starting the ready action with the longest remaining
critical path, so pipelined metadata actions unblock dependents while codegen still runs."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from action_graph.action import Action
from action_graph.graph import ActionGraph


@dataclass
class Outcome:
    """How one action ended. `cached` means its outputs came from the action cache."""

    action: Action
    ok: bool
    cached: bool = False
    output: str = ""
    duration: float = 0.0
    peak_rss_kb: int = 0
    error: str | None = None
    start: float = 0.0  # seconds since the build started
    end: float = 0.0
    slot: int = 0


@dataclass
class ScheduleResult:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[Action] = field(default_factory=list)  # never ran because something they need failed

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def executed(self) -> int:
        return sum(1 for o in self.outcomes if o.ok and not o.cached)

    @property
    def cached(self) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.cached)


class Scheduler:
    def __init__(self, graph: ActionGraph, jobs: int, cost: Callable[[Action], float], keep_going: bool) -> None:
        self.graph = graph
        self.jobs = max(1, jobs)
        self.priority = graph.remaining_critical_path(cost)
        self.keep_going = keep_going

    def run(
        self,
        execute: Callable[[Action, int], Outcome],
        on_start: Callable[[Action, int], None],
        on_finish: Callable[[Outcome], None],
    ) -> ScheduleResult:
        nodes = self.graph.graph
        waiting = {node: nodes.in_degree(node) for node in nodes}
        ready = [(-self.priority[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        result = ScheduleResult()
        free_slots = list(range(self.jobs, 0, -1))
        running: dict[Future[Outcome], tuple[str, int]] = {}
        stopping = False
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while running or (ready and not stopping):
                while ready and free_slots and not stopping:
                    _, node = heapq.heappop(ready)
                    slot = free_slots.pop()
                    action = nodes.nodes[node]["action"]
                    on_start(action, slot)
                    running[pool.submit(execute, action, slot)] = (node, slot)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    node, slot = running.pop(future)
                    free_slots.append(slot)
                    outcome = future.result()
                    result.outcomes.append(outcome)
                    on_finish(outcome)
                    if outcome.ok:
                        self._release(node, waiting, ready)
                    elif not self.keep_going:
                        stopping = True
        done_nodes = {o.action.primary_output for o in result.outcomes}
        result.skipped = [nodes.nodes[n]["action"] for n in nodes if n not in done_nodes]
        return result

    def _release(self, node: str, waiting: dict[str, int], ready: list[tuple[float, str]]) -> None:
        for successor in self.graph.graph.successors(node):
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, (-self.priority[successor], successor))
