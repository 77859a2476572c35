"""Generate a synthetic Rust monorepo for pybuild benchmarks.

The workspace has `packages` packages under libs/gNN/pNNNNN, each with `targets_per_package` rule targets:

    lib        rust_library, srcs from glob(["src/**/*.rs"]) (every fourth package lists them explicitly),
               deps on a few targets in earlier packages (so the graph is a DAG with fan-in on "hub" packages)
    partK      rust_library with explicit srcs, deps on :lib and sometimes on an earlier package
    tool       rust_binary (when there are at least 3 targets), deps on the package's libraries
    lib_test   rust_test(crate = ":lib")

Generation is two steps so other emitters (a Cargo workspace, heavier codegen) can reuse the plan:
`plan_workspace()` decides every package and target as plain data, `write_workspace()` writes the Bazel files.

    python bench/gen_workspace.py /tmp/ws --packages 2000 --targets-per-package 5
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_NAME = "bench_workspace.json"
GROUP_SIZE = 100  # packages per libs/gNN directory
HUB_FRACTION = 0.02  # the first 2% of packages are depended on by many others
LOCAL_WINDOW = 200  # non-hub deps come from this many preceding packages
MAX_EXTERNAL_DEPS = 4
RULES_LOAD = 'load("@rules_rust//rust:defs.bzl", "rust_library", "rust_binary", "rust_test")'


@dataclass
class TargetSpec:
    kind: str  # rust_library, rust_binary or rust_test
    name: str
    crate_name: str = ""
    srcs: list[str] = field(default_factory=list)
    srcs_glob: str = ""  # when set, srcs come from glob([srcs_glob]) and `srcs` lists what it matches
    crate_root: str = ""
    deps: list[str] = field(default_factory=list)
    crate: str = ""  # rust_test only


@dataclass
class PackageSpec:
    index: int
    path: str  # "libs/g00/p00000"
    targets: list[TargetSpec] = field(default_factory=list)

    @property
    def crate_prefix(self) -> str:
        return f"pkg_{self.index:05d}"

    def label(self, target: str) -> str:
        return f"//{self.path}:{target}"


@dataclass
class WorkspacePlan:
    packages: list[PackageSpec]
    seed: int

    @property
    def rule_target_count(self) -> int:
        return sum(len(p.targets) for p in self.packages)


# Planning -----------------------------------------------------------------------------------------


def package_path(index: int) -> str:
    return f"libs/g{index // GROUP_SIZE:02d}/p{index:05d}"


def plan_workspace(packages: int, targets_per_package: int, seed: int = 0) -> WorkspacePlan:
    """Decide every package, target and dependency; deterministic for a given seed."""
    if packages < 1:
        raise ValueError("packages must be at least 1")
    if targets_per_package < 2:
        raise ValueError("targets_per_package must be at least 2 (a library and its test)")
    rng = random.Random(seed)
    specs: list[PackageSpec] = []
    for index in range(packages):
        spec = PackageSpec(index, package_path(index))
        spec.targets = _plan_targets(spec, specs, targets_per_package, rng)
        specs.append(spec)
    return WorkspacePlan(specs, seed)


def _plan_targets(spec: PackageSpec, earlier: list[PackageSpec], count: int, rng: random.Random) -> list[TargetSpec]:
    targets = [_plan_library(spec, _external_deps(earlier, rng))]
    middle = count - 2
    has_binary = middle >= 1
    for part in range(1, middle + (0 if has_binary else 1)):
        targets.append(_plan_part(spec, part, earlier, rng))
    if has_binary:
        targets.append(_plan_binary(spec, [f":{t.name}" for t in targets]))
    targets.append(TargetSpec("rust_test", "lib_test", crate=":lib"))
    return targets


def _external_deps(earlier: list[PackageSpec], rng: random.Random) -> list[str]:
    """Labels in earlier packages: half from the hub packages (fan-in), half from recent neighbours."""
    if not earlier:
        return []
    hubs = max(1, int(len(earlier) * HUB_FRACTION))
    chosen: dict[int, None] = {}
    for _ in range(rng.randint(1, MAX_EXTERNAL_DEPS)):
        if rng.random() < 0.5:
            chosen[rng.randrange(hubs)] = None
        else:
            chosen[rng.randrange(max(0, len(earlier) - LOCAL_WINDOW), len(earlier))] = None
    return [_library_of(earlier[i], rng) for i in sorted(chosen)]


def _library_of(package: PackageSpec, rng: random.Random) -> str:
    libraries = [t.name for t in package.targets if t.kind == "rust_library"]
    name = libraries[0] if len(libraries) == 1 or rng.random() < 0.8 else rng.choice(libraries[1:])
    return package.label(name)


def _plan_library(spec: PackageSpec, deps: list[str]) -> TargetSpec:
    srcs = ["src/inner/mod.rs", "src/lib.rs", "src/util.rs"]
    glob = "" if spec.index % 4 == 3 else "src/**/*.rs"
    return TargetSpec("rust_library", "lib", spec.crate_prefix, srcs, glob, "src/lib.rs", deps)


def _plan_part(spec: PackageSpec, part: int, earlier: list[PackageSpec], rng: random.Random) -> TargetSpec:
    deps = [":lib"]
    if earlier and rng.random() < 0.3:
        deps.append(_library_of(earlier[rng.randrange(len(earlier))], rng))
    name = f"part{part}"
    return TargetSpec("rust_library", name, f"{spec.crate_prefix}_{name}", [f"parts/{name}.rs"], deps=deps)


def _plan_binary(spec: PackageSpec, libraries: list[str]) -> TargetSpec:
    return TargetSpec("rust_binary", "tool", f"{spec.crate_prefix}_tool", ["bin/tool.rs"], deps=libraries)


# Writing ------------------------------------------------------------------------------------------


def module_bazel(name: str = "pybuild_bench") -> str:
    return f'module(name = "{name}", version = "0.1.0")\n\nbazel_dep(name = "rules_rust", version = "0.0.0")\n'


def build_file(spec: PackageSpec) -> str:
    header = f"{RULES_LOAD}\n\n# Generated by bench/gen_workspace.py: package {spec.index}.\n"
    return header + "".join("\n" + _rule_text(spec, t) for t in spec.targets)


def _rule_text(spec: PackageSpec, target: TargetSpec) -> str:
    lines = [f"{target.kind}(", f'    name = "{target.name}",']
    if target.kind == "rust_test":
        lines.append(f'    crate = "{target.crate}",')
    else:
        lines += _crate_attrs(spec, target)
    lines += ['    visibility = ["//visibility:public"],', ")", ""]
    return "\n".join(lines)


def _crate_attrs(spec: PackageSpec, target: TargetSpec) -> list[str]:
    srcs = f'glob(["{target.srcs_glob}"])' if target.srcs_glob else _string_list(target.srcs, indent=4)
    lines = [f'    crate_name = "{target.crate_name}",', f"    srcs = {srcs},"]
    if target.crate_root:
        lines.append(f'    crate_root = "{target.crate_root}",')
    lines.append('    edition = "2021",')
    if target.kind == "rust_library":
        lines.append('    crate_features = ["default", "std"],')
    lines.append(f'    rustc_env = {{"BENCH_PACKAGE": "{spec.index}", "BENCH_TARGET": "{target.name}"}},')
    if target.deps:
        lines.append(f"    deps = {_string_list(target.deps, indent=4)},")
    return lines


def with_edited_env(build_text: str, target: str, value: str) -> str:
    """A generated BUILD file's text with `target`'s rustc_env holding EDIT = `value` (replacing any earlier
    one): a change of that target alone, for the benchmarks that measure builds after an edit."""
    pattern = rf'"BENCH_TARGET": "{target}"(, "EDIT": "[^"]*")?'
    return re.sub(pattern, f'"BENCH_TARGET": "{target}", "EDIT": "{value}"', build_text)


def _string_list(items: list[str], indent: int = 0) -> str:
    if len(items) <= 1:
        return "[" + "".join(f'"{item}"' for item in items) + "]"
    pad = " " * (indent + 4)
    return "[\n" + "".join(f'{pad}"{item}",\n' for item in items) + " " * indent + "]"


def source_files(spec: PackageSpec) -> dict[str, str]:
    """Tiny Rust sources for every file the package's targets name (relative path -> text)."""
    files = {
        "src/lib.rs": f"pub mod inner;\npub mod util;\n\npub fn value() -> u64 {{\n    util::scale({spec.index})\n}}\n",
        "src/util.rs": "pub fn scale(x: u64) -> u64 {\n    x * 2 + 1\n}\n",
        "src/inner/mod.rs": 'pub const NAME: &str = env!("BENCH_TARGET");\n',
    }
    for target in spec.targets:
        if target.kind == "rust_library" and target.name != "lib":
            files[target.srcs[0]] = f"pub fn part() -> u64 {{\n    {spec.crate_prefix}::value()\n}}\n"
        elif target.kind == "rust_binary":
            files[target.srcs[0]] = f'fn main() {{\n    println!("{{}}", {spec.crate_prefix}::value());\n}}\n'
    return files


def write_workspace(root: Path, plan: WorkspacePlan) -> None:
    """Write MODULE.bazel, every package's BUILD.bazel and sources, and a manifest of the plan."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "MODULE.bazel").write_text(module_bazel(), encoding="utf-8")
    for spec in plan.packages:
        directory = root / spec.path
        for relative, text in {"BUILD.bazel": build_file(spec), **source_files(spec)}.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    (root / MANIFEST_NAME).write_text(json.dumps(manifest(plan), indent=2) + "\n", encoding="utf-8")


def manifest(plan: WorkspacePlan) -> dict[str, object]:
    return {
        "generator": "bench/gen_workspace.py",
        "packages": len(plan.packages),
        "targets_per_package": len(plan.packages[0].targets),
        "seed": plan.seed,
        "rule_targets": plan.rule_target_count,
        "dependency_edges": sum(len(t.deps) + bool(t.crate) for p in plan.packages for t in p.targets),
    }


def read_manifest(root: Path) -> dict[str, object] | None:
    path = root / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def generate(root: Path, packages: int = 2000, targets_per_package: int = 5, seed: int = 0) -> int:
    """Generate the workspace into `root` (replacing a previous libs/ tree); returns the rule target count."""
    plan = plan_workspace(packages, targets_per_package, seed)
    if (root / "libs").is_dir():
        if read_manifest(root) is None:
            raise FileExistsError(f"{root / 'libs'} exists and was not generated by this script; not replacing it")
        shutil.rmtree(root / "libs")
    write_workspace(root, plan)
    return plan.rule_target_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="directory to generate the workspace into")
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--targets-per-package", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    count = generate(args.root, args.packages, args.targets_per_package, args.seed)
    print(f"generated {count} rule targets in {args.packages} packages under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
