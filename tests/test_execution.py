"""Execution end to end: the real rustc through `python -m pybuild`, and the binaries it produces.

Each test builds in its own copy under tmp_path (never in the repository's examples/). Builds use -j2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rust_workspaces import (
    CHAIN_A_RDEPS,
    EXAMPLE_TESTS,
    HOLLOW,
    MODES,
    SECRET_TEXT,
    build_stats,
    copy_examples,
    custom_rule_workspace,
    executed_owners,
    expected_app_output,
    failed,
    feature_workspace,
    find_record,
    heavy_chain,
    include_str_workspace,
    keep_going_workspace,
    light_and_heavy_workspace,
    ok,
    private_fn_chain,
    private_fn_source,
    pybuild,
    read_log,
    svh_workspace,
)
from workspace_helpers import main_repo_lines, write_workspace

J2 = "-j2"

APP_ARGS = ("--count", "5", "--name", "Bazel", "foo", "bar baz")


# 1. The example monorepo in every pipelining mode -----------------------------------------------------

_APP_OUTPUTS: dict[str, tuple[str, str]] = {}


@pytest.mark.parametrize("mode", list(MODES))
def test_examples_build_run_and_test_in_every_pipelining_mode(tmp_path: Path, mode: str) -> None:
    root = copy_examples(tmp_path / "examples")
    flags = MODES[mode]
    log = tmp_path / "log.json"

    built = ok(pybuild(root, "build", *flags, J2, f"--execution_log_json_file={log}", "//..."))
    stats = build_stats(built)
    assert stats.cached == 0 and stats.executed == stats.total > 0, built.last_err_line
    records = read_log(log)
    assert all(r["ok"] and not r["cached"] for r in records)
    metadata_outputs = [r["primary_output"] for r in records if r["mnemonic"] == "RustcMetadata"]
    # The flags really selected the mode: what the metadata actions write.
    if mode == "none":
        assert metadata_outputs == []
    elif mode == "rmeta":
        assert metadata_outputs and all(p.endswith(".rmeta") and "/_pipelined/" in p for p in metadata_outputs)
    else:
        assert metadata_outputs and all(p.endswith("_meta.rlib") and "/_meta/" in p for p in metadata_outputs)

    plain = ok(pybuild(root, "run", *flags, J2, "//app")).out
    with_args = ok(pybuild(root, "run", *flags, J2, "//app", "--", *APP_ARGS)).out
    assert "chain: chain_a -> chain_b -> chain_c" in plain.splitlines()
    assert "args: 0" in plain.splitlines()
    assert plain == expected_app_output()
    assert with_args.splitlines()[-3:] == ["args: 2", "  [0] foo", "  [1] bar baz"]
    assert with_args == expected_app_output(count=5, name="Bazel", rest=("foo", "bar baz"))
    for other, outputs in _APP_OUTPUTS.items():  # the modes run so far print exactly the same
        assert (plain, with_args) == outputs, f"{mode} and {other} disagree"
    _APP_OUTPUTS[mode] = (plain, with_args)

    first = ok(pybuild(root, "test", *flags, J2, "//..."))
    assert "Executed 5 out of 5 tests: 5 tests pass, 0 fail." in first.out, first.describe()
    for label in EXAMPLE_TESTS:
        assert any(line.startswith(label) and line.rstrip().split()[-3] == "PASSED" for line in first.out.splitlines())
    second = ok(pybuild(root, "test", *flags, J2, "//..."))
    assert build_stats(second).executed == 0
    assert "Executed 0 out of 5 tests: 5 tests pass, 0 fail." in second.out, second.describe()
    cached_lines = [line for line in second.out.splitlines() if "(cached) PASSED" in line]
    assert sorted(line.split()[0] for line in cached_lines) == sorted(EXAMPLE_TESTS)


# 2. Incrementality: no-op rebuilds and the reverse dependencies of an edit -----------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_edit_of_leaf_library_reruns_exactly_its_reverse_dependencies(tmp_path: Path, mode: str) -> None:
    root = copy_examples(tmp_path / "examples")
    flags = MODES[mode]
    ok(pybuild(root, "build", *flags, J2, "//..."))

    noop_log = tmp_path / "noop.json"
    noop = ok(pybuild(root, "build", *flags, J2, f"--execution_log_json_file={noop_log}", "//..."))
    assert " 0 executed," in noop.last_err_line
    assert build_stats(noop).cached == build_stats(noop).total
    assert all(r["cached"] and r["ok"] for r in read_log(noop_log))

    # The expected set is what the query language says depends on //lib/chain_a.
    rdeps = ok(pybuild(root, "query", "rdeps(//..., //lib/chain_a)"))
    assert set(main_repo_lines(rdeps.out)) == CHAIN_A_RDEPS

    source = root / "lib/chain_a/src/math.rs"
    source.write_text(source.read_text(encoding="utf-8") + "// edited by test_execution\n", encoding="utf-8")
    edit_log = tmp_path / "edit.json"
    edit = ok(pybuild(root, "build", *flags, J2, f"--execution_log_json_file={edit_log}", "//..."))
    records = read_log(edit_log)
    assert all(r["ok"] for r in records)
    assert executed_owners(records) == CHAIN_A_RDEPS
    for record in records:  # every action of a dependent reran; every other action came from the cache
        assert record["cached"] == (record["owner"] not in CHAIN_A_RDEPS), record
    stats = build_stats(edit)
    assert stats.executed == sum(not r["cached"] for r in records)
    assert stats.cached == sum(r["cached"] for r in records)
    # Only they went to the scheduler (`[done/total]` lines count its actions): the cache hits around them
    # were answered before it started.
    assert {int(total) for total in re.findall(r"^\[\d+/(\d+)\] ", edit.err, re.MULTILINE)} == {stats.executed}

    # A new modification time without new content is not a change.
    now = time.time() + 5
    os.utime(source, (now, now))
    assert " 0 executed," in ok(pybuild(root, "build", *flags, J2, "//...")).last_err_line
    assert ok(pybuild(root, "run", *flags, J2, "//app")).out == expected_app_output()


def test_a_build_file_edit_reruns_the_actions_of_the_targets_it_changes(tmp_path: Path) -> None:
    # Analysis after the edit starts from the last one (only //app is analyzed anew), and execution trusts
    # the actions it kept: one action runs, and the binary runs with the new declaration.
    root = copy_examples(tmp_path / "examples")
    ok(pybuild(root, "build", HOLLOW, J2, "//..."))
    build_file = root / "app/BUILD.bazel"
    text = build_file.read_text(encoding="utf-8")
    build_file.write_text(text + "# A comment changes no target.\n", encoding="utf-8")
    assert " 0 executed," in ok(pybuild(root, "build", HOLLOW, J2, "//...")).last_err_line

    build_file.write_text(text.replace('edition = "2021",', 'edition = "2021",\n    rustc_env = {"EDIT": "1"},'))
    log = tmp_path / "edit.json"
    ok(pybuild(root, "build", HOLLOW, J2, f"--execution_log_json_file={log}", "//..."))
    records = read_log(log)
    assert executed_owners(records) == {"//app:app"}
    assert [r["mnemonic"] for r in records if not r["cached"]] == ["Rustc"]
    assert ok(pybuild(root, "run", HOLLOW, J2, "//app")).out == expected_app_output()


# 3. Hollow rlibs and a private function body -----------------------------------------------------------


@dataclass
class PrivateEdit:
    before: list[dict[str, Any]]  # execution log of the first build
    after: list[dict[str, Any]]  # execution log after editing a's private function
    hollow_a: tuple[bytes, bytes]  # a's hollow rlib before and after
    hollow_b: tuple[bytes, bytes]
    source: tuple[bytes, bytes]  # a/lib.rs before and after
    app_output: tuple[str, str]


def _only(root: Path, pattern: str) -> Path:
    matches = sorted(root.glob(pattern))
    assert len(matches) == 1, f"{pattern}: {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def private_edit(tmp_path_factory: pytest.TempPathFactory) -> PrivateEdit:
    """Build a <- b <- c <- //app in hollow mode, change the constant in a's private helper, build again."""
    tmp = tmp_path_factory.mktemp("private_edit")
    root = write_workspace(tmp / "ws", private_fn_chain(41))
    logs = (tmp / "before.json", tmp / "after.json")
    hollow_a = "pybuild-out/*/bin/a/_meta/*_meta.rlib"
    hollow_b = "pybuild-out/*/bin/b/_meta/*_meta.rlib"

    ok(pybuild(root, "build", HOLLOW, J2, f"--execution_log_json_file={logs[0]}", "//..."))
    before_a, before_b = _only(root, hollow_a).read_bytes(), _only(root, hollow_b).read_bytes()
    output_before = ok(pybuild(root, "run", HOLLOW, J2, "//app")).out
    source_before = (root / "a/lib.rs").read_bytes()

    (root / "a/lib.rs").write_text(private_fn_source(43), encoding="utf-8")
    source_after = (root / "a/lib.rs").read_bytes()
    assert len(source_after) == len(source_before) and source_after.count(b"\n") == source_before.count(b"\n")
    ok(pybuild(root, "build", HOLLOW, J2, f"--execution_log_json_file={logs[1]}", "//..."))
    after_a, after_b = _only(root, hollow_a).read_bytes(), _only(root, hollow_b).read_bytes()
    output_after = ok(pybuild(root, "run", HOLLOW, J2, "//app")).out
    return PrivateEdit(
        read_log(logs[0]),
        read_log(logs[1]),
        (before_a, after_a),
        (before_b, after_b),
        (source_before, source_after),
        (output_before, output_after),
    )


def _executed(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["owner"], r["mnemonic"]) for r in records if not r["cached"]}


def _differing_runs(old: bytes, new: bytes, gap: int = 3) -> list[tuple[int, int]]:
    """[start, end) ranges where two equally long byte strings differ; runs closer than `gap` merge."""
    runs: list[list[int]] = []
    for index, (x, y) in enumerate(zip(old, new, strict=True)):
        if x != y:
            if runs and index - runs[-1][1] < gap:
                runs[-1][1] = index + 1
            else:
                runs.append([index, index + 1])
    return [(start, end) for start, end in runs]


def test_private_fn_edit_changes_hollow_rlib_through_svh_and_source_hash(private_edit: PrivateEdit) -> None:
    """What does happen: the crate and the link rerun with the right result, and why the cutoff fails."""
    assert private_edit.app_output == ("quad: 168\n", "quad: 176\n")
    assert all(r["ok"] and not r["cached"] for r in private_edit.before)
    executed = _executed(private_edit.after)
    assert {("//a:a", "RustcMetadata"), ("//a:a", "Rustc"), ("//app:app", "Rustc")} <= executed

    old_a, new_a = private_edit.hollow_a
    assert len(old_a) == len(new_a) and old_a != new_a, "a's hollow rlib is byte-identical after the edit"
    runs = _differing_runs(old_a, new_a)
    # (1) The metadata embeds a hash of every source file (MD5 by default on this rustc).
    old_src, new_src = private_edit.source
    algorithms = [name for name in ("md5", "sha1", "sha256") if hashlib.new(name, new_src).digest() in new_a]
    assert algorithms, "no hash of a/lib.rs found in a's hollow rlib"
    assert hashlib.new(algorithms[0], old_src).digest() in old_a
    source_hash_at = new_a.index(hashlib.new(algorithms[0], new_src).digest())
    # (2) The other differing bytes are a's crate hash (SVH). b's hollow rlib records the SVH of every
    # crate it was compiled against, so b's hollow rlib changes although b/lib.rs did not.
    svh_runs = [(s, e) for s, e in runs if not (source_hash_at <= s < source_hash_at + 32) and e - s >= 8]
    assert svh_runs, f"only the source hash differs: {runs}"
    old_b, new_b = private_edit.hollow_b
    assert old_b != new_b
    assert any(new_a[s:e] in new_b and new_a[s:e] not in old_b for s, e in svh_runs)
    assert not find_record(private_edit.after, "//b:b", "RustcMetadata")["cached"]


# 4. Why both actions of a library get RUSTC_BOOTSTRAP: the SVH -----------------------------------------


def _replay(workspace: Path, exec_root: Path, actions: list[dict[str, Any]], edit=None) -> dict[str, Any]:
    """Run aquery's actions by hand in a fresh execution root holding only their declared source inputs.

    `edit(action, argv, env)` may change an action's argv and env. Returns {(owner, mnemonic): completed process}.
    """
    generated = {path for action in actions for path in action["outputs"]}
    for action in actions:
        for path in action["inputs"]:
            link = exec_root / path
            if path in generated or os.path.lexists(link):
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.realpath(workspace / path), link)
    results = {}
    for action in actions:
        assert action["content"] is None, action
        argv, env = list(action["argv"]), dict(action["env"])
        if edit is not None:
            edit(action, argv, env)
        for output in action["outputs"]:
            (exec_root / output).parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(argv, cwd=exec_root, env=env, capture_output=True, text=True, check=False)
        results[(action["owner"], action["mnemonic"])] = done
        if done.returncode != 0:
            break
    return results


def _edit_a_full(drop_bootstrap: bool, drop_allow_features: bool):
    """An editor for `_replay`: takes RUSTC_BOOTSTRAP and/or -Zallow-features= from a's full Rustc only."""

    def edit(action: dict[str, Any], argv: list[str], env: dict[str, str]) -> None:
        if action["owner"] == "//a:a" and action["mnemonic"] == "Rustc":
            if drop_bootstrap:
                del env["RUSTC_BOOTSTRAP"]
            if drop_allow_features:
                argv.remove("-Zallow-features=")

    return edit


def _assert_link_fails_with_e0460(results: dict[Any, Any], count: int) -> None:
    assert len(results) == count
    for key, done in results.items():
        if key != ("//app:app", "Rustc"):
            assert done.returncode == 0, (key, done.stderr)
    link = results[("//app:app", "Rustc")]
    assert link.returncode != 0
    assert "error[E0460]" in link.stderr and "crate `a`" in link.stderr, link.stderr


@pytest.mark.parametrize("a_opts_in", [False, True], ids=["default", "a_opts_in"])
def test_rustc_bootstrap_on_only_one_side_breaks_the_link_with_e0460(tmp_path: Path, a_opts_in: bool) -> None:
    info = ok(pybuild(write_workspace(tmp_path / "probe", {"MODULE.bazel": 'module(name = "p")\n'}), "info"))
    if "channel: nightly" in info.out:
        pytest.skip("on a nightly toolchain RUSTC_BOOTSTRAP does not change the crate hash")
    root = write_workspace(tmp_path / "ws", svh_workspace(a_opts_in))
    # The real wiring links and runs.
    assert ok(pybuild(root, "run", HOLLOW, J2, "//app")).out == "value: 42 doubled: 84\n"

    query = ok(pybuild(root, "aquery", "//app", "--output=json", HOLLOW))
    actions = json.loads(query.out)["actions"]
    by_key = {(a["owner"], a["mnemonic"]): a for a in actions}
    assert len(by_key) == len(actions) == 5
    assert set(by_key) == {(o, m) for o in ("//a:a", "//b:b") for m in ("RustcMetadata", "Rustc")} | {
        ("//app:app", "Rustc")
    }
    meta, full = by_key[("//a:a", "RustcMetadata")], by_key[("//a:a", "Rustc")]
    assert meta["env"]["RUSTC_BOOTSTRAP"] == full["env"]["RUSTC_BOOTSTRAP"] == "1"
    assert "-Zno-codegen" in meta["argv"] and "-Zno-codegen" not in full["argv"]
    assert ("-Zallow-features=" in meta["argv"]) == ("-Zallow-features=" in full["argv"]) == (not a_opts_in)
    assert any(arg.endswith("_meta.rlib") for arg in by_key[("//b:b", "Rustc")]["argv"] if arg.startswith("--extern"))
    assert "process_wrapper" in actions[0]["argv"][0]

    # Exactly as given: everything links, and the binary runs.
    as_given = _replay(root, tmp_path / "exec_as_given", actions)
    assert all(done.returncode == 0 for done in as_given.values()), {k: v.stderr for k, v in as_given.items()}
    assert len(as_given) == len(actions)
    app = tmp_path / "exec_as_given" / by_key[("//app:app", "Rustc")]["outputs"][0]
    assert subprocess.run([app], capture_output=True, text=True, check=True).stdout == "value: 42 doubled: 84\n"

    if not a_opts_in:
        # Stable rustc refuses -Zallow-features= without RUSTC_BOOTSTRAP, so that flag has to go too ...
        refused = _replay(root, tmp_path / "exec_refused", actions, _edit_a_full(True, False))
        assert refused[("//a:a", "Rustc")].returncode != 0
        assert "only accepted on the nightly compiler" in refused[("//a:a", "Rustc")].stderr
        # ... but -Zallow-features= enters the crate hash by itself (which is why the a_opts_in case,
        # without that flag, is the one that isolates RUSTC_BOOTSTRAP).
        allow_only = _replay(root, tmp_path / "exec_allow_only", actions, _edit_a_full(False, True))
        _assert_link_fails_with_e0460(allow_only, len(actions))

    # RUSTC_BOOTSTRAP only on the hollow side: a's full rlib has another SVH than b was compiled against.
    one_sided = _replay(root, tmp_path / "exec_one_sided", actions, _edit_a_full(True, not a_opts_in))
    _assert_link_fails_with_e0460(one_sided, len(actions))


# 5. Unstable features in user code under the hollow flag -----------------------------------------------


def test_feature_attribute_needs_explicit_opt_in_under_hollow_flag(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "plain", feature_workspace(opt_in=False))
    result = failed(pybuild(root, "build", HOLLOW, J2, "//..."))
    assert "error[E0725]" in result.err and "never_type" in result.err, result.err
    assert "ERROR: //feat:feat: Rustc" in result.err or "ERROR: //feat:feat: RustcMetadata" in result.err
    assert result.last_err_line.startswith("Build FAILED:")

    opted_in = write_workspace(tmp_path / "opted_in", feature_workspace(opt_in=True))
    log = tmp_path / "log.json"
    ok(pybuild(opted_in, "build", HOLLOW, J2, f"--execution_log_json_file={log}", "//..."))
    mnemonics = {(r["owner"], r["mnemonic"]) for r in read_log(log)}
    assert ("//feat:feat", "RustcMetadata") in mnemonics  # the hollow rlib of feat was used by //user
    assert ok(pybuild(opted_in, "run", HOLLOW, J2, "//app")).out == "never: 7\n"


# 6. The sandbox holds only declared inputs -------------------------------------------------------------


def test_undeclared_include_str_fails_in_sandbox_and_works_with_compile_data_or_local(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", include_str_workspace(compile_data=False))
    result = failed(pybuild(root, "build", J2, "//..."))
    assert "ERROR: //sec:sec: Rustc" in result.err, result.err
    assert "data/secret.txt" in result.err and "couldn't read" in result.err, result.err

    # Bazel's local strategy runs in the execution root, where the undeclared file is visible.
    local = ok(pybuild(root, "run", "--spawn_strategy=local", J2, "//app"))
    assert local.out == f"secret: {SECRET_TEXT}\n"

    write_workspace(root, {"sec/BUILD.bazel": include_str_workspace(compile_data=True)["sec/BUILD.bazel"]})
    log = tmp_path / "log.json"
    declared = ok(pybuild(root, "run", "--spawn_strategy=sandboxed", J2, f"--execution_log_json_file={log}", "//app"))
    assert declared.out == f"secret: {SECRET_TEXT}\n"
    assert not find_record(read_log(log), "//sec:sec", "Rustc")["cached"]  # the declared input is new


# 7. SIGKILL in the middle of a build ---------------------------------------------------------------------


def _rlibs(root: Path) -> list[Path]:
    """Every rlib the build of //... makes (a metadata output with no consumer is not made)."""
    actions = json.loads(ok(pybuild(root, "aquery", "//...", "--output=json")).out)["actions"]
    return [root / output for action in actions for output in action["outputs"] if output.endswith(".rlib")]


# When to kill: once the first rlib exists, half of them, three in four (links still to come). Counted in
# outputs, not seconds: the whole build takes 0.8 s on a fast machine, so a fixed delay could outlast it.
@pytest.mark.parametrize("share", [0.0, 0.5, 0.75], ids=["at_first_rlib", "halfway", "three_quarters"])
def test_build_recovers_after_sigkill(tmp_path: Path, share: float) -> None:
    root = copy_examples(tmp_path / "examples")
    rlibs = _rlibs(root)
    wanted = max(1, int(share * len(rlibs)))
    repo_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "pybuild", "build", "//...", J2],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while sum(path.exists() for path in rlibs) < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the build finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    rebuilt = ok(pybuild(root, "build", J2, "//..."))
    stats = build_stats(rebuilt)
    assert stats.executed + stats.cached == stats.total
    assert ok(pybuild(root, "run", J2, "//app")).out == expected_app_output()
    again = ok(pybuild(root, "run", J2, "//app", "--", *APP_ARGS))
    assert again.out == expected_app_output(count=5, name="Bazel", rest=("foo", "bar baz"))
    assert " 0 executed," in again.last_err_line


# 8. Pipelining overlap ----------------------------------------------------------------------------------


def test_dependent_metadata_overlaps_heavy_codegen_in_hollow_mode(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", heavy_chain(instantiations=60))
    log = tmp_path / "log.json"
    ok(pybuild(root, "build", HOLLOW, J2, f"--execution_log_json_file={log}", "//..."))
    records = read_log(log)
    a_meta = find_record(records, "//a:a", "RustcMetadata")
    a_full = find_record(records, "//a:a", "Rustc")
    b_meta = find_record(records, "//b:b", "RustcMetadata")
    assert a_meta["primary_output"].endswith("_meta.rlib")
    assert a_full["duration"] >= 0.5, f"a's codegen is too light to show overlap: {a_full}"
    assert b_meta["start"] >= a_meta["end"]  # b's metadata needs a's hollow rlib ...
    assert b_meta["start"] < a_full["end"], f"no overlap: {b_meta} vs {a_full}"  # ... not a's codegen
    assert b_meta["slot"] != a_full["slot"]


def test_the_first_build_after_clean_starts_the_crate_that_took_longest(tmp_path: Path) -> None:
    """With no duration recorded both compiles are estimated alike and the first by name, a, runs first. The
    durations a build records outlive `pybuild clean`, so on one slot the next clean build starts z."""
    root = write_workspace(tmp_path / "ws", light_and_heavy_workspace())
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    build = ("build", "-j1", *MODES["none"], "//...")
    ok(pybuild(root, *build, f"--execution_log_json_file={first}"))
    ok(pybuild(root, "clean"))
    assert not (root / "pybuild-out" / "cache").exists()
    assert build_stats(ok(pybuild(root, *build, f"--execution_log_json_file={second}"))).executed == 2

    def started(log: Path) -> list[str]:
        return [record["owner"] for record in sorted(read_log(log), key=lambda record: record["start"])]

    assert started(first) == ["//a:a", "//z:z"]
    assert started(second) == ["//z:z", "//a:a"]
    ok(pybuild(root, "clean", "--expunge"))
    assert not (root / "pybuild-out").exists()


# 9. .pybuildrc -----------------------------------------------------------------------------------------


def test_pybuildrc_jobs_and_keep_going_are_honored_and_bad_lines_named(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", keep_going_workspace())
    (root / ".pybuildrc").write_text("build --jobs=1\ncommon --keep_going\n", encoding="utf-8")
    log = tmp_path / "log.json"
    result = failed(pybuild(root, "build", f"--execution_log_json_file={log}", "//..."))
    assert result.last_err_line.startswith("Build FAILED:")
    records = read_log(log)
    assert {r["slot"] for r in records} == {1}  # --jobs=1
    goods = {f"//good{i}:good{i}" for i in range(1, 4)}
    assert goods <= {r["owner"] for r in records if r["ok"]}  # --keep_going: built past the failure
    assert any(r["owner"] == "//bad:bad" and not r["ok"] for r in records)

    # The command line overrides the rc file, which shows the rc options were what mattered above.
    stop_log = tmp_path / "stop.json"
    failed(pybuild(root, "build", "--nokeep_going", f"--execution_log_json_file={stop_log}", "//..."))
    stopped = read_log(stop_log)
    # Only the broken crate ran (its metadata and full compile are one rustc process in this mode).
    assert {r["owner"] for r in stopped} == {"//bad:bad"}, stopped
    two_log = tmp_path / "two.json"
    failed(pybuild(root, "build", "--jobs=2", f"--execution_log_json_file={two_log}", "//..."))
    assert {r["slot"] for r in read_log(two_log)} == {1, 2}

    (root / ".pybuildrc").write_text("build --frobnicate\n", encoding="utf-8")
    bad = failed(pybuild(root, "build", "//..."), code=2)
    assert ".pybuildrc:1" in bad.err and "--frobnicate" in bad.err, bad.err


def test_pybuildrc_build_options_do_not_break_aquery_and_info(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", keep_going_workspace())
    (root / ".pybuildrc").write_text("build --jobs=1 --spawn_strategy=local\n", encoding="utf-8")
    ok(pybuild(root, "aquery", "//good1"))
    ok(pybuild(root, "info"))


# 10. Missing declared outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["sandboxed", "local"])
def test_missing_declared_output_is_an_error_naming_the_action(tmp_path: Path, strategy: str) -> None:
    root = write_workspace(tmp_path / "ws", custom_rule_workspace())
    result = failed(pybuild(root, "build", f"--spawn_strategy={strategy}", J2, "//gen:lazy"))
    assert "ERROR: //gen:lazy: GenText failed" in result.err, result.err
    assert "did not create its declared output(s): pybuild-out/k8-fastbuild/bin/gen/lazy.txt" in result.err
    assert result.last_err_line.startswith("Build FAILED: 1 failed")

    ok(pybuild(root, "build", f"--spawn_strategy={strategy}", J2, "//gen:diligent"))
    assert (root / "pybuild-out/k8-fastbuild/bin/gen/diligent.txt").read_text(encoding="utf-8") == "generated\n"


# Found on the way ---------------------------------------------------------------------------------------


def test_compile_error_is_reported_with_diagnostics_and_exit_1(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", keep_going_workspace())
    result = failed(pybuild(root, "build", J2, "//bad"))
    assert "error[E0308]: mismatched types" in result.err, result.err
    assert "ERROR: //bad:bad: Rustc failed: exit code 1" in result.err, result.err
    assert result.last_err_line.startswith("Build FAILED:")


def test_run_accepts_flags_between_target_and_program_arguments(tmp_path: Path) -> None:
    """As in Bazel, options may come between the target and `--` (failed with 'unrecognized arguments'
    before 466bfb6)."""
    root = copy_examples(tmp_path / "examples")
    result = ok(pybuild(root, "run", "//app", "--pipelined_compilation=false", J2, "--", *APP_ARGS))
    assert result.out == expected_app_output(count=5, name="Bazel", rest=("foo", "bar baz"))


def test_same_size_edit_with_preserved_mtime_is_rebuilt(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", svh_workspace(a_opts_in=False))
    assert ok(pybuild(root, "run", J2, "//app")).out == "value: 42 doubled: 84\n"
    source = root / "a/lib.rs"
    before = source.stat()
    text = source.read_text(encoding="utf-8")
    source.write_text(text.replace("42", "24"), encoding="utf-8")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    assert ok(pybuild(root, "run", J2, "//app")).out == "value: 24 doubled: 48\n"
