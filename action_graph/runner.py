"""Running one action on this machine, in a sandbox of its declared inputs or in the execution root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from action_graph.action import Action
from action_graph.fileutil import atomic_write_bytes


@dataclass
class SpawnResult:
    exit_code: int  # negative: killed by that signal
    output: str  # stdout and stderr, interleaved as the action wrote them
    duration: float
    peak_rss_kb: int


class ActionFailed(Exception):
    """An action ran but did not produce what it promised; the message names the action."""


class LocalRunner:
    """Runs actions with the execution root as working directory, or sandboxed (the default)."""

    def __init__(self, exec_root: Path, sandbox_base: Path, sandboxed: bool) -> None:
        self.exec_root = exec_root
        self.sandbox_base = sandbox_base
        self.sandboxed = sandboxed

    def run(self, action: Action, slot: int) -> SpawnResult:
        self._clear_outputs(action, self.exec_root)
        if action.content is not None:
            return self._write_file(action)
        if not self.sandboxed:
            self._make_output_dirs(action, self.exec_root)
            return _spawn(action, self.exec_root)
        sandbox = self.sandbox_base / str(slot)
        shutil.rmtree(sandbox, ignore_errors=True)
        try:
            self._populate(action, sandbox)
            result = _spawn(action, sandbox)
            if result.exit_code == 0:
                self._collect_outputs(action, sandbox)
            return result
        finally:
            shutil.rmtree(sandbox, ignore_errors=True)

    def _write_file(self, action: Action) -> SpawnResult:
        mode = 0o755 if action.is_executable else 0o644
        atomic_write_bytes(self.exec_root / action.primary_output, (action.content or "").encode(), mode)
        return SpawnResult(0, "", 0.0, 0)

    def _clear_outputs(self, action: Action, root: Path) -> None:
        # Outputs may be hard links into the cache: never let a tool write through them.
        for output in action.outputs:
            path = root / output
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _make_output_dirs(self, action: Action, root: Path) -> None:
        for output in action.outputs:
            target = root / output
            (target if output in action.output_directories else target.parent).mkdir(parents=True, exist_ok=True)

    def _populate(self, action: Action, sandbox: Path) -> None:
        """Only the declared inputs, as symlinks to their real files, at their execution paths."""
        for path in action.inputs:
            source = self.exec_root / path
            if not os.path.lexists(source):
                raise ActionFailed(f"{action.describe()}: declared input '{path}' does not exist")
            link = sandbox / path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.realpath(source), link)
        self._make_output_dirs(action, sandbox)

    def _collect_outputs(self, action: Action, sandbox: Path) -> None:
        missing = [o for o in action.outputs if not os.path.lexists(sandbox / o)]
        if missing:
            raise ActionFailed(f"{action.describe()} did not create its declared output(s): {', '.join(missing)}")
        for output in action.outputs:
            destination = self.exec_root / output
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(sandbox / output, destination)


def _spawn(action: Action, cwd: Path) -> SpawnResult:
    start = time.monotonic()
    try:
        process = subprocess.Popen(
            list(action.argv),
            cwd=cwd,
            env=action.env_dict,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so an interrupt can stop the whole process group
        )
    except OSError as error:
        raise ActionFailed(f"{action.describe()}: cannot start '{action.argv[0]}': {error}") from None
    try:
        output = process.stdout.read().decode("utf-8", errors="replace") if process.stdout else ""
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    return SpawnResult(process.returncode, output, time.monotonic() - start, usage.ru_maxrss)
