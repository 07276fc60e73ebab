"""Project exports: a selection of a project's deployments (with versions and their packages), pipelines, custom
environments (with their tags' packages) and environment variables, checked against the project when the export
is created and written to a zip by a background task (task ``project_export``; export_zip.py writes it).

Invariants
- Every name of the selection exists in the project when the export is created (unknown names are refused); base
  environments and services are not exported.
- The zip is written by a thread straight into the files service's upload, which hashes and stores it meanwhile —
  no temporary file, no second pass (core/bridges.py ``stream_from_thread``); its size is bounded by
  ``max_export_size``. A failure fails the export with its reason; an export deleted meanwhile keeps no file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import run_sync, stream_from_thread
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving.validation import truncate, valid_text
from modelharbor.core.transfer.base import TransferBase
from modelharbor.core.transfer.entities import EXPORT_CONTEXT, EXPORT_STATUSES, EXPORT_TASK, Export, OpenedZip
from modelharbor.core.transfer.format import root_name
from modelharbor.core.transfer.selection import as_object, empty_selection, is_id, reject_nul
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentRow,
    PipelineRow,
    PipelineVersionRow,
)
from modelharbor.db.tables_transfer import ProjectExportRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Principal


class Exports(TransferBase):
    """Creating, listing, reading, deleting and building exports (mixed into TransferService)."""

    def create_export(
        self,
        principal: Principal,
        project: str,
        body: Mapping[str, Any],
        *,
        all_objects: bool = False,
        packages: bool = True,
    ) -> Export:
        """An export of the objects ``body`` selects (the transfer format's selection document, JSON: the edges
        send an object), or of everything (``all_objects``), built in the background."""
        reject_nul(body, "export selection")
        description = valid_text(body.get("description"), "description")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            selection = self._everything(s, p) if all_objects else self._check_selection(s, p, body)
            t = now()
            row = ProjectExportRow(
                id=new_uuid(),
                project_id=p.id,
                status="pending",
                error_message=None,
                description=description,
                selection=selection,
                packages=packages,
                file_id=None,
                size=None,
                created_by=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.tasks.enqueue_in(s, EXPORT_TASK, {"export_id": row.id}, org_id=principal.org_id)
            return self._export_entity(s, p.name, row)

    def _check_vars(self, s: Session, p, raw: Any, did: str | None, vid: str | None, where: str, what: str):
        names = self._level_names(s, p, did, vid)
        out = {}
        for name, spec in as_object(raw, what).items():
            if name not in names:
                raise InvalidInput(f"Environment variable {name!r} does not exist at the level of {where}.")
            include = as_object(spec, f"{what}.{name}").get("include_value", False)
            if include is None:
                include = False
            if not isinstance(include, bool):
                raise InvalidInput(f"'include_value' of {name!r} ({where}) must be true or false.")
            out[name] = {"include_value": include}
        return out

    def _check_selection(self, s: Session, p: RegistryProjectRow, body: dict[str, Any]) -> dict[str, Any]:
        """The selection with every name checked against the project (unknown names are refused)."""
        if body.get("services"):
            raise InvalidInput("Services cannot be exported: ModelHarbor projects have none.")
        out = empty_selection()
        for name, spec in as_object(body.get("deployments"), "deployments").items():
            d = s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name))
            if d is None:
                raise InvalidInput(f"Deployment {name!r} does not exist in project {p.name!r}.")
            spec = as_object(spec, f"deployments.{name}")
            versions = {}
            for vname, vspec in as_object(spec.get("versions"), f"deployments.{name}.versions").items():
                v = s.scalar(
                    select(DeploymentVersionRow).where(
                        DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == vname
                    )
                )
                if v is None:
                    raise InvalidInput(f"Deployment {name!r} has no version {vname!r}.")
                what = f"deployments.{name}.versions.{vname}"
                versions[vname] = {
                    "environment_variables": self._check_vars(
                        s,
                        p,
                        as_object(vspec, what).get("environment_variables"),
                        d.id,
                        v.id,
                        f"version {vname!r} of {name!r}",
                        what + ".environment_variables",
                    )
                }
            out["deployments"][name] = {
                "versions": versions,
                "environment_variables": self._check_vars(
                    s,
                    p,
                    spec.get("environment_variables"),
                    d.id,
                    None,
                    f"deployment {name!r}",
                    f"deployments.{name}.environment_variables",
                ),
            }
        for name, spec in as_object(body.get("pipelines"), "pipelines").items():
            pl = s.scalar(select(PipelineRow).where(PipelineRow.project_id == p.id, PipelineRow.name == name))
            if pl is None:
                raise InvalidInput(f"Pipeline {name!r} does not exist in project {p.name!r}.")
            versions = {}
            for vname in as_object(as_object(spec, f"pipelines.{name}").get("versions"), f"pipelines.{name}.versions"):
                if not s.scalar(
                    select(PipelineVersionRow.id).where(
                        PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == vname
                    )
                ):
                    raise InvalidInput(f"Pipeline {name!r} has no version {vname!r}.")
                versions[vname] = {}
            out["pipelines"][name] = {"versions": versions}
        out["environment_variables"] = self._check_vars(
            s, p, body.get("environment_variables"), None, None, "the project", "environment_variables"
        )
        base = set(self.serving.system_environments())
        for name in as_object(body.get("environments"), "environments"):
            if name in base:
                raise InvalidInput(f"{name!r} is a base environment: every server has it; export custom environments.")
            if not s.scalar(
                select(EnvironmentRow.id).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name)
            ):
                raise InvalidInput(f"Environment {name!r} does not exist in project {p.name!r}.")
            out["environments"][name] = {}
        return out

    def _everything(self, s: Session, p: RegistryProjectRow) -> dict[str, Any]:
        out = empty_selection()

        def all_vars(did, vid):
            return {n: {"include_value": True} for n in sorted(self._level_names(s, p, did, vid))}

        for d in s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id).order_by(DeploymentRow.name)):
            versions = {
                v.version: {"environment_variables": all_vars(d.id, v.id)}
                for v in s.scalars(
                    select(DeploymentVersionRow)
                    .where(DeploymentVersionRow.deployment_id == d.id)
                    .order_by(DeploymentVersionRow.version)
                )
            }
            out["deployments"][d.name] = {"versions": versions, "environment_variables": all_vars(d.id, None)}
        for pl in s.scalars(select(PipelineRow).where(PipelineRow.project_id == p.id).order_by(PipelineRow.name)):
            out["pipelines"][pl.name] = {
                "versions": {
                    v: {}
                    for v in s.scalars(
                        select(PipelineVersionRow.version)
                        .where(PipelineVersionRow.pipeline_id == pl.id)
                        .order_by(PipelineVersionRow.version)
                    )
                }
            }
        out["environment_variables"] = all_vars(None, None)
        out["environments"] = {
            name: {}
            for name in s.scalars(
                select(EnvironmentRow.name).where(EnvironmentRow.project_id == p.id).order_by(EnvironmentRow.name)
            )
        }
        return out

    def list_exports(self, principal: Principal, project: str, *, status: str | None = None) -> list[Export]:
        return self._listing(principal, project, ProjectExportRow, EXPORT_STATUSES, status, self._export_entity)

    def get_export(self, principal: Principal, project: str, export_id: str) -> Export:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            return self._export_entity(s, p.name, self._export_row(s, p, export_id))

    def export_file(self, principal: Principal, project: str, export_id: str) -> tuple[str, str]:
        """(file id, download name) of a completed export."""
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            row = self._export_row(s, p, export_id)
            if row.status != "completed":
                raise InvalidInput(f"Export {row.id} is {row.status}: it can be downloaded once completed.")
            if row.file_id is None:
                raise NotFound(f"The zip of export {row.id} was deleted (through the files API).")
            return row.file_id, root_name(p.name, row.id) + ".zip"

    async def open_export_file(
        self, principal: Principal, project: str, export_id: str, range_header: str | None = None
    ) -> OpenedZip:
        """A completed export's zip for reading: (record, satisfied range or None, byte stream, download name)."""
        file_id, name = await asyncio.to_thread(self.export_file, principal, project, export_id)
        return (*await self.files.open(principal, file_id, range_header), name)

    def delete_export(self, principal: Principal, project: str, export_id: str) -> None:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._export_row(s, p, export_id)
            file_id = row.file_id
            s.delete(row)
            s.flush()
            stale = self.files.drop_in(s, file_id) if file_id else []
        self.serving.drop_blobs(stale)

    @staticmethod
    def _export_row(s: Session, p: RegistryProjectRow, export_id: str) -> ProjectExportRow:
        row = s.get(ProjectExportRow, export_id) if is_id(export_id) else None
        if row is None or row.project_id != p.id:
            raise NotFound(f"Export {export_id!r} not found in project {p.name!r}")
        return row

    def _export_entity(
        self, s: Session, project: str, r: ProjectExportRow, names: dict[str, str] | None = None
    ) -> Export:
        names = names if names is not None else self._usernames(s, {r.created_by})
        return Export(
            r.id,
            project,
            r.status,
            truncate(r.error_message),
            r.description or "",
            r.size,
            names.get(r.created_by) if r.created_by else None,
            aware(r.created_at),
            {**empty_selection(), **(r.selection or {})},
            r.packages,
        )

    # --- building an export (a background task) -----------------------------------------------------
    def build_export(self, export_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectExportRow, export_id)
            if row is None:
                return {"export_id": export_id, "status": "gone"}
            if row.status not in ("pending", "processing"):
                return {"export_id": export_id, "status": row.status}
            row.status, row.updated_at = "processing", now()
            p = s.get(RegistryProjectRow, row.project_id)
            org_id, user_id, project = p.org_id, row.created_by, p.name
        try:
            principal = self._principal(user_id, org_id)
            name = root_name(project, export_id) + ".zip"
            # the zip is written by a thread straight into the upload (no temporary file, no second pass)
            record = run_sync(
                stream_from_thread(
                    lambda pipe: self._write_export(export_id, pipe, progress),
                    lambda data: self.files.keep(
                        principal, name=name, data=data, context=EXPORT_CONTEXT, max_size=self.limits.max_export_size
                    ),
                    name="modelharbor-transfer-pipe",
                )
            )
        except Exception as exc:  # noqa: BLE001 - any failure fails the export, with its reason
            message = self._reason(exc, "export")
            with self.db.uow() as s:
                row = s.get(ProjectExportRow, export_id)
                if row is not None:
                    row.status, row.error_message, row.updated_at = "failed", truncate(message), now()
            return {"export_id": export_id, "status": "failed", "error": truncate(message)}
        stale: list[str] = []
        with self.db.uow() as s:
            row = s.get(ProjectExportRow, export_id)
            if row is None:  # deleted while it was built
                stale = self.files.drop_in(s, record.id)
            else:
                row.status, row.file_id, row.size, row.updated_at = "completed", record.id, record.size, now()
        self.serving.drop_blobs(stale)
        progress(100)
        return {"export_id": export_id, "status": "completed", "size": record.size}
