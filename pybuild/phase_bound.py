"""A floor under every schedule of one build's actions that knows the graph's shape.

`max(critical path, work / jobs)` assumes any action could run beside any other. Some cannot: when every
other action must end before an action starts or start after it ends (the first crate of a diamond, the
final link), that action runs alone in every schedule, with nothing to fill the other slots. Such
bottlenecks cut a build into phases that no schedule can overlap, so no schedule ends before

    sum of the bottlenecks' durations + sum over the phases of max(phase's critical path, phase's work / jobs)

This is never below `max(critical path, work / jobs)`, and equal to it for a graph without bottlenecks. So it
tells a `wall / bound` that no scheduler could reach with a run's actions from one that pybuild's misses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from action_graph.list_schedule import ScheduleGraph


def phase_bound(
    durations: Mapping[str, float],
    predecessors: Mapping[str, Collection[str]],
    jobs: int,
    slotless: Collection[str] = (),
) -> float:
    """The floor for actions of `durations` with the given direct predecessors on `jobs` slots. A `slotless`
    action runs beside the others without a slot (part of another action's process): it lengthens paths but
    adds no work. Predecessors that are not actions count as done."""
    graph = ScheduleGraph(durations, predecessors)  # drops predecessors that are not actions
    order = graph.order
    preds = {node: set(producers) for node, producers in graph.preds.items()}
    succs = {node: set(consumers) for node, consumers in graph.succs.items()}
    cuts = [i for i, ok in enumerate(_bottleneck_flags(order, preds, succs)) if ok]
    total = sum(durations[order[i]] for i in cuts)
    for start, end in zip([-1, *cuts], [*cuts, len(order)], strict=True):
        phase = order[start + 1 : end]
        if phase:
            work = sum(durations[node] for node in phase if node not in slotless)
            total += max(_longest_chain(phase, preds, durations), work / max(1, jobs))
    return total


def _bottleneck_flags(order: Sequence[str], preds: Mapping[str, set[str]], succs: Mapping[str, set[str]]) -> list[bool]:
    """For each node of the topological order: whether every other node is its ancestor or its descendant.

    Every node before position i reaches the node there exactly when each maximal node of that prefix (one
    with no successor inside it) is a direct predecessor: a path from a maximal node leaves the prefix at once.
    The same holds backwards for the suffix and its minimal nodes. One sweep each way keeps those frontiers."""
    return [
        before and after
        for before, after in zip(
            _frontier_flags(order, preds), reversed(_frontier_flags(order[::-1], succs)), strict=True
        )
    ]


def _frontier_flags(order: Sequence[str], inward: Mapping[str, set[str]]) -> list[bool]:
    frontier: set[str] = set()
    flags = []
    for node in order:
        flags.append(frontier <= inward[node])
        frontier -= inward[node]
        frontier.add(node)
    return flags


def _longest_chain(phase: Sequence[str], preds: Mapping[str, set[str]], durations: Mapping[str, float]) -> float:
    """The longest path of durations among the phase's nodes (given in topological order)."""
    finish: dict[str, float] = {}
    for node in phase:
        finish[node] = durations[node] + max((finish[p] for p in preds[node] if p in finish), default=0.0)
    return max(finish.values())
