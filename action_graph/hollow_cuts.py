"""Which hollow rlibs to cut from their crates' full rlibs (rlib.py) instead of making them with their own
metadata actions.

A metadata action runs its crate's front end a second time. That pays off only where dependents, started
early, shorten the build; on a machine whose slots are all busy anyway it only adds work. (On Debian's
crates, mostly front end, hollow rlibs made by rustc cost 40% more CPU than one rustc per crate.) A cut
hollow rlib appears when its crate's full compile ends, at no cost and in no slot.

The plan is whichever of three ends first in a list schedule (list_schedule.py) of the scheduler's own cost
estimates: cut none; cut those whose later end lengthens no path beyond the critical path; cut all. On a
tie, the plan that runs less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from action_graph.list_schedule import ScheduleGraph


@dataclass
class CutPlan:
    cuts: dict[str, str]  # hollow rlib's metadata action -> the full compile it is cut from
    priority: dict[str, float]  # each action's remaining path once the cuts are made


def plan_cuts(graph: ScheduleGraph, costs: Mapping[str, float], pairs: Mapping[str, str], jobs: int) -> CutPlan:
    """`graph` must have been made with `pairs` (metadata action -> full compile) as its possible extra edges."""
    plans = [{}, _off_critical_path(graph, costs, pairs), dict(pairs)]

    def estimate(cuts: dict[str, str]) -> tuple[float, int]:
        return round(graph.makespan(_durations(costs, cuts), jobs, cuts, slotless=cuts), 6), -len(cuts)

    cuts = min(plans, key=estimate)
    return CutPlan(cuts, graph.remaining(_durations(costs, cuts), cuts))


def _durations(costs: Mapping[str, float], cuts: Mapping[str, str]) -> Mapping[str, float]:
    """A cut metadata action takes no time once its full compile has ended."""
    return {**costs, **dict.fromkeys(cuts, 0.0)} if cuts else costs


def _off_critical_path(graph: ScheduleGraph, costs: Mapping[str, float], pairs: Mapping[str, str]) -> dict[str, str]:
    """Cuts that leave every path, with all the delays they add up along it, no longer than the critical path."""
    remaining = graph.remaining(costs)
    critical = max(remaining.values(), default=0.0)
    finish: dict[str, float] = {}
    cuts = {}
    for node in graph.order:
        start = max(map(finish.__getitem__, graph.preds[node]), default=0.0)
        full = pairs.get(node)
        # A cut hollow rlib ends with the full compile, which starts when the metadata action would.
        if full is not None and start + costs[full] + remaining[node] - costs[node] <= critical + 1e-9:
            cuts[node] = full
            finish[node] = start + costs[full]
        else:
            finish[node] = start + costs[node]
    return cuts
