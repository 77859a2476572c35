"""What a person sees while building: `[done/total] message` lines, or one live line on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the no-op shortcut prints summary_line without importing the scheduler
    from action_graph.action import Action
    from action_graph.scheduler import Outcome


class Progress:
    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.live = stream.isatty()
        self.running: dict[int, Action] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def start(self, action: Action, slot: int) -> None:
        with self._lock:
            self.running[slot] = action
            if self.live:
                self._redraw()

    def finish(self, outcome: Outcome) -> None:
        with self._lock:
            self.running.pop(outcome.slot, None)
            self.done += 1
            if not outcome.ok:
                self._clear()
                self.stream.write(_failure_text(outcome))
            elif outcome.output.strip():
                self._clear()
                self.stream.write(f"INFO: From {outcome.action.progress_message}:\n{outcome.output.rstrip()}\n")
            if self.live:
                self._redraw()
            elif not outcome.cached:
                self.stream.write(f"[{self.done}/{self.total}] {outcome.action.progress_message}\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")

    def _redraw(self) -> None:
        names = "; ".join(a.progress_message for a in self.running.values())
        line = f"[{self.done}/{self.total}] {names}"
        self.stream.write("\r\033[K" + line[:200])
        self.stream.flush()


def summary_line(executed: int, cached: int, total: int, seconds: float, failed: int | None = None) -> str:
    """The last line of a build (scripts and benchmarks parse it); `failed` is None for a build that passed."""
    counts = f"{executed} executed, {cached} cached, {total} total actions in {seconds:.2f}s"
    return f"Build OK: {counts}" if failed is None else f"Build FAILED: {failed} failed, {counts}"


def _failure_text(outcome: Outcome) -> str:
    action = outcome.action
    diagnostics = outcome.output.rstrip()
    body = f"{diagnostics}\n" if diagnostics else ""
    return f"{body}ERROR: {action.owner}: {action.mnemonic} failed: {outcome.error}\n"
