"""Loading shared out among forked processes (--loading_phase_threads): the same packages, actions and
errors as loading in one process, with this process evaluating only its share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workspace_helpers import (
    NOTE_RULE,
    RULES_RUST_LOAD,
    assert_error,
    assert_ok,
    run_pybuild,
    run_script,
    write_workspace,
)

# With 2 processes: the first package and 120 more here, 119 in the forked copy (100 at least per process).
PACKAGES = 240
_PUBLIC = ', visibility = ["//visibility:public"]'


def _chain_of_packages(root: Path, broken: int | None = None) -> Path:
    """Package pNNN holds a library depending on that of the package before it; `broken` fails to load."""
    files = {}
    for index in range(PACKAGES):
        deps = f', deps = ["//p{index - 1:03d}:lib"]' if index else ""
        attrs = ', srcs = glob(["*.rs"])' if index != broken else ", srcs = 3"
        files[f"p{index:03d}/lib.rs"] = ""
        build = f'print("loading p{index:03d}")\nrust_library(name = "lib"{attrs}{deps}{_PUBLIC})\n'
        files[f"p{index:03d}/BUILD.bazel"] = RULES_RUST_LOAD + build
    # A rule that only the forked copy's share loads: its rule class comes back from the copy.
    last = f"p{PACKAGES - 1:03d}"
    files[f"{last}/defs.bzl"] = NOTE_RULE
    files[f"{last}/BUILD.bazel"] += 'load(":defs.bzl", "note")\nnote(name = "note", word = "forked")\n'
    return write_workspace(root, files)


@pytest.mark.parametrize("cache", ["0", "1"])
def test_forked_loading_gives_the_same_targets_and_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    monkeypatch.setenv("PYBUILD_LOAD_CACHE", cache)
    outputs = {}
    for threads in ("1", "2"):
        root = _chain_of_packages(tmp_path / threads)
        flag = f"--loading_phase_threads={threads}"
        query = run_pybuild(root, "query", "//...", "--output=label_kind", flag)
        actions = assert_ok(run_pybuild(root, "aquery", "//...", flag))
        outputs[threads] = (assert_ok(query), actions.replace(str(root), "<root>"), _printed(query[2]))
    assert outputs["1"] == outputs["2"]
    assert outputs["2"][0].count("rust_library rule //p") == PACKAGES
    assert "note rule //p239:note" in outputs["2"][0] and "made by forked" in outputs["2"][1]
    # What BUILD files print comes once each, in package order: the copy's held back until this process's share.
    assert outputs["2"][2] == [f"loading p{index:03d}" for index in range(PACKAGES)]


def _printed(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("loading p")]


def test_an_error_in_a_forked_share_is_reported_as_without_forks(tmp_path: Path) -> None:
    errors = {}
    for threads in ("1", "2"):
        root = _chain_of_packages(tmp_path / threads, broken=200)  # in the forked copy's share
        errors[threads] = assert_error(
            run_pybuild(root, "query", "//...", f"--loading_phase_threads={threads}"), "p200/BUILD.bazel:3"
        )
    assert errors["1"] == errors["2"]
    # Printed once up to the broken package: the copy hands back neither what came after it nor its print.
    assert _printed(errors["2"]) == [f"loading p{index:03d}" for index in range(201)]


# Loads //... twice, each time with a fresh loader of 2 processes, in a process of its own (this one may have
# threads, which forbid forking); prints the packages evaluated in that process, those the snapshot did not
# vouch for, and the labels, each time.
_COUNTING_LOADS = """
import json, os, sys
from pathlib import Path
from pybuild import loading_snapshot
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

loading_snapshot.RACY_SECONDS = 0.0  # record the files the test has just written
parent, evaluated, checked = os.getpid(), [], []
evaluate, check = PackageLoader._evaluate_package, PackageLoader._load_checked_package

def counted_evaluate(self, repo, name, *args):
    if os.getpid() == parent:
        evaluated.append(name)
    return evaluate(self, repo, name, *args)

def counted_check(self, repo, name):
    checked.append(name)
    return check(self, repo, name)

PackageLoader._evaluate_package, PackageLoader._load_checked_package = counted_evaluate, counted_check
for _ in range(2):
    packages = PackageLoader(load_workspace(Path(sys.argv[1])))
    packages.loading_processes = 2
    labels = sorted(map(str, TargetGraphLoader(packages).resolve_patterns(["//..."])))
    print(json.dumps([len(evaluated), len(checked), labels]))
    evaluated.clear()
    checked.clear()
"""


def test_this_process_evaluates_its_share_and_takes_the_rest_from_the_fork(tmp_path: Path) -> None:
    """Then the load cache and the loading snapshot hold every package, as after loading in one process."""
    done = run_script(_COUNTING_LOADS, str(_chain_of_packages(tmp_path / "ws")), env={"PYBUILD_LOAD_CACHE": "1"})
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    labels = sorted([f"//p{index:03d}:lib" for index in range(PACKAGES)] + ["//p239:note"])
    assert first == [121, 121, labels]  # the first and its share of 120 evaluated here; 119 in the copy
    assert second == [0, 0, labels]  # every package from the snapshot


_RULE_IDS = """
import sys
from pathlib import Path
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import TargetGraphLoader

packages = PackageLoader(load_workspace(Path(sys.argv[1])))
packages.loading_processes = 2
labels = TargetGraphLoader(packages).resolve_patterns(["//..."])
print(len({id(packages.target(label).rule_class) for label in labels if label.name == "lib"}))
"""


def test_packages_from_the_fork_use_this_process_s_rule_classes_with_the_cache_off(tmp_path: Path) -> None:
    """One rule class object per rule: analysis then loads and runs rust_library once, not once per process."""
    done = run_script(_RULE_IDS, str(_chain_of_packages(tmp_path / "ws")), env={"PYBUILD_LOAD_CACHE": "0"})
    assert done.stdout.strip() == "1"
