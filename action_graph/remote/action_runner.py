"""What a worker does with one lease: input root from the CAS, the command, outputs back to the CAS."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from action_graph.digests import hash_file
from action_graph.jobserver import Jobserver, popen_settings
from action_graph.remote.blob_cache import BlobCache
from action_graph.remote.cas import Blob, CasClient
from action_graph.remote.merkle import output_tree
from action_graph.remote.protos import digest_key, digest_of, re_pb2


class LeaseAbandoned(Exception):
    """The worker stopped this action (it is shutting down); the server should give it to another."""


@dataclass
class _InputTree:
    directories: list[str] = field(default_factory=list)
    files: list[tuple[str, re_pb2.Digest, bool]] = field(default_factory=list)
    symlinks: list[tuple[str, str]] = field(default_factory=list)


class ActionRunner:
    """Runs one Action in a fresh directory; `stop()` (from another thread) kills it."""

    def __init__(
        self, cas: CasClient, cache: BlobCache, work_dir: Path, worker_name: str, jobserver: Jobserver | None = None
    ) -> None:
        self.cas = cas
        self.cache = cache
        self.work_dir = work_dir
        self.worker_name = worker_name
        self.jobserver = jobserver
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)

    def run(self, action: re_pb2.Action) -> re_pb2.ActionResult:
        metadata = re_pb2.ExecutedActionMetadata(worker=self.worker_name)
        _now(metadata.worker_start_timestamp)
        (self.work_dir / "exec").mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(dir=self.work_dir / "exec", prefix="action-"))
        try:
            key = digest_key(action.command_digest)
            command = re_pb2.Command.FromString(self.cache.read([action.command_digest], self.cas)[key])
            _now(metadata.input_fetch_start_timestamp)
            self._materialize(action.input_root_digest, root)
            _create_output_parents(command, root)
            _now(metadata.input_fetch_completed_timestamp)
            result = self._execute(command, root, action.timeout.ToSeconds() or None, metadata)
            _now(metadata.output_upload_start_timestamp)
            self._upload_outputs(command, root, result)
            _now(metadata.output_upload_completed_timestamp)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        _now(metadata.worker_completed_timestamp)
        result.execution_metadata.CopyFrom(metadata)
        return result

    # Inputs ------------------------------------------------------------------------------------------

    def _materialize(self, root_digest: re_pb2.Digest, root: Path) -> None:
        tree = self._read_tree(root_digest)
        self.cache.ensure(((digest, executable) for _, digest, executable in tree.files), self.cas)
        for directory in tree.directories:
            (root / directory).mkdir(parents=True, exist_ok=True)
        for path, digest, executable in tree.files:
            os.link(self.cache.path(digest, executable), root / path)
        for path, target in tree.symlinks:
            os.symlink(target, root / path)

    def _read_tree(self, root_digest: re_pb2.Digest) -> _InputTree:
        """Every Directory of the input root, one batch per level (most come from the local cache)."""
        tree = _InputTree()
        level = [("", root_digest)]
        while level:
            messages = self.cache.read([digest for _, digest in level], self.cas)
            next_level = []
            for path, digest in level:
                directory = re_pb2.Directory.FromString(messages[digest_key(digest)])
                tree.directories.append(path)
                tree.files += [(_join(path, f.name), f.digest, f.is_executable) for f in directory.files]
                tree.symlinks += [(_join(path, s.name), s.target) for s in directory.symlinks]
                next_level += [(_join(path, d.name), d.digest) for d in directory.directories]
            level = next_level
        return tree

    # Running -----------------------------------------------------------------------------------------

    def _execute(
        self, command: re_pb2.Command, root: Path, timeout: float | None, metadata: re_pb2.ExecutedActionMetadata
    ) -> re_pb2.ActionResult:
        env = {variable.name: variable.value for variable in command.environment_variables}
        cwd = root / command.working_directory if command.working_directory else root
        with self.jobserver.holding() if self.jobserver else contextlib.nullcontext():
            return self._spawn(list(command.arguments), env, cwd, timeout, metadata)

    def _spawn(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        timeout: float | None,
        metadata: re_pb2.ExecutedActionMetadata,
    ) -> re_pb2.ActionResult:
        """Run the command; the caller holds a jobserver token for it, if the worker has a jobserver."""
        _now(metadata.execution_start_timestamp)
        with self._lock:
            if self._stopped:
                raise LeaseAbandoned("the worker is shutting down")
            try:
                self._process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    **popen_settings(self.jobserver, env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group: stop() kills rustc and its linker too
                )
            except OSError as error:
                _now(metadata.execution_completed_timestamp)
                message = f"pybuild worker: cannot start '{argv[0]}': {error}\n"
                return re_pb2.ActionResult(exit_code=127, stderr_raw=message.encode())
        try:
            stdout, stderr = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            stdout, stderr = self._process.communicate()
            stderr += f"pybuild worker: killed after the action's timeout of {timeout:g}s\n".encode()
        _now(metadata.execution_completed_timestamp)
        if self._stopped:
            raise LeaseAbandoned("the worker stopped the action while shutting down")
        return re_pb2.ActionResult(exit_code=self._process.returncode, stdout_raw=stdout, stderr_raw=stderr)

    # Outputs -----------------------------------------------------------------------------------------

    def _upload_outputs(self, command: re_pb2.Command, root: Path, result: re_pb2.ActionResult) -> None:
        """Outputs that exist, stdout and stderr into the CAS; the result names them by digest."""
        blobs: list[Blob] = []
        base = root / command.working_directory if command.working_directory else root
        for path in _output_paths(command):
            full = base / path
            if full.is_dir():
                tree_digest, tree_blobs = output_tree(full)
                result.output_directories.add(path=path, tree_digest=tree_digest)
                blobs += tree_blobs
            elif full.is_file():
                executable = os.access(full, os.X_OK)
                digest = re_pb2.Digest(hash=hash_file(str(full)), size_bytes=full.stat().st_size)
                result.output_files.add(path=path, digest=digest, is_executable=executable)
                blobs.append(Blob(digest, path=str(full)))
        for raw, field_name in ((result.stdout_raw, "stdout_digest"), (result.stderr_raw, "stderr_digest")):
            if raw:
                digest = digest_of(raw)
                getattr(result, field_name).CopyFrom(digest)
                blobs.append(Blob(digest, data=raw))
        self.cas.upload(blobs)
        result.ClearField("stdout_raw")
        result.ClearField("stderr_raw")
        for output in result.output_files:  # a dependent action on this worker needs no fetch
            self.cache.adopt(base / output.path, output.digest, output.is_executable)


def _output_paths(command: re_pb2.Command) -> list[str]:
    if command.output_paths:
        return list(command.output_paths)
    return [*command.output_files, *command.output_directories]


def _create_output_parents(command: re_pb2.Command, root: Path) -> None:
    """REAPI: the worker creates the directories leading up to each output path."""
    base = root / command.working_directory if command.working_directory else root
    for path in _output_paths(command):
        (base / path).parent.mkdir(parents=True, exist_ok=True)


def _join(parent: str, name: str) -> str:
    if not name or name in (".", "..") or "/" in name:
        raise ValueError(f"invalid name '{name}' in an input root")
    return f"{parent}/{name}" if parent else name


def _now(field: Timestamp) -> None:
    field.GetCurrentTime()
