"""depset() as rules see it: to_list() order, empty depsets, depsets frozen with their .bzl file, and the
inputs of an action that gets depsets (flattened by the host, pybuild/depsets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspace_helpers import write_workspace

from action_graph.action import Action
from pybuild.analysis import Analysis, BuildConfig
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

# _FROZEN_* are made while the .bzl file loads, so they are frozen with its module before any rule runs.
DEPSETS_BZL = """\
_FROZEN_EMPTY = depset()
_FROZEN_WORDS = depset(["x", "y"], transitive = [depset(["w"])])

def _impl(ctx):
    listing = ctx.actions.declare_file(ctx.label.name + ".txt")
    stamp = ctx.actions.declare_file(ctx.label.name + ".stamp")
    empty = depset(transitive = [depset(), _FROZEN_EMPTY, depset([])])
    words = depset(["c"], transitive = [depset(["a", "b"]), depset(["b", "d"]), _FROZEN_WORDS, empty])
    ctx.actions.write(listing, " ".join(words.to_list()) + " | " + str(empty.to_list()) + str(_FROZEN_EMPTY.to_list()))
    files = depset([listing], transitive = [depset(ctx.files.srcs), empty])
    ctx.actions.run(
        outputs = [stamp],
        executable = "/bin/true",
        inputs = depset(transitive = [files, depset([listing]), empty]),
        tools = empty,
    )
    return [DefaultInfo(files = depset([stamp], transitive = [empty]))]

depsets_rule = rule(implementation = _impl, attrs = {"srcs": attr.label_list(allow_files = True)})
"""

WORKSPACE = {
    "pkg/depsets.bzl": DEPSETS_BZL,
    "pkg/BUILD.bazel": 'load(":depsets.bzl", "depsets_rule")\n'
    'depsets_rule(name = "t", srcs = ["one.txt", "two.txt"])\n',
    "pkg/one.txt": "",
    "pkg/two.txt": "",
}


@pytest.fixture
def actions(tmp_path: Path) -> dict[str, Action]:
    graph = TargetGraphLoader(PackageLoader(load_workspace(write_workspace(tmp_path, WORKSPACE))))
    result = Analysis(graph, BuildConfig()).run(graph.resolve_patterns(["//pkg:t"]))
    return {action.mnemonic: action for action in result.actions.actions}


def test_to_list_puts_children_first_then_direct_items_each_once(actions: dict[str, Action]) -> None:
    assert actions["FileWrite"].content == "a b d w x y c | [][]"


def test_action_inputs_from_depsets_are_flattened_in_order_without_repeats(actions: dict[str, Action]) -> None:
    listing = actions["FileWrite"].outputs[0]
    assert listing.endswith("/pkg/t.txt")
    assert actions["Action"].inputs == ("pkg/one.txt", "pkg/two.txt", listing)


TWIN_READERS_BZL = """\
def _impl(ctx):
    source = ctx.actions.declare_file("source.txt")
    ctx.actions.write(source, "text")
    for name in ("first", "second"):
        ctx.actions.run(
            outputs = [ctx.actions.declare_file(name + ".out")],
            executable = "/bin/true",
            inputs = depset([source], transitive = [depset(ctx.files.srcs)]),
            mnemonic = name,
        )
    return []

twin_readers = rule(implementation = _impl, attrs = {"srcs": attr.label_list(allow_files = True)})
"""


def test_actions_reading_alike_share_one_inputs_tuple_and_one_producers_tuple(tmp_path: Path) -> None:
    # A crate's metadata and full actions read the same files: one tuple each keeps memory and the load
    # cache's analysis entry small.
    files = {
        "pkg/twin.bzl": TWIN_READERS_BZL,
        "pkg/BUILD.bazel": 'load(":twin.bzl", "twin_readers")\ntwin_readers(name = "t", srcs = ["one.txt"])\n',
        "pkg/one.txt": "",
    }
    graph = TargetGraphLoader(PackageLoader(load_workspace(write_workspace(tmp_path, files))))
    actions = Analysis(graph, BuildConfig()).run(graph.resolve_patterns(["//pkg:t"])).actions
    first, second = (next(a for a in actions.actions if a.mnemonic == name) for name in ("first", "second"))
    assert first.inputs == ("pkg/one.txt", actions.producer(first.inputs[1]).outputs[0])
    assert first.inputs is second.inputs
    producers = actions.predecessors()
    assert producers[first.primary_output] == (first.inputs[1],)
    assert producers[first.primary_output] is producers[second.primary_output]


SOURCE_FILES_BZL = """\
def _impl(ctx):
    src = ctx.attr.src[DefaultInfo]
    ctx.actions.run(
        outputs = [ctx.actions.declare_file(ctx.label.name + ".out")],
        executable = "/bin/true",
        inputs = depset(ctx.files.extra, transitive = [src.files, src.runfiles.files]),
    )
    ctx.actions.write(ctx.actions.declare_file(ctx.label.name + ".txt"), repr([f.path for f in src.files.to_list()]))
    return []

source_reader = rule(implementation = _impl, attrs = {
    "src": attr.label(allow_single_file = True),
    "extra": attr.label_list(allow_files = True),
})
"""


def test_a_source_files_depsets_reach_action_inputs(tmp_path: Path) -> None:
    # The host makes a source file's depset node itself (its DefaultInfo files and runfiles share it);
    # a rule may still hand it to an action as a transitive depset.
    files = {
        "pkg/reader.bzl": SOURCE_FILES_BZL,
        "pkg/BUILD.bazel": 'load(":reader.bzl", "source_reader")\n'
        'source_reader(name = "t", src = "in.txt", extra = ["extra.txt"])\n',
        "pkg/in.txt": "",
        "pkg/extra.txt": "",
    }
    graph = TargetGraphLoader(PackageLoader(load_workspace(write_workspace(tmp_path, files))))
    actions = Analysis(graph, BuildConfig()).run(graph.resolve_patterns(["//pkg:t"])).actions.actions
    by_mnemonic = {action.mnemonic: action for action in actions}
    assert by_mnemonic["Action"].inputs == ("pkg/in.txt", "pkg/extra.txt")
    assert by_mnemonic["FileWrite"].content == '["pkg/in.txt"]'
