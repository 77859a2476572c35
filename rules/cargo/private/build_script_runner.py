#!/usr/bin/env -S python3 -S
"""Runs a compiled Cargo build script the way Cargo does and turns its directives into files.

Paths given to the script are absolute (OUT_DIR, CARGO_MANIFEST_DIR, RUSTC), as Cargo gives them;
what the crate's actions read back has the execution root replaced by `${pwd}` so it still holds in
another sandbox. CARGO_CFG_* come from the toolchain's `rustc --print cfg` (--target-cfg, a file
detected once per toolchain, as Cargo does once per build), so the script sees the real target.
Standard library only.

It starts for every build script run, so it starts fast: `python3 -S` skips the site module (and the
.pth files of site-packages), a small parser replaces argparse and fork/exec with select replaces
subprocess: without site each of those imports (re, enum, locale, threading, ...) costs more than the
rest of the runner. The `env -S` in the first line needs GNU coreutils >= 8.30 (2018) or a BSD/macOS env.
"""

import os
import select
import sys
from types import SimpleNamespace

_OPTIONS = (
    "script",
    "manifest-dir",
    "rustc",
    "target-cfg",
    "out-dir",
    "rustc-flags",
    "rustc-env",
    "link-flags",
    "label",
)
_USAGE = "build_script_runner.py " + " ".join(f"--{name} VALUE" for name in _OPTIONS)


def _parse(argv):
    """Every option once, as `--name value`: the rule always passes all of them."""
    if len(argv) != 2 * len(_OPTIONS):
        sys.exit(f"usage: {_USAGE}")
    values = {}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        key = flag[2:].replace("-", "_")
        if not flag.startswith("--") or flag[2:] not in _OPTIONS or key in values:
            sys.exit(f"build_script_runner: unexpected {flag!r}\nusage: {_USAGE}")
        values[key] = value
    return SimpleNamespace(**values)


def _cfg_env(path):
    """CARGO_CFG_<NAME>=v1,v2 for each `name="value"` and CARGO_CFG_<NAME>= for each bare `name`."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    values = {}
    for line in lines:
        name, _, value = line.partition("=")
        key = "CARGO_CFG_" + name.upper().replace("-", "_")
        values.setdefault(key, [])
        if value:
            values[key].append(value.strip('"'))
    return {key: ",".join(items) for key, items in values.items()}


def _directives(stdout):
    """(key, value) of each cargo:KEY=VALUE or cargo::KEY=VALUE line."""
    for line in stdout.splitlines():
        for prefix in ("cargo::", "cargo:"):
            if line.startswith(prefix) and "=" in line:
                key, value = line[len(prefix) :].split("=", 1)
                yield key, value
                break


def _translate(directives, exec_root):
    """rustc arguments for the crate, KEY=VALUE env lines, link arguments for dependents, warnings."""
    flags, env, link, warnings = [], [], [], []

    def portable(text):
        return text.replace(exec_root, "${pwd}")

    for key, value in directives:
        if key == "rustc-cfg":
            flags.append(f"--cfg={value}")
        elif key == "rustc-check-cfg":
            flags.append(f"--check-cfg={value}")
        elif key == "rustc-env":
            env.append(portable(value))
        elif key == "rustc-link-lib":
            link.append(f"-l{value}")
        elif key == "rustc-link-search":
            link.append(f"-L{portable(value)}")
            flags.append(f"-L{portable(value)}")
        elif key == "rustc-flags":
            words = value.split()
            link.extend(portable(w) for w in words)
        elif key == "rustc-link-arg":
            link.append(f"-Clink-arg={portable(value)}")
        elif key == "warning":
            warnings.append(value)
    return flags, env, link, warnings


def _spawn(program, cwd, env):
    """The pid of `program` started in `cwd`, and the read ends of its stdout and stderr pipes."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls until exec, and never return into the runner
        try:
            os.chdir(cwd)
            os.dup2(out_write, 1)
            os.dup2(err_write, 2)
            os.execve(program, [program], env)
        except OSError as error:
            os.write(2, f"cannot run {program}: {error}\n".encode())
        os._exit(127)
    os.close(out_write)
    os.close(err_write)
    return pid, out_read, err_read


def _run(program, cwd, env):
    """(exit code, stdout, stderr) of `program`; both pipes are drained together so neither fills up."""
    pid, out_read, err_read = _spawn(program, cwd, env)
    chunks = {out_read: [], err_read: []}
    unfinished = [out_read, err_read]
    while unfinished:
        for fd in select.select(unfinished, [], [])[0]:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                os.close(fd)
                unfinished.remove(fd)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    out, err = (b"".join(chunks[fd]).decode("utf-8", "replace") for fd in (out_read, err_read))
    return code, out, err


def _write(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def main(argv):
    args = _parse(argv)
    exec_root = os.getcwd()
    env = dict(os.environ)
    env.update(
        OUT_DIR=os.path.join(exec_root, args.out_dir),
        CARGO_MANIFEST_DIR=os.path.join(exec_root, args.manifest_dir),
        RUSTC=os.path.join(exec_root, args.rustc),
        RUSTDOC=os.path.join(os.path.dirname(os.path.join(exec_root, args.rustc)), "rustdoc"),
    )
    env.update(_cfg_env(args.target_cfg))
    os.makedirs(env["OUT_DIR"], exist_ok=True)
    code, out, err = _run(os.path.join(exec_root, args.script), env["CARGO_MANIFEST_DIR"], env)
    flags, rustc_env, link, warnings = _translate(_directives(out), exec_root)
    for warning in warnings:
        sys.stderr.write(f"warning: {args.label}: {warning}\n")
    if code != 0:
        sys.stderr.write(err)
        sys.stderr.write(f"error: build script of {args.label} failed with exit code {code}\n")
        return 1
    _write(args.rustc_flags, flags)
    _write(args.rustc_env, rustc_env)
    _write(args.link_flags, link)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
