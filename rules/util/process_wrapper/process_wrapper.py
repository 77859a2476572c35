#!/usr/bin/env -S python3 -S
"""Runs every rustc action.

It replaces `${pwd}` in the arguments and in the environment with the working directory, so
`--remap-path-prefix=${pwd}=.` hides where the action ran (sandbox, execution root or a remote
worker): the crate hash and the outputs do not depend on it, and metadata and full actions of one
crate agree (no E0460). Build script results arrive as files: --arg-file adds one argument per line,
--env-file sets KEY=VALUE lines, both with `${pwd}` replaced as well.

For the rmeta pipelining mode rustc runs with `--error-format=json --json=artifacts`:
--render-json-diagnostics prints the rendered diagnostics as text, and --rustc-quit-on-rmeta also
stops rustc as soon as it announces the .rmeta artifact, so codegen never starts.
Standard library only: it runs under whatever python3 the action's PATH finds.

pybuild's local runner does not start it unless --rustc-quit-on-rmeta is given: it calls direct_command
in its own process, starts the command that returns, and renders its output after it ended (about 15 ms
less per action). Remote workers run the wrapper itself.

It starts before every rustc, so it starts fast: `python3 -S` skips the site module (site-packages and
their .pth files, none of which it uses); without switches the wrapper replaces itself with rustc (no
process stays behind). The modes that read rustc's output start it with os.posix_spawn rather than
subprocess, and recognize artifact notices without json: each of those imports costs about 10 ms per
action, and json is imported only when a diagnostic arrives.
The `env -S` in the first line needs GNU coreutils >= 8.30 (2018) or a BSD/macOS env.
"""

import os
import sys

_ARTIFACT = '{"$message_type":"artifact"'  # how rustc's compact JSON starts an artifact notice
_SIGKILL = 9  # the same on every POSIX system; the signal module would import enum
_SWITCHES = ("--rustc-quit-on-rmeta", "--render-json-diagnostics")
_FILE_OPTIONS = ("--arg-file", "--env-file")
_USAGE = "process_wrapper.py [--rustc-quit-on-rmeta] [--render-json-diagnostics] [--arg-file F] [--env-file F] -- CMD"


def _lines(path, pwd):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").replace("${pwd}", pwd) for line in handle if line.strip()]


class UsageError(ValueError):
    """The wrapper's own arguments are wrong."""


def _parse(argv, pwd):
    """(switches, command, extra environment) from the wrapper's own arguments."""
    switches, extra_args, extra_env = set(), [], {}
    rest = list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag in _SWITCHES:
            switches.add(flag)
        elif flag in _FILE_OPTIONS and rest:
            lines = _lines(os.path.join(pwd, rest.pop(0)), pwd)  # relative to where the action runs
            if flag == "--arg-file":
                extra_args.extend(lines)
            else:
                extra_env.update(line.split("=", 1) for line in lines if "=" in line)
        else:
            raise UsageError(f"bad flag {flag}; usage: {_USAGE}")
    if not rest:
        raise UsageError(f"usage: {_USAGE}")
    command = [arg.replace("${pwd}", pwd) for arg in rest[1:]] + extra_args
    return switches, command, extra_env


def _prepare(argv, pwd, environ):
    """(switches, command, its environment) for a wrapper started with argv in pwd under environ."""
    switches, command, extra_env = _parse(argv, pwd)
    env = {key: value.replace("${pwd}", pwd) for key, value in environ.items()}
    env.update(extra_env)
    return switches, command, env


def direct_command(argv, pwd, environ):
    """What a caller may run in the wrapper's place: (command, its environment, a function turning the
    command's output into what the wrapper prints, or None to keep it as it is). None when the wrapper has to
    run itself: --rustc-quit-on-rmeta stops rustc while it runs. pwd must be what os.getcwd() returns where
    the command runs (symlinks resolved). Raises UsageError (a ValueError) for bad arguments, OSError when an
    --arg-file or --env-file cannot be read."""
    switches, command, env = _prepare(argv, pwd, environ)
    if "--rustc-quit-on-rmeta" in switches:
        return None
    return command, env, render_diagnostics if switches else None


def _rendered(line):
    """(what a person should see of one line rustc wrote, whether the line announces the .rmeta)."""
    if line.startswith(_ARTIFACT):
        return "", '"emit":"metadata"' in line
    import json

    try:
        message = json.loads(line)
    except ValueError:
        return line, False
    if not isinstance(message, dict):
        return "", False
    if "artifact" in message:
        return "", message.get("emit") == "metadata"
    return message.get("rendered") or "", False


def render_diagnostics(output):
    """rustc's whole output as --render-json-diagnostics prints it, line by line. Here and where the
    wrapper reads its pipe a line ends at a newline only, not at a lone carriage return."""
    pieces = output.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    return "".join(_rendered(line)[0] for line in lines)


def main(argv):
    try:
        switches, command, env = _prepare(argv, os.getcwd(), os.environ)
    except UsageError as error:
        sys.exit(f"process_wrapper: {error}")
    if not switches:
        os.execve(command[0], command, env)
    return _filter_diagnostics(command, env, "--rustc-quit-on-rmeta" in switches)


def _filter_diagnostics(command, env, quit_on_rmeta):
    """Run rustc with its JSON messages going through _rendered; stop it once the .rmeta exists if asked."""
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(command[0], command, env, file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 2)], setsid=True)
    except OSError as error:
        sys.exit(f"process_wrapper: cannot run {command[0]}: {error}")
    os.close(write_end)
    with open(read_end, encoding="utf-8", errors="replace", newline="\n") as messages:
        for line in messages:
            text, announces_rmeta = _rendered(line)
            sys.stderr.write(text)
            if quit_on_rmeta and announces_rmeta:
                os.killpg(pid, _SIGKILL)
                os.waitpid(pid, 0)
                return 0
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
