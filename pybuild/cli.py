"""The `pybuild` command: Bazel-style commands and flags."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pybuild import build_options, noop_record, query, rcfile
from pybuild.errors import PybuildError, UsageError
from pybuild.lock import workspace_lock
from pybuild.progress import summary_line
from pybuild.workspace import OUTPUT_DIR_NAME, find_workspace_root

_SHORT_BOOL_FLAGS = {"-k": "--keep_going"}
_NEGATIVE_PATTERN_PREFIXES = ("-//", "-@", "-:")
# Commands that write the output tree, the cache or generated repositories: one at a time.
_WRITING_COMMANDS = frozenset({"build", "test", "run", "clean", "aquery", "info", "crates", "check-determinism"})
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


class _Parser(argparse.ArgumentParser):
    """argparse that reports problems as UsageError (exit 2, one line naming the flag)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _bool_value(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"'{text}' is not a boolean (use true or false)")


def _add_bool_flag(parser: argparse.ArgumentParser, name: str, default: bool, help_text: str) -> None:
    parser.add_argument(f"--{name}", type=_bool_value, default=default, metavar="BOOL", help=help_text)


def _normalize_bool_flags(argv: Sequence[str], bool_flags: set[str]) -> list[str]:
    """Bazel spellings of booleans: --flag, --noflag and --flag=value all become --flag=value."""
    result = []
    for arg in argv:
        if arg == "--":
            result.extend(argv[len(result) :])
            break
        arg = _SHORT_BOOL_FLAGS.get(arg, arg)
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        if name in bool_flags:
            arg = f"--{name}=true"
        elif name and name.startswith("no") and name[2:] in bool_flags:
            arg = f"--{name[2:]}=false"
        result.append(arg)
    return result


def _common_flags(parser: argparse.ArgumentParser) -> None:
    _add_bool_flag(parser, "verbose_failures", False, "show Python tracebacks of internal errors")
    parser.add_argument(
        "--loading_phase_threads",
        type=_host_cpus_or_positive_int,
        default="auto",  # argparse converts a text default with `type`
        metavar="N|auto",
        help="processes that load packages and analyze targets at once (default: auto, the machine's cores)",
    )
    _add_bool_flag(parser, "keep_going", False, "continue past errors as far as possible")
    _add_bool_flag(parser, "block_for_lock", True, "wait for another pybuild command in this workspace")


def _build_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that decide the configuration; Starlark flags (--@repo//pkg:name=value) come on top."""
    parser.add_argument(
        "--compilation_mode",
        "-c",
        default="fastbuild",
        choices=("fastbuild", "dbg", "opt"),
        help="rustc optimization and debug info, as in rules_rust",
    )
    for name in build_options.SETTING_FLAGS:
        parser.add_argument(f"--{name}", type=_bool_value, default=None, metavar="BOOL")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = _Parser(prog="pybuild", description="Bazel-style builds for Rust monorepos.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}

    query_parser = commands.add_parser("query", help="query the target graph")
    query_parser.add_argument("expression", help="query expression, e.g. 'deps(//app)'")
    query_parser.add_argument("--output", default="label", choices=query.OUTPUT_FORMATS)
    _common_flags(query_parser)
    handlers["query"] = _command("query_command")

    aquery_parser = commands.add_parser("aquery", help="show the actions of targets and their dependencies")
    aquery_parser.add_argument("expression", help="targets, e.g. //app or 'mnemonic(\"Rustc\", deps(//app))'")
    aquery_parser.add_argument("--output", default="text", choices=("text", "json"))
    aquery_parser.add_argument("--mnemonic", default=None, help="only actions whose mnemonic matches this regex")
    _common_flags(aquery_parser)
    _build_flags(aquery_parser)
    handlers["aquery"] = _command("aquery_command")

    info_parser = commands.add_parser("info", help="show the workspace and the resolved Rust toolchain")
    _common_flags(info_parser)
    _build_flags(info_parser)
    handlers["info"] = _command("info_command")

    for name, help_text, handler in (
        ("build", "build targets", _build_command),
        ("test", "build and run rust_test targets", _command("test_command")),
        ("run", "build and run one executable: pybuild run //app -- ARGS", _command("run_command")),
        ("check-determinism", "run each crate metadata action twice; compare", _command("determinism_command")),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("targets", nargs="*", help="target patterns, e.g. //... or //app:app")
        _common_flags(sub)
        _build_flags(sub)
        _execution_flags(sub)
        if name == "test":
            sub.add_argument("--test_output", default="summary", choices=("summary", "errors", "all"))
        handlers[name] = handler

    clean_parser = commands.add_parser("clean", help="remove build outputs and the action cache")
    _add_bool_flag(clean_parser, "expunge", False, "also remove generated repositories and the build history")
    _common_flags(clean_parser)
    handlers["clean"] = _command("clean_command")

    crates_parser = commands.add_parser("crates", help="generate BUILD files for the crates of a Cargo workspace")
    _common_flags(crates_parser)
    crates_actions = crates_parser.add_subparsers(dest="crates_action", metavar="ACTION", required=True)
    generate_parser = crates_actions.add_parser("generate", help="write BUILD files for every third-party crate")
    generate_parser.add_argument("--manifest_path", default=None, help="Cargo.toml (default: in the workspace root)")
    generate_parser.add_argument("--output_dir", default=None, help="default: third_party/crates in the workspace root")
    for action in crates_parser._actions:  # common flags also after the action; crates_parser has the defaults
        if action.type is _bool_value:
            generate_parser.add_argument(*action.option_strings, type=_bool_value, default=argparse.SUPPRESS)
    handlers["crates"] = _crates_command

    _worker_parser(commands)  # needs no workspace
    handlers["worker"] = _command("worker_command")
    return parser, handlers


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """pybuild.commands' handler `name`, imported when called: that imports loading, analysis and
    execution (and networkx), which `pybuild --help` or a no-op build answered from its record never use."""

    def handler(args: argparse.Namespace) -> int:
        from pybuild import commands

        return getattr(commands, name)(args)

    return handler


def _build_command(args: argparse.Namespace) -> int:
    """`pybuild build`, answered from the no-op record when nothing the last such build used changed."""
    started, start = time.monotonic(), noop_record.Start(load_output_base())
    actions = noop_record.answer(args, start)
    if actions is not None:
        print(summary_line(0, actions, actions, time.monotonic() - started), file=sys.stderr)
        return 0
    from pybuild import commands

    return commands.build_command(args, start)


def _crates_command(args: argparse.Namespace) -> int:
    from pybuild import crates  # imported for this command only: it and jinja2 slow every other start

    return crates.crates_command(args)


def _execution_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1, metavar="N")
    parser.add_argument("--spawn_strategy", default="sandboxed", choices=("sandboxed", "local"))
    parser.add_argument(
        "--sandbox_base",
        default="",
        metavar="DIR",
        help="make sandboxes under DIR (default: /dev/shm when writable with 1 GiB free, else pybuild-out/sandbox)",
    )
    parser.add_argument(
        "--local_ram_resources",
        type=_positive_int,
        default=None,
        metavar="MB",
        help="bound on the summed peak memory of running actions (default: 2/3 of available memory)",
    )
    parser.add_argument("--profile", default=None, metavar="FILE", help="write a Chrome trace of the build")
    _add_bool_flag(parser, "timings", False, "write an HTML timings report to pybuild-out/timings.html")
    parser.add_argument(
        "--execution_log_json_file",
        default=None,
        metavar="FILE",
        help="write when each action ran, on which slot, and whether it was cached",
    )
    _remote_flags(parser)


def _remote_flags(parser: argparse.ArgumentParser) -> None:
    """Bazel's remote execution and caching flags (REAPI v2 over gRPC, no TLS)."""
    parser.add_argument("--remote_executor", default=None, metavar="grpc://HOST:PORT", help="run actions there")
    parser.add_argument(
        "--remote_cache", default=None, metavar="grpc://HOST:PORT", help="look results up there, run locally"
    )
    parser.add_argument("--remote_instance_name", default="", metavar="NAME")
    parser.add_argument(
        "--remote_timeout", type=_positive_float, default=60.0, metavar="SECONDS", help="deadline of remote calls"
    )
    _add_bool_flag(parser, "remote_local_fallback", False, "run an action locally when the remote server fails")
    _add_bool_flag(parser, "remote_upload_local_results", True, "upload results of local runs to the remote cache")
    _add_bool_flag(parser, "remote_accept_cached", True, "use results from the remote cache (false: run again)")


def _worker_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    worker = commands.add_parser("worker", help="run actions for a Remote Execution API server (a Bots API bot)")
    worker.add_argument("--server", required=True, metavar="grpc://HOST:PORT", help="the server's Bots service")
    worker.add_argument("--slots", type=_positive_int, default=os.cpu_count() or 1, help="actions run at once")
    worker.add_argument("--instance_name", default="", metavar="NAME")
    worker.add_argument(
        "--work_dir", default=None, metavar="DIR", help="blob cache and action directories (default: ~/.cache/...)"
    )
    worker.add_argument(
        "--platform", action="append", default=[], metavar="KEY=VALUE", help="a property this worker offers"
    )
    worker.add_argument(
        "--grace_seconds", type=_positive_float, default=30.0, help="on SIGTERM, how long running actions may go on"
    )
    _add_bool_flag(worker, "verbose_failures", False, "show Python tracebacks of internal errors")
    return worker


def _positive(convert: Callable[[str], float], kind: str) -> Callable[[str], float]:
    """An argparse type: `convert`, and the value must be above 0."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}' must be more than 0")
        return value

    return parse


_positive_float = _positive(float, "a number")
_positive_int = _positive(int, "a whole number")


def _host_cpus_or_positive_int(text: str) -> int:
    """Bazel's keywords for the machine's cores, or a whole number above 0."""
    if text in ("auto", "HOST_CPUS"):
        return os.cpu_count() or 1
    return _positive_int(text)


def _bool_flag_names(parser: argparse.ArgumentParser) -> set[str]:
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _bool_flag_names(sub)
        elif action.type is _bool_value:
            names.update(opt[2:] for opt in action.option_strings)
    return names


def load_output_base() -> Path:
    return find_workspace_root(Path.cwd()) / OUTPUT_DIR_NAME


def _with_rc_options(arguments: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Insert the options of .pybuildrc lines for this command right after the command name."""
    command = next((a for a in arguments if not a.startswith("-")), None)
    try:
        root = find_workspace_root(Path.cwd())
    except PybuildError:
        return arguments  # outside a workspace there is no rc file; the command reports the problem
    if command is None:
        return arguments
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices.get(command)
    if sub is None:
        return arguments
    inserted: list[str] = []
    for line in rcfile.options_for(command, rcfile.read_rc(root)):
        # A line is checked against its own command (all commands for `common`); options it gives that
        # this command lacks (build's --jobs for aquery) do not apply here, as in Bazel.
        owners = [subparsers.choices[line.command]] if line.command in subparsers.choices else []
        if line.command != "common" and not owners:
            raise UsageError(f"unknown command '{line.command}'", line.where)
        for arg in line.args:
            if not any(_knows(p, arg) for p in owners or subparsers.choices.values()):
                raise UsageError(f"unknown option '{arg}' for command '{line.command}'", line.where)
        inserted.extend(arg for arg in line.args if _knows(sub, arg))
    position = arguments.index(command) + 1
    return [*arguments[:position], *inserted, *arguments[position:]]


def _knows(parser: argparse.ArgumentParser, arg: str) -> bool:
    """Whether `arg` (from an rc line) is an option of `parser`; Starlark flags apply everywhere."""
    name = arg.split("=", 1)[0]
    if name.startswith(("--@", "--//", "--no@", "--no//")) or not arg.startswith("-"):
        return True
    known = parser._option_string_actions
    return name in known or (name.startswith("--no") and "--" + name[4:] in known)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C must stop a build even when pybuild was started with SIGINT ignored (shell `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    verbose = any(a.split("=")[0] == "--verbose_failures" and not a.endswith(("=false", "=0")) for a in arguments)
    try:
        parser, handlers = _build_parser()
        arguments = _with_rc_options(arguments, parser)
        # Everything after `--` belongs to the program of `pybuild run`, not to pybuild.
        program_args = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
        arguments = arguments[: arguments.index("--")] if "--" in arguments else arguments
        rest, starlark_flags = build_options.split_starlark_flags(arguments)
        # Negative target patterns (-//x:y) look like flags to argparse; they are patterns, as in Bazel.
        negative = [a for a in rest if a.startswith(_NEGATIVE_PATTERN_PREFIXES)]
        rest = [a for a in rest if not a.startswith(_NEGATIVE_PATTERN_PREFIXES)]
        args = parser.parse_args(_normalize_bool_flags(rest, _bool_flag_names(parser)))
        args.starlark_flags = starlark_flags
        args.program_args = program_args
        if hasattr(args, "targets"):
            # After `--`, build and test take patterns (`pybuild build -- //... -//x:y`); run takes program args.
            args.targets = [*args.targets, *negative, *(program_args if args.command != "run" else [])]
        if args.command is None:
            parser.print_help()
            return 2
        if args.command not in _WRITING_COMMANDS:
            return handlers[args.command](args)
        with workspace_lock(load_output_base(), block=args.block_for_lock):
            return handlers[args.command](args)
    except PybuildError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except OSError as error:  # outside any action: e.g. the output tree cannot be created
        where = f": {error.filename}" if error.filename else ""
        print(f"ERROR: {error.strerror or error}{where} (check free space and permissions)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR: interrupted: running actions were stopped and their partial outputs removed", file=sys.stderr)
        return 8
    except Exception as error:  # an internal bug: one line unless asked for the traceback
        if verbose:
            import traceback

            traceback.print_exc()
        print(
            f"ERROR: internal error: {type(error).__name__}: {error} (rerun with --verbose_failures for details)",
            file=sys.stderr,
        )
        return 37


def command() -> NoReturn:
    """The `pybuild` program: main(), then an exit that skips the interpreter's last sweep of the heap."""
    code = main()
    # At shutdown Python runs a full cycle collection over every object still alive: 0.8 s after
    # loading and analyzing 10,000 targets, for memory the process hands back anyway. Frozen objects
    # are left out of it; atexit handlers and the flushing of output still run.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    command()
