"""The loading snapshot (pybuild/loading_snapshot.py): a warm `//...` takes packages from it after one stat of
each path it recorded, and any change that loading could see makes it load as before.

Each load is a fresh PackageLoader: nothing is shared with the previous one but what is on disk. The racy
margin is 0 here, so that files these tests have just written can be recorded; each edit waits a little
first, so that it lands on a later tick of the file system's clock than the snapshot it must invalidate.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from workspace_helpers import write_workspace

from pybuild import globbing, loading_snapshot
from pybuild.load_cache import LoadCache
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

DEFS_BZL = """\
def files_rule(name, **kwargs):
    native.filegroup(name = name, **kwargs)
"""

WORKSPACE = {
    "BUILD.bazel": 'filegroup(name = "top", srcs = glob(["*.txt"]))\n',
    "a.txt": "",
    "lib/BUILD.bazel": 'load("//tools:defs.bzl", "files_rule")\n'
    'files_rule(name = "lib", srcs = glob(["src/**/*.rs"]), visibility = ["//visibility:public"])\n',
    "lib/src/lib.rs": "",
    "lib/src/deep/more.rs": "",
    "group/app/BUILD.bazel": 'filegroup(name = "app", srcs = ["main.rs", "//lib"])\n',
    "group/app/main.rs": "",
    "tools/BUILD.bazel": "",
    "tools/defs.bzl": DEFS_BZL,
}


@dataclass
class Load:
    """One fresh load of //...: every rule target with its sources, and how it got them."""

    targets: dict[str, list[str]]
    walks: int  # directory walks made
    checked: int  # packages checked by content against the load cache (or evaluated)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(loading_snapshot, "RACY_SECONDS", 0.0)
    return write_workspace(tmp_path, WORKSPACE)


def load(root: Path, monkeypatch: pytest.MonkeyPatch, pattern: str = "//...") -> Load:
    counts = {"walks": 0, "checked": 0}
    walk, lookup = globbing.walk_packages, LoadCache.lookup_package

    def counted_walk(*args: object) -> globbing.PackageWalk:
        counts["walks"] += 1
        return walk(*args)  # type: ignore[arg-type]

    def counted_lookup(self: LoadCache, *args: object) -> object:
        counts["checked"] += 1
        return lookup(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(globbing, "walk_packages", counted_walk)
    monkeypatch.setattr(LoadCache, "lookup_package", counted_lookup)
    graph = TargetGraphLoader(PackageLoader(load_workspace(root)))
    labels = graph.resolve_patterns([pattern])
    targets = {str(label): sorted(map(str, graph.loader.target(label).dependency_labels)) for label in labels}
    return Load(targets, counts["walks"], counts["checked"])


def edit(path: Path, text: str) -> None:
    time.sleep(0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_warm_load_takes_everything_from_the_snapshot(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load(workspace, monkeypatch)
    assert (first.walks, first.checked) == (1, 4)
    assert (workspace / "pybuild-out/cache/loading/snapshot.pickle").is_file()
    second = load(workspace, monkeypatch)
    assert (second.walks, second.checked) == (0, 0)
    assert second.targets == first.targets
    assert first.targets["//lib:lib"] == ["//lib:src/deep/more.rs", "//lib:src/lib.rs"]


@pytest.mark.parametrize("path", ["lib/src/lib.rs", "lib/BUILD.bazel"])
def test_saving_a_file_by_renaming_a_copy_over_it_keeps_the_snapshot(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """As editors do: the directory's identity changes, its listing does not; the BUILD file's text is
    the same (a source file's may differ)."""
    load(workspace, monkeypatch)
    text = (workspace / path).read_text() if path.endswith(".bazel") else "pub fn f() {}\n"
    edit(workspace / (path + ".tmp"), text)
    os.replace(workspace / (path + ".tmp"), workspace / path)
    warm = load(workspace, monkeypatch)
    assert (warm.walks, warm.checked) == (0, 0)


@pytest.mark.parametrize(
    ("path", "text", "target", "expected", "walks_and_checks"),
    [
        # A BUILD file's text: that package alone is checked by content.
        (
            "group/app/BUILD.bazel",
            'filegroup(name = "app", srcs = ["main.rs"])\n',
            "//group/app:app",
            ["//group/app:main.rs"],
            (0, 1),
        ),
        # A file that a glob matches, two directories below the package: a directory listing changed, so
        # the walk is made again, and the package that owns the directory is checked.
        (
            "lib/src/deep/er/new.rs",
            "",
            "//lib:lib",
            ["//lib:src/deep/er/new.rs", "//lib:src/deep/more.rs", "//lib:src/lib.rs"],
            (1, 1),
        ),
        # A .bzl file that a BUILD file loads: the package that loads it is checked.
        (
            "tools/defs.bzl",
            DEFS_BZL.replace("**kwargs)", "srcs = [], **kwargs)").replace("name, **kw", "name, srcs, **kw"),
            "//lib:lib",
            [],
            (0, 1),
        ),
        # A file in the workspace root, which is compared by its listing: no snapshot at all.
        ("b.txt", "", "//:top", ["//:a.txt", "//:b.txt"], (1, 4)),
    ],
)
def test_what_loading_sees_changes_and_the_next_load_sees_it(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    text: str,
    target: str,
    expected: list[str],
    walks_and_checks: tuple[int, int],
) -> None:
    load(workspace, monkeypatch)
    edit(workspace / path, text)
    changed = load(workspace, monkeypatch)
    assert (changed.walks, changed.checked) == walks_and_checks
    assert changed.targets[target] == expected
    again = load(workspace, monkeypatch)
    assert (again.walks, again.checked, again.targets) == (0, 0, changed.targets)  # a new snapshot


def test_a_new_package_is_found(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load(workspace, monkeypatch)
    edit(workspace / "group/tool/BUILD.bazel", 'filegroup(name = "tool")\n')
    assert "//group/tool:tool" in load(workspace, monkeypatch).targets
    edit(workspace / ".bazelignore", "group/tool\n")
    assert "//group/tool:tool" not in load(workspace, monkeypatch).targets


def test_no_snapshot_of_files_written_just_now(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading_snapshot, "RACY_SECONDS", 3600.0)
    load(workspace, monkeypatch)
    assert not (workspace / "pybuild-out/cache/loading/snapshot.pickle").exists()
    assert load(workspace, monkeypatch).walks == 1


def test_a_damaged_snapshot_is_ignored(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load(workspace, monkeypatch)
    snapshot = workspace / "pybuild-out/cache/loading/snapshot.pickle"
    snapshot.write_bytes(snapshot.read_bytes()[:100])
    damaged = load(workspace, monkeypatch)
    assert (damaged.walks, damaged.checked, damaged.targets) == (1, 4, first.targets)


def test_walks_of_other_patterns_join_the_snapshot(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load(workspace, monkeypatch)
    below = load(workspace, monkeypatch, "//group/...")
    assert (below.walks, below.checked, list(below.targets)) == (1, 0, ["//group/app:app"])
    assert (load(workspace, monkeypatch, "//group/...").walks, load(workspace, monkeypatch).walks) == (0, 0)
