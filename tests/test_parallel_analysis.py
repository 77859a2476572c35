"""Analysis shared out among forked processes (--loading_phase_threads): the same actions, summaries and
errors as analysis in one process, with this process running only its share of the rule implementations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workspace_helpers import NOTE_RULE, RULES_RUST_LOAD, run_script, write_workspace

PACKAGES = 240
_PUBLIC = ', visibility = ["//visibility:public"]'


def _workspace(
    root: Path, last_note: str = 'word = "forked"', root_note: str = "", first_note: str = 'word = "first"'
) -> Path:
    """Package pNNN holds a library depending on that of the package before it, and a binary on it; package
    `a` a `note` on the last library (which the forked copy's share analyzes), package `z` a note that this
    process's share analyzes, and the root package `root_note`."""
    files = {"defs.bzl": NOTE_RULE, "BUILD.bazel": f'load("//:defs.bzl", "note")\n{root_note}\n'}
    for index in range(PACKAGES):
        deps = f', deps = ["//p{index - 1:03d}:lib"]' if index else ""
        files[f"p{index:03d}/lib.rs"] = ""
        files[f"p{index:03d}/main.rs"] = "fn main() {}\n"
        files[f"p{index:03d}/BUILD.bazel"] = (
            RULES_RUST_LOAD
            + f'rust_library(name = "lib", crate_name = "lib{index:03d}", srcs = ["lib.rs"]{deps}{_PUBLIC})\n'
            + 'rust_binary(name = "app", srcs = ["main.rs"], deps = [":lib"])\n'
        )
    # Among the targets free to go next, the greatest label comes first (see target_graph.dependencies_first):
    # //z:note first in analysis order, //a:note last (after the last library).
    files["z/BUILD.bazel"] = f'load("//:defs.bzl", "note")\nnote(name = "note", {first_note})\n'
    files["a/BUILD.bazel"] = (
        f'load("//:defs.bzl", "note")\nnote(name = "note", deps = ["//p{PACKAGES - 1:03d}:lib"], {last_note})\n'
    )
    return write_workspace(root, files)


# Analyzes //... with N processes (argv[2]) and shares of at least 100 rule targets, in a process of its own
# (pytest's may have threads, which forbid forking); with argv[3] == "edit", analyzes again after an edit of
# the first package, which invalidates every target. Prints the actions, the summaries and how many rule
# implementations this process ran, or the error.
_ANALYZE = """
import json, os, sys
from pathlib import Path
from pybuild import analysis_shares, loading_snapshot
from pybuild.analysis import Analysis, BuildConfig
from pybuild.errors import PybuildError
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

analysis_shares.RULES_PER_SHARE = 100
loading_snapshot.RACY_SECONDS = 0.0  # the test has just written the files
root, parent, begun = Path(sys.argv[1]), os.getpid(), []
begin = Analysis._begin_target
def counted_begin(self, label):
    if os.getpid() == parent:
        begun.append(label)
    return begin(self, label)
Analysis._begin_target = counted_begin

def analyze():
    packages = PackageLoader(load_workspace(root))
    packages.loading_processes = int(sys.argv[2])
    graph = TargetGraphLoader(packages)
    labels = [label for label in graph.resolve_patterns(["//..."]) if packages.target(label).is_rule]
    return Analysis(graph, BuildConfig()).run(labels)

try:
    result = analyze()
    if sys.argv[3] == "edit":
        build = root / "p000/BUILD.bazel"
        build.write_text(build.read_text().replace('srcs = ["lib.rs"]', 'srcs = ["lib.rs"], edition = "2018"'))
        begun.clear()
        result = analyze()
except PybuildError as error:
    print(json.dumps({"error": str(error)}))
else:
    actions = [repr(action).replace(str(root), "<root>") for action in result.actions.actions]
    print(json.dumps({"actions": actions, "summaries": result.summaries, "begun_here": len(begun)}))
"""


def _analyzed(root: Path, processes: int, then: str = "") -> dict[str, Any]:
    cache = "1" if then else "0"
    done = run_script(_ANALYZE, str(root), str(processes), then, env={"PYBUILD_LOAD_CACHE": cache})
    printed = [line for line in done.stderr.splitlines() if line.startswith("note //")]
    return {**json.loads(done.stdout), "printed": printed}


def test_forked_analysis_makes_the_same_actions_and_summaries(tmp_path: Path) -> None:
    alone = _analyzed(_workspace(tmp_path / "alone"), 1)
    shared = _analyzed(_workspace(tmp_path / "shared"), 2)
    assert shared["actions"] == alone["actions"]
    assert shared["summaries"] == alone["summaries"]
    assert any("made by forked" in action for action in shared["actions"])  # the copy's share came back
    assert shared["printed"] == alone["printed"] == ["note //z: first", "note //a: forked"]
    rules = alone["begun_here"]  # the libraries, binaries and note, and the toolchain's targets
    assert rules > 2 * PACKAGES
    # This process ran its share; the copy ran the rest and, for their providers, the libraries below it.
    assert 0 < shared["begun_here"] < rules


def test_an_analysis_after_an_edit_is_shared_out_too(tmp_path: Path) -> None:
    """An edit of the first package invalidates every target: the analysis that keeps what stands of the
    previous one (the load cache's) shares out the targets to analyze anew."""
    alone = _analyzed(_workspace(tmp_path / "alone"), 1, "edit")
    shared = _analyzed(_workspace(tmp_path / "shared"), 2, "edit")
    assert shared["actions"] == alone["actions"]
    assert shared["summaries"] == alone["summaries"]
    assert shared["printed"] == alone["printed"]
    assert any("--edition=2018" in action for action in shared["actions"])
    assert 0 < shared["begun_here"] < alone["begun_here"]


def test_an_error_in_a_forked_share_is_reported_as_without_forks(tmp_path: Path) -> None:
    errors = [_analyzed(_workspace(tmp_path / str(n), 'word = "fail"'), n) for n in (1, 2)]
    assert errors[0] == errors[1]
    assert "asked to fail" in errors[0]["error"] and "//a:note" in errors[0]["error"]
    assert "<analysis driver>" not in errors[0]["error"]  # whose lines differ with the targets analyzed together
    # Once each: what both processes printed before the copy failed is dropped, and printed by the analysis
    # this process then makes of everything.
    assert errors[1]["printed"] == ["note //z: first", "note //a: fail"]


def test_an_error_in_this_process_s_share_comes_after_what_it_printed(tmp_path: Path) -> None:
    errors = [_analyzed(_workspace(tmp_path / str(n), first_note='word = "fail"'), n) for n in (1, 2)]
    assert errors[0] == errors[1]
    assert "//z:note" in errors[0]["error"] and errors[1]["printed"] == ["note //z: fail"]


def test_outputs_that_clash_across_shares_are_reported_as_without_forks(tmp_path: Path) -> None:
    """A file of the root package's note is a directory of the last package's outputs (Bazel's prefix
    conflict): each share alone is fine, so only their merge finds it."""
    root_note = 'note(name = "clash", word = "root", out = "p239")'
    errors = [_analyzed(_workspace(tmp_path / str(n), root_note=root_note), n) for n in (1, 2)]
    assert errors[0] == errors[1]
    assert "output prefix conflict" in errors[0]["error"]
