"""Where pybuild spends time inside an action, beyond the spawned process: one clean build, instrumented.

The execution log's duration of an action runs from the scheduler handing it to a worker thread until the
outcome is ready; the spawn (process wrapper + rustc) is only part of it. This script runs `pybuild build`
in this process with timers wrapped around the steps of an action (action key and input digests, cache
lookup, sandbox population, spawn, collecting and hashing outputs, cache writes), then prints the totals,
the steps of the first actions (which hash the toolchain), and a micro-benchmark of process wrapper startup.

    python bench/action_overhead.py /tmp/pybuild-compare/chain --incompatible_use_unstable_no_codegen_for_pipelining
    python bench/action_overhead.py WORKSPACE [--snapshot DIR] [pybuild build flags and targets...]

It runs `pybuild clean` in WORKSPACE first. Targets default to //...; -j2 unless given.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WRAPPER = "rules/util/process_wrapper/process_wrapper.py"
ACTION_PATH = "/usr/local/bin:/usr/bin:/bin"  # the PATH pybuild gives actions: python3 is the system one

# (module, class or None, function, category): the steps of one action, in the order they happen. Module
# functions are patched where they are looked up (pybuild.execution imports action_key by name). A probe
# whose function the measured snapshot lacks is skipped, so older snapshots can be compared.
PROBES = (
    ("pybuild.execution", None, "action_key", "action key (digests of all inputs)"),
    ("action_graph.digests", None, "hash_file", "  of which: hashing input files"),
    ("action_graph.cache", "ActionCache", "lookup", "cache lookup"),
    ("action_graph.runner", "LocalRunner", "_clear_outputs", "clear old outputs"),
    ("shutil", None, "rmtree", "sandbox: rmtree (before and after)"),
    ("action_graph.runner", "LocalRunner", "_populate", "sandbox: symlink inputs"),  # before sandbox reuse
    ("action_graph.runner", "LocalRunner", "_prepare", "sandbox: prepare (prune + link inputs)"),
    ("action_graph.runner", "LocalRunner", "_spawn", "spawn (process wrapper + rustc)"),
    ("action_graph.runner", "LocalRunner", "_collect_outputs", "sandbox: move outputs out"),
    ("action_graph.cache", "ActionCache", "store_file", "store outputs in the CAS (hash + link)"),
    ("action_graph.cache", "ActionCache", "record", "write the action cache entry"),
    ("action_graph.runner", "LocalRunner", "run", "runner.run (sandbox + spawn)"),
    ("pybuild.execution", "LocalExecution", "_execute", "whole action (worker thread)"),
)


TRASH = "sandbox trash deletion (background thread)"


class Recorder:
    """Thread-safe (category, thread, start, seconds) events, times relative to `origin`, and CPU per category."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float, float]] = []
        self.cpu: dict[str, float] = {}  # thread CPU seconds (time.thread_time) spent per category
        self.lock = threading.Lock()
        self.origin = time.monotonic()

    def wrap(self, category: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.monotonic(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds, cpu = time.monotonic() - start, time.thread_time() - cpu
                thread = threading.current_thread().name
                # The runner deletes what sandboxes no longer need on a thread of its own, outside every action.
                name = TRASH if thread == "sandbox trash" else category
                with self.lock:
                    self.events.append((name, thread, start - self.origin, seconds))
                    self.cpu[name] = self.cpu.get(name, 0.0) + cpu

        return timed


def install_probes(recorder: Recorder) -> None:
    for module_name, class_name, function_name, category in PROBES:
        module = importlib.import_module(module_name)
        owner = getattr(module, class_name) if class_name else module
        if hasattr(owner, function_name):
            setattr(owner, function_name, recorder.wrap(category, getattr(owner, function_name)))
    # `hash_file` is also imported by name into the cache module (output hashing): count that separately.
    cache = importlib.import_module("action_graph.cache")
    cache.hash_file = recorder.wrap("  of which: hashing outputs", cache.hash_file)


def run_build(workspace: Path, build_args: list[str]) -> int:
    from pybuild.cli import main as pybuild_main

    previous = Path.cwd()
    os.chdir(workspace)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            pybuild_main(["clean"])
        return pybuild_main(["build", *build_args])
    finally:
        os.chdir(previous)


def summarize(recorder: Recorder, wall: float) -> dict[str, Any]:
    totals: dict[str, list[float]] = {}
    for category, _, _, seconds in recorder.events:
        totals.setdefault(category, []).append(seconds)
    order = [probe[3] for probe in PROBES] + ["  of which: hashing outputs", TRASH]
    rows = {
        name: {
            "calls": len(totals[name]),
            "seconds": sum(totals[name]),
            "cpu": recorder.cpu.get(name, 0.0),
            "mean_ms": 1000 * statistics.fmean(totals[name]),
        }
        for name in order
        if name in totals
    }
    return {"wall": wall, "steps": rows, "first_actions": first_actions(recorder.events)}


def first_actions(events: list[tuple[str, str, float, float]], count: int = 3) -> list[dict[str, Any]]:
    """The steps of the first `count` actions, summed per step (the first ones hash the toolchain)."""
    whole = PROBES[-1][3]
    actions = sorted((e for e in events if e[0] == whole), key=lambda e: e[2])[:count]
    rows = []
    for _, thread, start, seconds in actions:
        inside = [e for e in events if e[1] == thread and start <= e[2] <= start + seconds and e[0] != whole]
        steps: dict[str, float] = {}
        for category, _, _, step_seconds in inside:
            steps[category] = steps.get(category, 0.0) + step_seconds
        rows.append({"thread": thread, "start": start, "seconds": seconds, "steps": steps})
    return rows


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"\nbuild wall {summary['wall']:.2f}s, pybuild's own CPU {summary['own_cpu']:.2f}s (its threads, no children)"
    )
    print("time inside actions by step (summed over worker threads):")
    print(f"{'step':<45} {'calls':>6} {'total s':>8} {'mean ms':>8} {'CPU s':>7}")
    for name, row in summary["steps"].items():
        print(f"{name:<45} {row['calls']:>6} {row['seconds']:8.3f} {row['mean_ms']:8.1f} {row['cpu']:7.3f}")
    steps = summary["steps"]
    whole = steps.get(PROBES[-1][3], {}).get("seconds", 0.0)
    spawn = steps.get("spawn (process wrapper + rustc)", {}).get("seconds", 0.0)
    print(f"{'=> inside actions but outside the spawn':<45} {'':>6} {whole - spawn:8.3f}")
    print("\nthe first actions (seconds):")
    for action in summary["first_actions"]:
        steps = ", ".join(
            f"{name.strip()} {seconds:.3f}" for name, seconds in action["steps"].items() if seconds > 0.001
        )
        print(f"  start {action['start']:.3f}, {action['seconds']:.3f} in all: {steps}")


def wrapper_startup(snapshot: Path, runs: int = 20) -> dict[str, float]:
    """Mean wall ms of `process_wrapper.py -- /bin/true` against `/bin/true`, as pybuild starts actions."""
    env = {"PATH": ACTION_PATH}
    results = {}
    for name, argv in (
        ("direct /bin/true", ["/bin/true"]),
        ("process_wrapper -- /bin/true", [str(snapshot / WRAPPER), "--", "/bin/true"]),
        (
            "process_wrapper (json mode) -- /bin/true",
            [str(snapshot / WRAPPER), "--render-json-diagnostics", "--", "/bin/true"],
        ),
    ):
        start = time.monotonic()
        for _ in range(runs):
            subprocess.run(argv, env=env, check=True)
        results[name] = 1000 * (time.monotonic() - start) / runs
    return results


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--snapshot", type=Path, default=REPO, help="the pybuild tree to import (default: repo)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args, build_args = parser.parse_known_args(argv)
    sys.path.insert(0, str(args.snapshot))
    if not any(a.startswith("//") for a in build_args):
        build_args.append("//...")
    if not any(a.startswith(("-j", "--jobs")) for a in build_args):
        build_args.insert(0, "-j2")
    recorder = Recorder()
    install_probes(recorder)
    start, cpu = time.monotonic(), _own_cpu()
    code = run_build(args.workspace.resolve(), build_args)
    summary = summarize(recorder, time.monotonic() - start)
    summary["own_cpu"] = _own_cpu() - cpu
    summary["wrapper_startup_ms"] = wrapper_startup(args.snapshot)
    print_summary(summary)
    print(
        "\nprocess start, mean of 20 (ms):",
        json.dumps({k: round(v, 1) for k, v in summary["wrapper_startup_ms"].items()}),
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
