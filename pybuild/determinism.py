"""check-determinism: run each crate's metadata action twice and compare, with each other and with what the
build made (which may have come from another process: a fused .rmeta, a cut hollow rlib), and compare the
crate hash of metadata and full outputs. A crate that differs breaks caching and, under pipelining, linking
(E0460 "found possibly newer version of crate"): a proc-macro iterating a HashMap is the usual cause."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from action_graph.action import Action
from action_graph.digests import hash_file
from action_graph.graph import ActionGraph
from action_graph.runner import LocalRunner

_CRATE_HASH = re.compile(r"^hash (\w+)", re.M)
_CHECKED_MNEMONICS = ("RustcMetadata", "Rustc")


@dataclass
class CrateCheck:
    owner: str
    mnemonic: str
    deterministic: bool
    hashes_agree: bool | None  # metadata vs full crate hash; None when the crate has one action
    proc_macros: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.deterministic and self.hashes_agree is not False


def crate_actions(graph: ActionGraph, owners: set[str]) -> dict[str, tuple[Action, Action | None]]:
    """Per crate: the action that produces its metadata (or its only action), and its full action."""
    found: dict[str, dict[str, Action]] = {}
    for action in graph.actions:
        if action.owner in owners and action.mnemonic in _CHECKED_MNEMONICS:
            found.setdefault(action.owner, {})[action.mnemonic] = action
    return {
        owner: (kinds.get("RustcMetadata", kinds["Rustc"]), kinds["Rustc"] if "RustcMetadata" in kinds else None)
        for owner, kinds in found.items()
        if "Rustc" in kinds
    }


def rustc_of(action: Action) -> str:
    """The compiler of a rustc action: the process wrapper's command follows its `--`."""
    return action.argv[action.argv.index("--") + 1]


def check_crate(root: Path, graph: ActionGraph, first: Action, full: Action | None, rustc: str) -> CrateCheck:
    with tempfile.TemporaryDirectory(prefix="pybuild-determinism-") as scratch:
        digests = [_run_isolated(root, Path(scratch) / str(run), first) for run in (1, 2)]
        deterministic = digests[0] == digests[1]
        built = root / first.primary_output  # absent when nothing the build needed reads it
        as_built = not built.exists() or hash_file(str(built)) == digests[0]
        hashes_agree = None
        if full is not None:
            metadata_hash = _crate_hash(rustc, Path(scratch) / "1" / first.primary_output)
            hashes_agree = metadata_hash == _crate_hash(rustc, root / full.primary_output)
    detail = "" if deterministic else "two runs of the same action produced different outputs"
    if deterministic and not as_built:
        detail = f"its run wrote other bytes than the build made for {first.primary_output}"
    deterministic = deterministic and as_built
    if hashes_agree is False:
        detail = (detail + "; " if detail else "") + "the metadata and the full rlib have different crate hashes"
    return CrateCheck(first.owner, first.mnemonic, deterministic, hashes_agree, _proc_macros(graph, first), detail)


def _run_isolated(root: Path, output_root: Path, action: Action) -> str:
    sandbox_base = output_root / "sandbox"
    runner = LocalRunner(root, sandbox_base, sandboxed=True, output_root=output_root)
    result = runner.run(action, slot=1)
    shutil.rmtree(sandbox_base, ignore_errors=True)
    if result.exit_code != 0:
        raise RuntimeError(f"{action.describe()} failed while checking determinism:\n{result.output}")
    return hash_file(str(output_root / action.primary_output))


def _crate_hash(rustc: str, path: Path) -> str | None:
    """The crate hash (SVH) rustc records in an rlib, .rmeta or hollow rlib."""
    env = {"RUSTC_BOOTSTRAP": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # -Z ls is unstable
    done = subprocess.run([rustc, "-Zls=root", str(path)], capture_output=True, text=True, env=env, check=False)
    match = _CRATE_HASH.search(done.stdout)
    return match.group(1) if match else None


def _proc_macros(graph: ActionGraph, action: Action) -> list[str]:
    owners = {graph.producer(p).owner for p in action.inputs if p.endswith(".so") and graph.producer(p)}
    return sorted(owners)
