"""Where one action runs when a remote server is configured: its cache, its workers, or here.

--remote_executor: the remote action cache, then Execute on the server's workers; with
--remote_local_fallback a server that fails makes the action run locally instead of failing it.
--remote_cache: the remote action cache, then a local run whose results are uploaded (unless
--noremote_upload_local_results). A cache that fails only costs a warning: the action runs locally.
--noremote_accept_cached runs every action again. Execution requirements `no-remote`/`local` keep an
action local, `no-remote-exec` only off the workers, `no-cache`/`no-remote-cache` out of the remote cache.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from action_graph.action import Action
from action_graph.digests import FileDigests
from action_graph.remote.cas import MissingBlobError
from action_graph.remote.client import PreparedAction, RemoteClient, RemoteOptions, execution_seconds
from action_graph.remote.connection import RemoteError
from action_graph.runner import ActionFailed, SpawnResult


@dataclass
class RemoteSpawn(SpawnResult):
    cached: bool = False  # the result came from the remote action cache
    remote: bool = False  # a remote worker ran it


class RemoteStrategy:
    def __init__(
        self,
        options: RemoteOptions,
        exec_root: Path,
        digests: FileDigests,
        run_local: Callable[[Action, int], SpawnResult],
    ) -> None:
        self.options = options
        self.client = RemoteClient(options, exec_root, digests)
        self.run_local = run_local
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._server_down = False  # once unreachable, the rest of the build runs locally at once

    def connect(self) -> None:
        self.client.connect()

    def close(self) -> None:
        self.client.close()

    def run(self, action: Action, slot: int) -> RemoteSpawn:
        """Run (or look up) `action`; ActionFailed when a remote failure must fail it."""
        requirements = dict(action.execution_requirements)
        if "no-remote" in requirements or "local" in requirements or self._server_down:
            return self._local(action, slot, None)
        try:
            prepared = self.client.prepare(action)
        except FileNotFoundError as error:
            raise ActionFailed(f"{action.describe()}: declared input '{error.filename}' does not exist") from None
        except (RemoteError, ValueError) as error:
            self._remote_failed(action, RemoteError(str(error)))
            return self._local(action, slot, None)
        if not prepared.do_not_cache and self.options.accept_cached:
            hit = self._cached(prepared)
            if hit is not None:
                return hit
        if self.options.executor and "no-remote-exec" not in requirements:
            try:
                return self._execute(prepared)
            except RemoteError as error:
                self._remote_failed(action, error)
        return self._local(action, slot, None if prepared.do_not_cache else prepared)

    def _cached(self, prepared: PreparedAction) -> RemoteSpawn | None:
        started = time.monotonic()
        try:
            result = self.client.lookup(prepared)
            if result is None or result.exit_code != 0:
                return None
            self.client.download_outputs(prepared.action, result)
        except MissingBlobError:
            return None  # the cache entry outlived its outputs: run the action again
        except RemoteError as error:
            self._remote_failed(prepared.action, error)
            return None
        seconds = execution_seconds(result) or time.monotonic() - started
        return RemoteSpawn(0, "", seconds, 0, cached=True)

    def _execute(self, prepared: PreparedAction) -> RemoteSpawn:
        started = time.monotonic()
        result, cached = self.client.execute(prepared)
        output = self.client.logs(result)
        if result.exit_code == 0:
            self.client.download_outputs(prepared.action, result)
        seconds = execution_seconds(result) or time.monotonic() - started
        return RemoteSpawn(result.exit_code, output, seconds, 0, cached=cached, remote=True)

    def _local(self, action: Action, slot: int, prepared: PreparedAction | None) -> RemoteSpawn:
        spawn = self.run_local(action, slot)
        upload = self.options.upload_local_results and not self._server_down
        if prepared is not None and spawn.exit_code == 0 and upload:
            try:
                self.client.upload_local_result(prepared, spawn.output)
            except RemoteError as error:
                if error.code == grpc.StatusCode.UNAVAILABLE:
                    self._server_down = True
                    self._warn(f"{error}; local results are no longer uploaded")
                else:
                    self._warn(f"uploading the results of {action.describe()} failed: {error}")
            except OSError as error:
                self._warn(f"uploading the results of {action.describe()} failed: {error}")
        return RemoteSpawn(spawn.exit_code, spawn.output, spawn.duration, spawn.peak_rss_kb)

    def _remote_failed(self, action: Action, error: RemoteError) -> None:
        """Fail the action, unless the build may go on without the server (cache only, or fallback)."""
        if self.options.executor and not self.options.local_fallback:
            raise ActionFailed(str(error))  # the progress line names the target and mnemonic
        how = "--remote_local_fallback" if self.options.executor else "the remote cache is optional"
        if error.code == grpc.StatusCode.UNAVAILABLE:
            self._server_down = True
            self._warn(f"{error}; running the remaining actions locally ({how})")
        else:
            self._warn(f"{error}; running the action locally ({how})")

    def _warn(self, message: str) -> None:
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
        print(f"WARNING: {message}", file=sys.stderr, flush=True)
