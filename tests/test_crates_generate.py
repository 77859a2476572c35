"""`pybuild crates generate` against real `cargo metadata`: the examples' Cargo workspace and tiny ones.

The crates come from Debian's librust-*-dev packages in /usr/share/cargo/registry (examples/.cargo/config.toml
replaces crates.io with that directory, offline). Renames are decided like this: a third-party crate's rename
of its dependency becomes `aliases` in its generated BUILD file; a workspace member's rename cannot be
written anywhere (its BUILD file is the user's), so the top-level alias keeps the package name and the
report warns with the `aliases = {...}` line the member's target needs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import starlark
from workspace_helpers import assert_error, assert_ok, run_in_process

from pybuild import crates
from pybuild.errors import PybuildError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REGISTRY = Path("/usr/share/cargo/registry")
# The Debian packages holding every crate of examples/Cargo.lock, and a registry directory of each.
APT_PACKAGES = {
    "librust-serde-dev": "serde-1",
    "librust-serde-derive-dev": "serde_derive-1",
    "librust-serde-json-dev": "serde_json-1",
    "librust-regex-dev": "regex-1",
    "librust-anyhow-dev": "anyhow-1",
    "librust-thiserror-dev": "thiserror-1",
    "librust-once-cell-dev": "once_cell-1",
    "librust-log-dev": "log-0",
    "librust-memchr-dev": "memchr-2",
    "librust-clap-dev": "clap-4",
    "librust-rayon-dev": "rayon-1",
    "librust-libc-dev": "libc-0",
}
DIRECT_DEPS = {"anyhow", "clap", "log", "memchr", "once_cell", "rayon", "regex", "serde", "serde_json", "thiserror"}
PROC_MACROS = {"clap_derive", "proc-macro-error-attr", "serde_derive", "thiserror-impl"}
CRATE_COUNT = 43  # the 45 packages of examples/Cargo.lock minus the two workspace members
BUILD_SCRIPT_COUNT = 18
OUTPUT = Path("third_party") / "crates"


# Set-up --------------------------------------------------------------------------------------------


def _missing_sources() -> list[str]:
    return [package for package, prefix in APT_PACKAGES.items() if not any(REGISTRY.glob(prefix + "*"))]


def _install_sources(packages: list[str]) -> str:
    """apt-get install the crate sources; returns why that was not possible ('' when it worked)."""
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        return "apt-get is not available to this user"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt_get, "update"], [apt_get, "install", "-y", "--no-install-recommends", *packages]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if done.returncode != 0:
            return f"'{' '.join(command[:2])}' failed: {done.stderr.strip()[-300:]}"
    return ""


@pytest.fixture(scope="session")
def crate_sources() -> Path:
    """Debian's crate sources, installed on demand; skips only when serde cannot be had at all."""
    missing = _missing_sources()
    reason = _install_sources(missing) if missing else ""
    if not any(REGISTRY.glob("serde-1*")):
        pytest.skip(f"no {REGISTRY}/serde-1* and it could not be installed ({reason or 'unknown reason'})")
    return REGISTRY


@pytest.fixture
def example(tmp_path: Path, crate_sources: Path) -> Path:
    """A copy of the examples' Cargo workspace (with its Cargo.lock) that is also a pybuild workspace."""
    root = tmp_path / "examples"
    root.mkdir()
    for name in ("MODULE.bazel", "Cargo.toml", "Cargo.lock"):
        shutil.copy(EXAMPLES / name, root / name)
    for name in (".cargo", "crates_demo"):
        shutil.copytree(EXAMPLES / name, root / name)
    return root


def _generate(root: Path, output: Path = OUTPUT) -> crates.GenerateReport:
    return crates.generate(root, root / "Cargo.toml", root / output)


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(directory.iterdir())}


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(text), encoding="utf-8")


# The examples' workspace -----------------------------------------------------------------------------


def test_generates_every_third_party_crate(example: Path) -> None:
    report = _generate(example)
    output = example / OUTPUT
    crate_files = sorted(output.glob("BUILD.*.bazel"))
    texts = {path.name: path.read_text(encoding="utf-8") for path in crate_files}
    assert len(crate_files) == CRATE_COUNT
    assert sorted(report.written) == sorted([*crate_files, output / "BUILD.bazel", output / "repositories.json"])
    assert report.unchanged == report.removed == report.warnings == []
    proc_macros = {
        name for text in texts.values() for name in re.findall(r'rust_proc_macro\(\n    name = "(.*)"', text)
    }
    assert proc_macros == PROC_MACROS
    assert sum("cargo_build_script(\n" in text for text in texts.values()) == BUILD_SCRIPT_COUNT
    for path in [*crate_files, output / "BUILD.bazel"]:
        starlark.parse(path.name, path.read_text(encoding="utf-8"))  # valid Starlark, whatever the metadata held


def test_top_level_aliases_and_repositories(example: Path) -> None:
    _generate(example)
    output = example / OUTPUT
    build = output / "BUILD.bazel"
    names = [line.split('"')[1] for line in build.read_text(encoding="utf-8").splitlines() if "name = " in line]
    assert names == sorted(DIRECT_DEPS)
    assert 'actual = "@crates__serde_json-1.0.87//:serde_json"' in build.read_text(encoding="utf-8")
    text = (output / "repositories.json").read_text(encoding="utf-8")
    repositories = json.loads(text)
    assert text == json.dumps(repositories, indent=2, sort_keys=True) + "\n"
    assert len(repositories) == CRATE_COUNT + 1
    assert repositories["crates"] == {"path": "."}
    assert repositories["crates__serde-1.0.152"] == {
        "path": str(REGISTRY / "serde-1.0.152"),
        "build_file": "BUILD.serde-1.0.152.bazel",
    }


def test_crate_build_file_contents(example: Path) -> None:
    _generate(example)
    output = example / OUTPUT
    serde = (output / "BUILD.serde-1.0.152.bazel").read_text(encoding="utf-8")
    assert 'load("@rules_rust//cargo:defs.bzl", "cargo_build_script")' in serde
    for fragment in (
        'crate_root = "src/lib.rs"',
        'edition = "2015"',
        '"derive",\n        "serde_derive",\n        "std",',
        'deps = [\n        ":serde_build_script",\n    ]',
        'proc_macro_deps = [\n        "@crates__serde_derive-1.0.152//:serde_derive",\n    ]',
        '"CARGO_PKG_AUTHORS": "Erick Tryzelaar <erick.tryzelaar@gmail.com>:David Tolnay <dtolnay@gmail.com>"',
        'crate_root = "build.rs"',
        'crate_name = "build_script_build"',
        'pkg_name = "serde"',
    ):
        assert fragment in serde, fragment
    cfg_if = (output / "BUILD.cfg-if-1.0.0.bazel").read_text(encoding="utf-8")
    assert 'name = "cfg-if",\n    crate_name = "cfg_if",' in cfg_if
    assert "cargo_build_script" not in cfg_if
    epoch = (output / "BUILD.crossbeam-epoch-0.9.13.bazel").read_text(encoding="utf-8")
    build_script = epoch[epoch.index("cargo_build_script(\n") :]
    assert 'deps = [\n        "@crates__autocfg-1.1.0//:autocfg",\n    ]' in build_script
    rayon_core = (output / "BUILD.rayon-core-1.10.1.bazel").read_text(encoding="utf-8")
    assert 'links = "rayon-core"' in rayon_core
    assert '"CARGO_PKG_HOMEPAGE": ""' in (output / "BUILD.proc-macro-error-attr-1.0.3.bazel").read_text()


def test_second_run_is_byte_identical_and_rewrites_nothing(example: Path) -> None:
    first = _generate(example)
    before = _snapshot(example / OUTPUT)
    second = _generate(example)
    assert second.written == second.removed == []
    assert second.unchanged == first.written
    assert _snapshot(example / OUTPUT) == before  # same bytes, and not even rewritten (same mtime and inode)
    _generate(example, Path("elsewhere"))
    assert {name: data for name, (data, _, _) in _snapshot(example / "elsewhere").items()} == {
        name: data for name, (data, _, _) in before.items()
    }


def test_stale_files_are_removed_and_hand_written_ones_kept(example: Path) -> None:
    _generate(example)
    output = example / OUTPUT
    stale = output / "BUILD.stale-0.1.0.bazel"
    stale.write_text(crates.HEADER_PREFIX + " from Cargo.toml; do not edit.\n", encoding="utf-8")
    hand_written = output / "BUILD.mine-1.0.0.bazel"
    hand_written.write_text("# mine\n", encoding="utf-8")
    manifest = example / "crates_demo" / "wordstat" / "Cargo.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace('rayon = "1"\n', ""), encoding="utf-8")

    report = _generate(example)

    removed = {path.name for path in report.removed}
    assert {"BUILD.stale-0.1.0.bazel", "BUILD.rayon-1.6.1.bazel", "BUILD.rayon-core-1.10.1.bazel"} <= removed
    assert not any(path.exists() for path in report.removed)
    assert hand_written.exists()
    # libc loses its default features, which only num_cpus (through rayon-core) asked for.
    assert {path.name for path in report.written} == {"BUILD.bazel", "repositories.json", "BUILD.libc-0.2.139.bazel"}
    assert "crates__rayon-1.6.1" not in json.loads((output / "repositories.json").read_text(encoding="utf-8"))
    assert '"rayon"' not in (output / "BUILD.bazel").read_text(encoding="utf-8")


def test_unconfirmed_platform_condition_is_a_warning(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = crates.detect_host()
    # A host whose cfg lacks `unix`: atty's `cfg(unix)` dependency on libc can no longer be confirmed.
    monkeypatch.setattr(crates, "detect_host", lambda: crates.HostPlatform(real.triple, real.cfg - {("unix", None)}))
    report = _generate(example)
    assert report.warnings == [
        "atty 0.2.14: dependency libc 0.2.139 is limited to target 'cfg(unix)', which pybuild cannot confirm "
        f"for {real.triple}; kept as cargo resolved it"
    ]
    assert '"@crates__libc-0.2.139//:libc"' in (example / OUTPUT / "BUILD.atty-0.2.14.bazel").read_text()


# Renames and path crates -----------------------------------------------------------------------------

RENAMES = {
    "ws/MODULE.bazel": 'module(name = "renames")\n',
    "ws/Cargo.toml": """
        [workspace]
        members = ["app", "core"]
        resolver = "2"
        """,
    "ws/app/Cargo.toml": """
        [package]
        name = "app"
        version = "0.1.0"
        edition = "2021"

        [dependencies]
        json = { package = "serde_json", version = "1" }
        helper = { path = "../../vendor/helper" }
        demo-core = { path = "../core" }
        """,
    "ws/core/Cargo.toml": """
        [package]
        name = "demo-core"
        version = "0.1.0"
        edition = "2021"
        """,
    # A path crate outside the Cargo workspace is third-party, so its BUILD file is generated.
    "vendor/helper/Cargo.toml": """
        [package]
        name = "helper"
        version = "0.2.0"
        edition = "2021"

        [dependencies]
        sj = { package = "serde_json", version = "1" }
        core_crate = { package = "demo-core", path = "../../ws/core" }

        [target.'cfg(unix)'.dependencies]
        memchr = "2"
        """,
    "ws/app/src/lib.rs": "",
    "ws/core/src/lib.rs": "",
    "vendor/helper/src/lib.rs": "",
}


@pytest.fixture
def renames(tmp_path: Path, crate_sources: Path) -> Path:
    _write(tmp_path, RENAMES)
    shutil.copytree(EXAMPLES / ".cargo", tmp_path / "ws" / ".cargo")
    return tmp_path / "ws"


def test_renamed_dependencies(renames: Path) -> None:
    report = _generate(renames)
    output = renames / OUTPUT
    serde_json = next(output.glob("BUILD.serde_json-*.bazel")).name.removeprefix("BUILD.").removesuffix(".bazel")
    top = (output / "BUILD.bazel").read_text(encoding="utf-8")
    assert [line.split('"')[1] for line in top.splitlines() if "name = " in line] == ["helper", "serde_json"]
    helper = (output / "BUILD.helper-0.2.0.bazel").read_text(encoding="utf-8")
    assert f'aliases = {{\n        "@crates__{serde_json}//:serde_json": "sj",\n    }}' in helper
    assert '"@crates__memchr-2.5.0//:memchr"' in helper
    assert "demo-core" not in helper
    repositories = json.loads((output / "repositories.json").read_text(encoding="utf-8"))
    assert repositories["crates__helper-0.2.0"]["path"] == str(renames.parent / "vendor" / "helper")
    assert report.warnings == [
        "workspace member app 0.1.0 renames serde_json to 'json'; "
        'its BUILD target needs aliases = {"@crates//:serde_json": "json"}',
        "helper 0.2.0 depends on workspace member demo-core 0.1.0 (a path crate), "
        "whose BUILD label is not known here; that dependency is left out",
    ]


# Errors ------------------------------------------------------------------------------------------------


def test_broken_manifest_names_the_manifest(example: Path) -> None:
    manifest = example / "crates_demo" / "textlib" / "Cargo.toml"
    manifest.write_text("[package\nname = ", encoding="utf-8")
    with pytest.raises(PybuildError) as raised:
        _generate(example)
    assert str(example / "Cargo.toml") in raised.value.message
    assert "cargo metadata" in raised.value.message
    assert "textlib" in raised.value.message  # cargo's own stderr says which member is broken


def test_missing_cargo_names_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {"Cargo.toml": "[workspace]\n"})
    monkeypatch.delenv("CARGO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "no-cargo-home"))
    with pytest.raises(PybuildError, match="no cargo found") as raised:
        crates.generate(tmp_path, tmp_path / "Cargo.toml", tmp_path / OUTPUT)
    assert str(tmp_path / "Cargo.toml") in raised.value.message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("cfg(unix)", True),
        ("cfg(windows)", False),
        ("cfg(not(windows))", True),
        ('cfg(all(unix, target_os = "linux",))', True),
        ('cfg(any(windows, target_os = "macos"))', False),
        ("x86_64-unknown-linux-gnu", True),
        ("aarch64-apple-darwin", False),
        ("cfg(unix", None),
        ("cfg(target_os = linux)", None),
        ("cfg(not(unix, windows))", None),
        ("cfg(unix) extra", None),
    ],
)
def test_evaluate_target(target: str, expected: bool | None) -> None:
    host = crates.HostPlatform("x86_64-unknown-linux-gnu", frozenset({("unix", None), ("target_os", "linux")}))
    assert crates.evaluate_target(target, host) is expected


# The command line ---------------------------------------------------------------------------------------


def test_cli_defaults_and_relative_flags(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_in_process(monkeypatch, capsys, example, "crates", "generate")[2]
    assert err.strip().splitlines()[-1] == f"INFO: wrote {CRATE_COUNT + 2}, unchanged 0, removed 0 files in {OUTPUT}"
    # Explicit paths are relative to the working directory.
    flags = ("--manifest_path=../Cargo.toml", "--output_dir", "../third_party/crates", "--verbose_failures")
    result = run_in_process(monkeypatch, capsys, example / "crates_demo", "crates", "generate", *flags)
    assert_ok(result)
    assert result[2].strip() == f"INFO: wrote 0, unchanged {CRATE_COUNT + 2}, removed 0 files in {OUTPUT}"


def test_cli_reports_cargo_failure(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (example / "Cargo.toml").write_text("[workspace]\nmembers = [\n", encoding="utf-8")
    result = run_in_process(monkeypatch, capsys, example, "crates", "generate")
    assert_error(result, "ERROR: 'cargo metadata' failed for", str(example / "Cargo.toml"))
    assert result[0] == 1
    assert_error(run_in_process(monkeypatch, capsys, example, "crates"), "ACTION")
