"""How analysis is shared out among processes: contiguous shares of the targets to analyze, in analysis order.

A rule implementation reads the providers of what its target depends on. So a process that analyzes a
later share also runs the implementations of the earlier targets its share depends on, for their providers
alone. The shares are sized so that each process runs about as many rule implementations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

from action_graph.list_schedule import reachable
from pybuild.labels import Label

# Rule targets a share must have to be worth a process: a fork, and its actions pickled back, cost ~0.1 s.
RULES_PER_SHARE = 1000
_BALANCING_ROUNDS = 1  # at 10,000 targets within 1.3% of even; each more round cost ~0.05 s for ~0.6% more
# Shares are not worth their processes if one of them still runs this much of what one process would (in a
# chain of crates, for one, every later share runs all of the earlier ones for their providers).
_MOST_OF_THE_RUN = 0.8


@dataclass(frozen=True)
class AnalysisShare:
    run: list[Label]  # the targets whose rule implementations run, in analysis order
    making: set[str]  # the label texts of those whose actions and summaries the share makes


def dependency_lists(edges: list[tuple[Label, Label]]) -> dict[Label, list[Label]]:
    """Each target's direct dependencies, from (consumer, dependency) edges."""
    dependencies: dict[Label, list[Label]] = {}
    for consumer, dependency in edges:
        dependencies.setdefault(consumer, []).append(dependency)
    return dependencies


def with_dependencies(
    order: list[Label], targets: Iterable[Label], dependencies: dict[Label, list[Label]]
) -> list[Label]:
    """`targets` and everything they depend on, in `order` (which holds them all)."""
    needed = reachable(targets, dependencies)
    return [label for label in order if label in needed]


def analysis_shares(
    run: list[Label],
    dependencies: dict[Label, list[Label]],
    making: list[Label],
    rules: set[Label],
    processes: int,
) -> list[AnalysisShare]:
    """Up to `processes` shares of `making` (part of `run`, in its order); `run` holds whatever they depend on,
    and `rules` its rule targets (the others are source files, which cost little)."""
    total = len(rules.intersection(making))
    processes = min(processes, total // RULES_PER_SHARE)
    if processes < 2:
        return [AnalysisShare(run, set(map(str, making)))]
    goals = [total / processes] * processes
    for _ in range(_BALANCING_ROUNDS):
        parts = _split(making, rules, goals)
        # What each share runs besides its own targets; then move targets to the shares that need fewer.
        extra = [
            len(rules.intersection(reachable(part, dependencies))) - len(rules.intersection(part)) for part in parts
        ]
        level = (total + sum(extra)) / len(parts)
        goals = [max(level - more, 1.0) for more in extra]
    parts = _split(making, rules, goals)
    shares = [AnalysisShare(with_dependencies(run, part, dependencies), set(map(str, part))) for part in parts]
    if max(len(rules.intersection(share.run)) for share in shares) > _MOST_OF_THE_RUN * len(rules.intersection(run)):
        return [AnalysisShare(run, set(map(str, making)))]
    return shares


def _split(making: list[Label], rules: set[Label], goals: list[float]) -> list[list[Label]]:
    """`making` cut in order into up to one part per goal, each with about its goal's share of the rule targets."""
    scale = len(rules.intersection(making)) / sum(goals)
    ends = list(accumulate(goal * scale for goal in goals[:-1]))
    parts: list[list[Label]] = [[]]
    counted = 0
    for label in making:
        if len(parts) <= len(ends) and counted >= ends[len(parts) - 1]:
            parts.append([])
        parts[-1].append(label)
        counted += label in rules
    return parts
