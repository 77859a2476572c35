"""Crash and concurrency safety: interrupts, repeated kills, the workspace lock, corrupt cache blobs
and the memory budget of the scheduler."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rust_workspaces import (
    REPO_ROOT,
    build_stats,
    copy_examples,
    expected_app_output,
    heavy_chain,
    ok,
    pybuild,
    read_log,
)
from workspace_helpers import write_workspace

TARGETS = ("//app", "//lib/...", "//diamond/...", "//macros/...", "//tests/...")


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pybuild", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_first_output(root: Path, process: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if any((root / "pybuild-out").rglob("*.rmeta")) or any((root / "pybuild-out").rglob("*.rlib")):
            return
        time.sleep(0.05)


def _assert_builds_and_runs(root: Path) -> None:
    ok(pybuild(root, "build", *TARGETS, "-j2", timeout=300))
    assert ok(pybuild(root, "run", "//app")).out == expected_app_output()


def test_sigint_stops_the_build_with_exit_8_and_the_next_build_is_correct(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    process = _start(root, "build", *TARGETS, "-j2")
    _wait_for_first_output(root, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 8, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (root / "pybuild-out" / "sandbox").exists() or not any((root / "pybuild-out" / "sandbox").iterdir())
    _assert_builds_and_runs(root)


def test_twenty_sigkills_at_random_moments_never_break_the_next_build(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    chance = random.Random(20261121)
    for _ in range(20):
        ok(pybuild(root, "clean"))
        process = _start(root, "build", *TARGETS, "-j2")
        time.sleep(chance.uniform(0.2, 2.5))
        process.kill()
        process.communicate(timeout=30)
    _assert_builds_and_runs(root)
    _assert_cache_entries_are_intact(root)


def _assert_cache_entries_are_intact(root: Path) -> None:
    """Every action cache entry names blobs that exist and hold what their digests say."""
    import hashlib

    cache = root / "pybuild-out" / "cache"
    entries = list((cache / "ac").rglob("*.json"))
    assert entries
    for entry in entries:
        for output in json.loads(entry.read_text())["outputs"]:
            blob = cache / "cas" / output["digest"][:2] / output["digest"]
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == output["digest"], entry


def test_a_corrupt_cache_blob_is_discarded_and_the_action_reruns(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    ok(pybuild(root, "build", "//diamond:base", "-j2"))
    blobs = [p for p in (root / "pybuild-out" / "cache" / "cas").rglob("*") if p.is_file()]
    assert blobs
    for blob in blobs:  # the outputs are hard links to the blobs: break both
        os.chmod(blob, 0o644)
        blob.write_bytes(b"corrupt")
    for output in (root / "pybuild-out").rglob("*.rmeta"):
        output.unlink()
    result = ok(pybuild(root, "build", "//diamond:base", "-j2"))
    assert build_stats(result).executed >= 1
    _assert_cache_entries_are_intact(root)
    ok(pybuild(root, "build", "//diamond:base", "-j2"))


def test_second_command_waits_for_the_lock_or_fails_with_noblock(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", heavy_chain(instantiations=80))
    first = _start(root, "build", "//...", "-j2")
    _wait_for_lock_holder(root, first)
    refused = pybuild(root, "build", "//...", "--noblock_for_lock")
    assert refused.code == 9, refused.describe()
    assert "another pybuild command" in refused.err and "--noblock_for_lock" in refused.err
    waited = pybuild(root, "build", "//...", "-j2", timeout=300)
    assert ok(waited).err.startswith("INFO: another pybuild command") or "waiting" in waited.err
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert build_stats(waited).executed == 0, "the second build found the first one's results"


def _wait_for_lock_holder(root: Path, process: subprocess.Popen[str]) -> None:
    lock = root / "pybuild-out" / "lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if lock.exists() and "pid" in lock.read_text():
            return
        time.sleep(0.05)


def test_memory_budget_keeps_big_actions_apart(tmp_path: Path) -> None:
    """With each action's peak RSS recorded by a first run, two actions whose peaks together exceed
    --local_ram_resources never run at the same time."""
    root = write_workspace(tmp_path / "ws", heavy_chain(instantiations=20))
    ok(pybuild(root, "build", "//...", "-j2"))
    peaks = json.loads((root / "pybuild-out/history/peak_rss.json").read_text())  # "owner|mnemonic|output" -> MB
    ok(pybuild(root, "clean"))  # forgets the results, keeps the recorded peaks
    budget = int(max(peaks.values())) + 1
    log = tmp_path / "log.json"
    ok(pybuild(root, "build", "//...", "-j2", f"--local_ram_resources={budget}", f"--execution_log_json_file={log}"))
    # A fused metadata action is no process of its own: its memory is its full compile's.
    records = [r for r in read_log(log) if not r["cached"] and not r["shares_process"]]
    peak = {
        r["primary_output"]: next(v for k, v in peaks.items() if k.endswith("|" + r["primary_output"])) for r in records
    }
    too_big = [
        (a, b)
        for a in records
        for b in records
        if a is not b and peak[a["primary_output"]] + peak[b["primary_output"]] > budget
    ]
    assert too_big, "the workload must have pairs of actions that do not fit together"
    for a, b in too_big:
        assert not (a["start"] < b["start"] < a["end"]), f"{a['owner']} and {b['owner']} ran together"


def test_a_full_disk_gives_a_clear_error_and_a_consistent_cache(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    # Only the cache is on the small disk: the tools write outputs elsewhere (a full sandbox makes the
    # linker itself fail, which is the tool's message), so the disk fills when pybuild stores them.
    small_disk = root / "pybuild-out" / "cache"
    small_disk.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(small_disk)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs to fill (needs root)")
    try:
        full = pybuild(root, "build", *TARGETS, "-j2", timeout=300)
        assert full.code != 0, full.describe()
        assert "No space left on device" in full.err and "Traceback" not in full.err, full.err
        assert "internal error" not in full.err
        subprocess.run(["mount", "-o", "remount,size=2g", str(small_disk)], check=True)
        _assert_builds_and_runs(root)
        _assert_cache_entries_are_intact(root)
    finally:
        subprocess.run(["umount", "-l", str(small_disk)], check=False)


def test_an_unwritable_output_tree_gives_a_clear_error(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    (root / "pybuild-out").mkdir()
    (root / "pybuild-out" / "k8-fastbuild").write_text("a file where the output tree should be\n")
    result = pybuild(root, "build", "//diamond:base", "-j2")
    assert result.code != 0 and "Traceback" not in result.err and "internal error" not in result.err, result.err
    assert "pybuild-out/k8-fastbuild" in result.err, result.err
