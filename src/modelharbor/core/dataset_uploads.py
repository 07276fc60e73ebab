"""Resumable uploads into a dataset's head: a batch of files (Domino's *upload key*), each file an upload session of
the upload engine (core/files/uploads.py), landed in the head together when the batch ends.

How it goes (the Domino client's ``datasets_upload_files``, the native API and the CLI alike):

- :meth:`DatasetUploads.start` opens a batch for a dataset the caller may write (DatasetRwEditor), with a collision
  setting: ``Ignore`` (a file whose path is taken is skipped), ``Overwrite`` (it replaces the file there) or
  ``Rename`` (it lands as ``name_1.ext``, ``name_2.ext``…).
- :meth:`DatasetUploads.put_chunk` streams one chunk of one file (its relative path, its identifier, its size and
  chunking) into that file's session, opened by the file's first chunk; the client's MD5 is checked as the bytes go
  by (a mismatch keeps nothing). Chunks come in any order and in parallel; a re-sent chunk replaces the old one.
- :meth:`DatasetUploads.has_chunk` answers the client's "test": does the server hold this chunk already? Within a
  batch a chunk is only ever tested before it is sent, so the answer comes from an *earlier* batch of the same user
  on the same dataset that never ended (a client killed mid-upload): the file holding a chunk with this identifier,
  number and MD5 is taken over (``adopted``) by the new batch, with every chunk it has, and the client skips what
  matches. A chunk already confirmed for one adopted file is not confirmed again for another file of the same
  identifier, so files that share one (same size and base name) each keep their own chunks.
- :meth:`DatasetUploads.end` completes every file's session (no byte copied: chunks become the blob's segments) and
  lands them all in one transaction: one new head, each changed directory node written once. A file the batch
  misses chunks of is a 400 naming it (nothing lands; the batch stays open). Ending again answers the same.
- :meth:`DatasetUploads.cancel` drops the batch and its chunks.

Permission: the caller's role on the dataset (DatasetRwEditor) is checked when a batch opens and again when it
lands (``end``, in the landing transaction); in between, chunks and tests touch only the caller's own batch (another
user's key is an unknown key), so a role taken away meanwhile stops the landing, not the bytes already sent.

Crash safety: a chunk is acknowledged only after its row is committed (the engine's invariant); a crash before
``end`` lands leaves the batch open, and ending it again (or the client's re-run, which adopts its files) finishes
the job. Expired batches are swept with their sessions (:meth:`DatasetUploads.sweep`).
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core import dataset_access as access
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.datasets import dataset_row
from modelharbor.core.files.uploads import COMPLETED, OPEN, UploadService
from modelharbor.core.files.usage import PROJECT_FILE
from modelharbor.core.ids import well_formed
from modelharbor.core.project_files import FileEntry, trees
from modelharbor.core.project_files.paths import normalise, split
from modelharbor.db.engine import Database
from modelharbor.db.tables import FileRow, UploadChunkRow, UploadSessionRow
from modelharbor.db.tables_datasets import DatasetUploadFileRow, DatasetUploadRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow
from modelharbor.domain.entities import ChunkInfo, FileRecord
from modelharbor.domain.errors import Conflict, Gone, InvalidInput
from modelharbor.domain.principal import Principal

COLLISIONS = ("Ignore", "Overwrite", "Rename")
ENDED, CANCELLED = "ended", "cancelled"
MAX_IDENTIFIER = 300
MAX_FILES = 100_000  # files one batch may hold
COMPLETING = 4  # file sessions completed at once when a batch ends


@dataclass(frozen=True)
class UploadFile:
    path: str
    identifier: str
    size: int | None
    total_chunks: int
    received: tuple[int, ...]  # chunk numbers held (from 0)
    adopted: bool


@dataclass(frozen=True)
class DatasetUpload:
    key: str
    dataset_id: str
    collision: str
    state: str  # open | ended | cancelled | expired
    created_at: datetime
    expires_at: datetime
    files: tuple[UploadFile, ...] = ()


@dataclass(frozen=True)
class Landed:
    """What ending a batch did: the files written (final paths), those skipped (``Ignore`` and a taken path) and
    those renamed (path sent → path landed)."""

    key: str
    written: list[FileEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


def _path_key(path: str) -> str:
    return hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()


def _renamed(parts: list[str], n: int) -> list[str]:
    stem, ext = posixpath.splitext(parts[-1])
    if not stem:  # ".env" → ".env_1"
        stem, ext = parts[-1], ""
    return [*parts[:-1], f"{stem}_{n}{ext}"]


class DatasetUploads:
    def __init__(self, db: Database, uploads: UploadService, *, session_ttl: int):
        self.db = db
        self.uploads = uploads
        self.files = uploads.files
        self.session_ttl = session_ttl

    # --- the batch ------------------------------------------------------------------------------------------------
    def start(self, principal: Principal, dataset_id: str, collision: str = "Ignore") -> DatasetUpload:
        """Open a batch for files of the dataset's head (DatasetRwEditor)."""
        if collision not in COLLISIONS:
            raise InvalidInput(
                f"'fileCollisionSetting' must be one of {', '.join(COLLISIONS)}, not {str(collision)[:40]!r}",
                field="fileCollisionSetting",
            )
        with self.db.uow() as s:
            row, _, _ = dataset_row(s, principal, dataset_id, access.EDITOR)
            up = DatasetUploadRow(
                id=new_uuid(),
                org_id=principal.org_id,
                dataset_id=row.id,
                owner_id=principal.user_id,
                collision=collision,
                state=OPEN,
                result={},
                created_at=now(),
                expires_at=now() + timedelta(seconds=self.session_ttl),
                ended_at=None,
                files=0,
            )
            s.add(up)
            s.flush()
            return self._entity(s, up, with_files=False)

    def _batch(
        self, s: Session, principal: Principal, dataset_id: str, key: str, *, lock: bool = False, need: str = ""
    ) -> DatasetUploadRow:
        """The caller's batch ``key`` of the dataset (another user's reads as unknown: a 400, as the client's key
        is a parameter); with ``need``, the caller's role on the dataset is checked again."""
        row = None
        if well_formed(key):
            q = select(DatasetUploadRow).where(DatasetUploadRow.id == key)
            row = s.scalar(q.with_for_update().execution_options(populate_existing=True) if lock else q)
        if (
            row is None
            or row.owner_id != principal.user_id
            or row.org_id != principal.org_id
            or (row.dataset_id != dataset_id)
        ):
            raise InvalidInput(f"unknown upload key {key[:64]!r} for dataset {dataset_id[:64]!r}", field="key")
        if need:
            dataset_row(s, principal, dataset_id, need)
        return row

    @staticmethod
    def _require_open(row: DatasetUploadRow) -> None:
        if row.state == ENDED:
            raise Conflict("this upload has ended: its files are in the dataset; start a new upload")
        if row.state == CANCELLED:
            raise Gone("this upload was cancelled; start a new one")
        if aware(row.expires_at) <= now():
            raise Gone("this upload has expired; start a new one")

    def _entity(self, s: Session, row: DatasetUploadRow, *, with_files: bool = True) -> DatasetUpload:
        state = row.state
        if state == OPEN and aware(row.expires_at) <= now():
            state = "expired"
        files: list[UploadFile] = []
        if with_files:
            F = DatasetUploadFileRow
            rows = s.execute(
                select(F, UploadSessionRow)
                .join(UploadSessionRow, UploadSessionRow.id == F.session_id)
                .where(F.upload_id == row.id)
                .order_by(F.path)
            ).all()
            held: dict[str, list[int]] = {f.session_id: [] for f, _ in rows}
            C = UploadChunkRow
            numbers = select(C.session_id, C.number).join(F, F.session_id == C.session_id).where(F.upload_id == row.id)
            for sid, number in s.execute(numbers):
                held[sid].append(number)
            for f, sess in rows:
                done = sess.state == COMPLETED
                received = range(sess.total_chunks) if done else sorted(held[f.session_id])
                files.append(UploadFile(f.path, f.identifier, sess.size, sess.total_chunks, tuple(received), f.adopted))
        return DatasetUpload(
            row.id, row.dataset_id, row.collision, state, aware(row.created_at), aware(row.expires_at), tuple(files)
        )

    def get(self, principal: Principal, dataset_id: str, key: str) -> DatasetUpload:
        """The batch with its files and the chunks held of each (what a resuming client skips)."""
        with self.db.uow(readonly=True) as s:
            return self._entity(s, self._batch(s, principal, dataset_id, key))

    def list_open(self, principal: Principal, dataset_id: str) -> list[DatasetUpload]:
        """The caller's open, unexpired batches on the dataset, newest first (reader role suffices to ask)."""
        with self.db.uow(readonly=True) as s:
            dataset_row(s, principal, dataset_id, access.READER)
            U = DatasetUploadRow
            rows = s.scalars(
                select(U)
                .where(U.dataset_id == dataset_id, U.owner_id == principal.user_id, U.state == OPEN)
                .where(U.expires_at > now())
                .order_by(U.created_at.desc())
                .limit(20)
            )
            return [self._entity(s, r) for r in rows]

    # --- chunks ---------------------------------------------------------------------------------------------------
    def has_chunk(
        self, principal: Principal, dataset_id: str, key: str, identifier: str, number: int, md5: str
    ) -> bool:
        """The client's test: True when the batch holds chunk ``number`` (from 0) with this MD5 for a file of this
        identifier — only ever for files taken over from the caller's earlier unfinished batch (the module says
        why); False: send it."""
        md5 = _md5(md5)
        identifier = _identifier(identifier)
        if not isinstance(number, int) or number < 0:
            raise InvalidInput("the chunk number must be ≥ 1", field="resumableChunkNumber")
        F, C, U = DatasetUploadFileRow, UploadChunkRow, DatasetUploadRow
        match = (
            select(F)
            .join(C, C.session_id == F.session_id)
            .join(UploadSessionRow, UploadSessionRow.id == F.session_id)
            .where(F.identifier == identifier, C.number == number, C.md5 == md5, UploadSessionRow.state == OPEN)
        )
        adopted = match.where(F.upload_id == key, F.adopted.is_(True)).order_by(F.id)
        taken = select(F.path_key).where(F.upload_id == key)
        earlier = (
            match.join(U, U.id == F.upload_id)
            .where(U.dataset_id == dataset_id, U.owner_id == principal.user_id, U.state == OPEN)
            .where(U.id != key, U.expires_at > now(), F.path_key.not_in(taken))
            .order_by(U.created_at, F.id)
            .limit(1)
        )
        with self.db.uow(readonly=True) as s:  # the usual answer (nothing held: send it) takes no lock
            self._require_open(self._batch(s, principal, dataset_id, key))
            if s.scalar(adopted.limit(1)) is None and s.scalar(earlier) is None:
                return False
        with self.db.uow() as s:
            batch = self._batch(s, principal, dataset_id, key, lock=True)
            self._require_open(batch)
            for f in s.scalars(adopted):
                if number not in (f.confirmed or []):
                    f.confirmed = [*(f.confirmed or []), number]
                    return True
            f = s.scalar(earlier)
            if f is None:
                return False
            earlier_batch = s.get(U, f.upload_id, with_for_update=True)
            if earlier_batch is not None:
                earlier_batch.files -= 1
            f.upload_id, f.adopted, f.confirmed = key, True, [number]
            batch.files += 1
            return True

    async def put_chunk(
        self,
        principal: Principal,
        dataset_id: str,
        key: str,
        data: AsyncIterable[bytes],
        *,
        path: str,
        identifier: str,
        size: int,
        total_chunks: int,
        chunk_size: int,
        number: int,
        md5: str | None,
    ) -> ChunkInfo:
        """Stream chunk ``number`` (from 0) of the file ``path`` (relative, ``/``-separated) into the batch; the
        file's session opens with its first chunk (its size, count and size of chunks then fixed)."""
        norm = normalise(path, field="path", root_ok=False)
        identifier = _identifier(identifier)
        session_id, bounds = await asyncio.to_thread(
            self._session_for, principal, dataset_id, key, norm, identifier, size, total_chunks, chunk_size, number
        )
        return await self.uploads.put_chunk(principal, session_id, data, number=number, md5=md5, bounds=bounds)

    def _session_for(
        self,
        principal: Principal,
        dataset_id: str,
        key: str,
        path: str,
        identifier: str,
        size: int,
        total_chunks: int,
        chunk_size: int,
        number: int,
    ) -> tuple[str, tuple[int | None, int | None]]:
        """The file's session in the batch (opened with its first chunk) and the upload engine's precheck of chunk
        ``number``, in the same transaction."""
        F = DatasetUploadFileRow
        with self.db.uow(readonly=True) as s:  # a file's later chunks: its session is known, no write lock taken
            self._require_open(self._batch(s, principal, dataset_id, key))
            f = s.scalar(select(F).where(F.upload_id == key, F.path_key == _path_key(path)))
            if f is not None:
                sid = self._same_file(s, f, path, identifier, size, total_chunks)
                return sid, self.uploads.precheck_in(s, principal, sid, number)
        with self.db.uow() as s:
            batch = self._batch(s, principal, dataset_id, key, lock=True)
            self._require_open(batch)
            f = s.scalar(select(F).where(F.upload_id == key, F.path_key == _path_key(path)))
            if f is not None:
                sid = self._same_file(s, f, path, identifier, size, total_chunks)
                return sid, self.uploads.precheck_in(s, principal, sid, number)
            if batch.files >= MAX_FILES:
                raise InvalidInput(f"one upload holds at most {MAX_FILES} files; end this one and start another")
            sess = self.uploads.start_in(
                s,
                principal,
                name=split(path)[-1],
                total_chunks=total_chunks,
                size=size,
                context=PROJECT_FILE,
                extension=None,
                meta={"dataset_upload": key, "path": path},
                chunk_size=chunk_size,
            )
            s.add(F(upload_id=key, path_key=_path_key(path), path=path, identifier=identifier, session_id=sess.id,
                    adopted=False, confirmed=[]))  # fmt: skip
            batch.files += 1
            return sess.id, self.uploads.precheck_in(s, principal, sess.id, number)

    @staticmethod
    def _same_file(
        s: Session, f: DatasetUploadFileRow, path: str, identifier: str, size: int, total_chunks: int
    ) -> str:
        """The session of a file the batch has, if the chunk describes the same file."""
        sess = s.get(UploadSessionRow, f.session_id)
        if f.identifier != identifier or sess is None or (sess.size, sess.total_chunks) != (size, total_chunks):
            raise InvalidInput(
                f"{path!r} is already in this upload as {f.identifier!r} in "
                f"{sess.total_chunks if sess else '?'} chunk(s); the file changed: start a new upload",
                field="resumableIdentifier",
            )
        return f.session_id

    # --- ending ---------------------------------------------------------------------------------------------------
    async def end(self, principal: Principal, dataset_id: str, key: str, target: str = "") -> Landed:
        """Complete every file of the batch and land them under ``target`` (a directory of the head; the root when
        empty) with the batch's collision setting, in one transaction. Ending again answers the same."""
        prefix = split(normalise(target or "", field="targetRelativePath"))
        pending = await asyncio.to_thread(self._ending, principal, dataset_id, key)
        if isinstance(pending, Landed):
            return pending
        sem = asyncio.Semaphore(COMPLETING)

        async def complete(path: str, session_id: str) -> tuple[str, FileRecord]:
            async with sem:
                return path, (await self.uploads.complete(principal, session_id)).file

        done = await asyncio.gather(*(complete(p, sid) for p, sid in pending))
        landed, stale = await asyncio.to_thread(self._land, principal, dataset_id, key, prefix, done)
        await self.files.store.delete(stale)
        return landed

    def _ending(self, principal: Principal, dataset_id: str, key: str) -> Landed | list[tuple[str, str]]:
        """The stored answer of an ended batch, or its files (path, session), all complete (else a 400 naming
        the files that miss chunks)."""
        F, C = DatasetUploadFileRow, UploadChunkRow
        with self.db.uow(readonly=True) as s:
            batch = self._batch(s, principal, dataset_id, key, need=access.EDITOR)
            if batch.state == ENDED:
                return _landed(batch)
            self._require_open(batch)
            rows = s.execute(
                select(F.path, F.session_id, UploadSessionRow.total_chunks, UploadSessionRow.state)
                .join(UploadSessionRow, UploadSessionRow.id == F.session_id)
                .where(F.upload_id == key)
                .order_by(F.path)
            ).all()
            counted = (
                select(C.session_id, func.count())
                .join(F, F.session_id == C.session_id)
                .where(F.upload_id == key)
                .group_by(C.session_id)
            )
            held: dict[str, int] = dict(s.execute(counted).all())
            missing = [
                f"{path} ({held.get(sid, 0)} of {total} chunks)"
                for path, sid, total, state in rows
                if state != COMPLETED and held.get(sid, 0) < total
            ]
            if missing:
                shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
                raise InvalidInput(
                    f"the upload misses chunks of {len(missing)} file(s): {shown}; send them and end again",
                    code="MISSING_CHUNKS",
                )
            return [(path, sid) for path, sid, _, _ in rows]

    def _land(
        self,
        principal: Principal,
        dataset_id: str,
        key: str,
        prefix: list[str],
        done: list[tuple[str, FileRecord]],
    ) -> tuple[Landed, list[str]]:
        with self.db.uow() as s:
            batch = self._batch(s, principal, dataset_id, key, lock=True)
            if batch.state == ENDED:  # a concurrent end won
                return _landed(batch), []
            self._require_open(batch)
            row, project, _ = dataset_row(s, principal, dataset_id, access.EDITOR, lock=True)
            edit = trees.TreeEdit(s, project.id, row.head_tree)
            ms = int(now().timestamp() * 1000)
            landed = Landed(key)
            stale: list[str] = []
            B = ProjectFileBlobRow
            wanted = {record.sha256[:40] for _, record in done}
            held = set(  # the contents the project holds already, in one query (not a lookup and a flush per file)
                s.scalars(select(B.key).where(B.project_id == project.id, B.key.in_(wanted))) if wanted else ()
            )
            for path, record in done:
                parts = prefix + split(path)
                final = self._place(edit, parts, batch.collision, path)
                if final is None:
                    landed.skipped.append(path)
                    stale += self.files.drop_in(s, record.id)
                    continue
                blob = record.sha256[:40]
                if blob not in held:
                    s.add(B(project_id=project.id, key=blob, file_id=record.id, size=record.size, in_files=False))
                    held.add(blob)
                else:  # the project holds this content already (or the batch, twice): the record is redundant
                    stale += self.files.drop_in(s, record.id)
                edit.put(final, blob, record.size, ms)
                shown = "/".join(final)
                if final != parts:
                    landed.renamed[path] = shown
                landed.written.append(FileEntry(shown, final[-1], False, blob, record.size, ms))
            row.head_tree = edit.commit(ms)
            batch.state, batch.ended_at = ENDED, now()
            batch.result = {
                "written": [[e.path, e.key, e.size, e.modified_ms] for e in landed.written],
                "skipped": landed.skipped,
                "renamed": landed.renamed,
            }
            return landed, stale

    @staticmethod
    def _place(edit: trees.TreeEdit, parts: list[str], collision: str, sent: str) -> list[str] | None:
        """Where a file lands by the collision setting: ``parts``, a renamed path, or None (skipped)."""
        kind = edit.kind(parts)
        if kind is None or (kind == trees.FILE and collision == "Overwrite"):
            return parts
        if collision == "Ignore":
            return None
        if kind == trees.BLOCKED or collision == "Overwrite":
            what = "a directory" if kind == trees.DIR else "under a file"
            raise Conflict(
                f"{'/'.join(parts)!r} (sent as {sent!r}) is {what} in the dataset: it cannot be written there; "
                "move it, or upload with fileCollisionSetting Ignore"
            )
        n = 1
        while edit.kind(candidate := _renamed(parts, n)) is not None:
            n += 1
        return candidate

    # --- cancelling and sweeping ----------------------------------------------------------------------------------
    async def cancel(self, principal: Principal, dataset_id: str, key: str) -> None:
        """Drop the batch and what it received (cancelling twice is no error; an ended batch cannot be)."""
        open_sessions, stale = await asyncio.to_thread(self._cancel, principal, dataset_id, key)
        await self.files.store.delete(stale)
        for session_id in open_sessions:
            await self.uploads.abort(principal, session_id)

    def _cancel(self, principal: Principal, dataset_id: str, key: str) -> tuple[list[str], list[str]]:
        with self.db.uow() as s:
            batch = self._batch(s, principal, dataset_id, key, lock=True)
            if batch.state == ENDED:
                raise Conflict("this upload has ended: its files are in the dataset (delete them instead)")
            if batch.state == CANCELLED:
                return [], []
            batch.state, batch.ended_at = CANCELLED, now()
            return self._release(s, batch.id)

    def _release(self, s: Session, key: str) -> tuple[list[str], list[str]]:
        """A closed batch's open sessions (to abort) and the keys of its completed, never landed files' records."""
        F = DatasetUploadFileRow
        rows = s.execute(
            select(UploadSessionRow.id, UploadSessionRow.state, UploadSessionRow.file_id)
            .join(F, F.session_id == UploadSessionRow.id)
            .where(F.upload_id == key)
        ).all()
        stale: list[str] = []
        for _, state, file_id in rows:
            if state == COMPLETED and file_id and s.get(FileRow, file_id) is not None:
                stale += self.files.drop_in(s, file_id)
        return [sid for sid, state, _ in rows if state == OPEN], stale

    async def sweep(self) -> int:
        """Close expired open batches (records of completed, never landed files are dropped; their open sessions
        expire with the engine's sweep) and forget closed batches a day past their expiry; how many were closed."""
        closed = await asyncio.to_thread(self._expire)
        for stale in closed:
            await self.files.store.delete(stale)
        return len(closed)

    def _expire(self) -> list[list[str]]:
        U = DatasetUploadRow
        with self.db.uow() as s:
            rows = list(
                s.scalars(
                    select(U).where(U.state == OPEN, U.expires_at <= now()).limit(200).with_for_update(skip_locked=True)
                )
            )
            out = []
            for row in rows:
                row.state, row.ended_at = CANCELLED, now()
                out.append(self._release(s, row.id)[1])
            s.execute(delete(U).where(U.state != OPEN, U.expires_at <= now() - timedelta(days=1)))
            return out


def _landed(batch: DatasetUploadRow) -> Landed:
    r = batch.result or {}
    written = [FileEntry(p, p.rsplit("/", 1)[-1], False, k, n, ms) for p, k, n, ms in r.get("written", [])]
    return Landed(batch.id, written, list(r.get("skipped", [])), dict(r.get("renamed", {})))


def _md5(value: str) -> str:
    if not isinstance(value, str) or len(value) != 32 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InvalidInput("'checksum' must be the chunk's MD5 in hex (32 characters 0-9, A-F)", field="checksum")
    return value.lower()


def _identifier(value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER or "\x00" in value:
        raise InvalidInput(
            f"'resumableIdentifier' must be 1 to {MAX_IDENTIFIER} characters without NUL", field="resumableIdentifier"
        )
    return value
