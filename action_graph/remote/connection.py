"""Server addresses, gRPC channels, and the one error type every remote failure becomes."""

from __future__ import annotations

import grpc

# Outputs (an rlib, a binary) can be large; blobs themselves travel in ByteStream chunks, but batch
# responses and ActionResults must fit in one message.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
]
# gRPC codes after which the same call may succeed: the server restarts, is overloaded, or dropped us.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class RemoteError(Exception):
    """A remote call failed for good; the message names the server address."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code  # gRPC's status code, when a call failed


def parse_address(url: str) -> str:
    """`grpc://HOST:PORT` (or plain `HOST:PORT`) as gRPC's target string; TLS is not supported."""
    if url.startswith("grpcs://") or url.startswith("https://"):
        raise ValueError(f"'{url}': TLS is not supported; use grpc://HOST:PORT on a trusted network")
    target = url.removeprefix("grpc://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or "/" in target:
        raise ValueError(f"'{url}' is not an address of the form grpc://HOST:PORT")
    return target


def open_channel(url: str, timeout: float) -> grpc.Channel:
    """A channel to `url` that is connected, or RemoteError after `timeout` seconds."""
    channel = grpc.insecure_channel(parse_address(url), options=_CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        channel.close()
        raise RemoteError(f"cannot connect to the remote server {url} within {timeout:g}s") from None
    return channel


def describe_rpc_error(url: str, what: str, error: grpc.RpcError) -> RemoteError:
    """A RemoteError for a failed call, with the address, the call and gRPC's own words."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    name = code.name if code is not None else "ERROR"
    return RemoteError(f"remote server {url}: {what} failed: {name}: {details}", code)


def is_retryable(error: grpc.RpcError) -> bool:
    return isinstance(error, grpc.Call) and error.code() in RETRYABLE_CODES
