"""The Debian-vendored crates that crates_demo needs: installed on demand, or the test is skipped."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REGISTRY = Path("/usr/share/cargo/registry")
INSTALLER = REPO / "examples" / "install_debian_crates.sh"


def require_debian_crates() -> None:
    """Install the crates with examples/install_debian_crates.sh if missing; skip with the reason if that fails."""
    if any(REGISTRY.glob("serde_json-1*")) and any(REGISTRY.glob("clap-4*")):
        return
    done = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        pytest.skip(f"Debian crate sources are not installed and could not be installed: {done.stderr.strip()[-500:]}")


def cargo() -> str:
    found = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(found).exists():
        pytest.skip("cargo is not installed")
    return found


def copy_examples(destination: Path) -> Path:
    """examples/ without outputs, so each test builds from clean."""
    ignore = shutil.ignore_patterns("pybuild-out", "pybuild-bin", "target")
    shutil.copytree(REPO / "examples", destination, ignore=ignore, symlinks=True)
    return destination
