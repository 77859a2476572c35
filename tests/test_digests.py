"""Digests of files outside the workspace (the toolchain) are kept for the whole machine: a new output base
(after `pybuild clean`) or another checkout does not hash them again, and a changed file is hashed anew."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from action_graph import digests
from action_graph.digests import FileDigests, MachineDigests


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files actually read to hash them, in order."""
    calls: list[str] = []
    real_hash = digests.hash_file

    def counting(path: str) -> str:
        calls.append(os.path.realpath(path))
        return real_hash(path)

    monkeypatch.setattr(digests, "hash_file", counting)
    return calls


def _workspace(tmp_path: Path, name: str, toolchain: Path) -> Path:
    """A workspace whose external repository links to a toolchain directory elsewhere, as @local_rust does."""
    root = tmp_path / name
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (root / "pybuild-out" / "external").mkdir(parents=True)
    (root / "pybuild-out" / "external" / "sysroot").symlink_to(toolchain)
    return root


def test_toolchain_files_are_hashed_once_per_machine_and_workspace_files_per_workspace(
    tmp_path: Path, hashed: list[str]
) -> None:
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    (toolchain / "librustc_driver.so").write_bytes(b"\x7fELF" + b"x" * 4096)
    store = str(tmp_path / "cache" / "digests.json")
    rustc_lib, source = "pybuild-out/external/sysroot/librustc_driver.so", "src/lib.rs"

    first = FileDigests(str(_workspace(tmp_path, "one", toolchain)), MachineDigests(store))
    expected = first.digest(rustc_lib)
    first.digest(source)
    first.machine.save()
    assert hashed == [str(toolchain / "librustc_driver.so"), str(tmp_path / "one" / "src" / "lib.rs")]

    # A fresh output base or a second checkout: only its own source is hashed.
    second = FileDigests(str(_workspace(tmp_path, "two", toolchain)), MachineDigests(store))
    assert second.digest(rustc_lib) == expected
    second.digest(source)
    assert hashed[2:] == [str(tmp_path / "two" / "src" / "lib.rs")]

    # A new toolchain file under the same name is hashed again.
    (toolchain / "librustc_driver.so").write_bytes(b"\x7fELF" + b"y" * 4096)
    third = FileDigests(str(tmp_path / "two"), MachineDigests(store))
    assert third.digest(rustc_lib) != expected
    assert hashed[-1] == str(toolchain / "librustc_driver.so")


def test_an_unreadable_or_corrupt_store_means_hashing_not_failing(tmp_path: Path, hashed: list[str]) -> None:
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    (toolchain / "rustc").write_bytes(b"rustc")
    store = tmp_path / "digests.json"
    store.write_text("{not json")
    files = FileDigests(str(_workspace(tmp_path, "ws", toolchain)), MachineDigests(str(store)))
    assert files.digest("pybuild-out/external/sysroot/rustc")
    assert len(hashed) == 1
