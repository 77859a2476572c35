"""`pybuild query` end to end: a diamond workspace in tmp_path, the real command, every output format."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest
from workspace_helpers import (
    RULES_RUST_LOAD,
    TRACEBACK,
    Runner,
    assert_error,
    assert_ok,
    lines,
    main_repo_lines,
    run_pybuild,
    write_workspace,
)

from pybuild import cli

# //app -> //diamond:top -> {left, right} -> base, plus a test of top and an unrelated library.
DIAMOND = {
    "diamond/BUILD.bazel": RULES_RUST_LOAD
    + """
package(default_visibility = ["//visibility:public"])

rust_library(name = "base", srcs = ["base.rs"])

rust_library(name = "left", srcs = ["left.rs"], deps = [":base"])

rust_library(name = "right", srcs = ["right.rs"], deps = [":base"])

rust_library(name = "top", srcs = ["top.rs"], deps = [":left", ":right"])

rust_test(name = "top_test", crate = ":top")
""",
    "diamond/base.rs": "",
    "diamond/left.rs": "",
    "diamond/right.rs": "",
    "diamond/top.rs": "",
    "app/BUILD.bazel": RULES_RUST_LOAD + 'rust_binary(name = "app", srcs = ["main.rs"], deps = ["//diamond:top"])\n',
    "app/main.rs": "",
    "other/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "other", srcs = [])\n',
}
RULES = [
    "//app:app",
    "//diamond:base",
    "//diamond:left",
    "//diamond:right",
    "//diamond:top",
    "//diamond:top_test",
    "//other:other",
]
DIAMOND_EDGES = {
    ("//diamond:top", "//diamond:left"),
    ("//diamond:top", "//diamond:right"),
    ("//diamond:left", "//diamond:base"),
    ("//diamond:right", "//diamond:base"),
}


@pytest.fixture
def diamond(tmp_path: Path) -> Path:
    return write_workspace(tmp_path, DIAMOND)


# ---------------------------------------------------------------------------------------------
# Query functions and operators


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("//...", RULES),
        ("//diamond:all", [r for r in RULES if r.startswith("//diamond")]),
        (
            "deps(//diamond:top)",
            [
                "//diamond:base",
                "//diamond:base.rs",
                "//diamond:left",
                "//diamond:left.rs",
                "//diamond:right",
                "//diamond:right.rs",
                "//diamond:top",
                "//diamond:top.rs",
            ],
        ),
        ("deps(//diamond:top, 1)", ["//diamond:left", "//diamond:right", "//diamond:top", "//diamond:top.rs"]),
        ("deps(//diamond:top, 0)", ["//diamond:top"]),
        (
            "rdeps(//..., //diamond:base)",
            ["//app:app", "//diamond:base", "//diamond:left", "//diamond:right", "//diamond:top", "//diamond:top_test"],
        ),
        ("rdeps(//..., //diamond:base, 1)", ["//diamond:base", "//diamond:left", "//diamond:right"]),
        ("rdeps(//diamond:left, //diamond:base)", ["//diamond:base", "//diamond:left"]),
        ("allpaths(//app, //diamond:base)", ["//app:app", *sorted(RULES[1:5])]),
        ("allpaths(//diamond:left, //diamond:right)", []),
        (
            "kind(rust_library, //...)",
            ["//diamond:base", "//diamond:left", "//diamond:right", "//diamond:top", "//other:other"],
        ),
        ("kind('rust_(binary|test)', //...)", ["//app:app", "//diamond:top_test"]),
        ("kind('source file', deps(//diamond:left))", ["//diamond:base.rs", "//diamond:left.rs"]),
        ("filter(':(left|right)$', //...)", ["//diamond:left", "//diamond:right"]),
        ("deps(//diamond:left) ^ deps(//diamond:right)", ["//diamond:base", "//diamond:base.rs"]),
        ("deps(//diamond:left) intersect deps(//diamond:right)", ["//diamond:base", "//diamond:base.rs"]),
        (
            "//diamond:all - //diamond:top_test",
            ["//diamond:base", "//diamond:left", "//diamond:right", "//diamond:top"],
        ),
        ("//diamond:all except kind(rust_library, //...)", ["//diamond:top_test"]),
        ("//diamond:left + //other", ["//diamond:left", "//other:other"]),
        ("//diamond:left union //diamond:right", ["//diamond:left", "//diamond:right"]),
        ("//... - deps(//app) - //diamond:top_test", ["//other:other"]),
        ("let d = deps(//diamond:left, 1) in $d - //diamond:left.rs", ["//diamond:base", "//diamond:left"]),
    ],
)
def test_query_results(diamond: Path, run: Runner, expression: str, expected: list[str]) -> None:
    assert main_repo_lines(assert_ok(run(diamond, "query", expression))) == expected


def test_somepath_prints_the_path_in_order(diamond: Path, run: Runner) -> None:
    path = lines(assert_ok(run(diamond, "query", "somepath(//app, //diamond:base)")))
    assert path[0] == "//app:app"
    assert path[1] == "//diamond:top"
    assert path[2] in ("//diamond:left", "//diamond:right")
    assert path[3] == "//diamond:base"
    assert len(path) == 4


def test_somepath_without_a_path_is_empty(diamond: Path, run: Runner) -> None:
    assert assert_ok(run(diamond, "query", "somepath(//diamond:base, //app)")) == ""


def test_label_kind_output(diamond: Path, run: Runner) -> None:
    out = assert_ok(run(diamond, "query", "deps(//app, 2)", "--output=label_kind"))
    assert main_repo_lines(out) == [
        "rust_binary rule //app:app",
        "source file //app:main.rs",
        "rust_library rule //diamond:left",
        "rust_library rule //diamond:right",
        "rust_library rule //diamond:top",
        "source file //diamond:top.rs",
    ]


# ---------------------------------------------------------------------------------------------
# Structured outputs, through the real command


def test_json_output(diamond: Path) -> None:
    out = assert_ok(run_pybuild(diamond, "query", "kind(rule, deps(//diamond:top)) ^ //diamond:*", "--output=json"))
    entries = json.loads(out)
    assert [entry["label"] for entry in entries] == RULES[1:5]
    assert {entry["kind"] for entry in entries} == {"rust_library rule"}
    # deps lists the direct dependencies inside the result set.
    edges = {(entry["label"], dep) for entry in entries for dep in entry["deps"]}
    assert edges == DIAMOND_EDGES


_DOT_NODE = re.compile(r'^\s*"([^"]+)"\s*;?\s*$')
_DOT_EDGE = re.compile(r'^\s*"([^"]+)"\s*->\s*"([^"]+)"\s*;?\s*$')
_DOT_ATTRIBUTES = re.compile(r"^\s*(node|edge|graph)\s*\[[^\]]*\]\s*;?\s*$")


def parse_dot(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """A structural check of `digraph { ... }` with quoted node ids: returns (nodes, edges) or fails."""
    body = text.strip().splitlines()
    assert re.fullmatch(r'\s*digraph\s+("[^"]*"|\w+)\s*\{\s*', body[0]), body[0]
    assert body[-1].strip() == "}", body[-1]
    assert text.count("{") == text.count("}") == 1
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in body[1:-1]:
        if not line.strip() or _DOT_ATTRIBUTES.match(line):
            continue
        if edge := _DOT_EDGE.match(line):
            edges.add((edge[1], edge[2]))
        elif node := _DOT_NODE.match(line):
            nodes.add(node[1])
        else:
            pytest.fail(f"not a DOT statement: {line!r}")
    assert {end for edge in edges for end in edge} <= nodes, "every edge end is a declared node"
    return nodes, edges


def test_graph_output_is_dot(diamond: Path) -> None:
    out = assert_ok(run_pybuild(diamond, "query", "deps(//diamond:top) ^ //diamond:all", "--output=graph"))
    nodes, edges = parse_dot(out)
    assert nodes == set(RULES[1:5])
    assert edges == DIAMOND_EDGES
    try:  # a second opinion when pydot happens to be installed; the tests do not need it
        import pydot  # type: ignore[import-not-found]
    except ImportError:
        return
    (graph,) = pydot.graph_from_dot_data(out)
    assert {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()} == edges


# ---------------------------------------------------------------------------------------------
# Errors


def test_dependency_cycle_is_reported_with_its_path(tmp_path: Path, run: Runner) -> None:
    build = RULES_RUST_LOAD + (
        'rust_library(name = "a", srcs = [], deps = [":b"])\n'
        'rust_library(name = "b", srcs = [], deps = ["//q:c"])\n'
        'rust_library(name = "ok", srcs = [])\n'
    )
    other = RULES_RUST_LOAD + 'rust_library(name = "c", srcs = [], deps = ["//p:a"], visibility = ["//p:__pkg__"])\n'
    ws = write_workspace(tmp_path, {"p/BUILD.bazel": build, "q/BUILD.bazel": other})
    err = assert_error(run(ws, "query", "deps(//p:a)"), "cycle")
    path = re.search(r"(//\S+(?: -> //\S+)+)", err)
    assert path is not None, err
    members = path[1].split(" -> ")
    assert members[0] == members[-1]
    assert sorted(members[:-1]) == ["//p:a", "//p:b", "//q:c"]
    # Targets off the cycle still query fine.
    assert main_repo_lines(assert_ok(run(ws, "query", "deps(//p:ok)"))) == ["//p:ok"]


@pytest.mark.parametrize(
    ("expression", "fragments"),
    [
        ("deps(//diamond:top", ["syntax error", "'deps(//diamond:top'", "column"]),
        ("deps(//diamond:top))", ["syntax error", "column 20"]),
        ("//diamond:top +", ["syntax error", "column"]),
        ("deps(//diamond:top, x)", ["deps()", "integer"]),
        ("frobnicate(//diamond:top)", ["unknown function 'frobnicate'"]),
        ("somepath(//app)", ["somepath()", "2 arguments"]),
        ("kind('[', //...)", ["regular expression", "'['"]),
        ("$undefined", ["undefined variable '$undefined'"]),
        ("//diamond:nope", ["no such target '//diamond:nope'"]),
        ("deps(//nope)", ["no such package '//nope'"]),
    ],
)
def test_bad_queries(diamond: Path, run: Runner, expression: str, fragments: list[str]) -> None:
    assert_error(run(diamond, "query", expression), *fragments)


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["query", "//...", "--output=bogus"], ["--output", "bogus"]),
        (["query", "//...", "--frobnicate"], ["--frobnicate"]),
        (["query", "//...", "--keep_going=maybe"], ["--keep_going", "maybe"]),
        (["query", "//...", "--verbose_failures=perhaps"], ["--verbose_failures", "perhaps"]),
        (["query"], ["expression"]),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_usage_errors_exit_2(diamond: Path, run: Runner, arguments: list[str], fragments: list[str]) -> None:
    result = run(diamond, *arguments)
    assert_error(result, *fragments)
    assert result[0] == 2


def test_usage_error_in_a_real_process(diamond: Path) -> None:
    code, out, err = run_pybuild(diamond, "query", "//...", "--keep_going=maybe")
    assert code == 2
    assert "--keep_going" in err
    assert TRACEBACK not in err
    assert out == ""


def test_the_program_exits_with_the_code_of_main_and_its_heap_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen objects are left out of the collection Python runs at shutdown (0.8 s after a big analysis)."""
    monkeypatch.setattr(cli, "main", lambda: 3)
    try:
        with pytest.raises(SystemExit) as exit:
            cli.command()
        assert exit.value.code == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("flag", ["--keep_going", "--nokeep_going", "--keep_going=false", "--keep_going=1"])
def test_boolean_flag_spellings_are_accepted(diamond: Path, run: Runner, flag: str) -> None:
    assert main_repo_lines(assert_ok(run(diamond, "query", "//other:all", flag))) == ["//other:other"]
