"""Loading-phase benchmark: how fast pybuild turns a large workspace into its target graph (and actions).

Generates a synthetic workspace (bench/gen_workspace.py) and measures, each run in a fresh process:

1. the full CLI, `pybuild query //... --output=label` (wall time; the output must list every rule target);
2. loading through the Python API (load_workspace -> resolve_patterns(["//..."]) -> dependency_graph),
   timed inside the process, with the process's peak RSS;
3. loading and analysis through the API (resolve //..., then Analysis.run over every rule target, as
   `pybuild build //...` does before execution), with the process's peak RSS.

Each is measured cold (PYBUILD_LOAD_CACHE=0: every BUILD file evaluated, analysis run) and warm (the load
cache of pybuild-out/cache/loading, its loading snapshot included, filled by the unmeasured warm-up run,
nothing changed since). Loading and analysis are also measured after an edit, the everyday case: before
each run the `lib` target of one package gets a new `rustc_env` value, so it and every target that
depends on it are analyzed again (incremental analysis), in a package nothing depends on (`top`), one in
the middle of the graph and one low in it (`bottom`, which nearly everything depends on).

Results go to bench/results/loading.json. `--profile cprofile|pyinstrument` then profiles one more
loading run (cold unless --profile-warm). `--against REV` also runs warm loading + analysis of this tree
and of git revision REV alternately (--against-pairs pairs) and reports the per-pair ratios: on a machine
whose speed drifts, the fair way to tell whether a change made it faster. `--against-cache cold` (or
`both`) compares cold runs that way.

    python bench/loading.py                          # 2,000 packages x 5 targets in a temp dir
    python bench/loading.py --workspace /tmp/ws      # generate once into /tmp/ws, reuse it afterwards
    python bench/loading.py --runs 5 --profile cprofile
    python bench/loading.py --workspace /tmp/ws --analysis-runs 3 --against HEAD~3
    python bench/loading.py --workspace /tmp/ws --analysis-runs 0 --against HEAD~3 --against-cache both
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script (python bench/loading.py), so bench/ is on sys.path.
from gen_workspace import generate, package_path, read_manifest, with_edited_env

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
AIM_TARGETS_PER_SECOND = 20_000
AIM_PEAK_RSS_MIB = 300  # at 10,000 targets

# Runs in a fresh interpreter: argv[1] is the workspace root, argv[2] "load" or "analyze", argv[3] an
# optional profiler and argv[4] its output. Prints one JSON line with the timings and the peak RSS.
CHILD_SCRIPT = r"""
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from pybuild.analysis import Analysis, BuildConfig
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader
imported = time.perf_counter()
rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

phases = {}
actions = []

def cpu_time():  # this process's and that of the forked copies it waited for (loading and analysis fork)
    own, copies = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + copies.ru_utime + copies.ru_stime

def load(root, analyze):
    t = time.perf_counter()
    ws = load_workspace(root)
    gl = TargetGraphLoader(PackageLoader(ws))
    labels = gl.resolve_patterns(["//..."])
    phases["resolve_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if not analyze:
        graph = gl.dependency_graph(labels)
        phases["dependency_graph_s"] = time.perf_counter() - t
        return labels, graph.number_of_nodes(), graph.number_of_edges()
    # As `pybuild build //...`: analysis makes the dependency graph itself (or finds its result cached).
    rules = [label for label in labels if gl.loader.target(label).is_rule]
    result = Analysis(gl, BuildConfig()).run(rules)
    actions.extend(result.actions.actions)
    phases["analysis_s"] = time.perf_counter() - t
    return labels, len(result.closure), None  # analysis keeps the targets it reached, not their edges

root, analyze = Path(sys.argv[1]), sys.argv[2] == "analyze"
profiler = sys.argv[3] if len(sys.argv) > 3 else ""
if profiler == "cprofile":
    import cProfile
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    labels, nodes, edges = profile.runcall(load, root, analyze)
    t1 = time.perf_counter()
    profile.dump_stats(sys.argv[4])
elif profiler == "pyinstrument":
    import pyinstrument
    profile = pyinstrument.Profiler(interval=0.0005)
    t0 = time.perf_counter()
    with profile:
        labels, nodes, edges = load(root, analyze)
    t1 = time.perf_counter()
    Path(sys.argv[4]).write_text(profile.output_text(unicode=True, show_all=False, short_mode=False))
    Path(sys.argv[4]).with_suffix(".html").write_text(profile.output_html())
else:
    c0, t0 = cpu_time(), time.perf_counter()
    labels, nodes, edges = load(root, analyze)
    c1, t1 = cpu_time(), time.perf_counter()
    phases["loading_cpu_s"] = c1 - c0
print(json.dumps(phases | {
    "import_s": imported - started,
    "loading_s": t1 - t0,
    "labels": len(labels),
    "actions": len(actions),
    "graph_nodes": nodes,
    "graph_edges": edges,
    "rss_after_imports_kib": rss_after_imports,
    # The largest of this process and its forked copies (each counted alone: they share pages at first).
    "peak_rss_kib": max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)),
}))
"""


@dataclass
class ChildRun:
    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss_kib: int  # from wait4(): the child's own ru_maxrss
    cpu_s: float = 0.0  # user + system time of the child and of the processes it waited for (wait4)


def run_child(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> ChildRun:
    """Run `command` to completion, timing its wall clock and collecting its own resource usage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            wall,
            process.returncode,
            out.read().decode(),
            err.read().decode(),
            _kib(usage.ru_maxrss),
            usage.ru_utime + usage.ru_stime,
        )


def cache_environment(warm: bool) -> dict[str, str]:
    """The children's environment: the load cache on (warm) or off (cold)."""
    env = dict(os.environ)
    env.pop("PYBUILD_LOAD_CACHE", None)
    return env if warm else env | {"PYBUILD_LOAD_CACHE": "0"}


def _kib(maxrss: int) -> int:
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # macOS reports bytes, Linux KiB


def _check(run: ChildRun, what: str) -> None:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed with exit code {run.returncode}:\n{run.stderr}")


def pybuild_command() -> list[str]:
    executable = shutil.which("pybuild")
    return [executable] if executable else [sys.executable, "-m", "pybuild"]


# Measurements -------------------------------------------------------------------------------------


def measure_cli(root: Path, expected: int, runs: int, warmup: int, warm: bool) -> list[ChildRun]:
    command = [*pybuild_command(), "query", "//...", "--output=label"]
    results = []
    for index in range(warmup + runs):
        run = run_child(command, root, cache_environment(warm))
        _check(run, "pybuild query")
        lines = len(run.stdout.splitlines())
        if lines != expected:
            raise SystemExit(f"pybuild query printed {lines} labels, expected {expected} rule targets")
        if index >= warmup:
            results.append(run)
    return results


def measure_api(
    root: Path, expected: int, runs: int, warmup: int, warm: bool, mode: str = "load"
) -> list[dict[str, Any]]:
    results = []
    for index in range(warmup + runs):
        record = api_run(root, expected, cache_environment(warm), mode)
        if index >= warmup:
            results.append(record)
    return results


# Packages whose library measure_edited edits: gen_workspace.py's packages depend on earlier ones only.
def edited_packages(packages: int) -> dict[str, int]:
    return {"top": packages - 1, "middle": packages // 2, "bottom": min(10, packages - 1)}


def measure_edited(root: Path, expected: int, runs: int, package: int) -> list[dict[str, Any]]:
    """Loading + analysis with the load cache, each run after the package's `lib` got a new rustc_env value.
    The first run is not measured: it also analyzes again what an earlier measurement's edit touched."""
    build = root / package_path(package) / "BUILD.bazel"
    text = build.read_text(encoding="utf-8")
    results = []
    try:
        for index in range(1 + runs):
            build.write_text(with_edited_env(text, "lib", str(index)), encoding="utf-8")
            results.append(api_run(root, expected, cache_environment(True), "analyze"))
    finally:
        build.write_text(text, encoding="utf-8")
    return results[1:]


def api_run(root: Path, expected: int, env: dict[str, str], mode: str) -> dict[str, Any]:
    """One run of CHILD_SCRIPT on `root`: its JSON record, with the process's wall time."""
    run = run_child([sys.executable, "-c", CHILD_SCRIPT, str(root), mode], root, env)
    _check(run, f"{mode} through the API")
    record = json.loads(run.stdout.splitlines()[-1]) | {"process_wall_s": run.wall_s}
    if record["labels"] != expected:
        raise SystemExit(f"resolve_patterns returned {record['labels']} labels, expected {expected}")
    return record


def measure_against(
    root: Path, expected: int, revision: str, pairs: int, scratch: Path, warm: bool = True
) -> dict[str, Any]:
    """Loading + analysis (warm, or cold) of this tree and of `revision`, alternating run by run.

    This machine's speed drifts within minutes, so medians taken minutes apart compare badly; pairs of runs
    taken back to back do not. `revision` runs from a temporary git worktree on its own copy of the workspace
    (each keeps its own load cache), both with the tree they measure first on PYTHONPATH.
    """
    cache = "warm" if warm else "cold"
    tree, copy = scratch / f"against-{cache}-tree", scratch / f"against-{cache}-workspace"
    git = ["git", "-C", str(BENCH_DIR.parent)]
    subprocess.run([*git, "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True)
    try:
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns("pybuild-out", "pybuild-bin"))
        sides = {"this": (root, BENCH_DIR.parent), "against": (copy, tree)}
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for index in range(pairs + 1):  # the first pair fills both load caches (and the page cache)
            for side, (workspace, code) in sides.items():
                env = cache_environment(warm) | {"PYTHONPATH": str(code)}
                record = api_run(workspace, expected, env, "analyze")
                if index:
                    runs[side].append(record)
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False, capture_output=True)
    this, other = ([r["loading_s"] for r in runs[side]] for side in sides)
    return {
        "revision": revision,
        "cache": cache,
        "this": api_result(expected, runs["this"]),
        "against": api_result(expected, runs["against"]),
        "ratio_this_to_against": summary([a / b for a, b in zip(this, other, strict=True)]),
    }


def profile_loading(root: Path, profiler: str, top: int, warm: bool) -> Path:
    """Profile one loading run in a fresh process; print the hotspots and return the profile's path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = ".prof" if profiler == "cprofile" else ".txt"
    output = RESULTS_DIR / f"loading_profile{suffix}"
    command = [sys.executable, "-c", CHILD_SCRIPT, str(root), "load", profiler, str(output)]
    run = run_child(command, root, cache_environment(warm))
    _check(run, f"profiling with {profiler}")
    loading_s = json.loads(run.stdout.splitlines()[-1])["loading_s"]
    print(f"\nProfile ({profiler}, loading {loading_s:.2f} s under the profiler): {output}")
    if profiler == "cprofile":
        _print_pstats(output, top)
    else:
        print(output.read_text(encoding="utf-8"))
    return output


def _print_pstats(path: Path, top: int) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"--- top {top} by {key} ---")
        stats.sort_stats(key).print_stats(top)


# Reporting ----------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def cli_result(targets: int, cli: list[ChildRun]) -> dict[str, Any]:
    wall = summary([r.wall_s for r in cli])
    return {
        "command": "pybuild query //... --output=label",
        "wall_s": wall,
        "cpu_s": summary([r.cpu_s for r in cli]),
        "peak_rss_mib": summary([r.peak_rss_kib / 1024 for r in cli]),
        "targets_per_s": targets / wall["median"],
    }


def api_result(targets: int, api: list[dict[str, Any]]) -> dict[str, Any]:
    loading = summary([r["loading_s"] for r in api])
    result = {
        "loading_s": loading,
        "loading_cpu_s": summary([r["loading_cpu_s"] for r in api]),
        "resolve_s": summary([r["resolve_s"] for r in api]),
        "dependency_graph_s": summary([r.get("dependency_graph_s", 0.0) for r in api]),
        "import_s": summary([r["import_s"] for r in api]),
        "process_wall_s": summary([r["process_wall_s"] for r in api]),
        "peak_rss_mib": summary([r["peak_rss_kib"] / 1024 for r in api]),
        "rss_after_imports_mib": summary([r["rss_after_imports_kib"] / 1024 for r in api]),
        "graph_nodes": api[0]["graph_nodes"],
        "graph_edges": api[0]["graph_edges"],
        "targets_per_s": targets / loading["median"],
        "targets_per_s_best": targets / loading["min"],
    }
    if "analysis_s" in api[0]:
        result["analysis_s"] = summary([r["analysis_s"] for r in api])
        result["actions"] = api[0]["actions"]
    return result


def build_result(
    manifest: dict[str, Any], measured: dict[str, dict[str, Any]], state_before: str | None
) -> dict[str, Any]:
    targets = int(manifest["rule_targets"])
    result: dict[str, Any] = {
        "benchmark": "loading",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": _environment(state_before),
        "workspace": manifest,
        "aim_targets_per_s": AIM_TARGETS_PER_SECOND,
        "aim_peak_rss_mib": AIM_PEAK_RSS_MIB,
    }
    for name, runs in measured.items():
        result[name] = cli_result(targets, runs) if name.startswith("cli") else api_result(targets, runs)
    for cache in ("cold", "warm"):
        analysis = result.get(f"api_analysis_{cache}")
        if analysis:
            analysis["ratio_to_aim"] = analysis["targets_per_s"] / AIM_TARGETS_PER_SECOND
    return result


def source_state() -> str | None:
    """The pybuild commit, with '+dirty' when pybuild's sources differ from it (others may edit concurrently)."""
    git = ["git", "-C", str(BENCH_DIR.parent)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    status = subprocess.run([*git, "status", "--porcelain", "pybuild", "rules"], capture_output=True, text=True)
    return f"{commit}+dirty" if commit and status.stdout.strip() else commit or None


def _environment(state_before: str | None) -> dict[str, Any]:
    state_after = source_state()
    if state_after != state_before:
        print(f"WARNING: pybuild changed during the benchmark ({state_before} -> {state_after}); results are mixed")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "commit": state_before,
        "commit_after": state_after,
    }


def print_report(result: dict[str, Any]) -> None:
    ws = result["workspace"]
    some = next(result[k] for k in result if k.startswith("api_"))
    print(f"\nWorkspace: {ws['packages']} packages, {ws['rule_targets']} rule targets, {ws['dependency_edges']} deps")
    print(f"Graph: {some['graph_nodes']} nodes (rules + source files), {some['graph_edges']} edges\n")
    print(f"{'measurement':<44}{'median':>10}{'min':>10}{'max':>10}")
    for name in (k for k in result if k.startswith(("cli_", "api_"))):
        _print_rows(name, result[name])
    targets = int(ws["rule_targets"])
    print()
    for name in (k for k in result if k.startswith(("cli_", "api_"))):
        kind, _, case = name.rpartition("_")
        what = {
            "cli": "CLI query wall",
            "api_loading": "loading only",
            "api_analysis": "loading + analysis",
            "api_edited": "loading + analysis, a lib edited",
        }
        label = f"{what[kind]} ({'warm cache' if case == 'warm' else case})"
        value = result[name]
        seconds = value["wall_s" if name.startswith("cli") else "loading_s"]["median"]
        rss = value["peak_rss_mib"]["median"]
        print(f"{label:<36}{targets / seconds:>10,.0f} targets/s   peak RSS {rss:6.1f} MiB")
    print(
        f"Aims: {result['aim_targets_per_s']:,} targets/s (loading + analysis), "
        f"peak RSS <= {result['aim_peak_rss_mib']} MiB"
    )
    for key in ("against", "against_cold"):
        if key in result:
            _print_against(targets, result[key])


def _print_against(targets: int, against: dict[str, Any]) -> None:
    pairs = against["ratio_this_to_against"]
    what = f"{against['cache'].capitalize()} loading + analysis"
    print(f"\n{what}, {len(pairs['runs'])} alternating pairs against {against['revision']}:")
    for side in ("this", "against"):
        seconds, rss = against[side]["loading_s"]["median"], against[side]["peak_rss_mib"]["median"]
        name = "this tree" if side == "this" else against["revision"]
        print(f"  {name:<20}{seconds:8.3f} s median  {targets / seconds:>8,.0f} targets/s   peak RSS {rss:6.1f} MiB")
    runs = " ".join(f"{r:.3f}" for r in pairs["runs"])
    print(f"  this / {against['revision']} per pair: median {pairs['median']:.3f} ({runs})")


def _print_rows(name: str, value: dict[str, Any]) -> None:
    units = {"peak_rss_mib": "MiB", "rss_after_imports_mib": "MiB"}
    for key, stats in value.items():
        if isinstance(stats, dict) and "median" in stats:
            unit = units.get(key, "s")
            print(f"{name + ' ' + key:<44}{stats['median']:>10.3f}{stats['min']:>10.3f}{stats['max']:>10.3f}  {unit}")


# Main ---------------------------------------------------------------------------------------------


def prepare_workspace(args: argparse.Namespace, scratch: Path) -> tuple[Path, dict[str, Any]]:
    """The workspace to measure: reused when --workspace holds one generated with the same parameters."""
    root = (args.workspace or scratch / "workspace").resolve()
    wanted = {"packages": args.packages, "targets_per_package": args.targets_per_package, "seed": args.seed}
    manifest = read_manifest(root)
    if manifest and all(manifest.get(k) == v for k, v in wanted.items()):
        print(f"Reusing workspace {root}")
    else:
        started = time.perf_counter()
        generate(root, args.packages, args.targets_per_package, args.seed)
        print(f"Generated workspace {root} in {time.perf_counter() - started:.1f} s")
        manifest = read_manifest(root)
    assert manifest is not None
    return root, manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pybuild's loading phase.")
    parser.add_argument("--workspace", type=Path, help="generate into (or reuse) this directory")
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--targets-per-package", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per measurement (at least 3)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (page cache, .pyc files)")
    parser.add_argument("--analysis-runs", type=int, default=3, help="runs of loading + analysis (0: none)")
    parser.add_argument("--profile", choices=["none", "cprofile", "pyinstrument"], default="none")
    parser.add_argument("--profile-warm", action="store_true", help="profile with the load cache filled")
    parser.add_argument("--top", type=int, default=25, help="hotspots to print with --profile cprofile")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "loading.json")
    parser.add_argument("--against", metavar="REV", help="also compare loading + analysis with this git revision")
    parser.add_argument("--against-pairs", type=int, default=10, help="alternating run pairs for --against")
    parser.add_argument(
        "--against-cache", choices=["warm", "cold", "both"], default="warm", help="what --against compares"
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-loading-") as scratch:
        root, manifest = prepare_workspace(args, Path(scratch))
        expected = int(manifest["rule_targets"])
        state_before = source_state()
        measured: dict[str, Any] = {}
        for warm in (False, True):  # cold first: its runs leave the cache alone, the warm-up run fills it
            cache = "warm" if warm else "cold"
            measured[f"cli_{cache}"] = measure_cli(root, expected, args.runs, args.warmup, warm)
            measured[f"api_loading_{cache}"] = measure_api(root, expected, args.runs, args.warmup, warm)
            if args.analysis_runs:
                runs = args.analysis_runs
                measured[f"api_analysis_{cache}"] = measure_api(root, expected, runs, 1, warm, "analyze")
        if args.analysis_runs:
            for where, package in edited_packages(int(manifest["packages"])).items():
                measured[f"api_edited_{where}"] = measure_edited(root, expected, args.analysis_runs, package)
        result = build_result(manifest | {"path": str(root)}, measured, state_before)
        if args.against:
            against = (root, expected, args.against, args.against_pairs, Path(scratch))
            compare = functools.partial(measure_against, *against)
            if args.against_cache in ("warm", "both"):
                result["against"] = compare(warm=True)
            if args.against_cache in ("cold", "both"):
                result["against_cold"] = compare(warm=False)
        print_report(result)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nWrote {args.output}")
        if args.profile != "none":
            profile_loading(root, args.profile, args.top, args.profile_warm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
