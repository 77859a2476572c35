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
from typing import BinaryIO

_MAGIC = b"!<arch>\n"
_HEADER = 60  # name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n"
_METADATA = b"lib.rmeta"
# rustc's archive writer puts an empty 32-bit symbol table, padded to 8 bytes, before the metadata.
_EMPTY_SYMBOL_TABLE = b"/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"0".ljust(8) + b"8".ljust(10) + b"`\n"


def hollow_rlib_bytes(full: BinaryIO) -> bytes | None:
    """The hollow rlib of a full rlib, or None unless it holds only metadata and codegen objects. Reads the
    member headers and the metadata, not the objects: a full rlib may be large."""
    if full.read(len(_MAGIC)) != _MAGIC:
        return None
    metadata = None
    long_names = b""
    while len(header := full.read(_HEADER)) == _HEADER:
        name, size = _name(header[:16]), int(header[48:58])
        padded = size + size % 2
        if name == b"//":
            long_names = full.read(padded)
        elif name == _METADATA:
            metadata = header + full.read(padded)
        elif name == b"/" or _long_name(name, long_names).endswith(b".rcgu.o"):
            full.seek(padded, io.SEEK_CUR)
        else:
            return None
    if metadata is None:
        return None
    return _MAGIC + _EMPTY_SYMBOL_TABLE + bytes(8) + metadata


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
