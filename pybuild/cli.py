"""The `pybuild` command: Bazel-style commands and flags."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from pybuild import build_options, query
from pybuild import commands as commands_module
from pybuild.errors import PybuildError, UsageError

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
    handlers["query"] = commands_module.query_command

    aquery_parser = commands.add_parser("aquery", help="show the actions of targets and their dependencies")
    aquery_parser.add_argument("expression", help="targets, e.g. //app or 'mnemonic(\"Rustc\", deps(//app))'")
    aquery_parser.add_argument("--output", default="text", choices=("text", "json"))
    aquery_parser.add_argument("--mnemonic", default=None, help="only actions whose mnemonic matches this regex")
    _common_flags(aquery_parser)
    _build_flags(aquery_parser)
    handlers["aquery"] = commands_module.aquery_command

    info_parser = commands.add_parser("info", help="show the workspace and the resolved Rust toolchain")
    _common_flags(info_parser)
    _build_flags(info_parser)
    handlers["info"] = commands_module.info_command
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
        rest, starlark_flags = build_options.split_starlark_flags(arguments)
        args = parser.parse_args(_normalize_bool_flags(rest, _bool_flag_names(parser)))
        args.starlark_flags = starlark_flags
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
