"""Reproducibility: outputs do not depend on the checkout directory, and check-determinism finds crates
whose compilation is not deterministic (the cause of E0460 under pipelining)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rust_workspaces import HOLLOW, read_log, wide_workspace
from workspace_helpers import run_pybuild, write_workspace

RULES = 'load("@rules_rust//rust:defs.bzl", "rust_binary", "rust_library", "rust_proc_macro")\n'
PUBLIC = 'visibility = ["//visibility:public"]'

# A proc-macro that emits constants in HashMap order: the order differs in every rustc process.
SHUFFLING_MACRO = """
use proc_macro::TokenStream;
use std::collections::HashMap;

#[proc_macro]
pub fn constants(_input: TokenStream) -> TokenStream {
    let names: HashMap<&str, u32> = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
        .iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();
    let mut code = String::new();
    for (name, value) in &names {
        code.push_str(&format!("pub const {}: u32 = {};\\n", name.to_uppercase(), value));
    }
    code.parse().unwrap()
}
"""
# The same constants in a fixed order.
SORTED_MACRO = SHUFFLING_MACRO.replace("HashMap<&str, u32>", "std::collections::BTreeMap<&str, u32>")

APP = {
    "base/BUILD.bazel": RULES
    + 'rust_library(name = "base", srcs = ["lib.rs"], visibility = ["//visibility:public"])\n',
    "base/lib.rs": "pub fn base() -> u32 { 40 }\nfn hidden() -> u32 { 2 }\npub fn two() -> u32 { hidden() }\n",
    "mid/BUILD.bazel": RULES
    + 'rust_library(name = "mid", srcs = ["lib.rs"], deps = ["//base"], visibility = ["//visibility:public"])\n',
    "mid/lib.rs": "pub fn answer() -> u32 { base::base() + base::two() }\n",
    "app/BUILD.bazel": RULES + 'rust_binary(name = "app", srcs = ["main.rs"], deps = ["//mid"])\n',
    "app/main.rs": 'fn main() { println!("{} at {}", mid::answer(), file!()); }\n',
}


def _macro_workspace(root: Path, macro: str) -> Path:
    return write_workspace(
        root,
        {
            "m/BUILD.bazel": RULES
            + 'rust_proc_macro(name = "consts", srcs = ["lib.rs"], visibility = ["//visibility:public"])\n',
            "m/lib.rs": macro,
            "l/BUILD.bazel": RULES + 'rust_library(name = "l", srcs = ["lib.rs"], proc_macro_deps = ["//m:consts"])\n',
            "l/lib.rs": "consts::constants!();\npub fn total() -> u32 { ALPHA + ZETA }\n",
        },
    )


def _digests(root: Path) -> dict[str, str]:
    bin_dir = root / "pybuild-out" / "k8-fastbuild" / "bin"
    return {
        str(path.relative_to(bin_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(bin_dir.rglob("*"))
        if path.is_file() and not path.is_symlink() and ".runfiles" not in path.parts
    }


@pytest.mark.parametrize("mode", [[], ["--incompatible_use_unstable_no_codegen_for_pipelining"]])
def test_two_checkouts_build_bit_identical_outputs(tmp_path: Path, mode: list[str]) -> None:
    digests = []
    for name in ("first-checkout", "somewhere/else/second"):
        root = write_workspace(tmp_path / name, APP)
        code, _, err = run_pybuild(root, "build", "//...", "-j2", *mode, timeout=300)
        assert code == 0, err[-2000:]
        digests.append(_digests(root))
    assert digests[0] == digests[1]
    assert any(path.endswith("app/app") for path in digests[0]) and len(digests[0]) >= 4


def test_nondeterministic_proc_macro_is_caught(tmp_path: Path) -> None:
    root = _macro_workspace(tmp_path, SHUFFLING_MACRO)
    code, out, err = run_pybuild(root, "check-determinism", "//l", "-j2", timeout=300)
    assert code == 1, out + err
    assert "NOT DETERMINISTIC: //l:l" in out
    assert "proc-macros it uses: //m:consts" in out
    assert "1 not deterministic" in out


def test_deterministic_workspace_passes(tmp_path: Path) -> None:
    root = _macro_workspace(tmp_path, SORTED_MACRO)
    code, out, err = run_pybuild(root, "check-determinism", "//l", "-j2", timeout=300)
    assert code == 0, out + err
    assert "0 not deterministic" in out and "2 crates checked" in out


def test_hollow_rlibs_the_build_cut_from_full_rlibs_are_what_rustc_writes(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", wide_workspace())
    log = tmp_path / "log.json"
    code, out, err = run_pybuild(root, "check-determinism", "//...", "-j2", HOLLOW, f"--execution_log_json_file={log}")
    assert code == 0, out + err
    assert "0 not deterministic" in out and "4 crates checked" in out
    cut = [record for record in read_log(log) if record["mnemonic"] == "RustcMetadata"]
    assert cut and all(r["shares_process"] for r in cut)  # the hollow rlibs compared were cut, not compiled
