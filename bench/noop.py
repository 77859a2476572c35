"""No-op rebuild benchmark: how long `pybuild build //...` takes when nothing changed.

Generates a workspace of real, tiny crates (bench/gen_workspace.py; 200 packages x 5 targets = 1,000
crates by default), builds it once with real rustc (minutes, done only when needed), then times no-op
builds, each in a fresh process, and checks that every one executed 0 actions.

Measured variants (median of --runs each, after one unmeasured warm-up run):

- `pybuild`: the console script found on PATH, as a person types it (may be a pyenv shim);
- `python -m pybuild`: the interpreter directly, without any shim;
- `+ bytecode`: the same with Python's bytecode cache on (PYTHONDONTWRITEBYTECODE unset, .pyc files
  under the scratch directory), which shows what compiling pybuild's modules on every start costs here;
- `no load cache`: PYBUILD_LOAD_CACHE=0, so there is no no-op record, BUILD files are evaluated and
  analysis runs (the execution still finds every action cached) — the no-op as it was before the caches.
- `binary edited`: before each build a comment is appended to one binary's source, which no other
  crate reads, so exactly one action runs: the everyday edit-and-build loop, where the other cache hits
  are pybuild's overhead. The file gets its text back at the end.
- `BUILD comment`: before each build a comment is appended to that binary's BUILD file. The package is
  evaluated again but declares the same targets, so analysis stays cached and no action runs.
- `BUILD edited`: before each build the binary's `rustc_env` gets a new value in its BUILD file, so its
  package's targets and what depends on them are analyzed again (nothing does: a binary), and its one
  action runs.

The other variants are answered from the no-op record (pybuild/noop_record.py) that the initial build
or the warm-up run writes.

    python bench/noop.py                                  # generate into a temp dir (slow: builds it)
    python bench/noop.py --workspace /tmp/ws_noop         # generate and build once, reuse afterwards
    python bench/noop.py --workspace /tmp/ws_noop --pybuild-path /tmp/old  # another checkout, A/B

Results go to bench/results/noop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_workspace import generate, read_manifest, with_edited_env
from loading import RESULTS_DIR, ChildRun, run_child, source_state

AIM_SECONDS = 0.5
_SUMMARY = re.compile(r"Build OK: (\d+) executed, (\d+) cached, (\d+) total actions in ([0-9.]+)s")


def pybuild_script() -> list[str]:
    executable = shutil.which("pybuild")
    return [executable] if executable else [sys.executable, "-m", "pybuild"]


def child_environment(args: argparse.Namespace, scratch: Path, bytecode: bool, load_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    if args.pybuild_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.pybuild_path), env.get("PYTHONPATH")]))
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    if not load_cache:
        env["PYBUILD_LOAD_CACHE"] = "0"
    return env


def parse_summary(run: ChildRun) -> dict[str, Any]:
    found = _SUMMARY.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"build failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    executed, cached, total, seconds = found.groups()
    return {"executed": int(executed), "cached": int(cached), "total": int(total), "reported_s": float(seconds)}


def build(root: Path, command: list[str], env: dict[str, str], jobs: int | None = None) -> dict[str, Any]:
    flags = [f"--jobs={jobs}"] if jobs else []
    run = run_child([*command, "build", "//...", *flags], root, env)
    return parse_summary(run) | {
        "wall_s": run.wall_s,
        "peak_rss_mib": run.peak_rss_kib / 1024,
        "cpu_s": run.cpu_s,
    }


@dataclass
class Edit:
    """A change to `path` before each build, after which `executed` actions must run."""

    path: Path
    change: Callable[[str, str], str]  # (the text, a word new for each build) -> the new text
    executed: int


def appended_comment(comment: str) -> Callable[[str, str], str]:
    return lambda text, word: f"{text}{comment} edited by bench/noop.py at {word}\n"


def measure(
    root: Path, name: str, command: list[str], env: dict[str, str], runs: int, edit: Edit | None = None
) -> dict[str, Any]:
    """Each build after `edit`, if given."""

    def one_build() -> dict[str, Any]:
        if edit is not None:
            edit.path.write_text(edit.change(edit.path.read_text(encoding="utf-8"), str(time.time_ns())), "utf-8")
        return build(root, command, env)

    one_build()  # warm-up: page cache, and the caches' state after any earlier variant
    records = [one_build() for _ in range(runs)]
    wrong = [r for r in records if r["executed"] != (0 if edit is None else edit.executed)]
    if wrong:
        raise SystemExit(f"{name}: a build executed {wrong[0]['executed']} actions: {wrong[0]}")
    wall = [r["wall_s"] for r in records]
    result = {
        "command": " ".join([*command, "build", "//..."]),
        "wall_s": summary(wall),
        "reported_s": summary([r["reported_s"] for r in records]),
        "cpu_s": summary([r["cpu_s"] for r in records]),
        "peak_rss_mib": summary([r["peak_rss_mib"] for r in records]),
        "actions": records[0]["total"],
        "executed": [r["executed"] for r in records],
        "ratio_to_aim": statistics.median(wall) / AIM_SECONDS,
    }
    print(
        f"{name:<34}{result['wall_s']['median']:>8.3f}{result['wall_s']['min']:>8.3f}"
        f"{result['reported_s']['median']:>10.3f}{result['cpu_s']['median']:>8.3f}"
        f"{result['peak_rss_mib']['median']:>9.1f}{result['ratio_to_aim']:>8.2f}x"
    )
    return result


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def prepare(args: argparse.Namespace, scratch: Path) -> tuple[Path, dict[str, Any]]:
    root = (args.workspace or scratch / "workspace").resolve()
    wanted = {"packages": args.packages, "targets_per_package": args.targets_per_package, "seed": args.seed}
    manifest = read_manifest(root)
    if not (manifest and all(manifest.get(k) == v for k, v in wanted.items())):
        generate(root, args.packages, args.targets_per_package, args.seed)
        manifest = read_manifest(root)
        print(f"Generated {root}")
    assert manifest is not None
    return root, manifest


def initial_build(root: Path, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Build everything once (real rustc); a workspace built before only checks it is up to date."""
    started = time.perf_counter()
    print(f"Building {root} (-j{args.jobs}); the first time this compiles every crate ...", flush=True)
    record = build(root, pybuild_script(), child_environment(args, scratch, False, True), args.jobs)
    print(f"  {record['executed']} executed, {record['cached']} cached in {time.perf_counter() - started:.1f} s")
    return record


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pybuild's no-op rebuild.")
    parser.add_argument("--workspace", type=Path, help="generate (and build) into this directory, or reuse it")
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--targets-per-package", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="for the initial build")
    parser.add_argument("--runs", type=int, default=7, help="measured no-op builds per variant (at least 5)")
    parser.add_argument("--pybuild-path", type=Path, help="put this pybuild checkout first on PYTHONPATH")
    parser.add_argument("--skip-uncached", action="store_true", help="leave out the PYBUILD_LOAD_CACHE=0 variant")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "noop.json")
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-noop-") as scratch_dir:
        scratch = Path(scratch_dir)
        root, manifest = prepare(args, scratch)
        state_before = source_state()
        first = initial_build(root, args, scratch)
        module = [sys.executable, "-m", "pybuild"]
        variants = [
            ("pybuild (on PATH)", pybuild_script(), False, True),
            ("python -m pybuild", module, False, True),
            ("python -m pybuild + bytecode", module, True, True),
        ]
        if not args.skip_uncached:
            variants.append(("python -m pybuild, no load cache", module, False, False))
        print(
            f"\n{'no-op build of ' + str(first['total']) + ' actions':<34}{'median':>8}{'min':>8}"
            f"{'reported':>10}{'cpu':>8}{'RSS MiB':>9}{'/0.5s':>9}"
        )
        results = {
            name: measure(root, name, command, child_environment(args, scratch, bytecode, cache), args.runs)
            for name, command, bytecode, cache in variants
        }
        binary = max(root.glob("libs/*/*/bin/*.rs"))  # a binary's source: no crate depends on it
        build_file = binary.parent.parent / "BUILD.bazel"
        edits = {
            "binary edited": Edit(binary, appended_comment("//"), 1),
            "BUILD comment": Edit(build_file, appended_comment("#"), 0),
            "BUILD edited": Edit(build_file, lambda text, word: with_edited_env(text, "tool", word), 1),
        }
        environment = child_environment(args, scratch, False, True)
        for name, edit in edits.items():
            text = edit.path.read_text(encoding="utf-8")
            try:
                results[f"python -m pybuild, {name}"] = measure(
                    root, f"python -m pybuild, {name}", module, environment, args.runs, edit
                )
            finally:
                edit.path.write_text(text, encoding="utf-8")
        state_after = source_state()
        output = {
            "benchmark": "noop",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "aim_s": AIM_SECONDS,
            "workspace": manifest | {"path": str(root)},
            "initial_build": first,
            "variants": results,
            "environment": {
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "commit": state_before,
                "commit_after": state_after,
                "pybuild_path": str(args.pybuild_path) if args.pybuild_path else None,
                "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
            },
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
        print(f"\nAim: {AIM_SECONDS} s wall with 0 executed. Wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
