"""An action: one process to run, described as plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Action:
    """What to run and what it reads and writes. Paths are relative to the execution root.

    `content` is set only for file-write actions (ctx.actions.write), which run no process.
    """

    mnemonic: str
    owner: str  # label of the target whose rule created the action
    argv: tuple[str, ...]
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    progress_message: str = ""
    execution_requirements: tuple[tuple[str, str], ...] = ()
    content: str | None = None
    is_executable: bool = False
    output_directories: tuple[str, ...] = field(default=())

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def primary_output(self) -> str:
        return self.outputs[0]

    def describe(self) -> str:
        return f"{self.mnemonic} {self.primary_output} (owner {self.owner})"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["env"] = dict(self.env)
        data["execution_requirements"] = dict(self.execution_requirements)
        for name in ("argv", "outputs", "inputs", "output_directories"):
            data[name] = list(data[name])
        return data
