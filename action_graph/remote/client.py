"""The REAPI client of one build: an action as Command + Action, the action cache, Execute, outputs."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc

from action_graph.action import Action
from action_graph.digests import FileDigests
from action_graph.remote.cas import Blob, CasClient
from action_graph.remote.connection import RemoteError, describe_rpc_error, is_retryable, open_channel
from action_graph.remote.merkle import MerkleTreeBuilder, output_tree
from action_graph.remote.protos import code_pb2, digest_of, operations_pb2, re_grpc, re_pb2, status_pb2

_EXECUTE_ATTEMPTS = 4
_STREAM_RECONNECTS = 8
# Execute results with these codes are worth another try: the server or a worker went away.
_RETRY_EXECUTE = frozenset({code_pb2.UNAVAILABLE, code_pb2.ABORTED, code_pb2.INTERNAL, code_pb2.UNKNOWN})


@dataclass(frozen=True)
class RemoteOptions:
    executor: str | None  # grpc://HOST:PORT: run actions there (and use its cache)
    cache: str | None  # grpc://HOST:PORT: only look results up and upload local ones
    instance_name: str = ""
    timeout: float = 60.0
    local_fallback: bool = False
    upload_local_results: bool = True
    accept_cached: bool = True  # False: run every action again (results still go to the cache)
    platform: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        return self.executor or self.cache or ""


@dataclass
class PreparedAction:
    action: Action
    digest: re_pb2.Digest
    blobs: list[Blob]  # the Action and Command messages, then the input tree
    do_not_cache: bool


class RemoteClient:
    def __init__(self, options: RemoteOptions, exec_root: Path, digests: FileDigests) -> None:
        self.options = options
        self.url = options.url
        self.exec_root = exec_root
        self.digests = digests
        self.merkle = MerkleTreeBuilder(exec_root, digests)
        self._channel: grpc.Channel | None = None

    def connect(self) -> None:
        """Reach the server and read its capabilities, or RemoteError within --remote_timeout."""
        self._channel = open_channel(self.url, self.options.timeout)
        self.cas = CasClient(self._channel, self.url, self.options.instance_name, self.options.timeout)
        capabilities = self.cas.load_capabilities()
        if self.options.executor and not capabilities.execution_capabilities.exec_enabled:
            raise RemoteError(f"remote server {self.url} does not execute actions (use --remote_cache)")
        self._action_cache = re_grpc.ActionCacheStub(self._channel)
        self._execution = re_grpc.ExecutionStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    # Describing an action ------------------------------------------------------------------------------

    def prepare(self, action: Action) -> PreparedAction:
        """Command, Action and input root of `action`; FileNotFoundError names a missing input."""
        self._check_no_client_paths(action)
        platform = re_pb2.Platform(
            properties=[re_pb2.Platform.Property(name=n, value=v) for n, v in sorted(self.options.platform)]
        )
        command = _command(action, platform)
        command_data = command.SerializeToString(deterministic=True)
        root = self.merkle.build(action.inputs, action.output_directories)
        requirements = dict(action.execution_requirements)
        do_not_cache = "no-cache" in requirements or "no-remote-cache" in requirements
        message = re_pb2.Action(
            command_digest=digest_of(command_data),
            input_root_digest=root.digest,
            platform=platform,
            do_not_cache=do_not_cache,
        )
        action_data = message.SerializeToString(deterministic=True)
        blobs = [Blob(digest_of(action_data), data=action_data), Blob(digest_of(command_data), data=command_data)]
        return PreparedAction(action, digest_of(action_data), blobs + root.blobs, do_not_cache)

    def _check_no_client_paths(self, action: Action) -> None:
        """Nothing that names this machine's workspace may reach a worker (nor enter a cache key)."""
        root = str(self.exec_root)
        for text in (*action.argv, *(value for _, value in action.env)):
            if root in text:
                raise RemoteError(f"{action.describe()} mentions the local path {root}; it cannot run remotely")

    # The action cache -------------------------------------------------------------------------------

    def lookup(self, prepared: PreparedAction) -> re_pb2.ActionResult | None:
        request = re_pb2.GetActionResultRequest(
            instance_name=self.options.instance_name,
            action_digest=prepared.digest,
            inline_stdout=True,
            inline_stderr=True,
        )
        return self.cas.call("GetActionResult", self._action_cache.GetActionResult, request, not_found_ok=True)

    def upload_local_result(self, prepared: PreparedAction, output: str) -> bool:
        """Put the outputs of a successful local run in the remote cache; False if some are missing."""
        action = prepared.action
        if not all((self.exec_root / o).exists() for o in action.outputs):
            return False
        result = re_pb2.ActionResult(exit_code=0)
        blobs = prepared.blobs[:2]  # the Action and Command, so the entry is self-describing
        for path in sorted(action.outputs):
            blobs += _describe_output(self.exec_root, path, result, self.digests)
        log = output.encode("utf-8")
        if log:
            result.stderr_digest.CopyFrom(digest_of(log))
            blobs.append(Blob(result.stderr_digest, data=log))
        self.cas.upload(blobs)
        request = re_pb2.UpdateActionResultRequest(
            instance_name=self.options.instance_name, action_digest=prepared.digest, action_result=result
        )
        self.cas.call("UpdateActionResult", self._action_cache.UpdateActionResult, request)
        return True

    # Remote execution --------------------------------------------------------------------------------

    def execute(self, prepared: PreparedAction) -> tuple[re_pb2.ActionResult, bool]:
        """Run the action on the server's workers: (result, whether the server answered from its cache)."""
        last = ""
        for attempt in range(_EXECUTE_ATTEMPTS):
            self.cas.upload(prepared.blobs)
            try:
                response = self._execute_once(prepared)
            except RemoteError as error:  # BuildGrid refuses an Action it lost with the call itself
                if error.code != grpc.StatusCode.FAILED_PRECONDITION or attempt == _EXECUTE_ATTEMPTS - 1:
                    raise
                response = re_pb2.ExecuteResponse(status=status_pb2.Status(code=code_pb2.FAILED_PRECONDITION))
            status = response.status
            if status.code == code_pb2.OK:
                return response.result, response.cached_result
            last = f"{code_pb2.Code.Name(status.code)}: {status.message}"
            if status.code == code_pb2.FAILED_PRECONDITION:
                self.cas.forget(b.digest for b in prepared.blobs)  # the server lost inputs: send them again
            elif status.code == code_pb2.DEADLINE_EXCEEDED:
                raise RemoteError(f"remote server {self.url}: {prepared.action.describe()} timed out: {last}")
            elif status.code not in _RETRY_EXECUTE:
                break
            time.sleep(0.2 * 2**attempt)
        raise RemoteError(f"remote server {self.url}: executing {prepared.action.describe()} failed: {last}")

    def _execute_once(self, prepared: PreparedAction) -> re_pb2.ExecuteResponse:
        """One Execute call, followed by WaitExecution whenever the stream drops before the end."""
        request = re_pb2.ExecuteRequest(
            instance_name=self.options.instance_name,
            action_digest=prepared.digest,
            skip_cache_lookup=prepared.do_not_cache or not self.options.accept_cached,
        )
        stream = self._execution.Execute(request)
        name = ""
        for attempt in range(_STREAM_RECONNECTS):
            try:
                for operation in stream:
                    name = operation.name or name
                    if operation.done:
                        return _execute_response(operation)
            except grpc.RpcError as error:
                lost = isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND and name
                if not (is_retryable(error) or lost) or attempt == _STREAM_RECONNECTS - 1:
                    raise describe_rpc_error(self.url, "Execute", error) from None
                if lost:
                    name = ""  # the server forgot the operation (it restarted): execute again
                time.sleep(min(0.1 * 2**attempt, 2.0))
            if not name:
                stream = self._execution.Execute(request)
            else:
                stream = self._execution.WaitExecution(re_pb2.WaitExecutionRequest(name=name))
        raise RemoteError(f"remote server {self.url}: the operation of {prepared.action.describe()} never finished")

    # Results -----------------------------------------------------------------------------------------

    def download_outputs(self, action: Action, result: re_pb2.ActionResult) -> None:
        """Write the result's outputs into the output tree, each file atomically; unchanged files stay."""
        declared = set(action.outputs)
        files: list[tuple[re_pb2.Digest, Path, int]] = []
        for output in result.output_files:
            _check_declared(self.url, output.path, declared)
            if self._unchanged(output.path, output.digest):
                continue
            files.append((output.digest, self.exec_root / output.path, 0o755 if output.is_executable else 0o644))
        self.cas.fetch_files(files)
        for directory in result.output_directories:
            _check_declared(self.url, directory.path, declared)
            self._download_directory(directory)

    def logs(self, result: re_pb2.ActionResult) -> str:
        """stdout then stderr of a run, as text."""
        parts = []
        for raw, digest in ((result.stdout_raw, result.stdout_digest), (result.stderr_raw, result.stderr_digest)):
            if not raw and digest.size_bytes:
                raw = self.cas.read_blobs([digest])[f"{digest.hash}/{digest.size_bytes}"]
            parts.append(raw.decode("utf-8", errors="replace"))
        return "".join(parts)

    def _unchanged(self, path: str, digest: re_pb2.Digest) -> bool:
        try:
            return self.digests.digest(path) == digest.hash
        except (FileNotFoundError, NotADirectoryError):
            return False

    def _download_directory(self, output: re_pb2.OutputDirectory) -> None:
        data = self.cas.read_blobs([output.tree_digest])[f"{output.tree_digest.hash}/{output.tree_digest.size_bytes}"]
        tree = re_pb2.Tree.FromString(data)
        children = {digest_of(c.SerializeToString(deterministic=True)).hash: c for c in tree.children}
        destination = self.exec_root / output.path
        temp = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.tmp")
        files: list[tuple[re_pb2.Digest, Path, int]] = []
        try:
            _plan_directory(tree.root, temp, children, files)
            self.cas.fetch_files(files)
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(temp, destination)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def _command(action: Action, platform: re_pb2.Platform) -> re_pb2.Command:
    outputs = sorted(set(action.outputs))
    directories = set(action.output_directories)
    return re_pb2.Command(
        arguments=list(action.argv),
        environment_variables=[
            re_pb2.Command.EnvironmentVariable(name=k, value=v) for k, v in sorted(action.env_dict.items())
        ],
        output_paths=outputs,
        # The pre-2.1 fields too, for servers and workers that only know those.
        output_files=[o for o in outputs if o not in directories],
        output_directories=[o for o in outputs if o in directories],
        platform=platform,
    )


def _execute_response(operation: operations_pb2.Operation) -> re_pb2.ExecuteResponse:
    if operation.HasField("error"):
        return re_pb2.ExecuteResponse(status=operation.error)
    response = re_pb2.ExecuteResponse()
    operation.response.Unpack(response)
    return response


def _check_declared(url: str, path: str, declared: set[str]) -> None:
    """A server may only write the action's declared outputs, never elsewhere in the workspace."""
    if path not in declared:
        raise RemoteError(f"remote server {url} returned '{path}', which the action did not declare as an output")


def _plan_directory(
    directory: re_pb2.Directory,
    path: Path,
    children: dict[str, re_pb2.Directory],
    files: list[tuple[re_pb2.Digest, Path, int]],
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for node in directory.files:
        files.append((node.digest, path / _safe_name(node.name), 0o755 if node.is_executable else 0o644))
    for node in directory.directories:
        _plan_directory(children[node.digest.hash], path / _safe_name(node.name), children, files)


def _safe_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name:
        raise RemoteError(f"invalid file name '{name}' in a remote output directory")
    return name


def _describe_output(root: Path, path: str, result: re_pb2.ActionResult, digests: FileDigests) -> list[Blob]:
    """Add one local output to `result`; return the blobs it needs."""
    full = root / path
    if full.is_dir():
        tree_digest, blobs = output_tree(full)
        result.output_directories.add(path=path, tree_digest=tree_digest)
        return blobs
    digest = re_pb2.Digest(hash=digests.digest(path), size_bytes=full.stat().st_size)
    result.output_files.add(path=path, digest=digest, is_executable=os.access(full, os.X_OK))
    return [Blob(digest, path=str(full))]


def execution_seconds(result: re_pb2.ActionResult) -> float:
    """How long the worker ran the command, from the result's metadata (0 when it does not say)."""
    metadata = result.execution_metadata
    start = metadata.execution_start_timestamp.ToNanoseconds()
    end = metadata.execution_completed_timestamp.ToNanoseconds()
    return max(0.0, (end - start) / 1e9) if start and end else 0.0
