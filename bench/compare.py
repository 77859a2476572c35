"""Clean debug builds on 2 jobs: Cargo against pybuild's three pipelining modes, alternating A B C D per round.

Workloads (each prepared once in --work_dir, never in the repository):

    chain       bench/gen_synthetic.py chain of heavy-codegen crates (--chain_crates, default 8) and a binary
    diamond     bench/gen_synthetic.py diamond (--diamond_layers, default 1,8,1) and a binary
    debian      a copy of examples/ (without pybuild-out, target) building crates_demo against the Debian
                crates in /usr/share/cargo/registry: `cargo build` and the same two targets in pybuild
    chain_cgu1  (only when asked for) the chain with -Ccodegen-units=1 for both tools: LLVM on one thread

Systems: `cargo` (`cargo build -jN --offline`, a fresh target dir per run, after a warm-up build), and pybuild
`unpipelined` (--pipelined_compilation=false), `rmeta` (the default) and `hollow`
(--incompatible_use_unstable_no_codegen_for_pipelining), each after `pybuild clean` (a run that reports cached
actions is an error). `clean` keeps the build history, so the scheduler knows the durations the warm-up build
and earlier runs measured, as after a developer's own builds; --forget_history removes it before each run, as
on a machine's first build. Cargo gets CARGO_INCREMENTAL=0 and CARGO_PROFILE_DEV_DEBUG=0 so it compiles with
pybuild's fastbuild flags (-Copt-level=0 -Cdebuginfo=0, no incremental); --cargo_profile=default drops that.

pybuild runs from a snapshot of the working tree taken at start (others may edit the repository meanwhile),
compiled to bytecode once as an installed pybuild is.
For every run the script records wall time, CPU of the whole process tree, pybuild's own CPU and peak RSS
(from /proc while it runs: its utime/stime as a zombie, the VmHWM high-water mark), the CPU that other
processes used meanwhile, and for pybuild `wall / bound` from its --profile plus a gap analysis of its
--execution_log_json_file: for each action, the time between its inputs being ready (and a slot free) and its
start, and the time pybuild spent inside the action beyond the spawn (action key, sandbox, output hashing).

    python bench/compare.py --rounds 3
    python bench/compare.py --rounds 1 --workloads chain --chain_crates 3   # a quick check

Results: a table on stdout, bench/results/compare.json, and per run the log, profile, execution log and
timings.html under bench/results/compare_runs/.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import gen_synthetic  # noqa: E402  (bench/ is not a package)

from action_graph.list_schedule import ScheduleGraph  # noqa: E402
from pybuild.build_record import ActionRecord, BuildRecord  # noqa: E402

RESULTS = BENCH / "results"
SYSTEMS = ("cargo", "unpipelined", "rmeta", "hollow")
PYBUILD_FLAGS = {
    "unpipelined": ["--pipelined_compilation=false"],
    "rmeta": ["--pipelined_compilation"],
    "hollow": ["--pipelined_compilation", "--incompatible_use_unstable_no_codegen_for_pipelining"],
}
WORKLOADS = ("chain", "diamond", "debian", "chain_cgu1")
SYNTHETIC = {"chain": 0, "diamond": 0, "chain_cgu1": 1}  # workload -> -Ccodegen-units (0: rustc's default)
DEBIAN_TARGETS = ["//crates_demo/textlib:textlib", "//crates_demo/wordstat:wordstat"]
EXAMPLES_EXCLUDE = {"pybuild-out", "target", "pybuild-bin"}
SNAPSHOT_PARTS = ("pybuild", "action_graph", "toolchains", "rules")
BUILD_OK = re.compile(r"Build OK: (\d+) executed, (\d+) cached, (\d+) total actions in ([\d.]+)s")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.05
RATIO_PAIRS = (("hollow", "unpipelined"), ("rmeta", "unpipelined"), ("hollow", "cargo"), ("rmeta", "cargo"))


class CompareError(Exception):
    """A setup step failed; the message says which and how to fix it."""


# Machine state ------------------------------------------------------------------------------------


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def busy_fraction(seconds: float) -> float:
    before = cpu_jiffies()
    time.sleep(seconds)
    after = cpu_jiffies()
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (at most max_wait seconds) until other processes use below `threshold` of the CPUs."""
    deadline = time.monotonic() + max_wait
    busy = busy_fraction(2.0)
    while busy > threshold and time.monotonic() < deadline:
        print(f"  waiting for a quieter machine: {busy:.0%} of the CPUs busy", flush=True)
        busy = busy_fraction(5.0)
    return busy


# Running one measured process ---------------------------------------------------------------------


@dataclass
class ProcessStats:
    exit_code: int
    wall: float
    tree_cpu: float  # user + system of the process and every descendant it waited for
    own_cpu: float  # the process itself (all its threads), without children
    own_peak_rss_kb: int  # VmHWM of the process itself
    other_cpu: float  # CPU seconds that processes outside this tree used during the run
    timed_out: bool = False


def _read_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _own_cpu_of_zombie(pid: int) -> float:
    """utime + stime of an exited, not yet reaped process (fields 14 and 15 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    except (OSError, ValueError, IndexError):
        return float("nan")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group of the process this script started


def run_measured(argv: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float) -> ProcessStats:
    """Run argv to completion with stdout+stderr in `log`, sampling its own memory while it runs."""
    busy_before = cpu_jiffies()[0]
    start = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    hwm, timed_out = 0, False
    while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        hwm = max(hwm, _read_hwm_kb(process.pid))
        if time.monotonic() - start > timeout:
            timed_out = True
            _stop_group(process)
        time.sleep(POLL_SECONDS)
    own = _own_cpu_of_zombie(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    tree = usage.ru_utime + usage.ru_stime
    busy = (cpu_jiffies()[0] - busy_before) / CLOCK_TICK
    code = os.waitstatus_to_exitcode(status)
    return ProcessStats(code, wall, tree, own, hwm, max(0.0, busy - tree), timed_out)


# Workloads ----------------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    root: Path
    targets: list[str]
    cargo_args: list[str] = field(default_factory=list)


def prepare_synthetic(name: str, root: Path, args: argparse.Namespace) -> Workload:
    if name.startswith("chain"):
        plan = gen_synthetic.plan_chain(args.chain_crates)
    else:
        plan = gen_synthetic.plan_diamond([int(width) for width in args.diamond_layers.split(",")])
    plan.instances, plan.statements, plan.codegen_units = args.instances, args.statements, SYNTHETIC[name]
    gen_synthetic.write_workspace(root, plan)
    return Workload(name, root, ["//..."])


def _copy_ignore(source: Path) -> Callable[[str, list[str]], list[str]]:
    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(directory) == source and n in EXAMPLES_EXCLUDE]

    return ignore


def debian_crates_missing(examples: Path) -> list[str]:
    repositories = json.loads((examples / "third_party/crates/repositories.json").read_text(encoding="utf-8"))
    paths = [entry["path"] for entry in repositories.values() if entry["path"].startswith("/")]
    return [path for path in paths if not Path(path).is_dir()]


def ensure_debian_crates(examples: Path) -> None:
    if not debian_crates_missing(examples):
        return
    print("Debian crate sources missing; running examples/install_debian_crates.sh", flush=True)
    result = subprocess.run(["bash", str(examples / "install_debian_crates.sh")], check=False)
    missing = debian_crates_missing(examples)
    if result.returncode != 0 or missing:
        raise CompareError(f"Debian crates still missing after install_debian_crates.sh: {', '.join(missing[:5])}")


def prepare_debian(root: Path, args: argparse.Namespace) -> Workload:
    examples = REPO / "examples"
    ensure_debian_crates(examples)
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(examples, root, symlinks=True, ignore=_copy_ignore(examples))
    return Workload("debian", root, args.debian_targets.split())


def prepare_workloads(args: argparse.Namespace) -> list[Workload]:
    workloads = []
    for name in args.workloads.split(","):
        root = args.work_dir / name
        if name == "debian":
            workloads.append(prepare_debian(root, args))
        elif name in SYNTHETIC:
            workloads.append(prepare_synthetic(name, root, args))
        else:
            raise CompareError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    return workloads


# Commands -----------------------------------------------------------------------------------------


def snapshot_pybuild(destination: Path) -> Path:
    """Copy pybuild's code as it is now, so edits during a long benchmark do not change what is measured, and
    compile it to bytecode once, as installing it does: runs write none (PYTHONDONTWRITEBYTECODE), and
    without it every run would spend ~0.13 s compiling pybuild's modules, which no installed pybuild does."""
    if destination.exists():
        shutil.rmtree(destination)
    ignore = shutil.ignore_patterns("__pycache__", "pybuild-out")
    for part in SNAPSHOT_PARTS:
        shutil.copytree(REPO / part, destination / part, ignore=ignore)
    if not compileall.compile_dir(destination, quiet=1):
        raise CompareError(f"cannot compile the snapshot of pybuild in {destination}")
    return destination


def tree_digest(root: Path) -> str:
    """One SHA-256 over the snapshot's sources, so runs can tell whether they measured the same code."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "__pycache__"):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def pybuild_env(snapshot: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(snapshot), PYTHONDONTWRITEBYTECODE="1")


def cargo_env(args: argparse.Namespace, target_dir: Path) -> dict[str, str]:
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir), CARGO_TERM_COLOR="never")
    if args.cargo_profile == "matched":
        env.update(CARGO_INCREMENTAL="0", CARGO_PROFILE_DEV_DEBUG="0")
    return env


def pybuild_argv(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pybuild", *arguments]


def run_quiet(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, what: str) -> str:
    """Run an unmeasured helper command; raise CompareError with its output when it fails."""
    try:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CompareError(f"{what} timed out after {timeout:.0f}s: {' '.join(argv)}") from None
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise CompareError(f"{what} failed (exit {result.returncode}) in {cwd}: {' '.join(argv)}\n{tail}")
    return result.stdout


def action_edges(workload: Workload, system: str, env: dict[str, str], timeout: float) -> dict[str, list[str]]:
    """consumer primary output -> producer primary outputs, from `pybuild aquery --output=json`."""
    expression = " + ".join(workload.targets)  # aquery lists the actions of their dependencies too
    argv = pybuild_argv("aquery", expression, "--output=json", *PYBUILD_FLAGS[system])
    actions = json.loads(run_quiet(argv, workload.root, env, timeout, "pybuild aquery"))["actions"]
    producer = {out: a["outputs"][0] for a in actions for out in a["outputs"] + a.get("output_directories", [])}
    edges: dict[str, list[str]] = {}
    for action in actions:
        found = {producer[i] for i in action["inputs"] if i in producer}
        found |= {producer[d] for i in action["inputs"] for d in _parents(i) if d in producer}
        edges[action["outputs"][0]] = sorted(found - {action["outputs"][0]})
    return edges


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def warm_up(workload: Workload, args: argparse.Namespace, snapshot: Path) -> dict[str, dict[str, list[str]]]:
    """One untimed build with each tool (generated repositories, Cargo.lock, page cache); action edges."""
    print(f"warming up {workload.name} in {workload.root}", flush=True)
    systems = args.systems.split(",")
    if "cargo" in systems:
        target = args.work_dir / "targets" / f"{workload.name}-warmup"
        run_quiet(
            ["cargo", "build", f"-j{args.jobs}", "--offline"],
            workload.root,
            cargo_env(args, target),
            args.timeout,
            "cargo warm-up build",
        )
        shutil.rmtree(target, ignore_errors=True)
    env = pybuild_env(snapshot)
    modes = [s for s in systems if s in PYBUILD_FLAGS]
    if modes:
        argv = pybuild_argv("build", f"-j{args.jobs}", *PYBUILD_FLAGS[modes[-1]], *workload.targets)
        run_quiet(argv, workload.root, env, args.timeout, "pybuild warm-up build")
    edges = {mode: action_edges(workload, mode, env, args.timeout) for mode in modes}
    for mode, mode_edges in edges.items():
        (args.runs_dir / f"{workload.name}-{mode}.edges.json").write_text(json.dumps(mode_edges), encoding="utf-8")
    return edges


# One run ------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    workload: str
    system: str
    round: int
    wall: float
    tree_cpu: float
    own_cpu: float
    own_peak_rss_mb: float
    other_cpu_fraction: float  # share of the machine's CPU used by other processes meanwhile
    busy_before: float
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # pybuild's `Build OK` numbers
    profile: dict[str, Any] = field(default_factory=dict)  # wall_seconds, bound_seconds, jobs
    gaps: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_over_bound(self) -> float | None:
        bound = self.profile.get("bound_seconds")
        return self.profile["wall_seconds"] / bound if bound else None

    @property
    def floor_over_bound(self) -> float | None:
        """The least `wall / bound` any schedule of this run's actions could reach (see pybuild/phase_bound.py)."""
        bound, floor = self.profile.get("bound_seconds"), self.gaps.get("phase_bound")
        return floor / bound if bound and floor else None

    @property
    def wall_over_ideal(self) -> float | None:
        """pybuild's wall / (loading + analysis + a zero-overhead schedule of the same action durations)."""
        if not self.gaps.get("list_schedule"):
            return None
        return self.profile["wall_seconds"] / (self.gaps["before_execution"] + self.gaps["list_schedule"])


def _result(workload: Workload, system: str, round_: int, stats: ProcessStats, busy: float) -> RunResult:
    other = stats.other_cpu / max(1e-9, stats.wall * (os.cpu_count() or 1))
    return RunResult(
        workload.name,
        system,
        round_,
        stats.wall,
        stats.tree_cpu,
        stats.own_cpu,
        stats.own_peak_rss_kb / 1024,
        other,
        busy,
    )


def _failure(stats: ProcessStats, log: Path, what: str) -> str | None:
    if stats.timed_out:
        return f"{what} timed out (log: {log})"
    if stats.exit_code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
        return f"{what} exited with {stats.exit_code} (log: {log}):\n{tail}"
    return None


def run_cargo(workload: Workload, round_: int, args: argparse.Namespace, busy: float) -> RunResult:
    target = args.work_dir / "targets" / f"{workload.name}-{round_}"
    shutil.rmtree(target, ignore_errors=True)
    log = args.runs_dir / f"{workload.name}-cargo-{round_}.log"
    argv = ["cargo", "build", f"-j{args.jobs}", "--offline", *workload.cargo_args]
    stats = run_measured(argv, workload.root, cargo_env(args, target), log, args.timeout)
    shutil.rmtree(target, ignore_errors=True)
    result = _result(workload, "cargo", round_, stats, busy)
    result.error = _failure(stats, log, "cargo build")
    return result


def run_pybuild(workload: Workload, system: str, round_: int, args: argparse.Namespace, context: dict) -> RunResult:
    env, base = pybuild_env(context["snapshot"]), args.runs_dir / f"{workload.name}-{system}-{round_}"
    run_quiet(pybuild_argv("clean"), workload.root, env, args.timeout, "pybuild clean")
    if args.forget_history:
        shutil.rmtree(workload.root / "pybuild-out" / "history", ignore_errors=True)
    profile, exec_log, log = base.with_suffix(".profile.json"), base.with_suffix(".exec.json"), base.with_suffix(".log")
    flags = [f"-j{args.jobs}", f"--profile={profile}", f"--execution_log_json_file={exec_log}", "--timings"]
    argv = pybuild_argv("build", *flags, *PYBUILD_FLAGS[system], *workload.targets)
    stats = run_measured(argv, workload.root, env, log, args.timeout)
    result = _result(workload, system, round_, stats, context["busy"])
    result.error = _failure(stats, log, "pybuild build")
    if result.error is None:
        result.error = _read_pybuild_reports(result, log, profile, exec_log, workload, context["edges"][system])
        shutil.copy(workload.root / "pybuild-out" / "timings.html", base.with_suffix(".timings.html"))
    return result


def _read_pybuild_reports(
    result: RunResult, log: Path, profile: Path, exec_log: Path, workload: Workload, edges: dict[str, list[str]]
) -> str | None:
    match = BUILD_OK.search(log.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        return f"no `Build OK` line in {log}"
    executed, cached, total, seconds = match.groups()
    result.summary = {"executed": int(executed), "cached": int(cached), "total": int(total), "seconds": float(seconds)}
    trace = json.loads(profile.read_text(encoding="utf-8"))
    result.profile = dict(trace["otherData"])
    costs = _load_json(workload.root / "pybuild-out/history/costs.json")
    actions = json.loads(exec_log.read_text(encoding="utf-8"))
    result.gaps = analyze_gaps(actions, edges, trace, costs)
    if int(cached):
        return f"{cached} actions came from the cache after `pybuild clean`; the run is not a clean build"
    return None


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# Gap analysis -------------------------------------------------------------------------------------


def _phase(trace: dict[str, Any], name: str) -> tuple[float, float]:
    for event in trace["traceEvents"]:
        if event.get("cat") == "phase" and event["name"] == name:
            return event["ts"] / 1e6, (event["ts"] + event["dur"]) / 1e6
    return 0.0, 0.0


def _critical_outputs(trace: dict[str, Any]) -> list[str]:
    events = [e for e in trace["traceEvents"] if e.get("cat") == "critical path"]
    return [e["args"]["output"] for e in sorted(events, key=lambda e: e["ts"])]


def _action_gaps(actions: list[dict[str, Any]], edges: dict[str, list[str]], exec_start: float) -> list[dict]:
    """Per action that held a slot: when its inputs were ready, when its slot was free, and how long it then
    waited to start. (A fused or cut metadata action held none, but its end is when its dependents could go.)"""
    end_of = {a["primary_output"]: a["end"] for a in actions}
    slot_free: dict[int, float] = {}
    rows = []
    for action in sorted((a for a in actions if not a.get("shares_process")), key=lambda a: a["start"]):
        waited = [action["waited_for"]] if action.get("waited_for") else []
        producers = [end_of[p] for p in [*edges.get(action["primary_output"], []), *waited] if p in end_of]
        ready = max(producers, default=exec_start)
        free = slot_free.get(action["slot"], exec_start)
        rows.append(
            {
                "action": f"{action['mnemonic']} {action['owner']}",
                "output": action["primary_output"],
                "ready": ready,
                "queued": max(0.0, free - ready),  # ready, but every slot was busy
                "delay": action["start"] - max(ready, free),  # ready and a slot free, not started yet
                "duration": action["end"] - action["start"],
            }
        )
        slot_free[action["slot"]] = action["end"]
    return rows


def _overheads(actions: list[dict[str, Any]], costs: dict[str, float]) -> list[dict[str, Any]]:
    """Time inside an action beyond its spawn (action key + input hashing, sandbox, output hashing, cache)."""
    rows = []
    for action in actions:
        spawn = costs.get(f"{action['owner']}|{action['mnemonic']}|{action['primary_output']}")
        if spawn is not None:
            rows.append(
                {
                    "action": f"{action['mnemonic']} {action['owner']}",
                    "start": action["start"],
                    "overhead": action["end"] - action["start"] - spawn,
                    "spawn": spawn,
                }
            )
    return rows


def list_schedule(actions: list[dict[str, Any]], edges: dict[str, list[str]], jobs: int) -> float:
    """Makespan of this run's actions, with their measured durations, on `jobs` slots with no overhead at all
    between them, always starting the ready action with the longest remaining path (what pybuild does). Unlike
    max(critical path, total / jobs) this is achievable, so wall / it is what scheduling and gaps cost. An action
    that shared another's process (fused rmeta pipelining, a cut hollow rlib) runs beside it without a slot of
    its own."""
    duration = {a["primary_output"]: a["end"] - a["start"] for a in actions}
    slotless = {a["primary_output"] for a in actions if a.get("shares_process")}
    waits = {a["primary_output"]: a["waited_for"] for a in actions if a.get("waited_for")}  # cut after its full
    return ScheduleGraph(duration, edges, waits).makespan(duration, jobs, waits, slotless)


def phase_floor(actions: list[dict[str, Any]], edges: dict[str, list[str]], jobs: int) -> float:
    """No schedule of these actions on `jobs` slots ends sooner: what must run alone counts whole."""
    fields = {f.name for f in dataclasses.fields(ActionRecord)}
    records = [ActionRecord(**{k: v for k, v in action.items() if k in fields}) for action in actions]
    pairs = [(producer, consumer) for consumer, producers in edges.items() for producer in producers]
    return BuildRecord(jobs, actions=records, edges=pairs).phase_bound()


def analyze_gaps(
    actions: list[dict[str, Any]], edges: dict[str, list[str]], trace: dict[str, Any], costs: dict[str, float]
) -> dict[str, Any]:
    """Where wall time went beyond the actions: before execution, between actions, inside actions, after."""
    if not actions:
        return {}
    jobs = trace["otherData"]["jobs"]
    exec_start = _phase(trace, "execution")[0]
    last_end = max(a["end"] for a in actions)
    rows = _action_gaps(actions, edges, exec_start)
    by_output = {row["output"]: row for row in rows}
    critical = [by_output[o] for o in _critical_outputs(trace) if o in by_output]
    overheads = _overheads(actions, costs)
    first = min(overheads, key=lambda r: r["start"], default=None)
    by_mnemonic: dict[str, list[float]] = {}
    for action in actions:
        by_mnemonic.setdefault(action["mnemonic"], []).append(action["end"] - action["start"])
    return {
        "before_execution": exec_start,
        "list_schedule": list_schedule(actions, edges, jobs),
        "phase_bound": phase_floor(actions, edges, jobs),
        "first_action_start": min(a["start"] for a in actions) - exec_start,
        "after_last_action": trace["otherData"]["wall_seconds"] - last_end,
        "idle_slot_seconds": jobs * (last_end - exec_start) - sum(r["duration"] for r in rows),
        "dispatch_delay_sum": sum(r["delay"] for r in rows),
        "dispatch_delay_max": max(r["delay"] for r in rows),
        "dispatch_delay_mean_ms": 1000 * statistics.fmean(r["delay"] for r in rows),
        "critical_path_delay_sum": sum(r["delay"] for r in critical),
        "critical_path_actions": len(critical),
        "worst_delays": sorted(rows, key=lambda r: -r["delay"])[:5],
        "overhead_sum": sum(r["overhead"] for r in overheads),
        "overhead_mean_ms": 1000 * statistics.fmean([r["overhead"] for r in overheads] or [0.0]),
        "first_action_overhead": first["overhead"] if first else None,
        "worst_overheads": sorted(overheads, key=lambda r: -r["overhead"])[:5],
        "action_seconds": {m: round(sum(d), 3) for m, d in sorted(by_mnemonic.items())},
        "action_counts": {m: len(d) for m, d in sorted(by_mnemonic.items())},
    }


# Rounds, summaries and output ---------------------------------------------------------------------


def run_one(workload: Workload, system: str, round_: int, args: argparse.Namespace, context: dict) -> RunResult:
    context["busy"] = wait_for_quiet(args.quiet_threshold, args.quiet_wait)
    try:
        if system == "cargo":
            return run_cargo(workload, round_, args, context["busy"])
        return run_pybuild(workload, system, round_, args, context)
    except (CompareError, OSError, ValueError, KeyError) as error:
        return RunResult(
            workload.name,
            system,
            round_,
            float("nan"),
            float("nan"),
            float("nan"),
            float("nan"),
            float("nan"),
            context["busy"],
            error=f"{type(error).__name__}: {error}",
        )


def describe_run(result: RunResult) -> str:
    text = f"[{result.workload} r{result.round}] {result.system:<11} wall {result.wall:7.2f}s"
    text += f"  cpu {result.tree_cpu:6.1f}s  own cpu {result.own_cpu:5.2f}s  own rss {result.own_peak_rss_mb:5.0f} MB"
    text += f"  other load {result.other_cpu_fraction:4.0%}"
    if result.profile:
        bound = result.profile["bound_seconds"]
        text += f"  wall/bound {result.profile['wall_seconds']:.2f}/{bound:.2f} = {result.wall_over_bound:.3f}"
        if result.wall_over_ideal is not None:
            text += f"  wall/ideal {result.wall_over_ideal:.3f}"
        if result.floor_over_bound is not None:
            text += f"  floor/bound {result.floor_over_bound:.3f}"
        text += f"  ({result.summary.get('cached', '?')} cached)"
    if result.error:
        text += f"\n    ERROR: {result.error}"
    return text


def medians(results: list[RunResult]) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        if result.error is None:
            groups.setdefault((result.workload, result.system), []).append(result)
    for (workload, system), runs in groups.items():
        ratios = [r.wall_over_bound for r in runs if r.wall_over_bound is not None]
        ideal = [r.wall_over_ideal for r in runs if r.wall_over_ideal is not None]
        floors = [r.floor_over_bound for r in runs if r.floor_over_bound is not None]
        table.setdefault(workload, {})[system] = {
            "runs": len(runs),
            "wall": statistics.median(r.wall for r in runs),
            "wall_min": min(r.wall for r in runs),
            "wall_max": max(r.wall for r in runs),
            "tree_cpu": statistics.median(r.tree_cpu for r in runs),
            "own_cpu": statistics.median(r.own_cpu for r in runs),
            "own_peak_rss_mb": statistics.median(r.own_peak_rss_mb for r in runs),
            "other_load": statistics.median(r.other_cpu_fraction for r in runs),
            "wall_over_bound": statistics.median(ratios) if ratios else float("nan"),
            "wall_over_bound_max": max(ratios) if ratios else float("nan"),
            "wall_over_ideal": statistics.median(ideal) if ideal else float("nan"),
            "floor_over_bound_min": min(floors) if floors else float("nan"),
        }
    return table


def pair_ratios(results: list[RunResult], key: str = "wall") -> dict[str, dict[str, dict[str, Any]]]:
    """Per workload and pair: the ratio of `key` (wall or tree_cpu) within each round, and their median. For wall
    ratios also the floor: the top run's CPU time spread over every core of the machine, over the bottom run's
    wall time. No schedule of the top run's work could give a lower ratio in that round."""
    runs = {(r.workload, r.system, r.round): r for r in results if r.error is None}
    rounds = sorted({r.round for r in results})
    cores = os.cpu_count() or 1
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for workload in sorted({r.workload for r in results}):
        for top, bottom in RATIO_PAIRS:
            pairs = [
                (runs[a], runs[b])
                for a, b in (((workload, top, n), (workload, bottom, n)) for n in rounds)
                if a in runs and b in runs
            ]
            if not pairs:
                continue
            per_round = [getattr(a, key) / getattr(b, key) for a, b in pairs]
            entry: dict[str, Any] = {"per_round": per_round, "median": statistics.median(per_round)}
            if key == "wall":
                entry["floor_per_round"] = [a.tree_cpu / (cores * b.wall) for a, b in pairs]
            out.setdefault(workload, {})[f"{top}/{bottom}"] = entry
    return out


def print_tables(results: list[RunResult]) -> None:
    print("\nMedians (wall: whole process; cpu: process tree; own: the pybuild or cargo process itself;")
    print("w/bound: pybuild's wall_seconds / bound_seconds; w/ideal: wall / zero-overhead list schedule;")
    print("floor: the least wall/bound that any schedule of the run's actions reaches, lowest over rounds)")
    header = f"{'workload':<10} {'system':<11} {'n':>2} {'wall s':>7} {'min':>6} {'max':>6} {'cpu s':>6}"
    header += f" {'own cpu':>7} {'own RSS':>8} {'w/bound':>7} {'w/b max':>7} {'floor':>7} {'w/ideal':>7}"
    print(header + f" {'other':>5}")
    for workload, systems in medians(results).items():
        for system in SYSTEMS:
            if system in systems:
                m = systems[system]
                print(
                    f"{workload:<10} {system:<11} {m['runs']:>2} {m['wall']:7.2f} {m['wall_min']:6.2f} "
                    f"{m['wall_max']:6.2f} {m['tree_cpu']:6.1f} {m['own_cpu']:7.2f} {m['own_peak_rss_mb']:6.0f}MB "
                    f"{m['wall_over_bound']:7.3f} {m['wall_over_bound_max']:7.3f} {m['floor_over_bound_min']:7.3f} "
                    f"{m['wall_over_ideal']:7.3f} "
                    f"{m['other_load']:5.0%}"
                )
    for title, key in (("Wall-time", "wall"), ("CPU-time (process tree)", "tree_cpu")):
        print(f"\n{title} ratios (per round, then the median)")
        for workload, pairs in pair_ratios(results, key).items():
            for pair, data in pairs.items():
                rounds = " ".join(f"{v:.3f}" for v in data["per_round"])
                line = f"{workload:<10} {pair:<19} median {data['median']:.3f}   rounds: {rounds}"
                if "floor_per_round" in data:
                    line += "   floor (cpu / cores): " + " ".join(f"{v:.3f}" for v in data["floor_per_round"])
                print(line)


GAP_COLUMNS = (  # (heading, key in RunResult.gaps, format)
    ("pre-exec", "before_execution", "8.2f"),
    ("ideal", "list_schedule", "7.2f"),
    ("1st start", "first_action_start", "9.3f"),
    ("delay sum", "dispatch_delay_sum", "9.3f"),
    ("crit delay", "critical_path_delay_sum", "10.3f"),
    ("in-action", "overhead_sum", "9.2f"),
    ("1st ovh", "first_action_overhead", "7.2f"),
    ("after", "after_last_action", "6.2f"),
    ("idle slot-s", "idle_slot_seconds", "11.2f"),
)


def print_gaps(results: list[RunResult]) -> None:
    print("\nWhere pybuild's wall time goes beyond its actions (seconds; medians over rounds). ideal: the same")
    print("actions on the same slots with no gaps; in-action: time inside actions outside the spawned process")
    headings = " ".join(f"{heading:>{int(fmt.split('.')[0])}}" for heading, _, fmt in GAP_COLUMNS)
    print(f"{'workload':<10} {'system':<11} {headings}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        if result.gaps:
            groups.setdefault((result.workload, result.system), []).append(result.gaps)
    for (workload, system), gaps in groups.items():
        cells = [format(_median_of(gaps, key), fmt) for _, key, fmt in GAP_COLUMNS]
        print(f"{workload:<10} {system:<11} " + " ".join(cells))


def _median_of(rows: list[dict[str, Any]], key: str) -> float:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def write_json(path: Path, args: argparse.Namespace, results: list[RunResult], context: dict) -> None:
    payload = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": context.get("machine", {}),
        "runs": [
            dict(
                asdict(r),
                wall_over_bound=r.wall_over_bound,
                wall_over_ideal=r.wall_over_ideal,
                floor_over_bound=r.floor_over_bound,
            )
            for r in results
        ],
        "medians": medians(results),
        "ratios": pair_ratios(results),
        "cpu_ratios": pair_ratios(results, "tree_cpu"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


# Setup checks and main ----------------------------------------------------------------------------


def _git(*arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    versions = {
        tool: run_quiet([tool, "--version"], REPO, dict(os.environ), 60, tool).strip() for tool in ("rustc", "cargo")
    }
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "git_head": _git("rev-parse", "HEAD"),
        "git_dirty_files": _git("status", "--porcelain").splitlines(),
        "python": sys.version.split()[0],
        **versions,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def check_tools(args: argparse.Namespace) -> None:
    needed = ["rustc"] + (["cargo"] if "cargo" in args.systems.split(",") else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise CompareError(f"not on PATH: {', '.join(missing)}")
    unknown = [s for s in args.systems.split(",") if s not in SYSTEMS]
    if unknown:
        raise CompareError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.rounds < 1:
        raise CompareError("--rounds must be at least 1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workloads", default="chain,diamond,debian", help=f"from {','.join(WORKLOADS)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="run order within a round")
    parser.add_argument("--chain_crates", type=int, default=8)
    parser.add_argument("--diamond_layers", default="1,8,1")
    parser.add_argument("--instances", type=int, default=gen_synthetic.DEFAULT_INSTANCES)
    parser.add_argument("--statements", type=int, default=gen_synthetic.DEFAULT_STATEMENTS)
    parser.add_argument("--debian_targets", default=" ".join(DEBIAN_TARGETS), help="what `cargo build` builds")
    parser.add_argument("--cargo_profile", choices=("matched", "default"), default="matched")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/pybuild-compare"))
    parser.add_argument("--output", type=Path, default=RESULTS / "compare.json")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per build")
    parser.add_argument("--quiet_threshold", type=float, default=0.3, help="wait while the CPUs are busier")
    parser.add_argument("--quiet_wait", type=float, default=120.0, help="longest wait for a quiet machine")
    parser.add_argument("--forget_history", action="store_true", help="no recorded durations: first builds")
    parser.add_argument("--reanalyze", action="store_true", help="only recompute the analysis of --output")
    args = parser.parse_args(argv)
    args.output, args.work_dir = args.output.resolve(), args.work_dir.resolve()  # builds run in other directories
    args.runs_dir = args.output.parent / f"{args.output.stem}_runs"
    return args


def run_all(args: argparse.Namespace) -> list[RunResult]:
    context: dict[str, Any] = {"machine": machine_info(args)}
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    context["snapshot"] = snapshot_pybuild(args.work_dir / "pybuild-snapshot")
    context["machine"]["snapshot_sha256"] = tree_digest(context["snapshot"])
    workloads = prepare_workloads(args)
    edges = {w.name: warm_up(w, args, context["snapshot"]) for w in workloads}
    results: list[RunResult] = []
    for round_ in range(1, args.rounds + 1):
        for workload in workloads:
            context["edges"] = edges[workload.name]
            for system in args.systems.split(","):
                result = run_one(workload, system, round_, args, context)
                results.append(result)
                print(describe_run(result), flush=True)
                write_json(args.output, args, results, context)
    return results


def load_results(path: Path) -> tuple[list[RunResult], dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    names = {f.name for f in dataclasses.fields(RunResult)}
    runs = [RunResult(**{k: v for k, v in run.items() if k in names}) for run in data["runs"]]
    return runs, data.get("machine", {})


OVERHEAD_KEYS = ("overhead_sum", "overhead_mean_ms", "first_action_overhead", "worst_overheads")  # need costs.json


def saved_edges(args: argparse.Namespace, workload: str, system: str, snapshot: Path) -> dict[str, list[str]]:
    """The action edges stored at warm-up, or from `pybuild aquery` in the workload's directory."""
    path = args.runs_dir / f"{workload}-{system}.edges.json"
    if not path.is_file():
        targets = args.debian_targets.split() if workload == "debian" else ["//..."]
        edges = action_edges(
            Workload(workload, args.work_dir / workload, targets), system, pybuild_env(snapshot), args.timeout
        )
        path.write_text(json.dumps(edges), encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def reanalyze(args: argparse.Namespace) -> list[RunResult]:
    """Recompute the schedule analysis of an earlier --output from its saved profiles and execution logs
    (the in-action overheads need the run's costs.json and are kept as they were)."""
    results, machine = load_results(args.output)
    snapshot = args.work_dir / "pybuild-snapshot"
    for result in results:
        if result.system == "cargo" or result.error:
            continue
        base = args.runs_dir / f"{result.workload}-{result.system}-{result.round}"
        actions = json.loads(base.with_suffix(".exec.json").read_text(encoding="utf-8"))
        trace = json.loads(base.with_suffix(".profile.json").read_text(encoding="utf-8"))
        fresh = analyze_gaps(actions, saved_edges(args, result.workload, result.system, snapshot), trace, {})
        result.gaps.update({key: value for key, value in fresh.items() if key not in OVERHEAD_KEYS})
    write_json(args.output, args, results, {"machine": machine})
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_tools(args)
        results = reanalyze(args) if args.reanalyze else run_all(args)
    except CompareError as error:
        print(f"compare.py: {error}", file=sys.stderr)
        return 1
    print_tables(results)
    print_gaps(results)
    print(f"\nJSON: {args.output}; per-run logs, profiles, execution logs and timings: {args.runs_dir}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
