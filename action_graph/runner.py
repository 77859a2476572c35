"""Running one action on this machine, in a sandbox of its declared inputs or in the execution root."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISLNK

from action_graph.action import Action
from action_graph.fileutil import atomic_copy, atomic_write_bytes
from action_graph.jobserver import Jobserver, popen_settings

# A file the process writes before it ends (relative to where it runs), and what to call once it exists.
EarlyOutput = tuple[str, Callable[[Path], None]]
# What starts in place of a tool: argv, environment, and what turns the program's output into the tool's.
DirectCommand = tuple[list[str], dict[str, str], Callable[[str], str] | None]
# Stands in for a tool that rewrites its command line, starts another program and at most rewrites that
# program's output: given the tool's arguments, the real working directory and the environment, it returns
# the DirectCommand, or None when the tool has to run itself; OSError or ValueError fail the action.
# Running it in pybuild's process saves starting the tool.
Launcher = Callable[[list[str], str, dict[str, str]], DirectCommand | None]


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

    def __init__(
        self,
        exec_root: Path,
        sandbox_base: Path,
        sandboxed: bool,
        output_root: Path | None = None,
        launchers: dict[str, Launcher] | None = None,
    ) -> None:
        self.exec_root = exec_root
        self.sandbox_base = sandbox_base
        self.sandboxed = sandboxed
        # Where sandboxed outputs land: the execution root, or elsewhere to compare two runs.
        self.output_root = output_root or exec_root
        self._running: dict[int, tuple[Action, int]] = {}  # process group -> (action, slot)
        self._lock = threading.Lock()
        self.interrupted = False
        self._real_directories: dict[str, str] = {}  # directory -> its os.path.realpath
        self._trash = _Trash(sandbox_base / "trash")
        self._launchers = launchers or {}  # the real path of a tool -> what stands in for it
        self._tool_launchers: dict[str, Launcher | None] = {}  # an action's argv[0] -> its launcher
        self.jobserver: Jobserver | None = None  # given to every process while a build hands out its tokens

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
        self.remove_sandboxes()

    def remove_sandboxes(self) -> None:
        shutil.rmtree(self.sandbox_base, ignore_errors=True)

    def run(self, action: Action, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        self._clear_outputs(action, self.output_root)
        if action.content is not None:
            return self._write_file(action)
        if not self.sandboxed:
            self._make_output_dirs(action, self.exec_root)
            return self._spawn(action, self.exec_root, slot, early)
        sandbox = self.sandbox_base / str(slot)
        succeeded = False
        try:
            self._prepare(action, sandbox)
            result = self._spawn(action, sandbox, slot, early)
            if result.exit_code == 0:
                self._collect_outputs(action, sandbox)
                succeeded = True
            return result
        finally:
            # A succeeded action leaves only its input links, which the slot's next action reuses; after a
            # failure or an interrupt nothing half-written may stay behind.
            if not succeeded or self.interrupted:
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

    def _prepare(self, action: Action, sandbox: Path) -> None:
        """Make the sandbox hold exactly the declared inputs, as symlinks to their real files, and empty output
        directories. The slot's directory is reused (Bazel's --reuse_sandbox_directories): links the previous
        action also had stay, anything else (its other links, files it wrote) is removed, so the action sees
        what a freshly made sandbox would show, for a fraction of the file system work."""
        links = {path: self._real_path(action, path) for path in action.inputs}
        directories = _ancestors([*links, *action.outputs]) | set(action.output_directories)
        sandbox.mkdir(parents=True, exist_ok=True)
        present = _prune(str(sandbox), "", links, directories, self._trash.put)
        for path, target in links.items():
            if path not in present:
                _make_parents(str(sandbox), path, present)
                os.symlink(target, os.path.join(sandbox, path))
        for directory in directories:
            if directory not in present:
                os.makedirs(os.path.join(sandbox, directory), exist_ok=True)

    def _real_path(self, action: Action, path: str) -> str:
        """os.path.realpath of an input, which costs one lstat per path component; here each directory is
        resolved once per build and an input that is not itself a symlink costs a single lstat."""
        source = os.path.join(self.exec_root, path)
        try:
            is_link = S_ISLNK(os.lstat(source).st_mode)
        except OSError:
            raise ActionFailed(f"{action.describe()}: declared input '{path}' does not exist") from None
        if is_link:
            return os.path.realpath(source)
        parent, name = os.path.split(source)
        real = self._real_directories.get(parent)
        if real is None:
            # Directories of the execution root do not change their symlinks during a build.
            real = self._real_directories[parent] = os.path.realpath(parent)
        return os.path.join(real, name)

    def _collect_outputs(self, action: Action, sandbox: Path) -> None:
        missing = [o for o in action.outputs if not os.path.lexists(sandbox / o)]
        if missing:
            raise ActionFailed(f"{action.describe()} did not create its declared output(s): {', '.join(missing)}")
        for output in action.outputs:
            destination = self.output_root / output
            destination.parent.mkdir(parents=True, exist_ok=True)
            _move(sandbox / output, destination)

    def _spawn(self, action: Action, cwd: Path, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        start = time.monotonic()
        watcher = _EarlyOutputWatcher(cwd / early[0], early[1]) if early else None
        argv, env, render = self._command(action, cwd)
        with self._lock:
            if self.interrupted:
                raise ActionFailed(f"{action.describe()}: not started, the build was interrupted")
            process = _start(action, cwd, argv, env, self.jobserver)
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
        output = render(output) if render else output
        return SpawnResult(process.returncode, output, time.monotonic() - start, usage.ru_maxrss)

    def _command(self, action: Action, cwd: Path) -> DirectCommand:
        """The action's argv and environment, or what the launcher standing in for its tool starts instead."""
        argv, env = list(action.argv), action.env_dict
        launcher = self._launcher(argv[0])
        if launcher is None:
            return argv, env, None
        try:
            direct = launcher(argv[1:], os.path.realpath(cwd), env)
        except (OSError, ValueError) as error:
            raise ActionFailed(f"{action.describe()}: {argv[0]}: {error}") from None
        return direct or (argv, env, None)

    def _launcher(self, tool: str) -> Launcher | None:
        if tool not in self._tool_launchers:
            # Inputs keep their place during a build, and a sandbox links each to the same real file.
            self._tool_launchers[tool] = self._launchers.get(os.path.realpath(self.exec_root / tool))
        return self._tool_launchers[tool]


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


class _Trash:
    """Directories a sandbox no longer needs (the source tree of the last crate), moved aside with one rename
    and deleted by a background thread: deleting thousands of links waits on the disk for tens of
    milliseconds, which no action should. What a killed build leaves here the next one deletes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._names = itertools.count()
        self._pending: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._deleter: threading.Thread | None = None

    def put(self, path: str) -> None:
        with self._lock:
            if self._deleter is None:
                self._start()
        # Unique across processes, so a leftover of an earlier build is never renamed onto.
        target = os.path.join(self.directory, f"{os.getpid()}.{time.time_ns()}.{next(self._names)}")
        os.rename(path, target)
        self._pending.put(target)

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in os.listdir(self.directory):  # what a killed build left
            self._pending.put(os.path.join(self.directory, leftover))
        self._deleter = threading.Thread(target=self._delete, name="sandbox trash", daemon=True)
        self._deleter.start()

    def _delete(self) -> None:
        while True:
            shutil.rmtree(self._pending.get(), ignore_errors=True)


def _start(
    action: Action, cwd: Path, argv: list[str], env: dict[str, str], jobserver: Jobserver | None
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            **popen_settings(jobserver, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so an interrupt stops rustc and its linker too
        )
    except OSError as error:
        raise ActionFailed(f"{action.describe()}: cannot start '{argv[0]}': {error}") from None


def _move(source: Path, destination: Path) -> None:
    """Rename an output into place; from a sandbox on another file system (a RAM disk) copy it, then drop the
    sandbox's copy so it does not hold memory until the slot's next action."""
    try:
        os.replace(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        atomic_copy(source, destination)
        if source.is_dir() and not source.is_symlink():
            shutil.rmtree(source)
        else:
            source.unlink()


def _ancestors(paths: Iterable[str]) -> set[str]:
    """Every directory above the given relative paths (not the root itself)."""
    directories: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent and parent not in directories:
            directories.add(parent)
            parent = os.path.dirname(parent)
    return directories


def _prune(
    directory: str, prefix: str, links: dict[str, str], directories: set[str], discard: Callable[[str], None]
) -> set[str]:
    """Remove from a sandbox what the next action must not see; return the relative paths that stay (links
    pointing where `links` wants them, directories in `directories`). One scandir per directory, and one
    readlink per kept link: a link the previous action replaced is not trusted by its name."""
    kept = set()
    with os.scandir(directory) as entries:
        for entry in entries:
            path = prefix + entry.name
            if entry.is_dir(follow_symlinks=False) and path in directories:
                kept.add(path)
                kept.update(_prune(entry.path, path + "/", links, directories, discard))
            elif entry.is_symlink() and path in links and os.readlink(entry.path) == links[path]:
                kept.add(path)
            elif entry.is_dir(follow_symlinks=False):
                discard(entry.path)
            else:
                os.unlink(entry.path)
    return kept


def _make_parents(root: str, path: str, present: set[str]) -> None:
    """Create the directories above a sandbox path that are not there yet, remembering them in `present`."""
    parent = os.path.dirname(path)
    if parent and parent not in present:
        os.makedirs(os.path.join(root, parent), exist_ok=True)
        while parent and parent not in present:
            present.add(parent)
            parent = os.path.dirname(parent)
