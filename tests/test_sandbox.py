"""The sandbox of a slot is reused between actions: each action still sees exactly its declared inputs."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from action_graph.action import Action
from action_graph.runner import ActionFailed, LocalRunner

# Lists every path the action can see in its working directory but its output directory, then does what
# the test asks.
_LIST = "find . -mindepth 1 -not -path './out*' | sort > out/listing.txt; "


def _action(script: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ("out/listing.txt",)) -> Action:
    return Action(
        mnemonic="Test",
        owner="//t:t",
        argv=("/bin/sh", "-c", _LIST + script),
        outputs=outputs,
        inputs=inputs,
        env=(("PATH", "/usr/bin:/bin"),),
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("src/a.rs", "src/b.rs", "src/deep/c.rs", "other/d.rs"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name, encoding="utf-8")
    return tmp_path


def _run(root: Path, action: Action, slot: int = 1) -> list[str]:
    runner = LocalRunner(root, root / "sandbox", sandboxed=True)
    result = runner.run(action, slot)
    assert result.exit_code == 0, result.output
    return (root / "out/listing.txt").read_text(encoding="utf-8").split()


def test_an_action_sees_only_its_inputs_after_another_action_used_the_slot(root: Path) -> None:
    first = _action("echo stray > src/stray.txt; mkdir -p junk/x; echo j > junk/x/y", ("src/a.rs", "src/deep/c.rs"))
    assert _run(root, first) == ["./src", "./src/a.rs", "./src/deep", "./src/deep/c.rs"]
    second = _action("cat src/b.rs other/d.rs > /dev/null", ("src/b.rs", "other/d.rs"))
    # Neither the first action's inputs, nor its stray files, nor its output, nor an empty src/deep remain.
    assert _run(root, second) == ["./other", "./other/d.rs", "./src", "./src/b.rs"]


def test_reused_links_point_at_the_real_files(root: Path) -> None:
    action = _action(
        "cat src/a.rs src/deep/c.rs > out/cat.txt", ("src/a.rs", "src/deep/c.rs"), ("out/listing.txt", "out/cat.txt")
    )
    _run(root, action)
    (root / "src/a.rs").write_text("changed", encoding="utf-8")
    _run(root, action)
    assert (root / "out/cat.txt").read_text(encoding="utf-8") == "changedsrc/deep/c.rs"


def test_a_link_the_previous_action_replaced_is_made_again(root: Path) -> None:
    _run(root, _action("rm src/a.rs; ln -s ../other/d.rs src/a.rs", ("src/a.rs",)))
    action = _action("cat src/a.rs > out/cat.txt", ("src/a.rs",), ("out/listing.txt", "out/cat.txt"))
    _run(root, action)
    assert (root / "out/cat.txt").read_text(encoding="utf-8") == "src/a.rs"


def test_a_failed_action_leaves_no_sandbox_and_its_outputs_do_not_reach_the_next(root: Path) -> None:
    runner = LocalRunner(root, root / "sandbox", sandboxed=True)
    failing = _action("echo half > out/half.txt; exit 3", ("src/a.rs",), ("out/listing.txt", "out/half.txt"))
    assert runner.run(failing, 1).exit_code == 3
    assert not (root / "sandbox/1").exists()
    assert not (root / "out/half.txt").exists()
    assert _run(root, _action("true", ("src/a.rs",))) == ["./src", "./src/a.rs"]


def test_a_missing_input_is_named(root: Path) -> None:
    runner = LocalRunner(root, root / "sandbox", sandboxed=True)
    with pytest.raises(ActionFailed, match=r"declared input 'src/nope\.rs' does not exist"):
        runner.run(_action("true", ("src/a.rs", "src/nope.rs")), 1)


def test_inputs_reached_through_symlinked_directories_link_to_the_real_file(root: Path) -> None:
    (root / "external").mkdir()
    os.symlink(root / "other", root / "external/repo")
    os.symlink("a.rs", root / "src/alias.rs")  # an input that is itself a symlink
    runner = LocalRunner(root, root / "sandbox", sandboxed=True)
    action = _action("true", ("external/repo/d.rs", "src/alias.rs"))
    runner._prepare(action, root / "sandbox/1")
    assert os.readlink(root / "sandbox/1/external/repo/d.rs") == os.path.realpath(root / "other/d.rs")
    assert os.readlink(root / "sandbox/1/src/alias.rs") == os.path.realpath(root / "src/a.rs")


def test_directories_no_action_needs_are_deleted_in_the_background(root: Path) -> None:
    runner = LocalRunner(root, root / "sandbox", sandboxed=True)
    (root / "sandbox/trash/1234.5.6/x").mkdir(parents=True)  # what a killed build left
    assert runner.run(_action("true", ("src/deep/c.rs",)), 1).exit_code == 0
    assert runner.run(_action("true", ("other/d.rs",)), 1).exit_code == 0  # src/ goes to the trash
    deadline = time.monotonic() + 30
    while any((root / "sandbox/trash").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any((root / "sandbox/trash").iterdir())
    assert sorted(os.listdir(root / "sandbox/1")) == ["other", "out"]


def _other_file_system(root: Path) -> Path:
    """A writable directory on another file system than `root` (the RAM disk), or skip."""
    ram_disk = Path("/dev/shm")
    if not os.access(ram_disk, os.W_OK) or os.stat(ram_disk).st_dev == os.stat(root).st_dev:
        pytest.skip("needs a writable /dev/shm on another file system than the test's temporary directory")
    return ram_disk


def test_outputs_of_a_sandbox_on_another_file_system_are_copied_out_whole(root: Path) -> None:
    ram_disk = _other_file_system(root)
    action = Action(
        mnemonic="Test",
        owner="//t:t",
        argv=(
            "/bin/sh",
            "-c",
            "printf '#!/bin/sh\\n' > out/tool; chmod 755 out/tool; mkdir -p out/tree/x; echo leaf > out/tree/x/leaf",
        ),
        outputs=("out/tool", "out/tree"),
        output_directories=("out/tree",),
        env=(("PATH", "/usr/bin:/bin"),),
    )
    with tempfile.TemporaryDirectory(dir=ram_disk, prefix="pybuild-test-") as name:
        base = Path(name)
        runner = LocalRunner(root, base, sandboxed=True)
        assert runner.run(action, 1).exit_code == 0
        assert os.stat(root / "out/tool").st_mode & 0o777 == 0o755
        assert (root / "out/tree/x/leaf").read_text(encoding="utf-8") == "leaf\n"
        assert sorted(os.listdir(root / "out")) == ["tool", "tree"]  # no staging directories left
        assert not (base / "1/out/tool").exists() and not (base / "1/out/tree").exists()
