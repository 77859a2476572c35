"""Real third-party crates: the crates_demo workspace built from generated BUILD files, compared with Cargo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from debian_crates import cargo, copy_examples, require_debian_crates
from workspace_helpers import run_pybuild

MODES = {
    "unpipelined": ["--pipelined_compilation=false"],
    "rmeta": [],
    "hollow": ["--incompatible_use_unstable_no_codegen_for_pipelining"],
}
ARGUMENT_SETS = [
    [],
    ["--top", "2", "--pattern", "es"],
    ["--json", "--top", "1"],
    ["--version"],
    ["--top", "5", "--pattern", "(", "--json"],  # a bad pattern: an error, the same from both builds
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_debian_crates()
    return copy_examples(tmp_path_factory.mktemp("third_party") / "examples")


@pytest.fixture(scope="module")
def cargo_binary(workspace: Path) -> Path:
    target = workspace / "target"
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    subprocess.run([cargo(), "build", "--offline", "-j2", "-q"], cwd=workspace, env=env, check=True, timeout=900)
    return target / "debug" / "wordstat"


def _run(command: list[str], cwd: Path) -> tuple[int, str, str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def test_generated_build_files_are_up_to_date_and_stable(workspace: Path) -> None:
    committed = {p.name: p.read_bytes() for p in (workspace / "third_party" / "crates").iterdir()}
    for _ in range(2):
        code, _, err = run_pybuild(workspace, "crates", "generate", timeout=300)
        assert code == 0, err
        assert "wrote 0" in err and "removed 0" in err, err
    regenerated = {p.name: p.read_bytes() for p in (workspace / "third_party" / "crates").iterdir()}
    assert regenerated == committed


@pytest.mark.parametrize("mode", MODES)
def test_wordstat_prints_what_cargos_build_prints(workspace: Path, cargo_binary: Path, mode: str) -> None:
    code, _, err = run_pybuild(workspace, "build", "//crates_demo/...", "-j2", *MODES[mode], timeout=900)
    assert code == 0, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith("Build OK:")
    binary = workspace / "pybuild-bin" / "crates_demo" / "wordstat" / "wordstat"
    for arguments in ARGUMENT_SETS:
        ours = _run([str(binary), *arguments], workspace)
        theirs = _run([str(cargo_binary), *arguments], workspace)
        assert ours == theirs, f"wordstat {arguments}: pybuild {ours} != cargo {theirs}"


def test_library_unit_tests_run(workspace: Path) -> None:
    code, out, err = run_pybuild(workspace, "test", "//crates_demo/...", "-j2", timeout=900)
    assert code == 0, err[-3000:]
    assert "//crates_demo/textlib:textlib_test" in out and "PASSED" in out
    assert "1 tests pass, 0 fail" in out
