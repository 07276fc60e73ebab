"""Content-addressed blobs: one row per distinct SHA-256, made of one or more store segments.

Files point at blobs; identical content is kept once. Bytes are written before the row is committed,
so a crash leaves at worst an unreferenced object (named by an intent, removed by the sweep: ``core/files/pending.py``),
never a row without bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelharbor.core.clock import now
from modelharbor.core.files import pending
from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.storage import BlobStore

Segment = tuple[str, int]  # (store key, size)

HASH_BATCH = 1 << 20  # bytes of a body gathered before they are handed to the hashing thread
# Hashing threads, apart from the default pool the database calls use: a busy upload never delays a query.
_HASHING = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="modelharbor-hash")


async def hashed_aside(data: AsyncIterable[bytes], *hashes) -> AsyncIterator[bytes]:
    """``data`` passed through unchanged while ``hashes`` (hashlib objects) are fed its bytes, in order, in a
    hashing thread: SHA-256 or MD5 of a body then runs on another core while the event loop receives the next
    bytes (hashlib releases the GIL), instead of taking the loop's time. One batch of about ``HASH_BATCH`` bytes
    is hashed at a time while the next gathers; a hash slower than the body holds the body back (bounded memory).
    When the iteration ends normally every byte has been hashed: read the digests then."""
    loop = asyncio.get_running_loop()
    batch: list[bytes] = []
    gathered = 0
    running: asyncio.Future | None = None
    async for piece in data:
        batch.append(piece)
        gathered += len(piece)
        if gathered >= HASH_BATCH:
            if running is not None:
                await running
            running = loop.run_in_executor(_HASHING, _feed, hashes, batch)
            batch, gathered = [], 0
        yield piece
    if running is not None:
        await running
    if batch:
        _feed(hashes, batch)  # the last, short batch: not worth a thread hop


def _feed(hashes, pieces: list[bytes]) -> None:
    for h in hashes:
        for piece in pieces:
            h.update(piece)


def insert_blob_if_absent(s: Session, sha256: str, size: int, segments: Sequence[Segment]) -> bool:
    """Insert the blob row unless it exists; True if this call inserted it. Safe under concurrency."""
    values = dict(sha256=sha256, size=size, segments=[list(x) for x in segments], created_at=now())
    ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = ins(BlobRow).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    return s.execute(stmt).rowcount == 1


def lock_blob(s: Session, sha256: str) -> BlobRow | None:
    return s.scalar(
        select(BlobRow).where(BlobRow.sha256 == sha256).with_for_update().execution_options(populate_existing=True)
    )


def release_blob_if_unused(s: Session, sha256: str) -> list[str]:
    """Drop the blob row if no file uses it any more; return the store keys to delete after commit.

    The same transaction records them as released (``pending_objects``), so if the caller dies before deleting them
    the next sweep does."""
    blob = lock_blob(s, sha256)
    if blob is None:
        return []
    users = s.scalar(select(func.count()).select_from(FileRow).where(FileRow.sha256 == sha256))
    if users:
        return []
    keys = [k for k, _ in blob.segments]
    s.delete(blob)
    pending.release_in(s, keys)
    return keys


async def stream_segments(
    store: BlobStore, segments: Sequence[Segment], start: int = 0, end: int | None = None
) -> AsyncIterator[bytes]:
    """Yield bytes [start, end) of the concatenation of ``segments``."""
    offset = 0
    for key, size in segments:
        seg_start, seg_end = offset, offset + size
        offset = seg_end
        if end is not None and seg_start >= end:
            break
        if seg_end <= start:
            continue
        lo = max(start, seg_start) - seg_start
        hi = (min(end, seg_end) if end is not None else seg_end) - seg_start
        async for piece in store.get_stream(key, lo, hi):
            yield piece


async def hash_segments(store: BlobStore, segments: Sequence[Segment]) -> str:
    """SHA-256 of the concatenated segments, read once."""
    h = hashlib.sha256()
    await update_hash(store, h, segments)
    return h.hexdigest()


async def update_hash(store: BlobStore, h, segments: Sequence[Segment]) -> None:
    """Feed the segments' bytes into ``h``; local files are read and hashed in a worker thread."""
    if store.kind == "local":
        await asyncio.to_thread(_hash_files, h, [store.local_path(k) for k, _ in segments])
        return
    async for _ in hashed_aside(stream_segments(store, segments), h):
        pass


def _hash_files(h, paths) -> None:
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])


class SegmentedReader(io.RawIOBase):
    """A seekable synchronous reader over a blob's segments (used by archive checks in worker threads)."""

    def __init__(self, store: BlobStore, segments: Sequence[Segment]):
        self._store = store
        self._segments = list(segments)
        self._starts = []
        pos = 0
        for _, size in self._segments:
            self._starts.append(pos)
            pos += size
        self._size = pos
        self._pos = 0
        self._open: dict[int, object] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b) -> int:
        if self._pos >= self._size:
            return 0
        idx = max(i for i, st in enumerate(self._starts) if st <= self._pos)
        while idx < len(self._segments) and self._segments[idx][1] == 0:
            idx += 1
        if idx >= len(self._segments):
            return 0
        reader = self._open.get(idx)
        if reader is None:
            reader = self._store.open_reader(self._segments[idx][0])
            self._open[idx] = reader
        reader.seek(self._pos - self._starts[idx])  # type: ignore[attr-defined]
        want = min(len(b), self._starts[idx] + self._segments[idx][1] - self._pos)
        n = reader.readinto(memoryview(b).cast("B")[:want])  # type: ignore[attr-defined]
        self._pos += n
        return n

    def close(self) -> None:
        for r in self._open.values():
            r.close()  # type: ignore[attr-defined]
        self._open.clear()
        super().close()
