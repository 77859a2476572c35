"""One rustc per crate where that is faster. rmeta pipelining, as Cargo does: the metadata action ends when the
full compile's rustc writes its .rmeta, and that file holds exactly what a metadata action of its own writes.
Hollow rlibs: where the plan says so, one is cut from its crate's full rlib, byte for byte what rustc writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rust_workspaces import HOLLOW, failed, find_record, heavy_chain, ok, pybuild, read_log, wide_workspace
from workspace_helpers import write_workspace

from pybuild.build_record import ActionRecord, BuildRecord

J2 = "-j2"
BIN = Path("pybuild-out/k8-fastbuild/bin")


def _built_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((root / BIN).rglob("*"))
        if path.is_file()
    }


def _build_with_log(root: Path, log: Path, *flags: str) -> list[dict]:
    ok(pybuild(root, "build", J2, *flags, f"--execution_log_json_file={log}", "//..."))
    return read_log(log)


def test_one_rustc_serves_both_actions_of_a_crate_with_the_bytes_of_separate_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_workspace(tmp_path / "ws", heavy_chain())
    records = _build_with_log(root, tmp_path / "fused.json")
    for owner in ("//a:a", "//b:b"):
        meta, full = find_record(records, owner, "RustcMetadata"), find_record(records, owner, "Rustc")
        assert meta["primary_output"].endswith(".rmeta")
        assert meta["slot"] == full["slot"] and abs(meta["start"] - full["start"]) < 0.05, (meta, full)
        assert meta["end"] < full["end"]
    # b compiles against a's .rmeta while a's rustc still runs codegen.
    a_full, b_meta = find_record(records, "//a:a", "Rustc"), find_record(records, "//b:b", "RustcMetadata")
    assert b_meta["start"] < a_full["end"], (b_meta, a_full)
    fused = _built_files(root)

    ok(pybuild(root, "clean"))
    monkeypatch.setenv("PYBUILD_FUSE_PIPELINED", "0")
    separate = _build_with_log(root, tmp_path / "separate.json")
    a_meta, a_full = find_record(separate, "//a:a", "RustcMetadata"), find_record(separate, "//a:a", "Rustc")
    assert a_meta["slot"] != a_full["slot"]  # two processes side by side
    assert _built_files(root) == fused
    assert any(path.endswith(".rmeta") for path in fused)


def test_a_compile_error_in_a_fused_crate_fails_both_actions_and_shows_the_diagnostic(tmp_path: Path) -> None:
    files = dict(heavy_chain(instantiations=2), **{"b/lib.rs": 'pub fn b() -> usize {\n    "not a number"\n}\n'})
    root = write_workspace(tmp_path / "ws", files)
    result = failed(pybuild(root, "build", J2, "//..."))
    assert "error[E0308]: mismatched types" in result.err
    assert "its process, did not write it" in result.err  # the metadata action names the process that failed


def test_hollow_rlibs_cut_from_full_rlibs_hold_the_bytes_rustc_writes_and_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_workspace(tmp_path / "ws", wide_workspace())
    records = _build_with_log(root, tmp_path / "cut.json", HOLLOW)
    for owner in ("//a:a", "//b:b"):
        meta, full = find_record(records, owner, "RustcMetadata"), find_record(records, owner, "Rustc")
        assert meta["primary_output"].endswith("_meta.rlib") and meta["shares_process"], meta
        assert meta["waited_for"] == full["primary_output"]
        assert meta["start"] >= full["end"] and meta["end"] - meta["start"] < 0.5, (meta, full)
    assert find_record(records, "//c:c", "Rustc")["start"] >= find_record(records, "//a:a", "RustcMetadata")["end"]
    cut = _built_files(root)
    assert ok(pybuild(root, "run", HOLLOW, "//app")).out == "c = 42\n"

    ok(pybuild(root, "clean"))
    monkeypatch.setenv("PYBUILD_FUSE_PIPELINED", "0")
    separate = _build_with_log(root, tmp_path / "separate.json", HOLLOW)
    assert not find_record(separate, "//a:a", "RustcMetadata")["shares_process"]  # rustc -Zno-codegen ran
    assert _built_files(root) == cut
    assert any(path.endswith("_meta.rlib") for path in cut)


def test_the_bound_counts_a_fused_metadata_action_on_the_critical_path_but_not_as_work() -> None:
    def record(output: str, start: float, end: float, shared: bool = False) -> ActionRecord:
        return ActionRecord("Rustc", "//:x", output, False, True, 1, start, end, shares_process=shared)

    build = BuildRecord(jobs=1, actions=[record("a.rmeta", 0, 1, True), record("a.rlib", 0, 4), record("b", 4, 6)])
    build.edges = [("a.rmeta", "b")]
    assert build.bound() == 6.0  # work: 4 + 2 on one slot; counting the .rmeta's second as work would say 7
    assert [a.primary_output for a in build.critical_path()] == ["a.rlib"]


def test_the_bound_puts_a_cut_hollow_rlib_after_the_full_compile_it_waited_for() -> None:
    def record(output: str, start: float, end: float, waited_for: str | None = None) -> ActionRecord:
        shared = waited_for is not None
        return ActionRecord("Rustc", "//:x", output, False, True, 1, start, end, 0, shared, waited_for)

    cut = record("a_meta.rlib", 2, 2.01, waited_for="a.rlib")
    build = BuildRecord(jobs=2, actions=[record("a.rlib", 0, 2), cut, record("b.rlib", 2.01, 4)])
    build.edges = [("a_meta.rlib", "b.rlib")]
    assert [a.primary_output for a in build.critical_path()] == ["a.rlib", "a_meta.rlib", "b.rlib"]
    assert build.bound() == 4.0
