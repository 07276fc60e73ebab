"""The upload engine: chunked sessions that resume, take chunks in any order and in parallel, and verify.

Protocol-independent (tusd's "unrouted handler" idea): every dialect's chunk API maps onto
``start``/``put_chunk``/``status``/``complete``/``abort``.

Invariants
- A chunk's bytes go to a fresh store key first; only then is the chunk row committed (under a lock on
  the session row), so a crash in between leaves an invisible orphan object, never a visible half chunk.
  A re-sent chunk replaces the old row; the old object is deleted after the commit.
- Completing does not copy bytes: the chunks, in numeric order, become the segments of the blob.
  The SHA-256 is computed by reading the chunks once. Identical content is kept once (dedup).
- ``complete`` is idempotent: a completed session answers with the same file (and hook result).
- A session is opened for a purpose (``purposes.py``): a plain file, or one a service registered for its context
  (a model import), which brings its extension rule, what opening it reserves and what completing it does.
- A session has one chunk size, declared or seen in its first full chunk, and may carry the client's fingerprint of
  the file and its SHA-256 (``resume.py``): a resume finds the session by name, size and fingerprint and cuts the
  file by the session's chunk size; a declared SHA-256 is checked on completion (a mismatch is refused and the
  session stays open); with a size, content the organisation already holds completes the session as it opens,
  in the opening transaction (no byte sent; the purpose's completion hook runs as for any completion).
- Expired open sessions and their objects are removed by :meth:`UploadService.sweep`. Completing, aborting or
  expiring a session records its prefix in ``pending_objects`` (``core/files/pending.py``): after the grace period the
  sweep deletes what no blob references under it (chunks a crashed writer left, or that arrived too late).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, new_uuid, now
from modelharbor.core.files import blobs, pending, resume
from modelharbor.core.files.purposes import UploadPurpose, plain_file
from modelharbor.core.files.service import FileService, check_context, check_name, extension_of, limited, to_record
from modelharbor.core.ids import find, well_formed
from modelharbor.db.engine import Database
from modelharbor.db.tables import FileRow, UploadChunkRow, UploadSessionRow
from modelharbor.domain.entities import ChunkInfo, FileRecord, UploadSession
from modelharbor.domain.errors import Conflict, Gone, HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.storage import BlobStore

OPEN, COMPLETED, ABORTED = "open", "completed", "aborted"
MAX_HASHERS = 256  # sessions whose prefix hash is kept in memory at once


@dataclass(frozen=True)
class UploadLimits:
    session_ttl: int
    max_upload_size: int
    max_chunk_size: int
    max_chunks: int


@dataclass(frozen=True)
class Completed:
    session: UploadSession
    file: FileRecord
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Opened:
    """A session just opened, and what its purpose reserved (a model import: ``model_id``, ``is_adapter``)."""

    session: UploadSession
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkIn:
    """A chunk as a request carries it: its bytes; its number, now or only once the bytes went by
    (``number_after``: a form field after the file part); the caller's size limit; and ``rest``, what reads the rest
    of the request once the chunk is stored (a form's later fields)."""

    data: AsyncIterable[bytes]
    number: int | None = None
    number_after: Callable[[], Awaitable[int]] | None = None
    max_size: int | None = None
    rest: Callable[[], Awaitable[None]] | None = None


def prefix_of(session_id: str) -> str:
    """Where a session's chunks live; a chunk's bytes are written before its row (a closed prefix is swept)."""
    return f"uploads/{session_id}/"


def session_entity(row: UploadSessionRow, chunks: list[UploadChunkRow] | None = None) -> UploadSession:
    return UploadSession(
        id=row.id,
        org_id=row.org_id,
        owner_id=row.owner_id,
        name=row.name,
        extension=row.extension,
        size=row.size,
        total_chunks=row.total_chunks,
        context=row.context,
        state=row.state,
        expires_at=aware(row.expires_at),
        created_at=aware(row.created_at),
        meta=dict(row.meta or {}),
        file_id=row.file_id,
        chunks=tuple(ChunkInfo(c.number, c.size) for c in sorted(chunks or [], key=lambda c: c.number)),
        chunk_size=row.chunk_size,
        fingerprint=row.fingerprint,
        sha256=row.sha256,
        deduplicated=bool(row.deduplicated),
    )


class UploadService:
    def __init__(self, db: Database, store: BlobStore, files: FileService, limits: UploadLimits):
        self.db = db
        self.store = store
        self.files = files
        self.limits = limits
        self._purposes: dict[str, UploadPurpose] = {}
        self._hashers: dict[str, _PrefixHash] = {}
        files.pending.add_owner("uploads/", _open_sessions_own)

    def add_purpose(self, purpose: UploadPurpose) -> None:
        """Register a purpose for the sessions of its context (e.g. a model import for ``model``)."""
        assert purpose.context is not None, "a registered purpose claims a context"
        self._purposes[purpose.context] = purpose

    def purpose_for(self, context: str, file_extensions: Iterable[str] | None = None) -> UploadPurpose:
        """The purpose registered for ``context``, else a plain file with ``file_extensions`` (None: any)."""
        return self._purposes.get(context) or plain_file(file_extensions)

    # --- start -----------------------------------------------------------------------------
    def open(
        self,
        principal: Principal,
        *,
        name: str,
        total_chunks: int,
        size: int | None = None,
        context: str = "",
        extension: str | None = None,
        options: Mapping[str, Any] | None = None,
        file_extensions: Iterable[str] | None = None,
        chunk_size: int | None = None,
        fingerprint: str | None = None,
        sha256: str | None = None,
    ) -> Opened:
        """Open a session for the purpose ``context`` names (a dialect's one call to start a session): a registered
        one (``model``: a model import, taking ``options["is_adapter"]``) or else a plain file, whose extensions a
        dialect may limit (``file_extensions``). The extension is checked, the purpose's opening hook run, the
        session created (completed at once from held content, see :meth:`start_in`): one transaction."""
        with self.db.uow() as s:
            row, result = self.open_in(
                s,
                principal,
                name=name,
                total_chunks=total_chunks,
                size=size,
                context=context,
                extension=extension,
                options=options,
                file_extensions=file_extensions,
                chunk_size=chunk_size,
                fingerprint=fingerprint,
                sha256=sha256,
            )
            return Opened(session_entity(row), result)

    def open_in(
        self,
        s: Session,
        principal: Principal,
        *,
        name: str,
        total_chunks: int,
        size: int | None,
        context: str,
        extension: str | None,
        options: Mapping[str, Any] | None = None,
        file_extensions: Iterable[str] | None = None,
        chunk_size: int | None = None,
        fingerprint: str | None = None,
        sha256: str | None = None,
    ) -> tuple[UploadSessionRow, dict[str, Any]]:
        """:meth:`open` within the caller's transaction: the session row and what its purpose reserved."""
        purpose = self.purpose_for(context, file_extensions)
        purpose.check_extension(extension if extension is not None else extension_of(name), context)
        meta = purpose.on_open(s, principal, name, dict(options or {})) if purpose.on_open else {}
        row = self.start_in(
            s,
            principal,
            name=name,
            total_chunks=total_chunks,
            size=size,
            context=context,
            extension=extension,
            meta=meta,
            chunk_size=chunk_size,
            fingerprint=fingerprint,
            sha256=sha256,
        )
        return row, dict(meta)

    def start(
        self,
        principal: Principal,
        *,
        name: str,
        total_chunks: int,
        size: int | None = None,
        context: str = "",
        extension: str | None = None,
        meta: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        fingerprint: str | None = None,
        sha256: str | None = None,
    ) -> UploadSession:
        """Open a plain session (no purpose's opening hook); see :meth:`start_in`."""
        with self.db.uow() as s:
            row = self.start_in(
                s,
                principal,
                name=name,
                total_chunks=total_chunks,
                size=size,
                context=context,
                extension=extension,
                meta=meta,
                chunk_size=chunk_size,
                fingerprint=fingerprint,
                sha256=sha256,
            )
            return session_entity(row)

    def start_in(
        self,
        s: Session,
        principal: Principal,
        *,
        name: str,
        total_chunks: int,
        size: int | None,
        context: str,
        extension: str | None,
        meta: dict[str, Any] | None,
        chunk_size: int | None = None,
        fingerprint: str | None = None,
        sha256: str | None = None,
    ) -> UploadSessionRow:
        """Create a plain session within the caller's transaction (no purpose: :meth:`open_in` runs the purpose's).

        ``chunk_size``, ``fingerprint`` and ``sha256`` as ``resume.py`` says. With ``sha256`` and ``size``, content
        of that hash and size a file of the caller's organisation already points at (never another organisation's)
        makes the file at once: the session is completed (``deduplicated``) and its purpose's completion hook run,
        here, in this transaction."""
        require(principal, Action.UPLOAD_WRITE, principal.org_id, what="upload session")
        check_name(name)
        check_context(context)
        lim = self.limits
        if not isinstance(total_chunks, int) or not 1 <= total_chunks <= lim.max_chunks:
            raise InvalidInput(f"total_chunks must be an integer from 1 to {lim.max_chunks}", field="total_chunks")
        if size is not None:
            if not isinstance(size, int) or size < 0:
                raise InvalidInput("size must be a whole number of bytes ≥ 0", field="size")
            if size > lim.max_upload_size:
                raise TooLarge(
                    f"size {size} exceeds the upload limit of {lim.max_upload_size} bytes",
                    code="FILE_TOO_LARGE",
                    limit=lim.max_upload_size,
                )
            if total_chunks > max(size, 1):
                raise InvalidInput(f"{total_chunks} chunks cannot make a file of {size} bytes", field="total_chunks")
        chunk_size = resume.check_declared(
            chunk_size, size=size, total_chunks=total_chunks, max_chunk_size=lim.max_chunk_size
        )
        fingerprint = resume.hex_digest(fingerprint, "fingerprint")
        sha256 = resume.hex_digest(sha256, "sha256")
        row = UploadSessionRow(
            id=new_uuid(),
            org_id=principal.org_id,
            owner_id=principal.user_id,
            name=name,
            extension=extension if extension is not None else extension_of(name),
            size=size,
            total_chunks=total_chunks,
            context=context,
            meta=dict(meta or {}),
            state=OPEN,
            file_id=None,
            expires_at=now() + timedelta(seconds=lim.session_ttl),
            created_at=now(),
            completed_at=None,
            chunk_size=chunk_size,
            fingerprint=fingerprint,
            sha256=sha256,
            deduplicated=False,
        )
        if chunk_size is not None:
            resume.mark(row, resume.DECLARED)
        s.add(row)
        s.flush()
        if sha256 is not None and size is not None:
            record = self.files.link_held_in(
                s, principal, sha256=sha256, size=size, name=name, context=context, extension=row.extension
            )
            if record is not None:
                row.deduplicated = True
                self._close_completed(s, row, record)
        return row

    # --- chunks ----------------------------------------------------------------------------
    @staticmethod
    def _lock(s: Session, session_id: str) -> UploadSessionRow | None:
        """The session row, locked (PostgreSQL) and re-read: a lock wait may end after another commit."""
        if not well_formed(session_id):
            return None
        return s.scalar(
            select(UploadSessionRow)
            .where(UploadSessionRow.id == session_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    @staticmethod
    def _visible(
        row: UploadSessionRow | None, principal: Principal, session_id: str, action: Action
    ) -> UploadSessionRow:
        """A session is its owner's; admins of its organisation may see and act on it too."""
        unknown = NotFound(f"upload session {session_id!r} not found", code="SESSION_NOT_FOUND")
        if row is None or (row.org_id != principal.org_id and not principal.is_superuser):
            raise unknown  # another organisation's session reads exactly like a missing one
        if row.owner_id != principal.user_id and not principal.can(Action.KEY_MANAGE_ANY, row.org_id):
            raise unknown
        require(principal, action, row.org_id, what=f"upload session {session_id!r}")
        return row

    def _lock_open(self, s: Session, principal: Principal, session_id: str, action: Action) -> UploadSessionRow:
        row = self._visible(self._lock(s, session_id), principal, session_id, action)
        if row.state == COMPLETED:
            raise Conflict("this upload session is already completed", code="SESSION_COMPLETED")
        if row.state == ABORTED:
            raise Gone("this upload session was aborted; start a new one", code="SESSION_ABORTED")
        if aware(row.expires_at) <= now():
            raise Gone("this upload session has expired; start a new one", code="SESSION_EXPIRED")
        return row

    def _check_number(self, row: UploadSessionRow, number: int) -> None:
        if not isinstance(number, int) or not 0 <= number < row.total_chunks:
            raise InvalidInput(
                f"chunk number {number!r} is out of range: this session takes 0 to {row.total_chunks - 1}",
                code="INVALID_CHUNK_NUMBER",
                field="chunkNumber",
            )

    def _precheck(self, principal: Principal, session_id: str, number: int | None) -> tuple[int | None, int | None]:
        with self.db.uow(readonly=True) as s:
            return self.precheck_in(s, principal, session_id, number)

    def precheck_in(
        self, s: Session, principal: Principal, session_id: str, number: int | None
    ) -> tuple[int | None, int | None]:
        """The session is open and the number in range: the declared size, and the most bytes the chunk may have
        under a declared chunk size (``put_chunk``'s ``bounds``, for a service that looks the session up in a
        transaction of its own anyway: one transaction and one thread hop per chunk, not two)."""
        row = self._lock_open(s, principal, session_id, Action.UPLOAD_WRITE)
        if number is not None:
            self._check_number(row, number)
        return row.size, resume.cap(row, number)

    async def put_chunk(
        self,
        principal: Principal,
        session_id: str,
        data: AsyncIterable[bytes],
        *,
        number: int | None = None,
        number_after: Callable[[], Awaitable[int]] | None = None,
        max_size: int | None = None,
        md5: str | None = None,
        bounds: tuple[int | None, int | None] | None = None,
    ) -> ChunkInfo:
        """Stream one chunk into the session. ``number`` may be known only after the body (``number_after``),
        as with a multipart form whose number field follows the file part. ``md5``: the client's MD5 of the chunk
        (hex, any case), checked as the bytes arrive — a mismatch is refused and nothing of the chunk is kept.
        ``bounds``: what :meth:`precheck_in` answered for this chunk in the caller's transaction, if it asked."""
        expected = resume.hex_digest(md5, "checksum", length=32) if md5 is not None else None
        if bounds is None:
            bounds = await asyncio.to_thread(self._precheck, principal, session_id, number)
        size, cap = bounds
        limit = min(max_size or self.limits.max_chunk_size, self.limits.max_chunk_size)
        for bound in (size, cap):
            if bound is not None:
                limit = min(limit, bound)
        key = prefix_of(session_id) + new_hex(8)
        try:
            body = limited(data, limit, "the chunk")
            nbytes = await self.store.put_stream(key, body if expected is None else _md5_checked(body, expected))
        except HarborError:
            raise
        except Exception:
            # the session closed meanwhile (and the sweep took the unfinished write, if long idle): say that instead
            await asyncio.to_thread(self._precheck, principal, session_id, None)
            raise
        try:
            if number is None:
                if number_after is None:
                    raise InvalidInput("a chunk number is required", code="INVALID_CHUNK_NUMBER", field="chunkNumber")
                number = await number_after()
            old = await asyncio.to_thread(self._commit_chunk, principal, session_id, number, key, nbytes, expected)
        except BaseException:
            await self.store.delete(key)
            raise
        if old:
            await self.store.delete(old)
        self._hash_ahead(session_id, number, key, nbytes, replaced=old is not None)
        return ChunkInfo(number, nbytes)

    async def receive(self, principal: Principal, session_id: str, chunk: ChunkIn) -> ChunkInfo:
        """Store a chunk as a request carries it (:class:`ChunkIn`), then let the rest of the request be read."""
        info = await self.put_chunk(
            principal,
            session_id,
            chunk.data,
            number=chunk.number,
            number_after=chunk.number_after,
            max_size=chunk.max_size,
        )
        if chunk.rest is not None:
            await chunk.rest()
        return info

    # --- hashing ahead of complete ----------------------------------------------------------
    def _hash_ahead(self, session_id: str, number: int, key: str, size: int, *, replaced: bool) -> None:
        ph = self._hashers.get(session_id)
        if ph is not None and ph.loop is not asyncio.get_running_loop():
            self._drop_hasher(session_id)  # made under another event loop (only in tests): start afresh
            ph = None
        if ph is None:
            if len(self._hashers) >= MAX_HASHERS:  # forget the least recently used
                oldest = min(self._hashers, key=lambda k: self._hashers[k].touched)
                self._drop_hasher(oldest)
            ph = self._hashers[session_id] = _PrefixHash()
        if replaced and number < len(ph.keys):
            self._drop_hasher(session_id)  # a hashed chunk changed: start over lazily at complete
            return
        ph.committed[number] = (key, size)
        ph.touched = time.monotonic()
        if ph.task is None or ph.task.done():
            ph.task = asyncio.get_running_loop().create_task(self._advance(ph))

    async def _advance(self, ph: _PrefixHash) -> None:
        async with ph.lock:
            while (nxt := ph.committed.get(len(ph.keys))) is not None:
                try:
                    await blobs.update_hash(self.store, ph.h, [nxt])
                except FileNotFoundError:
                    ph.committed.clear()  # replaced under us; complete will notice the keys differ
                    return
                ph.keys.append(nxt[0])

    def _drop_hasher(self, session_id: str) -> None:
        ph = self._hashers.pop(session_id, None)
        if ph is not None and ph.task is not None and not ph.loop.is_closed():
            ph.task.cancel()

    async def _hash(self, session_id: str, snap: list[blobs.Segment]) -> str:
        """SHA-256 of the snapshot, continuing from the prefix hashed in the background when it still applies."""
        ph = self._hashers.get(session_id)
        if ph is not None and ph.loop is asyncio.get_running_loop():
            async with ph.lock:
                done = len(ph.keys)
                if ph.keys == [k for k, _ in snap[:done]]:
                    h = ph.h.copy()
                    await blobs.update_hash(self.store, h, snap[done:])
                    return h.hexdigest()
        return await blobs.hash_segments(self.store, snap)

    def _commit_chunk(
        self, principal: Principal, session_id: str, number: int, key: str, size: int, md5: str | None = None
    ) -> str | None:
        with self.db.uow() as s:
            row = self._lock_open(s, principal, session_id, Action.UPLOAD_WRITE)
            self._check_number(row, number)
            resume.check_chunk(row, number, size)
            old = s.get(UploadChunkRow, (session_id, number))
            old_key = None
            if old is not None:
                old_key = old.key
                old.key, old.size, old.created_at, old.md5 = key, size, now(), md5
            else:
                s.add(
                    UploadChunkRow(session_id=session_id, number=number, key=key, size=size, created_at=now(), md5=md5)
                )
            sizes = None
            if row.size is not None or row.chunk_size is None:
                s.flush()
                held = select(UploadChunkRow.number, UploadChunkRow.size).where(UploadChunkRow.session_id == session_id)
                sizes = {n: b for n, b in s.execute(held)}
            resume.note_chunk(row, number, size, sizes if row.chunk_size is None else None)
            if row.size is not None:
                total = sum(sizes.values())
                if total > row.size:
                    raise InvalidInput(
                        f"the chunks received add up to {total} bytes, more than the declared size {row.size}",
                        code="SIZE_MISMATCH",
                        expected_size=row.size,
                        received_size=total,
                    )
            return old_key

    # --- status ----------------------------------------------------------------------------
    def status(self, principal: Principal, session_id: str) -> UploadSession:
        with self.db.uow(readonly=True) as s:
            row = self._visible(find(s, UploadSessionRow, session_id), principal, session_id, Action.FILE_READ)
            chunks = list(s.scalars(select(UploadChunkRow).where(UploadChunkRow.session_id == session_id)))
            return session_entity(row, chunks)

    def list_open(
        self,
        principal: Principal,
        *,
        name: str | None = None,
        size: int | None = None,
        fingerprint: str | None = None,
    ) -> list[UploadSession]:
        """The caller's open, unexpired sessions, newest first (the SDK resumes one found by name, size and
        fingerprint: a session without the fingerprint, or with another, is not the same file)."""
        require(principal, Action.FILE_READ, principal.org_id, what="upload session")
        with self.db.uow(readonly=True) as s:
            q = select(UploadSessionRow).where(
                UploadSessionRow.org_id == principal.org_id,
                UploadSessionRow.owner_id == principal.user_id,
                UploadSessionRow.state == OPEN,
                UploadSessionRow.expires_at > now(),
            )
            if name is not None:
                q = q.where(UploadSessionRow.name == name)
            if size is not None:
                q = q.where(UploadSessionRow.size == size)
            if fingerprint is not None:
                q = q.where(UploadSessionRow.fingerprint == resume.hex_digest(fingerprint, "fingerprint"))
            rows = list(s.scalars(q.order_by(UploadSessionRow.created_at.desc()).limit(100)))
            chunks: dict[str, list[UploadChunkRow]] = {r.id: [] for r in rows}
            if rows:
                for c in s.scalars(select(UploadChunkRow).where(UploadChunkRow.session_id.in_(list(chunks)))):
                    chunks[c.session_id].append(c)
            return [session_entity(r, chunks[r.id]) for r in rows]

    # --- complete --------------------------------------------------------------------------
    async def complete(self, principal: Principal, session_id: str, *, last_chunk: ChunkIn | None = None) -> Completed:
        """Assemble and verify the file, and run the completion hook of the session's purpose. ``last_chunk``: a final
        chunk sent along (stored first; when the session already completed, a retried complete, it is part of the
        file already and the answer is the first one's)."""
        if last_chunk is not None:
            try:
                await self.receive(principal, session_id, last_chunk)
            except Conflict as exc:
                if exc.code != "SESSION_COMPLETED":
                    raise
        for _ in range(5):
            taken = await asyncio.to_thread(self._snapshot, principal, session_id)
            if isinstance(taken, Completed):
                return taken
            snap, declared = taken
            try:
                sha = await self._hash(session_id, snap)
            except FileNotFoundError:
                continue  # a chunk was replaced (its old object deleted) while we hashed
            if declared is not None and sha != declared:
                raise InvalidInput(
                    f"the chunks make a file whose SHA-256 is {sha}, not the {declared} this session declared: the "
                    "session stays open; send the chunks again (or abort it) and complete again",
                    code="SHA256_MISMATCH",
                    expected_sha256=declared,
                    received_sha256=sha,
                )
            try:
                done, stale = await asyncio.to_thread(self._finish, principal, session_id, snap, sha)
            except _ChunksChanged:
                continue  # a chunk was replaced while we hashed: hash again
            await self.store.delete(stale)
            self._drop_hasher(session_id)
            return done
        raise Conflict("the chunks kept changing while completing; retry when all chunk uploads have finished")

    def _completed(self, s: Session, row: UploadSessionRow) -> Completed:
        file_row = s.get(FileRow, row.file_id)
        if file_row is None:
            raise Gone("the file of this completed session was deleted", code="FILE_DELETED")
        chunks = list(s.scalars(select(UploadChunkRow).where(UploadChunkRow.session_id == row.id)))
        return Completed(session_entity(row, chunks), to_record(file_row), dict((row.meta or {}).get("result", {})))

    def _snapshot(self, principal: Principal, session_id: str) -> Completed | tuple[list[blobs.Segment], str | None]:
        """The completed answer, or the chunks to hash and the SHA-256 the session declared."""
        with self.db.uow(readonly=True) as s:
            row = self._visible(self._lock(s, session_id), principal, session_id, Action.UPLOAD_WRITE)
            if row.state == COMPLETED:
                return self._completed(s, row)
            self._lock_open(s, principal, session_id, Action.UPLOAD_WRITE)
            chunks = list(
                s.scalars(
                    select(UploadChunkRow)
                    .where(UploadChunkRow.session_id == session_id)
                    .order_by(UploadChunkRow.number)
                )
            )
            self._check_complete(row, chunks)
            return [(c.key, c.size) for c in chunks], row.sha256

    def _check_complete(self, row: UploadSessionRow, chunks: list[UploadChunkRow]) -> None:
        have = [c.number for c in chunks]
        missing = sorted(set(range(row.total_chunks)) - set(have))
        if missing:
            shown = ", ".join(map(str, missing[:50])) + (" …" if len(missing) > 50 else "")
            raise InvalidInput(
                f"missing chunk(s): {shown} (received {len(have)} of {row.total_chunks}); upload them and "
                "complete again",
                code="MISSING_CHUNKS",
                total_chunks=row.total_chunks,
                received_chunks=have,
                missing_chunks=missing,
            )
        received = sum(c.size for c in chunks)
        if row.size is not None and received != row.size:
            raise InvalidInput(
                f"the chunks add up to {received} bytes but the session declared {row.size}",
                code="SIZE_MISMATCH",
                expected_size=row.size,
                received_size=received,
            )

    def _finish(self, principal: Principal, session_id: str, snap: list[blobs.Segment], sha: str):
        with self.db.uow() as s:
            row = self._lock(s, session_id)
            if row is not None and row.state == COMPLETED:  # a concurrent complete won
                return self._completed(s, row), []
            row = self._lock_open(s, principal, session_id, Action.UPLOAD_WRITE)
            chunks = list(
                s.scalars(
                    select(UploadChunkRow)
                    .where(UploadChunkRow.session_id == session_id)
                    .order_by(UploadChunkRow.number)
                )
            )
            if [(c.key, c.size) for c in chunks] != snap:
                raise _ChunksChanged()
            size = sum(n for _, n in snap)
            record, stale = self.files.record_in(
                s,
                principal,
                name=row.name,
                context=row.context,
                extension=row.extension,
                sha256=sha,
                size=size,
                segments=snap,
            )
            # chunks a crashed writer left, or that arrive while completing, are removed by the sweep after the grace
            pending.close_prefix_in(s, prefix_of(session_id), "completed upload", keep_blob=sha)
            result = self._close_completed(s, row, record)
            return Completed(session_entity(row, chunks), record, result), stale

    def _close_completed(self, s: Session, row: UploadSessionRow, record: FileRecord) -> dict[str, Any]:
        """Within the completing transaction: the session is completed with ``record`` as its file, and its purpose's
        completion hook has run (its result kept on the session, so a repeated ``complete`` answers the same)."""
        row.state, row.file_id, row.completed_at = COMPLETED, record.id, now()
        purpose = self._purposes.get(row.context)
        result = purpose.on_complete(s, row, record) if purpose and purpose.on_complete else {}
        row.meta = {**(row.meta or {}), "result": result}
        s.flush()
        return result

    # --- abort & sweep ---------------------------------------------------------------------
    async def abort(self, principal: Principal, session_id: str) -> None:
        keys = await asyncio.to_thread(self._abort, principal, session_id)
        self._drop_hasher(session_id)
        await self._delete_prefix(session_id, keys)

    def _abort(self, principal: Principal, session_id: str) -> list[str]:
        with self.db.uow() as s:
            row = self._visible(self._lock(s, session_id), principal, session_id, Action.UPLOAD_WRITE)
            if row.state == COMPLETED:
                raise Conflict(
                    "a completed upload cannot be aborted; delete the file instead", code="SESSION_COMPLETED"
                )
            return self._drop(s, row)

    def _drop(self, s: Session, row: UploadSessionRow) -> list[str]:
        keys = [c.key for c in s.scalars(select(UploadChunkRow).where(UploadChunkRow.session_id == row.id))]
        s.execute(delete(UploadChunkRow).where(UploadChunkRow.session_id == row.id))
        row.state = ABORTED
        # deleted at once after the commit; chunk writes still in flight are caught by the sweep after the grace
        pending.close_prefix_in(s, prefix_of(row.id), "aborted upload")
        return keys

    async def _delete_prefix(self, session_id: str, keys: list[str]) -> None:
        await self.store.delete(keys)
        # objects written but never committed (a crash between write and commit) live under the same prefix
        await self.store.delete(await self.store.list(prefix_of(session_id)))

    async def sweep(self) -> int:
        """Abort expired open sessions and delete their objects; returns how many sessions were swept."""
        expired = await asyncio.to_thread(self._expire)
        for session_id, keys in expired:
            self._drop_hasher(session_id)
            await self._delete_prefix(session_id, keys)
        return len(expired)

    def _expire(self) -> list[tuple[str, list[str]]]:
        with self.db.uow() as s:
            rows = list(
                s.scalars(
                    select(UploadSessionRow)
                    .where(UploadSessionRow.state == OPEN, UploadSessionRow.expires_at <= now())
                    .limit(500)
                    .with_for_update(skip_locked=True)
                )
            )
            return [(row.id, self._drop(s, row)) for row in rows]


def _open_sessions_own(s: Session, keys: list[str]) -> set[str]:
    """Of keys under ``uploads/``, those of a session still open: a chunk may be being written there. (Once the
    session is closed no chunk can be committed to it, so an unfinished chunk write there is no one's.)"""
    sessions = {key.split("/")[1] for key in keys if key.count("/") >= 2 and well_formed(key.split("/")[1])}
    open_ids: set[str] = set()
    ids = sorted(sessions)
    for i in range(0, len(ids), 500):
        open_ids.update(
            s.scalars(
                select(UploadSessionRow.id).where(
                    UploadSessionRow.id.in_(ids[i : i + 500]), UploadSessionRow.state == OPEN
                )
            )
        )
    return {key for key in keys if key.count("/") >= 2 and key.split("/")[1] in open_ids}


class _ChunksChanged(Exception):
    pass


async def _md5_checked(data: AsyncIterable[bytes], expected: str) -> AsyncIterable[bytes]:
    """``data`` passed through; at its end, a 400 if its MD5 is not ``expected`` (lower-case hex), which makes the
    store drop what it wrote."""
    h = hashlib.md5(usedforsecurity=False)
    async for piece in blobs.hashed_aside(data, h):
        yield piece
    if h.hexdigest() != expected:
        raise InvalidInput(
            f"the chunk's MD5 is {h.hexdigest().upper()}, not the {expected.upper()} sent as its checksum: nothing of "
            "it was kept; send it again",
            code="CHECKSUM_MISMATCH",
            field="checksum",
        )


class _PrefixHash:
    """SHA-256 of a session's chunks 0…k-1, fed in the background as chunks arrive (in this process).

    Chunks mostly arrive roughly in order, so by ``complete`` little is left to hash. The state is only an
    optimisation: ``complete`` uses it only if the keys it hashed are still the session's first chunks.
    """

    def __init__(self):
        self.h = hashlib.sha256()
        self.keys: list[str] = []
        self.committed: dict[int, tuple[str, int]] = {}
        self.lock = asyncio.Lock()
        self.task: asyncio.Task | None = None
        self.touched = time.monotonic()
        self.loop = asyncio.get_running_loop()
