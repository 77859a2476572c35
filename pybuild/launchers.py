"""Tools of the bundled rules that local actions do not need to start: pybuild runs their part in-process."""

from __future__ import annotations

import importlib.util
import os

from action_graph.runner import Launcher
from pybuild.workspace import bundled_dir


def in_process_launchers() -> dict[str, Launcher]:
    """The bundled process wrapper's direct_command, keyed by the wrapper's real path. Every rustc action
    starts the wrapper, which rewrites `${pwd}`, starts rustc and at most renders rustc's JSON diagnostics;
    doing that here saves an interpreter start per action and runs the very same rustc command. It still
    starts when it must stop rustc early (--rustc-quit-on-rmeta), and actions of a rules_rust from
    elsewhere name another file and start their own wrapper."""
    wrapper = bundled_dir("rules") / "util" / "process_wrapper" / "process_wrapper.py"
    spec = importlib.util.spec_from_file_location("pybuild_process_wrapper", wrapper)
    if spec is None or spec.loader is None:
        return {}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {os.path.realpath(wrapper): module.direct_command}
