"""Proxied tracking artifacts: a path tree (``<experiment_id>/<run_id>/artifacts/...``,
``<experiment_id>/models/<model_id>/artifacts/...``) over files of the files service.

Each artifact path points at one file record (context ``mlflow-artifact``); bytes stream in and out through the blob
store and are never held in memory whole. Permission follows the experiment named by the first path segment.
Big artifacts can arrive in parts: a multipart upload is an upload-engine session whose completion records the
artifact (parts are PUT to signed URLs, so the part requests need no credentials of their own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import now
from modelharbor.core.files import ByteRange, FileService, LinkSigner, UploadService
from modelharbor.core.identity import IdentityService
from modelharbor.db.engine import Database
from modelharbor.db.tables_tracking import ArtifactRow, ExperimentRow
from modelharbor.domain.entities import ArtifactEntry, FileRecord
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.storage import BlobStore

CONTEXT = "mlflow-artifact"
MPU_CONTEXT = "mlflow-artifact-mpu"
PART_LINK_TTL = 24 * 3600


def clean_path(path: str | None, *, allow_root: bool = False) -> str:
    """A relative artifact path without ``.``/``..``/empty segments; InvalidInput otherwise."""
    path = path or ""
    if path.startswith("/") or "\\" in path or "\x00" in path or ":" in path.split("/", 1)[0]:
        raise InvalidInput(f"invalid artifact path {path!r}: it must be relative")
    path = path.rstrip("/")
    if not path:
        if allow_root:
            return ""
        raise InvalidInput("an artifact path is required")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid artifact path {path!r}: no '.', '..' or empty segments")
    if len(path) > 1024:
        raise InvalidInput("the artifact path is longer than 1024 characters")
    return path


def experiment_of(path: str) -> int:
    head = path.split("/", 1)[0]
    if not head.isdecimal() or len(head) > 12:
        raise NotFound(f"artifact path {path!r} does not start with an experiment id")
    return int(head)


class ArtifactService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        files: FileService,
        uploads: UploadService,
        identity: IdentityService,
        signer: LinkSigner,
    ):
        self.db = db
        self.store = store
        self.files = files
        self.uploads = uploads
        self.identity = identity
        self.signer = signer

    # --- permission ------------------------------------------------------------------------
    @staticmethod
    def _authorize_in(s: Session, principal: Principal, path: str, action: Action) -> int:
        exp_id = experiment_of(path)
        exp = s.get(ExperimentRow, exp_id)
        if exp is None:
            raise NotFound(f"experiment {exp_id} does not exist")
        require(principal, action, exp.org_id, what=f"experiment {exp_id}")
        return exp_id

    def authorize(self, principal: Principal, path: str, action: Action) -> int:
        with self.db.uow(readonly=True) as s:
            return self._authorize_in(s, principal, path, action)

    # --- write -----------------------------------------------------------------------------
    async def put(self, principal: Principal, path: str, data: AsyncIterable[bytes]) -> ArtifactEntry:
        path = clean_path(path)
        await asyncio.to_thread(self.authorize, principal, path, Action.TRACKING_WRITE)
        record = await self.files.upload(principal, name=path.rsplit("/", 1)[-1], data=data, context=CONTEXT)
        try:
            stale = await asyncio.to_thread(self._record, principal, path, record)
        except BaseException:
            await self.files.delete(principal, record.id)
            raise
        await self.store.delete(stale)
        return ArtifactEntry(path, False, record.size)

    def _record(self, principal: Principal, path: str, record: FileRecord) -> list[str]:
        with self.db.uow() as s:
            return self._record_in(s, principal, path, record)

    def _record_in(self, s: Session, principal: Principal, path: str, record: FileRecord) -> list[str]:
        """Point ``path`` at the file; an artifact already there is replaced (its file dropped after commit)."""
        exp_id = self._authorize_in(s, principal, path, Action.TRACKING_WRITE)
        if s.scalar(select(ArtifactRow.path).where(ArtifactRow.path.startswith(path + "/", autoescape=True)).limit(1)):
            raise InvalidInput(f"artifact path {path!r} is a directory")
        old = s.get(ArtifactRow, path)
        stale: list[str] = []
        if old is not None:
            old_file = old.file_id
            old.file_id, old.size, old.created_at = record.id, record.size, now()
            s.flush()
            stale = self.files.drop_in(s, old_file)
        else:
            s.add(ArtifactRow(path=path, experiment_id=exp_id, file_id=record.id, size=record.size, created_at=now()))
            s.flush()
        return stale

    async def delete(self, principal: Principal, path: str) -> None:
        path = clean_path(path)
        stale = await asyncio.to_thread(self._delete, principal, path)
        await self.store.delete(stale)

    def _delete(self, principal: Principal, path: str) -> list[str]:
        with self.db.uow() as s:
            self._authorize_in(s, principal, path, Action.TRACKING_WRITE)
            rows = list(
                s.scalars(
                    select(ArtifactRow).where(
                        (ArtifactRow.path == path) | ArtifactRow.path.startswith(path + "/", autoescape=True)
                    )
                )
            )
            if not rows:
                raise NotFound(f"artifact {path!r} not found")
            file_ids = [r.file_id for r in rows]
            s.execute(delete(ArtifactRow).where(ArtifactRow.path.in_([r.path for r in rows])))
            s.flush()
            stale: list[str] = []
            for fid in file_ids:
                stale += self.files.drop_in(s, fid)
            return stale

    # --- read ------------------------------------------------------------------------------
    def _file_of(self, principal: Principal, path: str) -> str:
        with self.db.uow(readonly=True) as s:
            self._authorize_in(s, principal, path, Action.TRACKING_READ)
            row = s.get(ArtifactRow, path)
            if row is None:
                raise NotFound(f"artifact {path!r} not found")
            return row.file_id

    async def open(
        self, principal: Principal, path: str, range_header: str | None = None
    ) -> tuple[FileRecord, ByteRange | None, AsyncIterator[bytes]]:
        path = clean_path(path)
        file_id = await asyncio.to_thread(self._file_of, principal, path)
        return await self.files.open(principal, file_id, range_header)

    def list(self, principal: Principal, path: str | None) -> list[ArtifactEntry]:
        """The direct children of directory ``path`` (names relative to it); [] when ``path`` is a file or empty."""
        path = clean_path(path, allow_root=True)
        if not path:
            return []  # the root lists experiments, which are not artifacts
        with self.db.uow(readonly=True) as s:
            self._authorize_in(s, principal, path, Action.TRACKING_READ)
            prefix = path + "/"
            rows = s.execute(
                select(ArtifactRow.path, ArtifactRow.size).where(ArtifactRow.path.startswith(prefix, autoescape=True))
            ).all()
        entries: dict[str, ArtifactEntry] = {}
        for full, size in rows:
            rest = full[len(prefix) :]
            name, slash, _ = rest.partition("/")
            if slash:
                entries[name] = ArtifactEntry(name, True, None)
            elif name not in entries:
                entries[name] = ArtifactEntry(name, False, size)
        return sorted(entries.values(), key=lambda e: e.path)

    # --- multipart uploads -----------------------------------------------------------------
    def create_multipart(self, principal: Principal, path: str, num_parts: int) -> tuple[str, list[tuple[int, str]]]:
        """Start a session for ``path`` in ``num_parts`` parts; returns its id and (part number, link query) pairs."""
        path = clean_path(path)
        self.authorize(principal, path, Action.TRACKING_WRITE)
        if not isinstance(num_parts, int) or num_parts < 1:
            raise InvalidInput("num_parts must be a positive integer")
        session = self.uploads.start(
            principal,
            name=path.rsplit("/", 1)[-1],
            total_chunks=num_parts,
            context=MPU_CONTEXT,
            meta={"artifact_path": path},
        )
        links = []
        for n in range(1, num_parts + 1):
            link = self.signer.sign(session.id, PART_LINK_TTL, extra=str(n))
            links.append((n, f"expires={link.expires}&nonce={link.nonce}&sig={link.signature}"))
        return session.id, links

    def _session_path(self, principal: Principal, upload_id: str, path: str) -> None:
        session = self.uploads.status(principal, upload_id)
        if session.context != MPU_CONTEXT or session.meta.get("artifact_path") != path:
            raise NotFound(f"multipart upload {upload_id!r} for {path!r} not found")

    async def put_part(
        self, upload_id: str, part_number: int, expires: str, nonce: str, mac: bytes, data: AsyncIterable[bytes]
    ) -> None:
        self.signer.verify(upload_id, expires, nonce, mac, extra=str(part_number))
        session = await asyncio.to_thread(self._session_owner, upload_id)
        principal = await asyncio.to_thread(self.identity.principal_by_ids, session[0], session[1])
        await self.uploads.put_chunk(principal, upload_id, data, number=part_number - 1)

    def _session_owner(self, upload_id: str) -> tuple[str, str]:
        from modelharbor.db.tables import UploadSessionRow

        with self.db.uow(readonly=True) as s:
            row = s.get(UploadSessionRow, upload_id)
            if row is None or row.context != MPU_CONTEXT:
                raise NotFound(f"multipart upload {upload_id!r} not found")
            return row.owner_id, row.org_id

    async def complete_multipart(self, principal: Principal, path: str, upload_id: str) -> ArtifactEntry:
        path = clean_path(path)
        await asyncio.to_thread(self._session_path, principal, upload_id, path)
        done = await self.uploads.complete(principal, upload_id)
        stale = await asyncio.to_thread(self._record, principal, path, done.file)
        await self.store.delete(stale)
        return ArtifactEntry(path, False, done.file.size)

    async def abort_multipart(self, principal: Principal, path: str, upload_id: str) -> None:
        path = clean_path(path)
        await asyncio.to_thread(self._session_path, principal, upload_id, path)
        await self.uploads.abort(principal, upload_id)
