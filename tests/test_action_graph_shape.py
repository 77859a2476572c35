"""The shape of the action graph `pybuild aquery` prints, in the three pipelining modes.

One workspace holds a chain (//chain/a <- //chain/b <- //chain/c), a diamond (//diamond:top -> left,
right -> base), a proc-macro (//macros:hello_macro) used through proc_macro_deps by //greet and a
binary (//app) over the chain end, the diamond top and //greet. The tests check which action
reads which file and the rustc flags that tie them together:

- none   (--pipelined_compilation=false): one Rustc action per crate, dependents read full rlibs.
- rmeta  (the default): a RustcMetadata action stops rustc after the .rmeta (process wrapper with
         --rustc-quit-on-rmeta); dependent libraries compile against `_pipelined/lib<crate>-<h>.rmeta`.
- hollow (--incompatible_use_unstable_no_codegen_for_pipelining): RustcMetadata runs
         `rustc -Zno-codegen` and writes a hollow rlib `_meta/lib<crate>-<h>_meta.rlib`; both actions
         of a library get RUSTC_BOOTSTRAP=1 and, unless the target opted in to unstable features or
         the toolchain is nightly, `-Zallow-features=`.

Binaries and proc-macros link, so they always read full rlibs and have a single Rustc action.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from workspace_helpers import RULES_RUST_LOAD, Runner, assert_error, assert_ok, write_workspace

from pybuild.errors import PybuildError
from toolchains import local_rust

Action = dict[str, Any]
MODULE = 'module(name = "shape", version = "0.1.0")\n\nbazel_dep(name = "rules_rust", version = "0.0.0")\n'
PUBLIC = 'package(default_visibility = ["//visibility:public"])\n\n'

SHAPE = {
    "MODULE.bazel": MODULE,
    "chain/a/BUILD.bazel": RULES_RUST_LOAD + PUBLIC + 'rust_library(name = "a", srcs = ["src/lib.rs"])\n',
    "chain/a/src/lib.rs": "pub fn a() -> u32 {\n    1\n}\n",
    "chain/b/BUILD.bazel": RULES_RUST_LOAD
    + PUBLIC
    + 'rust_library(name = "b", srcs = ["src/lib.rs"], deps = ["//chain/a"])\n',
    "chain/b/src/lib.rs": "pub fn b() -> u32 {\n    a::a() + 1\n}\n",
    "chain/c/BUILD.bazel": RULES_RUST_LOAD
    + PUBLIC
    + 'rust_library(name = "c", srcs = ["src/lib.rs"], deps = ["//chain/b"])\n',
    "chain/c/src/lib.rs": "pub fn c() -> u32 {\n    b::b() + 1\n}\n",
    "diamond/BUILD.bazel": RULES_RUST_LOAD
    + PUBLIC
    + """
rust_library(name = "base", srcs = ["base.rs"])

rust_library(name = "left", srcs = ["left.rs"], deps = [":base"])

rust_library(name = "right", srcs = ["right.rs"], deps = [":base"])

rust_library(name = "top", srcs = ["top.rs"], deps = [":left", ":right"])
""",
    "diamond/base.rs": "pub fn base() -> u32 {\n    1\n}\n",
    "diamond/left.rs": "pub fn left() -> u32 {\n    base::base() + 1\n}\n",
    "diamond/right.rs": "pub fn right() -> u32 {\n    base::base() + 2\n}\n",
    "diamond/top.rs": "pub fn top() -> u32 {\n    left::left() + right::right()\n}\n",
    "macros/BUILD.bazel": RULES_RUST_LOAD + PUBLIC + 'rust_proc_macro(name = "hello_macro", srcs = ["lib.rs"])\n',
    "macros/lib.rs": (
        "use proc_macro::TokenStream;\n\n"
        "#[proc_macro]\n"
        "pub fn hello(_input: TokenStream) -> TokenStream {\n"
        '    "pub fn hello() -> &\'static str { \\"hello\\" }".parse().unwrap()\n'
        "}\n"
    ),
    "greet/BUILD.bazel": RULES_RUST_LOAD
    + PUBLIC
    + """
rust_library(
    name = "greet",
    srcs = ["lib.rs"],
    proc_macro_deps = ["//macros:hello_macro"],
    deps = ["//chain/a"],
)
""",
    "greet/lib.rs": (
        'hello_macro::hello!();\n\npub fn greeting() -> String {\n    format!("{} {}", hello(), a::a())\n}\n'
    ),
    "app/BUILD.bazel": RULES_RUST_LOAD
    + """
rust_binary(
    name = "app",
    srcs = ["main.rs"],
    proc_macro_deps = ["//macros:hello_macro"],
    deps = [
        "//chain/c",
        "//diamond:top",
        "//greet",
    ],
)
""",
    "app/main.rs": (
        "hello_macro::hello!();\n\n"
        'fn main() {\n    println!("{} {} {} {}", c::c(), top::top(), greet::greeting(), hello());\n}\n'
    ),
    # The same crate name three times: in two packages and twice in one package.
    "dup/x/BUILD.bazel": RULES_RUST_LOAD
    + """
rust_library(name = "util", srcs = ["lib.rs"], crate_name = "shared")

rust_library(name = "util_v2", srcs = ["lib.rs"], crate_name = "shared")
""",
    "dup/x/lib.rs": 'pub fn which() -> &\'static str {\n    "x"\n}\n',
    "dup/y/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "util", srcs = ["lib.rs"], crate_name = "shared")\n',
    "dup/y/lib.rs": 'pub fn which() -> &\'static str {\n    "y"\n}\n',
}

A, B, C = "//chain/a:a", "//chain/b:b", "//chain/c:c"
BASE, LEFT, RIGHT, TOP = "//diamond:base", "//diamond:left", "//diamond:right", "//diamond:top"
MACRO, GREET, APP = "//macros:hello_macro", "//greet:greet", "//app:app"
DUPS = ["//dup/x:util", "//dup/x:util_v2", "//dup/y:util"]
LIBRARIES = [A, B, C, BASE, LEFT, RIGHT, TOP, GREET, *DUPS]
CRATES = [*LIBRARIES, MACRO, APP]
# Transitive crate dependencies of each library (proc-macros included).
TRANSITIVE = {
    A: [],
    B: [A],
    C: [A, B],
    BASE: [],
    LEFT: [BASE],
    RIGHT: [BASE],
    TOP: [BASE, LEFT, RIGHT],
    GREET: [A, MACRO],
}
APP_TRANSITIVE = [A, B, C, BASE, LEFT, RIGHT, TOP, GREET, MACRO]

HOLLOW_FLAG = "--incompatible_use_unstable_no_codegen_for_pipelining"
MODES = {
    "none": ("--pipelined_compilation=false",),
    "rmeta": (),
    "hollow": (HOLLOW_FLAG,),
}
PIPELINED = ["rmeta", "hollow"]
BIN_DIR = re.compile(r"^pybuild-out/[^/]+/bin/")
WRAPPER = "util/process_wrapper/process_wrapper.py"


# ---------------------------------------------------------------------------------------------
# Helpers


def is_generated(path: str) -> bool:
    return bool(BIN_DIR.match(path))


def package_dir(path: str) -> str:
    """The package a generated file belongs to: bin dir prefix and `_meta`/`_pipelined` stripped."""
    directory = os.path.dirname(BIN_DIR.sub("", path))
    return re.sub(r"/?_(meta|pipelined)$", "", directory)


def rustc_args(action: Action) -> list[str]:
    """rustc's own arguments: after the process wrapper's `--`, else after the program."""
    argv = action["argv"]
    if argv[0].endswith(WRAPPER):
        return argv[argv.index("--") + 2 :]
    return argv[1:]


def wrapper_args(action: Action) -> list[str] | None:
    """The process wrapper's own flags (None when rustc runs without the wrapper)."""
    argv = action["argv"]
    return argv[1 : argv.index("--")] if argv[0].endswith(WRAPPER) else None


def rustc_program(action: Action) -> str:
    argv = action["argv"]
    return argv[argv.index("--") + 1] if argv[0].endswith(WRAPPER) else argv[0]


def flag_values(action: Action, prefix: str) -> list[str]:
    return [arg[len(prefix) :] for arg in rustc_args(action) if arg.startswith(prefix)]


def externs(action: Action) -> dict[str, str]:
    """--extern=name=path pairs (a bare --extern=name, like proc_macro, is left out)."""
    pairs = [value.split("=", 1) for value in flag_values(action, "--extern=") if "=" in value]
    return dict(pairs)


def search_dirs(action: Action) -> list[str]:
    return flag_values(action, "-Ldependency=")


def generated_inputs(action: Action) -> set[str]:
    return {path for path in action["inputs"] if is_generated(path)}


def the_flag(action: Action, prefix: str) -> str:
    values = flag_values(action, prefix)
    assert len(values) == 1, f"expected one {prefix}... in {action['argv']}"
    return values[0]


class Graph:
    """The actions of one aquery run, looked up by owner and mnemonic."""

    def __init__(self, actions: list[Action]) -> None:
        self.actions = actions
        self.producers = {output: action for action in actions for output in action["outputs"]}

    def of(self, owner: str, mnemonic: str | None = None) -> list[Action]:
        return [a for a in self.actions if a["owner"] == owner and mnemonic in (None, a["mnemonic"])]

    def one(self, owner: str, mnemonic: str) -> Action:
        found = self.of(owner, mnemonic)
        assert len(found) == 1, f"{owner}: expected one {mnemonic} action, got {len(found)}"
        return found[0]

    def full(self, owner: str) -> str:
        """The full artifact: rlib, proc-macro .so or executable."""
        (output,) = self.one(owner, "Rustc")["outputs"]
        return output

    def meta(self, owner: str) -> str:
        (output,) = self.one(owner, "RustcMetadata")["outputs"]
        return output

    def compiled_against(self, owner: str, mode: str) -> str:
        """What dependent libraries read of `owner` in `mode`."""
        return self.meta(owner) if mode != "none" and owner in LIBRARIES else self.full(owner)

    def all_env(self) -> Iterable[tuple[str, str]]:
        for action in self.actions:
            yield from action["env"].items()


@pytest.fixture(scope="module")
def shape_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workspace(tmp_path_factory.mktemp("shape"), SHAPE)


@pytest.fixture(scope="module")
def _cache() -> dict[tuple[str, ...], str]:
    return {}


@pytest.fixture
def aquery_json(run: Runner, _cache: dict[tuple[str, ...], str]) -> Callable[..., str]:
    """aquery_json(workspace, *args): stdout of `pybuild aquery ARGS --output=json`, cached per workspace and args."""

    def aquery_json(workspace: Path, *args: str) -> str:
        key = (str(workspace), *args)
        if key not in _cache:
            _cache[key] = assert_ok(run(workspace, "aquery", *args, "--output=json"))
        return _cache[key]

    return aquery_json


@pytest.fixture
def graph(shape_workspace: Path, aquery_json: Callable[..., str]) -> Callable[[str], Graph]:
    """graph(mode): the actions of `//...` in the shape workspace for mode none, rmeta or hollow."""

    def graph(mode: str) -> Graph:
        return Graph(json.loads(aquery_json(shape_workspace, "//...", *MODES[mode]))["actions"])

    return graph


# ---------------------------------------------------------------------------------------------
# Every mode


@pytest.mark.parametrize("mode", MODES)
def test_actions_per_crate(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    assert {a["owner"] for a in g.actions} == set(CRATES)
    for library in LIBRARIES:
        expected = ["Rustc"] if mode == "none" else ["RustcMetadata", "Rustc"]
        assert sorted(a["mnemonic"] for a in g.of(library)) == sorted(expected), library
    for linked in (MACRO, APP):
        assert [a["mnemonic"] for a in g.of(linked)] == ["Rustc"], linked
    # Each action writes exactly one declared file, and no two actions write the same one.
    outputs = [output for a in g.actions for output in a["outputs"]]
    assert all(len(a["outputs"]) == 1 for a in g.actions)
    assert len(outputs) == len(set(outputs))
    assert all(is_generated(path) for path in outputs)


@pytest.mark.parametrize("mode", MODES)
def test_actions_are_listed_in_dependency_order(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    position = {output: index for index, a in enumerate(g.actions) for output in a["outputs"]}
    for index, action in enumerate(g.actions):
        for path in generated_inputs(action):
            assert path in position, f"{action['owner']} reads {path}, which no action produces"
            assert position[path] < index


@pytest.mark.parametrize("mode", MODES)
def test_every_crate_has_its_own_metadata_hash(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    hashes = {}
    for crate in CRATES:
        for action in g.of(crate):
            digest = the_flag(action, "--codegen=metadata=")
            assert re.fullmatch(r"[0-9a-f]{8}", digest), digest
            assert the_flag(action, "--codegen=extra-filename=") == "-" + digest
            hashes.setdefault(crate, digest)
            assert hashes[crate] == digest, f"{crate}: both actions use one hash"
            (output,) = action["outputs"]
            if crate != APP:
                assert f"-{digest}" in os.path.basename(output)
    assert len(set(hashes.values())) == len(CRATES), hashes


def test_hash_does_not_depend_on_the_mode(graph: Callable[[str], Graph]) -> None:
    hashes = {mode: {c: the_flag(graph(mode).one(c, "Rustc"), "--codegen=metadata=") for c in CRATES} for mode in MODES}
    assert hashes["none"] == hashes["rmeta"] == hashes["hollow"]


@pytest.mark.parametrize("mode", MODES)
def test_same_crate_name_in_different_targets_gets_different_files(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    for owner in DUPS:
        for action in g.of(owner):
            assert the_flag(action, "--crate-name=") == "shared"
    fulls = [g.full(owner) for owner in DUPS]
    assert len(set(fulls)) == 3
    assert all(re.fullmatch(r"libshared-[0-9a-f]{8}\.rlib", os.path.basename(path)) for path in fulls)
    assert [package_dir(path) for path in fulls] == ["dup/x", "dup/x", "dup/y"]
    if mode != "none":
        metas = [g.meta(owner) for owner in DUPS]
        assert len(set(metas)) == 3


@pytest.mark.parametrize("mode", MODES)
def test_full_rlib_naming(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    for library in LIBRARIES:
        action = g.one(library, "Rustc")
        name, digest = the_flag(action, "--crate-name="), the_flag(action, "--codegen=metadata=")
        output = g.full(library)
        assert os.path.basename(output) == f"lib{name}-{digest}.rlib"
        assert "/_meta/" not in output and "/_pipelined/" not in output, "full rlibs are in the package dir"
        assert the_flag(action, "--crate-type=") == "rlib"


# ---------------------------------------------------------------------------------------------
# What dependents read


@pytest.mark.parametrize("mode", MODES)
def test_libraries_read_what_the_mode_says(graph: Callable[[str], Graph], mode: str) -> None:
    """Both actions of a library read exactly the metadata (none: full rlibs) of its transitive deps."""
    g = graph(mode)
    for library, below in TRANSITIVE.items():
        expected = {g.compiled_against(dep, mode) for dep in below}
        for action in g.of(library):
            assert generated_inputs(action) == expected, (library, action["mnemonic"])


@pytest.mark.parametrize("mode", MODES)
def test_externs_name_the_direct_dependencies_files(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    direct = {B: {"a": A}, C: {"b": B}, LEFT: {"base": BASE}, TOP: {"left": LEFT, "right": RIGHT}}
    direct[GREET] = {"a": A, "hello_macro": MACRO}
    for library, deps in direct.items():
        expected = {name: g.compiled_against(dep, mode) for name, dep in deps.items()}
        for action in g.of(library):
            assert externs(action) == expected, (library, action["mnemonic"])
            assert set(expected.values()) <= set(action["inputs"]), "every --extern file is an input"


@pytest.mark.parametrize("mode", PIPELINED)
def test_pipelined_libraries_never_wait_for_full_rlibs(graph: Callable[[str], Graph], mode: str) -> None:
    """Every file a library action reads comes from a RustcMetadata action or a proc-macro's Rustc."""
    g = graph(mode)
    for library in LIBRARIES:
        for action in g.of(library):
            for path in generated_inputs(action):
                producer = g.producers[path]
                assert producer["mnemonic"] == "RustcMetadata" or producer["owner"] == MACRO, (library, path)


def test_no_pipelining_dependents_read_full_rlibs(graph: Callable[[str], Graph]) -> None:
    g = graph("none")
    for action in g.actions:
        for path in generated_inputs(action):
            assert g.producers[path]["mnemonic"] == "Rustc"
            assert path.endswith((".rlib", ".so"))
            assert "/_meta/" not in path and "/_pipelined/" not in path


@pytest.mark.parametrize("mode", MODES)
def test_search_dirs_one_per_transitive_crate_directory(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    for library, below in TRANSITIVE.items():
        expected = {os.path.dirname(g.compiled_against(dep, mode)) for dep in below}
        for action in g.of(library):
            dirs = search_dirs(action)
            assert len(dirs) == len(set(dirs)), f"{library}: duplicate -Ldependency"
            assert set(dirs) == expected, (library, action["mnemonic"])
    # c sees a and b (two packages); the diamond top sees one directory for its three deps.
    assert len(search_dirs(g.one(C, "Rustc"))) == 2
    assert len(search_dirs(g.one(TOP, "Rustc"))) == 1


def test_hollow_chain_metadata_dirs(graph: Callable[[str], Graph]) -> None:
    """c's actions search a's and b's `_meta` dirs; b's read a's hollow rlib, never its full rlib."""
    g = graph("hollow")
    a_meta, b_meta = os.path.dirname(g.meta(A)), os.path.dirname(g.meta(B))
    assert a_meta.endswith("/chain/a/_meta") and b_meta.endswith("/chain/b/_meta")
    for action in g.of(C):
        assert sorted(search_dirs(action)) == sorted([a_meta, b_meta])
    for action in g.of(B):
        assert search_dirs(action) == [a_meta]
        assert externs(action) == {"a": g.meta(A)}
        assert g.meta(A) in action["inputs"]
        assert g.full(A) not in action["inputs"]


@pytest.mark.parametrize("mode", MODES)
def test_binary_links_full_rlibs_only(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    action = g.one(APP, "Rustc")
    expected = {g.full(dep) for dep in APP_TRANSITIVE}
    assert generated_inputs(action) == expected
    assert externs(action) == {
        "c": g.full(C),
        "top": g.full(TOP),
        "greet": g.full(GREET),
        "hello_macro": g.full(MACRO),
    }
    dirs = search_dirs(action)
    assert set(dirs) == {os.path.dirname(path) for path in expected}
    assert len(dirs) == len(set(dirs))
    assert not [d for d in dirs if "_meta" in d or "_pipelined" in d]
    crate_inputs = [p for p in action["inputs"] if not p.startswith("pybuild-out/external/")]  # not the toolchain
    assert not [p for p in crate_inputs if p.endswith(".rmeta") or "_meta" in p or "_pipelined" in p]
    assert the_flag(action, "--crate-type=") == "bin"
    assert the_flag(action, "--emit=") == "link=" + g.full(APP)
    assert package_dir(g.full(APP)) == "app" and os.path.basename(g.full(APP)) == "app"
    assert "RUSTC_BOOTSTRAP" not in action["env"]


# ---------------------------------------------------------------------------------------------
# The proc-macro


@pytest.mark.parametrize("mode", MODES)
def test_proc_macro_is_one_rustc_action(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    (action,) = g.of(MACRO)
    assert action["mnemonic"] == "Rustc"
    args = rustc_args(action)
    assert "--crate-type=proc-macro" in args
    assert args.count("--extern=proc_macro") == 1
    assert "-Zno-codegen" not in args
    assert "RUSTC_BOOTSTRAP" not in action["env"]
    (output,) = action["outputs"]
    digest = the_flag(action, "--codegen=metadata=")
    assert os.path.basename(output) == f"libhello_macro-{digest}.so"
    assert package_dir(output) == "macros" and "/_meta/" not in output and "/_pipelined/" not in output
    assert the_flag(action, "--emit=") == "link=" + output
    assert generated_inputs(action) == set()


@pytest.mark.parametrize("mode", MODES)
def test_every_proc_macro_consumer_reads_the_so(graph: Callable[[str], Graph], mode: str) -> None:
    g = graph(mode)
    so = g.full(MACRO)
    consumers = [a for a in g.actions if "hello_macro" in externs(a)]
    # Both actions of //greet (metadata included) and the binary.
    assert sorted((a["owner"], a["mnemonic"]) for a in consumers) == sorted(
        [(APP, "Rustc"), *((GREET, m) for m in (["Rustc"] if mode == "none" else ["Rustc", "RustcMetadata"]))]
    )
    for action in consumers:
        assert externs(action)["hello_macro"] == so
        assert so in action["inputs"]
        assert os.path.dirname(so) in search_dirs(action)
    # Nothing else names the proc-macro.
    for action in g.actions:
        if action not in consumers:
            assert so not in action["inputs"]


# ---------------------------------------------------------------------------------------------
# rmeta pipelining


def test_rmeta_metadata_action_quits_after_the_rmeta(graph: Callable[[str], Graph]) -> None:
    g = graph("rmeta")
    for library in LIBRARIES:
        meta, full = g.one(library, "RustcMetadata"), g.one(library, "Rustc")
        assert meta["argv"][0].endswith(WRAPPER) and full["argv"][0].endswith(WRAPPER)
        assert meta["argv"][0] in meta["inputs"] and full["argv"][0] in full["inputs"]
        assert "--rustc-quit-on-rmeta" in wrapper_args(meta)
        assert "--rustc-quit-on-rmeta" not in wrapper_args(full)
        assert rustc_program(meta) == rustc_program(full)
        assert rustc_program(meta).endswith("/rustc") and rustc_program(meta) in meta["inputs"]
        assert "PATH" in meta["env"] and "RUSTC_BOOTSTRAP" not in meta["env"]
        assert meta["env"] == full["env"]

        name, digest = the_flag(meta, "--crate-name="), the_flag(meta, "--codegen=metadata=")
        (output,) = meta["outputs"]
        assert output.endswith(f"/_pipelined/lib{name}-{digest}.rmeta")
        assert os.path.dirname(os.path.dirname(output)) == os.path.dirname(g.full(library))
        emit = dict(part.split("=", 1) for part in the_flag(meta, "--emit=").split(","))
        assert emit["metadata"] == output
        assert set(emit) == {"dep-info", "metadata", "link"}
        assert all(os.path.dirname(path) == os.path.dirname(output) for path in emit.values())
        full_emit = dict(part.split("=", 1) for part in the_flag(full, "--emit=").split(","))
        assert full_emit["link"] == g.full(library)


def test_rmeta_both_actions_have_the_same_flags_apart_from_output_paths(graph: Callable[[str], Graph]) -> None:
    g = graph("rmeta")
    for library in LIBRARIES:
        meta, full = g.one(library, "RustcMetadata"), g.one(library, "Rustc")
        for action in (meta, full):
            # Both keep the JSON flags: without them the full compile writes a different .rmeta and rlib (the
            # fusion test saw it), so one process could no longer stand in for both actions.
            args = rustc_args(action)
            assert args.count("--error-format=json") == 1 and args.count("--json=artifacts") == 1
            assert not [arg for arg in args if arg.startswith("-Z")]
        # Only --emit differs: the same three files, in _pipelined/ for the metadata action.
        emit = the_flag(meta, "--emit=")
        assert "/_pipelined/" in emit
        normalized = [arg.replace("/_pipelined/", "/") if arg == "--emit=" + emit else arg for arg in rustc_args(meta)]
        assert normalized == rustc_args(full)
        assert meta["inputs"] == full["inputs"]
        # The full action's rustc writes the metadata action's .rmeta too: one process may serve both.
        early_path = os.path.join(os.path.dirname(g.full(library)), os.path.basename(meta["outputs"][0]))
        assert meta["execution_requirements"] == {"early-output-of": g.full(library), "early-output-path": early_path}


def test_rmeta_dependents_compile_against_rmeta(graph: Callable[[str], Graph]) -> None:
    g = graph("rmeta")
    for action in g.of(B):
        assert externs(action) == {"a": g.meta(A)}
        assert g.meta(A).endswith(".rmeta")
        assert g.full(A) not in action["inputs"]
        assert search_dirs(action) == [os.path.dirname(g.meta(A))]
        assert search_dirs(action)[0].endswith("/chain/a/_pipelined")


def test_rmeta_sets_no_rustc_bootstrap(graph: Callable[[str], Graph]) -> None:
    assert "RUSTC_BOOTSTRAP" not in dict(graph("rmeta").all_env())


# ---------------------------------------------------------------------------------------------
# Hollow rlibs


def test_hollow_library_actions(graph: Callable[[str], Graph]) -> None:
    g = graph("hollow")
    for library in LIBRARIES:
        meta, full = g.one(library, "RustcMetadata"), g.one(library, "Rustc")
        for action in (meta, full):
            assert "--rustc-quit-on-rmeta" not in (wrapper_args(action) or []), "rustc -Zno-codegen runs to the end"
            assert rustc_program(action).endswith("/rustc") and rustc_program(action) in action["inputs"]
            assert action["env"].get("RUSTC_BOOTSTRAP") == "1"
            assert "--error-format=json" not in action["argv"]
        name, digest = the_flag(meta, "--crate-name="), the_flag(meta, "--codegen=metadata=")
        hollow, rlib = g.meta(library), g.full(library)
        assert hollow.endswith(f"/_meta/lib{name}-{digest}_meta.rlib")
        assert rlib.endswith(f"/lib{name}-{digest}.rlib")
        assert os.path.dirname(hollow) != os.path.dirname(rlib)
        assert os.path.dirname(hollow) == os.path.dirname(rlib) + "/_meta"
        assert the_flag(meta, "--emit=") == "link=" + hollow
        assert the_flag(full, "--emit=") == "link=" + rlib
        assert rustc_args(meta).count("-Zno-codegen") == 1
        assert "-Zno-codegen" not in rustc_args(full)
        # Apart from -Zno-codegen and the output, the two command lines are the same.
        normalized = [arg.replace(hollow, rlib) for arg in rustc_args(meta) if arg != "-Zno-codegen"]
        assert normalized == rustc_args(full)
        assert meta["inputs"] == full["inputs"]
        assert meta["env"] == full["env"]


def test_hollow_full_action_reads_hollow_rlibs_not_full_ones(graph: Callable[[str], Graph]) -> None:
    g = graph("hollow")
    full_b = g.one(B, "Rustc")
    assert g.meta(A) in full_b["inputs"]
    assert g.full(A) not in full_b["inputs"]
    assert "/_meta/" in g.meta(A) and g.meta(A).endswith("_meta.rlib")
    meta_b = g.one(B, "RustcMetadata")
    assert g.meta(A) in meta_b["inputs"] and g.full(A) not in meta_b["inputs"]
    # The action graph edge: b's actions wait for a's metadata action, never for a's full compile.
    assert g.producers[g.meta(A)] is g.one(A, "RustcMetadata")


def test_hollow_rustc_bootstrap_only_on_pipelined_library_actions(graph: Callable[[str], Graph]) -> None:
    g = graph("hollow")
    bootstrapped = {(a["owner"], a["mnemonic"]) for a in g.actions if a["env"].get("RUSTC_BOOTSTRAP") == "1"}
    assert bootstrapped == {(lib, m) for lib in LIBRARIES for m in ("RustcMetadata", "Rustc")}


# ---------------------------------------------------------------------------------------------
# No pipelining


def test_no_pipelining_one_rustc_action_per_crate(graph: Callable[[str], Graph]) -> None:
    g = graph("none")
    assert sorted(a["owner"] for a in g.actions) == sorted(CRATES)
    assert {a["mnemonic"] for a in g.actions} == {"Rustc"}
    for action in g.actions:
        assert "--rustc-quit-on-rmeta" not in (wrapper_args(action) or [])
        assert not [arg for arg in rustc_args(action) if arg.startswith("-Z")]
        assert "--error-format=json" not in rustc_args(action)
        (output,) = action["outputs"]
        assert the_flag(action, "--emit=") == "link=" + output
        assert "/_meta/" not in output and "/_pipelined/" not in output


def test_no_pipelining_sets_no_rustc_bootstrap(graph: Callable[[str], Graph]) -> None:
    assert "RUSTC_BOOTSTRAP" not in dict(graph("none").all_env())


@pytest.mark.parametrize(
    "hollow",
    [
        (HOLLOW_FLAG,),
        (f"{HOLLOW_FLAG}=true",),
        ("--@rules_rust//settings:incompatible_use_unstable_no_codegen_for_pipelining=true",),
        ("--@rules_rust//rust/settings:incompatible_use_unstable_no_codegen_for_pipelining=true",),
    ],
)
def test_hollow_flag_has_no_effect_without_pipelining(
    shape_workspace: Path, aquery_json: Callable[..., str], hollow: tuple[str, ...]
) -> None:
    plain = aquery_json(shape_workspace, "//...", "--pipelined_compilation=false")
    assert aquery_json(shape_workspace, "//...", "--pipelined_compilation=false", *hollow) == plain
    assert aquery_json(shape_workspace, "//...", "--nopipelined_compilation", *hollow) == plain


@pytest.mark.parametrize(
    "spelling",
    [
        (f"{HOLLOW_FLAG}=true",),
        (f"{HOLLOW_FLAG}=1",),
        ("--@rules_rust//settings:incompatible_use_unstable_no_codegen_for_pipelining",),
        ("--@rules_rust//settings:incompatible_use_unstable_no_codegen_for_pipelining=true",),
        ("--@rules_rust//rust/settings:incompatible_use_unstable_no_codegen_for_pipelining=true",),
    ],
)
def test_hollow_flag_spellings(shape_workspace: Path, aquery_json: Callable[..., str], spelling: tuple[str]) -> None:
    assert aquery_json(shape_workspace, "//...", *spelling) == aquery_json(shape_workspace, "//...", HOLLOW_FLAG)


@pytest.mark.parametrize(
    "spelling",
    [
        (f"--no{HOLLOW_FLAG[2:]}",),
        (f"{HOLLOW_FLAG}=false",),
        ("--@rules_rust//rust/settings:incompatible_use_unstable_no_codegen_for_pipelining=false",),
        ("--pipelined_compilation",),
        ("--@rules_rust//rust/settings:pipelined_compilation=true",),
    ],
)
def test_default_is_rmeta(shape_workspace: Path, aquery_json: Callable[..., str], spelling: tuple[str]) -> None:
    assert aquery_json(shape_workspace, "//...", *spelling) == aquery_json(shape_workspace, "//...")


def test_modes_differ(shape_workspace: Path, aquery_json: Callable[..., str]) -> None:
    outputs = {mode: aquery_json(shape_workspace, "//...", *flags) for mode, flags in MODES.items()}
    assert len(set(outputs.values())) == 3
    keys = {mode: {a["key"] for a in json.loads(text)["actions"]} for mode, text in outputs.items()}
    for mode, text in outputs.items():
        assert len(keys[mode]) == len(json.loads(text)["actions"]), "action keys are unique"


# ---------------------------------------------------------------------------------------------
# The -Zallow-features= guardrail (hollow rlibs need RUSTC_BOOTSTRAP=1; user code must not gain
# unstable features from it silently)

GUARDRAIL_TARGETS = """
rust_library(name = "plain", srcs = ["lib.rs"])

rust_library(name = "env_opt_in", srcs = ["lib.rs"], rustc_env = {"RUSTC_BOOTSTRAP": "1"})

rust_library(name = "flag_opt_in", srcs = ["lib.rs"], rustc_flags = ["-Zallow-features=x"])

rust_library(name = "spaced_opt_in", srcs = ["lib.rs"], rustc_flags = ["-Z", "allow-features=x"])

rust_library(name = "underscore_opt_in", srcs = ["lib.rs"], rustc_flags = ["-Zallow_features=x"])

rust_library(name = "spaced_underscore_opt_in", srcs = ["lib.rs"], rustc_flags = ["-Z", "allow_features=x"])

# Not opt-ins: another -Z flag, another environment variable, a trailing -Z.
rust_library(name = "other_z_flag", srcs = ["lib.rs"], rustc_flags = ["-Z", "macro-backtrace"])

rust_library(name = "other_env", srcs = ["lib.rs"], rustc_env = {"RUSTC_BOOTSTRAP_X": "1", "GREETING": "hi"})

rust_library(name = "trailing_z", srcs = ["lib.rs"], rustc_flags = ["-Dwarnings", "-Z"])

rust_library(name = "dependent", srcs = ["lib.rs"], deps = [":plain", ":flag_opt_in"])

rust_binary(name = "bin", srcs = ["main.rs"], deps = [":dependent"])

# Pipelining off for one library: a single action, and its dependents wait for its full rlib.
rust_library(name = "unpipelined", srcs = ["lib.rs"], disable_pipelining = True, deps = [":plain"])

rust_library(name = "after_unpipelined", srcs = ["lib.rs"], deps = [":unpipelined"])
"""
OPT_INS = {
    "env_opt_in": [],
    "flag_opt_in": ["-Zallow-features=x"],
    "spaced_opt_in": ["-Z", "allow-features=x"],
    "underscore_opt_in": ["-Zallow_features=x"],
    "spaced_underscore_opt_in": ["-Z", "allow_features=x"],
}
GUARDED = ["plain", "other_z_flag", "other_env", "trailing_z", "dependent"]


def toolchain_workspace(root: Path, channel: str, **extra_files: str) -> Path:
    """A workspace whose first registered toolchain is //toolchain:impl with `channel` (rustc is a stub)."""
    files = {
        "MODULE.bazel": MODULE + '\nregister_toolchains("//toolchain:all")\n',
        "toolchain/BUILD.bazel": f"""
load("@rules_rust//rust:toolchain.bzl", "rust_toolchain")

rust_toolchain(
    name = "impl",
    rustc = "rustc",
    sysroot = "/opt/rust-{channel}",
    target_triple = "aarch64-unknown-linux-gnu",
    channel = "{channel}",
    version = "1.90.0-{channel}",
    default_edition = "2024",
    visibility = ["//visibility:public"],
)

toolchain(
    name = "rust_toolchain",
    toolchain = ":impl",
    toolchain_type = "@rules_rust//rust:toolchain_type",
)
""",
        "toolchain/rustc": "#!/bin/sh\nexit 1\n",
        **extra_files,
    }
    write_workspace(root, files)
    (root / "toolchain" / "rustc").chmod(0o755)
    return root


def guardrail_workspace(root: Path, channel: str) -> Path:
    return toolchain_workspace(
        root,
        channel,
        **{
            "lib/BUILD.bazel": RULES_RUST_LOAD + GUARDRAIL_TARGETS,
            "lib/lib.rs": "pub fn answer() -> u32 {\n    42\n}\n",
            "lib/main.rs": "fn main() {}\n",
        },
    )


@pytest.fixture(scope="module")
def stable_guardrail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return guardrail_workspace(tmp_path_factory.mktemp("stable"), "stable")


@pytest.fixture
def guardrail(aquery_json: Callable[..., str]) -> Callable[..., Graph]:
    def guardrail(workspace: Path, *flags: str) -> Graph:
        return Graph(json.loads(aquery_json(workspace, "//lib:all", *flags))["actions"])

    return guardrail


def injected(action: Action) -> int:
    return rustc_args(action).count("-Zallow-features=")


def test_guardrail_toolchain_is_the_stub(stable_guardrail: Path, guardrail: Callable[..., Graph]) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    assert all(rustc_program(a) == "toolchain/rustc" for a in g.actions)
    assert the_flag(g.one("//lib:plain", "Rustc"), "--edition=") == "2024", "default edition from the toolchain"


def test_guardrail_baseline_on_both_actions(stable_guardrail: Path, guardrail: Callable[..., Graph]) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    for name in GUARDED:
        for mnemonic in ("RustcMetadata", "Rustc"):
            action = g.one(f"//lib:{name}", mnemonic)
            assert injected(action) == 1, (name, mnemonic)
            assert action["env"]["RUSTC_BOOTSTRAP"] == "1"


@pytest.mark.parametrize("name", OPT_INS)
def test_guardrail_opt_out(stable_guardrail: Path, guardrail: Callable[..., Graph], name: str) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    for mnemonic in ("RustcMetadata", "Rustc"):
        action = g.one(f"//lib:{name}", mnemonic)
        args = rustc_args(action)
        assert injected(action) == 0, (name, mnemonic, args)
        # The target's own flags are passed through unchanged, once, at the end.
        flags = OPT_INS[name]
        if flags:
            assert args[-len(flags) :] == flags
            assert sum(arg.replace("_", "-").startswith("-Zallow-features") for arg in args) == (flags[0] != "-Z")
        assert action["env"]["RUSTC_BOOTSTRAP"] == "1"


def test_guardrail_keeps_user_flags_after_the_injection(
    stable_guardrail: Path, guardrail: Callable[..., Graph]
) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    args = rustc_args(g.one("//lib:other_z_flag", "RustcMetadata"))
    assert args[-2:] == ["-Z", "macro-backtrace"]
    assert args.index("-Zallow-features=") < args.index("-Z")
    env = g.one("//lib:other_env", "Rustc")["env"]
    assert {k: env.get(k) for k in ("RUSTC_BOOTSTRAP", "RUSTC_BOOTSTRAP_X", "GREETING")} == {
        "RUSTC_BOOTSTRAP": "1",
        "RUSTC_BOOTSTRAP_X": "1",
        "GREETING": "hi",
    }


def test_guardrail_binary_gets_neither(stable_guardrail: Path, guardrail: Callable[..., Graph]) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    (action,) = g.of("//lib:bin")
    assert injected(action) == 0
    assert "RUSTC_BOOTSTRAP" not in action["env"]
    assert generated_inputs(action) == {g.full(f"//lib:{n}") for n in ("dependent", "plain", "flag_opt_in")}


@pytest.mark.parametrize("flags", [(), ("--pipelined_compilation=false",), (f"{HOLLOW_FLAG}=false",)])
def test_guardrail_flag_off_injects_nothing(
    stable_guardrail: Path, guardrail: Callable[..., Graph], flags: tuple[str, ...]
) -> None:
    g = guardrail(stable_guardrail, *flags)
    for action in g.actions:
        assert injected(action) == 0, action["owner"]
        assert "-Zno-codegen" not in rustc_args(action)
        expected = "1" if action["owner"] == "//lib:env_opt_in" else None  # the target's own rustc_env
        assert action["env"].get("RUSTC_BOOTSTRAP") == expected, action["owner"]


def test_guardrail_flag_on_bootstraps_both_actions(stable_guardrail: Path, guardrail: Callable[..., Graph]) -> None:
    g = guardrail(stable_guardrail, HOLLOW_FLAG)
    libraries = [*GUARDED, *OPT_INS]
    for name in libraries:
        actions = g.of(f"//lib:{name}")
        assert sorted(a["mnemonic"] for a in actions) == ["Rustc", "RustcMetadata"]
        assert all(a["env"].get("RUSTC_BOOTSTRAP") == "1" for a in actions), name


@pytest.mark.parametrize("flags", [(), (HOLLOW_FLAG,)])
def test_disable_pipelining_library(
    stable_guardrail: Path, guardrail: Callable[..., Graph], flags: tuple[str, ...]
) -> None:
    g = guardrail(stable_guardrail, *flags)
    (action,) = g.of("//lib:unpipelined")
    assert action["mnemonic"] == "Rustc"
    assert "-Zno-codegen" not in rustc_args(action) and injected(action) == 0
    assert "--rustc-quit-on-rmeta" not in wrapper_args(action)
    for dependent in g.of("//lib:after_unpipelined"):
        assert externs(dependent) == {"unpipelined": g.full("//lib:unpipelined")}
        assert generated_inputs(dependent) == {g.full("//lib:unpipelined"), g.meta("//lib:plain")}


@pytest.mark.parametrize(("channel", "guarded"), [("nightly", False), ("beta", True), ("stable", True)])
def test_guardrail_depends_on_channel(
    tmp_path: Path, guardrail: Callable[..., Graph], channel: str, guarded: bool
) -> None:
    g = guardrail(guardrail_workspace(tmp_path, channel), HOLLOW_FLAG)
    for name in GUARDED:
        for mnemonic in ("RustcMetadata", "Rustc"):
            action = g.one(f"//lib:{name}", mnemonic)
            assert injected(action) == int(guarded), (channel, name, mnemonic)
            assert action["env"]["RUSTC_BOOTSTRAP"] == "1"


# ---------------------------------------------------------------------------------------------
# Text output and the mnemonic filter


def parse_text(text: str) -> list[dict[str, str]]:
    """`aquery --output=text` blocks as {field: value}; the command line joined back into one string."""
    blocks = []
    assert text.endswith("\n\n")
    for block in text.strip("\n").split("\n\n"):
        first, *rest = block.split("\n")
        fields = {"action": re.fullmatch(r"action '(.*)'", first).group(1)}
        for line in rest:
            if line.startswith("    "):
                fields["Command Line"] += "\n" + line
            else:
                key, _, value = line.strip().partition(": ")
                fields[key] = value
        blocks.append(fields)
    return blocks


def test_text_output_matches_json(shape_workspace: Path, run: Runner, aquery_json: Callable[..., str]) -> None:
    text = assert_ok(run(shape_workspace, "aquery", "//chain/b", HOLLOW_FLAG))
    as_json = json.loads(aquery_json(shape_workspace, "//chain/b", HOLLOW_FLAG))["actions"]
    blocks = parse_text(text)
    assert [(b["Mnemonic"], b["Target"]) for b in blocks] == [
        ("RustcMetadata", A),
        ("Rustc", A),
        ("RustcMetadata", B),
        ("Rustc", B),
    ]
    for block, action in zip(blocks, as_json, strict=True):
        assert block["action"] == action["progress_message"]
        assert block["Mnemonic"] == action["mnemonic"] and block["Target"] == action["owner"]
        assert block["Inputs"] == "[" + ", ".join(action["inputs"]) + "]"
        assert block["Outputs"] == "[" + ", ".join(action["outputs"]) + "]"
        assert block["Environment"] == "[" + ", ".join(f"{k}={v}" for k, v in sorted(action["env"].items())) + "]"
        words = [shlex.split(line.removesuffix(" \\")) for line in block["Command Line"].split("\n")]
        assert [word for (word,) in words] == action["argv"], "one argument a line, shell-quoted"
    assert "Compiling Rust rlib b (RustcMetadata)" in blocks[2]["action"]


def test_text_output_shows_execution_info_as_bazel_does(
    shape_workspace: Path, run: Runner, aquery_json: Callable[..., str]
) -> None:
    text = assert_ok(run(shape_workspace, "aquery", "//chain/b"))  # rmeta: metadata actions name their process
    as_json = json.loads(aquery_json(shape_workspace, "//chain/b"))["actions"]
    for block, action in zip(parse_text(text), as_json, strict=True):
        requirements = action["execution_requirements"]
        assert bool(requirements) == (action["mnemonic"] == "RustcMetadata")
        if requirements:
            assert block["Execution Info"] == "{" + ", ".join(f"{k}: {v}" for k, v in requirements.items()) + "}"
        else:
            assert "Execution Info" not in block


def test_text_output_quotes_arguments_with_shell_characters(tmp_path: Path, run: Runner) -> None:
    library = 'rust_library(name = "q", srcs = ["lib.rs"], crate_features = ["serde"], rustc_flags = ["--cfg=x y"])\n'
    workspace = toolchain_workspace(tmp_path, "stable", **{"q/BUILD.bazel": RULES_RUST_LOAD + library, "q/lib.rs": ""})
    text = assert_ok(run(workspace, "aquery", "//q", "--pipelined_compilation=false"))
    assert "    --cfg \\\n    'feature=\"serde\"' \\\n" in text
    assert "'--cfg=x y'" in text


@pytest.mark.parametrize(
    ("query", "flags", "expected"),
    [
        ('mnemonic("RustcMetadata", //chain/c)', (), {(m, o) for m in ["RustcMetadata"] for o in (A, B, C)}),
        ("mnemonic('RustcMetadata', //chain/c)", (), {(m, o) for m in ["RustcMetadata"] for o in (A, B, C)}),
        ('mnemonic("Rustc$", //chain/c)', (), {("Rustc", o) for o in (A, B, C)}),
        (
            'mnemonic("Rustc", //app)',
            ("--pipelined_compilation=false",),
            {("Rustc", o) for o in [*APP_TRANSITIVE, APP]},
        ),
        ("//chain/b", ("--mnemonic", ".*Metadata"), {("RustcMetadata", o) for o in (A, B)}),
        ('mnemonic("Nothing", //chain/c)', (), set()),
    ],
)
def test_mnemonic_filter(
    shape_workspace: Path,
    aquery_json: Callable[..., str],
    query: str,
    flags: tuple[str, ...],
    expected: set[tuple[str, str]],
) -> None:
    actions = json.loads(aquery_json(shape_workspace, query, *flags))["actions"]
    assert {(a["mnemonic"], a["owner"]) for a in actions} == expected
    assert len(actions) == len(expected)


def test_mnemonic_filter_matches_the_whole_mnemonic(shape_workspace: Path, aquery_json: Callable[..., str]) -> None:
    actions = json.loads(aquery_json(shape_workspace, 'mnemonic("Rustc", //chain/c)'))["actions"]
    assert {(a["mnemonic"], a["owner"]) for a in actions} == {("Rustc", o) for o in (A, B, C)}


def test_mnemonic_filter_text_output(shape_workspace: Path, run: Runner) -> None:
    text = assert_ok(run(shape_workspace, "aquery", 'mnemonic("RustcMetadata", //chain/b)'))
    blocks = parse_text(text)
    assert [(b["Mnemonic"], b["Target"]) for b in blocks] == [("RustcMetadata", A), ("RustcMetadata", B)]


def test_mnemonic_filter_bad_regex_is_a_usage_error(shape_workspace: Path, run: Runner) -> None:
    assert_error(run(shape_workspace, "aquery", 'mnemonic("Rustc(", //chain/a)'), "not a valid regular expression")


def test_aquery_of_a_package_is_its_actions_and_their_dependencies(
    shape_workspace: Path, aquery_json: Callable[..., str]
) -> None:
    actions = json.loads(aquery_json(shape_workspace, "//greet", "--pipelined_compilation=false"))["actions"]
    assert [a["owner"] for a in actions] in ([A, MACRO, GREET], [MACRO, A, GREET])


# ---------------------------------------------------------------------------------------------
# pybuild info


def parse_info(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_info_reports_the_registered_toolchain(tmp_path: Path, run: Runner) -> None:
    workspace = toolchain_workspace(tmp_path, "nightly")
    info = parse_info(assert_ok(run(workspace, "info")))
    assert info["workspace"] == str(workspace)
    assert info["output_path"] == str(workspace / "pybuild-out")
    assert info["rust_toolchain"] == "//toolchain:impl"
    assert info["rustc"] == str((workspace / "toolchain" / "rustc").resolve())
    assert re.fullmatch(r"[0-9a-f]{64}", info["rustc_digest"])
    assert info["sysroot"] == "/opt/rust-nightly"
    assert info["target_triple"] == "aarch64-unknown-linux-gnu"
    assert info["version"] == "1.90.0-nightly"
    assert info["channel"] == "nightly"
    assert info["default_edition"] == "2024"


def test_info_reports_the_local_rustc(shape_workspace: Path, run: Runner) -> None:
    try:
        found = local_rust.find_rustc()
    except PybuildError:
        pytest.skip("no rustc on this machine")
    version = subprocess.run([str(found), "-vV"], capture_output=True, text=True, check=True).stdout
    facts = dict(line.split(": ", 1) for line in version.splitlines() if ": " in line)
    info = parse_info(assert_ok(run(shape_workspace, "info")))
    assert info["rust_toolchain"] == "@local_rust//:rust_toolchain_impl"
    assert info["version"] == facts["release"]
    assert info["target_triple"] == facts["host"]
    expected_channel = "nightly" if "nightly" in facts["release"] or "dev" in facts["release"] else None
    expected_channel = expected_channel or ("beta" if "beta" in facts["release"] else "stable")
    assert info["channel"] == expected_channel
    assert info["default_edition"] == "2021"
    # The real compiler in the sysroot (not a rustup proxy), and it is the same release.
    assert info["rustc"] == str((Path(info["sysroot"]) / "bin" / "rustc").resolve())
    own = subprocess.run([info["rustc"], "-vV"], capture_output=True, text=True, check=True).stdout
    assert f"release: {facts['release']}" in own


def test_aquery_uses_the_rustc_info_reports(shape_workspace: Path, run: Runner, graph: Callable[[str], Graph]) -> None:
    info = parse_info(assert_ok(run(shape_workspace, "info")))
    action = graph("none").one(A, "Rustc")
    assert (shape_workspace / rustc_program(action)).resolve() == Path(info["rustc"])
    assert the_flag(action, "--edition=") == info["default_edition"]


# ---------------------------------------------------------------------------------------------
# Regressions


def test_json_output_in_a_workspace_never_built(tmp_path: Path, run: Runner) -> None:
    """The action key digests the process wrapper under pybuild-out/external/rules_rust: it must exist
    before anything was built (it once failed with an internal FileNotFoundError, exit 37)."""
    workspace = write_workspace(
        tmp_path,
        {
            "MODULE.bazel": MODULE,
            "lib/BUILD.bazel": RULES_RUST_LOAD + 'rust_library(name = "l", srcs = ["lib.rs"])\n',
            "lib/lib.rs": "pub fn f() {}\n",
        },
    )
    assert not (workspace / "pybuild-out").exists()
    out = assert_ok(run(workspace, "aquery", "//lib:l", "--output=json"))
    actions = json.loads(out)["actions"]
    assert [a["mnemonic"] for a in actions] == ["RustcMetadata", "Rustc"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", a["key"]) for a in actions)


# ---------------------------------------------------------------------------------------------
# Known problems


def test_output_prefix_conflict_is_reported(tmp_path: Path, run: Runner) -> None:
    try:
        local_rust.find_rustc()
    except PybuildError:
        pytest.skip("no rustc on this machine")
    build = (
        RULES_RUST_LOAD
        + """
rust_binary(name = "_meta", srcs = ["main.rs"])

rust_library(name = "l", srcs = ["lib.rs"])

rust_library(name = "user", srcs = ["lib.rs"], deps = [":l"])
"""
    )
    files = {"MODULE.bazel": MODULE, "pkg/BUILD.bazel": build, "pkg/lib.rs": "", "pkg/main.rs": "fn main() {}\n"}
    workspace = write_workspace(tmp_path, files)
    err = assert_error(
        run(workspace, "build", "//pkg:all", HOLLOW_FLAG, "--jobs=1"), "prefix", "//pkg:_meta", "//pkg:l"
    )
    assert "internal error" not in err
