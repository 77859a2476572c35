"""Execution of an analyzed build: cache lookups, sandboxed or remote runs, outputs recorded atomically."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from action_graph.action import Action
from action_graph.cache import ActionCache, ActionResult, OutputRecord
from action_graph.digests import FileDigests, MachineDigests, action_key, machine_digests_path
from action_graph.fileutil import atomic_copy, atomic_open, atomic_symlink, atomic_write_text
from action_graph.graph import ActionGraph
from action_graph.jobserver import Jobserver
from action_graph.rlib import metadata_span, write_hollow_rlib
from action_graph.runner import ActionFailed, EarlyOutput, LocalRunner, SpawnResult
from action_graph.scheduler import Budget, Outcome, Scheduler, ScheduleResult, early_output_source
from action_graph.uptodate import UpToDate
from pybuild.errors import PybuildError
from pybuild.launchers import in_process_launchers
from pybuild.progress import Progress
from pybuild.workspace import Workspace

if TYPE_CHECKING:  # the gRPC client is imported only when a remote flag is given
    from action_graph.remote.client import RemoteOptions
    from action_graph.remote.strategy import RemoteStrategy

# Seconds an action of this mnemonic takes when no earlier run measured it.
_DEFAULT_COSTS = {"RustcMetadata": 1.0, "Rustc": 2.0, "FileWrite": 0.01}


# Peak memory of an action no earlier run measured (Bazel assumes 250 MB as well).
_DEFAULT_RSS_MB = 250.0


@dataclass
class ExecutionOptions:
    jobs: int
    sandboxed: bool
    sandbox_base: Path  # one sandbox per slot under it
    keep_going: bool
    local_ram_mb: float  # running actions' estimated peak RSS stays below this
    remote: RemoteOptions | None = None  # --remote_executor / --remote_cache


class RemoteUnavailableError(PybuildError):
    """The remote server cannot be reached and --remote_local_fallback was not given."""

    exit_code = 34  # Bazel's exit code for remote errors


def default_local_ram_mb() -> float:
    """Two thirds of the memory available now, as Bazel's HOST_RAM*.67."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) / 1024 * 2 / 3
    except (OSError, KeyError, ValueError):
        return 4096.0


class LocalExecution:
    def __init__(self, workspace: Workspace, options: ExecutionOptions) -> None:
        self.workspace = workspace
        self.options = options
        self.state_dir = workspace.output_base / "cache"
        self.cache = ActionCache(self.state_dir)
        self.digests = FileDigests(str(workspace.root), MachineDigests(machine_digests_path()))
        self.digests.load(str(self.state_dir / "digests.json"))
        self.up_to_date = UpToDate(self.state_dir, self.digests, self.cache)
        self.costs: dict[str, float] = _load_json(workspace.history_dir / "costs.json")
        self.peak_rss_mb: dict[str, float] = _load_json(workspace.history_dir / "peak_rss.json")
        self.runner = LocalRunner(
            workspace.root, options.sandbox_base, options.sandboxed, launchers=in_process_launchers()
        )
        # Outside the output base sandboxes are on the RAM disk (or where --sandbox_base put them): they last
        # only while a build runs, and a full one there is worth naming in a failure.
        self._sandboxes_elsewhere = not options.sandbox_base.is_relative_to(workspace.output_base)
        self.remote = self._connect_remote(options.remote) if options.remote else None
        # With remote execution -j may exceed the cores; local runs (fallback, no-remote) still may not.
        self._local_slots = threading.BoundedSemaphore(os.cpu_count() or 1)

    def _connect_remote(self, remote: RemoteOptions) -> RemoteStrategy | None:
        from action_graph.remote.connection import RemoteError
        from action_graph.remote.strategy import RemoteStrategy

        strategy = RemoteStrategy(remote, self.workspace.root, self.digests, self._spawn_local)
        try:
            strategy.connect()
        except RemoteError as error:
            strategy.close()
            if not remote.local_fallback:
                raise RemoteUnavailableError(
                    f"{error} (--remote_timeout={remote.timeout:g}); --remote_local_fallback builds locally instead"
                ) from None
            print(f"WARNING: {error}; building locally (--remote_local_fallback)", file=sys.stderr, flush=True)
            return None
        return strategy

    def build(self, graph: ActionGraph, outputs: list[str]) -> ScheduleResult:
        self.started = time.monotonic()
        self._keys: dict[str, str] = {}  # primary output -> action key, for this build
        needed = graph.subgraph_for(outputs)
        result = self.up_to_date.check(needed, self.started)
        done = {outcome.action.primary_output for outcome in result.outcomes}
        left = needed.without(done) if done else needed
        progress = Progress(len(left.actions))
        budget = Budget(self.options.local_ram_mb, self._estimated_rss_mb)
        # Remote workers share out their own cores; here -j tokens bound the actions and their threads together.
        jobserver = self.runner.jobserver = Jobserver(self.options.jobs) if self.remote is None else None
        scheduler = Scheduler(left, self.options.jobs, self._cost, self.options.keep_going, budget, jobserver)
        try:
            # Fusing and cutting need both actions on this machine; remote actions run one process each.
            local = self.remote is None and _fusion_enabled()
            fused, cut = (self._execute_fused, self._execute_cut) if local else (None, None)
            if left.actions:
                ran = scheduler.run(self._timed_execute, progress.start, progress.finish, self._interrupted, fused, cut)
                result = ScheduleResult(result.outcomes + ran.outcomes, ran.skipped)
            self.up_to_date.remember(needed, result)
        finally:
            if jobserver is not None:
                self.runner.jobserver = None
                jobserver.close()
            progress.close()
            self._save_state()
            if self.remote is not None:
                self.remote.close()
            if self._sandboxes_elsewhere:
                self.runner.remove_sandboxes()  # on a RAM disk they would hold memory between builds
        return result

    def _full_sandbox_hint(self, output: str) -> str:
        """When an action ran out of room in a sandbox elsewhere, say so: its message names only a file there."""
        if not self._sandboxes_elsewhere or "No space left on device" not in output:
            return ""
        base = self.options.sandbox_base
        return f"; its sandbox under {base} may be full: pass --sandbox_base=DIR on a larger file system"

    def _interrupted(self) -> None:
        if self.remote is not None:
            self.remote.close()  # in-flight remote calls end at once (CANCELLED) instead of running on
        self.runner.discard_outputs(self.runner.stop_all())

    def _estimated_rss_mb(self, action: Action) -> float:
        if self.remote is not None and action.content is None:
            return 0.0  # a worker's memory, not ours (a local fallback is bounded by _local_slots)
        return self.peak_rss_mb.get(_cost_key(action), _DEFAULT_RSS_MB)

    def _cost(self, action: Action) -> float:
        return self.costs.get(_cost_key(action), _DEFAULT_COSTS.get(action.mnemonic, 1.0))

    def _timed_execute(self, action: Action, slot: int, early: EarlyOutput | None = None) -> Outcome:
        start = time.monotonic()
        outcome = self._execute(action, slot, early)
        outcome.start, outcome.end = start - self.started, time.monotonic() - self.started
        return outcome

    def _execute_fused(
        self, early: Action, main: Action, slot: int, settle_early: Callable[[Outcome], None]
    ) -> Outcome:
        """One process for both (see scheduler.py): `main`'s process writes `early`'s output before it ends.
        When either is cached, fusing gains nothing: both get ordinary runs, the early one first."""
        if self._is_cached(early) or self._is_cached(main):
            settle_early(self._timed_execute(early, slot))
            return self._timed_execute(main, slot)
        start = time.monotonic()
        source = early_output_source(early)
        assert source is not None  # the scheduler fuses only actions that name their source

        def adopt(written: Path) -> None:
            settle_early(self._adopt_early_output(early, written, slot, start))

        outcome = self._timed_execute(main, slot, (source[1], adopt))
        if outcome.ok and not outcome.cached:  # run alone, the early action needs at most what both did
            self.peak_rss_mb[_cost_key(early)] = outcome.peak_rss_kb / 1024
        return outcome

    def _action_key(self, action: Action) -> str:
        """Computed once per action (it stats every input): a fused pair needs both keys before it runs, and
        each again to record its result. An action's inputs are complete and fixed once it is ready."""
        key = self._keys.get(action.primary_output)
        if key is None:
            key = self._keys[action.primary_output] = action_key(action, self.digests.digest)
        return key

    def _is_cached(self, action: Action) -> bool:
        try:
            return self.cache.lookup(self._action_key(action)) is not None
        except FileNotFoundError:
            return False

    def _adopt_early_output(self, early: Action, written: Path, slot: int, start: float) -> Outcome:
        """Record the file another action's process wrote as `early`'s output, exactly as if `early` had run:
        the same bytes (rustc's .rmeta does not depend on the output directory) under `early`'s own key."""
        destination = self.workspace.root / early.primary_output
        failure = f"cannot take its output from {written}"
        outcome = self._record_made_output(early, lambda: atomic_copy(written, destination), slot, start, failure)
        if outcome.ok:
            self.costs[_cost_key(early)] = outcome.duration
        return outcome

    def _execute_cut(self, hollow: Action, full: Action, slot: int) -> Outcome:
        """Cut `hollow`'s hollow rlib from the rlib `full` built (see scheduler.py): the bytes its own rustc
        would write, recorded under its own key. Cached, or not cuttable, it runs after all. Its cost stays
        the estimate of a run, which the next build's plan needs."""
        full_rlib = self.workspace.root / full.primary_output
        span = None if self._is_cached(hollow) else metadata_span(full_rlib)
        if span is None:
            return self._timed_execute(hollow, slot)
        start = time.monotonic()

        def write() -> None:
            with atomic_open(self.workspace.root / hollow.primary_output) as hollow_rlib:
                write_hollow_rlib(full_rlib, span, hollow_rlib)

        outcome = self._record_made_output(hollow, write, slot, start, "cannot write its hollow rlib")
        outcome.waited_for = full.primary_output
        return outcome

    def _record_made_output(
        self, action: Action, make: Callable[[], None], slot: int, start: float, failure: str
    ) -> Outcome:
        """Record what `make` writes, without a process of `action`'s own, as if `action` had run."""
        try:
            key = self._action_key(action)
            make()
            records = self._store_outputs(action)
        except (OSError, ValueError, ActionFailed) as error:
            return Outcome(action, False, error=f"{failure}: {error}", slot=slot)
        now = time.monotonic()
        self.cache.record(key, ActionResult(tuple(records), now - start, 0))
        times = {"start": start - self.started, "end": now - self.started}
        return Outcome(action, True, duration=now - start, slot=slot, shares_process=True, **times)

    def _execute(self, action: Action, slot: int, early: EarlyOutput | None = None) -> Outcome:
        try:
            return self._execute_or_raise(action, slot, early)
        except OSError as error:
            # A full disk or an unwritable output tree: name the action and the path, and record nothing
            # (cache entries are written only after every output is stored, so the cache stays consistent).
            problem = f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
            return Outcome(action, False, error=f"cannot run or store its outputs: {problem}", slot=slot)

    def _execute_or_raise(self, action: Action, slot: int, early: EarlyOutput | None) -> Outcome:
        start = time.monotonic()
        try:
            key = self._action_key(action)
        except FileNotFoundError as error:
            return Outcome(action, False, error=f"input {error.filename} is missing", slot=slot, start=start)
        hit = self.cache.lookup(key)
        if hit is not None and self._materialize(hit):
            return Outcome(action, True, cached=True, duration=hit.duration, slot=slot, start=start)
        try:
            spawn = self._spawn(action, slot, early)
            if spawn.exit_code != 0:
                return Outcome(
                    action,
                    False,
                    output=spawn.output,
                    error=_exit_text(spawn.exit_code, spawn.peak_rss_kb) + self._full_sandbox_hint(spawn.output),
                    duration=spawn.duration,
                    peak_rss_kb=spawn.peak_rss_kb,
                    slot=slot,
                    start=start,
                )
            records = self._store_outputs(action)
        except ActionFailed as error:
            return Outcome(action, False, error=str(error), slot=slot, start=start)
        self.cache.record(key, ActionResult(tuple(records), spawn.duration, spawn.peak_rss_kb))
        self.costs[_cost_key(action)] = spawn.duration
        cached, remote = getattr(spawn, "cached", False), getattr(spawn, "remote", False)
        if not (cached or remote):  # only a local run measures local memory
            self.peak_rss_mb[_cost_key(action)] = spawn.peak_rss_kb / 1024
        return Outcome(
            action,
            True,
            cached=cached,
            output="" if cached else spawn.output,
            duration=spawn.duration,
            peak_rss_kb=spawn.peak_rss_kb,
            slot=slot,
            start=start,
        )

    def _spawn(self, action: Action, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        """Run the action here, or through the remote strategy when a remote server is configured."""
        if self.remote is not None and action.content is None:
            return self.remote.run(action, slot)
        return self._spawn_local(action, slot, early)

    def _spawn_local(self, action: Action, slot: int, early: EarlyOutput | None = None) -> SpawnResult:
        if self.remote is None:
            return self.runner.run(action, slot, early)
        with self._local_slots:
            return self.runner.run(action, slot)

    def _store_outputs(self, action: Action) -> list[OutputRecord]:
        root = self.workspace.root
        missing = [o for o in action.outputs if not (root / o).exists()]
        if missing:
            raise ActionFailed(f"{action.describe()} did not create its declared output(s): {', '.join(missing)}")
        records = []
        for output in action.outputs:
            for path in _files_under(root, output):
                full = root / path
                records.append(OutputRecord(path, self.cache.store_file(full), os.access(full, os.X_OK)))
        # Known at once: dependents' action keys in this build, and the next build, need not hash them again.
        self.digests.learn(self.cache.stored_digests_of(str(root / record.path) for record in records))
        return records

    def _materialize(self, hit: ActionResult) -> bool:
        """Put a cached result's outputs in place; files already there with the right digest stay."""
        for record in hit.outputs:
            try:
                if self.digests.digest(record.path) == record.digest:
                    continue
            except FileNotFoundError:
                pass
            if not self.cache.restore(record, self.workspace.root / record.path):
                return False
        return True

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.digests.save(str(self.state_dir / "digests.json"))
        if self.digests.machine is not None:
            self.digests.machine.save()
        history = self.workspace.history_dir
        history.mkdir(exist_ok=True)
        atomic_write_text(history / "costs.json", json.dumps(self.costs, sort_keys=True))
        atomic_write_text(history / "peak_rss.json", json.dumps(self.peak_rss_mb, sort_keys=True))


def link_convenience_symlink(workspace: Workspace, bin_dir: str) -> None:
    atomic_symlink(workspace.root / bin_dir, workspace.root / "pybuild-bin")


def _files_under(root: Path, output: str) -> list[str]:
    full = root / output
    if not full.is_dir():
        return [output]
    return sorted(str(Path(d, f).relative_to(root)) for d, _, files in os.walk(full) for f in files)


def _fusion_enabled() -> bool:
    """PYBUILD_FUSE_PIPELINED=0 runs every action in its own process (to compare, or to rule fusion and cuts
    out)."""
    return os.environ.get("PYBUILD_FUSE_PIPELINED", "1") != "0"


def _cost_key(action: Action) -> str:
    return f"{action.owner}|{action.mnemonic}|{action.primary_output}"


def _exit_text(code: int, peak_rss_kb: int) -> str:
    if code == -signal.SIGKILL:
        return (
            f"killed by SIGKILL, probably out of memory (peak RSS {peak_rss_kb // 1024} MB); "
            "run fewer actions at once with a lower --jobs or --local_ram_resources"
        )
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _load_json(path: Path) -> dict[str, float]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
