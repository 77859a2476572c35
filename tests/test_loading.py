"""Integration tests of the loading phase: workspaces written to tmp_path, loaded by the real `pybuild` command.

Most cases call `pybuild.cli.main` in-process (fast); a few run `python -m pybuild` in a subprocess
to cover the real entry point. Every error case checks the exit status, that stderr names the
culprit, and that no Python traceback leaks out.
"""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest
from workspace_helpers import (
    RULES_RUST_LOAD,
    Runner,
    assert_error,
    assert_ok,
    lines,
    main_repo_lines,
    run_pybuild,
    write_workspace,
)

from pybuild.errors import PybuildError
from pybuild.labels import parse_label
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader, dependencies_first


def single_package(tmp_path: Path, build: str, extra: dict[str, str] | None = None) -> Path:
    """A workspace with package `p` (BUILD text `build`, plus a.rs) and `extra` files ({path: text})."""
    return write_workspace(tmp_path, {"p/a.rs": "", "p/BUILD.bazel": build, **(extra or {})})


# ---------------------------------------------------------------------------------------------
# Workspace root discovery and relative patterns

LIB_WORKSPACE = {
    "lib/BUILD.bazel": RULES_RUST_LOAD
    + 'rust_library(name = "lib", srcs = ["src/lib.rs"])\nrust_library(name = "util", srcs = ["src/lib.rs"])\n',
    "lib/src/lib.rs": "",
    "lib/src/deep/nested/notes.txt": "",
    "lib/sub/BUILD.bazel": RULES_RUST_LOAD + 'rust_binary(name = "tool", srcs = ["main.rs"], deps = ["//lib"])\n',
    "lib/sub/main.rs": "",
    "other/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "other", srcs = [])\n',
}


@pytest.mark.parametrize("marker", ["MODULE.bazel", "WORKSPACE", "WORKSPACE.bazel", "REPO.bazel"])
def test_workspace_root_is_found_from_a_subdirectory(tmp_path: Path, marker: str) -> None:
    ws = write_workspace(tmp_path, {marker: "", **LIB_WORKSPACE}, module=False)
    out = assert_ok(run_pybuild(ws / "lib" / "src" / "deep" / "nested", "query", "//..."))
    assert lines(out) == ["//lib/sub:tool", "//lib:lib", "//lib:util", "//other:other"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("...", ["//lib/sub:tool", "//lib:lib", "//lib:util"]),
        (":all", ["//lib:lib", "//lib:util"]),
        (":util", ["//lib:util"]),
        ("sub:tool", ["//lib/sub:tool"]),
        ("sub:all", ["//lib/sub:tool"]),
        ("sub/...", ["//lib/sub:tool"]),
        ("../other:other", ["//other:other"]),
        ("//other", ["//other:other"]),
    ],
)
def test_relative_patterns_resolve_against_the_working_directory(
    tmp_path: Path, run: Runner, pattern: str, expected: list[str]
) -> None:
    ws = write_workspace(tmp_path, LIB_WORKSPACE)
    assert lines(assert_ok(run(ws / "lib", "query", pattern))) == expected


def test_relative_pattern_from_a_subdirectory_in_a_real_process(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, LIB_WORKSPACE)
    out = assert_ok(run_pybuild(ws / "lib", "query", "deps(sub:tool, 1)"))
    assert main_repo_lines(out) == ["//lib/sub:main.rs", "//lib/sub:tool", "//lib:lib"]


def test_running_outside_any_workspace_is_an_error(tmp_path: Path) -> None:
    outside = tmp_path / "not_a_workspace"
    outside.mkdir()
    assert_error(run_pybuild(outside, "query", "//..."), "not inside a workspace", "MODULE.bazel", str(outside))


# ---------------------------------------------------------------------------------------------
# MODULE.bazel

FULL_MODULE = """\
module(name = "my_project", version = "1.2.3")

bazel_dep(name = "rules_rust", version = "0.60.0")
bazel_dep(name = "platforms", version = "0.0.10", dev_dependency = True)
bazel_dep(name = "bazel_skylib", version = "1.7.1", repo_name = "skylib")

single_version_override(module_name = "platforms", version = "0.0.10")

register_toolchains("//toolchains:all")

rust = use_extension("@rules_rust//rust:extensions.bzl", "rust")
rust.toolchain(edition = "2021", versions = ["1.80.0"])
use_repo(rust, "rust_toolchains")

crate = use_extension("@rules_rust//crate_universe:extensions.bzl", "crate", dev_dependency = True)
crate.from_cargo(name = "crates", cargo_lockfile = "//:Cargo.lock", manifests = ["//:Cargo.toml"])
use_repo(crate, "crates", vendored = "crates_vendor")
"""


def test_module_file_with_deps_toolchains_and_extensions_loads(tmp_path: Path, run: Runner) -> None:
    ws = write_workspace(
        tmp_path,
        {
            "MODULE.bazel": FULL_MODULE,
            "toolchains/BUILD.bazel": "# toolchains are declared here\n",
            "app/BUILD.bazel": RULES_RUST_LOAD + 'rust_binary(name = "app", srcs = ["main.rs"])\n',
            "app/main.rs": "",
        },
    )
    assert lines(assert_ok(run(ws, "query", "//..."))) == ["//app:app"]

    module = load_workspace(ws).module
    assert (module.name, module.version) == ("my_project", "1.2.3")
    assert module.bazel_deps == {"rules_rust": "rules_rust", "platforms": "platforms", "skylib": "bazel_skylib"}
    assert "//toolchains:all" in module.registered_toolchains
    assert module.used_repos == {"rust_toolchains": "rust_toolchains", "crates": "crates", "vendored": "crates_vendor"}
    extensions = {e["name"]: e for e in module.extensions}
    assert extensions["rust"]["tags"] == [{"tag": "toolchain", "attrs": {"edition": "2021", "versions": ["1.80.0"]}}]
    assert [tag["tag"] for tag in extensions["crate"]["tags"]] == ["from_cargo"]


@pytest.mark.parametrize(
    ("module_text", "fragments"),
    [
        pytest.param('module(name = "m")\n\nbazel_dep(name = "x"\n', ["MODULE.bazel:3", "Parse error"], id="syntax"),
        pytest.param('module(name = "m")\n\nx = 1 + "a"\n', ["MODULE.bazel:3", "`+`"], id="runtime"),
        pytest.param('module(name = "m")\n\nfrobnicate()\n', ["MODULE.bazel:3", "frobnicate"], id="unknown-function"),
        pytest.param(
            'module(name = "m")\nbazel_dep(name = "a")\nbazel_dep(name = "a")\n',
            ["MODULE.bazel:3", "'a'", "twice"],
            id="duplicate-dep",
        ),
        pytest.param(
            'module(name = "m")\n\nbazel_dep(nmae = "a")\n', ["MODULE.bazel:3", "bazel_dep()", "'name'"], id="bad-args"
        ),
        pytest.param(
            'module(name = "m")\n\nuse_repo({}, "x")\n',
            ["MODULE.bazel:3", "use_repo()", "use_extension()"],
            id="use-repo",
        ),
    ],
)
def test_module_file_errors_name_the_line(tmp_path: Path, run: Runner, module_text: str, fragments: list[str]) -> None:
    ws = write_workspace(tmp_path, {"MODULE.bazel": module_text, "p/BUILD.bazel": ""})
    assert_error(run(ws / "p", "query", "//..."), *fragments)


def test_module_file_error_in_a_real_process(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, {"MODULE.bazel": 'module(name = "m")\n\n\nx = 1 + "a"\n'})
    assert_error(run_pybuild(ws, "query", "//..."), "MODULE.bazel:4")


# ---------------------------------------------------------------------------------------------
# A rules_rust-style BUILD file

RULES_RUST_BUILD = """\
load("@rules_rust//rust:defs.bzl", "rust_library", "rust_binary", "rust_test", "rust_proc_macro")

package(default_visibility = ["//visibility:public"])

rust_library(
    name = "lib",
    srcs = glob(["src/**/*.rs"], exclude = ["src/main.rs"]),
    crate_root = "src/lib.rs",
    crate_name = "my_core",
    proc_macro_deps = ["//crates/macros:derive"],
    compile_data = ["data/table.txt"],
    crate_features = ["std", "serde"],
    rustc_env = {"VERSION": "1.0"},
    edition = "2021",
    visibility = ["//visibility:public"],
)

rust_test(
    name = "lib_test",
    crate = ":lib",
    size = "small",
)

rust_binary(
    name = "tool",
    srcs = ["src/main.rs"],
    edition = "2021",
    deps = [":lib"],
)
"""


def test_rules_rust_build_file_loads_unchanged(tmp_path: Path, run: Runner) -> None:
    ws = write_workspace(
        tmp_path,
        {
            "crates/core/BUILD.bazel": RULES_RUST_BUILD,
            "crates/core/src/lib.rs": "",
            "crates/core/src/model/types.rs": "",
            "crates/core/src/main.rs": "",
            "crates/core/data/table.txt": "",
            "crates/macros/BUILD.bazel": RULES_RUST_LOAD
            + 'rust_proc_macro(\n    name = "derive",\n    srcs = ["lib.rs"],\n    edition = "2021",\n'
            + '    visibility = ["//crates:__subpackages__"],\n)\n',
            "crates/macros/lib.rs": "",
        },
    )
    assert lines(assert_ok(run(ws, "query", "//..."))) == [
        "//crates/core:lib",
        "//crates/core:lib_test",
        "//crates/core:tool",
        "//crates/macros:derive",
    ]
    assert lines(assert_ok(run(ws, "query", "kind(rust_, //...)", "--output=label_kind"))) == [
        "rust_library rule //crates/core:lib",
        "rust_test rule //crates/core:lib_test",
        "rust_binary rule //crates/core:tool",
        "rust_proc_macro rule //crates/macros:derive",
    ]
    assert main_repo_lines(assert_ok(run(ws, "query", "deps(//crates/core:lib)"))) == [
        "//crates/core:data/table.txt",
        "//crates/core:lib",
        "//crates/core:src/lib.rs",
        "//crates/core:src/model/types.rs",
        "//crates/macros:derive",
        "//crates/macros:lib.rs",
    ]


# ---------------------------------------------------------------------------------------------
# glob()

GLOB_FILES = {
    # Written out of order: glob() must sort, not rely on directory order.
    "p/src/z.rs": "",
    "p/src/m/x.rs": "",
    "p/src/a.rs": "",
    "p/src/m/gen_x.rs": "",
    "p/top.rs": "",
    "p/README.md": "",
    "p/src/sub/BUILD.bazel": "",  # a subpackage: its files are not p's
    "p/src/sub/hidden.rs": "",
    "p/src/sub/deeper/y.rs": "",
}


def test_glob_is_sorted_excludes_and_stops_at_subpackages(tmp_path: Path, run: Runner) -> None:
    # The BUILD file checks the exact list, order included; a mismatch fails loading with the value.
    build = RULES_RUST_LOAD + (
        'srcs = glob(["**/*.rs"], exclude = ["**/gen_*.rs"])\n'
        'expected = ["src/a.rs", "src/m/x.rs", "src/z.rs", "top.rs"]\n'
        'fail("glob returned %s" % srcs) if srcs != expected else None\n'
        'rust_library(name = "l", srcs = srcs)\n'
    )
    ws = write_workspace(tmp_path, {**GLOB_FILES, "p/BUILD.bazel": build})
    assert main_repo_lines(assert_ok(run(ws, "query", "deps(//p:l)"))) == [
        "//p:l",
        "//p:src/a.rs",
        "//p:src/m/x.rs",
        "//p:src/z.rs",
        "//p:top.rs",
    ]


def test_glob_allow_empty(tmp_path: Path, run: Runner) -> None:
    build = RULES_RUST_LOAD + 'rust_library(name = "l", srcs = glob(["*.py"], allow_empty = True))\n'
    ws = write_workspace(tmp_path, {**GLOB_FILES, "p/BUILD.bazel": build})
    assert main_repo_lines(assert_ok(run(ws, "query", "deps(//p:l)"))) == ["//p:l"]


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        ('glob(["*.py"])', ["'*.py'", "allow_empty"]),
        ('glob(["src/*.rs", "*.py"])', ["'*.py'", "allow_empty"]),
        ('glob(["top.rs"], exclude = ["*.rs"])', ["excluded", "allow_empty"]),
        ('glob(["../x.rs"])', ["'../x.rs'"]),
        ('glob("*.rs")', ["glob()", "'include'"]),
        ('glob(["*.rs"], bogus = 1)', ["glob()", "'bogus'"]),
    ],
)
def test_glob_errors(tmp_path: Path, run: Runner, call: str, fragments: list[str]) -> None:
    build = RULES_RUST_LOAD + f'\nrust_library(\n    name = "l",\n    srcs = {call},\n)\n'
    ws = write_workspace(tmp_path, {**GLOB_FILES, "p/BUILD.bazel": build})
    assert_error(run(ws, "query", "//p:all"), "p/BUILD.bazel:5", *fragments)


# ---------------------------------------------------------------------------------------------
# Starlark errors in BUILD and .bzl files

MACROS_BZL = """\
def broken_macro(name):
    table = {"known": 1}
    return table[name]

def failing_macro(name):
    fail("bad macro argument: " + name)
"""


@pytest.mark.parametrize(
    ("build", "extra", "fragments"),
    [
        pytest.param(
            'rust_library(\n    name = "l"\n    srcs = ["a.rs"],\n)\n',
            {},
            ["p/BUILD.bazel:4:5", "Parse error"],
            id="syntax-error",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    srcs = ["a.rs"],\n\n',
            {},
            ["p/BUILD.bazel:4", "Parse error"],
            id="unclosed",
        ),
        pytest.param('x = 1\ny = x + "a"\n', {}, ["p/BUILD.bazel:3:5", "`+`", "int", "string"], id="runtime-error"),
        pytest.param(
            'load(":macros.bzl", "broken_macro")\n\nbroken_macro(name = "other")\n',
            {"p/macros.bzl": MACROS_BZL},
            ["p/macros.bzl:3", "other", "called from p/BUILD.bazel:4"],
            id="bzl-runtime-error",
        ),
        pytest.param(
            'load(":macros.bzl", "failing_macro")\n\nfailing_macro(name = "x")\n',
            {"p/macros.bzl": MACROS_BZL},
            ["p/macros.bzl:6", "bad macro argument: x", "called from p/BUILD.bazel:4"],
            id="bzl-fail",
        ),
        pytest.param(
            'load("//p:nothere.bzl", "x")\n',
            {},
            ["p/BUILD.bazel:2", "cannot load '//p:nothere.bzl'"],
            id="missing-file",
        ),
        pytest.param(
            'load(":defs.bzl", "missing")\n',
            {"p/defs.bzl": "present = 1\n"},
            ["p/BUILD.bazel:2", "`missing`"],
            id="missing-symbol",
        ),
        pytest.param(
            'load(":defs.bzl", "_hidden")\n',
            {"p/defs.bzl": "_hidden = 1\n"},
            ["p/BUILD.bazel:2", "private", "`_hidden`"],
            id="private-symbol",
        ),
        pytest.param(
            'load(":a.bzl", "a")\n',
            {"p/a.bzl": 'load(":b.bzl", "b")\na = 1\n', "p/b.bzl": 'load(":a.bzl", "a")\nb = 1\n'},
            ["cycle in load() graph", "//p:a.bzl -> //p:b.bzl -> //p:a.bzl"],
            id="load-cycle",
        ),
        pytest.param("\ndef helper():\n    pass\n", {}, ["p/BUILD.bazel:3", "def"], id="def-in-build"),
        pytest.param(
            'rust_library(\n    "l",\n    srcs = ["a.rs"],\n)\n',
            {},
            ["p/BUILD.bazel:2", "positional"],
            id="positional-name",
        ),
    ],
)
def test_starlark_errors(tmp_path: Path, run: Runner, build: str, extra: dict[str, str], fragments: list[str]) -> None:
    ws = single_package(tmp_path, RULES_RUST_LOAD + build, extra)
    assert_error(run(ws, "query", "//p:all"), *fragments)


def test_starlark_error_in_a_real_process(tmp_path: Path) -> None:
    ws = single_package(tmp_path, RULES_RUST_LOAD + '\n\nrust_library(name = 1 + "a")\n')
    assert_error(run_pybuild(ws / "p", "query", ":all"), "p/BUILD.bazel:4")


# ---------------------------------------------------------------------------------------------
# rule(): attribute checking of a custom rule

CUSTOM_RULE_BZL = """\
def _impl(ctx):
    return []

my_rule = rule(
    implementation = _impl,
    attrs = {
        "text": attr.string(mandatory = True),
        "mode": attr.string(default = "fast", values = ["fast", "slow"]),
        "dep": attr.label(),
        "srcs": attr.label_list(allow_files = True),
        "flag": attr.bool(),
        "count": attr.int(values = [0, 1, 2]),
        "opts": attr.string_list(),
        "env": attr.string_dict(),
    },
)
"""


def custom_rule_workspace(tmp_path: Path, *attributes: str) -> Path:
    """Package p instantiating my_rule(name = "t", ...) on line 3; each of `attributes` is `key = value`."""
    body = "".join(f"    {a},\n" for a in attributes)
    build = f'load(":defs.bzl", "my_rule")\n\nmy_rule(\n    name = "t",\n{body})\n'
    return single_package(tmp_path, build, {"p/defs.bzl": CUSTOM_RULE_BZL})


def test_custom_rule_accepts_every_attribute_type(tmp_path: Path, run: Runner) -> None:
    ws = custom_rule_workspace(
        tmp_path,
        'text = "hello"',
        'mode = "slow"',
        'dep = ":a.rs"',
        'srcs = ["a.rs", "//q:data.txt"]',
        "flag = True",
        "count = 2",
        'opts = ["-v"]',
        'env = {"KEY": "value"}',
    )
    write_workspace(ws, {"q/BUILD.bazel": 'exports_files(["data.txt"])\n', "q/data.txt": ""})
    out = assert_ok(run(ws, "query", "deps(//p:t)", "--output=label_kind"))
    assert main_repo_lines(out) == ["source file //p:a.rs", "my_rule rule //p:t", "source file //q:data.txt"]


@pytest.mark.parametrize(
    ("attributes", "fragments"),
    [
        pytest.param(['text = "x"', "bogus = 1"], ["no such attribute 'bogus'"], id="unknown"),
        pytest.param([], ["mandatory attribute 'text'"], id="missing-mandatory"),
        pytest.param(['text = "x"', 'srcs = "a.rs"'], ["'srcs'", "list"], id="string-for-list"),
        pytest.param(["text = 3"], ["'text'", "must be a string", "int"], id="int-for-string"),
        pytest.param(['text = "x"', 'dep = ["a.rs"]'], ["'dep'", "label"], id="list-for-label"),
        pytest.param(['text = "x"', 'flag = "yes"'], ["'flag'", "boolean"], id="string-for-bool"),
        pytest.param(['text = "x"', "count = True"], ["'count'", "integer"], id="bool-for-int"),
        pytest.param(['text = "x"', 'opts = ["a", 1]'], ["'opts'", "list of strings"], id="bad-list-item"),
        pytest.param(['text = "x"', 'env = {"a": 1}'], ["'env'", "dict"], id="bad-dict-value"),
        pytest.param(['text = "x"', 'mode = "medium"'], ["'mode'", "'medium'", "'fast'"], id="bad-string-value"),
        pytest.param(['text = "x"', "count = 7"], ["'count'", "7", "[0, 1, 2]"], id="bad-int-value"),
        pytest.param(['text = "x"', 'srcs = ["a.rs", "a.rs"]'], ["'srcs'", "duplicated"], id="duplicate-label"),
        pytest.param(['text = "x"', 'visibility = ["//foo:bar"]'], ["visibility", "//foo:bar"], id="bad-visibility"),
    ],
)
def test_custom_rule_attribute_errors(tmp_path: Path, run: Runner, attributes: list[str], fragments: list[str]) -> None:
    ws = custom_rule_workspace(tmp_path, *attributes)
    assert_error(run(ws, "query", "//p:all"), "p/BUILD.bazel:3", "//p:t", *fragments)


def test_custom_rule_error_through_a_macro_names_the_build_line(tmp_path: Path, run: Runner) -> None:
    macro = 'load(":defs.bzl", "my_rule")\n\ndef wrapped(name, **kwargs):\n    my_rule(name = name, **kwargs)\n'
    build = 'load(":macro.bzl", "wrapped")\n\n\nwrapped(\n    name = "t",\n    text = 5,\n)\n'
    ws = single_package(tmp_path, build, {"p/defs.bzl": CUSTOM_RULE_BZL, "p/macro.bzl": macro})
    assert_error(run(ws, "query", "//p:all"), "p/BUILD.bazel:4", "//p:t", "'text'")


def test_rule_with_a_bad_attribute_declaration_blames_the_bzl_file(tmp_path: Path, run: Runner) -> None:
    defs = 'def _impl(ctx):\n    return []\n\n\nbad = rule(implementation = _impl, attrs = {"a": "string"})\n'
    ws = single_package(tmp_path, 'load(":defs.bzl", "bad")\n', {"p/defs.bzl": defs})
    err = assert_error(run(ws, "query", "//p:all"), "p/defs.bzl:5", "attribute 'a'", "attr.")
    assert "bzl_prelude" not in err


# ---------------------------------------------------------------------------------------------
# Targets and labels


@pytest.mark.parametrize(
    ("build", "query", "fragments"),
    [
        pytest.param(
            'rust_library(name = "l", srcs = ["a.rs"])\n\nrust_library(\n    name = "l",\n    srcs = [],\n)\n',
            "//p:all",
            ["p/BUILD.bazel:4", "//p:l", "declared twice", "p/BUILD.bazel:2"],
            id="duplicate-target",
        ),
        pytest.param(
            'rust_library(name = "l", srcs = ["a.rs"])\n\npackage(default_visibility = ["//visibility:public"])\n',
            "//p:all",
            ["p/BUILD.bazel:4", "package()"],
            id="package-after-rule",
        ),
        pytest.param(
            "package()\npackage()\n",
            "//p:all",
            ["p/BUILD.bazel:3", "package()", "once"],
            id="package-twice",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    deps = ["//a//b"],\n)\n',
            "//p:all",
            ["p/BUILD.bazel:2", "//p:l", "'deps'", "'//a//b'"],
            id="double-slash-label",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    deps = ["a:b:c"],\n)\n',
            "//p:all",
            ["p/BUILD.bazel:2", "//p:l", "'deps'", "'a:b:c'"],
            id="two-colons-label",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    deps = ["//nope:x"],\n)\n',
            "deps(//p:l)",
            ["p/BUILD.bazel:2", "//p:l", "no such package '//nope'"],
            id="no-such-package",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    deps = ["//q:nope"],\n)\n',
            "deps(//p:l)",
            ["p/BUILD.bazel:2", "//p:l", "no such target '//q:nope'"],
            id="no-such-target",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    srcs = ["a.rs", "missing.rs"],\n)\n',
            "deps(//p:l)",
            ["p/BUILD.bazel:2", "//p:l", "'//p:missing.rs'"],
            id="missing-source-file",
        ),
        pytest.param(
            'rust_library(\n    name = "l",\n    deps = ["@nowhere//x:y"],\n)\n',
            "deps(//p:l)",
            ["p/BUILD.bazel:2", "//p:l", "'@nowhere'"],
            id="no-such-repository",
        ),
    ],
)
def test_target_and_label_errors(tmp_path: Path, run: Runner, build: str, query: str, fragments: list[str]) -> None:
    ws = write_workspace(
        tmp_path,
        {
            "p/a.rs": "",
            "p/BUILD.bazel": RULES_RUST_LOAD + build,
            "q/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "q", srcs = [])\n',
        },
    )
    assert_error(run(ws, "query", query), *fragments)


@pytest.mark.parametrize(
    ("pattern", "fragments"),
    [
        ("//nope:x", ["no such package '//nope'"]),
        ("//p:nope", ["no such target '//p:nope'", "p/BUILD.bazel"]),
        ("//nope/...", ["'//nope/...'"]),
        ("//p:a:b", ["'//p:a:b'"]),
    ],
)
def test_command_line_pattern_errors(tmp_path: Path, run: Runner, pattern: str, fragments: list[str]) -> None:
    ws = single_package(tmp_path, RULES_RUST_LOAD + 'rust_library(name = "l", srcs = ["a.rs"])\n')
    assert_error(run(ws, "query", pattern), *fragments)


# ---------------------------------------------------------------------------------------------
# Visibility (checked through the Python API: the CLI commands that enforce it are not written yet)

VISIBILITY_WORKSPACE = {
    "lib/BUILD.bazel": RULES_RUST_LOAD
    + 'rust_library(name = "private", srcs = [])\n'
    + 'rust_library(name = "public", srcs = [], visibility = ["//visibility:public"])\n'
    + 'rust_library(name = "pkg", srcs = [], visibility = ["//app:__pkg__"])\n'
    + 'rust_library(name = "subpackages", srcs = [], visibility = ["//app:__subpackages__"])\n'
    + 'rust_library(name = "explicit_private", srcs = [], visibility = ["//visibility:private"])\n'
    + 'rust_library(name = "sibling", srcs = [], deps = [":private"], visibility = ["//visibility:public"])\n'
    + 'rust_library(name = "wrapper", srcs = [], deps = ["//defaults"], visibility = ["//visibility:public"])\n',
    "defaults/BUILD.bazel": RULES_RUST_LOAD
    + 'package(default_visibility = ["//app:__pkg__"])\n\n'
    + 'rust_library(name = "defaults", srcs = [])\n'
    + 'rust_library(name = "overridden", srcs = [], visibility = ["//visibility:public"])\n',
}


def consumer_build(dependency: str) -> str:
    """A BUILD file whose `consumer` target (declared on line 3) depends on `dependency`."""
    return (
        RULES_RUST_LOAD + f'\nrust_binary(\n    name = "consumer",\n    srcs = [],\n    deps = ["{dependency}"],\n)\n'
    )


def check_visibility(workspace: Path, consumer: str) -> None:
    """Load the dependency graph of `consumer` and check its visibility, as build and aquery will."""
    graph_loader = TargetGraphLoader(PackageLoader(load_workspace(workspace)))
    graph = graph_loader.dependency_graph([parse_label(consumer)])
    graph_loader.check_visibility(graph.edges)


@pytest.mark.parametrize(
    ("consumer_package", "dependency"),
    [
        ("app", "//lib:public"),
        ("app", "//lib:pkg"),
        ("app", "//lib:subpackages"),
        ("app/inner/deep", "//lib:subpackages"),
        ("app", "//defaults"),
        ("elsewhere", "//defaults:overridden"),
        ("app", "//lib:sibling"),  # which depends on a private target of its own package
    ],
)
def test_visible_dependencies_pass(tmp_path: Path, consumer_package: str, dependency: str) -> None:
    build = {f"{consumer_package}/BUILD.bazel": consumer_build(dependency)}
    ws = write_workspace(tmp_path, {**VISIBILITY_WORKSPACE, **build})
    check_visibility(ws, f"//{consumer_package}:consumer")


@pytest.mark.parametrize(
    ("consumer_package", "dependency"),
    [
        ("app", "//lib:private"),  # private by default
        ("app", "//lib:explicit_private"),
        ("app/inner", "//lib:pkg"),  # __pkg__ does not include subpackages
        ("elsewhere", "//lib:pkg"),
        ("elsewhere", "//lib:subpackages"),
        ("application", "//lib:subpackages"),  # a name prefix is not a subpackage
        ("app/inner", "//defaults"),  # package(default_visibility) applies
    ],
)
def test_visibility_violation_names_both_targets(tmp_path: Path, consumer_package: str, dependency: str) -> None:
    build = {f"{consumer_package}/BUILD.bazel": consumer_build(dependency)}
    ws = write_workspace(tmp_path, {**VISIBILITY_WORKSPACE, **build})
    consumer = f"//{consumer_package}:consumer"
    with pytest.raises(PybuildError) as raised:
        check_visibility(ws, consumer)
    assert str(parse_label(dependency)) in raised.value.message
    assert consumer in raised.value.message
    assert "not visible" in raised.value.message
    assert raised.value.where == f"{consumer_package}/BUILD.bazel:3"


def test_visibility_violation_deep_in_the_graph(tmp_path: Path) -> None:
    # //app:consumer may use //lib:wrapper, but //lib:wrapper may not use //defaults (only //app may).
    ws = write_workspace(tmp_path, {**VISIBILITY_WORKSPACE, "app/BUILD.bazel": consumer_build("//lib:wrapper")})
    with pytest.raises(PybuildError) as raised:
        check_visibility(ws, "//app:consumer")
    assert "'//defaults:defaults' is not visible from rust_library rule '//lib:wrapper'" in raised.value.message
    assert raised.value.where == "lib/BUILD.bazel:8"


def test_analysis_order_is_networkx_lexicographical_topological_order_reversed() -> None:
    """Analysis orders targets without networkx; the order must stay the one it always had."""
    rng = random.Random(7)
    labels = [parse_label(f"//p{i % 7}:t{i}") for i in range(60)]
    edges = [(labels[i], labels[j]) for i in range(60) for j in range(i + 1, 60) if rng.random() < 0.08]
    edges += edges[:5]  # a dependency named twice counts once
    rng.shuffle(labels)
    graph = nx.DiGraph()
    graph.add_nodes_from(labels)
    graph.add_edges_from(edges)
    expected = list(reversed(list(nx.lexicographical_topological_sort(graph, key=str))))
    assert dependencies_first(labels, edges) == expected
