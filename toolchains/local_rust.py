"""Detect the local rustc and describe it as the generated repository @local_rust."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from action_graph.fileutil import atomic_symlink, atomic_write_text
from pybuild.errors import PybuildError

_TEMPLATE = Path(__file__).with_name("local_rust.BUILD.j2")


@dataclass(frozen=True)
class LocalRustc:
    rustc_path: Path  # what was found ($RUSTC, PATH or ~/.cargo/bin); may be a rustup proxy
    sysroot: Path
    host: str
    release: str
    commit_hash: str

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
    return LocalRustc(rustc, sysroot, fields["host"], fields["release"], fields.get("commit-hash", "unknown"))


def _library_files(sysroot: Path) -> list[str]:
    """Files under the sysroot's lib/ (shared libraries and the target's standard library), sorted."""
    return sorted(f"sysroot/{p.relative_to(sysroot).as_posix()}" for p in (sysroot / "lib").rglob("*") if p.is_file())


def write_repository(directory: Path) -> Path:
    """Create or refresh the @local_rust repository in `directory`; unchanged files are not rewritten."""
    rustc = detect()
    directory.mkdir(parents=True, exist_ok=True)
    # The repository sees the real sysroot (never a rustup proxy) at a path relative to the exec root.
    atomic_symlink(rustc.sysroot, directory / "sysroot")
    template = jinja2.Template(_TEMPLATE.read_text(encoding="utf-8"), keep_trailing_newline=True)
    text = template.render(
        rustc_path=rustc.rustc_path,
        sysroot=rustc.sysroot,
        host=rustc.host,
        channel=rustc.channel,
        release=rustc.release,
        rustc_lib=_library_files(rustc.sysroot),
    )
    atomic_write_text(directory / "BUILD.bazel", text)
    atomic_write_text(directory / "MODULE.bazel", 'module(name = "local_rust")\n')
    return directory
