"""The loading phase: target patterns to labels, and labels to their dependency graph."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from action_graph import list_schedule
from pybuild import globbing, visibility
from pybuild.errors import PybuildError
from pybuild.gc_pause import collector_paused
from pybuild.labels import Label, TargetPattern, parse_target_pattern
from pybuild.loading_snapshot import Walk
from pybuild.noop_record import root_listing
from pybuild.packages import SOURCE_FILE, PackageLoader, Target

if TYPE_CHECKING:  # networkx takes ~0.15 s to import, so the functions that need it import it
    import networkx as nx


class TargetGraphLoader:
    """Resolves patterns and walks dependencies, loading packages as it goes."""

    def __init__(self, loader: PackageLoader, working_package: str = "") -> None:
        self.loader = loader
        self.working_package = working_package

    # Patterns -------------------------------------------------------------------------------------

    @collector_paused
    def resolve_patterns(self, texts: Iterable[str]) -> list[Label]:
        """Labels of `texts` in order; negative patterns (-//x:y) subtract what came before."""
        result: dict[Label, None] = {}
        for text in texts:
            pattern = parse_target_pattern(text, working_package=self.working_package)
            labels = self.resolve(pattern)
            if pattern.negative:
                for label in labels:
                    result.pop(label, None)
            else:
                result.update(dict.fromkeys(sorted(labels)))
        self.loader.save_snapshot()  # every package a walk found is loaded by now
        return list(result)

    def resolve(self, pattern: TargetPattern) -> set[Label]:
        if pattern.recursive:
            return self._resolve_recursive(pattern)
        if pattern.kind == "single":
            return {self._resolve_single(pattern)}
        package = self.loader.package(pattern.repo, pattern.package)
        return {t.label for t in self._package_targets(package, pattern.kind)}

    def _resolve_single(self, pattern: TargetPattern) -> Label:
        label = Label(pattern.repo, pattern.package, pattern.name or "")
        try:
            self.loader.target(label)
            return label
        except PybuildError:
            if pattern.fallback is None:
                raise
        self.loader.target(pattern.fallback)
        return pattern.fallback

    def _resolve_recursive(self, pattern: TargetPattern) -> set[Label]:
        base = self.loader.package_dir(pattern.repo, pattern.package)
        if not base.is_dir():
            raise PybuildError(f"no such directory for target pattern '{pattern.text}': {base}")
        labels: set[Label] = set()
        names = self.find_packages(pattern.repo, pattern.package)
        self.loader.load_packages(pattern.repo, names)
        for name in names:
            package = self.loader.package(pattern.repo, name)
            labels.update(t.label for t in self._package_targets(package, pattern.kind))
        if not labels and not pattern.negative:
            raise PybuildError(f"no targets found beneath '{pattern.text}'")
        return labels

    def _package_targets(self, package, kind: str) -> list[Target]:
        rules = package.rule_targets()
        if kind == "rules":
            return rules
        files = {label for rule in rules for label in rule.dependency_labels if label.package == package.name}
        sources = [package.target(f.name) for f in sorted(files) if f.name not in package.targets]
        return [*rules, *sources, *package.exported_files.values()]

    def find_packages(self, repo: str, base: str) -> list[str]:
        """Every package at or below `base`, skipping ignored directories and .bazelignore entries.

        Depth first in sorted order; symlinked directories are not entered. The walk lists every
        directory anyway, so it hands the packages' file listings to the loader (globs need them).
        """
        snapshot = self.loader.snapshot if repo == "" else None  # see loading_snapshot.py
        found = snapshot.walk(base) if snapshot is not None else None
        if found is not None:
            return found
        root = self.loader.workspace.repository_root(repo)
        listing = root_listing(root) if snapshot is not None else ()  # taken before the walk sees the root
        walk = globbing.walk_packages(str(root), base, _bazelignore(root))
        self.loader.offer_listings(repo, walk.listings)
        if snapshot is not None:
            snapshot.add_walk(base, Walk.of(walk, str(root), listing))
        return walk.packages

    # Dependencies ---------------------------------------------------------------------------------

    @collector_paused
    def dependency_graph(self, roots: Iterable[Label]) -> nx.DiGraph:
        """The transitive closure of `roots`; an edge u -> v means u depends on v. Cycles are errors."""
        import networkx as nx

        roots = list(roots)
        closure, edges = self.dependency_closure(roots)
        reject_cycles(closure, edges)
        graph = nx.DiGraph()
        graph.add_nodes_from(roots)
        graph.add_edges_from(edges)
        return graph

    @collector_paused
    def dependency_closure(
        self, roots: Iterable[Label], known: Collection[Label] = ()
    ) -> tuple[list[Label], list[tuple[Label, Label]]]:
        """dependency_graph as plain lists, for analysis, which networkx (~0.15 s to import) would only
        slow down: the nodes in the graph's order and the edges in discovery order, duplicates included.
        Cycles are left to the caller: dependency_graph rejects them, analysis finds them as it orders.

        `known` are the nodes of a closure this one extends: they are not walked again, and only the new
        nodes and their edges (some of which lead to known nodes) are returned."""
        roots = [root for root in dict.fromkeys(roots) if root not in known]
        pending = list(roots)
        nodes = dict.fromkeys(roots)
        edges: list[tuple[Label, Label]] = []  # in discovery order, so the graph's order is as it always was
        while pending:
            label = pending.pop()
            for dependency in self.loader.target(label).dependency_labels:
                if dependency not in nodes and dependency not in known:
                    self._load_dependency(dependency, label)
                    nodes[dependency] = None
                    pending.append(dependency)
                edges.append((label, dependency))
        return list(nodes), edges

    def _load_dependency(self, dependency: Label, consumer: Label) -> None:
        try:
            self.loader.target(dependency)
        except PybuildError as error:
            consumer_target = self.loader.target(consumer)
            raise PybuildError(
                f"{error.message} (referenced by {consumer_target.description} {consumer})",
                consumer_target.location,
            ) from None

    def check_visibility(self, edges: Iterable[tuple[Label, Label]]) -> None:
        target = self.loader.target
        hidden = [
            (consumer, dependency)
            for consumer, dependency in set(edges)
            if not visibility.is_visible(dependency, target(dependency).visibility, consumer)
        ]
        if hidden:  # the least edge, so that the error is always the same one (sorting every edge cost ~0.2 s)
            consumer, dependency = min(hidden)
            consumer_target, dependency_target = target(consumer), target(dependency)
            raise PybuildError(
                f"{dependency_target.description} '{dependency}' is not visible from {consumer_target.description} "
                f"'{consumer}'. Check the visibility declaration of the former target if you think the "
                "dependency is legitimate",
                consumer_target.location,
            )


def _bazelignore(root: Path) -> set[str]:
    path = root / ".bazelignore"
    if not path.is_file():
        return set()
    lines = (line.strip().rstrip("/") for line in path.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def dependencies_first(nodes: list[Label], edges: list[tuple[Label, Label]]) -> list[Label]:
    """Every node after the nodes it depends on; among those free to go next, the greatest label (by its
    text, which no two labels share) first. That is networkx's lexicographical topological sort by str,
    reversed, which analysis always used: the same order, without networkx. Nodes on a cycle, and those
    depending on one, are missing from the result."""
    successors, waiting = _adjacency(nodes, edges)
    return list_schedule.smallest_first(waiting, successors, str)[::-1]


def _adjacency(
    nodes: Iterable[Label], edges: list[tuple[Label, Label]]
) -> tuple[dict[Label, list[Label]], dict[Label, int]]:
    """(successors, number of distinct predecessors) of each node."""
    successors: dict[Label, list[Label]] = {node: [] for node in nodes}
    waiting = dict.fromkeys(successors, 0)
    for u, v in dict.fromkeys(edges):
        successors[u].append(v)
        waiting[v] += 1
    return successors, waiting


def _is_acyclic(nodes: Iterable[Label], edges: list[tuple[Label, Label]]) -> bool:
    """Kahn's algorithm over plain dicts: networkx's DAG test costs more than building the graph."""
    successors, waiting = _adjacency(nodes, edges)
    return len(list_schedule.dependencies_first(waiting, successors)) == len(successors)


def reject_cycles(nodes: list[Label], edges: list[tuple[Label, Label]], through: str = "") -> None:
    """A PybuildError naming one cycle, if there is any; networkx is imported only to name it."""
    if _is_acyclic(nodes, edges):
        return
    import networkx as nx

    graph = nx.DiGraph(edges)
    cycle = nx.find_cycle(graph)
    path = [str(u) for u, _ in cycle] + [str(cycle[0][0])]
    raise PybuildError(f"cycle in dependency graph{through}: " + " -> ".join(path))


class LoadingQueryEnvironment:
    """pybuild.query's environment over the real loading phase."""

    def __init__(self, graph_loader: TargetGraphLoader) -> None:
        self.graph_loader = graph_loader

    def resolve_pattern(self, pattern: str) -> set[Label]:
        return set(self.graph_loader.resolve_patterns([pattern]))

    @collector_paused
    def dependency_graph(self, roots: Iterable[Label]) -> nx.DiGraph:
        return self.graph_loader.dependency_graph(roots)

    def kind(self, target: Label) -> str:
        return self.graph_loader.loader.target(target).description

    def attribute(self, target: Label, name: str) -> object | None:
        return self.graph_loader.loader.target(target).attrs.get(name)


__all__ = ["SOURCE_FILE", "LoadingQueryEnvironment", "TargetGraphLoader"]
