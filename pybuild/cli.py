"""The `pybuild` command: Bazel-style commands and flags."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pybuild import query
from pybuild.errors import PybuildError, UsageError
from pybuild.module_file import load_workspace
from pybuild.packages import PackageLoader
from pybuild.target_graph import LoadingQueryEnvironment, TargetGraphLoader

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
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        if name in bool_flags:
            arg = f"--{name}=true"
        elif name and name.startswith("no") and name[2:] in bool_flags:
            arg = f"--{name[2:]}=false"
        result.append(arg)
    return result


def _common_flags(parser: argparse.ArgumentParser) -> None:
    _add_bool_flag(parser, "verbose_failures", False, "show Python tracebacks of internal errors")
    _add_bool_flag(parser, "keep_going", False, "continue past errors as far as possible")


def _query_command(args: argparse.Namespace) -> int:
    graph_loader = _graph_loader()
    environment = LoadingQueryEnvironment(graph_loader)
    result = query.evaluate(args.expression, environment)
    sys.stdout.write(query.format_result(result, args.output, environment))
    return 0


def _graph_loader() -> TargetGraphLoader:
    cwd = Path.cwd()
    workspace = load_workspace(cwd)
    return TargetGraphLoader(PackageLoader(workspace), workspace.working_package(cwd))


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = _Parser(prog="pybuild", description="Bazel-style builds for Rust monorepos.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}

    query_parser = commands.add_parser("query", help="query the target graph")
    query_parser.add_argument("expression", help="query expression, e.g. 'deps(//app)'")
    query_parser.add_argument("--output", default="label", choices=query.OUTPUT_FORMATS)
    _common_flags(query_parser)
    handlers["query"] = _query_command
    return parser, handlers


def _bool_flag_names(parser: argparse.ArgumentParser) -> set[str]:
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _bool_flag_names(sub)
        elif action.type is _bool_value:
            names.update(opt[2:] for opt in action.option_strings)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose_failures" in arguments
    try:
        parser, handlers = _build_parser()
        args = parser.parse_args(_normalize_bool_flags(arguments, _bool_flag_names(parser)))
        if args.command is None:
            parser.print_help()
            return 2
        return handlers[args.command](args)
    except PybuildError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 8
    except Exception as error:  # an internal bug: one line unless asked for the traceback
        if verbose:
            traceback.print_exc()
        print(
            f"ERROR: internal error: {type(error).__name__}: {error} (rerun with --verbose_failures for details)",
            file=sys.stderr,
        )
        return 37


if __name__ == "__main__":
    sys.exit(main())
