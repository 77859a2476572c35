"""Analysis forgets a target's providers once its last dependent is analyzed (pybuild/analysis.py,
_released_after_chunk): nothing a later target reads may be forgotten before it reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspace_helpers import write_workspace

from pybuild import analysis
from pybuild.analysis import Analysis, BuildConfig, _released_after_chunk
from pybuild.labels import parse_label
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

NAMES_BZL = """\
NamesInfo = provider(fields = ["names"])

def _impl(ctx):
    names = depset([ctx.label.name], transitive = [dep[NamesInfo].names for dep in ctx.attr.deps])
    listing = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(listing, " ".join(names.to_list()))
    return [NamesInfo(names = names), DefaultInfo(files = depset([listing]))]

names = rule(implementation = _impl, attrs = {"deps": attr.label_list()})
"""

# `far` is read by the first target and again by the last one, chunks later when a chunk is one target.
BUILD = """\
load(":names.bzl", "names")
names(name = "far")
names(name = "a", deps = [":far"])
names(name = "b", deps = [":a"])
names(name = "c", deps = [":b"])
names(name = "top", deps = [":c", ":far"])
names(name = "alone")
"""


def analyzed_contents(root: Path) -> dict[str, str]:
    graph = TargetGraphLoader(PackageLoader(load_workspace(root)))
    result = Analysis(graph, BuildConfig()).run(graph.resolve_patterns(["//pkg:all"]))
    return {action.owner: action.content for action in result.actions.actions}


@pytest.mark.parametrize("chunk_targets", [1, 2, 200])
def test_providers_outlive_chunks_until_their_last_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_targets: int
) -> None:
    monkeypatch.setenv("PYBUILD_LOAD_CACHE", "0")
    monkeypatch.setattr(analysis, "_CHUNK_TARGETS", chunk_targets)
    root = write_workspace(tmp_path, {"pkg/names.bzl": NAMES_BZL, "pkg/BUILD.bazel": BUILD})
    contents = analyzed_contents(root)
    assert contents["//pkg:top"] == "far a b c top"
    assert contents["//pkg:alone"] == "alone"


def test_a_target_is_released_with_the_chunk_of_its_last_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_CHUNK_TARGETS", 2)
    a, b, c, d, e = (parse_label(f"//p:{name}") for name in "abcde")
    released = _released_after_chunk([a, b, c, d, e], [(c, a), (e, a), (d, b), (d, b)])
    # a is read last by e (chunk 2); b by d (chunk 1); c, d and e by nothing later than their own chunk.
    assert {chunk: sorted(labels) for chunk, labels in released.items()} == {
        1: ["//p:b", "//p:c", "//p:d"],
        2: ["//p:a", "//p:e"],
    }
