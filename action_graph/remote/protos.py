"""The one place that imports generated REAPI, ByteStream, Bots and longrunning stubs.

They come from `buildgrid-common`, the BuildGrid project's small library of generated stubs (grpcio and
protobuf only), so neither the client nor the worker needs the BuildGrid server. Its modules register the
same .proto file names as `buildgrid._protos` of the BuildGrid server package: the two must never be
imported by one process (the protobuf descriptor pool rejects the duplicates); servers run as their own
processes.
"""

from __future__ import annotations

import hashlib

from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid.common.protos.google.bytestream import bytestream_pb2 as bs_pb2
from buildgrid.common.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from buildgrid.common.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, worker_pb2
from buildgrid.common.protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc as bots_grpc
from buildgrid.common.protos.google.longrunning import operations_pb2
from buildgrid.common.protos.google.rpc import code_pb2, status_pb2

__all__ = [
    "bots_grpc",
    "bots_pb2",
    "bs_grpc",
    "bs_pb2",
    "code_pb2",
    "digest_of",
    "operations_pb2",
    "re_grpc",
    "re_pb2",
    "status_pb2",
    "worker_pb2",
]


def digest_of(data: bytes) -> re_pb2.Digest:
    """The REAPI digest (SHA-256 and size) of a blob held in memory."""
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def digest_key(digest: re_pb2.Digest) -> str:
    """A hashable, printable name of a digest: `hash/size`, as in ByteStream resource names."""
    return f"{digest.hash}/{digest.size_bytes}"
