"""On-disk action cache: a content-addressed store of blobs and, per action key, the outputs it made.

Every write goes to a temporary file that is renamed into place, and an action's entry is written
only after all its outputs are in the store, so a crash can leave garbage but never a lie.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from action_graph.digests import hash_file


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

    def _blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def _entry_path(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}.json"

    def lookup(self, key: str) -> ActionResult | None:
        """The recorded result, if every blob it names is still in the store."""
        try:
            data = json.loads(self._entry_path(key).read_text(encoding="utf-8"))
            result = ActionResult(
                outputs=tuple(OutputRecord(**o) for o in data["outputs"]),
                duration=data["duration"],
                peak_rss_kb=data.get("peak_rss_kb", 0),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not all(self._blob_path(o.digest).is_file() for o in result.outputs):
            return None
        return result

    def store_file(self, path: Path) -> str:
        """Put a file into the store (as a hard link when possible); return its digest."""
        digest = hash_file(str(path))
        blob = self._blob_path(digest)
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            temp = blob.with_name(f".{digest}.{os.getpid()}.{id(path)}.tmp")
            _link_or_copy(path, temp)
            os.replace(temp, blob)
        return digest

    def record(self, key: str, result: ActionResult) -> None:
        path = self._entry_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(result), handle)
        os.replace(temp, path)

    def restore(self, record: OutputRecord, destination: Path) -> bool:
        """Materialize an output from the store; a blob whose content no longer matches is discarded."""
        blob = self._blob_path(record.digest)
        if hash_file(str(blob)) != record.digest:
            blob.unlink(missing_ok=True)
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        _link_or_copy(blob, temp)
        os.replace(temp, destination)
        return True


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        with open(source, "rb") as reader, open(destination, "wb") as writer:
            while chunk := reader.read(1 << 20):
                writer.write(chunk)
        os.chmod(destination, os.stat(source).st_mode & 0o777)
