"""The bad-input battery: every mistake a user can make gets one clear paragraph naming the file and
line, target, attribute or flag at fault, a non-zero exit, and never a Python traceback."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from workspace_helpers import RULES_RUST_LOAD, TRACEBACK, run_pybuild, write_workspace

LIB = 'rust_library(name = "lib", srcs = ["lib.rs"], visibility = ["//visibility:public"])\n'
CUSTOM_RULE = """
def _impl(ctx):
    return []

strict = rule(implementation = _impl, attrs = {
    "count": attr.int(),
    "needed": attr.string(mandatory = True),
    "mode": attr.string(values = ["fast", "slow"]),
})
"""
# A rule whose action misbehaves: writes a script and runs it as the action.
SCRIPT_RULE = """
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, ctx.attr.script, is_executable = True)
    ctx.actions.run(executable = script, outputs = [out], mnemonic = "Script")
    return [DefaultInfo(files = depset([out]))]

scripted = rule(implementation = _impl, attrs = {"script": attr.string()})
"""


@dataclass
class Case:
    files: dict[str, str]
    argv: list[str]
    expected: list[str]  # every fragment must appear in stderr
    exit_code: int | None = None  # None: any non-zero code
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."


def _lib(extra: str = "") -> dict[str, str]:
    return {"lib/BUILD.bazel": RULES_RUST_LOAD + LIB + extra, "lib/lib.rs": "pub fn f() -> u32 { 1 }\n"}


CASES = {
    "starlark_syntax_error": Case(
        {"pkg/BUILD.bazel": 'x = [\n  "a",\n  )\n'}, ["query", "//pkg:all"], ["pkg/BUILD.bazel:3:"]
    ),
    "runtime_error_in_build": Case(
        {"pkg/BUILD.bazel": 'x = 1\ny = x + "a"\n'}, ["query", "//pkg:all"], ["pkg/BUILD.bazel:2:", "+"]
    ),
    "runtime_error_in_bzl": Case(
        {"pkg/defs.bzl": 'def boom():\n    fail("kaboom")\n', "pkg/BUILD.bazel": 'load(":defs.bzl", "boom")\nboom()\n'},
        ["query", "//pkg:all"],
        ["pkg/defs.bzl:2", "kaboom", "pkg/BUILD.bazel:2"],
    ),
    "load_missing_file": Case(
        {"pkg/BUILD.bazel": 'load("//pkg:nope.bzl", "x")\n'},
        ["query", "//pkg:all"],
        ["pkg/BUILD.bazel:1", "nope.bzl", "does not exist"],
    ),
    "load_missing_symbol": Case(
        {"pkg/defs.bzl": "x = 1\n", "pkg/BUILD.bazel": 'load(":defs.bzl", "nosuch")\n'},
        ["query", "//pkg:all"],
        ["pkg/BUILD.bazel:1", "nosuch"],
    ),
    "load_private_symbol": Case(
        {"pkg/defs.bzl": "_x = 1\n", "pkg/BUILD.bazel": 'load(":defs.bzl", "_x")\n'},
        ["query", "//pkg:all"],
        ["pkg/BUILD.bazel:1", "_x"],
    ),
    "load_cycle": Case(
        {
            "pkg/a.bzl": 'load(":b.bzl", "b")\na = 1\n',
            "pkg/b.bzl": 'load(":a.bzl", "a")\nb = 1\n',
            "pkg/BUILD.bazel": 'load(":a.bzl", "a")\n',
        },
        ["query", "//pkg:all"],
        ["cycle in load() graph", "//pkg:a.bzl -> //pkg:b.bzl -> //pkg:a.bzl"],
    ),
    "unknown_attribute": Case(
        {"lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = ["lib.rs"], bogus = 1)\n'},
        ["query", "//lib"],
        ["lib/BUILD.bazel:2", "//lib:lib", "no such attribute 'bogus'"],
    ),
    "wrong_attribute_type": Case(
        {"lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = "lib.rs")\n'},
        ["query", "//lib"],
        ["lib/BUILD.bazel:2", "//lib:lib", "attribute 'srcs' must be a list of label strings"],
    ),
    "missing_mandatory_attribute": Case(
        {"r/defs.bzl": CUSTOM_RULE, "r/BUILD.bazel": 'load(":defs.bzl", "strict")\nstrict(name = "s")\n'},
        ["query", "//r:all"],
        ["r/BUILD.bazel:2", "//r:s", "mandatory attribute 'needed'"],
    ),
    "attribute_value_not_allowed": Case(
        {
            "r/defs.bzl": CUSTOM_RULE,
            "r/BUILD.bazel": 'load(":defs.bzl", "strict")\nstrict(name = "s", needed = "x", mode = "warp")\n',
        },
        ["query", "//r:all"],
        ["r/BUILD.bazel:2", "//r:s", "attribute 'mode'", "warp"],
    ),
    "duplicate_target": Case(
        {"lib/BUILD.bazel": RULES_RUST_LOAD + LIB + LIB, "lib/lib.rs": ""},
        ["query", "//lib:all"],
        ["lib/BUILD.bazel:3", "//lib:lib", "declared twice", "lib/BUILD.bazel:2"],
    ),
    "malformed_label_in_deps": Case(
        _lib('rust_library(name = "user", srcs = ["lib.rs"], deps = ["//a//b"])\n'),
        ["query", "//lib:all"],
        ["lib/BUILD.bazel:3", "//lib:user", "attribute 'deps'", "//a//b"],
    ),
    "malformed_label_on_command_line": Case({}, ["query", "//a:b:c"], ["//a:b:c"]),
    "no_such_package": Case({}, ["build", "//nowhere:x"], ["no such package '//nowhere'"]),
    "no_such_target": Case(_lib(), ["build", "//lib:nope"], ["no such target '//lib:nope'"]),
    "dependency_cycle": Case(
        {
            "a/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "a", srcs = ["lib.rs"], deps = ["//b"], '
            'visibility = ["//visibility:public"])\n',
            "b/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "b", srcs = ["lib.rs"], deps = ["//a"], '
            'visibility = ["//visibility:public"])\n',
            "a/lib.rs": "",
            "b/lib.rs": "",
        },
        ["build", "//a"],
        ["cycle in dependency graph: //a:a -> //b:b -> //a:a"],
    ),
    "toolchain_cycle": Case(
        {
            "MODULE.bazel": 'module(name = "t")\nregister_toolchains("//tc:tc")\n',
            "tc/defs.bzl": "def _impl(ctx):\n    return []\n"
            'my_toolchain = rule(implementation = _impl, attrs = {"dep": attr.label()})\n'
            'user_rule = rule(implementation = _impl, toolchains = ["//tc:type"])\n',
            "tc/BUILD.bazel": 'load(":defs.bzl", "my_toolchain")\ntoolchain_type(name = "type")\n'
            'toolchain(name = "tc", toolchain_type = ":type", toolchain = ":impl")\n'
            'my_toolchain(name = "impl", dep = "//x:user")\n',
            "x/BUILD.bazel": 'load("//tc:defs.bzl", "user_rule")\n'
            'user_rule(name = "user", visibility = ["//visibility:public"])\n',
        },
        ["build", "//x:user"],
        ["cycle in dependency graph through a toolchain", "//tc:impl -> //x:user -> //tc:impl"],
        exit_code=1,
    ),
    "visibility_violation": Case(
        {
            "lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = ["lib.rs"])\n',
            "lib/lib.rs": "",
            "app/BUILD.bazel": RULES_RUST_LOAD + 'rust_binary(name = "app", srcs = ["main.rs"], deps = ["//lib"])\n',
            "app/main.rs": "fn main() {}\n",
        },
        ["build", "//app"],
        ["app/BUILD.bazel:2", "'//lib:lib' is not visible from", "'//app:app'"],
    ),
    "deps_on_non_rust_target": Case(
        _lib(
            'filegroup(name = "files", srcs = ["lib.rs"])\n'
            'rust_library(name = "user", srcs = ["lib.rs"], deps = [":files"])\n'
        ),
        ["build", "//lib:user"],
        ["lib/BUILD.bazel:4", "//lib:user", "'//lib:files' is not a Rust crate"],
    ),
    "proc_macro_in_deps": Case(
        _lib(
            'rust_proc_macro(name = "m", srcs = ["lib.rs"])\nrust_library(name = "user", srcs = ["lib.rs"], '
            'deps = [":m"])\n'
        ),
        ["build", "//lib:user"],
        ["//lib:user", "'//lib:m' is a proc-macro; list it in proc_macro_deps"],
    ),
    "library_in_proc_macro_deps": Case(
        _lib('rust_library(name = "user", srcs = ["lib.rs"], proc_macro_deps = [":lib"])\n'),
        ["build", "//lib:user"],
        ["//lib:user", "'//lib:lib' is not a proc-macro; list it in deps"],
    ),
    "missing_srcs_file": Case(
        {"lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = ["missing.rs"])\n'},
        ["build", "//lib"],
        ["lib/BUILD.bazel:2", "no such target '//lib:missing.rs'"],
    ),
    "crate_root_not_in_srcs": Case(
        {
            "lib/BUILD.bazel": RULES_RUST_LOAD
            + 'rust_library(name = "lib", srcs = ["lib.rs"], crate_root = "other.rs")\n',
            "lib/lib.rs": "",
            "lib/other.rs": "",
        },
        ["build", "//lib"],
        ["lib/BUILD.bazel:2", "//lib:lib", "crate_root 'lib/other.rs' is not in srcs"],
    ),
    "same_crate_name_in_one_link": Case(
        {
            "a/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "util", srcs = ["lib.rs"], '
            'visibility = ["//visibility:public"])\n',
            "a/lib.rs": "",
            "b/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "util", srcs = ["lib.rs"], '
            'visibility = ["//visibility:public"])\n',
            "b/lib.rs": "",
            "app/BUILD.bazel": RULES_RUST_LOAD + 'rust_binary(name = "app", srcs = ["main.rs"], '
            'deps = ["//a:util", "//b:util"])\n',
            "app/main.rs": "fn main() {}\n",
        },
        ["build", "//app"],
        ["app/BUILD.bazel:2", "two crates named 'util'", "//a:util", "//b:util"],
    ),
    "output_outside_output_directory": Case(
        {
            "s/defs.bzl": "def _impl(ctx):\n"
            "    out = ctx.actions.declare_file('out.txt', sibling = ctx.file.src)\n"
            "    ctx.actions.write(out, 'x')\n"
            "    return [DefaultInfo(files = depset([out]))]\n"
            "sibling = rule(implementation = _impl, attrs = {'src': attr.label(allow_single_file = True)})\n",
            "s/BUILD.bazel": 'load(":defs.bzl", "sibling")\nsibling(name = "s", src = "in.txt")\n',
            "s/in.txt": "",
        },
        ["build", "//s"],
        ["s/BUILD.bazel:2", "//s:s", "declared output 's/out.txt' is outside the output directory"],
    ),
    "unknown_flag": Case(_lib(), ["build", "//lib", "--frobnicate"], ["--frobnicate"], exit_code=2),
    "bad_flag_value": Case(_lib(), ["build", "//lib", "--jobs=zero"], ["--jobs", "zero"], exit_code=2),
    "bad_boolean_flag_value": Case(
        _lib(), ["build", "//lib", "--keep_going=maybe"], ["keep_going", "maybe"], exit_code=2
    ),
    "bad_starlark_flag": Case(
        _lib(), ["build", "//lib", "--//lib:lib=true"], ["--//lib:lib", "not a build setting"], exit_code=2
    ),
    "rc_file_error": Case(
        {**_lib(), ".pybuildrc": "build --frobnicate\n"},
        ["build", "//lib"],
        [".pybuildrc:1", "--frobnicate"],
        exit_code=2,
    ),
    "no_rustc_found": Case(
        _lib(), ["build", "//lib"], ["$RUSTC", "/nonexistent/rustc"], env={"RUSTC": "/nonexistent/rustc"}
    ),
    "rustc_compile_error": Case(
        {"lib/BUILD.bazel": RULES_RUST_LOAD + LIB, "lib/lib.rs": 'pub fn f() -> u32 { "text" }\n'},
        ["build", "//lib"],
        ["error[E0308]", "lib/lib.rs:1", "//lib:lib", "failed"],
        exit_code=1,
    ),
    "action_killed_by_signal": Case(
        {
            "s/defs.bzl": SCRIPT_RULE,
            "s/BUILD.bazel": 'load(":defs.bzl", "scripted")\n'
            'scripted(name = "s", script = "#!/bin/sh\\nkill -9 $$\\n")\n',
        },
        ["build", "//s"],
        ["//s:s", "killed by SIGKILL, probably out of memory", "--jobs", "--local_ram_resources"],
        exit_code=1,
    ),
    "full_sandbox_file_system": Case(
        {
            "s/defs.bzl": SCRIPT_RULE,
            "s/BUILD.bazel": 'load(":defs.bzl", "scripted")\n'
            'scripted(name = "s", script = "#!/bin/sh\\necho No space left on device >&2\\nexit 1\\n")\n',
        },
        ["build", "//s", "--sandbox_base=../sandboxes"],
        ["//s:s", "No space left on device", "may be full", "--sandbox_base"],
        exit_code=1,
    ),
    "missing_declared_output": Case(
        {
            "s/defs.bzl": SCRIPT_RULE,
            "s/BUILD.bazel": 'load(":defs.bzl", "scripted")\nscripted(name = "s", script = "#!/bin/sh\\nexit 0\\n")\n',
        },
        ["build", "//s"],
        ["//s:s", "did not create its declared output", "s.out"],
        exit_code=1,
    ),
    "build_script_fails": Case(
        {
            "c/BUILD.bazel": RULES_RUST_LOAD + 'load("@rules_rust//cargo:defs.bzl", "cargo_build_script")\n'
            'cargo_build_script(name = "bs", srcs = ["build.rs"])\n'
            'rust_library(name = "c", srcs = ["lib.rs"], deps = [":bs"])\n',
            "c/build.rs": 'fn main() { eprintln!("cannot find libfrob"); std::process::exit(3); }\n',
            "c/lib.rs": "",
        },
        ["build", "//c"],
        ["cannot find libfrob", "build script of //c:bs failed with exit code 3"],
        exit_code=1,
    ),
    "undeclared_input_in_sandbox": Case(
        {
            "lib/BUILD.bazel": RULES_RUST_LOAD + LIB,
            "lib/secret.txt": "s",
            "lib/lib.rs": 'pub const S: &str = include_str!("secret.txt");\n',
        },
        ["build", "//lib"],
        ["secret.txt", "//lib:lib", "failed"],
        exit_code=1,
    ),
    "unreadable_build_file": Case(
        {"pkg/BUILD.bazel": "x = 1\n"}, ["query", "//pkg:all"], ["cannot read", "pkg/BUILD.bazel"]
    ),
    "module_bazel_error": Case(
        {"MODULE.bazel": 'module(name = "x")\nbazel_dep(name = 3)\n'}, ["query", "//..."], ["MODULE.bazel:2"]
    ),
    "outside_any_workspace": Case({}, ["query", "//..."], ["not inside a workspace"], cwd="/"),
    "bad_query_syntax": Case(_lib(), ["query", "deps(//lib"], ["deps(//lib", "column"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_one_clear_error(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    root = write_workspace(tmp_path / "ws", case.files)
    if name == "unreadable_build_file":
        (root / "pkg" / "BUILD.bazel").write_bytes(b"x = '\xff\xfe'\n")  # not UTF-8: unreadable as Starlark
    env = {**os.environ, **case.env}
    cwd = Path(case.cwd) if case.cwd != "." else root
    code, _, err = _run(cwd, case.argv, env)
    assert code != 0, f"{name}: expected failure; stderr:\n{err}"
    if case.exit_code is not None:
        assert code == case.exit_code, f"{name}: exit {code}; stderr:\n{err}"
    assert TRACEBACK not in err and "internal error" not in err, err
    for fragment in case.expected:
        assert fragment in err, f"{name}: {fragment!r} not in stderr:\n{err}"
    if name == "rustc_compile_error":
        assert err.count("error[E0308]") == 1, "diagnostics are shown once"
        assert '"$message_type"' not in err and '"rendered"' not in err, "rendered as text, not JSON"


def _run(cwd: Path, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return run_pybuild(cwd, *argv, "-j2" if argv[0] == "build" else "--verbose_failures=false", timeout=300)
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_battery_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_negative_patterns_subtract_targets_before_and_after_double_dash(tmp_path: Path) -> None:
    """Not bad input, but the case that looked like one: `-//x:y` is a pattern, not an unknown flag."""
    root = write_workspace(tmp_path / "ws", {**_lib(), "lib/broken.rs": "this does not compile\n"})
    (root / "lib" / "BUILD.bazel").write_text(
        RULES_RUST_LOAD + LIB + 'rust_library(name = "broken", srcs = ["broken.rs"])\n', encoding="utf-8"
    )
    for argv in (["build", "//lib:all", "-//lib:broken"], ["build", "--", "//lib:all", "-//lib:broken"]):
        code, _, err = run_pybuild(root, *argv)
        assert code == 0, err
        assert "Build OK" in err
