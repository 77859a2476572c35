#!/usr/bin/env python3
"""Runs rustc for the rmeta pipelining mode.

rustc is started with `--error-format=json --json=artifacts`. Its JSON diagnostics are rendered
as text on stderr, and with --rustc-quit-on-rmeta the wrapper stops rustc as soon as it announces
the .rmeta artifact: the metadata action is then done while codegen never starts.
Standard library only: it runs under whatever python3 the action's PATH finds.
"""

import json
import os
import signal
import subprocess
import sys


def _parse(argv):
    quit_on_rmeta = False
    rest = list(argv)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag == "--rustc-quit-on-rmeta":
            quit_on_rmeta = True
        else:
            sys.exit(f"process_wrapper: unknown flag {flag}")
    if not rest:
        sys.exit("process_wrapper: usage: process_wrapper.py [--rustc-quit-on-rmeta] -- rustc ARGS...")
    return quit_on_rmeta, rest[1:]


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
    quit_on_rmeta, command = _parse(argv)
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in child.stderr:
        if _handle(line, quit_on_rmeta):
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return 0
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
