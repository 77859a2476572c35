"""Running rust_test binaries: runfiles trees, Bazel's test environment, and cached passing results."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from action_graph.digests import FileDigests
from action_graph.fileutil import atomic_symlink, atomic_write_text
from pybuild.labels import Label

_TEST_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class TestRun:
    label: Label
    passed: bool
    cached: bool
    duration: float
    log: str


def create_runfiles(root: Path, executable: str, files: list[str]) -> Path:
    """`<executable>.runfiles/_main/<path>` symlinks, as Bazel lays them out; returns the runfiles dir."""
    runfiles = root / f"{executable}.runfiles"
    main = runfiles / "_main"
    shutil.rmtree(runfiles, ignore_errors=True)
    main.mkdir(parents=True)
    for path in files:
        short = path.split("/bin/", 1)[1] if path.startswith("pybuild-out/") and "/bin/" in path else path
        atomic_symlink((root / path).resolve(), main / short)
    return runfiles


def run_tests(outcome, loader, tests: list[Label], test_output: str, jobs: int) -> int:
    """Run each test (passing results cached by their inputs' digests); print a Bazel-like summary."""
    root = outcome.workspace_root
    cache_dir = root / "pybuild-out" / "cache" / "tests"
    digests = FileDigests(str(root))

    def run_one(label: Label) -> TestRun:
        summary = outcome.analysis.summary(label)
        env = dict(loader.loader.target(label).attrs.get("env") or {})
        key = _test_key(digests, summary.executable, summary.runfiles, env)
        marker = cache_dir / key
        if marker.is_file():
            return TestRun(label, True, True, 0.0, marker.read_text(encoding="utf-8"))
        run = _execute(root, label, summary.executable, summary.runfiles, env)
        if run.passed:
            atomic_write_text(marker, run.log)
        return run

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = list(pool.map(run_one, tests))
    return _report(runs, test_output)


def _test_key(digests: FileDigests, executable: str, runfiles: list[str], env: dict[str, str]) -> str:
    record = {
        "executable": digests.digest(executable),
        "runfiles": sorted((path, digests.digest(path)) for path in runfiles),
        "env": sorted(env.items()),
    }
    return hashlib.sha256(json.dumps(record).encode("utf-8")).hexdigest()


def _execute(root: Path, label: Label, executable: str, files: list[str], env: dict[str, str]) -> TestRun:
    runfiles = create_runfiles(root, executable, files)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pybuild-test-") as tmp:
        test_env = {
            **env,
            "PATH": _TEST_PATH,
            "HOME": tmp,
            "TEST_TMPDIR": tmp,
            "TEST_SRCDIR": str(runfiles),
            "RUNFILES_DIR": str(runfiles),
            "TEST_WORKSPACE": "_main",
            "TEST_TARGET": str(label),
        }
        done = subprocess.run(
            [str(root / executable)],
            cwd=runfiles / "_main",
            env=test_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    log = done.stdout.decode("utf-8", errors="replace")
    return TestRun(label, done.returncode == 0, False, time.monotonic() - started, log)


def _report(runs: list[TestRun], test_output: str) -> int:
    for run in runs:
        if test_output == "all" or (test_output == "errors" and not run.passed):
            print(f"==================== Test output for {run.label}:\n{run.log.rstrip()}\n", file=sys.stderr)
    for run in sorted(runs, key=lambda r: str(r.label)):
        status = "PASSED" if run.passed else "FAILED"
        timing = "(cached) " if run.cached else ""
        print(f"{run.label!s:<50} {timing}{status} in {run.duration:.2f}s")
    failed = [r for r in runs if not r.passed]
    print(
        f"\nExecuted {sum(not r.cached for r in runs)} out of {len(runs)} tests: "
        f"{len(runs) - len(failed)} tests pass, {len(failed)} fail."
    )
    return 1 if failed else 0
