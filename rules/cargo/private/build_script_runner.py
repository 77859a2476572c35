#!/usr/bin/env python3
"""Runs a compiled Cargo build script the way Cargo does and turns its directives into files.

Paths given to the script are absolute (OUT_DIR, CARGO_MANIFEST_DIR, RUSTC), as Cargo gives them;
what the crate's actions read back has the execution root replaced by `${pwd}` so it still holds in
another sandbox. CARGO_CFG_* come from the toolchain's `rustc --print cfg` (--target-cfg, a file
detected once per toolchain, as Cargo does once per build), so the script sees the real target.
Standard library only.
"""

import argparse
import os
import subprocess
import sys


def _parse(argv):
    parser = argparse.ArgumentParser(prog="build_script_runner")
    names = ("script", "manifest-dir", "rustc", "target-cfg", "out-dir", "rustc-flags", "rustc-env", "link-flags")
    for name in (*names, "label"):
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args(argv)


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
    done = subprocess.run(
        [os.path.join(exec_root, args.script)],
        cwd=env["CARGO_MANIFEST_DIR"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    flags, rustc_env, link, warnings = _translate(_directives(done.stdout), exec_root)
    for warning in warnings:
        sys.stderr.write(f"warning: {args.label}: {warning}\n")
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.stderr.write(f"error: build script of {args.label} failed with exit code {done.returncode}\n")
        return 1
    _write(args.rustc_flags, flags)
    _write(args.rustc_env, rustc_env)
    _write(args.link_flags, link)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
