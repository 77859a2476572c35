"""Where local sandboxes are made: --sandbox_base, else a RAM disk, else the output base.

Bazel makes sandboxes under the output base and suggests --sandbox_base=/dev/shm for speed; pybuild takes
the RAM disk by default when it has room. A sandbox is a tree of symlinks rebuilt for every action, and on
disk each symlink and directory costs an inode: on ext4 without a journal, allocating inodes right after
deleting many scans past the recently deleted ones, and in a 20 s clean build of the Debian crates 3,787
symlinks and 1,947 directories took about 4 s of system time (820 us per symlink under strace). Outputs
written on the RAM disk are copied out (runner._move); sandboxes outside the output base are removed when
the build ends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from pybuild.errors import UsageError

RAM_DISK = Path("/dev/shm")
RAM_DISK_MIN_FREE = 1 << 30  # the outputs of running actions stay there until copied out


def sandbox_base(output_base: Path, requested: str, ram_disk: Path = RAM_DISK) -> Path:
    """The directory holding one sandbox per slot. `requested` is --sandbox_base ("" picks automatically); a
    shared directory gets a private subdirectory per user and output base, so builds never meet."""
    if requested:
        private = _private_directory(Path(requested).absolute(), output_base)
        if private is None:
            raise UsageError(f"--sandbox_base={requested}: cannot make a private directory of this user there")
        return private
    if _has_room(ram_disk):
        private = _private_directory(ram_disk, output_base)
        if private is not None:
            return private
    return output_base / "sandbox"


def remove_ram_disk_sandboxes(output_base: Path, ram_disk: Path = RAM_DISK) -> None:
    """What `pybuild clean` removes besides the output base."""
    shutil.rmtree(_private_path(ram_disk, output_base), ignore_errors=True)


def _has_room(directory: Path) -> bool:
    try:
        usage = os.statvfs(directory)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK) and usage.f_bavail * usage.f_frsize >= RAM_DISK_MIN_FREE


def _private_path(shared: Path, output_base: Path) -> Path:
    workspace = hashlib.sha256(str(output_base.absolute()).encode()).hexdigest()[:16]
    return shared / f"pybuild-{os.getuid()}" / workspace


def _private_directory(shared: Path, output_base: Path) -> Path | None:
    """The private path under `shared` (world-writable, like /dev/shm), or None when its user directory is not
    ours: a directory or symlink another user planted there must not receive our inputs and outputs."""
    path = _private_path(shared, output_base)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = os.lstat(path.parent)
    except OSError:
        return None
    if not stat.S_ISDIR(owner.st_mode) or owner.st_uid != os.getuid() or owner.st_mode & 0o077:
        return None
    return path
