"""The action graph: actions linked to the actions that produce their inputs."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping

from action_graph.action import Action
from action_graph.list_schedule import dependencies_first, longest_remaining, reachable, smallest_first


class OutputConflictError(ValueError):
    """Two actions declare the same output path."""


class ActionGraph:
    """Nodes are primary output paths (one per action); an edge u -> v means v reads an output of u.

    The graph is kept in plain dicts, never in networkx: at 10,000 targets it has 1.5 million edges, which
    networkx takes seconds and hundreds of MB to hold.
    """

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._actions: dict[str, Action] = {}  # primary output -> action, in the order added
        # Adjacency as lists and tuples, not sets: inputs hold every crate below, so a deep graph has millions
        # of (transitive) edges, and a dict entry per edge cost ~100 MB at 10,000 targets.
        self._succ: dict[str, list[str]] = {}
        self._pred: dict[str, tuple[str, ...]] = {}
        # Names the analysis that made these actions where the load cache keeps it (every copy has the same
        # token): UpToDate trusts an action with the token it knows without comparing it field by field.
        self.token: str | None = None
        # Actions an analysis kept from an earlier one (an incremental analysis): primary output -> its token.
        self.earlier_tokens: dict[str, str] = {}
        self._producers: dict[str, Action] = {}
        self._directories: dict[str, str] = {}  # every parent directory of an output -> one such output
        for action in actions:
            self.add(action)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"token": None, "earlier_tokens": {}, **state})

    def token_of(self, node: str) -> str | None:
        """The token of the analysis that made the action of `node`."""
        return self.earlier_tokens.get(node, self.token)

    def add(self, action: Action) -> None:
        for output in action.outputs:
            existing = self._producers.get(output)
            if existing is not None:
                raise OutputConflictError(
                    f"output '{output}' is declared by two actions: {existing.describe()} and {action.describe()}"
                )
            self._reject_prefix_conflict(output, action)
        self._add_known(action)

    def _add_known(self, action: Action) -> None:
        """add() without the conflict checks, for an action of a graph that passed them."""
        for output in action.outputs:
            self._producers[output] = action
            parent = output
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                if parent in self._directories:
                    break  # and so are the directories above it
                self._directories[parent] = output
        node = action.primary_output
        if node not in self._actions:
            self._succ[node], self._pred[node] = [], ()
        self._actions[node] = action

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

    def link(self, known: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """Make the edges once all actions are known (inputs may be produced by later actions). `known` holds
        the producers of some actions already: those an incremental analysis kept, linked in an earlier graph
        (what they read is made by targets they depend on, which it kept too)."""
        producer_of = {path: action.primary_output for path, action in self._producers.items()}.get
        succ: dict[str, list[str]] = {node: [] for node in self._actions}
        pred: dict[str, tuple[str, ...]] = {}
        distinct: dict[tuple[str, ...], tuple[str, ...]] = {}  # actions reading alike share one tuple
        by_inputs: dict[int, tuple[str, ...]] = {}  # a crate's actions share their inputs tuple: look it up once
        linked = known or {}
        for node, action in self._actions.items():
            producers = linked[node] if node in linked else by_inputs.get(id(action.inputs))
            if producers is None:
                # Its producers in input order, each once. Inputs hold every crate below, so this is the hot
                # loop of linking: map() and filter() keep it in C.
                producers = tuple(dict.fromkeys(filter(None, map(producer_of, action.inputs))))
                producers = by_inputs[id(action.inputs)] = distinct.setdefault(producers, producers)
            pred[node] = producers
            for producer in producers:
                succ[producer].append(node)
        self._succ, self._pred = succ, pred

    @property
    def actions(self) -> list[Action]:
        return list(self._actions.values())

    def __contains__(self, node: object) -> bool:
        return node in self._actions

    def items(self) -> Iterable[tuple[str, Action]]:
        """(primary output, action) pairs, in the order the actions were added."""
        return self._actions.items()

    def action(self, node: str) -> Action:
        return self._actions[node]

    def successors(self, node: str) -> list[str]:
        """The actions that read an output of this one (do not change the list)."""
        return self._succ[node]

    def edges(self) -> list[tuple[str, str]]:
        """(producer, consumer) pairs, each producer's in the order its consumers were added."""
        return [(u, v) for u, successors in self._succ.items() for v in successors]

    def producer(self, path: str) -> Action | None:
        return self._producers.get(path)

    def predecessors(self) -> Mapping[str, tuple[str, ...]]:
        """Each action's producers, by primary output (do not change it)."""
        return self._pred

    def dependencies(self, action: Action) -> list[Action]:
        return [self._actions[p] for p in self._pred[action.primary_output]]

    def subgraph_for(self, outputs: Iterable[str]) -> ActionGraph:
        """Only the actions needed to produce `outputs`, in this graph's order, with the edges among them.

        One backward search from all outputs at once; the edges are this graph's, since every producer
        of a needed action's inputs is needed too (so linking again would find exactly these).
        """
        needed = reachable((p.primary_output for p in map(self._producers.get, outputs) if p), self._pred)
        sub = self._with_actions(needed.__contains__)
        # Copies of this graph's adjacency: all of a needed node's predecessors are needed, successors not.
        sub._pred = {node: self._pred[node] for node in sub._actions}  # tuples: shared, not copied
        sub._succ = {node: [v for v in self._succ[node] if v in needed] for node in sub._actions}
        return sub

    def without(self, done: Collection[str]) -> ActionGraph:
        """The actions not in `done`, with the edges among them: a producer in `done` counts as finished.
        `done` must hold every producer of each action it holds, so no action left out follows one kept."""
        sub = self._with_actions(lambda node: node not in done)
        sub._pred = {node: tuple(p for p in self._pred[node] if p not in done) for node in sub._actions}
        sub._succ = {node: self._succ[node] for node in sub._actions}  # successors of a node not done are not done
        return sub

    def _with_actions(self, keep: Callable[[str], bool]) -> ActionGraph:
        """A graph of the actions `keep` accepts, in this graph's order; the caller gives it its edges."""
        sub = ActionGraph()
        sub.token, sub.earlier_tokens = self.token, self.earlier_tokens  # its actions are this graph's
        for node, action in self._actions.items():
            if keep(node):
                sub._add_known(action)
        return sub

    def downstream(self, nodes: Iterable[str]) -> set[str]:
        """The nodes and every node that reads what one of them makes, directly or through others."""
        return reachable(nodes, self._succ)

    def topological_order(self) -> list[Action]:
        """Dependencies first, the smallest primary output first among those ready: networkx's
        lexicographical_topological_sort, without making a networkx graph of millions of edges."""
        order = smallest_first({node: len(preds) for node, preds in self._pred.items()}, self._succ, str)
        self._reject_cycle(order)
        return [self._actions[node] for node in order]

    def _topological_sort(self) -> list[str]:
        """Dependencies first (Kahn's algorithm); a cycle raises as networkx's topological_sort does."""
        order = dependencies_first({node: len(preds) for node, preds in self._pred.items()}, self._succ)
        self._reject_cycle(order)
        return order

    def _reject_cycle(self, order: list[str]) -> None:
        """An order that left nodes out met a cycle: raise as networkx's topological sorts do."""
        if len(order) != len(self._actions):
            import networkx

            raise networkx.NetworkXUnfeasible("Graph contains a cycle or graph changed during iteration")

    def critical_path(self, cost: Callable[[Action], float]) -> tuple[float, list[Action]]:
        """The longest chain of dependent actions by `cost`, and its total."""
        best: dict[str, tuple[float, str | None]] = {}
        for node in self._topological_sort():
            own = cost(self._actions[node])
            before = max(((best[p][0], p) for p in self._pred[node]), default=(0.0, None))
            best[node] = (before[0] + own, before[1])
        if not best:
            return 0.0, []
        node: str | None = max(best, key=lambda n: (best[n][0], n))
        total = best[node][0]
        path = []
        while node is not None:
            path.append(self._actions[node])
            node = best[node][1]
        return total, list(reversed(path))

    def remaining_critical_path(self, cost: Callable[[Action], float]) -> Mapping[str, float]:
        """For each action, the longest cost chain from it to the end: the scheduler's priority."""
        actions = self._actions
        return longest_remaining(self._topological_sort(), self._succ, lambda node: cost(actions[node]))

    def to_json(self) -> str:
        actions = [a.to_json() for a in self.topological_order()]
        return json.dumps({"actions": actions}, indent=2, sort_keys=True) + "\n"

    def to_dot(self) -> str:
        lines = ["digraph actions {", "  node [shape=box];"]
        for action in self.topological_order():
            lines.append(f'  "{action.primary_output}" [label="{action.mnemonic}\\n{action.primary_output}"];')
        for producer, consumer in sorted((u, v) for v, preds in self._pred.items() for u in preds):
            lines.append(f'  "{producer}" -> "{consumer}";')
        lines.append("}")
        return "\n".join(lines) + "\n"
