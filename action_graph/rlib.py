"""Cutting a hollow rlib out of a full one.

Under RUSTC_BOOTSTRAP=1 on both sides, the `lib.rmeta` member of a crate's full rlib is byte for byte the one
its `-Zno-codegen` run writes, and that run's hollow rlib is a GNU archive holding an empty symbol table and
that member alone. So once the full compile has ended, the hollow rlib can be written without a second front
end. This is done only for archives whose other members are all rustc's codegen objects: anything else (a
bundled native library, another archive format) may also appear in the hollow rlib, so its metadata action
runs instead.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"!<arch>\n"
_HEADER = 60  # name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n"
_METADATA = b"lib.rmeta"
# rustc's archive writer puts an empty 32-bit symbol table, padded to 8 bytes, before the metadata.
_EMPTY_SYMBOL_TABLE = b"/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"0".ljust(8) + b"8".ljust(10) + b"`\n"


def metadata_span(full_rlib: Path) -> tuple[int, int] | None:
    """(offset, size) of the metadata member, header and padding included, in a full rlib that holds only
    metadata and codegen objects; otherwise None. Reads the member headers only: a full rlib may be large."""
    try:
        with open(full_rlib, "rb") as full:
            return _metadata_span(full)
    except (OSError, ValueError):  # ValueError: a member size that is not a number
        return None


def write_hollow_rlib(full_rlib: Path, span: tuple[int, int], hollow: BinaryIO) -> None:
    """The hollow rlib: rustc's archive start, then the metadata member of `full_rlib` at `span` as it is."""
    hollow.write(_MAGIC + _EMPTY_SYMBOL_TABLE + bytes(8))
    offset, left = span
    with open(full_rlib, "rb") as full:
        full.seek(offset)
        while left > 0:
            chunk = full.read(min(left, 1 << 20))
            if not chunk:
                raise ValueError(f"{full_rlib} ends inside its metadata")
            hollow.write(chunk)
            left -= len(chunk)


def _metadata_span(full: BinaryIO) -> tuple[int, int] | None:
    if full.read(len(_MAGIC)) != _MAGIC:
        return None
    span = None
    long_names = b""
    while len(header := full.read(_HEADER)) == _HEADER:
        name, size = _name(header[:16]), int(header[48:58])
        padded = size + size % 2
        if name == b"//":
            long_names = full.read(padded)
            continue
        if name == _METADATA:
            span = (full.tell() - _HEADER, _HEADER + padded)
        elif name != b"/" and not _long_name(name, long_names).endswith(b".rcgu.o"):
            return None
        full.seek(padded, io.SEEK_CUR)
    return span


def _name(field: bytes) -> bytes:
    """A member's name; GNU names end in '/', which is dropped (but '/' and '//' are names of their own)."""
    name = field.rstrip(b" ")
    return name[:-1] if name.endswith(b"/") and name not in (b"/", b"//") else name


def _long_name(name: bytes, long_names: bytes) -> bytes:
    """A GNU '/<offset>' name resolved through the '//' member; names that fit in the header as they are."""
    if not name.startswith(b"/") or not name[1:].isdigit():
        return name
    offset = int(name[1:])
    return long_names[offset : long_names.index(b"/\n", offset)]
