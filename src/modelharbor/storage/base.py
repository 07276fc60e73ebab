"""The BlobStore: streaming put/get/delete over obstore; local files are written and read here directly.

Nothing here holds a whole object in memory: puts consume an async iterator — on S3 handing obstore buffers
(multipart), locally writing 1 MiB batches from writer threads (``_put_local``: staging file, fsync, rename) — and
gets yield slices of at most ``read_chunk`` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import LocalStore, MemoryStore, S3Store

PART_SIZE = 8 * 1024 * 1024  # S3 multipart part size (S3 needs at least 5 MiB)
LOCAL_BATCH = 1024 * 1024  # local files: the pieces gathered into one write of about this much
LOCAL_BATCH_PIECES = 512  # … and at most this many pieces (writev takes up to IOV_MAX = 1024 buffers)
READ_CHUNK = 1024 * 1024
# obstore raises the builtin FileNotFoundError for missing objects (older releases raised its NotFoundError).
_NOT_FOUND = (NotFoundError, FileNotFoundError)
# The local store writes ``<key>#<n>`` and renames it to ``<key>`` when the write is complete (object_store's
# LocalFileSystem names its staging files so, and its listings leave such names out: nothing else ever sees them).
_STAGING = re.compile(r"^(?P<key>.+)#(?P<n>[0-9]+)$")
# Local writes run here, one batch in flight per object while the next arrives (a file write may block on a busy
# disk, so never on the event loop).
_WRITING = ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 2)), thread_name_prefix="modelharbor-write")


@dataclass(frozen=True)
class Unfinished:
    """A write begun and not finished: a live writer's, or one a crashed writer left (invisible to ``list``).

    ``ref`` names it for :meth:`BlobStore.discard`: the staging file's path under the root (local) or the
    multipart upload's id (S3). ``active_at`` is when it was last written to (seconds since the epoch): the staging
    file's mtime, or the newest part's (else the upload's initiation) on S3.
    """

    key: str
    ref: str
    active_at: float
    size: int


class BlobStore:
    """A bucket of bytes addressed by key. ``kind`` is ``local``, ``s3`` or ``memory``."""

    def __init__(
        self, store, kind: str, root: Path | None = None, description: str = "", s3: dict[str, object] | None = None
    ):
        self._store = store
        self.kind = kind
        self.root = root
        self.description = description
        self._s3 = s3  # bucket, prefix and connection settings, for the S3 calls obstore does not offer
        self._s3_client = None

    # --- writing -------------------------------------------------------------------------
    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Write all of ``chunks`` to ``key`` atomically (no reader sees a partial object); return the size.

        If the iterator raises, nothing is left at ``key``.
        """
        if self.kind == "local":
            return await _put_local(self.local_path(key), chunks)
        counter = _Counter(chunks)
        # Parts in flight cost memory per concurrent upload; S3 needs parts of ≥ 5 MiB.
        await obstore.put_async(self._store, key, counter, chunk_size=PART_SIZE, max_concurrency=2)
        return counter.n

    async def put_bytes(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, key, data, use_multipart=False)
        if self.kind == "local":
            await asyncio.to_thread(self._fsync, key)

    def _fsync(self, key: str) -> None:
        path = self.local_path(key)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # --- reading -------------------------------------------------------------------------
    async def get_stream(
        self, key: str, start: int = 0, end: int | None = None, read_chunk: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` up to ``end`` (exclusive; None = to the end)."""
        if end is not None and end <= start:
            return
        path = self.local_path(key)
        if path is not None:
            # Local files are read directly: no copy through another runtime, large reads off-loop.
            async for piece in _read_file(path, start, end, read_chunk):
                yield piece
            return
        options = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options or None)
        except _NOT_FOUND as exc:
            raise FileNotFoundError(key) from exc
        except BaseError:
            # obstore rejects a range starting at/after the end (S3 answers 416, even for 0- on an empty
            # object); a local file just reads nothing. Behave like the local backend (and slicing).
            if options and (size := await self.size(key)) is not None and start >= size:
                return
            raise
        # min_chunk_size is a lower bound (the memory backend returns the whole object as one piece):
        # re-slice so no yielded piece is larger than read_chunk.
        async for piece in result.stream(min_chunk_size=read_chunk):
            if not piece:  # the memory backend yields one empty piece for an empty object
                continue
            if len(piece) <= read_chunk:
                yield bytes(piece)
                continue
            view = memoryview(piece)
            for offset in range(0, len(view), read_chunk):
                yield bytes(view[offset : offset + read_chunk])

    def open_reader(self, key: str) -> IO[bytes]:
        """A seekable synchronous reader (for archive inspection in worker threads)."""
        path = self.local_path(key)
        if path is not None:
            return open(path, "rb")
        return _RemoteReader(obstore.open_reader(self._store, key, buffer_size=READ_CHUNK))

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except _NOT_FOUND:
            return None
        return int(meta["size"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        stream = obstore.list(self._store, prefix=prefix or None)
        async for batch in stream:
            keys.extend(meta["path"] for meta in batch)
        return keys

    # --- deleting ------------------------------------------------------------------------
    async def delete(self, keys: list[str] | str) -> None:
        """Delete keys; missing ones are ignored."""
        if isinstance(keys, str):
            keys = [keys]
        if self.kind == "local":  # unlinks and rmdirs wait on the disk's journal: in a writer thread, all at once
            if keys:
                await asyncio.get_running_loop().run_in_executor(_WRITING, self._delete_local, list(keys))
            return
        for key in keys:
            with contextlib.suppress(*_NOT_FOUND):
                await obstore.delete_async(self._store, key)

    def _delete_local(self, keys: list[str]) -> None:
        assert self.root is not None
        for key in keys:
            if not key or key.startswith("/") or ".." in key.split("/"):
                raise ValueError(f"{key!r} is not a key of this store")
            with contextlib.suppress(FileNotFoundError):
                (self.root / key).unlink()
            self._prune_empty_dirs(key)

    # --- unfinished writes (what a writer that died mid-write leaves) -------------------------------
    async def unfinished(self, *, idle_since: float) -> list[Unfinished]:
        """Writes begun and not finished, last written to before ``idle_since`` (seconds since the epoch).

        Local: the ``<key>#<n>`` staging files; S3: the incomplete multipart uploads under the store's prefix;
        memory: none (nothing outlives its process). A live writer's write is among them if it has been idle that
        long: the caller decides, from who owns the key, what to :meth:`discard`.
        """
        if self.kind == "local":
            return await asyncio.to_thread(self._local_unfinished, idle_since)
        if self.kind == "s3":
            return await asyncio.to_thread(self._s3_unfinished, idle_since)
        return []

    async def discard(self, writes: Iterable[Unfinished], *, idle_since: float) -> int:
        """Remove unfinished writes (delete the staging file, abort the multipart upload); returns how many went.

        A local staging file written to since ``idle_since`` is left alone (its writer is alive after all).
        """
        writes = list(writes)
        if not writes:
            return 0
        if self.kind == "local":
            return await asyncio.to_thread(self._local_discard, writes, idle_since)
        if self.kind == "s3":
            return await asyncio.to_thread(self._s3_discard, writes)
        return 0

    def _local_unfinished(self, idle_since: float) -> list[Unfinished]:
        assert self.root is not None
        found: list[Unfinished] = []
        pending = [self.root]
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:  # removed meanwhile (an emptied folder pruned by a delete)
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                        continue
                    match = _STAGING.match(entry.name)
                    if match is None:
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:  # renamed into place or deleted meanwhile
                    continue
                if st.st_mtime >= idle_since:
                    continue
                ref = Path(entry.path).relative_to(self.root).as_posix()
                key = ref[: -len(match.group("n")) - 1]
                found.append(Unfinished(key=key, ref=ref, active_at=st.st_mtime, size=st.st_size))
        return found

    def _local_discard(self, writes: list[Unfinished], idle_since: float) -> int:
        assert self.root is not None
        gone = 0
        for w in writes:
            if _STAGING.match(w.ref.rsplit("/", 1)[-1]) is None or ".." in w.ref.split("/"):
                raise ValueError(f"{w.ref!r} is not a staging file")
            path = self.root / w.ref
            try:
                if path.stat().st_mtime >= idle_since:
                    continue  # written to since it was listed: its writer lives
                path.unlink()
            except FileNotFoundError:
                continue
            gone += 1
            self._prune_empty_dirs(w.ref)
        return gone

    def _s3_api(self):
        """A boto3 client for the S3 calls obstore lacks (listing and aborting multipart uploads)."""
        if self._s3_client is None:
            import boto3
            from botocore.config import Config

            assert self._s3 is not None
            endpoint = self._s3.get("endpoint")
            self._s3_client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name=self._s3.get("region"),
                aws_access_key_id=self._s3.get("access_key_id"),
                aws_secret_access_key=self._s3.get("secret_access_key"),
                config=Config(s3={"addressing_style": "path" if endpoint else "auto"}, retries={"max_attempts": 3}),
            )
        return self._s3_client

    def _s3_unfinished(self, idle_since: float) -> list[Unfinished]:
        assert self._s3 is not None
        client, bucket, prefix = self._s3_api(), self._s3["bucket"], self._s3["prefix"]
        found: list[Unfinished] = []
        marker: dict[str, str] = {}
        while True:
            page = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, **marker)
            for upload in page.get("Uploads", []):
                key, upload_id = upload["Key"], upload["UploadId"]
                if not key.startswith(prefix):
                    continue
                active, size = upload["Initiated"].timestamp(), 0
                if active >= idle_since:
                    continue
                part_marker: dict[str, int] = {}
                while True:  # the newest part says when it was last written to
                    parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, **part_marker)
                    for part in parts.get("Parts", []):
                        active = max(active, part["LastModified"].timestamp())
                        size += int(part.get("Size", 0))
                    if not parts.get("IsTruncated"):
                        break
                    part_marker = {"PartNumberMarker": int(parts["NextPartNumberMarker"])}
                if active < idle_since:
                    found.append(Unfinished(key=key[len(prefix) :], ref=upload_id, active_at=active, size=size))
            if not page.get("IsTruncated"):
                return found
            marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def _s3_discard(self, writes: list[Unfinished]) -> int:
        from botocore.exceptions import ClientError

        assert self._s3 is not None
        client, bucket, prefix = self._s3_api(), self._s3["bucket"], self._s3["prefix"]
        gone = 0
        for w in writes:
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=prefix + w.key, UploadId=w.ref)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                continue  # completed or aborted meanwhile
            gone += 1
        return gone

    def _prune_empty_dirs(self, key: str) -> None:
        assert self.root is not None
        parent = (self.root / key).parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def local_path(self, key: str) -> Path | None:
        return self.root / key if self.kind == "local" and self.root is not None else None


class _RemoteReader(io.RawIOBase):
    """Adapts obstore's ReadableFile (whose reads return ``obstore.Bytes``) to a binary file returning ``bytes``.

    ``zipfile``/``tarfile`` slice and compare what ``read`` returns, which ``obstore.Bytes`` does not support.
    """

    def __init__(self, reader):
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        if size is None or size < 0:
            return bytes(self._reader.read())
        return bytes(self._reader.read(size))

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        return self._reader.seek(offset, whence)

    def tell(self) -> int:
        self._checkClosed()
        return self._reader.tell()

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


class _Counter:
    """Async-iterates ``chunks`` unchanged, counting bytes.

    obstore gathers the pieces into parts itself (without another copy), so nothing is re-buffered here.
    Pieces that are not ``bytes`` (bytearray, memoryview) are copied, so callers may reuse their buffers.
    """

    def __init__(self, chunks: AsyncIterable[bytes]):
        self._chunks = chunks
        self.n = 0

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        async for piece in self._chunks:
            if not piece:
                continue
            self.n += len(piece)
            yield piece if type(piece) is bytes else bytes(piece)
        if self.n == 0:
            yield b""


async def _put_local(path: Path | None, chunks: AsyncIterable[bytes]) -> int:
    """Write ``chunks`` to the local file ``path`` atomically: into a staging file ``<name>#<n>`` beside it, the
    pieces gathered into batches of about LOCAL_BATCH written with one ``writev`` each in a writer thread while the
    next batch arrives; then fsync, rename into place and fsync the folder. Nothing is copied on the way (the batch
    is the pieces themselves) and nothing but the batch in hand and the one being written is held. If ``chunks``
    raises or the call is cancelled, the staging file goes and nothing is left at ``path``; a process killed
    mid-write leaves the staging file, which :meth:`BlobStore.unfinished` finds. (obstore's own local put took
    two to three times the CPU: every piece crossed from its runtime to the event loop and back.)"""
    assert path is not None
    loop = asyncio.get_running_loop()
    staging, fd = await loop.run_in_executor(_WRITING, _create_staging, path)
    size, batch, held = 0, [], 0
    writing: Future | None = None  # the batch being written (a thread's future: it completes without the loop)
    try:
        async for piece in chunks:
            if not piece:
                continue
            if type(piece) is not bytes:
                piece = bytes(piece)  # the caller may reuse its buffer
            batch.append(piece)
            held += len(piece)
            size += len(piece)
            if held >= LOCAL_BATCH or len(batch) >= LOCAL_BATCH_PIECES:
                if writing is not None:
                    await asyncio.wrap_future(writing)
                writing = _WRITING.submit(_write_all, fd, batch)
                batch, held = [], 0
        if writing is not None:
            await asyncio.wrap_future(writing)
    except BaseException as exc:
        # the staging file goes once no thread writes to it: when the call ends, or — cancelled, it cannot wait —
        # by the writing thread when it is done (the loop may be gone by then)
        if writing is not None and not isinstance(exc, asyncio.CancelledError):
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(writing)
        if writing is not None:
            writing.add_done_callback(lambda _: _drop_staging(fd, staging))
        else:
            _drop_staging(fd, staging)
        raise
    finish = _WRITING.submit(_finish_staging, fd, batch, staging, path)  # it owns fd now
    try:
        await asyncio.shield(asyncio.wrap_future(finish))
    except asyncio.CancelledError:
        # cancelled while the object was being put in place: let that end, then take it away again
        finish.add_done_callback(lambda done: done.exception() is None and path.unlink(missing_ok=True))
        raise
    return size


def _create_staging(path: Path) -> tuple[Path, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 1  # object_store's names: <name>#1, else the next free number
    while True:
        staging = path.with_name(f"{path.name}#{n}")
        try:
            return staging, os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            n += 1


def _write_all(fd: int, pieces: list[bytes]) -> None:
    if not pieces:
        return
    total = sum(len(p) for p in pieces)
    done = os.writev(fd, pieces)
    if done < total:  # a short write (rare on a regular file): the rest one piece at a time
        view = memoryview(b"".join(pieces))[done:]
        while view:
            view = view[os.write(fd, view) :]


def _finish_staging(fd: int, pieces: list[bytes], staging: Path, path: Path) -> None:
    """The last batch, fsync, rename into place, fsync the folder: the object is whole and durable, or absent."""
    try:
        _write_all(fd, pieces)
        os.fsync(fd)
    except BaseException:
        _drop_staging(fd, staging)
        raise
    os.close(fd)
    try:
        os.rename(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _drop_staging(fd: int, staging: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(OSError):
        staging.unlink()


async def _read_file(path: Path, start: int, end: int | None, read_chunk: int) -> AsyncIterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    try:
        pos = start
        while end is None or pos < end:
            want = read_chunk if end is None else min(read_chunk, end - pos)
            piece = os.pread(fd, want, pos) if want <= 256 * 1024 else await asyncio.to_thread(os.pread, fd, want, pos)
            if not piece:
                break
            pos += len(piece)
            yield piece
    finally:
        os.close(fd)


def open_blob_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
    s3_allow_http: bool = False,
) -> BlobStore:
    """Build a BlobStore from a URL: a path / ``file://`` URL, ``memory://``, or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return BlobStore(MemoryStore(), "memory", description="memory://")
    if parsed.scheme == "s3":
        config: dict[str, object] = {"region": s3_region}
        if s3_endpoint_url:
            config["endpoint"] = s3_endpoint_url
            config["virtual_hosted_style_request"] = False
        if s3_access_key_id:
            config["access_key_id"] = s3_access_key_id
        if s3_secret_access_key:
            config["secret_access_key"] = s3_secret_access_key
        client_options = {"allow_http": True} if s3_allow_http else None
        prefix = parsed.path.strip("/") or None
        store = S3Store(parsed.netloc, prefix=prefix, config=config, client_options=client_options)
        s3 = {**config, "bucket": parsed.netloc, "prefix": f"{prefix}/" if prefix else ""}
        return BlobStore(store, "s3", description=f"s3://{parsed.netloc}/{prefix or ''}", s3=s3)
    if parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme == "file" else url).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return BlobStore(LocalStore(root, mkdir=True), "local", root=root, description=str(root))
    raise ValueError(f"unsupported blob URL {url!r}: use a folder path, file://, memory:// or s3://bucket/prefix")
