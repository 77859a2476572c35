"""Small Rust workspaces and helpers for the execution tests (tests/test_execution.py).

Every workspace is a {relative path: text} dict for `workspace_helpers.write_workspace`. The helpers run
the real `python -m pybuild` in a subprocess, so every build runs the real rustc.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workspace_helpers import RULES_RUST_LOAD, run_pybuild

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"

HOLLOW = "--incompatible_use_unstable_no_codegen_for_pipelining"
# The three pipelining modes, as the flags that select them.
MODES = {
    "none": ("--pipelined_compilation=false",),
    "rmeta": (),
    "hollow": (HOLLOW,),
}

MODULE = 'module(name = "exec_test", version = "0.1.0")\n\nbazel_dep(name = "rules_rust", version = "0.0.0")\n'
PUBLIC = 'package(default_visibility = ["//visibility:public"])\n\n'

_BUILD_OK = re.compile(r"^Build OK: (\d+) executed, (\d+) cached, (\d+) total actions in ([0-9.]+)s$")


# Running pybuild --------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def last_err_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""

    def describe(self) -> str:
        return f"exit {self.code}\n--- stdout:\n{self.out}\n--- stderr:\n{self.err}"


@dataclass(frozen=True)
class BuildStats:
    executed: int
    cached: int
    total: int
    seconds: float


def pybuild(cwd: Path, *args: str, timeout: float = 120) -> Result:
    """`python -m pybuild ARGS` in its own process, with `cwd` as working directory."""
    return Result(*run_pybuild(cwd, *args, timeout=timeout))


def build_stats(result: Result) -> BuildStats:
    """Numbers of the closing `Build OK: <E> executed, <C> cached, <T> total actions in <S>s` line."""
    matched = _BUILD_OK.match(result.last_err_line)
    assert matched, f"last stderr line is not 'Build OK: ...':\n{result.describe()}"
    executed, cached, total, seconds = matched.groups()
    return BuildStats(int(executed), int(cached), int(total), float(seconds))


def ok(result: Result) -> Result:
    assert result.code == 0, result.describe()
    assert "Traceback (most recent call last)" not in result.err, result.describe()
    return result


def failed(result: Result, code: int = 1) -> Result:
    assert result.code == code, f"expected exit {code}\n{result.describe()}"
    assert "Traceback (most recent call last)" not in result.err, result.describe()
    assert "internal error" not in result.err, result.describe()
    return result


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of --execution_log_json_file."""
    records = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(records, list)
    return records


def executed_owners(records: list[dict[str, Any]]) -> set[str]:
    return {r["owner"] for r in records if not r["cached"]}


def find_record(records: list[dict[str, Any]], owner: str, mnemonic: str) -> dict[str, Any]:
    matches = [r for r in records if r["owner"] == owner and r["mnemonic"] == mnemonic]
    assert len(matches) == 1, f"{len(matches)} {mnemonic} records for {owner}: {records}"
    return matches[0]


# The example monorepo ---------------------------------------------------------------------------------


# The packages of the example monorepo these tests are about. examples/ also holds crates_demo, which
# builds third-party crates (from Debian's registry) through the crate extension: a much heavier build,
# left to its own tests so that this file stays within its time budget.
EXAMPLE_PACKAGES = ("app", "diamond", "lib", "macros", "tests")


def copy_examples(destination: Path) -> Path:
    """A copy of the core of examples/, without outputs, so tests never build inside the repository.

    MODULE.bazel keeps only its `module(...)` and `bazel_dep(...)` lines: the crate extension it may
    also declare serves crates_demo, which is not copied.
    """
    destination.mkdir(parents=True)
    for package in EXAMPLE_PACKAGES:
        shutil.copytree(
            EXAMPLES / package,
            destination / package,
            symlinks=True,
            ignore=shutil.ignore_patterns("pybuild-*", "target"),
        )
    module_lines = (EXAMPLES / "MODULE.bazel").read_text(encoding="utf-8").splitlines()
    kept = [line for line in module_lines if line.startswith(("module(", "bazel_dep("))]
    (destination / "MODULE.bazel").write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return destination


_BANNER = ["+-----------------+", "| pybuild example |", "+-----------------+"]
_SHAPES = [
    "diamond: top(base/left, base/right) = 5",
    "shape Point: Point { x: 1, y: 2 }",
    "shape Rect: Rect { origin: Point { x: 0, y: 0 }, width: 3, height: 4 }",
    'shape Label: Label("hello", 7)',
    "shape Origin: Origin",
    "rect area: 12",
]


def expected_app_output(count: int = 3, name: str = "world", rest: tuple[str, ...] = ()) -> str:
    """What examples/app prints (see examples/README.md)."""
    fib = [0, 1]
    while len(fib) <= count:
        fib.append(fib[-1] + fib[-2])
    lines = [
        *_BANNER,
        f"Howdy, {name}!",
        "chain: chain_a -> chain_b -> chain_c",
        "style: fancy",
        *(f"*** fib({n}) = {fib[n]} ***" for n in range(1, count + 1)),
        *_SHAPES,
        f"args: {len(rest)}",
        *(f"  [{index}] {arg}" for index, arg in enumerate(rest)),
    ]
    return "\n".join(lines) + "\n"


EXAMPLE_TESTS = (
    "//diamond:top_test",
    "//lib/chain_a:chain_a_test",
    "//lib/chain_b:chain_b_test",
    "//lib/shapes:shapes_test",
    "//tests:integration_test",
)

# Rule targets that depend on //lib/chain_a, itself included (`rdeps(//..., //lib/chain_a)`).
CHAIN_A_RDEPS = {
    "//lib/chain_a:chain_a",
    "//lib/chain_a:chain_a_test",
    "//lib/chain_b:chain_b",
    "//lib/chain_b:chain_b_test",
    "//lib/chain_c:chain-c",
    "//app:app",
    "//tests:integration_test",
}


# Small workspaces -------------------------------------------------------------------------------------


def _library(name: str, deps: tuple[str, ...] = (), extra: str = "", src: str = "lib.rs") -> str:
    dep_list = ", ".join(f'"{d}"' for d in deps)
    return (
        RULES_RUST_LOAD
        + PUBLIC
        + f'rust_library(name = "{name}", srcs = ["{src}"], edition = "2021", deps = [{dep_list}]{extra})\n'
    )


def _binary(name: str, deps: tuple[str, ...]) -> str:
    dep_list = ", ".join(f'"{d}"' for d in deps)
    return (
        RULES_RUST_LOAD + f'rust_binary(name = "{name}", srcs = ["main.rs"], edition = "2021", deps = [{dep_list}])\n'
    )


# a <- b <- c, and the binary //app over c. `helper` is private, non-generic and not inline, so its
# body is not part of a's exported MIR; editing HELPER_VALUE keeps the line count and the public API.
PRIVATE_FN_SOURCE = """\
/// Public entry point: the private helper plus one.
pub fn value() -> u32 {
    helper() + 1
}

fn helper() -> u32 {
    HELPER_VALUE
}
"""


def private_fn_chain(helper_value: int = 41) -> dict[str, str]:
    return {
        "MODULE.bazel": MODULE,
        "a/BUILD.bazel": _library("a"),
        "a/lib.rs": private_fn_source(helper_value),
        "b/BUILD.bazel": _library("b", ("//a",)),
        "b/lib.rs": "pub fn doubled() -> u32 {\n    a::value() * 2\n}\n",
        "c/BUILD.bazel": _library("c", ("//b",)),
        "c/lib.rs": "pub fn quad() -> u32 {\n    b::doubled() * 2\n}\n",
        "app/BUILD.bazel": _binary("app", ("//c",)),
        "app/main.rs": 'fn main() {\n    println!("quad: {}", c::quad());\n}\n',
    }


def private_fn_source(helper_value: int) -> str:
    return PRIVATE_FN_SOURCE.replace("HELPER_VALUE", str(helper_value))


def svh_workspace(a_opts_in: bool) -> dict[str, str]:
    """lib a, lib b compiled against a's metadata, binary app linking both.

    The binary needs b: a binary links full rlibs, so only a library between them reads a's hollow
    rlib and records the crate hash (SVH) the hollow compilation of a produced.
    """
    extra = ', rustc_env = {"RUSTC_BOOTSTRAP": "1"}' if a_opts_in else ""
    return {
        "MODULE.bazel": MODULE,
        "a/BUILD.bazel": _library("a", extra=extra),
        "a/lib.rs": "pub fn value() -> u32 {\n    42\n}\n",
        "b/BUILD.bazel": _library("b", ("//a",)),
        "b/lib.rs": "pub fn doubled() -> u32 {\n    a::value() * 2\n}\n",
        "app/BUILD.bazel": _binary("app", ("//a", "//b")),
        "app/main.rs": 'fn main() {\n    println!("value: {} doubled: {}", a::value(), b::doubled());\n}\n',
    }


def feature_workspace(opt_in: bool) -> dict[str, str]:
    """A library using `#![feature(never_type)]`, a library over it (so its metadata is used) and a binary."""
    extra = ', rustc_env = {"RUSTC_BOOTSTRAP": "1"}' if opt_in else ""
    return {
        "MODULE.bazel": MODULE,
        "feat/BUILD.bazel": _library("feat", extra=extra),
        "feat/lib.rs": "#![feature(never_type)]\n\npub fn never() -> Result<u32, !> {\n    Ok(7)\n}\n",
        "user/BUILD.bazel": _library("user", ("//feat",)),
        "user/lib.rs": "pub fn seven() -> u32 {\n    match feat::never() {\n        Ok(v) => v,\n    }\n}\n",
        "app/BUILD.bazel": _binary("app", ("//user",)),
        "app/main.rs": 'fn main() {\n    println!("never: {}", user::seven());\n}\n',
    }


SECRET_TEXT = "open sesame"


def include_str_workspace(compile_data: bool) -> dict[str, str]:
    """`include_str!("../data/secret.txt")`: the file exists; it is declared only if `compile_data`."""
    extra = ', compile_data = ["data/secret.txt"]' if compile_data else ""
    return {
        "MODULE.bazel": MODULE,
        "sec/BUILD.bazel": _library("sec", extra=extra, src="src/lib.rs"),
        "sec/src/lib.rs": 'pub const SECRET: &str = include_str!("../data/secret.txt");\n',
        "sec/data/secret.txt": SECRET_TEXT,
        "app/BUILD.bazel": _binary("app", ("//sec",)),
        "app/main.rs": 'fn main() {\n    println!("secret: {}", sec::SECRET);\n}\n',
    }


def heavy_codegen_source(instantiations: int) -> str:
    """A crate whose codegen is much heavier than its analysis: one generic function, monomorphized
    for `instantiations` array lengths, each instance pulling in BTreeMap, Vec and formatting code."""
    calls = "\n".join(f"    total += churn::<{n}>({n});" for n in range(1, instantiations + 1))
    return f"""\
use std::collections::BTreeMap;

#[inline(never)]
fn churn<const N: usize>(seed: u64) -> usize {{
    let mut arr = [0u64; N];
    let mut map: BTreeMap<u64, [u64; N]> = BTreeMap::new();
    for (i, slot) in arr.iter_mut().enumerate() {{
        *slot = seed.wrapping_mul(i as u64 + 1);
    }}
    map.insert(seed, arr);
    let v: Vec<String> = map.values().map(|a| format!("{{:?}}", a.iter().rev().take(3).collect::<Vec<_>>())).collect();
    v.iter().map(|s| s.len()).sum::<usize>() + arr.len()
}}

pub fn heavy() -> usize {{
    let mut total = 0;
{calls}
    total
}}
"""


def heavy_chain(instantiations: int = 30) -> dict[str, str]:
    """a (heavy codegen) <- b <- c: c is a library so that b's metadata action is needed."""
    return {
        "MODULE.bazel": MODULE,
        "a/BUILD.bazel": _library("a"),
        "a/lib.rs": heavy_codegen_source(instantiations),
        "b/BUILD.bazel": _library("b", ("//a",)),
        "b/lib.rs": "pub fn b() -> usize {\n    a::heavy() + 1\n}\n",
        "c/BUILD.bazel": _library("c", ("//b",)),
        "c/lib.rs": "pub fn c() -> usize {\n    b::b() + 1\n}\n",
    }


def light_and_heavy_workspace() -> dict[str, str]:
    """Two independent libraries: a, light, first by name, and z, heavy codegen."""
    return {
        "MODULE.bazel": MODULE,
        "a/BUILD.bazel": _library("a"),
        "a/lib.rs": "pub fn a() -> u32 {\n    1\n}\n",
        "z/BUILD.bazel": _library("z"),
        "z/lib.rs": heavy_codegen_source(30),
    }


def wide_workspace() -> dict[str, str]:
    """a and b, independent, under the library c, under the binary //app: on 2 slots with no measured costs
    pybuild plans to cut a's and b's hollow rlibs from their full rlibs (see hollow_cuts.py)."""
    return {
        "MODULE.bazel": MODULE,
        "a/BUILD.bazel": _library("a"),
        "a/lib.rs": "pub fn a() -> u32 {\n    20\n}\n",
        "b/BUILD.bazel": _library("b"),
        "b/lib.rs": "pub fn b() -> u32 {\n    22\n}\n",
        "c/BUILD.bazel": _library("c", ("//a", "//b")),
        "c/lib.rs": "pub fn c() -> u32 {\n    a::a() + b::b()\n}\n",
        "app/BUILD.bazel": _binary("app", ("//c",)),
        "app/main.rs": 'fn main() {\n    println!("c = {}", c::c());\n}\n',
    }


def keep_going_workspace() -> dict[str, str]:
    """Independent good libraries, and a broken library that another library depends on.

    The broken library lies on the longest path, so a one-slot scheduler starts it first.
    """
    files = {
        "MODULE.bazel": MODULE,
        "bad/BUILD.bazel": _library("bad"),
        "bad/lib.rs": 'pub fn broken() -> u32 {\n    "not a number"\n}\n',
        "bad_user/BUILD.bazel": _library("bad_user", ("//bad",)),
        "bad_user/lib.rs": "pub fn user() -> u32 {\n    bad::broken()\n}\n",
    }
    for index in range(1, 4):
        files[f"good{index}/BUILD.bazel"] = _library(f"good{index}")
        files[f"good{index}/lib.rs"] = f"pub fn good() -> u32 {{\n    {index}\n}}\n"
    return files


GEN_RULE = """\
def _impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + "_tool.sh")
    ctx.actions.write(script, ctx.attr.script, is_executable = True)
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run(
        outputs = [out],
        executable = script,
        arguments = [out.path],
        mnemonic = "GenText",
        progress_message = "Generating %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]))]

gen_text = rule(implementation = _impl, attrs = {"script": attr.string()})
"""


def custom_rule_workspace() -> dict[str, str]:
    """//gen:lazy declares an output its tool never writes; //gen:diligent writes it."""
    return {
        "MODULE.bazel": MODULE,
        "gen/defs.bzl": GEN_RULE,
        "gen/BUILD.bazel": (
            'load(":defs.bzl", "gen_text")\n\n'
            'gen_text(name = "lazy", script = "#!/bin/sh\\necho wrote nothing\\nexit 0\\n")\n\n'
            'gen_text(name = "diligent", script = "#!/bin/sh\\necho generated > \\"$1\\"\\n")\n'
        ),
    }
