"""List schedules: actions of known durations on N slots with no overhead between them, always starting the
ready action with the longest remaining path (what the scheduler does). The scheduler plans with them; the
benchmarks judge a measured run against one.

Graphs of thousands of crates have millions of edges (an action reads the metadata of every crate below),
so a graph is prepared once (successors, a topological order) and variants of it are estimated on that:
other durations, and extra edges, each into a node from one more producer.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

Node = TypeVar("Node", bound=Hashable)


def longest_remaining(
    order: Sequence[str], successors: Mapping[str, Sequence[str]], duration: Callable[[str], float]
) -> dict[str, float]:
    """For each node of a topological order, the longest chain of durations from its start to the end: the
    priority of list scheduling, with which the scheduler picks what runs next."""
    remaining: dict[str, float] = {}
    longest = remaining.__getitem__
    for node in reversed(order):
        remaining[node] = duration(node) + max(map(longest, successors[node]), default=0.0)
    return remaining


def reachable(starts: Iterable[Node], adjacency: Mapping[Node, Sequence[Node]]) -> set[Node]:
    """The start nodes and every node reached from them along `adjacency` (a node without an entry has no
    neighbours)."""
    found = set(starts)
    pending = list(found)
    while pending:
        fresh = [node for node in adjacency.get(pending.pop(), ()) if node not in found]
        found.update(fresh)
        pending.extend(fresh)
    return found


def dependencies_first(waiting: dict[Node, int], successors: Mapping[Node, Sequence[Node]]) -> list[Node]:
    """Kahn's algorithm: the nodes in an order where each comes after its predecessors. `waiting` holds each
    node's number of predecessors and is used up. Nodes on a cycle, or after one, are left out."""
    order = [node for node, count in waiting.items() if count == 0]
    for node in order:  # grows while iterating
        for successor in successors[node]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                order.append(successor)
    return order


def smallest_first(
    waiting: dict[Node, int], successors: Mapping[Node, Sequence[Node]], key: Callable[[Node], Any]
) -> list[Node]:
    """Kahn's algorithm taking, among the nodes free to go next, the one with the smallest key (no two nodes
    may share one): networkx's lexicographical_topological_sort. `waiting` holds each node's number of
    predecessors and is used up. Nodes on a cycle, or after one, are left out."""
    ready = [(key(node), node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)[1]
        order.append(node)
        for successor in successors[node]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, (key(successor), successor))
    return order


class ScheduleGraph:
    def __init__(
        self, nodes: Iterable[str], predecessors: Mapping[str, Sequence[str]], extra: Mapping[str, str] | None = None
    ) -> None:
        """`extra` (node -> producer) are edges that variants may add; the order allows for all of them.
        Predecessors that are not among `nodes` count as done."""
        self.nodes = list(nodes)
        known = set(self.nodes)
        self.preds = {node: [p for p in predecessors.get(node, ()) if p in known] for node in self.nodes}
        self.succs: dict[str, list[str]] = {node: [] for node in self.nodes}
        for node, producers in self.preds.items():
            for producer in producers:
                self.succs[producer].append(node)
        self.order = self._topological_order(extra or {})

    def _topological_order(self, extra: Mapping[str, str]) -> list[str]:
        count = {node: len(producers) + (node in extra) for node, producers in self.preds.items()}
        return dependencies_first(count, self._successors(extra))

    def _successors(self, extra: Mapping[str, str]) -> Mapping[str, Sequence[str]]:
        """Successor lists with the extra edges added (a copy of the few lists they change)."""
        if not extra:
            return self.succs
        return {**self.succs, **{producer: [*self.succs[producer], node] for node, producer in extra.items()}}

    def remaining(self, durations: Mapping[str, float], extra: Mapping[str, str] | None = None) -> dict[str, float]:
        """For each action, the longest chain of durations from its start to the end of the build."""
        return longest_remaining(self.order, self._successors(extra or {}), durations.__getitem__)

    def makespan(
        self,
        durations: Mapping[str, float],
        jobs: int,
        extra: Mapping[str, str] | None = None,
        slotless: Collection[str] = (),
    ) -> float:
        """When the last action ends. `slotless` actions run beside the others without taking a slot (a fused
        or cut metadata action is part of another action's process)."""
        extra = extra or {}
        successors = self._successors(extra)
        remaining = longest_remaining(self.order, successors, durations.__getitem__)
        waiting = {node: len(producers) + (node in extra) for node, producers in self.preds.items()}
        ready: list[tuple[float, str]] = []
        running: list[tuple[float, str]] = []

        def release(node: str, now: float) -> None:
            if node in slotless:
                heapq.heappush(running, (now + durations[node], node))
            else:
                heapq.heappush(ready, (-remaining[node], node))

        for node, count in waiting.items():
            if count == 0:
                release(node, 0.0)
        busy = 0  # slots taken
        now = 0.0
        while ready or running:
            while ready and busy < jobs:
                node = heapq.heappop(ready)[1]
                heapq.heappush(running, (now + durations[node], node))
                busy += 1
            now, node = heapq.heappop(running)
            busy -= node not in slotless
            for successor in successors[node]:
                left = waiting[successor] = waiting[successor] - 1
                if left == 0:
                    release(successor, now)
        return now
