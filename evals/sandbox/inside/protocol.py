"""Length-prefixed JSON frames between the parent and a fork server.

Only JSON crosses the boundary (never pickle): the server's replies carry text produced by
untrusted programs, and the parent must be able to parse them without executing anything.
"""

from __future__ import annotations

import json
import os
import struct

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The other side closed the channel or sent a malformed frame."""


def send(fd: int, message: dict) -> None:
    """Write one frame (4-byte big-endian length, then UTF-8 JSON) to ``fd``."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    write_all(fd, _HEADER.pack(len(body)) + body)


def recv(fd: int) -> dict:
    """Read one frame from ``fd``; raise :class:`ProtocolError` on EOF or a bad frame."""
    (size,) = _HEADER.unpack(read_exact(fd, _HEADER.size))
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit")
    try:
        return json.loads(read_exact(fd, size).decode("utf-8", "replace"))
    except ValueError as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise ProtocolError("channel closed")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
