"""Depsets as Python sees them: the nodes Starlark's depset() made, flattened here when an action reads one.

Starlark hands an action's inputs over as node ids instead of flattened lists of paths: a crate's inputs
are every crate below it, so flattening in Starlark made O(targets x depth) values per action that its
heap keeps until analysis ends. Here each node shared by others is flattened once (Bazel's nested sets).
"""

from __future__ import annotations

from itertools import chain

from pybuild.errors import PybuildError

Paths = tuple[str, ...]


class DepsetGraph:
    """Every depset node: the paths of its direct Files and its children, by id."""

    def __init__(self) -> None:
        self._direct: dict[int, Paths | None] = {}  # None: some direct item is not a File
        self._children: dict[int, tuple[int, ...]] = {}
        self._flat: dict[int, Paths] = {}  # flattened children of other nodes
        self.strings: dict[str, str] = {}  # one object per distinct text (see Analysis._interned)

    def add(self, node: int, paths: list[str] | None, children: list[int]) -> None:
        strings = self.strings
        self._direct[node] = None if paths is None else tuple([strings.setdefault(p, p) for p in paths])
        self._children[node] = tuple(children)

    def paths(self, root: int) -> Paths:
        """The paths of the depset's items in depset order, each once: what to_list() gives, as paths.

        A node's order is its children's, concatenated in order, then its direct items, keeping the first
        of each path: the same as analysis.bzl's walk. Nodes below the root are flattened once and kept.
        """
        flat = self._flat
        if root in flat:
            return flat[root]
        stack = [root]
        while stack:
            node = stack[-1]
            missing = [c for c in self._children[node] if c not in flat]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if node == root:
                return self._merged(node)
            if node not in flat:
                flat[node] = self._merged(node)
        raise AssertionError("unreachable: the root is merged last")

    def _merged(self, node: int) -> Paths:
        direct = self._direct[node]
        if direct is None:
            raise PybuildError("action inputs must be Files, but a depset among them holds other values")
        parts = [self._flat[c] for c in self._children[node]]
        if direct:
            parts.append(direct)
        if len(parts) == 1 and (parts[0] is not direct or len(direct) < 2):
            return parts[0]  # a child's paths are distinct already
        return tuple(dict.fromkeys(chain.from_iterable(parts)))
