"""On-disk action cache: a content-addressed store of blobs and, per action key, the outputs it made.

Every write goes to a temporary file that is renamed into place, and an action's entry is written
only after all its outputs are in the store, so a crash can leave garbage but never a lie.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from action_graph.digests import Identity, file_identity, hash_file


@dataclass(frozen=True)
class OutputRecord:
    path: str
    digest: str
    is_executable: bool


@dataclass(frozen=True)
class ActionResult:
    outputs: tuple[OutputRecord, ...]
    duration: float
    peak_rss_kb: int = 0


class ActionCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "cas"
        self.entries = root / "ac"
        self._entries_dir, self._blobs_dir = str(self.entries), str(self.blobs)
        self._stored: dict[str, tuple[int, int, int, int, str]] = {}

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def entry_path(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}.json"

    def entry_file(self, key: str) -> str:
        """entry_path as a string, without pathlib (a no-op build checks thousands)."""
        return f"{self._entries_dir}/{key[:2]}/{key}.json"

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(f"{self._blobs_dir}/{digest[:2]}/{digest}")

    def stored_digests_of(self, paths: Iterable[str]) -> dict[str, tuple[int, int, int, int, str]]:
        """Of these paths, the files store_file hashed in this process: path -> (size, mtime_ns, ctime_ns, inode,
        digest), each taken while the file kept one identity, so FileDigests can trust them without hashing
        again."""
        return {path: self._stored[path] for path in paths if path in self._stored}

    def lookup(self, key: str) -> ActionResult | None:
        """The recorded result, if every blob it names is still in the store."""
        try:
            data = json.loads(self.entry_path(key).read_text(encoding="utf-8"))
            result = ActionResult(
                outputs=tuple(OutputRecord(**o) for o in data["outputs"]),
                duration=data["duration"],
                peak_rss_kb=data.get("peak_rss_kb", 0),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not all(self.has_blob(o.digest) for o in result.outputs):
            return None
        return result

    def store_file(self, path: Path) -> str:
        """Put a file into the store (as a hard link when possible); return its digest."""
        before = file_identity(path)
        digest = hash_file(str(path))
        unchanged = before is not None and file_identity(path) == before
        blob = self.blob_path(digest)
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            temp = blob.with_name(f".{digest}.{os.getpid()}.{id(path)}.tmp")
            _link_or_copy(path, temp)
            os.replace(temp, blob)
        after = file_identity(path)  # linking changed the ctime; size, mtime and inode must not have changed
        if unchanged and after is not None and before is not None and _same_content(before, after):
            self._stored[str(path)] = (*after, digest)
        return digest

    def record(self, key: str, result: ActionResult) -> None:
        path = self.entry_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(result), handle)
        os.replace(temp, path)

    def restore(self, record: OutputRecord, destination: Path) -> bool:
        """Materialize an output from the store; a blob whose content no longer matches is discarded."""
        blob = self.blob_path(record.digest)
        if hash_file(str(blob)) != record.digest:
            blob.unlink(missing_ok=True)
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        _link_or_copy(blob, temp)
        os.replace(temp, destination)
        return True


def _same_content(before: Identity, after: Identity) -> bool:
    size, mtime, _, inode = before
    return after[0] == size and after[1] == mtime and after[3] == inode


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        with open(source, "rb") as reader, open(destination, "wb") as writer:
            while chunk := reader.read(1 << 20):
                writer.write(chunk)
        os.chmod(destination, os.stat(source).st_mode & 0o777)
