"""Running one action on this machine, in a sandbox of its declared inputs or in the execution root."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from action_graph.action import Action
from action_graph.fileutil import atomic_write_bytes

# A file the process writes before it ends (relative to where it runs), and what to call once it exists.
EarlyOutput = tuple[str, Callable[[Path], None]]


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

    def __init__(self, exec_root: Path, sandbox_base: Path, sandboxed: bool, output_root: Path | None = None) -> None:
        self.exec_root = exec_root
        self.sandbox_base = sandbox_base
        self.sandboxed = sandboxed
        # Where sandboxed outputs land: the execution root, or elsewhere to compare two runs.
        self.output_root = output_root or exec_root
        self._running: dict[int, tuple[Action, int]] = {}  # process group -> (action, slot)
        self._lock = threading.Lock()
        self.interrupted = False

    def stop_all(self) -> list[Action]:
        """Kill every running action's process group (on interrupt); return those actions."""
        with self._lock:
            self.interrupted = True
            running = list(self._running.items())
        for group, _ in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        return [action for _, (action, _) in running]

    def discard_outputs(self, actions: list[Action]) -> None:
        """Remove what interrupted actions may have half-written, in the tree and in their sandboxes."""
        for action in actions:
            self._clear_outputs(action, self.exec_root)
        shutil.rmtree(self.sandbox_base, ignore_errors=True)

    def run(self, action: Action, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        self._clear_outputs(action, self.output_root)
        if action.content is not None:
            return self._write_file(action)
        if not self.sandboxed:
            self._make_output_dirs(action, self.exec_root)
            return self._spawn(action, self.exec_root, slot, early)
        sandbox = self.sandbox_base / str(slot)
        shutil.rmtree(sandbox, ignore_errors=True)
        try:
            self._populate(action, sandbox)
            result = self._spawn(action, sandbox, slot, early)
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
            destination = self.output_root / output
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(sandbox / output, destination)

    def _spawn(self, action: Action, cwd: Path, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        start = time.monotonic()
        watcher = _EarlyOutputWatcher(cwd / early[0], early[1]) if early else None
        with self._lock:
            if self.interrupted:
                raise ActionFailed(f"{action.describe()}: not started, the build was interrupted")
            process = _start(action, cwd)
            self._running[process.pid] = (action, slot)
        try:
            if watcher:
                watcher.start()
            output = process.stdout.read().decode("utf-8", errors="replace") if process.stdout else ""
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            with self._lock:
                self._running.pop(process.pid, None)
            if watcher:
                watcher.finish()
        process.returncode = os.waitstatus_to_exitcode(status)
        return SpawnResult(process.returncode, output, time.monotonic() - start, usage.ru_maxrss)


class _EarlyOutputWatcher:
    """Calls back once a file the running process writes exists. rustc renames its .rmeta into place, so
    existing means complete; polling every 10 ms needs nothing from the process but that file."""

    def __init__(self, path: Path, callback: Callable[[Path], None]) -> None:
        self.path = path
        self.callback = callback
        path.unlink(missing_ok=True)  # a file an earlier run left must not count
        self._stop = threading.Event()
        self._fired = False
        self._thread = threading.Thread(target=self._poll, name=f"watch {path.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """The process ended: stop polling and take one last look."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self._fired and self.path.exists():
            self._fire()

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            if self.path.exists():
                self._fire()
                return

    def _fire(self) -> None:
        self._fired = True
        self.callback(self.path)


def _start(action: Action, cwd: Path) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(action.argv),
            cwd=cwd,
            env=action.env_dict,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so an interrupt stops rustc and its linker too
        )
    except OSError as error:
        raise ActionFailed(f"{action.describe()}: cannot start '{action.argv[0]}': {error}") from None
