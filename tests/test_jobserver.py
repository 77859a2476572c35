"""The jobserver: its tokens, the share of a local build's scheduler and of a remote worker's slots, and the
processes that get it (a real rustc among them; test_remote.py has a worker's)."""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from pathlib import Path

from action_graph.action import Action
from action_graph.graph import ActionGraph
from action_graph.jobserver import Jobserver
from action_graph.runner import LocalRunner
from action_graph.scheduler import Outcome, Scheduler
from toolchains import local_rust


def test_the_pipe_holds_all_tokens_but_the_implicit_one_and_a_waiting_request_gets_the_next_released() -> None:
    with Jobserver(3) as jobserver:
        assert jobserver.available() == 2
        taken = [jobserver.request().result(timeout=5) for _ in range(2)]
        waiting = jobserver.request()
        time.sleep(0.05)
        assert not waiting.done()
        jobserver.release(taken[0])
        assert waiting.result(timeout=5) == taken[0]


def test_closing_ends_a_request_still_waiting() -> None:
    jobserver = Jobserver(1)  # the implicit token only
    waiting = jobserver.request()
    jobserver.close()
    assert waiting.done()


def _independent(names: str) -> ActionGraph:
    graph = ActionGraph([Action("Rustc", f"//:{name}", ("rustc",), (name,)) for name in names])
    graph.link()
    return graph


def test_an_action_waits_while_another_actions_threads_hold_the_tokens() -> None:
    """With 2 jobs, a codegen thread of the first action's process holds the one token of the pipe: the
    second action starts only once that is given back, and the build ends with the token in the pipe."""
    events: list[str] = []
    lock = threading.Lock()

    with Jobserver(2) as jobserver:
        token = os.read(jobserver.fds[0], 1)  # taken, as rustc's codegen thread would, for a's process

        def execute(action: Action, slot: int) -> Outcome:
            with lock:
                events.append(f"start {action.primary_output}")
            if action.primary_output == "a":
                time.sleep(0.3)
                with lock:
                    events.append("a gives its token back")
                os.write(jobserver.fds[1], token)
            return Outcome(action, True, slot=slot)

        costs = {"a": 3.0, "b": 2.0, "c": 1.0}  # a starts first
        scheduler = Scheduler(_independent("abc"), 2, lambda a: costs[a.primary_output], False, jobserver=jobserver)
        result = scheduler.run(execute, lambda a, s: None, lambda o: None, lambda: None)
        assert result.executed == 3
        assert events.index("a gives its token back") < events.index("start b")
        assert jobserver.available() == 1


def test_a_request_still_out_when_the_build_ends_takes_no_token_with_it() -> None:
    """b waits for a token while a runs, then starts without one when a's slot empties. A codegen thread of b
    gives its token back as b ends: the request, still out, reads it after the build, so the build must hand
    it back or the pipe stays a token short."""
    with Jobserver(2) as jobserver:
        token = os.read(jobserver.fds[0], 1)  # held by a thread of a running process

        def on_finish(outcome: Outcome) -> None:
            if outcome.action.primary_output == "b":
                os.write(jobserver.fds[1], token)

        costs = {"a": 2.0, "b": 1.0}
        scheduler = Scheduler(_independent("ab"), 2, lambda a: costs[a.primary_output], False, jobserver=jobserver)
        result = scheduler.run(lambda a, s: Outcome(a, True, slot=s), lambda a, s: None, on_finish, lambda: None)
        assert result.executed == 2
        time.sleep(0.2)  # time enough for a forgotten request's thread to read the token
        assert jobserver.available() == 1


def test_the_token_of_an_action_that_ended_goes_back_for_the_threads_of_those_still_running() -> None:
    b_ended = threading.Event()
    found: list[bool] = []

    with Jobserver(2) as jobserver:

        def execute(action: Action, slot: int) -> Outcome:
            if action.primary_output == "a":  # running beside b, which holds the pipe's one token
                assert b_ended.wait(timeout=5)
                found.append(bool(select.select([jobserver.fds[0]], [], [], 5)[0]))
            return Outcome(action, True, slot=slot)

        def on_finish(outcome: Outcome) -> None:
            if outcome.action.primary_output == "b":
                b_ended.set()

        costs = {"a": 2.0, "b": 1.0}
        scheduler = Scheduler(_independent("ab"), 2, lambda a: costs[a.primary_output], False, jobserver=jobserver)
        assert scheduler.run(execute, lambda a, s: None, on_finish, lambda: None).executed == 2
        assert found == [True]


def test_without_a_jobserver_the_slots_alone_bound_the_actions() -> None:
    started = threading.Barrier(2, timeout=5)  # both must run at once, or this times out

    def execute(action: Action, slot: int) -> Outcome:
        started.wait()
        return Outcome(action, True, slot=slot)

    scheduler = Scheduler(_independent("ab"), 2, lambda a: 1.0, False)
    assert scheduler.run(execute, lambda a, s: None, lambda o: None, lambda: None).executed == 2


def _slot(jobserver: Jobserver, name: str, events: list[str], lock: threading.Lock, work) -> threading.Thread:
    """A remote worker's slot: a thread that holds a token while its "process" (`work`) runs."""

    def run() -> None:
        with jobserver.holding():
            with lock:
                events.append(f"start {name}")
            work()
        with lock:
            events.append(f"end {name}")

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_slot_waits_while_another_slots_threads_hold_the_tokens() -> None:
    events: list[str] = []
    lock = threading.Lock()
    with Jobserver(2) as jobserver:
        token = os.read(jobserver.fds[0], 1)  # taken by a codegen thread of a's process, given back below
        a = _slot(jobserver, "a", events, lock, lambda: time.sleep(0.4))
        time.sleep(0.1)  # a runs on the implicit token
        b = _slot(jobserver, "b", events, lock, lambda: None)
        time.sleep(0.1)
        with lock:
            events.append("token back")
        os.write(jobserver.fds[1], token)
        a.join(timeout=5)
        b.join(timeout=5)
        assert events.index("token back") < events.index("start b") < events.index("end a")
        assert jobserver.available() == 1


def test_tokens_a_killed_process_took_are_put_back_when_no_process_runs() -> None:
    """a's process dies holding the pipe's one token: b, waiting for a token, runs once a has ended (on the
    implicit one), and afterwards the pipe holds its token again."""
    events: list[str] = []
    lock = threading.Lock()
    with Jobserver(2) as jobserver:
        a = _slot(jobserver, "a", events, lock, lambda: (os.read(jobserver.fds[0], 1), time.sleep(0.3)))
        time.sleep(0.1)
        b = _slot(jobserver, "b", events, lock, lambda: None)
        a.join(timeout=5)
        b.join(timeout=5)
        assert events.index("end a") < events.index("start b")
        assert jobserver.available() == 1


def _run_with_jobserver(tmp_path: Path, argv: tuple[str, ...], jobs: int = 2) -> str:
    runner = LocalRunner(tmp_path, tmp_path / "sandbox", sandboxed=False)
    with Jobserver(jobs) as jobserver:
        runner.jobserver = jobserver
        result = runner.run(Action("Probe", "//:probe", argv, ("out",)), slot=1)
    assert result.exit_code == 0, result.output
    return result.output


# Takes a token through the file descriptors CARGO_MAKEFLAGS names, gives it back, and writes the output.
_PROBE = """
import os, re
fds = re.search(r"--jobserver-auth=(\\d+),(\\d+)", os.environ["CARGO_MAKEFLAGS"])
read, write = int(fds[1]), int(fds[2])
os.write(write, os.read(read, 1))
open("out", "w").write("token")
"""


def test_a_process_gets_the_jobserver_in_its_environment_and_its_descriptors(tmp_path: Path) -> None:
    _run_with_jobserver(tmp_path, (sys.executable, "-c", _PROBE))
    assert (tmp_path / "out").read_text() == "token"


def test_rustc_connects_to_the_jobserver(tmp_path: Path) -> None:
    """rustc warns when CARGO_MAKEFLAGS names a jobserver it cannot open (descriptors not passed on)."""
    (tmp_path / "lib.rs").write_text("pub fn f() -> u32 { 1 }\n")
    rustc = str(local_rust.find_rustc())
    output = _run_with_jobserver(tmp_path, (rustc, "--crate-type=rlib", "--crate-name=probe", "lib.rs", "-o", "out"))
    assert "jobserver" not in output
