"""The caches that let an unchanged workspace skip work: loading, analysis, toolchain detection and the
all-cached check of execution. Each must notice every change that matters and ignore damaged files.

A "fresh process" here is a fresh Workspace and PackageLoader: nothing is shared with the previous
load but what is on disk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pytest
from workspace_helpers import RULES_RUST_LOAD, write_workspace

from action_graph.action import Action
from action_graph.cache import ActionCache, ActionResult, OutputRecord
from action_graph.digests import FileDigests, action_key
from action_graph.graph import ActionGraph
from action_graph.scheduler import Outcome, ScheduleResult
from action_graph.uptodate import STATE_FILE, UpToDate
from pybuild.analysis import Analysis, AnalysisResult, BuildConfig
from pybuild.errors import PybuildError
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader
from toolchains import local_rust

MACROS = """\
load("@rules_rust//rust:defs.bzl", "rust_library")
load(":names.bzl", "NAME")

def library(name, **kwargs):
    rust_library(name = name, crate_name = NAME + name, **kwargs)
"""

WORKSPACE = {
    "lib/BUILD.bazel": RULES_RUST_LOAD
    + 'rust_library(name = "lib", srcs = glob(["src/**/*.rs"]), visibility = ["//visibility:public"])\n',
    "lib/src/lib.rs": "",
    "app/BUILD.bazel": 'load("//tools:macros.bzl", "library")\n'
    + 'library(name = "app", srcs = ["app.rs"], deps = ["//lib"])\n',
    "app/app.rs": "",
    "tools/BUILD.bazel": "",
    "tools/macros.bzl": MACROS,
    "tools/names.bzl": 'NAME = "x_"\n',
}


@dataclass
class Loaded:
    """What one fresh load saw: every rule target's kind and attributes, and the packages it evaluated."""

    targets: dict[str, tuple[str, str]]
    evaluated: list[str] = field(default_factory=list)
    analyzed: int = 0
    fresh: set[str] = field(default_factory=set)  # the targets whose actions the last analysis made anew
    read: set[str] = field(default_factory=set)  # the main repository's packages it loaded


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path, WORKSPACE)


def fresh_loader(root: Path, evaluated: list[str]) -> TargetGraphLoader:
    loader = PackageLoader(load_workspace(root))
    evaluate = loader._evaluate_package

    def spy(repo: str, name: str, *args: object) -> object:
        evaluated.append(f"@{repo}//{name}")
        return evaluate(repo, name, *args)  # type: ignore[arg-type]

    loader._evaluate_package = spy  # type: ignore[method-assign]
    return TargetGraphLoader(loader)


def load(root: Path) -> Loaded:
    evaluated: list[str] = []
    graph = fresh_loader(root, evaluated)
    labels = graph.resolve_patterns(["//..."])
    targets = {str(label): (t.kind, repr(t.attrs)) for label in labels for t in [graph.loader.target(label)]}
    return Loaded(targets, evaluated)


def analyze(root: Path, compilation_mode: str = "fastbuild") -> tuple[Loaded, list[Action]]:
    loaded, result = analyze_result(root, compilation_mode)
    return loaded, result.actions.actions


def analyze_result(
    root: Path, compilation_mode: str = "fastbuild", pattern: str = "//..."
) -> tuple[Loaded, AnalysisResult]:
    evaluated: list[str] = []
    graph = fresh_loader(root, evaluated)
    labels = [label for label in graph.resolve_patterns([pattern]) if graph.loader.target(label).is_rule]
    analysis = Analysis(graph, BuildConfig(compilation_mode=compilation_mode))
    runs = []
    original = analysis._analyze

    def spy(*args: object) -> object:
        runs.append(1)
        return original(*args)  # type: ignore[arg-type]

    analysis._analyze = spy  # type: ignore[method-assign]
    result = analysis.run(labels)
    loaded = Loaded({}, [e for e in evaluated if e.startswith("@//")], len(runs), analysis._making)
    loaded.read = {name for repo, name in graph.loader.loaded_packages() if not repo}
    return loaded, result


def main(loaded: Loaded) -> list[str]:
    return sorted(e for e in loaded.evaluated if e.startswith("@//"))


# Loading ------------------------------------------------------------------------------------------


def test_an_unchanged_workspace_evaluates_no_build_file(workspace: Path) -> None:
    first = load(workspace)
    second = load(workspace)
    assert main(first) == ["@//app", "@//lib", "@//tools"]
    assert second.evaluated == []
    assert second.targets == first.targets


def test_a_changed_build_file_is_evaluated_again(workspace: Path) -> None:
    load(workspace)
    (workspace / "lib/BUILD.bazel").write_text(
        RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = glob(["src/**/*.rs"]), edition = "2018")\n',
    )
    again = load(workspace)
    assert main(again) == ["@//lib"]
    assert "'2018'" in again.targets["//lib:lib"][1]


def test_a_changed_bzl_file_loaded_indirectly_is_noticed(workspace: Path) -> None:
    load(workspace)
    (workspace / "tools/names.bzl").write_text('NAME = "y_"\n')
    again = load(workspace)
    assert main(again) == ["@//app"]  # lib and tools do not load names.bzl
    assert "'y_app'" in again.targets["//app:app"][1]


def test_an_added_file_matched_by_a_glob_is_noticed(workspace: Path) -> None:
    load(workspace)
    (workspace / "lib/src/extra.rs").write_text("")
    again = load(workspace)
    assert main(again) == ["@//lib"]
    assert "src/extra.rs" in again.targets["//lib:lib"][1]


def test_an_added_file_no_glob_matches_changes_nothing(workspace: Path) -> None:
    load(workspace)
    (workspace / "lib/README.md").write_text("")
    assert load(workspace).evaluated == []


def test_a_removed_file_matched_by_a_glob_is_noticed(workspace: Path) -> None:
    (workspace / "lib/src/old.rs").write_text("")
    assert "src/old.rs" in load(workspace).targets["//lib:lib"][1]
    (workspace / "lib/src/old.rs").unlink()
    again = load(workspace)
    assert main(again) == ["@//lib"]
    assert "src/old.rs" not in again.targets["//lib:lib"][1]


def test_a_new_subpackage_takes_files_out_of_a_glob(workspace: Path) -> None:
    (workspace / "lib/src/sub/inner.rs").parent.mkdir()
    (workspace / "lib/src/sub/inner.rs").write_text("")
    assert "src/sub/inner.rs" in load(workspace).targets["//lib:lib"][1]
    (workspace / "lib/src/sub/BUILD.bazel").write_text("")
    again = load(workspace)
    assert "@//lib" in again.evaluated
    assert "src/sub/inner.rs" not in again.targets["//lib:lib"][1]


def test_a_module_file_edit_evaluates_everything_again(workspace: Path) -> None:
    load(workspace)
    (workspace / "MODULE.bazel").write_text('module(name = "renamed", version = "0.2.0")\n')
    assert main(load(workspace)) == ["@//app", "@//lib", "@//tools"]


def test_a_build_file_whose_bzl_globs_at_top_level_is_not_cached(tmp_path: Path) -> None:
    # The module's value depends on which package loaded it first: nothing the cache can key on.
    files = {"p/BUILD.bazel": 'load(":g.bzl", "FILES")\nfilegroup(name = "g", srcs = FILES)\n', "p/a.txt": ""}
    root = write_workspace(tmp_path, {**files, "p/g.bzl": 'FILES = native.glob(["*.txt"])\n'})
    load(root)
    assert main(load(root)) == ["@//p"]


def test_corrupt_package_entries_are_ignored(workspace: Path) -> None:
    first = load(workspace)
    entries = list((workspace / "pybuild-out/cache/loading").rglob("*.pickle"))
    assert entries
    for index, entry in enumerate(entries):
        entry.write_bytes(b"" if index % 2 else b"not a pickle \x80\x04")
    again = load(workspace)
    assert main(again) == ["@//app", "@//lib", "@//tools"]
    assert again.targets == first.targets


def test_the_cache_can_be_switched_off(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load(workspace)
    monkeypatch.setenv("PYBUILD_LOAD_CACHE", "0")
    assert main(load(workspace)) == ["@//app", "@//lib", "@//tools"]


# Analysis -----------------------------------------------------------------------------------------


def test_an_unchanged_workspace_is_not_analyzed_again(workspace: Path) -> None:
    first, actions = analyze(workspace)
    second, again = analyze(workspace)
    assert (first.analyzed, second.analyzed) == (1, 0)
    assert second.evaluated == []
    assert again == actions


def test_a_changed_flag_analyzes_again(workspace: Path) -> None:
    _, fast = analyze(workspace)
    second, optimized = analyze(workspace, "opt")
    assert second.analyzed == 1
    assert optimized != fast
    assert any("--codegen=opt-level=3" in action.argv for action in optimized)
    third, again = analyze(workspace)
    assert third.analyzed == 0  # the fastbuild entry is still there
    assert again == fast


def test_a_changed_bzl_file_analyzes_again(workspace: Path) -> None:
    analyze(workspace)
    (workspace / "tools/names.bzl").write_text('NAME = "z_"\n')
    again, actions = analyze(workspace)
    assert again.analyzed == 1
    assert any("--crate-name=z_app" in action.argv for action in actions)


def test_a_build_file_edit_that_declares_the_same_targets_keeps_the_analysis(workspace: Path) -> None:
    # Bazel's change pruning: a comment or a reformatting changes how the BUILD file spells its targets.
    _, actions = analyze(workspace)
    build = workspace / "lib/BUILD.bazel"
    build.write_text("# This comment moves the target down a line.\n" + build.read_text().replace(", ", ",\n    "))
    again, same = analyze(workspace)
    assert again.evaluated == ["@//lib"]
    assert again.analyzed == 0
    assert same == actions


def test_a_build_file_edit_that_changes_a_target_analyzes_again(workspace: Path) -> None:
    analyze(workspace)
    build = workspace / "lib/BUILD.bazel"
    build.write_text(build.read_text().replace('name = "lib",', 'name = "lib", rustc_flags = ["-Dwarnings"],'))
    again, actions = analyze(workspace)
    assert again.analyzed == 1
    assert any("-Dwarnings" in action.argv for action in actions)


def full_analysis(root: Path, monkeypatch: pytest.MonkeyPatch, pattern: str = "//...") -> AnalysisResult:
    with monkeypatch.context() as without_cache:
        without_cache.setenv("PYBUILD_LOAD_CACHE", "0")
        return analyze_result(root, pattern=pattern)[1]


def same_analysis(one: AnalysisResult, other: AnalysisResult) -> bool:
    return _described(one) == _described(other)


def _described(result: AnalysisResult) -> tuple[object, ...]:
    graph = result.actions
    edges = dict(graph.predecessors()), {node: graph.successors(node) for node, _ in graph.items()}
    return graph.actions, result.summaries, result.closure, edges


OTHER = {
    "other/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "other", srcs = ["other.rs"])\n',
    "other/other.rs": "",
}


FLAG = ("srcs =", 'rustc_flags = ["-Dwarnings"], srcs =')


@pytest.mark.parametrize(
    ("edited", "edit", "fresh", "changed_argv"),
    [
        ("app", FLAG, {"//app:app"}, "-Dwarnings"),
        ("lib", FLAG, {"//lib:lib", "//app:app"}, "-Dwarnings"),
        # What app's actions read of lib changes too: app must be analyzed again.
        (
            "lib",
            ('name = "lib",', 'name = "lib", crate_name = "core2",'),
            {"//lib:lib", "//app:app"},
            "--crate-name=core2",
        ),
    ],
)
def test_an_edit_analyzes_again_only_the_targets_that_depend_on_what_changed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edited: str,
    edit: tuple[str, str],
    fresh: set[str],
    changed_argv: str,
) -> None:
    # As Bazel invalidates configured targets along reverse dependencies; the rest of the result is kept.
    root = write_workspace(tmp_path, WORKSPACE | OTHER)
    first = analyze_result(root)[1].actions.token
    build = root / edited / "BUILD.bazel"
    build.write_text(build.read_text().replace(*edit))
    again, result = analyze_result(root)
    assert again.analyzed == 1
    assert again.fresh == fresh
    assert {a.owner for a in result.actions.actions if changed_argv in a.argv} == {f"//{edited}:{edited}"}
    assert same_analysis(result, full_analysis(root, monkeypatch))
    # What execution trusts by token: the kept actions keep the one of the analysis that made them.
    made = {a.owner: result.actions.token_of(a.primary_output) for a in result.actions.actions}
    assert {owner for owner, token in made.items() if token == first} == made.keys() - fresh
    assert {owner for owner, token in made.items() if token == result.actions.token} == made.keys() & fresh


def test_an_edit_of_one_target_leaves_the_others_of_its_package_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package's library and its test: editing the test must not analyze again what depends on the library.
    test = 'rust_test(name = "lib_test", crate = ":lib")\n'
    files = WORKSPACE | {"lib/BUILD.bazel": WORKSPACE["lib/BUILD.bazel"] + test}
    root = write_workspace(tmp_path, files)
    analyze(root)
    build = root / "lib/BUILD.bazel"
    build.write_text(build.read_text().replace('crate = ":lib")', 'crate = ":lib", rustc_flags = ["-Dwarnings"])'))
    again, result = analyze_result(root)
    assert again.fresh == {"//lib:lib_test"}
    assert same_analysis(result, full_analysis(root, monkeypatch))


@pytest.mark.parametrize(
    ("edited", "text"),
    [
        # The dependency's own declaration.
        ("lib/BUILD.bazel", RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = glob(["src/**/*.rs"]))\n'),
        # A source file another package reads: what its package exports, not a target's declaration.
        ("other/BUILD.bazel", OTHER["other/BUILD.bazel"]),
    ],
)
def test_a_dependency_made_invisible_since_the_last_analysis_is_an_error(
    tmp_path: Path, edited: str, text: str
) -> None:
    exported = OTHER["other/BUILD.bazel"] + 'exports_files(["other.rs"], visibility = ["//visibility:public"])\n'
    reading = 'srcs = ["app.rs"], compile_data = ["//other:other.rs"]'
    app = WORKSPACE["app/BUILD.bazel"].replace('srcs = ["app.rs"]', reading)
    root = write_workspace(tmp_path, WORKSPACE | OTHER | {"other/BUILD.bazel": exported, "app/BUILD.bazel": app})
    analyze(root)
    (root / edited).write_text(text)
    with pytest.raises(PybuildError, match="is not visible from"):
        analyze(root)


def test_targets_added_and_removed_since_the_last_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_workspace(tmp_path, WORKSPACE | OTHER)
    analyze(root)
    (root / "other/BUILD.bazel").write_text(RULES_RUST_LOAD + 'rust_library(name = "renamed", srcs = ["other.rs"])\n')
    (root / "new").mkdir()
    (root / "new/BUILD.bazel").write_text(RULES_RUST_LOAD + 'rust_library(name = "new", srcs = ["other.rs"])\n')
    (root / "new/other.rs").write_text("")
    again, result = analyze_result(root)
    assert again.fresh == {"//other:renamed", "//new:new", "//new:other.rs"}
    assert {a.owner for a in result.actions.actions} == {"//lib:lib", "//app:app", "//other:renamed", "//new:new"}
    assert same_analysis(result, full_analysis(root, monkeypatch))


def test_asking_for_other_targets_starts_from_the_last_analysis_and_reads_only_their_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_workspace(tmp_path, WORKSPACE | OTHER)
    analyze(root)
    again, result = analyze_result(root, pattern="//app")
    assert (again.analyzed, again.fresh) == (1, set())
    assert again.read == {"app", "lib"}  # not "other" nor "tools", which the last analysis read
    assert same_analysis(result, full_analysis(root, monkeypatch, "//app"))


def test_a_removed_source_file_is_an_error_again(workspace: Path) -> None:
    analyze(workspace)
    (workspace / "app/app.rs").unlink()
    with pytest.raises(PybuildError, match=re.escape("no such target '//app:app.rs'")):
        analyze(workspace)


def test_corrupt_analysis_entries_are_ignored(workspace: Path) -> None:
    _, actions = analyze(workspace)
    for entry in (workspace / "pybuild-out/cache/loading/analysis").glob("*.pickle"):
        entry.write_bytes(entry.read_bytes()[:100])
    again, rebuilt = analyze(workspace)
    assert again.analyzed == 1
    assert rebuilt == actions


# Toolchain detection ------------------------------------------------------------------------------


@pytest.fixture
def fake_rustc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A rustc that is never run: detect() is counted and answers from a sysroot made in tmp_path."""
    sysroot = tmp_path / "sysroot"
    for name in ("bin/rustc", "lib/librustc_driver.so", "lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd.rlib"):
        (sysroot / name).parent.mkdir(parents=True, exist_ok=True)
        (sysroot / name).write_text(name)
    calls: list[int] = []

    def detect() -> local_rust.LocalRustc:
        calls.append(1)
        return local_rust.LocalRustc(sysroot / "bin/rustc", sysroot, "x86_64-unknown-linux-gnu", "1.80.0", "abc")

    monkeypatch.setattr(local_rust, "detect", detect)
    monkeypatch.setattr(local_rust, "find_rustc", lambda: sysroot / "bin/rustc")
    monkeypatch.chdir(tmp_path)
    yield calls


def test_detection_is_reused_until_the_toolchain_changes(tmp_path: Path, fake_rustc: list[int]) -> None:
    repository = tmp_path / "external/local_rust"
    local_rust.write_repository(repository)
    text = (repository / "BUILD.bazel").read_text()
    local_rust.write_repository(repository)
    assert len(fake_rustc) == 1
    assert (repository / "BUILD.bazel").read_text() == text
    (tmp_path / "sysroot/lib/rustlib/x86_64-unknown-linux-gnu/lib/libcore.rlib").write_text("new")
    local_rust.write_repository(repository)
    assert len(fake_rustc) == 2
    assert "libcore.rlib" in (repository / "BUILD.bazel").read_text()


def test_a_rust_toolchain_file_detects_again(tmp_path: Path, fake_rustc: list[int]) -> None:
    repository = tmp_path / "external/local_rust"
    local_rust.write_repository(repository)
    (tmp_path / "rust-toolchain.toml").write_text('[toolchain]\nchannel = "nightly"\n')
    local_rust.write_repository(repository)
    assert len(fake_rustc) == 2


def test_a_changed_rustup_variable_detects_again(
    tmp_path: Path, fake_rustc: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "external/local_rust"
    local_rust.write_repository(repository)
    monkeypatch.setenv("RUSTUP_TOOLCHAIN", "nightly")
    local_rust.write_repository(repository)
    assert len(fake_rustc) == 2


def test_a_corrupt_detection_record_is_ignored(tmp_path: Path, fake_rustc: list[int]) -> None:
    repository = tmp_path / "external/local_rust"
    local_rust.write_repository(repository)
    (tmp_path / "external/.local_rust.detected.json").write_text('{"format": 1, "situation"')
    local_rust.write_repository(repository)
    assert len(fake_rustc) == 2


# The cached-actions check of execution ----------------------------------------------------------


def _copy(name: str, source: str) -> Action:
    return Action("Copy", f"//p:{name}", ("cp", source, f"out/{name}.txt"), (f"out/{name}.txt",), (source,))


class Executed:
    """Actions run by hand the way execution runs them (key, outputs stored, cache entry recorded), producers
    first: each writes its input's text in capitals. By default one, reading in.txt."""

    def __init__(self, root: Path, token: str | None = None, actions: tuple[Action, ...] = ()) -> None:
        self.token = token
        self.root = root
        self.state = root / "cache"
        self.actions = actions or (_copy("out", "in.txt"),)
        for action in self.actions:
            for source in action.inputs:
                if not source.startswith("out/"):
                    (root / source).write_text(f"text of {source}")
        (root / "out").mkdir()
        self.run()

    def graph(self, token: str | None) -> ActionGraph:
        graph = ActionGraph(self.actions)
        graph.link()
        graph.token = token
        return graph

    def run(self) -> None:
        cache, digests = ActionCache(self.state), FileDigests(str(self.root))
        outcomes = []
        for action in self.graph(self.token).topological_order():
            output = self.root / action.primary_output
            output.write_text((self.root / action.inputs[0]).read_text().upper())
            record = OutputRecord(action.primary_output, cache.store_file(output), False)
            cache.record(action_key(action, digests.digest), ActionResult((record,), 0.5))
            outcomes.append(Outcome(action, True, duration=0.5))
        checker = UpToDate(self.state, digests, cache)
        checker.remember(self.graph(self.token), ScheduleResult(outcomes=outcomes))

    def vouched(self, token: str | None = None) -> list[str]:
        """The primary outputs of the actions the check finds cached with their outputs in place."""
        checker = UpToDate(self.state, FileDigests(str(self.root)), ActionCache(self.state))
        result = checker.check(self.graph(token or self.token), 0.0)
        assert all(outcome.cached for outcome in result.outcomes)
        return sorted(outcome.action.primary_output for outcome in result.outcomes)


def test_an_unchanged_build_is_all_cached(tmp_path: Path) -> None:
    executed = Executed(tmp_path)
    checker = UpToDate(executed.state, FileDigests(str(executed.root)), ActionCache(executed.state))
    result = checker.check(executed.graph(None), 0.0)
    assert [(o.action.primary_output, o.cached, o.duration) for o in result.outcomes] == [("out/out.txt", True, 0.5)]
    assert checker.answered


def test_a_changed_input_is_not_cached(tmp_path: Path) -> None:
    executed = Executed(tmp_path)
    (tmp_path / "in.txt").write_text("changed")
    assert executed.vouched() == []


@pytest.mark.parametrize("b_first", [False, True])
def test_after_a_changed_input_its_dependents_are_left_to_execution_and_the_rest_is_cached(
    tmp_path: Path, b_first: bool
) -> None:
    """b reads a's output: a changed input of a leaves out a and b, even though b's own inputs have not
    changed yet (a's run may change them), and also when the graph lists b before a. c, beside them, is
    still cached."""
    a, b, c = _copy("a", "in.txt"), _copy("b", "out/a.txt"), _copy("c", "other.txt")
    executed = Executed(tmp_path, actions=(b, a, c) if b_first else (a, b, c))
    assert executed.vouched() == ["out/a.txt", "out/b.txt", "out/c.txt"]
    (tmp_path / "in.txt").write_text("changed")
    assert executed.vouched() == ["out/c.txt"]


def test_a_changed_or_missing_output_is_left_to_execution(tmp_path: Path) -> None:
    executed = Executed(tmp_path)
    (tmp_path / "out/out.txt").unlink()
    (tmp_path / "out/out.txt").write_text("tampered")
    assert executed.vouched() == []
    (tmp_path / "out/out.txt").unlink()
    assert executed.vouched() == []


def test_a_removed_cache_entry_is_not_cached(tmp_path: Path) -> None:
    executed = Executed(tmp_path)
    for entry in (executed.state / "ac").rglob("*.json"):
        entry.unlink()
    assert executed.vouched() == []


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The primary outputs of the actions whose keys the check computes (once set up)."""
    import action_graph.uptodate

    computed: list[str] = []

    def counted(action: Action, digest: Callable[[str], str | None]) -> str:
        computed.append(action.primary_output)
        return action_key(action, digest)

    monkeypatch.setattr(action_graph.uptodate, "action_key", counted)
    return computed


def test_a_graph_from_the_load_cache_is_trusted_by_its_token(tmp_path: Path, computed: list[str]) -> None:
    executed = Executed(tmp_path, token="t1")
    computed.clear()
    assert executed.vouched() == ["out/out.txt"]
    assert computed == []
    assert executed.vouched(token="t2") == ["out/out.txt"]  # another analysis: keys computed afresh, still cached
    assert executed.vouched(token="t2") == ["out/out.txt"]  # ... and remembered
    assert computed == ["out/out.txt"]
    (tmp_path / "in.txt").write_text("changed")
    assert executed.vouched(token="t2") == []


def test_actions_an_analysis_kept_are_trusted_by_the_token_of_the_one_that_made_them(
    tmp_path: Path, computed: list[str]
) -> None:
    executed = Executed(tmp_path, token="t1", actions=(_copy("a", "in.txt"), _copy("b", "in.txt")))
    computed.clear()
    graph = executed.graph("t2")
    graph.earlier_tokens = {"out/a.txt": "t1"}  # an incremental analysis kept a and made b again
    checker = UpToDate(executed.state, FileDigests(str(tmp_path)), ActionCache(executed.state))
    assert sorted(o.action.primary_output for o in checker.check(graph, 0.0).outcomes) == ["out/a.txt", "out/b.txt"]
    assert computed == ["out/b.txt"]


def test_a_corrupt_state_file_is_ignored(tmp_path: Path) -> None:
    executed = Executed(tmp_path)
    (executed.state / STATE_FILE).write_bytes(b"\x80\x05garbage")
    assert executed.vouched() == []
    executed.run()
    assert executed.vouched() == ["out/out.txt"]


# Fast paths agree with the plain computations they replace -----------------------------------------


def small_graph() -> ActionGraph:
    def action(out: str, *inputs: str) -> Action:
        return Action("Rustc", f"//p:{out}", ("rustc", *inputs), (f"bin/{out}",), inputs)

    graph = ActionGraph(
        [action("a"), action("b", "bin/a"), action("c", "bin/a", "src.rs"), action("d", "bin/b", "bin/c"), action("e")]
    )
    graph.link()
    return graph


def networkx_graph(graph: ActionGraph) -> nx.DiGraph:
    """The graph made the plain way: an edge from the producer of each input, nodes and edges in action order."""
    reference = nx.DiGraph()
    reference.add_nodes_from(node for node, _ in graph.items())
    for node, action in graph.items():
        producers = [graph.producer(path) for path in action.inputs]
        reference.add_edges_from((p.primary_output, node) for p in producers if p is not None)
    return reference


def test_subgraph_and_edges_match_networkx() -> None:
    graph = small_graph()
    reference = networkx_graph(graph)
    assert graph.edges() == list(reference.edges)
    sub = graph.subgraph_for(["bin/d"])
    expected = {"bin/d", *nx.ancestors(reference, "bin/d")}
    assert {node for node, _ in sub.items()} == expected
    assert sorted(sub.edges()) == sorted(reference.subgraph(expected).edges)
    assert sub.dependencies(sub.producer("bin/d")) == [graph.producer("bin/b"), graph.producer("bin/c")]


def test_topological_order_is_networkx_lexicographical_order() -> None:
    graph = ActionGraph(
        [
            Action("Rustc", "//p:z", ("rustc",), ("bin/z",), ("bin/m",)),
            Action("Rustc", "//p:m", ("rustc",), ("bin/m",)),
            Action("Rustc", "//p:b", ("rustc",), ("bin/b",), ("bin/m",)),
            Action("Rustc", "//p:a", ("rustc",), ("bin/a",), ("bin/z", "bin/b")),
            Action("Rustc", "//p:c", ("rustc",), ("bin/c",)),
        ]
    )
    graph.link()
    order = [action.primary_output for action in graph.topological_order()]
    assert order == ["bin/c", "bin/m", "bin/b", "bin/z", "bin/a"]
    assert order == list(nx.lexicographical_topological_sort(networkx_graph(graph)))


def test_critical_paths_and_cycles() -> None:
    graph = small_graph()
    remaining = graph.remaining_critical_path(lambda a: 1.0)
    assert remaining == {"bin/a": 3.0, "bin/b": 2.0, "bin/c": 2.0, "bin/d": 1.0, "bin/e": 1.0}
    total, path = graph.critical_path(lambda a: 1.0)
    assert (total, [a.primary_output for a in path]) == (3.0, ["bin/a", "bin/c", "bin/d"])
    cyclic = ActionGraph([Action("X", "//p:x", (), ("x",), ("y",)), Action("Y", "//p:y", (), ("y",), ("x",))])
    cyclic.link()
    with pytest.raises(nx.NetworkXUnfeasible):
        cyclic.remaining_critical_path(lambda a: 1.0)
    with pytest.raises(nx.NetworkXUnfeasible):
        cyclic.topological_order()


def test_file_digests_are_saved_only_when_changed(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("one")
    saved = tmp_path / "digests.json"
    first = FileDigests(str(tmp_path))
    first.digest("f")
    first.save(str(saved))
    again = FileDigests(str(tmp_path))
    again.load(str(saved))
    saved.write_text(saved.read_text() + " ")  # a rewrite would drop the space
    again.digest("f")
    again.save(str(saved))
    assert saved.read_text().endswith(" ")
    (tmp_path / "f").write_text("two")
    again.digest("f")
    again.save(str(saved))
    assert not saved.read_text().endswith(" ")


def reference_find_packages(root: Path, ignored: set[str]) -> list[str]:
    """find_packages as it was: os.walk, sorted, symlinks not followed."""
    import os

    from pybuild.globbing import is_ignored_dir

    found = []
    for directory, dirnames, filenames in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        relative = "" if relative == "." else relative
        kept = [d for d in dirnames if not is_ignored_dir(d) and (f"{relative}/{d}" if relative else d) not in ignored]
        dirnames[:] = sorted(kept)
        if any(name in filenames for name in ("BUILD.bazel", "BUILD")):
            found.append(relative)
    return found


def test_one_walk_finds_packages_and_lists_their_files(tmp_path: Path) -> None:
    from pybuild.globbing import package_files, walk_packages

    files = [
        "BUILD.bazel",
        "a.txt",
        "src/x.rs",
        "src/deep/y.rs",
        "sub/BUILD",
        "sub/z.rs",
        "sub/more/w.rs",
        ".git/config",
        "pybuild-out/junk",
        "skipped/BUILD.bazel",
        "skipped/s.rs",
        "zz/BUILD.bazel",
        "zz/q/r.rs",
        "other/BUILD.bazel",
        "other/real/file.rs",
        "outside/target.rs",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "other/linked").symlink_to(tmp_path / "outside")  # package_files follows it, the walk not
    (tmp_path / "zz/q/BUILD").symlink_to(tmp_path / "missing")  # a broken BUILD: a package for the walk only
    ignored = {"skipped"}
    walk = walk_packages(str(tmp_path), "", ignored)
    assert walk.packages == reference_find_packages(tmp_path, ignored)
    # Left to package_files: "" holds an ignored directory, "other" a symlink, "zz" a doubtful subpackage.
    assert sorted(walk.listings) == ["sub", "zz/q"]
    for package, listed in walk.listings.items():
        assert listed == package_files(tmp_path / package), package
    # Every directory entered, with the package it belongs to (None above the first BUILD file).
    for directory, package in walk.directories.items():
        assert (tmp_path / directory).is_dir() and not (tmp_path / directory).is_symlink()
        assert package == max((p for p in walk.packages if (directory + "/").startswith(p + "/") or not p), key=len)
