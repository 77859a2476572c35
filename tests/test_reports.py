"""`--profile` (a Chrome trace) and `--timings` (an HTML report) of a real pipelined build."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rust_workspaces import heavy_chain, ok, pybuild
from workspace_helpers import write_workspace

from pybuild.build_record import ActionRecord, BuildRecord
from pybuild.timings_report import crate_bars


def _built(tmp_path: Path) -> tuple[Path, dict]:
    root = write_workspace(tmp_path / "ws", heavy_chain(instantiations=8))
    profile = tmp_path / "trace.json"
    ok(pybuild(root, "build", "-j2", f"--profile={profile}", "--timings", "//..."))
    return root, json.loads(profile.read_text())


def test_profile_has_a_track_per_slot_a_slice_per_action_phases_and_the_critical_path(tmp_path: Path) -> None:
    _, trace = _built(tmp_path)
    events = trace["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"phases", "critical path", "slot 1", "slot 2"} <= set(tracks)
    phases = {e["name"] for e in events if e["ph"] == "X" and e["tid"] == tracks["phases"]}
    assert {"loading", "analysis", "execution"} <= phases, phases
    slots = {tracks["slot 1"], tracks["slot 2"]}
    actions = [e for e in events if e["ph"] == "X" and e["tid"] in slots]
    # a, b and c: a metadata and a full compile each (c's metadata has no consumer, so it is not built).
    assert sorted((e["cat"], e["args"]["target"]) for e in actions) == [
        ("Rustc", "//a:a"),
        ("Rustc", "//b:b"),
        ("Rustc", "//c:c"),
        ("RustcMetadata", "//a:a"),
        ("RustcMetadata", "//b:b"),
    ]
    assert all(e["args"]["cached"] is False and e["dur"] > 0 for e in actions)
    critical = [e for e in events if e["ph"] == "X" and e["tid"] == tracks["critical path"]]
    assert critical and all(e["args"]["critical_path"] for e in critical)
    summary = trace["otherData"]
    assert summary["jobs"] == 2 and summary["bound_seconds"] > 0
    # The run itself was one schedule of its actions: the floor lies between the usual bound and its wall time.
    assert summary["bound_seconds"] <= summary["phase_bound_seconds"] <= summary["wall_seconds"]


def test_timings_report_is_offline_html_with_a_bar_per_crate_and_the_critical_path(tmp_path: Path) -> None:
    root, _ = _built(tmp_path)
    html = (root / "pybuild-out" / "timings.html").read_text()
    assert not re.search(r"""(src|href)=["']https?:""", html), "the report must work offline"
    for heading in ("Crates", "Concurrency", "Critical path", "Slowest actions"):
        assert f"<h2>{heading}</h2>" in html
    for crate in ("//a:a", "//b:b", "//c:c"):
        assert f">{crate}</text>" in html
    assert "metadata:" in html  # the metadata part of a pipelined crate's bar
    assert "floor / bound" in html


def test_a_hollow_rlib_cut_as_its_crate_ended_adds_no_metadata_part_to_the_bar() -> None:
    def record(mnemonic: str, owner: str, start: float, end: float, shared: bool = False) -> ActionRecord:
        return ActionRecord(mnemonic, owner, f"{owner}.{mnemonic}", False, True, 1, start, end, shares_process=shared)

    actions = [record("RustcMetadata", "//:a", 0, 1), record("Rustc", "//:a", 0, 3)]
    actions += [record("Rustc", "//:b", 0, 2), record("RustcMetadata", "//:b", 2, 2.01, shared=True)]
    bars = {bar.owner: bar for bar in crate_bars(BuildRecord(jobs=2, actions=actions))}
    assert bars["//:a"].metadata_end == 1
    assert bars["//:b"].metadata_end is None and bars["//:b"].end == 2.01
