"""The wire between the server and an instance: length-prefixed JSON frames over a socket pair.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON (``_encode``); ``_take_frame`` cuts the
next whole frame off a read buffer (None until it is all there). ``_recv`` reads a non-blocking socket from an
event loop without losing bytes to a cancellation. ``_Lost`` is the connection ending in the middle of a
request. The worker's side of the same protocol is in ``compute/worker_main.py``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


class _Lost(Exception):
    """The instance's connection ended in the middle of a request."""


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _encode(obj: Any) -> bytes:
    body = _JSON(obj).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ValueError(f"the request is larger than {MAX_FRAME} bytes")
    return _HEADER.pack(len(body)) + body


def _take_frame(buf: bytearray) -> bytes | None:
    if len(buf) < 4:
        return None
    (size,) = _HEADER.unpack_from(buf)
    if size > MAX_FRAME:
        raise _Lost(f"the worker sent a frame of {size} bytes")
    if len(buf) < 4 + size:
        return None
    body = bytes(buf[4 : 4 + size])
    del buf[: 4 + size]
    return body


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """What the socket has (b"" at its end), waiting until it has something. Unlike ``loop.sock_recv``, a
    cancellation can only come while nothing was read, so no answer is lost from the stream when a caller leaves
    (the next reader finds the stream where this one left it)."""
    while True:
        try:
            return sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            pass
        readable = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _set_done, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
