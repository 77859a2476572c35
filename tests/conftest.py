"""Fixtures every test module may use."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspace_helpers import Runner, run_in_process


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """run(cwd, *args): the CLI in this process, returning (exit code, stdout, stderr)."""

    def run(cwd: Path, *args: str) -> tuple[int, str, str]:
        return run_in_process(monkeypatch, capsys, cwd, *args)

    return run
