"""How fast loading and analysis could be at best with a Starlark rule layer on starlark-pyo3: the floor.

bench/loading.py measures pybuild; this script measures the least work any loading and analysis on this
interpreter must do for the same generated workspace (bench/gen_workspace.py's plan, kept in memory):

    loading   every BUILD file parsed and evaluated; each rule call hands its attributes to Python as one
              JSON text (globbing, labels, visibility and packages left out)
    analysis  per target, a rustc command line built in Starlark (crate flags, one --extern per direct
              dependency) and its actions (two for a library: metadata and full) handed to Python as JSON
              (no providers, depsets, toolchains, ctx, files or action graph)

It prints the median of --runs runs of each, and what their sum allows on every core of the machine with
no overhead at all: the most targets per second that loading + analysis could reach in this architecture.

    python bench/starlark_floor.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import starlark as sl
from gen_workspace import build_file, plan_workspace

AIM_TARGETS_PER_SECOND = 20_000

RULES_BZL = """
def _rule(kind):
    def instantiate(name, **kwargs):
        record(json.encode(dict(kwargs, kind = kind, name = name)))
    return instantiate

rust_library = _rule("rust_library")
rust_binary = _rule("rust_binary")
rust_test = _rule("rust_test")
"""

ANALYSIS_BZL = """
def _crate_actions(target):
    name = target["crate_name"]
    out_dir = "pybuild-out/fastbuild/bin/" + target["package"]
    args = [
        target["root"], "--crate-name=" + name, "--crate-type=" + target["crate_type"], "--edition=2021",
        "--codegen=opt-level=0", "--codegen=debuginfo=0", "--codegen=embed-bitcode=no",
        "--codegen=metadata=" + target["hash"], "--codegen=extra-filename=-" + target["hash"],
        "--remap-path-prefix=${pwd}=.",
    ]
    for feature in target["features"]:
        args.extend(["--cfg", 'feature="%s"' % feature])
    args.extend(["--extern=%s=%s" % (dep, "pybuild-out/fastbuild/bin/lib%s.rlib" % dep) for dep in target["deps"]])
    env = dict(target["rustc_env"], CARGO_CRATE_NAME = name, CARGO_PKG_NAME = name, PATH = "/usr/bin")
    emits = ["link=%s/_meta/lib%s_meta.rlib" % (out_dir, name)] if target["crate_type"] == "rlib" else []
    for emit in emits + ["link=%s/lib%s.rlib" % (out_dir, name)]:
        output = emit[len("link="):]
        register(json.encode({
            "mnemonic": "Rustc", "argv": ["process_wrapper", "--", "rustc", "--emit=" + emit] + args,
            "inputs": target["srcs"], "outputs": [output], "env": env,
        }))

def analyze(targets_json):
    for target in json.decode(targets_json):
        _crate_actions(target)
"""


def _globals() -> sl.Globals:
    return sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Json])


def _module(source: str, name: str, callables: dict[str, Callable[..., Any]]) -> sl.FrozenModule:
    module = sl.Module()
    for callable_name, function in callables.items():
        module.add_callable(callable_name, function)
    sl.eval(module, sl.parse(name, source, sl.Dialect.extended()), _globals())
    return module.freeze()


def load_once(build_texts: list[str]) -> float:
    records: list[Any] = []
    rules = _module(RULES_BZL, "defs.bzl", {"record": lambda text: records.append(json.loads(text))})
    loader = sl.FileLoader(lambda _name: rules)
    started = time.perf_counter()
    for index, text in enumerate(build_texts):
        module = sl.Module()
        module.add_callable("glob", lambda include, exclude=None: [])
        sl.eval(module, sl.parse(f"p{index}/BUILD.bazel", text, sl.Dialect.extended()), _globals(), loader)
    return time.perf_counter() - started


def analyze_once(targets_json: str) -> float:
    actions: list[Any] = []
    analysis = _module(ANALYSIS_BZL, "analysis.bzl", {"register": lambda text: actions.append(json.loads(text))})
    started = time.perf_counter()
    analysis.call("analyze", targets_json)
    return time.perf_counter() - started


def analysis_input(packages: int, targets_per_package: int, seed: int) -> tuple[list[str], str, int]:
    """The BUILD texts, every target as the plain data analysis would start from, and the target count."""
    plan = plan_workspace(packages, targets_per_package, seed)
    targets = []
    for spec in plan.packages:
        for target in spec.targets:
            number = len(targets)
            crate = target.crate_name or f"{spec.crate_prefix}_{target.name}"
            targets.append(
                {
                    "crate_name": crate,
                    "package": spec.path,
                    "crate_type": "rlib" if target.kind == "rust_library" else "bin",
                    "root": f"{spec.path}/{target.crate_root or (target.srcs or ['src/lib.rs'])[0]}",
                    "hash": f"{number:08x}",
                    "features": ["default", "std"],
                    "deps": [d.rsplit(":", 1)[-1] for d in target.deps],
                    "rustc_env": {"BENCH_PACKAGE": str(spec.index), "BENCH_TARGET": target.name},
                    "srcs": [f"{spec.path}/{s}" for s in target.srcs] or [f"{spec.path}/src/lib.rs"],
                }
            )
    return [build_file(spec) for spec in plan.packages], json.dumps(targets), plan.rule_target_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--targets-per-package", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    build_texts, targets_json, count = analysis_input(args.packages, args.targets_per_package, args.seed)
    loading = statistics.median(load_once(build_texts) for _ in range(args.runs))
    analysis = statistics.median(analyze_once(targets_json) for _ in range(args.runs))
    cores = os.cpu_count() or 1
    ceiling = count / ((loading + analysis) / cores)
    print(f"{count} targets in {len(build_texts)} BUILD files, medians of {args.runs} runs on one core:")
    print(f"  loading floor   {loading:.3f} s")
    print(f"  analysis floor  {analysis:.3f} s")
    print(f"  both            {loading + analysis:.3f} s = {count / (loading + analysis):,.0f} targets/s on one core")
    print(f"  on all {cores} cores with no overhead at all: {ceiling:,.0f} targets/s (aim: {AIM_TARGETS_PER_SECOND:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
