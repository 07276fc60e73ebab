"""TransferService: the facade over the transfer modules (a thin class composed of their parts); its constructor
wires the collaborators, the hook that removes a deleted project's exports and imports, and the owner of the
staged prefixes (whose unfinished writes the pending-objects sweep leaves alone)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.files import FileService
from modelharbor.core.identity import IdentityService
from modelharbor.core.secretbox import SecretBox
from modelharbor.core.serving import ServingService
from modelharbor.core.tasks import TaskService
from modelharbor.core.transfer.export_zip import ExportZip
from modelharbor.core.transfer.exports import Exports
from modelharbor.core.transfer.format import TransferLimits
from modelharbor.core.transfer.import_objects import ImportObjects
from modelharbor.core.transfer.project_imports import Imports
from modelharbor.core.transfer.staging import STAGE_ROOT, Staging, live_staged, staged_prefixes
from modelharbor.db.engine import Database
from modelharbor.db.tables_transfer import ProjectExportRow, ProjectImportRow

if TYPE_CHECKING:
    from modelharbor.settings import Settings


class TransferService(Exports, ExportZip, Imports, ImportObjects, Staging):
    """Project exports and imports (one instance per server process)."""

    def __init__(
        self,
        db: Database,
        files: FileService,
        tasks: TaskService,
        identity: IdentityService,
        serving: ServingService,
        *,
        secret_key: str,
        work_dir: Path,
        limits: TransferLimits | None = None,
    ):
        self.db = db
        self.files = files
        self.tasks = tasks
        self.identity = identity
        self.serving = serving
        self.limits = limits or TransferLimits()
        self.work_dir = Path(work_dir)
        self.box = SecretBox(secret_key, "project-imports")
        serving.projects.on_delete.append(self._delete_project_transfers)
        files.pending.add_owner(STAGE_ROOT, live_staged)

    @classmethod
    def from_settings(cls, settings: Settings, db, files, tasks, identity, serving) -> TransferService:
        return cls(
            db,
            files,
            tasks,
            identity,
            serving,
            secret_key=settings.resolved_secret_key(),
            work_dir=settings.data_dir.resolve() / "transfer",
            limits=TransferLimits.from_settings(settings),
        )

    def _delete_project_transfers(self, s: Session, project_id: str) -> list[str]:
        stale: list[str] = []
        for model in (ProjectExportRow, ProjectImportRow):
            for row in list(s.scalars(select(model).where(model.project_id == project_id))):
                file_id = row.file_id
                if isinstance(row, ProjectImportRow):  # packages an interrupted import wrote (no worker can
                    stale += self._staged_garbage(staged_prefixes(row.created), s)  # commit them: no row)
                s.delete(row)
                s.flush()
                if file_id:
                    stale += self.files.drop_in(s, file_id)
        return stale
