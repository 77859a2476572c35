"""--timings: an HTML report of one build, like Cargo's --timings (self-contained, works offline)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from action_graph.fileutil import atomic_write_text
from pybuild.build_record import ActionRecord, BuildRecord

_TEMPLATE = Path(__file__).with_name("templates") / "timings.html.j2"
_METADATA_MNEMONICS = ("RustcMetadata",)


@dataclass
class CrateBar:
    """One row: a target's actions, its metadata part and its codegen part."""

    owner: str
    start: float
    metadata_end: float | None
    end: float
    critical: bool
    cached: bool


def crate_bars(record: BuildRecord) -> list[CrateBar]:
    critical = {a.owner for a in record.critical_path()}
    by_owner: dict[str, list[ActionRecord]] = {}
    for action in record.actions:
        by_owner.setdefault(action.owner, []).append(action)
    bars = []
    for owner, actions in by_owner.items():
        end = max(a.end for a in actions)
        # Metadata that came only as the crate ended (a hollow rlib cut from the full rlib) is no part of its own.
        metadata = [a.end for a in actions if a.mnemonic in _METADATA_MNEMONICS and a.end < end]
        bars.append(
            CrateBar(
                owner=owner,
                start=min(a.start for a in actions),
                metadata_end=max(metadata) if metadata else None,
                end=end,
                critical=owner in critical,
                cached=all(a.cached for a in actions),
            )
        )
    return sorted(bars, key=lambda bar: (bar.start, bar.owner))


def concurrency(record: BuildRecord) -> list[tuple[float, int]]:
    """(time, running processes) at every start and end: the steps of the concurrency graph. A fused metadata
    action ran inside its full compile's process, so it does not count."""
    processes = [a for a in record.actions if not a.shares_process]
    changes = sorted([(a.start, 1) for a in processes] + [(a.end, -1) for a in processes])
    points, running = [(0.0, 0)], 0
    for time, delta in changes:
        running += delta
        points.append((time, running))
    return points


def write_timings(record: BuildRecord, path: Path) -> None:
    template = jinja2.Template(_TEMPLATE.read_text(encoding="utf-8"), autoescape=True)
    wall = max([record.wall] + [a.end for a in record.actions] + [0.001])
    html = template.render(
        record=record,
        wall=wall,
        bound=record.bound(),
        floor=record.phase_bound(),
        bars=crate_bars(record),
        concurrency=concurrency(record),
        critical_path=record.critical_path(),
        slowest=sorted(record.actions, key=lambda a: a.duration, reverse=True)[:20],
        executed=sum(1 for a in record.actions if not a.cached),
    )
    atomic_write_text(path, html)
