"""The action graph: actions linked to the actions that produce their inputs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

import networkx as nx

from action_graph.action import Action


class OutputConflictError(ValueError):
    """Two actions declare the same output path."""


class ActionGraph:
    """Nodes are primary output paths (one per action); an edge u -> v means v reads an output of u."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self.graph = nx.DiGraph()
        self._producers: dict[str, Action] = {}
        self._directories: dict[str, str] = {}  # every parent directory of an output -> one such output
        for action in actions:
            self.add(action)

    def add(self, action: Action) -> None:
        for output in action.outputs:
            existing = self._producers.get(output)
            if existing is not None:
                raise OutputConflictError(
                    f"output '{output}' is declared by two actions: {existing.describe()} and {action.describe()}"
                )
            self._reject_prefix_conflict(output, action)
        for output in action.outputs:
            self._producers[output] = action
            parent = output
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                self._directories.setdefault(parent, output)
        self.graph.add_node(action.primary_output, action=action)

    def _reject_prefix_conflict(self, output: str, action: Action) -> None:
        """A file cannot also be a directory holding another output (Bazel's output prefix conflict)."""
        other = self._directories.get(output)
        parent = output
        while other is None and "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            other = parent if parent in self._producers else None
        if other is not None:
            owner = self._producers[other].owner
            raise OutputConflictError(
                f"output prefix conflict: one of the output paths '{output}' (belonging to {action.owner}) and "
                f"'{other}' (belonging to {owner}) is a prefix of the other"
            )

    def link(self) -> None:
        """Add the edges once all actions are known (inputs may be produced by later actions)."""
        for _, data in self.graph.nodes(data=True):
            action: Action = data["action"]
            for path in action.inputs:
                producer = self._producers.get(path)
                if producer is not None:
                    self.graph.add_edge(producer.primary_output, action.primary_output)

    @property
    def actions(self) -> list[Action]:
        return [data["action"] for _, data in self.graph.nodes(data=True)]

    def producer(self, path: str) -> Action | None:
        return self._producers.get(path)

    def dependencies(self, action: Action) -> list[Action]:
        return [self.graph.nodes[p]["action"] for p in self.graph.predecessors(action.primary_output)]

    def subgraph_for(self, outputs: Iterable[str]) -> ActionGraph:
        """Only the actions needed to produce `outputs`."""
        needed: set[str] = set()
        for path in outputs:
            producer = self._producers.get(path)
            if producer is not None:
                needed.add(producer.primary_output)
                needed |= nx.ancestors(self.graph, producer.primary_output)
        sub = ActionGraph(self.graph.nodes[n]["action"] for n in needed)
        sub.link()
        return sub

    def topological_order(self) -> list[Action]:
        order = nx.lexicographical_topological_sort(self.graph)
        return [self.graph.nodes[n]["action"] for n in order]

    def critical_path(self, cost: Callable[[Action], float]) -> tuple[float, list[Action]]:
        """The longest chain of dependent actions by `cost`, and its total."""
        best: dict[str, tuple[float, str | None]] = {}
        for node in nx.topological_sort(self.graph):
            own = cost(self.graph.nodes[node]["action"])
            before = max(((best[p][0], p) for p in self.graph.predecessors(node)), default=(0.0, None))
            best[node] = (before[0] + own, before[1])
        if not best:
            return 0.0, []
        node: str | None = max(best, key=lambda n: (best[n][0], n))
        total = best[node][0]
        path = []
        while node is not None:
            path.append(self.graph.nodes[node]["action"])
            node = best[node][1]
        return total, list(reversed(path))

    def remaining_critical_path(self, cost: Callable[[Action], float]) -> Mapping[str, float]:
        """For each action, the longest cost chain from it to the end: the scheduler's priority."""
        remaining: dict[str, float] = {}
        for node in reversed(list(nx.topological_sort(self.graph))):
            after = max((remaining[s] for s in self.graph.successors(node)), default=0.0)
            remaining[node] = cost(self.graph.nodes[node]["action"]) + after
        return remaining

    def to_json(self) -> str:
        actions = [a.to_json() for a in self.topological_order()]
        return json.dumps({"actions": actions}, indent=2, sort_keys=True) + "\n"

    def to_dot(self) -> str:
        lines = ["digraph actions {", "  node [shape=box];"]
        for action in self.topological_order():
            lines.append(f'  "{action.primary_output}" [label="{action.mnemonic}\\n{action.primary_output}"];')
        for producer, consumer in sorted(self.graph.edges):
            lines.append(f'  "{producer}" -> "{consumer}";')
        lines.append("}")
        return "\n".join(lines) + "\n"
