"""What each command does once its flags are parsed."""

from __future__ import annotations

import json
import re
import sys
from argparse import Namespace
from pathlib import Path

from action_graph.action import Action
from action_graph.digests import FileDigests, action_key
from pybuild import build_options, query
from pybuild.analysis import Analysis
from pybuild.errors import UsageError
from pybuild.labels import Label
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import LoadingQueryEnvironment, TargetGraphLoader

_MNEMONIC_FILTER = re.compile(r"""^\s*mnemonic\(\s*["']([^"']*)["']\s*,\s*(.+)\)\s*$""", re.S)


def graph_loader() -> TargetGraphLoader:
    cwd = Path.cwd()
    workspace = load_workspace(cwd)
    return TargetGraphLoader(PackageLoader(workspace), workspace.working_package(cwd))


def configure(loader: TargetGraphLoader, args: Namespace) -> Analysis:
    native = {name: getattr(args, name) for name in build_options.SETTING_FLAGS}
    config = build_options.build_config(loader.loader, args.compilation_mode, native, args.starlark_flags)
    return Analysis(loader, config)


def query_command(args: Namespace) -> int:
    environment = LoadingQueryEnvironment(graph_loader())
    result = query.evaluate(args.expression, environment)
    sys.stdout.write(query.format_result(result, args.output, environment))
    return 0


def aquery_command(args: Namespace) -> int:
    """Actions of the targets an expression names and of their dependencies, optionally by mnemonic."""
    expression, mnemonic = args.expression, args.mnemonic
    matched = _MNEMONIC_FILTER.match(expression)
    if matched:
        mnemonic, expression = matched.group(1), matched.group(2)
    try:
        pattern = re.compile(mnemonic or "")
    except re.error as error:
        raise UsageError(f"mnemonic filter '{mnemonic}' is not a valid regular expression: {error}") from None
    loader = graph_loader()
    environment = LoadingQueryEnvironment(loader)
    labels = [t for t in query.evaluate(expression, environment).targets if loader.loader.target(t).is_rule]
    result = configure(loader, args).run(labels)
    actions = [a for a in result.actions.topological_order() if pattern.search(a.mnemonic)]
    digests = FileDigests(str(loader.loader.workspace.root))
    sys.stdout.write(_format_actions(actions, args.output, digests))
    return 0


def _format_actions(actions: list[Action], output: str, digests: FileDigests) -> str:
    if output == "json":
        records = [dict(a.to_json(), key=action_key(a, _tool_digest(digests))) for a in actions]
        return json.dumps({"actions": records}, indent=2, sort_keys=True) + "\n"
    return "".join(_action_text(a) for a in actions)


def _tool_digest(digests: FileDigests):
    """Digests of the toolchain's files (outside the source tree); other inputs count by path here."""

    def digest(path: str) -> str | None:
        return digests.digest(path) if path.startswith("pybuild-out/external/") else None

    return digest


def _action_text(action: Action) -> str:
    lines = [
        f"action '{action.progress_message}'",
        f"  Mnemonic: {action.mnemonic}",
        f"  Target: {action.owner}",
        f"  Inputs: [{', '.join(action.inputs)}]",
        f"  Outputs: [{', '.join(action.outputs)}]",
    ]
    if action.env:
        lines.append(f"  Environment: [{', '.join(f'{k}={v}' for k, v in action.env)}]")
    if action.content is not None:
        lines.append(f"  Content: {json.dumps(action.content)}")
    else:
        lines.append("  Command Line: " + " \\\n    ".join(_quote(arg) for arg in action.argv))
    return "\n".join(lines) + "\n\n"


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def info_command(args: Namespace) -> int:
    """The workspace and the resolved Rust toolchain."""
    loader = graph_loader()
    workspace = loader.loader.workspace
    toolchain_type = Label("rules_rust", "rust", "toolchain_type")
    implementation = configure(loader, args).resolve_toolchains({toolchain_type})[toolchain_type]
    target = loader.loader.target(implementation)
    rustc = target.attrs["rustc"]
    rustc_path = workspace.repository_root(rustc.repo) / rustc.package / rustc.name
    facts = {
        "workspace": str(workspace.root),
        "output_path": str(workspace.output_base),
        "rust_toolchain": str(implementation),
        "rustc": str(rustc_path.resolve()),
        "rustc_digest": FileDigests().digest(str(rustc_path)),
        "sysroot": target.attrs["sysroot"],
        "target_triple": target.attrs["target_triple"],
        "version": target.attrs["version"],
        "channel": target.attrs["channel"],
        "default_edition": target.attrs["default_edition"],
    }
    for key, value in facts.items():
        print(f"{key}: {value}")
    return 0
