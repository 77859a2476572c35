"""A client of the Content Addressable Storage: which blobs are missing, uploads, downloads.

Small blobs travel in BatchUpdateBlobs/BatchReadBlobs requests up to the server's batch limit (from
GetCapabilities); larger ones through ByteStream Write/Read in chunks, streamed from and to files so a
200 MB toolchain library never sits in memory twice.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from action_graph.remote.connection import RemoteError, describe_rpc_error, is_retryable
from action_graph.remote.protos import bs_grpc, bs_pb2, code_pb2, digest_key, re_grpc, re_pb2

_CHUNK_BYTES = 1024 * 1024
# The REAPI default when a server announces no limit; BuildGrid announces 4 MiB - 1 KiB.
_DEFAULT_BATCH_BYTES = 4 * 1024 * 1024 - 1024
# Every blob in a batch request also costs its digest and framing; keep well clear of the limit.
_PER_BLOB_OVERHEAD = 128
_BATCH_MARGIN = 64 * 1024
_MAX_BATCH_COUNT = 500
_FIND_MISSING_CHUNK = 2000
_ATTEMPTS = 4
_T = TypeVar("_T")


@dataclass
class Blob:
    """Content to upload: bytes in memory or a file on disk, with its digest."""

    digest: re_pb2.Digest
    data: bytes | None = None
    path: str | None = None

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            for offset in range(0, len(self.data), _CHUNK_BYTES):
                yield self.data[offset : offset + _CHUNK_BYTES]
            return
        with open(self.path or "", "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                yield chunk

    def read(self) -> bytes:
        return self.data if self.data is not None else b"".join(self.chunks())


class CasClient:
    def __init__(self, channel: grpc.Channel, url: str, instance_name: str, timeout: float) -> None:
        self.url = url
        self.instance_name = instance_name
        self.timeout = timeout
        self.max_batch_bytes = _DEFAULT_BATCH_BYTES
        self._cas = re_grpc.ContentAddressableStorageStub(channel)
        self._bytestream = bs_grpc.ByteStreamStub(channel)
        self._capabilities = re_grpc.CapabilitiesStub(channel)
        self._present: set[str] = set()  # blobs this process knows the server holds
        self._uploading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # Capabilities ------------------------------------------------------------------------------------

    def load_capabilities(self) -> re_pb2.ServerCapabilities:
        request = re_pb2.GetCapabilitiesRequest(instance_name=self.instance_name)
        capabilities = self.call("GetCapabilities", self._capabilities.GetCapabilities, request)
        cache = capabilities.cache_capabilities
        functions = set(cache.digest_function)  # the repeated field's name in this REAPI version
        if functions and re_pb2.DigestFunction.Value.SHA256 not in functions:
            raise RemoteError(f"remote server {self.url} does not support SHA-256 digests")
        if cache.max_batch_total_size_bytes > 0:
            self.max_batch_bytes = cache.max_batch_total_size_bytes
        return capabilities

    def call(self, what: str, method: Callable[..., _T], request, not_found_ok: bool = False) -> _T | None:
        """A unary call with a deadline, retried with back-off while the server is unavailable;
        None for NOT_FOUND when `not_found_ok` (an action cache miss)."""
        for attempt in range(_ATTEMPTS):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                if not_found_ok and isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                if not is_retryable(error) or attempt == _ATTEMPTS - 1:
                    raise describe_rpc_error(self.url, what, error) from None
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    # Uploads -----------------------------------------------------------------------------------------

    def find_missing(self, digests: list[re_pb2.Digest]) -> list[re_pb2.Digest]:
        missing: list[re_pb2.Digest] = []
        for start in range(0, len(digests), _FIND_MISSING_CHUNK):
            request = re_pb2.FindMissingBlobsRequest(
                instance_name=self.instance_name, blob_digests=digests[start : start + _FIND_MISSING_CHUNK]
            )
            missing.extend(self.call("FindMissingBlobs", self._cas.FindMissingBlobs, request).missing_blob_digests)
        return missing

    def upload(self, blobs: Iterable[Blob]) -> None:
        """Make sure the server holds every blob. Each is asked about once per process, and a blob that
        several actions need at once (the toolchain, on the first build) is sent by one of them only."""
        unique = {digest_key(b.digest): b for b in blobs if b.digest.size_bytes > 0}
        with self._lock:
            unknown = [b for key, b in unique.items() if key not in self._present]
        if not unknown:
            return
        missing = {digest_key(d) for d in self.find_missing([b.digest for b in unknown])}
        mine, theirs = self._claim(unknown, missing)
        try:
            self._send(mine)
            with self._lock:
                self._present.update(digest_key(b.digest) for b in mine)
        finally:
            with self._lock:
                for blob in mine:
                    self._uploading.pop(digest_key(blob.digest)).set()
        for event in theirs:
            event.wait()
        with self._lock:
            failed = [b for b in unknown if digest_key(b.digest) not in self._present]
        self._send(failed)  # another thread's upload of these failed: try ourselves

    def forget(self, digests: Iterable[re_pb2.Digest]) -> None:
        """The server lost these (evicted, restarted): ask about them again next time."""
        with self._lock:
            self._present.difference_update(digest_key(d) for d in digests)

    def forget_all(self) -> None:
        with self._lock:
            self._present.clear()

    def _claim(self, unknown: list[Blob], missing: set[str]) -> tuple[list[Blob], list[threading.Event]]:
        mine: list[Blob] = []
        theirs: list[threading.Event] = []
        with self._lock:
            for blob in unknown:
                key = digest_key(blob.digest)
                if key not in missing:
                    self._present.add(key)
                elif key in self._uploading:
                    theirs.append(self._uploading[key])
                elif key not in self._present:
                    self._uploading[key] = threading.Event()
                    mine.append(blob)
        return mine, theirs

    def _send(self, blobs: list[Blob]) -> None:
        limit = self.max_batch_bytes - _BATCH_MARGIN
        small = [b for b in blobs if b.digest.size_bytes + _PER_BLOB_OVERHEAD <= limit]
        for blob in blobs:
            if blob.digest.size_bytes + _PER_BLOB_OVERHEAD > limit:
                self._write(blob)
        for batch in _batches(small, limit):
            requests = [re_pb2.BatchUpdateBlobsRequest.Request(digest=b.digest, data=b.read()) for b in batch]
            request = re_pb2.BatchUpdateBlobsRequest(instance_name=self.instance_name, requests=requests)
            response = self.call("BatchUpdateBlobs", self._cas.BatchUpdateBlobs, request)
            for item in response.responses:
                if item.status.code != code_pb2.OK:
                    raise RemoteError(
                        f"remote server {self.url}: uploading blob {digest_key(item.digest)} failed: "
                        f"{item.status.message or item.status.code}"
                    )

    def _write(self, blob: Blob) -> None:
        resource = f"{self._prefix()}uploads/{uuid.uuid4()}/blobs/{digest_key(blob.digest)}"

        def requests() -> Iterator[bs_pb2.WriteRequest]:
            offset = 0
            for chunk in blob.chunks():
                yield bs_pb2.WriteRequest(resource_name=resource, write_offset=offset, data=chunk)
                offset += len(chunk)
            yield bs_pb2.WriteRequest(resource_name=resource, write_offset=offset, finish_write=True)

        for attempt in range(_ATTEMPTS):
            try:
                response = self._bytestream.Write(requests(), timeout=self._transfer_timeout(blob.digest))
                break
            except grpc.RpcError as error:
                if not is_retryable(error) or attempt == _ATTEMPTS - 1:
                    raise describe_rpc_error(self.url, f"ByteStream.Write of {resource}", error) from None
                time.sleep(0.2 * 2**attempt)
        if response.committed_size not in (blob.digest.size_bytes, -1):
            raise RemoteError(f"remote server {self.url}: ByteStream.Write of {resource} stored only part of it")

    # Downloads ---------------------------------------------------------------------------------------

    def read_blobs(self, digests: Iterable[re_pb2.Digest]) -> dict[str, bytes]:
        """Blobs by `hash/size`; RemoteError if the server lacks one or sends wrong content."""
        unique = {digest_key(d): d for d in digests}
        result = {key: b"" for key, d in unique.items() if d.size_bytes == 0}
        limit = self.max_batch_bytes - _BATCH_MARGIN
        wanted = [d for key, d in unique.items() if key not in result]
        for digest in wanted:
            if digest.size_bytes + _PER_BLOB_OVERHEAD > limit:
                result[digest_key(digest)] = b"".join(self._read_stream(digest))
        small = [d for d in wanted if d.size_bytes + _PER_BLOB_OVERHEAD <= limit]
        for batch in _batches(small, limit, size=lambda d: d.size_bytes):
            request = re_pb2.BatchReadBlobsRequest(instance_name=self.instance_name, digests=batch)
            for item in self.call("BatchReadBlobs", self._cas.BatchReadBlobs, request).responses:
                if item.status.code != code_pb2.OK:
                    raise MissingBlobError(self.url, [item.digest])
                result[digest_key(item.digest)] = item.data
        for key, digest in unique.items():
            _verify(self.url, digest, result.get(key))
        return result

    def fetch_files(self, items: list[tuple[re_pb2.Digest, Path, int]]) -> None:
        """Write each blob to its path (created atomically, with the given mode)."""
        limit = self.max_batch_bytes - _BATCH_MARGIN
        large = [item for item in items if item[0].size_bytes + _PER_BLOB_OVERHEAD > limit]
        small = [item for item in items if item[0].size_bytes + _PER_BLOB_OVERHEAD <= limit]
        contents = self.read_blobs(d for d, _, _ in small)
        for digest, path, mode in small:
            _write_atomically(path, mode, [contents[digest_key(digest)]])
        for digest, path, mode in large:
            hasher = hashlib.sha256()
            temp = _write_atomically(path, mode, _hashed(self._read_stream(digest), hasher), keep_temp=True)
            if hasher.hexdigest() != digest.hash:
                temp.unlink(missing_ok=True)
                raise RemoteError(f"remote server {self.url} sent wrong content for blob {digest_key(digest)}")
            os.replace(temp, path)

    def _read_stream(self, digest: re_pb2.Digest) -> Iterator[bytes]:
        resource = f"{self._prefix()}blobs/{digest_key(digest)}"
        request = bs_pb2.ReadRequest(resource_name=resource)
        try:
            for response in self._bytestream.Read(request, timeout=self._transfer_timeout(digest)):
                yield response.data
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                raise MissingBlobError(self.url, [digest]) from None
            raise describe_rpc_error(self.url, f"ByteStream.Read of {resource}", error) from None

    def _transfer_timeout(self, digest: re_pb2.Digest) -> float:
        # --remote_timeout bounds a call; a big blob gets extra time at a pessimistic 10 MB/s.
        return self.timeout + digest.size_bytes / 10_000_000

    def _prefix(self) -> str:
        return f"{self.instance_name}/" if self.instance_name else ""


class MissingBlobError(RemoteError):
    """The server does not hold blobs it was asked for."""

    def __init__(self, url: str, digests: list[re_pb2.Digest]) -> None:
        super().__init__(f"remote server {url} does not hold blob(s) {', '.join(digest_key(d) for d in digests)}")
        self.digests = digests


def _batches(items: list[_T], limit: int, size: Callable[[_T], int] | None = None) -> Iterator[list[_T]]:
    measure = size or (lambda blob: blob.digest.size_bytes)
    batch: list[_T] = []
    total = 0
    for item in items:
        cost = measure(item) + _PER_BLOB_OVERHEAD
        if batch and (total + cost > limit or len(batch) >= _MAX_BATCH_COUNT):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += cost
    if batch:
        yield batch


def _hashed(chunks: Iterable[bytes], hasher) -> Iterator[bytes]:
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def _verify(url: str, digest: re_pb2.Digest, data: bytes | None) -> None:
    if data is None:
        raise MissingBlobError(url, [digest])
    if len(data) != digest.size_bytes or hashlib.sha256(data).hexdigest() != digest.hash:
        raise RemoteError(f"remote server {url} sent wrong content for blob {digest_key(digest)}")


def _write_atomically(path: Path, mode: int, chunks: Iterable[bytes], keep_temp: bool = False) -> Path:
    """Write to a temporary file beside `path`, then rename it over `path` (unless `keep_temp`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            os.fchmod(handle.fileno(), mode)
        if not keep_temp:
            os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)
