"""Files: records over content-addressed blobs; single streamed uploads, ranged reads, signed links, delete."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, new_uuid, now
from modelharbor.core.files import blobs
from modelharbor.core.files.blobs import Segment
from modelharbor.core.files.links import LinkSigner, SignedLink
from modelharbor.core.files.pending import PendingObjects
from modelharbor.core.files.purposes import plain_file
from modelharbor.core.files.usage import INTERNAL_CONTEXTS, FileDetail, in_use_by, is_internal, used_by
from modelharbor.core.ids import find
from modelharbor.db.engine import Database
from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.domain.entities import FileRecord, Page
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound, RangeNotSatisfiable, TooLarge
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.storage import BlobStore

T = TypeVar("T")
COMPOUND_EXTENSIONS = ("tar.gz", "tar.bz2", "tar.xz", "tar.zst")
MAX_NAME = 1024
MAX_CONTEXT = 200


def extension_of(name: str) -> str:
    lower = name.lower()
    for ext in COMPOUND_EXTENSIONS:
        if lower.endswith("." + ext):
            return ext
    base = lower.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1] if "." in base.strip(".") else ""


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def check_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("a file name is required")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the file name is longer than {MAX_NAME} characters")
    if any(ord(c) < 32 for c in name):
        raise InvalidInput("the file name contains control characters")
    return name


def check_context(context: str) -> str:
    if len(context) > MAX_CONTEXT:
        raise InvalidInput(f"the context is longer than {MAX_CONTEXT} characters")
    return context


def to_record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        org_id=row.org_id,
        owner_id=row.owner_id,
        name=row.name,
        extension=row.extension,
        size=row.size,
        sha256=row.sha256,
        content_type=row.content_type,
        context=row.context,
        created_at=aware(row.created_at),
        internal=is_internal(row.context),
    )


async def limited(chunks: AsyncIterable[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, raising TooLarge as soon as more than ``limit`` bytes went by."""
    n = 0
    async for piece in chunks:
        n += len(piece)
        if n > limit:
            raise TooLarge(f"{what} is larger than the limit of {limit} bytes", code="FILE_TOO_LARGE", limit=limit)
        yield piece


def _add_file(
    s: Session,
    principal: Principal,
    name: str,
    extension: str | None,
    size: int,
    sha256: str,
    context: str,
    *,
    file_id: str | None = None,
) -> FileRecord:
    """A new file row of the caller's over the blob ``sha256`` (which the caller made sure exists)."""
    row = FileRow(
        id=file_id or new_hex(12),
        org_id=principal.org_id,
        owner_id=principal.user_id,
        name=name,
        extension=extension if extension is not None else extension_of(name),
        size=size,
        sha256=sha256,
        content_type=content_type_of(name),
        context=context,
        created_at=now(),
    )
    s.add(row)
    s.flush()
    return to_record(row)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """RFC 9110 single byte range; None means "the whole file" (absent or multi-range header)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown unit or several ranges: serve the whole representation (allowed by RFC 9110)
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise RangeNotSatisfiable(f"malformed Range header {header!r}", size=size)
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise RangeNotSatisfiable("suffix range of zero length", size=size)
            return ByteRange(max(0, size - n), size)
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        raise RangeNotSatisfiable(f"malformed Range header {header!r}", size=size) from None
    if start < 0 or start >= size or end <= start:
        raise RangeNotSatisfiable(f"range {header!r} is outside the file of {size} bytes", size=size)
    return ByteRange(start, min(end, size))


class FileService:
    def __init__(
        self, db: Database, store: BlobStore, signer: LinkSigner, *, max_single_upload: int, pending_grace: int = 3600
    ):
        self.db = db
        self.store = store
        self.signer = signer
        self.max_single_upload = max_single_upload
        self.pending = PendingObjects(db, store, grace=pending_grace)

    # --- create ----------------------------------------------------------------------------
    def single_upload_limit(self, max_size: int | None = None) -> int:
        """The most bytes one request may upload: ``MAX_SINGLE_UPLOAD_SIZE``, or a caller's lower limit."""
        return self.max_single_upload if max_size is None else min(max_size, self.max_single_upload)

    async def upload(
        self,
        principal: Principal,
        *,
        name: str,
        data: AsyncIterable[bytes],
        context: str | Callable[[], Awaitable[str]] = "",
        max_size: int | None = None,
        extension: str | None = None,
        file_extensions: Iterable[str] | None = None,
    ) -> FileRecord:
        """A client's single-request upload: stream ``data`` into the store (hashing on the way) and record it.

        This is where every dialect's single-request upload is bounded: never more than ``MAX_SINGLE_UPLOAD_SIZE``
        bytes (``max_size``, a route's own limit, can only lower it); one byte more raises TooLarge (413) and
        nothing is kept. ``context`` may be an async callable resolved after the bytes (a form field that follows
        the file part); if it raises, nothing is kept. ``file_extensions``, when given, are the only extensions
        the file may have (a plain file's rule, ``purposes.py``): another is refused (415) before anything is read
        or checked.
        """
        plain_file(file_extensions).check_extension(extension if extension is not None else extension_of(name))
        return await self._store_file(principal, name, data, context, self.single_upload_limit(max_size), extension)

    async def keep(
        self,
        principal: Principal,
        *,
        name: str,
        data: AsyncIterable[bytes],
        context: str,
        max_size: int,
        extension: str | None = None,
    ) -> FileRecord:
        """A file the server makes itself (a project export, a zip fetched from an import link), bounded by
        ``max_size`` alone: the single-upload limit is about what one client request may send."""
        return await self._store_file(principal, name, data, context, max_size, extension)

    async def _store_file(
        self,
        principal: Principal,
        name: str,
        data: AsyncIterable[bytes],
        context: str | Callable[[], Awaitable[str]],
        limit: int,
        extension: str | None,
    ) -> FileRecord:
        require(principal, Action.FILE_WRITE, principal.org_id, what="file")
        check_name(name)
        if isinstance(context, str):
            check_context(context)

        async def after_bytes() -> None:
            nonlocal context
            if not isinstance(context, str):
                context = check_context(await context())

        def commit(s: Session, sha256: str, size: int, segments: list[Segment]) -> tuple[FileRecord, list[str]]:
            assert isinstance(context, str)
            return self.record_in(
                s,
                principal,
                name=name,
                context=context,
                extension=extension,
                sha256=sha256,
                size=size,
                segments=segments,
            )

        return await self.store_stream(data, limit, commit, what="the file", after_bytes=after_bytes)

    async def store_stream(
        self,
        data: AsyncIterable[bytes],
        limit: int,
        commit: Callable[[Session, str, int, list[Segment]], tuple[T, list[str]]],
        *,
        what: str = "the file",
        after_bytes: Callable[[], Awaitable[None]] | None = None,
        check: Callable[[Session], None] | None = None,
    ) -> T:
        """Stream ``data`` (at most ``limit`` bytes, else TooLarge) into a fresh store object, hashing it on the way,
        then call ``commit(session, sha256, size, segments)`` in one transaction: it records what points at the
        bytes (a file row, a project-file commit, …) and returns its result and the store keys of ``segments`` it
        made redundant (deduplicated content). The fresh object's intent is committed before its first byte and
        settled in ``commit``'s transaction, so: a body cut off, a limit passed, ``after_bytes`` or ``commit``
        raising → the bytes are deleted and nothing is recorded; a crash at any point → the sweep deletes them.
        Flat memory: the bytes pass through in the pieces ``data`` yields. ``check(session)`` (a permission check)
        runs in the transaction of the intent, before any byte is read: one transaction, not two."""
        h = hashlib.sha256()
        key = f"objects/{new_uuid()}"
        # The intent is committed before the first byte: a crash from here to the commit leaves bytes the sweep finds.
        await asyncio.to_thread(self.pending.announce, key, "file upload", check=check)
        committed = None
        try:
            async with self.pending.alive(key):
                hashed = blobs.hashed_aside(limited(data, limit, what), h)
                size = await self.pending.written(key, self.store.put_stream(key, hashed))
                if after_bytes is not None:
                    await after_bytes()
                call = asyncio.ensure_future(
                    asyncio.to_thread(self._commit_fresh, commit, h.hexdigest(), size, [(key, size)])
                )
                try:
                    committed = await asyncio.shield(call)
                except asyncio.CancelledError:
                    # the commit goes on in its thread: learn how it ended, so a committed file keeps its bytes
                    # (a deduplicated upload's fresh object is then left to the sweep, its intent still stands)
                    with contextlib.suppress(BaseException):
                        committed = await call
                    raise
            result, stale = committed
        except BaseException:
            if committed is None:
                await self.store.delete(key)
                await self.pending.forget([key])
            raise
        if stale:  # deduplicated: the fresh object goes, then its intent (kept until now in case we die first)
            await self.store.delete(stale)
            await self.pending.forget(stale)
        return result

    def _commit_fresh(self, commit, sha256: str, size: int, segments: list[Segment]):
        """``commit`` in one transaction with the settling of the intents of the segments it keeps."""
        with self.db.uow() as s:
            result, stale = commit(s, sha256, size, segments)
            self.pending.settle_in(s, [k for k, _ in segments if k not in stale])
            return result, stale

    def record_in(
        self,
        s: Session,
        principal: Principal,
        *,
        name: str,
        context: str,
        extension: str | None,
        sha256: str,
        size: int,
        segments: Sequence[Segment],
        file_id: str | None = None,
    ) -> tuple[FileRecord, list[str]]:
        """Within the caller's transaction: point a new file at the blob for ``sha256``.

        Returns the record and the store keys made redundant by deduplication (delete after commit).
        """
        stale: list[str] = []
        if not blobs.insert_blob_if_absent(s, sha256, size, segments):
            existing = blobs.lock_blob(s, sha256)
            if existing is None or existing.size != size:  # pragma: no cover - would mean a SHA-256 collision
                raise InvalidInput("content conflict while storing the file; retry the upload")
            own = {k for k, _ in segments}
            stale = [k for k in own if k not in {k2 for k2, _ in existing.segments}]
        record = _add_file(s, principal, name, extension, size, sha256, context, file_id=file_id)
        return record, stale

    # --- read ------------------------------------------------------------------------------
    def get(self, principal: Principal, file_id: str) -> FileRecord:
        with self.db.uow(readonly=True) as s:
            row = find(s, FileRow, file_id)
            if row is None:
                raise NotFound(f"file {file_id!r} not found")
            require(principal, Action.FILE_READ, row.org_id, what=f"file {file_id!r}")
            return to_record(row)

    def list(
        self,
        principal: Principal,
        *,
        limit: int = 50,
        offset: int = 0,
        context: str | None = None,
        include_internal: bool = False,
    ) -> Page:
        """The organisation's files, newest first. Internal files (``usage.py``) only with ``include_internal``, or
        when ``context`` names their context."""
        require(principal, Action.FILE_READ, principal.org_id, what="file")
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInput("limit must be 1..1000 and offset ≥ 0")
        with self.db.uow(readonly=True) as s:
            q = select(FileRow).where(FileRow.org_id == principal.org_id)
            if context is not None:
                q = q.where(FileRow.context == context)
            elif not include_internal:
                q = q.where(FileRow.context.not_in(sorted(INTERNAL_CONTEXTS)))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.scalars(q.order_by(FileRow.created_at.desc(), FileRow.id).limit(limit).offset(offset))
            return Page([to_record(r) for r in rows], total or 0, limit, offset)

    def detail(self, principal: Principal, file_id: str) -> FileDetail:
        """One file and every object that uses it (``usage.used_by``): one transaction, one statement for the uses."""
        with self.db.uow(readonly=True) as s:
            row = find(s, FileRow, file_id)
            if row is None:
                raise NotFound(f"file {file_id!r} not found")
            require(principal, Action.FILE_READ, row.org_id, what=f"file {file_id!r}")
            return FileDetail(to_record(row), tuple(used_by(s, row.id)))

    def segments(self, file_id: str) -> list[Segment]:
        with self.db.uow(readonly=True) as s:
            blob = s.scalar(
                select(BlobRow).join(FileRow, FileRow.sha256 == BlobRow.sha256).where(FileRow.id == file_id)
            )
            if blob is None:
                raise NotFound(f"file {file_id!r} not found")
            return [(k, n) for k, n in blob.segments]

    async def open(
        self,
        principal: Principal | None,
        file_id: str,
        range_header: str | None = None,
        *,
        link: tuple[str, str, bytes, str] | None = None,
    ) -> tuple[FileRecord, ByteRange | None, AsyncIterator[bytes]]:
        """Authorise (by principal, or by a signed link ``(expires, nonce, mac, extra)``) and open for reading.

        Returns the record, the satisfied range (None = whole file) and the byte stream.
        """
        if link is not None:
            record = await asyncio.to_thread(self.verify_link, file_id, *link)
        elif principal is not None:
            record = await asyncio.to_thread(self.get, principal, file_id)
        else:  # pragma: no cover - callers always pass one
            raise NotFound(f"file {file_id!r} not found")
        rng = parse_range(range_header, record.size)
        segments = await asyncio.to_thread(self.segments, file_id)
        start, end = (rng.start, rng.end) if rng else (0, record.size)
        return record, rng, blobs.stream_segments(self.store, segments, start, end)

    def open_reader(self, file_id: str) -> io.BufferedReader:
        """A seekable synchronous reader of a file's bytes (for background checks; no permission check).

        Buffered, so ``read(n)`` returns ``n`` bytes even across segment boundaries.
        """
        return io.BufferedReader(blobs.SegmentedReader(self.store, self.segments(file_id)), buffer_size=1 << 20)

    # --- signed links ----------------------------------------------------------------------
    def sign_link(
        self, principal: Principal, file_id: str, ttl: int, *, extra: str = ""
    ) -> tuple[FileRecord, SignedLink]:
        record = self.get(principal, file_id)
        return record, self.signer.sign(file_id, ttl, extra=extra)

    def verify_link(self, file_id: str, expires: str, nonce: str, mac: bytes, extra: str = "") -> FileRecord:
        self.signer.verify(file_id, expires, nonce, mac, extra=extra)
        with self.db.uow(readonly=True) as s:
            row = find(s, FileRow, file_id)
            if row is None:
                raise NotFound("the linked file no longer exists")
            return to_record(row)

    # --- sharing bytes between records ------------------------------------------------------
    def clone_in(
        self, s: Session, principal: Principal, file_id: str, *, context: str, name: str | None = None
    ) -> FileRecord:
        """Within the caller's transaction: a new file record over the same bytes (no copy)."""
        src = find(s, FileRow, file_id)
        if src is None:
            raise NotFound(f"file {file_id!r} not found")
        require(principal, Action.FILE_READ, src.org_id, what=f"file {file_id!r}")
        row = FileRow(
            id=new_hex(12),
            org_id=principal.org_id,
            owner_id=principal.user_id,
            name=name or src.name,
            extension=src.extension if name is None else extension_of(name),
            size=src.size,
            sha256=src.sha256,
            content_type=src.content_type if name is None else content_type_of(name),
            context=context,
            created_at=now(),
        )
        s.add(row)
        s.flush()
        return to_record(row)

    def held_sizes(self, org_id: str, sizes: set[int]) -> set[int]:
        """Which of ``sizes`` some file of the organisation has: content of another size cannot already be held, so
        a caller that can skip storing held content (:meth:`link_held`) hashes only content of these sizes first."""
        wanted, found = sorted(sizes), set()
        if not wanted:
            return found
        with self.db.uow(readonly=True) as s:
            for i in range(0, len(wanted), 500):
                found.update(
                    s.scalars(
                        select(FileRow.size)
                        .where(FileRow.org_id == org_id, FileRow.size.in_(wanted[i : i + 500]))
                        .distinct()
                    )
                )
        return found

    def link_held(self, principal: Principal, *, sha256: str, size: int, name: str, context: str) -> FileRecord | None:
        """A new file record over content the organisation already holds — the SHA-256 the caller computed itself
        from the bytes, never one it was told — without storing the bytes again; None if it holds none (then store
        them as usual). See :meth:`link_held_in`."""
        require(principal, Action.FILE_WRITE, principal.org_id, what="file")
        check_name(name)
        check_context(context)
        with self.db.uow() as s:
            return self.link_held_in(s, principal, sha256=sha256, size=size, name=name, context=context)

    def link_held_in(
        self,
        s: Session,
        principal: Principal,
        *,
        sha256: str,
        size: int,
        name: str,
        context: str,
        extension: str | None = None,
    ) -> FileRecord | None:
        """Within the caller's transaction: a new file record over content of ``sha256`` and ``size`` that a file of
        the caller's organisation already points at; None when the organisation holds no such content.

        Only the organisation's own files count: whether another organisation holds some content must not show,
        neither in the answer nor in how fast it comes (the first look is at the organisation's own files, so content
        only another organisation holds answers exactly like content nobody holds). The blob row is then locked as
        :meth:`record_in` locks it, and the organisation's file looked for again: a concurrent delete of the last
        other file either sees this new file or ran first (then None)."""
        own = select(FileRow.id).where(FileRow.org_id == principal.org_id, FileRow.sha256 == sha256).limit(1)
        if s.scalar(own) is None:
            return None
        blob = blobs.lock_blob(s, sha256)
        if blob is None or blob.size != size or s.scalar(own) is None:
            return None
        return _add_file(s, principal, name, extension, size, sha256, context)

    def drop_in(self, s: Session, file_id: str) -> list[str]:
        """Within the caller's transaction, for services that own a file record: delete it.

        Returns the store keys to delete after commit (when no other file shares the bytes).
        """
        row = find(s, FileRow, file_id)
        if row is None:
            return []
        sha = row.sha256
        s.delete(row)
        s.flush()
        return blobs.release_blob_if_unused(s, sha)

    # --- delete ----------------------------------------------------------------------------
    async def delete(self, principal: Principal, file_id: str) -> None:
        stale = await asyncio.to_thread(self._delete, principal, file_id)
        await self.store.delete(stale)

    def _delete(self, principal: Principal, file_id: str) -> list[str]:
        with self.db.uow() as s:
            row = find(s, FileRow, file_id)
            if row is None:
                raise NotFound(f"file {file_id!r} not found")
            require(principal, Action.FILE_DELETE, row.org_id, what=f"file {file_id!r}")
            user = in_use_by(s, file_id)
            if user is not None:
                raise Conflict(
                    f"file {file_id!r} is the data of {user}; change or delete that first", code="FILE_IN_USE"
                )
            sha = row.sha256
            s.delete(row)
            s.flush()
            return blobs.release_blob_if_unused(s, sha)
