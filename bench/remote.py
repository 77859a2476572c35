"""Remote execution benchmark: the examples built locally, on BuildGrid's workers, and from its cache.

Starts the loopback cluster (`python -m action_graph.remote.local_cluster`: PostgreSQL, BuildGrid, two
pybuild workers with two slots each) and builds a copy of examples/ (without crates_demo, in hollow-rlib
mode) after `pybuild clean` each time, in three ways:

1. local: `pybuild build -j2` on this machine;
2. remote: `--remote_executor -j4 --noremote_accept_cached`, every action executed by a worker (the
   server's CAS and the workers' blob caches are warm: the toolchain is not transferred again);
3. remote cache hits: `--remote_executor -j4` after clean, every action an action-cache hit.

The modes alternate within each round (the order rotates), and the medians of --rounds rounds are
compared. The very first remote build against the fresh cluster (toolchain upload and worker fetches
included) is reported apart, as `cold_remote_s`. Results go to bench/results/remote.json.

    python bench/remote.py [--rounds 3]

Note that the cluster runs on the same machine as the client: remote execution cannot be faster than a
local build here; the numbers show its overhead, and what the remote cache saves.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "remote.json"
EXAMPLES = REPO_ROOT / "examples"
PACKAGES = ("app", "diamond", "lib", "macros", "tests")
TARGETS = ("//app", "//lib/...", "//diamond/...", "//macros/...", "//tests/...")
HOLLOW = "--incompatible_use_unstable_no_codegen_for_pipelining"
_BUILD_OK = re.compile(r"^Build OK: (\d+) executed, (\d+) cached, (\d+) total actions in ([0-9.]+)s$", re.M)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def copy_examples(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(EXAMPLES / package, destination / package, ignore=shutil.ignore_patterns("pybuild-*", "target"))
    lines = (EXAMPLES / "MODULE.bazel").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.startswith(("module(", "bazel_dep("))]
    (destination / "MODULE.bazel").write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return destination


def pybuild(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pybuild", *args]
    done = subprocess.run(argv, cwd=root, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pybuild {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def timed_build(root: Path, flags: tuple[str, ...], expect: str) -> dict[str, Any]:
    """`pybuild clean`, then a build timed from outside; checks that every action ran or hit as expected."""
    pybuild(root, "clean")
    started = time.perf_counter()
    done = pybuild(root, "build", HOLLOW, *flags, *TARGETS)
    wall = time.perf_counter() - started
    matched = _BUILD_OK.findall(done.stderr)
    if not matched:
        raise SystemExit(f"no 'Build OK' line:\n{done.stderr[-2000:]}")
    executed, cached, total, seconds = matched[-1]
    executed, cached, total = int(executed), int(cached), int(total)
    if (expect == "executed" and executed != total) or (expect == "cached" and cached != total):
        raise SystemExit(f"expected every action {expect}, got {executed} executed, {cached} cached of {total}")
    return {"wall_s": round(wall, 3), "build_s": float(seconds), "executed": executed, "cached": cached}


def cluster(action: str, directory: Path) -> str:
    argv = [sys.executable, "-m", "action_graph.remote.local_cluster", action, "--dir", str(directory)]
    if action == "start":
        argv += ["--workers", "2", "--slots", "2"]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"local_cluster {action} failed:\n{done.stderr}")
    return done.stdout.strip()


def run(rounds: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="pybuild-bench-remote-"))
    try:
        started = time.perf_counter()
        address = cluster("start", scratch / "cluster")
        startup = time.perf_counter() - started
        print(f"cluster up at {address} in {startup:.1f}s", file=sys.stderr)
        root = copy_examples(scratch / "examples")
        remote = (f"--remote_executor={address}", "-j4")
        modes = {
            "local": (("-j2",), "executed"),
            "remote": ((*remote, "--noremote_accept_cached"), "executed"),
            "remote_cache_hits": (remote, "cached"),
        }
        cold = timed_build(root, remote, "executed")
        print(f"cold remote build: {cold['wall_s']:.2f}s", file=sys.stderr)
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in modes}
        names = list(modes)
        for index in range(rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            for name in order:
                flags, expect = modes[name]
                samples[name].append(timed_build(root, flags, expect))
                print(f"round {index + 1} {name}: {samples[name][-1]['wall_s']:.2f}s", file=sys.stderr)
        cluster("stop", scratch / "cluster")
    finally:
        with_cluster = scratch / "cluster" / "cluster.json"
        if with_cluster.exists():
            cluster("stop", scratch / "cluster")
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(s["wall_s"] for s in runs) for name, runs in samples.items()}
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "workload": {"targets": TARGETS, "mode": "hollow rlib", "actions": samples["local"][0]["executed"]},
        "cluster": {"workers": 2, "slots_per_worker": 2, "startup_s": round(startup, 2)},
        "rounds": rounds,
        "cold_remote_s": cold["wall_s"],
        "median_wall_s": {name: round(value, 3) for name, value in medians.items()},
        "ratio_to_local": {name: round(value / medians["local"], 3) for name, value in medians.items()},
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the result is a median)")
    result = run(args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    median = result["median_wall_s"]
    ratio = result["ratio_to_local"]
    print(f"cluster start-up:            {result['cluster']['startup_s']:6.2f}s")
    print(f"cold remote build (1 run):   {result['cold_remote_s']:6.2f}s")
    for name in ("local", "remote", "remote_cache_hits"):
        print(f"{name + ' (median)':28} {median[name]:6.2f}s  x{ratio[name]:.2f} of local")
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
