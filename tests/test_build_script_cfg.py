"""A build script sees the target's CARGO_CFG_*, read from the toolchain's `rustc --print cfg` file.

The file is detected once per toolchain (@local_rust//:target_cfg.txt), so it must be an input of every
run action: otherwise another rustc would not rerun the scripts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from workspace_helpers import RULES_RUST_LOAD, run_pybuild, write_workspace

from toolchains import local_rust

TARGET_CFG = "pybuild-out/external/local_rust/target_cfg.txt"
NAMES = ("TARGET_OS", "TARGET_FAMILY", "TARGET_POINTER_WIDTH", "TARGET_FEATURE", "UNIX")
# The script hands what it saw to the binary, which prints it: name=value per line.
BUILD_RS = (
    f"const NAMES: [&str; {len(NAMES)}] = {json.dumps(list(NAMES))};\n"
    + """
fn main() {
    let seen: Vec<String> = NAMES
        .iter()
        .map(|n| format!("{}={}", n, std::env::var(format!("CARGO_CFG_{}", n)).unwrap_or("<unset>".into())))
        .collect();
    println!("cargo:rustc-env=SEEN_CFG={}", seen.join(";"));
}
"""
)
MAIN_RS = 'fn main() { println!("{}", env!("SEEN_CFG").replace(\';\', "\\n")); }\n'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = (
        'load("@rules_rust//cargo:defs.bzl", "cargo_build_script")\n'
        'cargo_build_script(name = "bs", srcs = ["build.rs"])\n'
        'rust_binary(name = "c", srcs = ["main.rs"], deps = [":bs"])\n'
    )
    files = {"c/BUILD.bazel": RULES_RUST_LOAD + build, "c/build.rs": BUILD_RS, "c/main.rs": MAIN_RS}
    return write_workspace(tmp_path_factory.mktemp("build_script_cfg"), files)


def _expected() -> dict[str, str]:
    """What Cargo sets, from the local rustc itself: values of a name joined by commas, bare names empty."""
    printed = subprocess.run([local_rust.find_rustc(), "--print", "cfg"], capture_output=True, text=True, check=True)
    values: dict[str, list[str]] = {}
    for line in printed.stdout.splitlines():
        name, _, value = line.partition("=")
        values.setdefault(name.upper(), []).extend([value.strip('"')] if value else [])
    return {n: ",".join(values[n]) if n in values else "<unset>" for n in NAMES}


def test_the_run_action_reads_the_toolchains_cfg_file(workspace: Path) -> None:
    code, out, err = run_pybuild(workspace, "aquery", "//c", "--output=json", timeout=120)
    assert code == 0, err
    (run,) = [a for a in json.loads(out)["actions"] if a["mnemonic"] == "CargoBuildScriptRun"]
    assert TARGET_CFG in run["inputs"]
    assert run["argv"][run["argv"].index("--target-cfg") + 1] == TARGET_CFG


def test_the_script_sees_the_targets_cfg(workspace: Path) -> None:
    code, _, err = run_pybuild(workspace, "build", "//c", timeout=300)
    assert code == 0, err[-3000:]
    printed = subprocess.run([workspace / "pybuild-bin/c/c"], capture_output=True, text=True, check=True).stdout
    seen = dict(line.split("=", 1) for line in printed.splitlines())
    assert seen == _expected()
    assert seen["TARGET_OS"] and seen["TARGET_POINTER_WIDTH"] in ("32", "64")
