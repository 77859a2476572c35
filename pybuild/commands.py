"""What each command does once its flags are parsed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

from action_graph.action import Action
from action_graph.digests import FileDigests, action_key
from pybuild import build_options, query
from pybuild.analysis import Analysis, AnalysisResult
from pybuild.build_record import BuildRecord, action_records
from pybuild.errors import NoTestsError, UsageError
from pybuild.execution import ExecutionOptions, LocalExecution, default_local_ram_mb, link_convenience_symlink
from pybuild.labels import Label
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import LoadingQueryEnvironment, TargetGraphLoader
from pybuild.testing import create_runfiles, run_tests
from pybuild.timings_report import write_timings
from pybuild.trace_profile import write_profile

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
        pattern = re.compile(mnemonic or ".*")
    except re.error as error:
        raise UsageError(f"mnemonic filter '{mnemonic}' is not a valid regular expression: {error}") from None
    loader = graph_loader()
    environment = LoadingQueryEnvironment(loader)
    labels = [t for t in query.evaluate(expression, environment).targets if loader.loader.target(t).is_rule]
    result = configure(loader, args).run(labels)
    # As in Bazel, the filter must match the whole mnemonic: "Rustc" is not "RustcMetadata".
    actions = [a for a in result.actions.topological_order() if pattern.fullmatch(a.mnemonic)]
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


# Building, testing, running -------------------------------------------------------------------------


@dataclass
class BuildOutcome:
    ok: bool
    analysis: AnalysisResult
    labels: list[Label]
    workspace_root: Path


def build_targets(args: Namespace, patterns: list[str], extra_outputs: bool = False) -> BuildOutcome:
    """Load, analyze and execute; prints progress and the closing `Build OK` line."""
    started = time.monotonic()
    loader = graph_loader()
    workspace = loader.loader.workspace
    if not patterns:
        raise UsageError("no targets given; try //... for every target of the workspace")
    labels = [label for label in loader.resolve_patterns(patterns) if loader.loader.target(label).is_rule]
    loaded = time.monotonic()
    analysis = configure(loader, args).run(labels)
    analyzed = time.monotonic()
    outputs = [path for label in labels for path in _wanted_files(analysis, label)]
    options = ExecutionOptions(
        jobs=args.jobs,
        sandboxed=args.spawn_strategy == "sandboxed",
        keep_going=args.keep_going,
        local_ram_mb=args.local_ram_resources or default_local_ram_mb(),
    )
    execution = LocalExecution(workspace, options)
    result = execution.build(analysis.actions, outputs)
    link_convenience_symlink(workspace, analysis.config.bin_dir)
    elapsed = time.monotonic() - started
    record = BuildRecord(
        jobs=args.jobs,
        wall=elapsed,
        phases=[
            ("loading", 0.0, loaded - started),
            ("analysis", loaded - started, analyzed - started),
            ("execution", execution.started - started, elapsed),
        ],
        actions=action_records(result.outcomes, execution.started - started),
        edges=list(analysis.actions.graph.edges),
    )
    _write_reports(args, record, workspace.output_base)
    total = len(result.outcomes) + len(result.skipped)
    if result.failures or result.skipped:
        print(
            f"Build FAILED: {len(result.failures)} failed, {result.executed} executed, {result.cached} cached, "
            f"{total} total actions in {elapsed:.2f}s",
            file=sys.stderr,
        )
        return BuildOutcome(False, analysis, labels, workspace.root)
    print(
        f"Build OK: {result.executed} executed, {result.cached} cached, {total} total actions in {elapsed:.2f}s",
        file=sys.stderr,
    )
    return BuildOutcome(True, analysis, labels, workspace.root)


def _write_reports(args: Namespace, record: BuildRecord, output_base: Path) -> None:
    if args.execution_log_json_file:
        record.save_execution_log(Path(args.execution_log_json_file))
    if args.profile:
        write_profile(record, Path(args.profile))
    if args.timings:
        path = output_base / "timings.html"
        write_timings(record, path)
        print(f"INFO: timings report: {path}", file=sys.stderr)


def _wanted_files(analysis: AnalysisResult, label: Label) -> list[str]:
    summary = analysis.targets[label]
    return [*summary.files, *summary.runfiles]


def build_command(args: Namespace) -> int:
    return 0 if build_targets(args, args.targets).ok else 1


def run_command(args: Namespace) -> int:
    """Build one executable target, then run it with the arguments after `--`."""
    if len(args.targets) != 1:
        raise UsageError("run needs one target, then `--` and the program arguments: pybuild run //app -- --flag")
    target, program_args = args.targets[0], args.program_args
    outcome = build_targets(args, [target])
    if not outcome.ok:
        return 1
    if len(outcome.labels) != 1:
        raise UsageError(f"run needs exactly one target; '{target}' names {len(outcome.labels)}")
    label = outcome.labels[0]
    summary = outcome.analysis.targets[label]
    if summary.executable is None:
        raise UsageError(f"cannot run {label}: it is not executable (not a rust_binary or rust_test)")
    runfiles = create_runfiles(outcome.workspace_root, summary.executable, summary.runfiles)
    env = dict(os.environ, BUILD_WORKING_DIRECTORY=os.getcwd(), BUILD_WORKSPACE_DIRECTORY=str(outcome.workspace_root))
    executable = outcome.workspace_root / summary.executable
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run([str(executable), *program_args], env=env, cwd=runfiles / "_main", check=False).returncode


def test_command(args: Namespace) -> int:
    outcome = build_targets(args, args.targets)
    if not outcome.ok:
        return 1
    loader = graph_loader()
    tests = [label for label in outcome.labels if _is_test(loader, label)]
    if not tests:
        raise NoTestsError("no test targets were found among the requested targets")
    return run_tests(outcome, loader, tests, args.test_output, args.jobs)


def _is_test(loader: TargetGraphLoader, label: Label) -> bool:
    rule_class = loader.loader.target(label).rule_class
    return bool(rule_class and rule_class.test)


def clean_command(args: Namespace) -> int:
    """Remove outputs and the action cache; --expunge also removes generated repositories."""
    workspace = load_workspace(Path.cwd())
    base = workspace.output_base
    if args.expunge:
        shutil.rmtree(base, ignore_errors=True)
    elif base.is_dir():
        for entry in base.iterdir():
            if entry.name == "external":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
    (workspace.root / "pybuild-bin").unlink(missing_ok=True)
    print("INFO: clean finished", file=sys.stderr)
    return 0
