"""The no-op record: `pybuild build` answers from it only while nothing the last build used has changed.

Builds run in this process (cli.main), so a spy on commands.build_command tells whether a build was
answered from the record (no call) or done in full. The racy margin is 0 here, so that files these
tests wrote a moment ago count as old enough to be recorded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rust_workspaces import Result, build_stats
from workspace_helpers import RULES_RUST_LOAD, run_in_process, write_workspace

from pybuild import commands, noop_record

CONCAT_RULE = """\
def _impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + "_tool.sh")
    ctx.actions.write(script, "#!/bin/sh\\nout=$1\\nshift\\ncat \\"$@\\" > \\"$out\\"\\n", is_executable = True)
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run(
        outputs = [out],
        inputs = ctx.files.srcs,
        executable = script,
        arguments = [out.path] + [f.path for f in ctx.files.srcs],
        mnemonic = "Concat",
        progress_message = "Concatenating %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]))]

concat = rule(implementation = _impl, attrs = {"srcs": attr.label_list(allow_files = True)})
"""

WORKSPACE = {
    "defs.bzl": CONCAT_RULE,
    "text/BUILD.bazel": 'load("//:defs.bzl", "concat")\n\nconcat(name = "all", srcs = glob(["*.txt"]))\n',
    "text/a.txt": "alpha\n",
    "text/b.txt": "beta\n",
    "other/BUILD.bazel": 'load("//:defs.bzl", "concat")\n\nconcat(name = "one", srcs = ["one.txt"])\n',
    "other/one.txt": "one\n",
}


class Builds:
    """Runs `pybuild build ARGS` in-process and tells whether each was answered from the record."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.monkeypatch, self.capsys = root, monkeypatch, capsys
        self.full = 0
        original = commands.build_command

        def spy(*args: object, **kwargs: object) -> int:
            self.full += 1
            return original(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(commands, "build_command", spy)

    def build(self, *args: str) -> tuple[bool, str]:
        """(answered from the record, stderr) of a successful build."""
        before = self.full
        code, _, err = run_in_process(self.monkeypatch, self.capsys, self.root, "build", *(args or ("//...",)))
        assert code == 0, err
        return self.full == before, err

    def settle(self, *args: str) -> None:
        """Build until the record answers: a build that executed nothing records what it used."""
        self.build(*args)
        self.build(*args)
        answered, err = self.build(*args)
        assert answered, err


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Builds:
    monkeypatch.setattr(noop_record, "RACY_SECONDS", 0.0)
    monkeypatch.delenv("PYBUILD_LOAD_CACHE", raising=False)
    return Builds(write_workspace(tmp_path / "ws", WORKSPACE), monkeypatch, capsys)


def output(builds: Builds, name: str) -> str:
    return next((builds.root / "pybuild-out").glob(f"*/bin/{name}")).read_text()


def test_an_unchanged_workspace_is_answered_with_the_same_summary(builds: Builds) -> None:
    builds.settle()
    answered, err = builds.build()
    assert answered
    assert err.strip().splitlines()[-1].startswith("Build OK: 0 executed, 4 cached, 4 total actions in ")


def test_an_edited_source_file_builds_again(builds: Builds) -> None:
    builds.settle()
    (builds.root / "text/a.txt").write_text("ALPHA\n")
    answered, err = builds.build()
    assert not answered and build_stats_of(err) == (1, 3)
    assert output(builds, "text/all.txt") == "ALPHA\nbeta\n"


def test_a_file_a_glob_now_matches_builds_again(builds: Builds) -> None:
    builds.settle()
    (builds.root / "text/c.txt").write_text("gamma\n")
    answered, _ = builds.build()
    assert not answered
    assert output(builds, "text/all.txt") == "alpha\nbeta\ngamma\n"


def test_an_edited_build_or_bzl_file_builds_again(builds: Builds) -> None:
    builds.settle()
    build_file = builds.root / "other/BUILD.bazel"
    build_file.write_text(build_file.read_text() + 'concat(name = "two", srcs = ["one.txt"])\n')
    answered, err = builds.build()
    assert not answered and build_stats_of(err) == (2, 4)
    builds.settle()
    bzl = builds.root / "defs.bzl"
    bzl.write_text(bzl.read_text().replace("srcs]", "srcs] * 2"))  # every file twice
    answered, err = builds.build()
    assert not answered and build_stats_of(err) == (3, 3)
    assert output(builds, "text/all.txt") == "alpha\nbeta\n" * 2


def test_a_new_subpackage_builds_again(builds: Builds) -> None:
    builds.settle()
    write_workspace(builds.root, {"text/sub/BUILD.bazel": "", "text/sub/x.txt": "x\n"}, module=False)
    assert not builds.build()[0]


def test_a_root_entry_removed_while_the_build_runs_is_noticed(builds: Builds) -> None:
    """The root's listing is recorded as it was when the build started (its identity is not recorded:
    every build replaces the pybuild-bin link there)."""
    write_workspace(builds.root, {"BUILD.bazel": 'load("//:defs.bzl", "concat")\n\nconcat(name = "top")\n'})
    builds.settle()
    shutil.rmtree(builds.root / "pybuild-out/cache/noop")  # a full build that executes nothing
    write = noop_record.write

    def remove_then_write(*args: object) -> None:
        (builds.root / "BUILD.bazel").unlink()  # after loading read it
        write(*args)  # type: ignore[arg-type]

    builds.monkeypatch.setattr(noop_record, "write", remove_then_write)
    assert not builds.build()[0]
    builds.monkeypatch.setattr(noop_record, "write", write)
    answered, err = builds.build()
    assert not answered and build_stats_of(err) == (0, 4)


def test_a_changed_or_missing_output_builds_again(builds: Builds) -> None:
    builds.settle()
    produced = next((builds.root / "pybuild-out").glob("*/bin/other/one.txt"))
    produced.unlink()
    assert not builds.build()[0]
    assert produced.read_text() == "one\n"
    builds.settle()
    produced.unlink()
    produced.write_text("tampered\n")
    assert not builds.build()[0]
    assert produced.read_text() == "one\n"


def test_a_removed_cache_entry_or_blob_builds_again(builds: Builds) -> None:
    builds.settle()
    for entry in (builds.root / "pybuild-out/cache/ac").rglob("*.json"):
        entry.unlink()
    assert not builds.build()[0]
    builds.settle()
    blobs = [p for p in (builds.root / "pybuild-out/cache/cas").rglob("*") if p.is_file()]
    for blob in blobs:
        blob.unlink()
    assert not builds.build()[0]


def test_a_changed_or_added_code_file_builds_again(builds: Builds, tmp_path: Path) -> None:
    code = write_workspace(tmp_path / "code", {"a.py": "A = 1\n"}, module=False)
    builds.monkeypatch.setattr(noop_record, "code_files", lambda: [code / "a.py"])
    builds.settle()
    (code / "a.py").write_text("A = 2\n")
    assert not builds.build()[0]
    builds.settle()
    (code / "b.py").write_text("B = 1\n")
    assert not builds.build()[0]


def test_other_flags_or_targets_are_other_records(builds: Builds) -> None:
    builds.settle()
    assert not builds.build("//other:one")[0]
    assert not builds.build("//...", "-c", "opt")[0]
    assert builds.build()[0]


def test_a_report_flag_always_builds(builds: Builds, tmp_path: Path) -> None:
    builds.settle()
    log = tmp_path / "log.json"
    for _ in range(3):
        assert not builds.build("//...", f"--execution_log_json_file={log}")[0]
    assert log.is_file()


def test_the_load_cache_switch_turns_it_off(builds: Builds) -> None:
    builds.settle()
    builds.monkeypatch.setenv("PYBUILD_LOAD_CACHE", "0")
    assert not builds.build()[0]


def test_files_changed_since_the_build_started_are_not_recorded(builds: Builds) -> None:
    builds.monkeypatch.setattr(noop_record, "RACY_SECONDS", 3600.0)  # every file counts as just written
    for _ in range(3):
        assert not builds.build()[0]
    assert not list((builds.root / "pybuild-out/cache").glob("noop/*"))


def test_a_corrupt_record_is_ignored(builds: Builds) -> None:
    builds.settle()
    for record in (builds.root / "pybuild-out/cache/noop").iterdir():
        record.write_bytes(b"\x80\x05garbage")
    assert not builds.build()[0]
    builds.settle()


def test_a_symlinked_directory_in_a_repository_is_never_recorded(builds: Builds) -> None:
    os.symlink(builds.root / "other", builds.root / "text/linked")
    for _ in range(3):
        assert not builds.build()[0]


def test_a_rust_source_edit_and_a_toolchain_variable_build_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(noop_record, "RACY_SECONDS", 0.0)
    files = {
        "lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "lib", srcs = ["lib.rs"])\n',
        "lib/lib.rs": "pub fn answer() -> u32 {\n    41\n}\n",
    }
    builds = Builds(write_workspace(tmp_path / "ws", files), monkeypatch, capsys)
    builds.settle("//...", "-j2")
    (builds.root / "lib/lib.rs").write_text("pub fn answer() -> u32 {\n    42\n}\n")
    answered, err = builds.build("//...", "-j2")
    assert not answered and build_stats_of(err)[0] > 0
    builds.settle("//...", "-j2")
    monkeypatch.setenv("RUSTUP_TOOLCHAIN_UNUSED_BY_TEST", "1")  # a variable that may choose another rustc
    assert not builds.build("//...", "-j2")[0]


def build_stats_of(err: str) -> tuple[int, int]:
    """(executed, cached) of a build's closing line."""
    stats = build_stats(Result(0, "", err))
    return stats.executed, stats.cached
