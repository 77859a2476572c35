#!/usr/bin/env python3
"""Runs every rustc action.

It replaces `${pwd}` in the arguments with the working directory, so `--remap-path-prefix=${pwd}=.`
hides where the action ran (sandbox, execution root or a remote worker): the crate hash and the
outputs do not depend on it, and metadata and full actions of one crate agree (no E0460).

For the rmeta pipelining mode rustc runs with `--error-format=json --json=artifacts`:
--render-json-diagnostics prints the rendered diagnostics as text, and --rustc-quit-on-rmeta also
stops rustc as soon as it announces the .rmeta artifact, so codegen never starts.
Standard library only: it runs under whatever python3 the action's PATH finds.
"""

import json
import os
import signal
import subprocess
import sys


_FLAGS = ("--rustc-quit-on-rmeta", "--render-json-diagnostics")


def _parse(argv):
    flags = set()
    rest = list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag not in _FLAGS:
            sys.exit(f"process_wrapper: unknown flag {flag}")
        flags.add(flag)
    if not rest:
        sys.exit("process_wrapper: usage: process_wrapper.py [" + "] [".join(_FLAGS) + "] -- rustc ARGS...")
    pwd = os.getcwd()
    return flags, [arg.replace("${pwd}", pwd) for arg in rest[1:]]


def _handle(line, quit_on_rmeta):
    """Print what a person should see; return True when the .rmeta has been written."""
    try:
        message = json.loads(line)
    except ValueError:
        sys.stderr.write(line)
        return False
    if not isinstance(message, dict):
        return False
    if "artifact" in message:
        return quit_on_rmeta and message.get("emit") == "metadata"
    rendered = message.get("rendered")
    if rendered:
        sys.stderr.write(rendered)
    return False


def main(argv):
    flags, command = _parse(argv)
    if not flags:
        os.execv(command[0], command)
    quit_on_rmeta = "--rustc-quit-on-rmeta" in flags
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in child.stderr:
        if _handle(line, quit_on_rmeta):
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return 0
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
