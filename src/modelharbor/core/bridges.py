"""Bridges between the core's synchronous code (worker threads: background tasks, routes run in a thread pool) and
asyncio (the blob store's API, the files service's streamed uploads) — the one place the core crosses between them.

- :func:`run_sync` runs a coroutine to completion from synchronous code: on a fresh event loop in the calling thread
  when it runs none (a worker thread: then it is ``asyncio.run``), else on a thread of its own, so a thread that
  runs a loop is never asked to nest another.
- :class:`Pipe` is a bounded byte stream between a thread that writes (``write``, ``finish``) and an async reader
  (``chunks()``); :func:`stream_from_thread` runs a writer in a thread while a coroutine reads what it writes, and
  :class:`Feed` hands synchronous writes to a coroutine running on its own loop in a thread.

Invariants
- Bounded memory: a pipe holds at most ``depth`` pieces; a writer waits while it is full.
- Nobody hangs: when the reader gives up (``close``), a blocked writer gets :class:`PipeClosed`; when the writer
  fails (``finish(error)``), the reader raises that error — so each side cleans up as for any failed stream.
- A writer's error is raised in the reader's context, a reader's error in the writer's (``Feed.finish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

PIPE_PIECE = 1 << 20  # pieces a Pipe gathers small writes into (larger ones pass through)
PIPE_DEPTH = 16  # pieces it holds at most (the memory one streamed zip or package may take)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, inside an event loop's thread or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop runs in this thread (a worker thread)
        return asyncio.run(coro)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["error"] = exc

    thread = threading.Thread(target=run, name="modelharbor-bridge", daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


class PipeClosed(Exception):
    """The reading side of a Pipe stopped (its upload failed): the writer stops too."""


class Pipe:
    """A bounded, write-only byte stream whose pieces an async upload reads (``chunks()``) while a thread writes
    them — a zip written by ``zipfile`` (unseekable: it adds data descriptors) goes straight into the files service,
    hashed and stored while the next pieces are produced, without a temporary file. Small writes are gathered into
    pieces of at least ``piece`` bytes; large ones pass through without a copy."""

    _END = object()

    def __init__(self, piece: int = PIPE_PIECE, depth: int = PIPE_DEPTH):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._buf = bytearray()
        self._piece = piece
        self._closed = threading.Event()

    def _put(self, item: Any) -> None:
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise PipeClosed("the upload stopped reading")

    def write(self, data) -> int:
        n = len(data)
        if n >= self._piece:
            if self._buf:  # what was gathered goes first
                self._put(bytes(self._buf))
                self._buf.clear()
            self._put(data if isinstance(data, bytes) else bytes(data))
        else:
            self._buf += data
            if len(self._buf) >= self._piece:
                self._put(bytes(self._buf))
                self._buf.clear()
        return n

    def flush(self) -> None:
        pass

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (``error``: it failed; the reader raises it)."""
        with contextlib.suppress(PipeClosed):
            if error is None and self._buf:
                self._put(bytes(self._buf))
            self._buf.clear()
            self._put(error if error is not None else self._END)

    def close(self) -> None:
        """The reader gives up: a blocked writer gets PipeClosed."""
        self._closed.set()

    def _get(self) -> Any:
        while True:
            try:
                return self._q.get(timeout=0.5)
            except queue.Empty:
                if self._closed.is_set():  # nobody waits for this piece any more
                    return self._END

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                item = await loop.run_in_executor(None, self._get)
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


async def stream_from_thread(
    produce: Callable[[Pipe], None],
    consume: Callable[[AsyncIterator[bytes]], Awaitable[T]],
    *,
    depth: int = PIPE_DEPTH,
    name: str = "modelharbor-pipe",
) -> T:
    """Run ``produce(pipe)`` in a thread while ``consume(pipe.chunks())`` reads what it writes; the producer's
    error is raised by the reading side (so the consumer cleans up as for any failed stream)."""
    pipe = Pipe(depth=depth)

    def run() -> None:
        try:
            produce(pipe)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            pipe.finish(exc)
        else:
            pipe.finish()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        return await consume(pipe.chunks())
    finally:
        pipe.close()
        await asyncio.to_thread(thread.join)


class Feed:
    """Synchronous writes handed to ``consume(chunks)`` (e.g. a blob store's streamed put), which runs on its own
    event loop in a thread started here; ``finish`` waits for it and raises its error, ``abort`` makes its stream
    fail with the given error and waits for it."""

    def __init__(
        self,
        consume: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, Any]],
        *,
        depth: int = PIPE_DEPTH,
        name: str = "modelharbor-feed",
    ):
        self._pipe = Pipe(depth=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(consume,), name=name, daemon=True)
        self._thread.start()

    def _run(self, consume: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, Any]]) -> None:
        try:
            asyncio.run(consume(self._pipe.chunks()))
        except BaseException as exc:  # noqa: BLE001 - raised by finish()
            self._error = exc
            self._pipe.close()

    def write(self, data: bytes) -> None:
        self._pipe.write(data)

    def finish(self) -> None:
        """All bytes were written: wait for the consumer (its error is raised here)."""
        self._pipe.finish()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self, error: BaseException) -> None:
        """The consumer's stream fails with ``error``; wait for it to end."""
        self._pipe.finish(error)
        self._thread.join()
