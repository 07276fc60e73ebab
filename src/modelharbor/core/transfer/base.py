"""What the parts of the transfer service share (TransferBase, the base of each part): its collaborators, the
project lookup and permission check, listings, progress, temporary files and the zip an import reads.

The parts (exports.py, export_zip.py, project_imports.py, import_objects.py, staging.py) are mixed into
``TransferService`` (service.py); they call other services through their public methods only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.files import FileService
from modelharbor.core.identity import IdentityService
from modelharbor.core.secretbox import SecretBox
from modelharbor.core.serving import ServingService
from modelharbor.core.tasks import TaskService
from modelharbor.core.transfer.entities import EXPORT_TASK, IMPORT_TASK, Export, Import
from modelharbor.core.transfer.format import CHUNK, Rejected, TransferLimits
from modelharbor.db.engine import Database
from modelharbor.db.tables import TaskRow, UserRow
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import EnvVarRow
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.transfer")


class TransferBase:
    """The collaborators and helpers every part of TransferService uses."""

    db: Database
    files: FileService
    tasks: TaskService
    identity: IdentityService
    serving: ServingService
    limits: TransferLimits
    work_dir: Path
    box: SecretBox  # seals an import's confirmed selection (it holds the secrets' values) until it is processed

    def _tmp(self, prefix: str) -> Path:
        folder = self.work_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".zip", dir=folder)
        os.close(fd)
        return Path(name)

    def _zip_source(self, file_id: str | None, tmp: Path) -> Path | BinaryIO:
        """The import's zip to read: the stored file itself (read in place) when the store is local, else a copy in
        ``tmp`` (reading a zip seeks: better from a local file than by ranges from S3)."""
        if file_id is not None and self.files.store.kind in ("local", "memory"):
            return self.files.open_reader(file_id)
        self._copy_file(file_id, tmp)
        return tmp

    def _copy_file(self, file_id: str | None, dest: Path) -> None:
        if file_id is None:
            raise Rejected("The import's zip was deleted (through the files API).")
        reader = self.files.open_reader(file_id)
        try:
            with open(dest, "wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
        finally:
            reader.close()

    async def _upload_path(self, principal: Principal, path: Path, name: str, context: str, max_size: int):
        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while piece := f.read(CHUNK):
                    yield piece

        return await self.files.keep(principal, name=name, data=chunks(), context=context, max_size=max_size)

    def _principal(self, user_id: str | None, org_id: str) -> Principal:
        if user_id is None:
            raise InvalidInput("The user who started this no longer exists.")
        return self.identity.principal_by_ids(user_id, org_id)

    @staticmethod
    def _usernames(s: Session, ids: set[str | None]) -> dict[str, str]:
        ids = {i for i in ids if i}
        if not ids:
            return {}
        return dict(s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))).all())

    def _project(self, s: Session, principal: Principal, project: str, *, write: bool = False) -> RegistryProjectRow:
        if isinstance(project, str) and "\x00" in project:  # no row has one (and PostgreSQL refuses it)
            raise NotFound(f"Project {project!r} not found")
        return self.serving.project_row(s, principal, project, write=write)

    def check_write(self, principal: Principal, project: str) -> None:
        with self.db.uow(readonly=True) as s:
            self._project(s, principal, project, write=True)

    def percent(self, item: Export | Import) -> int | None:
        """How far the background task now working on an export or import is (0–100): 100 once completed,
        None when no task works on it (waiting for the confirmation, failed)."""
        if item.status == "completed":
            return 100
        if item.status in ("confirmation", "failed"):
            return None
        kind, key = (EXPORT_TASK, "export_id") if isinstance(item, Export) else (IMPORT_TASK, "import_id")
        with self.db.uow(readonly=True) as s:  # the few tasks of this kind queued or running now
            for payload, pct in s.execute(
                select(TaskRow.payload, TaskRow.percent).where(
                    TaskRow.kind == kind, TaskRow.status.in_(("queued", "running"))
                )
            ):
                if isinstance(payload, dict) and payload.get(key) == item.id:
                    return int(pct or 0)
        return None

    def _listing(self, principal: Principal, project: str, table, statuses, status: str | None, entity) -> list:
        """The project's exports or imports (``table``), newest first, optionally of one status."""
        if status is not None and status not in statuses:
            raise InvalidInput(f"'status' must be one of {', '.join(statuses)}, not {status!r}.")
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            q = select(table).where(table.project_id == p.id)
            if status is not None:
                q = q.where(table.status == status)
            rows = list(s.scalars(q.order_by(table.created_at.desc(), table.id)))
            names = self._usernames(s, {r.created_by for r in rows})
            return [entity(s, p.name, r, names) for r in rows]

    @staticmethod
    def _reason(exc: BaseException, what: str) -> str:
        if isinstance(exc, HarborError):
            return exc.message
        log.exception("the %s failed unexpectedly", what)
        return f"The {what} failed: {type(exc).__name__}: {exc}"

    @staticmethod
    def _level_names(s: Session, p: RegistryProjectRow, did: str | None, vid: str | None) -> set[str]:
        q = select(EnvVarRow.name).where(EnvVarRow.project_id == p.id)
        q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
        q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
        return set(s.scalars(q))
