"""`pybuild worker`: a bot of the Remote Workers API (google.devtools.remoteworkers.v1test2 Bots).

One thread keeps the bot session: it long-polls UpdateBotSession for leases while a slot is free, sends
heartbeats while all slots are busy (so the server never takes the session for dead during a long
action), and reports each finished lease at once by cancelling a poll in flight. Each lease (an Action)
runs on a slot thread through ActionRunner. On SIGTERM the bot reports BOT_TERMINATING, gets no more
leases, lets running actions finish for a grace period, hands back any lease it will not run (status
UNAVAILABLE, which the server retries elsewhere) and exits.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from action_graph.jobserver import Jobserver
from action_graph.remote.action_runner import ActionRunner, LeaseAbandoned
from action_graph.remote.blob_cache import BlobCache
from action_graph.remote.cas import CasClient, MissingBlobError
from action_graph.remote.connection import RemoteError, open_channel
from action_graph.remote.protos import bots_grpc, bots_pb2, code_pb2, re_pb2, status_pb2, worker_pb2

# BuildGrid waits for work for 80% of a poll's deadline and assigns nothing when that is under 3 s, so a
# long poll must allow at least 3.75 s; 5 s also keeps heartbeats well inside a 10 s session timeout.
_LONG_POLL_SECONDS = 5.0
_CALL_SECONDS = 10.0
_CAS_SECONDS = 120.0
_TICK = 0.25  # how often waits look at signal flags (a signal handler takes no locks)
# How BuildGrid says it no longer knows this session (it expired, or was closed as a mismatch).
_SESSION_LOST = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DATA_LOSS})


@dataclass(frozen=True)
class WorkerOptions:
    server: str
    slots: int
    work_dir: Path
    instance_name: str = ""
    platform: tuple[tuple[str, str], ...] = (("OSFamily", "Linux"),)
    grace_seconds: float = 30.0
    connect_seconds: float = 60.0


@dataclass
class _Running:
    lease: bots_pb2.Lease
    runner: ActionRunner


class Worker:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.bot_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._channel = open_channel(options.server, options.connect_seconds)
        self._bots = bots_grpc.BotsStub(self._channel)
        self._cas = CasClient(self._channel, options.server, options.instance_name, _CAS_SECONDS)
        self._cache = BlobCache(options.work_dir / "cas")
        self._pool = ThreadPoolExecutor(max_workers=options.slots, thread_name_prefix="slot")
        # Each slot's process and the codegen threads of all of them share `slots` tokens (jobserver.py).
        self._jobserver = Jobserver(options.slots)
        self._lock = threading.Lock()
        self._changes = 0  # bumped whenever there is something new to tell the server
        self._running: dict[str, _Running] = {}
        self._done: dict[str, bots_pb2.Lease] = {}
        self._terminating = False
        self._told_terminating = False
        self._grace_deadline = float("inf")
        self._unreachable = False  # the last UpdateBotSession could not reach the server
        self.session = bots_pb2.BotSession()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._cas.load_capabilities()
        self.session = self._create_session()
        _log(
            f"pybuild worker {self.bot_id}: session {self.session.name} on {self.options.server}, "
            f"{self.options.slots} slot(s), platform {dict(self.options.platform)}"
        )
        while not self._finished():
            self._take_leases()
            self._enforce_grace()
            self._sync()
        self._pool.shutdown(wait=True)
        self._jobserver.close()
        self._channel.close()
        _log(f"pybuild worker {self.bot_id}: stopped")
        return 0

    def _on_signal(self, signum: int, _frame) -> None:
        if not self._terminating:
            _log(f"pybuild worker {self.bot_id}: {signal.Signals(signum).name}, finishing running actions")
            self._grace_deadline = time.monotonic() + self.options.grace_seconds
            self._terminating = True

    def _finished(self) -> bool:
        with self._lock:
            if not self._terminating or self._running:
                return False
            # Done once the server knows; one that cannot be told (it is down) will expire the session.
            told = self._told_terminating and not self._done
            return told or self._unreachable or time.monotonic() > self._grace_deadline

    # The session -------------------------------------------------------------------------------------

    def _create_session(self) -> bots_pb2.BotSession:
        device = worker_pb2.Device(
            handle=self.bot_id,
            properties=[worker_pb2.Device.Property(key=k, value=v) for k, v in self.options.platform],
        )
        worker = worker_pb2.Worker(
            devices=[device], configs=[worker_pb2.Worker.Config(key="capacity", value=str(self.options.slots))]
        )
        session = bots_pb2.BotSession(bot_id=self.bot_id, status=bots_pb2.OK, worker=worker)
        request = bots_pb2.CreateBotSessionRequest(parent=self.options.instance_name, bot_session=session)
        # A short deadline: BuildGrid then registers the bot without waiting for work first.
        return self._bots.CreateBotSession(request, timeout=2.0)

    def _request(self) -> tuple[bots_pb2.UpdateBotSessionRequest, set[str]]:
        """The session as this bot sees it: running leases ACTIVE, finished ones COMPLETED."""
        session = bots_pb2.BotSession()
        session.CopyFrom(self.session)
        session.status = bots_pb2.BOT_TERMINATING if self._terminating else bots_pb2.OK
        del session.leases[:]
        for running in self._running.values():
            session.leases.append(running.lease)
        session.leases.extend(self._done.values())
        return bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), set(self._running)

    def _sync(self) -> None:
        with self._lock:
            seen = self._changes
            request, active = self._request()
            reporting = set(self._done)
            news = bool(reporting) or (self._terminating and not self._told_terminating)
            can_poll = not self._terminating and len(self._running) < self.options.slots
            terminating = self._terminating
        if not news and not can_poll and self._wait_for_change(seen, self._heartbeat_seconds()):
            return  # something finished while all slots were busy: report it now
        future = self._bots.UpdateBotSession.future(request, timeout=_CALL_SECONDS if news else _LONG_POLL_SECONDS)
        # A poll with nothing to report is cancelled as soon as there is: a finished lease must not wait.
        while not future.done() and (news or not self._changed_since(seen)):
            time.sleep(0.01 if news else 0.02)
        if not future.done():
            future.cancel()
        try:
            response = future.result()
        except grpc.FutureCancelledError:
            return
        except grpc.RpcError as error:
            self._on_error(error)
            return
        self._accept(response, reporting, active, terminating)

    def _accept(self, response: bots_pb2.BotSession, reported: set[str], active: set[str], terminating: bool) -> None:
        listed = {lease.id for lease in response.leases}
        with self._lock:
            self._unreachable = False
            for lease_id in reported:
                self._done.pop(lease_id, None)
            self._told_terminating = terminating
            self.session = response
            dropped = [self._running[i] for i in active - listed if i in self._running]
        for running in dropped:  # cancelled, or given to another bot: stop working on it
            _log(f"lease {running.lease.id}: dropped by the server, stopping it")
            running.runner.stop()

    def _on_error(self, error: grpc.RpcError) -> None:
        code = error.code() if isinstance(error, grpc.Call) else None
        if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        _log(f"pybuild worker {self.bot_id}: UpdateBotSession failed: {code}: {details}")
        if code in _SESSION_LOST:
            self._restart_session()
        else:
            self._unreachable = code == grpc.StatusCode.UNAVAILABLE
            time.sleep(1.0)

    def _restart_session(self) -> None:
        """The server forgot this bot (it expired): its leases went to others; start over."""
        with self._lock:
            running = list(self._running.values())
            self._done.clear()
        for item in running:
            item.runner.stop()
        self._unreachable = self._terminating  # a stopping bot has no session left to report to
        while not self._terminating:
            try:
                self.session = self._create_session()
            except grpc.RpcError as error:  # the server may be restarting: keep trying until SIGTERM
                self._unreachable = True
                _log(f"pybuild worker {self.bot_id}: CreateBotSession failed: {error}")
                time.sleep(1.0)
                continue
            _log(f"pybuild worker {self.bot_id}: new session {self.session.name}")
            return

    def _heartbeat_seconds(self) -> float:
        remaining = self.session.expire_time.ToSeconds() - time.time() if self.session.HasField("expire_time") else 9
        return min(max(remaining / 3, 0.5), 10.0)

    def _changed_since(self, seen: int) -> bool:
        with self._lock:
            return self._changes != seen or (self._terminating and not self._told_terminating)

    def _wait_for_change(self, seen: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._changed_since(seen):
                return True
            time.sleep(min(_TICK, 0.02 + deadline - time.monotonic()))
        return False

    # Leases ------------------------------------------------------------------------------------------

    def _take_leases(self) -> None:
        with self._lock:
            for lease in self.session.leases:
                if lease.id in self._running or lease.id in self._done:
                    continue
                if lease.state not in (bots_pb2.PENDING, bots_pb2.ACTIVE):
                    continue
                accepted = bots_pb2.Lease()
                accepted.CopyFrom(lease)
                accepted.state = bots_pb2.ACTIVE
                if self._terminating:
                    self._complete(accepted, status_pb2.Status(code=code_pb2.UNAVAILABLE, message="worker stopping"))
                    continue
                runner = ActionRunner(self._cas, self._cache, self.options.work_dir, self.bot_id, self._jobserver)
                self._running[lease.id] = _Running(accepted, runner)
                self._pool.submit(self._run_lease, accepted, runner)

    def _enforce_grace(self) -> None:
        if self._terminating and time.monotonic() > self._grace_deadline:
            with self._lock:
                running = list(self._running.values())
            for item in running:
                item.runner.stop()

    def _run_lease(self, lease: bots_pb2.Lease, runner: ActionRunner) -> None:
        started = time.monotonic()
        _log(f"lease {lease.id}: started")
        status = status_pb2.Status(code=code_pb2.OK)
        try:
            result = runner.run(self._action_of(lease))
            lease.result.Pack(result)
            outcome = f"exit {result.exit_code}"
        except LeaseAbandoned as error:
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(error))
        except MissingBlobError as error:  # the client re-uploads inputs after FAILED_PRECONDITION
            status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=str(error))
        except RemoteError as error:
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(error))
        except Exception as error:  # a bug or a broken input root: the server may retry elsewhere
            traceback.print_exc()
            status = status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"pybuild worker: {type(error).__name__}: {error}"
            )
        if status.code != code_pb2.OK:
            outcome = f"{code_pb2.Code.Name(status.code)}: {status.message}"
        _log(f"lease {lease.id}: {outcome} after {time.monotonic() - started:.2f}s")
        with self._lock:
            self._running.pop(lease.id, None)
            self._complete(lease, status)

    def _complete(self, lease: bots_pb2.Lease, status: status_pb2.Status) -> None:
        """Queue a finished lease for the next UpdateBotSession (the caller holds the lock)."""
        lease.state = bots_pb2.COMPLETED
        lease.status.CopyFrom(status)
        self._done[lease.id] = lease
        self._changes += 1

    def _action_of(self, lease: bots_pb2.Lease) -> re_pb2.Action:
        """The lease payload: an Action (BuildGrid sends the message) or an Action digest."""
        action = re_pb2.Action()
        if lease.payload.Unpack(action):
            return action
        digest = re_pb2.Digest()
        if not lease.payload.Unpack(digest):
            raise ValueError(f"lease payload of type {lease.payload.type_url} is neither an Action nor a Digest")
        data = self._cache.read([digest], self._cas)[f"{digest.hash}/{digest.size_bytes}"]
        return re_pb2.Action.FromString(data)


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def default_platform() -> tuple[tuple[str, str], ...]:
    """What this machine runs: OSFamily and the Rust target triple of its host (x86_64 glibc Linux
    is x86_64-unknown-linux-gnu), the properties pybuild's client requests."""
    machine = os.uname().machine
    system = os.uname().sysname
    if system == "Linux":
        return (("OSFamily", "Linux"), ("TargetTriple", f"{machine}-unknown-linux-gnu"))
    return (("OSFamily", system),)


def run_worker(options: WorkerOptions) -> int:
    try:
        return Worker(options).run()
    except RemoteError as error:
        print(f"ERROR: pybuild worker: {error}", file=sys.stderr)
        return 34
    except grpc.RpcError as error:
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        print(f"ERROR: pybuild worker: remote server {options.server}: {details}", file=sys.stderr)
        return 34
