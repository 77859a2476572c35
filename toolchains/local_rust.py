"""Detect the local rustc and describe it as the generated repository @local_rust."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from action_graph.fileutil import atomic_symlink, atomic_write_text
from pybuild.errors import PybuildError

_TEMPLATE = Path(__file__).with_name("local_rust.BUILD.j2")
TARGET_CFG = "target_cfg.txt"  # the repository's copy of `rustc --print cfg`


@dataclass(frozen=True)
class LocalRustc:
    rustc_path: Path  # what was found ($RUSTC, PATH or ~/.cargo/bin); may be a rustup proxy
    sysroot: Path
    host: str
    release: str
    commit_hash: str
    # `rustc --print cfg`: the target's cfg values, which build scripts see as CARGO_CFG_*. Detected
    # once here, as Cargo does once per build, instead of once per build script run.
    cfg: str = ""

    @property
    def channel(self) -> str:
        if "nightly" in self.release or "dev" in self.release:
            return "nightly"
        return "beta" if "beta" in self.release else "stable"

    def tool(self, name: str) -> Path:
        """The real binary in the sysroot, so actions never go through a rustup proxy."""
        return self.sysroot / "bin" / name


def find_rustc() -> Path:
    """$RUSTC, then PATH, then ~/.cargo/bin, like Cargo users expect."""
    explicit = os.environ.get("RUSTC")
    if explicit:
        path = Path(explicit) if os.sep in explicit else Path(shutil.which(explicit) or explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PybuildError(f"$RUSTC is set to '{explicit}', which is not an executable file")
        return path
    found = shutil.which("rustc")
    if found:
        return Path(found)
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    candidate = cargo_home / "bin" / "rustc"
    if candidate.is_file():
        return candidate
    raise PybuildError(
        "no rustc found: set $RUSTC, put rustc on PATH, or install Rust "
        f"(rustup installs into {cargo_home}/bin; on Debian: apt-get install rustc)"
    )


def _run(rustc: Path, *args: str) -> str:
    try:
        done = subprocess.run([str(rustc), *args], capture_output=True, text=True, timeout=60, check=False)
    except OSError as error:
        raise PybuildError(f"cannot run {rustc}: {error}") from None
    if done.returncode != 0:
        raise PybuildError(f"'{rustc} {' '.join(args)}' failed: {done.stderr.strip()}")
    return done.stdout


def detect() -> LocalRustc:
    rustc = find_rustc()
    fields = dict(line.split(": ", 1) for line in _run(rustc, "-vV").splitlines() if ": " in line)
    sysroot = Path(_run(rustc, "--print", "sysroot").strip())
    cfg = _run(rustc, "--print", "cfg")
    return LocalRustc(rustc, sysroot, fields["host"], fields["release"], fields.get("commit-hash", "unknown"), cfg)


def _library_files(sysroot: Path) -> list[str]:
    """Files under the sysroot's lib/ (shared libraries and the target's standard library), sorted."""
    return sorted(f"sysroot/{p.relative_to(sysroot).as_posix()}" for p in (sysroot / "lib").rglob("*") if p.is_file())


def write_repository(directory: Path) -> Path:
    """Create or refresh the @local_rust repository in `directory`; unchanged files are not rewritten.

    Detection runs rustc three times (through the rustup proxy, ~0.1 s): its result and the BUILD file made from
    it are kept next to the repository and reused while nothing that decides them has changed.
    """
    record = directory.parent / f".{directory.name}.detected.json"
    rustc_path = find_rustc()
    found = _recorded(record, rustc_path)
    if found is None:
        rustc = detect()
        found = rustc, _build_file(rustc)
        _record(record, rustc_path, *found)
    rustc, text = found
    directory.mkdir(parents=True, exist_ok=True)
    # The repository sees the real sysroot (never a rustup proxy) at a path relative to the exec root.
    atomic_symlink(rustc.sysroot, directory / "sysroot")
    atomic_write_text(directory / "BUILD.bazel", text)
    atomic_write_text(directory / TARGET_CFG, rustc.cfg)
    atomic_write_text(directory / "MODULE.bazel", 'module(name = "local_rust")\n')
    return directory


def _build_file(rustc: LocalRustc) -> str:
    import jinja2  # only when detection ran: a recorded BUILD file needs no template

    template = jinja2.Template(_TEMPLATE.read_text(encoding="utf-8"), keep_trailing_newline=True)
    return template.render(
        rustc_path=rustc.rustc_path,
        sysroot=rustc.sysroot,
        host=rustc.host,
        channel=rustc.channel,
        release=rustc.release,
        rustc_lib=_library_files(rustc.sysroot),
        target_cfg=TARGET_CFG,
    )


# The detection record -----------------------------------------------------------------------------

_RECORD_FORMAT = 2  # 2: with the target cfg
# Variables that choose the rustc a rustup proxy runs, or where rustup keeps its settings. PATH is not
# one: it only decides which rustc is found, and that rustc (path and identity) is part of the record.
_VARIABLES = ("RUSTC", "HOME", "CARGO_HOME")
_OVERRIDE_FILES = ("rust-toolchain", "rust-toolchain.toml")


def _recorded(record: Path, rustc_path: Path) -> tuple[LocalRustc, str] | None:
    """The recorded detection, if rustc, its environment and the toolchain's files are as they were."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data["format"] != _RECORD_FORMAT or data["situation"] != _situation(rustc_path):
            return None
        fields = data["rustc"]
        sysroot = Path(fields["sysroot"])
        if data["toolchain"] != _toolchain_files(sysroot):
            return None
        rustc = LocalRustc(
            Path(fields["rustc_path"]), sysroot, fields["host"], fields["release"], fields["commit"], fields["cfg"]
        )
        return rustc, str(data["build_file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or a damaged one: detect again


def _record(record: Path, rustc_path: Path, rustc: LocalRustc, text: str) -> None:
    fields = {
        "rustc_path": str(rustc.rustc_path),
        "sysroot": str(rustc.sysroot),
        "host": rustc.host,
        "release": rustc.release,
        "commit": rustc.commit_hash,
        "cfg": rustc.cfg,
    }
    data = {
        "format": _RECORD_FORMAT,
        "situation": _situation(rustc_path),
        "toolchain": _toolchain_files(rustc.sysroot),
        "rustc": fields,
        "build_file": text,
    }
    with contextlib.suppress(OSError):  # without a record the next command detects again
        atomic_write_text(record, json.dumps(data, sort_keys=True))


def _situation(rustc_path: Path) -> list[object]:
    """What decides which toolchain `rustc` runs: the program itself, the variables above and rustup's
    (RUSTUP_*), rustup's settings (default toolchain, directory overrides) and rust-toolchain files
    in the current directory and its parents."""
    cwd = Path.cwd()
    rustup_home = Path(os.environ.get("RUSTUP_HOME") or Path.home() / ".rustup")
    overrides = [str(d / name) for d in (cwd, *cwd.parents) for name in _OVERRIDE_FILES]
    variables = sorted([k, v] for k, v in os.environ.items() if k in _VARIABLES or k.startswith("RUSTUP_"))
    files = [str(rustc_path), str(rustup_home / "settings.toml"), *overrides]
    return [str(cwd), variables, [[f, _identity(f)] for f in files]]


def _toolchain_files(sysroot: Path) -> list[list[object]]:
    """Every file of the sysroot's bin/ and lib/ with its identity: an update or reinstall changes them."""
    found = []
    for top in (sysroot / "bin", sysroot / "lib"):
        for directory, _, files in os.walk(top):
            found.extend([os.path.join(directory, f), _identity(os.path.join(directory, f))] for f in sorted(files))
    return sorted(found)


def _identity(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
