"""Generate synthetic Rust workspaces that pybuild AND Cargo build from the same sources.

Every workspace is one directory tree holding both views of the same crates:

    MODULE.bazel, .bazelignore             the pybuild (Bazel) workspace; build it with `pybuild build //...`
    Cargo.toml                             [workspace] with every crate as a member; `cargo build`
    crates/<name>/BUILD.bazel              rust_library loaded from @rules_rust//rust:defs.bzl
    crates/<name>/Cargo.toml               the same crate for Cargo, path dependencies, edition 2021
    crates/<name>/src/lib.rs               the code, which calls into every dependency
    app/BUILD.bazel, Cargo.toml, main.rs   a rust_binary on the top crates (linking needs every full rlib)
    synthetic.json                         what was generated (kind, crates, edges, weights)

Kinds:

    chain     N heavy crates, each depending on the previous one (pipelining shortens this the most)
    diamond   heavy crates in layers, every crate depending on every crate of the layer below
              (--layers 1,8,1: one root, eight middles, one top)
    many      N tiny crates in a random DAG (fan-in on a few hubs), for no-op and analysis timing

Heavy crates get their codegen from one private generic function with a large body (--statements
statements of checked arithmetic, branches and matches, plus a sort, a BTreeMap and a Debug format) that
is instantiated for --instances local types: type checking sees the body once, LLVM sees it
--instances times, so codegen dominates the front end. `time` compiles a generated workspace crate by
crate with plain rustc to check that (time to the .rmeta, to the rlib, CPU, and a -Zno-codegen run):

    python bench/gen_synthetic.py generate /tmp/syn/chain --kind chain --crates 8
    python bench/gen_synthetic.py generate /tmp/syn/diamond --kind diamond --layers 1,8,1
    python bench/gen_synthetic.py generate /tmp/syn/many --kind many --crates 1000
    python bench/gen_synthetic.py time /tmp/syn/chain
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_workspace import module_bazel  # the other benchmark generator's MODULE.bazel

MANIFEST_NAME = "synthetic.json"
RULES_LOAD = 'load("@rules_rust//rust:defs.bzl", "{kinds}")'
KINDS = ("chain", "diamond", "many")
DEFAULT_INSTANCES = 40
DEFAULT_STATEMENTS = 160
MANY_HUBS = 20  # the first crates of a `many` workspace are depended on by many others
MANY_WINDOW = 50  # other deps of a `many` crate come from this many preceding crates
MANY_MAX_DEPS = 3


@dataclass
class CrateSpec:
    name: str
    deps: list[str] = field(default_factory=list)
    heavy: bool = True

    @property
    def path(self) -> str:
        return f"crates/{self.name}"


@dataclass
class SyntheticPlan:
    kind: str
    crates: list[CrateSpec]
    app_deps: list[str]  # crates the binary calls
    instances: int = DEFAULT_INSTANCES
    statements: int = DEFAULT_STATEMENTS
    seed: int = 0
    codegen_units: int = 0  # 0: rustc's default (16 without incremental), which runs LLVM on several threads

    @property
    def app_name(self) -> str:
        return f"{self.kind}_app"


# Planning -----------------------------------------------------------------------------------------


def plan_chain(crates: int) -> SyntheticPlan:
    if crates < 1:
        raise ValueError("a chain needs at least one crate")
    specs = [CrateSpec(f"chain_{i:02d}", [f"chain_{i - 1:02d}"] if i else []) for i in range(crates)]
    return SyntheticPlan("chain", specs, [specs[-1].name])


def plan_diamond(layers: list[int]) -> SyntheticPlan:
    if not layers or min(layers) < 1:
        raise ValueError("--layers needs positive widths, e.g. 1,8,1")
    specs: list[CrateSpec] = []
    below: list[str] = []
    for depth, width in enumerate(layers):
        names = [f"diamond_l{depth}_{i}" for i in range(width)]
        specs += [CrateSpec(name, list(below)) for name in names]
        below = names
    return SyntheticPlan("diamond", specs, below)


def plan_many(crates: int, seed: int = 0) -> SyntheticPlan:
    if crates < 1:
        raise ValueError("many needs at least one crate")
    rng = random.Random(seed)
    specs: list[CrateSpec] = []
    for index in range(crates):
        chosen: set[int] = set()
        for _ in range(rng.randint(1, MANY_MAX_DEPS) if index else 0):
            if rng.random() < 0.4:
                chosen.add(rng.randrange(min(index, MANY_HUBS)))
            else:
                chosen.add(rng.randrange(max(0, index - MANY_WINDOW), index))
        specs.append(CrateSpec(f"many_{index:04d}", [specs[i].name for i in sorted(chosen)], heavy=False))
    depended_on = {dep for spec in specs for dep in spec.deps}
    tops = [spec.name for spec in specs if spec.name not in depended_on]
    return SyntheticPlan("many", specs, tops, seed=seed)


def make_plan(args: argparse.Namespace) -> SyntheticPlan:
    if args.kind == "chain":
        plan = plan_chain(args.crates or 8)
    elif args.kind == "diamond":
        plan = plan_diamond([int(width) for width in args.layers.split(",")])
    else:
        plan = plan_many(args.crates or 1000, args.seed)
    plan.instances, plan.statements, plan.codegen_units = args.instances, args.statements, args.codegen_units
    return plan


# Rust sources -------------------------------------------------------------------------------------

_STATEMENTS = (
    "x[{a}] = x[{b}].wrapping_mul({k}).rotate_left({r}) ^ x[{c}];",
    "x[{a}] = (x[{b}] % {k}) + (x[{c}] >> 3) + {i};",
    "if x[{a}] > x[{b}] {{ x[{c}] ^= T::make(x[{a}] / {k}).get(); }} else {{ x[{c}] = x[{c}].wrapping_add({i}); }}",
    "v.push(T::make(x[{a}] ^ {k}));",
    "x[{a}] = match x[{b}] % 4 {{ 0 => x[{c}] | 1, 1 => x[{c}] / 2 + {k}, "
    "2 => x[{c}].wrapping_sub({k}), _ => x[{c}] | {r} }};",
)

_HEAVY_PRELUDE = """use std::collections::BTreeMap;

/// What the generic kernel is instantiated with: one local type per instance, so no other crate
/// already has these monomorphizations and every one of them is code generated here.
pub trait Lane: Copy + Default + Ord + core::fmt::Debug {
    fn get(self) -> u64;
    fn make(v: u64) -> Self;
}
"""


def heavy_source(spec: CrateSpec, plan: SyntheticPlan) -> str:
    rng = random.Random(f"{plan.seed}:{spec.name}")
    lanes = "".join(_lane_type(t) for t in range(plan.instances))
    body = "\n".join("    " + _statement(rng, i) for i in range(plan.statements))
    kernel = (
        "#[inline(never)]\nfn kernel<T: Lane>(seed: u64) -> u64 {\n"
        "    let mut x = [seed; 8];\n    let mut v: Vec<T> = Vec::with_capacity(64);\n"
        f"{body}\n"
        "    v.sort();\n    let mut m: BTreeMap<T, usize> = BTreeMap::new();\n"
        "    for (i, t) in v.iter().enumerate() {\n        m.insert(*t, i);\n    }\n"
        '    let text = format!("{:?}", m.iter().next());\n'
        "    x.iter().fold(text.len() as u64 + m.len() as u64, |a, b| a.wrapping_add(*b))\n}\n"
    )
    calls = "".join(f"    acc = acc.rotate_left(3) ^ kernel::<T{t}>(acc);\n" for t in range(plan.instances))
    dep_calls = "".join(
        f"    acc ^= {dep}::run(seed.rotate_left({n + 1}));\n"
        f'    acc ^= format!("{{:?}}", {dep}::T0(acc)).len() as u64;\n'
        for n, dep in enumerate(spec.deps)
    )
    run = f"pub fn run(seed: u64) -> u64 {{\n    let mut acc = seed;\n{dep_calls}{calls}    acc\n}}\n"
    header = f"//! Generated by bench/gen_synthetic.py: {plan.kind} crate {spec.name} (heavy codegen).\n\n"
    return header + _HEAVY_PRELUDE + lanes + "\n" + kernel + "\n" + run + _describe(spec)


def _lane_type(t: int) -> str:
    return (
        "\n#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n"
        f"pub struct T{t}(pub u64);\n\nimpl Lane for T{t} {{\n"
        f"    fn get(self) -> u64 {{\n        self.0 ^ {t}\n    }}\n"
        f"    fn make(v: u64) -> Self {{\n        T{t}(v)\n    }}\n}}\n"
    )


def _statement(rng: random.Random, index: int) -> str:
    template = _STATEMENTS[rng.randrange(len(_STATEMENTS))]
    values = {"a": rng.randrange(8), "b": rng.randrange(8), "c": rng.randrange(8), "i": index}
    return template.format(k=rng.randrange(2, 1 << 20), r=rng.randrange(1, 63), **values)


def _describe(spec: CrateSpec) -> str:
    deps = ", ".join(spec.deps)
    return f'\npub fn describe() -> String {{\n    String::from("{spec.name} <- [{deps}]")\n}}\n'


def tiny_source(spec: CrateSpec, index: int) -> str:
    calls = "".join(f"\n        + {dep}::value(depth - 1) % {7 + n}" for n, dep in enumerate(spec.deps))
    return (
        f"//! Generated by bench/gen_synthetic.py: tiny crate {spec.name}.\n\n"
        f"pub fn value(depth: u32) -> u64 {{\n    if depth == 0 {{\n        return {index};\n    }}\n"
        f"    {index}u64{calls}\n}}\n" + _describe(spec)
    )


def app_source(plan: SyntheticPlan) -> str:
    call = "run(1)" if plan.kind != "many" else "value(3)"
    lines = "".join(f'    println!("{dep}: {{}}", {dep}::{call});\n' for dep in plan.app_deps)
    return f"//! Generated by bench/gen_synthetic.py: the {plan.kind} workspace's binary.\n\nfn main() {{\n{lines}}}\n"


# BUILD files and Cargo manifests ------------------------------------------------------------------


def _label_list(labels: list[str]) -> str:
    if len(labels) <= 1:
        return "[" + "".join(f'"{label}"' for label in labels) + "]"
    return "[\n" + "".join(f'        "{label}",\n' for label in labels) + "    ]"


def _rustc_flags(plan: SyntheticPlan) -> str:
    return f'    rustc_flags = ["-Ccodegen-units={plan.codegen_units}"],\n' if plan.codegen_units else ""


def library_build(spec: CrateSpec, plan: SyntheticPlan) -> str:
    deps = [f"//crates/{dep}" for dep in spec.deps]
    return (
        RULES_LOAD.format(kinds="rust_library") + "\n\nrust_library(\n"
        f'    name = "{spec.name}",\n    srcs = glob(["src/**/*.rs"]),\n    crate_root = "src/lib.rs",\n'
        f'    edition = "2021",\n    version = "0.1.0",\n{_rustc_flags(plan)}'
        f'    visibility = ["//visibility:public"],\n    deps = {_label_list(deps)},\n)\n'
    )


def app_build(plan: SyntheticPlan) -> str:
    deps = [f"//crates/{dep}" for dep in plan.app_deps]
    return (
        RULES_LOAD.format(kinds="rust_binary") + "\n\nrust_binary(\n"
        f'    name = "{plan.app_name}",\n    srcs = ["src/main.rs"],\n    edition = "2021",\n{_rustc_flags(plan)}'
        f"    deps = {_label_list(deps)},\n)\n"
    )


def crate_manifest(name: str, deps: list[str], target: str) -> str:
    """A member's Cargo.toml; libraries live in crates/<name>, the binary in app/."""
    dep_dir = ".." if target == "lib" else "../crates"
    lines = "".join(f'{dep} = {{ path = "{dep_dir}/{dep}" }}\n' for dep in deps)
    section = '[lib]\npath = "src/lib.rs"\n' if target == "lib" else f'[[bin]]\nname = "{name}"\npath = "src/main.rs"\n'
    package = f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n'
    return f"{package}\n{section}\n[dependencies]\n{lines}"


def workspace_manifest(plan: SyntheticPlan) -> str:
    members = "".join(f'    "{spec.path}",\n' for spec in plan.crates) + '    "app",\n'
    header = f"# Generated by bench/gen_synthetic.py ({plan.kind}).\n"
    profile = f"\n[profile.dev]\ncodegen-units = {plan.codegen_units}\n" if plan.codegen_units else ""
    return f'{header}[workspace]\nmembers = [\n{members}]\nresolver = "2"\n{profile}'


def workspace_files(plan: SyntheticPlan) -> dict[str, str]:
    """Every file of the workspace, relative path -> text."""
    files = {
        "MODULE.bazel": module_bazel(f"synthetic_{plan.kind}"),
        ".bazelignore": "target\n",
        "Cargo.toml": workspace_manifest(plan),
        "app/BUILD.bazel": app_build(plan),
        "app/Cargo.toml": crate_manifest(plan.app_name, plan.app_deps, "bin"),
        "app/src/main.rs": app_source(plan),
    }
    for index, spec in enumerate(plan.crates):
        files[f"{spec.path}/BUILD.bazel"] = library_build(spec, plan)
        files[f"{spec.path}/Cargo.toml"] = crate_manifest(spec.name, spec.deps, "lib")
        source = heavy_source(spec, plan) if spec.heavy else tiny_source(spec, index)
        files[f"{spec.path}/src/lib.rs"] = source
    return files


def manifest(plan: SyntheticPlan) -> dict[str, object]:
    data = asdict(plan)
    data["generator"] = "bench/gen_synthetic.py"
    data["edges"] = sum(len(spec.deps) for spec in plan.crates) + len(plan.app_deps)
    data["pattern"] = "//..."
    return data


def write_workspace(root: Path, plan: SyntheticPlan) -> None:
    """Write both views into `root`; a previous generated tree there is replaced, anything else refused."""
    if root.exists() and any(root.iterdir()):
        if not (root / MANIFEST_NAME).is_file():
            raise FileExistsError(f"{root} is not empty and was not generated by this script; not replacing it")
        for name in ("crates", "app"):
            shutil.rmtree(root / name, ignore_errors=True)
    for relative, text in workspace_files(plan).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / MANIFEST_NAME).write_text(json.dumps(manifest(plan), indent=1) + "\n", encoding="utf-8")


def read_plan(root: Path) -> SyntheticPlan:
    data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    crates = [CrateSpec(**spec) for spec in data["crates"]]
    fields = ("kind", "app_deps", "instances", "statements", "seed", "codegen_units")
    return SyntheticPlan(crates=crates, **{name: data[name] for name in fields if name in data})


# Timing crates with plain rustc -------------------------------------------------------------------


@dataclass
class CrateTiming:
    name: str
    rmeta_s: float  # until rustc announced the .rmeta (what rmeta pipelining waits for)
    full_s: float  # the whole rlib
    cpu_s: float  # user + system CPU of the full compile (above full_s: LLVM ran on several threads)
    hollow_s: float  # rustc -Zno-codegen (what the hollow-rlib mode waits for)

    @property
    def codegen_s(self) -> float:
        return self.full_s - self.rmeta_s


def rustc_path() -> str:
    return os.environ.get("RUSTC") or shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")


def _rustc_argv(plan: SyntheticPlan, root: Path, spec: CrateSpec, deps: Path, out: Path, extra: list[str]) -> list[str]:
    argv = [rustc_path(), str(root / spec.path / "src/lib.rs"), f"--crate-name={spec.name}", "--crate-type=rlib"]
    argv += ["--edition=2021", "-Copt-level=0", "-Cdebuginfo=0", f"--out-dir={out}", f"-Ldependency={deps}"]
    argv += [f"-Ccodegen-units={plan.codegen_units}"] if plan.codegen_units else []
    argv += [f"--extern={dep}={deps}/lib{dep}.rlib" for dep in spec.deps]
    return argv + extra


def _timed_rustc(argv: list[str], timeout: float) -> tuple[float, float, float]:
    """(seconds to the .rmeta notice, seconds to exit, CPU seconds) of one rustc run."""
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    start = time.monotonic()
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    rmeta = None
    assert process.stderr is not None
    for line in process.stderr:
        if '"emit":"metadata"' in line and rmeta is None:
            rmeta = time.monotonic() - start
        elif '"artifact"' not in line:
            sys.stderr.write(line)
        if time.monotonic() - start > timeout:
            process.kill()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"rustc failed: {' '.join(argv)}")
    elapsed = time.monotonic() - start
    return rmeta if rmeta is not None else elapsed, elapsed, usage.ru_utime + usage.ru_stime


def time_crates(root: Path, timeout: float = 300.0) -> list[CrateTiming]:
    """Compile every library of a generated workspace in dependency order, as pybuild's fastbuild does."""
    plan = read_plan(root)
    timings = []
    with tempfile.TemporaryDirectory(prefix="gen-synthetic-time-") as temp:
        out, hollow_out = Path(temp, "full"), Path(temp, "hollow")
        out.mkdir()
        hollow_out.mkdir()
        for spec in plan.crates:
            json_flags = ["--emit=metadata,link", "--error-format=json", "--json=artifacts"]
            rmeta, full, cpu = _timed_rustc(_rustc_argv(plan, root, spec, out, out, json_flags), timeout)
            _, hollow, _ = _timed_rustc(_rustc_argv(plan, root, spec, out, hollow_out, ["-Zno-codegen"]), timeout)
            timings.append(CrateTiming(spec.name, rmeta, full, cpu, hollow))
    return timings


def print_timings(timings: list[CrateTiming]) -> None:
    print(f"{'crate':<22} {'rmeta s':>8} {'hollow s':>9} {'full s':>7} {'codegen s':>10} {'cpu s':>6} {'cpu/wall':>8}")
    for t in timings:
        print(
            f"{t.name:<22} {t.rmeta_s:8.2f} {t.hollow_s:9.2f} {t.full_s:7.2f} {t.codegen_s:10.2f} "
            f"{t.cpu_s:6.2f} {t.cpu_s / t.full_s:8.2f}"
        )
    count = max(1, len(timings))
    front = sum(t.rmeta_s for t in timings) / count
    codegen = sum(t.codegen_s for t in timings) / count
    print(f"mean: front end (to .rmeta) {front:.2f}s, codegen {codegen:.2f}s, codegen/front {codegen / front:.1f}x")


# Command line -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write a workspace (BUILD files and Cargo manifests)")
    generate.add_argument("root", type=Path)
    generate.add_argument("--kind", choices=KINDS, required=True)
    generate.add_argument("--crates", type=int, default=0, help="chain: 8, many: 1000 (default)")
    generate.add_argument("--layers", default="1,8,1", help="diamond: crates per layer, bottom first")
    generate.add_argument("--instances", type=int, default=DEFAULT_INSTANCES, help="heavy: kernel instantiations")
    generate.add_argument("--statements", type=int, default=DEFAULT_STATEMENTS, help="heavy: kernel body size")
    generate.add_argument("--codegen-units", type=int, default=0, help="heavy: -Ccodegen-units (0: rustc's default)")
    generate.add_argument("--seed", type=int, default=0)
    timing = commands.add_parser("time", help="compile a generated workspace's crates one by one with rustc")
    timing.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    if args.command == "time":
        print_timings(time_crates(args.root))
        return 0
    plan = make_plan(args)
    write_workspace(args.root, plan)
    print(f"generated {plan.kind} workspace with {len(plan.crates)} crates and a binary in {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
