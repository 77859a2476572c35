"""Where sandboxes are made: --sandbox_base, a private directory on the RAM disk, or the output base."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pybuild import sandbox_location
from pybuild.errors import UsageError
from pybuild.sandbox_location import remove_ram_disk_sandboxes, sandbox_base


@pytest.fixture
def output_base(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "pybuild-out"


@pytest.fixture
def ram_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in RAM disk that always has room."""
    directory = tmp_path / "shm"
    directory.mkdir()
    monkeypatch.setattr(sandbox_location, "RAM_DISK_MIN_FREE", 0)
    return directory


def test_the_ram_disk_gets_a_private_directory_per_user_and_output_base(output_base: Path, ram_disk: Path) -> None:
    base = sandbox_base(output_base, "", ram_disk)
    assert base.parent == ram_disk / f"pybuild-{os.getuid()}"
    assert os.stat(base.parent).st_mode & 0o777 == 0o700
    other = sandbox_base(output_base.parent.parent / "other" / "pybuild-out", "", ram_disk)
    assert other.parent == base.parent and other != base


def test_without_a_usable_ram_disk_sandboxes_stay_in_the_output_base(output_base: Path, tmp_path: Path) -> None:
    assert sandbox_base(output_base, "", tmp_path / "missing") == output_base / "sandbox"


def test_a_ram_disk_without_room_is_not_used(
    output_base: Path, ram_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_location, "RAM_DISK_MIN_FREE", 1 << 62)
    assert sandbox_base(output_base, "", ram_disk) == output_base / "sandbox"


def test_a_user_directory_others_can_enter_is_not_trusted(output_base: Path, ram_disk: Path) -> None:
    planted = ram_disk / f"pybuild-{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    assert sandbox_base(output_base, "", ram_disk) == output_base / "sandbox"
    with pytest.raises(UsageError, match=f"--sandbox_base={ram_disk}"):
        sandbox_base(output_base, str(ram_disk), ram_disk)


def test_a_planted_symlink_is_not_followed(output_base: Path, ram_disk: Path, tmp_path: Path) -> None:
    (ram_disk / f"pybuild-{os.getuid()}").symlink_to(tmp_path)
    assert sandbox_base(output_base, "", ram_disk) == output_base / "sandbox"


def test_an_explicit_base_is_used_even_without_much_room(output_base: Path, tmp_path: Path) -> None:
    explicit = tmp_path / "sandboxes"
    assert sandbox_base(output_base, str(explicit), tmp_path / "missing").parent == explicit / f"pybuild-{os.getuid()}"


def test_clean_removes_the_ram_disk_sandboxes_of_its_output_base_only(output_base: Path, ram_disk: Path) -> None:
    mine = sandbox_base(output_base, "", ram_disk)
    theirs = sandbox_base(output_base.parent / "other-out", "", ram_disk)
    for base in (mine, theirs):
        (base / "1").mkdir(parents=True)
    remove_ram_disk_sandboxes(output_base, ram_disk)
    assert not mine.exists() and theirs.exists()
