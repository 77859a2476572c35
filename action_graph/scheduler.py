"""Runs an action graph on N slots, always starting the ready action with the longest remaining
critical path, so pipelined metadata actions unblock dependents while codegen still runs.

An optional memory budget bounds the summed estimated peak RSS of running actions: on a small
machine fewer big rustc processes run at once instead of being killed by the kernel.

Fusion: an action may say that another action's process also writes its only output, early (rmeta
pipelining: the full compile writes the .rmeta before codegen). When both are ready and the executor can
fuse, one process in one slot serves both, as Cargo's pipelining does, and the early action finishes (and
unblocks its dependents) while that process still runs.

Cuts: a hollow rlib can also be cut from its crate's full rlib once that is built (rlib.py). Where
hollow_cuts.py plans so, the metadata action waits for the full compile and then takes no slot: a front end
less to run when the slots are busy anyway.

Tokens: with a jobserver (jobserver.py), an action in a slot also holds a token, the first one implicitly,
and the threads rustc starts for codegen take the others: an action waits for a slot and a token.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from action_graph.action import Action
from action_graph.graph import ActionGraph
from action_graph.hollow_cuts import plan_cuts
from action_graph.jobserver import Jobserver
from action_graph.list_schedule import ScheduleGraph


@dataclass
class Outcome:
    """How one action ended. `cached` means its outputs came from the action cache."""

    action: Action
    ok: bool
    cached: bool = False
    output: str = ""
    duration: float = 0.0
    peak_rss_kb: int = 0
    error: str | None = None
    start: float = 0.0  # seconds since the build started
    end: float = 0.0
    slot: int = 0
    shares_process: bool = False  # a fused early action: its time is part of another action's process
    waited_for: str | None = None  # beyond its inputs: the full compile a hollow rlib was cut from


# Execution requirements of an action whose output another action's process writes early (see above).
EARLY_OUTPUT_OF = "early-output-of"  # the other action's primary output
EARLY_OUTPUT_PATH = "early-output-path"  # where that process writes this action's output


def early_output_source(action: Action) -> tuple[str, str] | None:
    """(primary output of the action whose process also writes this action's output, the path it writes)."""
    requirements = dict(action.execution_requirements)
    if EARLY_OUTPUT_OF not in requirements or EARLY_OUTPUT_PATH not in requirements:
        return None
    return requirements[EARLY_OUTPUT_OF], requirements[EARLY_OUTPUT_PATH]


# execute_fused(early, main, slot, settle_early) runs `main` and calls settle_early(outcome of early) once.
ExecuteFused = Callable[[Action, Action, int, Callable[["Outcome"], None]], "Outcome"]

# Execution requirement of a metadata action whose hollow rlib can be cut from this full rlib (see above).
HOLLOW_RLIB_OF = "hollow-rlib-of"

# execute_cut(hollow, full, slot) makes `hollow`'s output from that of `full`, which has run in `slot`.
ExecuteCut = Callable[[Action, Action, int], "Outcome"]


# Planning costs about 1.5 µs per edge: a bigger graph (10,000 crates have 1.5 M) makes every hollow rlib
# with rustc rather than spend seconds on the plan before each build.
PLANNED_EDGES = 300_000
# How long a build's end waits for a token request still out (see Scheduler._settle_token_request): a reader
# thread takes a token the moment one is written, so this is only spent when none will come.
_SETTLE_SECONDS = 1.0


def hollow_rlib_source(action: Action) -> str | None:
    """The primary output of the full compile that `action`'s hollow rlib can be cut from."""
    return dict(action.execution_requirements).get(HOLLOW_RLIB_OF)


@dataclass
class ScheduleResult:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[Action] = field(default_factory=list)  # never ran because something they need failed

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def executed(self) -> int:
        return sum(1 for o in self.outcomes if o.ok and not o.cached)

    @property
    def cached(self) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.cached)


@dataclass
class Budget:
    """Memory limit for concurrently running actions, and each action's estimated peak in MB."""

    limit_mb: float
    estimate_mb: Callable[[Action], float]


@dataclass
class _Run:
    """Mutable state of one scheduling run."""

    waiting: dict[str, int]
    ready: list[tuple[float, str]]  # a heap of (-priority, node); a node not in `queued` was taken off it
    queued: set[str]  # the nodes ready to start: taking a fusion partner is a set removal, not a heap search
    free_slots: list[int]
    running: dict[Future[Outcome], tuple[str, int | None, float]] = field(default_factory=dict)  # slot None: fused
    cut_from: dict[str, str] = field(default_factory=dict)  # hollow rlib -> the full compile to cut it from
    cut_after: dict[str, str] = field(default_factory=dict)  # and the other way round
    cuttable: list[tuple[str, str, int]] = field(default_factory=list)  # (hollow, full, its slot), to cut now
    memory_in_use: float = 0.0
    tokens: list[bytes] = field(default_factory=list)  # jobserver tokens held for the running actions
    token_request: Future[bytes] | None = None
    stopping: bool = False
    result: ScheduleResult = field(default_factory=ScheduleResult)

    def push(self, entry: tuple[float, str]) -> None:
        heapq.heappush(self.ready, entry)
        self.queued.add(entry[1])

    def pop(self) -> tuple[float, str] | None:
        """The most critical ready entry, or None."""
        while self.ready:
            entry = heapq.heappop(self.ready)
            if entry[1] in self.queued:
                self.queued.remove(entry[1])
                return entry
        return None


class Scheduler:
    def __init__(
        self,
        graph: ActionGraph,
        jobs: int,
        cost: Callable[[Action], float],
        keep_going: bool,
        budget: Budget | None = None,
        jobserver: Jobserver | None = None,
    ) -> None:
        self.graph = graph
        self.jobs = max(1, jobs)
        self.cost = cost
        self.priority = graph.remaining_critical_path(cost)
        self.keep_going = keep_going
        self.budget = budget
        self.jobserver = jobserver
        self.partners = self._fusable_pairs()

    def run(
        self,
        execute: Callable[[Action, int], Outcome],
        on_start: Callable[[Action, int], None],
        on_finish: Callable[[Outcome], None],
        on_interrupt: Callable[[], None],
        execute_fused: ExecuteFused | None = None,
        execute_cut: ExecuteCut | None = None,
    ) -> ScheduleResult:
        cuts = self._plan_cuts() if execute_cut else {}
        waiting = {node: len(producers) + (node in cuts) for node, producers in self.graph.predecessors().items()}
        ready = [(-self.priority[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        cut_after = {full: hollow for hollow, full in cuts.items()}
        queued = {node for _, node in ready}
        run = _Run(waiting, ready, queued, list(range(self.jobs, 0, -1)), cut_from=cuts, cut_after=cut_after)
        with ThreadPoolExecutor(max_workers=self.jobs + 1) as pool:  # + 1: a cut never waits for a slot's thread
            try:
                while run.running or ((run.queued or run.cuttable) and not run.stopping):
                    self._start_cuts(run, pool, execute_cut, on_start)
                    self._start_ready(run, pool, execute, on_start, execute_fused)
                    self._return_spare_tokens(run)
                    self._collect_finished(run, on_finish)
            except KeyboardInterrupt:
                on_interrupt()
                raise
            finally:
                self._return_spare_tokens(run, keep=0)
                self._settle_token_request(run)
        done = {o.action.primary_output for o in run.result.outcomes}
        run.result.skipped = [action for node, action in self.graph.items() if node not in done]
        return run.result

    def _plan_cuts(self) -> dict[str, str]:
        """Hollow rlibs to cut (hollow_cuts.py); the full compiles they wait for now lead their dependents."""
        predecessors = self.graph.predecessors()
        if sum(map(len, predecessors.values())) > PLANNED_EDGES:
            return {}
        pairs = {}
        for node, action in self.graph.items():
            full = hollow_rlib_source(action)
            if full in predecessors and node not in predecessors[full]:
                pairs[node] = full
        if not pairs:
            return {}
        costs = {node: self.cost(action) for node, action in self.graph.items()}
        plan = plan_cuts(ScheduleGraph(costs, predecessors, pairs), costs, pairs, self.jobs)
        if plan.cuts:
            self.priority = plan.priority
        return plan.cuts

    def _start_cuts(self, run: _Run, pool: ThreadPoolExecutor, execute_cut, on_start) -> None:
        """Cut the hollow rlibs whose full compiles have ended: beside the slots, in a moment each."""
        while run.cuttable and not run.stopping:
            hollow, full, slot = run.cuttable.pop()
            action = self.graph.action(hollow)
            on_start(action, slot)
            run.running[pool.submit(execute_cut, action, self.graph.action(full), slot)] = (hollow, None, 0.0)

    def _fusable_pairs(self) -> dict[str, str]:
        """Both ways: an early-output action and the action whose process writes that output."""
        pairs = {}
        for node, action in self.graph.items():
            source = early_output_source(action)
            if source is not None and source[0] in self.graph:
                pairs[node], pairs[source[0]] = source[0], node
        return pairs

    def _start_ready(self, run: _Run, pool: ThreadPoolExecutor, execute, on_start, execute_fused) -> None:
        while run.queued and run.free_slots and not run.stopping and self._token_for_one_more(run):
            picked = self._pick(run)
            if picked is None:
                return  # nothing fits in the memory budget until something finishes
            node, memory = picked
            slot = run.free_slots.pop()
            partner = self._take_ready_partner(node, run) if execute_fused else None
            if partner is not None:
                memory = max(memory, self._estimated_memory(partner))  # one process, the bigger estimate
            run.memory_in_use += memory
            if partner is not None:
                self._start_fused(node, partner, slot, memory, run, pool, execute_fused, on_start)
                continue
            action = self.graph.action(node)
            on_start(action, slot)
            run.running[pool.submit(execute, action, slot)] = (node, slot, memory)

    def _in_slots(self, run: _Run) -> int:
        return self.jobs - len(run.free_slots)

    def _token_for_one_more(self, run: _Run) -> bool:
        """Whether a token is held for one more action in a slot; if not, ask the jobserver for one."""
        if self.jobserver is None or len(run.tokens) >= self._in_slots(run):  # the first holds none
            return True
        if run.token_request is None:
            run.token_request = self.jobserver.request()
        return False

    def _return_spare_tokens(self, run: _Run, keep: int | None = None) -> None:
        """Give back what the actions in slots do not hold, for their codegen threads to take."""
        if self.jobserver is None:
            return
        keep = max(0, self._in_slots(run) - 1) if keep is None else keep
        while len(run.tokens) > keep:
            self.jobserver.release(run.tokens.pop())

    def _settle_token_request(self, run: _Run) -> None:
        """A request still out when the build ends would take a token from the pipe after it, for no one: the
        action it was for started without it once a slot emptied. The tokens just given back (or a running
        process's, later) wake it, and what it read goes back too. If none comes (tokens lost with a killed
        process), it is left to Jobserver.close, which writes one for it."""
        request, run.token_request = run.token_request, None
        if request is not None:
            with contextlib.suppress(TimeoutError):
                self.jobserver.release(request.result(timeout=_SETTLE_SECONDS))

    def _take_ready_partner(self, node: str, run: _Run) -> str | None:
        """The node's fusion partner, taken off the ready heap, if it is ready too."""
        partner = self.partners.get(node)
        if partner not in run.queued:
            return None
        run.queued.remove(partner)
        return partner

    def _estimated_memory(self, node: str) -> float:
        return self.budget.estimate_mb(self.graph.action(node)) if self.budget else 0.0

    def _start_fused(self, node, partner, slot, memory, run: _Run, pool, execute_fused, on_start) -> None:
        """One process for both; the early action's outcome arrives on its own future, holding no slot."""
        early, main = (node, partner) if early_output_source(self.graph.action(node)) else (partner, node)
        early_action, main_action = self.graph.action(early), self.graph.action(main)
        early_done: Future[Outcome] = Future()

        def settle_early(outcome: Outcome) -> None:
            if not early_done.done():
                early_done.set_result(outcome)

        def run_both() -> Outcome:
            # Whatever happens, the early action must end too, or the build would wait for it forever.
            unwritten = f"{main_action.describe()}, its process, did not write it"
            failure = Outcome(early_action, False, error=unwritten, slot=slot, shares_process=True)
            try:
                outcome = execute_fused(early_action, main_action, slot, settle_early)
                failure.start = failure.end = outcome.start
                return outcome
            finally:
                settle_early(failure)

        on_start(early_action, slot)
        on_start(main_action, slot)
        run.running[early_done] = (early, None, 0.0)
        run.running[pool.submit(run_both)] = (main, slot, memory)

    def _pick(self, run: _Run) -> tuple[str, float] | None:
        """The most critical ready action that fits the memory budget (any action if none runs)."""
        passed_over = []  # taken off the heap in order, and put back: a few, not a sort of all ready
        try:
            while (entry := run.pop()) is not None:
                memory = self._estimated_memory(entry[1])
                if self.budget is None or not run.running or run.memory_in_use + memory <= self.budget.limit_mb:
                    return entry[1], memory
                passed_over.append(entry)
            return None
        finally:
            for entry in passed_over:
                run.push(entry)

    def _collect_finished(self, run: _Run, on_finish: Callable[[Outcome], None]) -> None:
        request = run.token_request
        done, _ = wait([*run.running, *([request] if request else [])], return_when=FIRST_COMPLETED)
        if request in done:
            run.tokens.append(request.result())
            run.token_request = None
            done.remove(request)
        for future in done:
            node, slot, memory = run.running.pop(future)
            if slot is not None:
                run.free_slots.append(slot)
            run.memory_in_use -= memory
            outcome = future.result()
            run.result.outcomes.append(outcome)
            on_finish(outcome)
            if outcome.ok:
                self._release(node, run, outcome.slot)
            elif not self.keep_going:
                run.stopping = True

    def _release(self, node: str, run: _Run, slot: int) -> None:
        cut = run.cut_after.get(node)
        for successor in [*self.graph.successors(node), *([cut] if cut else [])]:
            run.waiting[successor] -= 1
            if run.waiting[successor] > 0:
                continue
            if successor in run.cut_from:
                run.cuttable.append((successor, run.cut_from[successor], slot))
            else:
                run.push((-self.priority[successor], successor))
