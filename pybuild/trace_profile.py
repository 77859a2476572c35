"""--profile=FILE: a Chrome trace (chrome://tracing, Perfetto) of one build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from action_graph.fileutil import atomic_write_text
from pybuild.build_record import BuildRecord

_PID = 1
_PHASE_TRACK = 0


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _track_name(tid: int, name: str) -> dict[str, Any]:
    return {"ph": "M", "name": "thread_name", "pid": _PID, "tid": tid, "args": {"name": name}}


def trace_events(record: BuildRecord) -> list[dict[str, Any]]:
    """One track per execution slot with a slice per action, a phase track, and the critical path."""
    critical_track = record.jobs + 1
    events = [_track_name(_PHASE_TRACK, "phases"), _track_name(critical_track, "critical path")]
    events += [_track_name(slot, f"slot {slot}") for slot in range(1, record.jobs + 1)]
    for name, start, end in record.phases:
        events.append(_slice(name, "phase", _PHASE_TRACK, start, end, {}))
    critical = {a.primary_output for a in record.critical_path()}
    for action in record.actions:
        args = {
            "target": action.owner,
            "output": action.primary_output,
            "cached": action.cached,
            "critical_path": action.primary_output in critical,
            "peak_rss_kb": action.peak_rss_kb,
            "shares_process": action.shares_process,  # ran inside the slot's other action (fused rmeta)
        }
        name = f"{action.mnemonic} {action.owner}" + (" (cached)" if action.cached else "")
        events.append(_slice(name, action.mnemonic, action.slot, action.start, action.end, args))
        if action.primary_output in critical:
            events.append(_slice(name, "critical path", critical_track, action.start, action.end, args))
    return events


def _slice(name: str, category: str, tid: int, start: float, end: float, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "cat": category,
        "ph": "X",
        "pid": _PID,
        "tid": tid,
        "ts": _micros(start),
        "dur": max(1, _micros(end - start)),
        "args": args,
    }


def write_profile(record: BuildRecord, path: Path) -> None:
    payload = {
        "traceEvents": trace_events(record),
        "displayTimeUnit": "ms",
        "otherData": {
            "jobs": record.jobs,
            "wall_seconds": record.wall,
            "bound_seconds": record.bound(),
            "phase_bound_seconds": record.phase_bound(),
        },
    }
    atomic_write_text(path, json.dumps(payload) + "\n")
