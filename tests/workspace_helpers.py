"""Helpers for integration tests: write a workspace to disk and run the real `pybuild` command on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pybuild import cli

TRACEBACK = "Traceback (most recent call last)"
RULES_RUST_LOAD = 'load("@rules_rust//rust:defs.bzl", "rust_binary", "rust_library", "rust_proc_macro", "rust_test")\n'
DEFAULT_MODULE = 'module(name = "test_workspace", version = "0.1.0")\n'
# A small custom rule for tests that need one: it prints its word, fails when that is "fail", and writes a file
# (`out`, else <name>.txt) saying "made by <word>".
NOTE_RULE = """
def _impl(ctx):
    print("note //%s: %s" % (ctx.label.package, ctx.attr.word))
    if ctx.attr.word == "fail":
        fail("asked to fail")
    out = ctx.actions.declare_file(ctx.attr.out or ctx.label.name + ".txt")
    ctx.actions.write(out, "made by " + ctx.attr.word)
    return [DefaultInfo(files = depset([out]))]

note = rule(implementation = _impl, attrs = {"word": attr.string(), "out": attr.string(), "deps": attr.label_list()})
"""


def write_workspace(root: Path, files: dict[str, str], *, module: bool = True) -> Path:
    """Write `files` ({relative path: text}, dedented) under `root` and return `root`.

    A default MODULE.bazel is added unless `files` has one or `module` is False.
    """
    if module and "MODULE.bazel" not in files:
        files = {"MODULE.bazel": DEFAULT_MODULE, **files}
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def run_pybuild(cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run `python -m pybuild ARGS` in a subprocess with `cwd`; return (exit code, stdout, stderr)."""
    # Keep the child's imports pointing at this checkout even if it is not installed.
    repo_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, "-m", "pybuild", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run Python `script` with ARGS in a process of its own (pytest's may have threads, which forbid forking),
    importing this checkout, with `env` added to the environment; fail if it does."""
    repo_root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": repo_root, **(env or {})},
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


# The `run` fixture (conftest.py): (cwd, *args) -> (exit code, stdout, stderr).
Runner = Callable[..., tuple[int, str, str]]


def run_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path, *args: str
) -> tuple[int, str, str]:
    """`pybuild.cli.main(ARGS)` in this process with `cwd` as working directory: same contract as run_pybuild."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()  # drop anything printed before
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(result: tuple[int, str, str], *fragments: str) -> str:
    """A failed run: non-zero exit, every fragment in stderr, no Python traceback. Returns stderr."""
    code, _, err = result
    assert code != 0, f"expected failure, got exit 0; stderr:\n{err}"
    assert TRACEBACK not in err, err
    assert "internal error" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"
    return err


def assert_ok(result: tuple[int, str, str]) -> str:
    """A successful run; returns stdout."""
    code, out, err = result
    assert code == 0, f"exit {code}; stderr:\n{err}"
    return out


def lines(text: str) -> list[str]:
    return text.splitlines()


def main_repo_lines(text: str) -> list[str]:
    """Output lines naming targets of the main repository (`//...`), for `label` and `label_kind` output.

    Rules may add implicit dependencies in other repositories (@rules_rust settings, toolchains);
    tests about the user's graph leave those out.
    """
    return [line for line in text.splitlines() if line.rsplit(" ", 1)[-1].startswith("//")]
