"""What each command does once its flags are parsed."""

from __future__ import annotations

import json
import os
import platform
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
from pybuild import build_options, determinism, noop_record, query
from pybuild.analysis import Analysis, AnalysisResult
from pybuild.build_record import BuildRecord, action_records
from pybuild.errors import NoTestsError, PybuildError, UsageError
from pybuild.execution import ExecutionOptions, LocalExecution, default_local_ram_mb, link_convenience_symlink
from pybuild.labels import Label
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.progress import summary_line
from pybuild.sandbox_location import remove_ram_disk_sandboxes, sandbox_base
from pybuild.target_graph import LoadingQueryEnvironment, TargetGraphLoader
from pybuild.testing import create_runfiles, run_tests
from pybuild.trace_profile import write_profile
from pybuild.workspace import BIN_LINK_NAME

_MNEMONIC_FILTER = re.compile(r"""^\s*mnemonic\(\s*["']([^"']*)["']\s*,\s*(.+)\)\s*$""", re.S)


def graph_loader(args: Namespace) -> TargetGraphLoader:
    cwd = Path.cwd()
    workspace = load_workspace(cwd)
    packages = PackageLoader(workspace)
    packages.loading_processes = args.loading_phase_threads
    return TargetGraphLoader(packages, workspace.working_package(cwd))


def configure(loader: TargetGraphLoader, args: Namespace) -> Analysis:
    native = {name: getattr(args, name) for name in build_options.SETTING_FLAGS}
    config = build_options.build_config(loader.loader, args.compilation_mode, native, args.starlark_flags)
    return Analysis(loader, config)


def query_command(args: Namespace) -> int:
    environment = LoadingQueryEnvironment(graph_loader(args))
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
    loader = graph_loader(args)
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
    if action.execution_requirements:  # Bazel's aquery calls these execution info
        lines.append(f"  Execution Info: {{{', '.join(f'{k}: {v}' for k, v in action.execution_requirements)}}}")
    if action.content is not None:
        lines.append(f"  Content: {json.dumps(action.content)}")
    else:
        lines.append("  Command Line: " + " \\\n    ".join(_quote(arg) for arg in action.argv))
    return "\n".join(lines) + "\n\n"


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def info_command(args: Namespace) -> int:
    """The workspace and the resolved Rust toolchain."""
    loader = graph_loader(args)
    workspace = loader.loader.workspace
    implementation, target = _rust_toolchain(loader, args)
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


def _rust_toolchain(loader: TargetGraphLoader, args: Namespace):
    """The label and target of the Rust toolchain this configuration resolves."""
    toolchain_type = Label("rules_rust", "rust", "toolchain_type")
    implementation = configure(loader, args).resolve_toolchains({toolchain_type})[toolchain_type]
    return implementation, loader.loader.target(implementation)


# Building, testing, running -------------------------------------------------------------------------


@dataclass
class BuildOutcome:
    ok: bool
    analysis: AnalysisResult
    labels: list[Label]
    workspace_root: Path


def build_targets(
    args: Namespace, patterns: list[str], extra_outputs: bool = False, noop_start: noop_record.Start | None = None
) -> BuildOutcome:
    """Load, analyze and execute; prints progress and the closing `Build OK` line. With `noop_start` (taken
    when the command started), a build that executed nothing writes its no-op record."""
    started = time.monotonic()
    loader = graph_loader(args)
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
        sandbox_base=sandbox_base(workspace.output_base, args.sandbox_base),
        keep_going=args.keep_going,
        local_ram_mb=args.local_ram_resources or default_local_ram_mb(),
        remote=_remote_options(args, loader),
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
        edges=analysis.actions.edges(),
    )
    _write_reports(args, record, workspace.output_base)
    total = len(result.outcomes) + len(result.skipped)
    ok = not (result.failures or result.skipped)
    failed = None if ok else len(result.failures)
    print(summary_line(result.executed, result.cached, total, elapsed, failed), file=sys.stderr)
    entries = execution.up_to_date.entries
    if ok and noop_start is not None and result.executed == 0 and entries is not None:
        bin_dir = analysis.config.bin_dir
        noop_record.write(args, workspace, bin_dir, result.outcomes, entries, execution.cache, noop_start)
    return BuildOutcome(ok, analysis, labels, workspace.root)


def _write_reports(args: Namespace, record: BuildRecord, output_base: Path) -> None:
    if args.execution_log_json_file:
        record.save_execution_log(Path(args.execution_log_json_file))
    if args.profile:
        write_profile(record, Path(args.profile))
    if args.timings:
        path = output_base / "timings.html"
        from pybuild.timings_report import write_timings  # jinja2 only when a report is asked for

        write_timings(record, path)
        print(f"INFO: timings report: {path}", file=sys.stderr)


def _remote_options(args: Namespace, loader: TargetGraphLoader):
    """RemoteOptions from the --remote_* flags, or None when no remote server is given."""
    if not (args.remote_executor or args.remote_cache):
        return None
    from action_graph.remote.client import RemoteOptions
    from action_graph.remote.connection import parse_address

    if args.remote_executor and args.remote_cache and args.remote_cache != args.remote_executor:
        raise UsageError("--remote_cache: with --remote_executor, pybuild uses the executor's own cache")
    for flag in ("remote_executor", "remote_cache"):
        try:
            parse_address(getattr(args, flag) or "grpc://localhost:1")
        except ValueError as error:
            raise UsageError(f"--{flag}: {error}") from None
    return RemoteOptions(
        executor=args.remote_executor,
        cache=None if args.remote_executor else args.remote_cache,
        instance_name=args.remote_instance_name,
        timeout=args.remote_timeout,
        local_fallback=args.remote_local_fallback,
        upload_local_results=args.remote_upload_local_results,
        accept_cached=args.remote_accept_cached,
        platform=_remote_platform(loader, args),
    )


def _remote_platform(loader: TargetGraphLoader, args: Namespace) -> tuple[tuple[str, str], ...]:
    """Platform properties of every remote action: the OS family and the toolchain's target triple, so
    only workers that can run this rustc (and the `cc` it links with) get its actions."""
    try:
        triple = str(_rust_toolchain(loader, args)[1].attrs["target_triple"])
    except PybuildError:
        return (("OSFamily", platform.system()),)
    family = "Linux" if "-linux" in triple else platform.system()
    return (("OSFamily", family), ("TargetTriple", triple))


def worker_command(args: Namespace) -> int:
    """`pybuild worker`: serve a REAPI server's Bots API until SIGTERM."""
    from action_graph.remote.connection import parse_address
    from action_graph.remote.worker import WorkerOptions, default_platform, run_worker

    try:
        parse_address(args.server)
    except ValueError as error:
        raise UsageError(f"--server: {error}") from None
    platform_properties = dict(default_platform())
    for item in args.platform:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--platform={item}: expected KEY=VALUE")
        platform_properties[key] = value
    work_dir = Path(args.work_dir or Path.home() / ".cache" / "pybuild" / "worker").resolve()
    options = WorkerOptions(
        server=args.server,
        slots=args.slots,
        work_dir=work_dir,
        instance_name=args.instance_name,
        platform=tuple(sorted(platform_properties.items())),
        grace_seconds=args.grace_seconds,
    )
    return run_worker(options)


def _wanted_files(analysis: AnalysisResult, label: Label) -> list[str]:
    summary = analysis.summary(label)
    return [*summary.files, *summary.runfiles]


def build_command(args: Namespace, noop_start: noop_record.Start | None = None) -> int:
    """`pybuild build`; cli answers no-op builds from their record itself and passes `noop_start`."""
    return 0 if build_targets(args, args.targets, noop_start=noop_start).ok else 1


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
    summary = outcome.analysis.summary(label)
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
    loader = graph_loader(args)
    tests = [label for label in outcome.labels if _is_test(loader, label)]
    if not tests:
        raise NoTestsError("no test targets were found among the requested targets")
    return run_tests(outcome, loader, tests, args.test_output, args.jobs)


def _is_test(loader: TargetGraphLoader, label: Label) -> bool:
    rule_class = loader.loader.target(label).rule_class
    return bool(rule_class and rule_class.test)


def clean_command(args: Namespace) -> int:
    """Remove outputs and the action cache; --expunge also removes generated repositories and the build
    history (the scheduler's measured durations)."""
    workspace = load_workspace(Path.cwd())
    base = workspace.output_base
    if args.expunge:
        shutil.rmtree(base, ignore_errors=True)
    elif base.is_dir():
        kept = {workspace.external_dir, workspace.history_dir}
        for entry in base.iterdir():
            if entry in kept:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
    remove_ram_disk_sandboxes(base)
    (workspace.root / BIN_LINK_NAME).unlink(missing_ok=True)
    print("INFO: clean finished", file=sys.stderr)
    return 0


def determinism_command(args: Namespace) -> int:
    """Build, then run every crate's metadata action twice in fresh sandboxes and compare the results."""
    outcome = build_targets(args, args.targets)
    if not outcome.ok:
        return 1
    graph = outcome.analysis.actions
    owners = set(outcome.analysis.closure)
    crates = determinism.crate_actions(graph, owners)
    rustc = str(outcome.workspace_root / determinism.rustc_of(next(iter(crates.values()))[0]))
    checks = [
        determinism.check_crate(outcome.workspace_root, graph, first, full, rustc)
        for _, (first, full) in sorted(crates.items())
    ]
    bad = [check for check in checks if not check.ok]
    for check in bad:
        macros = f"; proc-macros it uses: {', '.join(check.proc_macros)}" if check.proc_macros else ""
        print(f"NOT DETERMINISTIC: {check.owner} ({check.mnemonic}): {check.detail}{macros}")
    print(f"check-determinism: {len(checks)} crates checked, {len(bad)} not deterministic")
    return 1 if bad else 0
