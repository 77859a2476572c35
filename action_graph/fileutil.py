"""File helpers. Writes leave nothing half-written: temp path, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def read_text_or_none(path: Path) -> str | None:
    """A UTF-8 file's text, or None when it cannot be read (missing, unreadable or not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def atomic_write_text(path: Path, text: str) -> bool:
    """Write `text` to `path` unless it already holds exactly that; return whether it was written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_bytes(path, text.encode("utf-8"))
    return True


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_open(path, mode) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_open(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file to write that appears at `path` only once complete (streamed: no copy in memory)."""

    def temp_file() -> tuple[int, str]:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")

    try:
        fd, temp = temp_file()
    except FileNotFoundError:
        # Made only when missing: a cold load writes thousands of cache entries into existing directories.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = temp_file()
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_copy(source: Path, destination: Path) -> None:
    """Copy a file or a directory tree with its modes (not its inodes: the writer may still own them) to
    `destination` in one rename."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"))
    try:
        copy = staging / destination.name
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, copy, symlinks=True)
        else:
            shutil.copy2(source, copy, follow_symlinks=False)
        os.replace(copy, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_symlink(target: Path, link: Path) -> None:
    """Point `link` at `target`, replacing whatever was there in one rename."""
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    temp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    os.symlink(target, temp)
    os.replace(temp, link)


def keep_newest(directory: Path, pattern: str, keep: int) -> None:
    """Delete all but the `keep` most recently written files matching `pattern`: bounded caches of records."""
    try:
        files = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for stale in files[keep:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that keeps too much costs disk space, never correctness
