"""Pipelines: deployments chained into a graph, answered as one request.

A pipeline declares its input and output like a deployment. A pipeline **version** holds **objects** (each a
deployment, optionally pinned to a version) and **attachments**: for a destination (an object or
``pipeline_end``), the sources (objects or ``pipeline_start``) whose output fields feed its input fields. A
request runs the objects in dependency order; each object starts once all its sources answered, objects
whose sources are ready run concurrently, and the first failure fails the pipeline (with the object named).

Validated when a version is saved: known deployments and versions, field mappings between declared fields of
matching types, every object fed, ``pipeline_end`` fed, and no cycles.

**Requests** mirror deployment requests (core/serving/requests.py): a direct request is kept as the version's
``request_retention_mode`` says (``none``: not kept; ``metadata``: status, error, times and what each object did;
``full``: also the request data and result); each object's call is a deployment request of its own (kept as *its*
version says), and its id, status and times are kept under the pipeline request (``deployment_requests``). Batch
(asynchronous) requests are queued (task ``pipeline_batch``) and answered by the background workers; they are kept
whatever the mode (their result is how they are read; their input only with ``full``), can be cancelled while
pending or processing, and are polled with :meth:`PipelineService.get_request`. Kept requests older than the
version's ``request_retention_time`` are deleted by the serving sweep (``ServingService.sweep_requests``).

Permission: reading requests takes ``SERVING_READ``; creating, cancelling and deleting them ``SERVING_REQUEST``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving import request_history as kept
from modelharbor.core.serving.entities import Pipeline, PipelineVersion
from modelharbor.core.serving.lookup import named_row
from modelharbor.core.serving.pipeline_graph import PipelineGraph
from modelharbor.core.serving.pipeline_requests import PipelineRequests
from modelharbor.core.serving.request_history import bounded_int
from modelharbor.core.serving.service import ServingService
from modelharbor.core.serving.validation import (
    fields_json,
    fields_of,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
    valid_retention_mode,
    valid_text,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    PipelineRequestRow,
    PipelineRow,
    PipelineVersionRow,
)
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound
from modelharbor.domain.inputs import DeploymentPatch, PipelineIn, PipelineVersionIn, Unset
from modelharbor.domain.principal import Principal

if TYPE_CHECKING:
    from modelharbor.core.identity import IdentityService


class PipelineService(PipelineGraph, PipelineRequests, kept.KeptRequests):
    kept_table, kept_versions = PipelineRequestRow, PipelineVersionRow  # kept requests: see KeptRequests
    kept_owner_column, kept_what = "pipeline_id", "pipeline"

    def __init__(self, db: Database, serving: ServingService, identity: IdentityService | None = None):
        self.db = db
        self.serving = serving
        self.identity = identity  # to act as a batch request's creator in the background
        serving.on_delete_deployment.append(self._refuse_if_used)
        serving.on_delete_version.append(self._refuse_if_version_used)
        serving.on_sweep_requests.append(self._sweep_requests)
        serving.projects.on_delete.append(self._delete_project_pipelines)

    @staticmethod
    def _delete_project_pipelines(s: Session, project_id: str) -> list[str]:
        ids = select(PipelineRow.id).where(PipelineRow.project_id == project_id)
        s.execute(delete(PipelineRequestRow).where(PipelineRequestRow.pipeline_id.in_(ids)))
        s.execute(delete(PipelineVersionRow).where(PipelineVersionRow.pipeline_id.in_(ids)))
        s.execute(delete(PipelineRow).where(PipelineRow.project_id == project_id))
        return []

    # --- pipelines ------------------------------------------------------------------------------
    def create_pipeline(self, principal: Principal, project: str, spec: PipelineIn) -> Pipeline:
        name = valid_name(spec.name, "pipeline")
        input_type = valid_io_type(spec.input_type, "input_type")
        output_type = valid_io_type(spec.output_type, "output_type")
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            if s.scalar(select(PipelineRow.id).where(PipelineRow.project_id == p.id, PipelineRow.name == name)):
                raise Conflict(f"Pipeline {name!r} already exists in project {p.name!r}.")
            t = now()
            row = PipelineRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=valid_text(spec.description, "description"),
                input_type=input_type,
                output_type=output_type,
                input_fields=valid_fields(fields_json(spec.input_fields), "input_fields", input_type),
                output_fields=valid_fields(fields_json(spec.output_fields), "output_fields", output_type),
                labels=valid_labels(spec.labels),
                default_version_id=None,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._pipeline_entity(s, p.name, row)

    def list_pipelines(self, principal: Principal, project: str) -> list[Pipeline]:
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            rows = s.scalars(select(PipelineRow).where(PipelineRow.project_id == p.id).order_by(PipelineRow.name))
            return [self._pipeline_entity(s, p.name, r) for r in rows]

    def get_pipeline(self, principal: Principal, project: str, name: str) -> Pipeline:
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            return self._pipeline_entity(s, p.name, self._pipeline_row(s, p, name))

    def update_pipeline(self, principal: Principal, project: str, name: str, change: DeploymentPatch) -> Pipeline:
        """A change of the pipeline (as a deployment's: name, description, labels, fields, default version)."""
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            row = self._pipeline_row(s, p, name)
            if change.name not in (None, row.name):
                new = valid_name(change.name, "pipeline")
                if s.scalar(select(PipelineRow.id).where(PipelineRow.project_id == p.id, PipelineRow.name == new)):
                    raise Conflict(f"Pipeline {new!r} already exists in project {p.name!r}.")
                row.name = new
            if change.description is not None:
                row.description = valid_text(change.description, "description")
            if change.labels is not None:
                row.labels = valid_labels(change.labels)
            if change.input_fields is not None or change.output_fields is not None:
                if s.scalar(select(PipelineVersionRow.id).where(PipelineVersionRow.pipeline_id == row.id).limit(1)):
                    raise InvalidInput("Change the fields of a pipeline before it has versions (or delete them).")
                if change.input_fields is not None:
                    row.input_fields = valid_fields(fields_json(change.input_fields), "input_fields", row.input_type)
                if change.output_fields is not None:
                    row.output_fields = valid_fields(
                        fields_json(change.output_fields), "output_fields", row.output_type
                    )
            if change.default_version is not None:
                row.default_version_id = self._version_row(s, row, change.default_version).id
            row.updated_at = now()
            s.flush()
            return self._pipeline_entity(s, p.name, row)

    def delete_pipeline(self, principal: Principal, project: str, name: str) -> None:
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            row = self._pipeline_row(s, p, name)
            s.execute(delete(PipelineRequestRow).where(PipelineRequestRow.pipeline_id == row.id))
            s.execute(delete(PipelineVersionRow).where(PipelineVersionRow.pipeline_id == row.id))
            s.delete(row)

    # --- versions -------------------------------------------------------------------------------
    def create_version(
        self, principal: Principal, project: str, pipeline: str, spec: PipelineVersionIn
    ) -> PipelineVersion:
        version = valid_name(spec.version, "version")
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            pl = self._pipeline_row(s, p, pipeline)
            if s.scalar(
                select(PipelineVersionRow.id).where(
                    PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == version
                )
            ):
                raise Conflict(f"Version {version!r} of pipeline {pl.name!r} already exists.")
            t = now()
            row = PipelineVersionRow(id=new_uuid(), pipeline_id=pl.id, version=version, created_at=t, updated_at=t)
            self._apply(s, p, pl, row, spec, creating=True)
            s.add(row)
            s.flush()
            if pl.default_version_id is None:
                pl.default_version_id = row.id
            s.flush()
            return self._version_entity(p.name, pl, row)

    def list_versions(self, principal: Principal, project: str, pipeline: str) -> list[PipelineVersion]:
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            pl = self._pipeline_row(s, p, pipeline)
            rows = s.scalars(
                select(PipelineVersionRow)
                .where(PipelineVersionRow.pipeline_id == pl.id)
                .order_by(PipelineVersionRow.version)
            )
            return [self._version_entity(p.name, pl, r) for r in rows]

    def get_version(self, principal: Principal, project: str, pipeline: str, version: str) -> PipelineVersion:
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            pl = self._pipeline_row(s, p, pipeline)
            return self._version_entity(p.name, pl, self._version_row(s, pl, version))

    def get_object_request(self, principal: Principal, project: str, pipeline: str, version: str, request_id: str):
        """An operator object's request: pipelines here hold only deployment objects, so there is none — NotFound,
        once the version is known to exist and be readable (like every other lookup)."""
        self.get_version(principal, project, pipeline, version)
        raise NotFound(
            f"Object request {request_id!r} not found: ModelHarbor pipelines have no operator objects; a deployment "
            "object's request is read with GET …/deployments/{deployment}/requests/{id} (ids in 'deployment_requests')."
        )

    def update_version(
        self, principal: Principal, project: str, pipeline: str, version: str, change: PipelineVersionIn
    ) -> PipelineVersion:
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            pl = self._pipeline_row(s, p, pipeline)
            row = self._version_row(s, pl, version)
            if change.version not in (None, row.version):
                new = valid_name(change.version, "version")
                if s.scalar(
                    select(PipelineVersionRow.id).where(
                        PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == new
                    )
                ):
                    raise Conflict(f"Version {new!r} of pipeline {pl.name!r} already exists.")
                row.version = new
            self._apply(s, p, pl, row, change, creating=False)
            row.updated_at = now()
            s.flush()
            return self._version_entity(p.name, pl, row)

    def delete_version(self, principal: Principal, project: str, pipeline: str, version: str) -> None:
        with self.db.uow() as s:
            p = self.serving.project_row(s, principal, project, write=True)
            pl = self._pipeline_row(s, p, pipeline)
            row = self._version_row(s, pl, version)
            if pl.default_version_id == row.id:
                pl.default_version_id = None
            s.execute(delete(PipelineRequestRow).where(PipelineRequestRow.version_id == row.id))
            s.delete(row)
            s.flush()
            if pl.default_version_id is None:
                other = s.scalar(select(PipelineVersionRow.id).where(PipelineVersionRow.pipeline_id == pl.id).limit(1))
                pl.default_version_id = other

    def _apply(
        self, s: Session, p, pl: PipelineRow, row: PipelineVersionRow, spec: PipelineVersionIn, *, creating: bool
    ):
        if creating or spec.description is not None:
            row.description = valid_text(spec.description, "description")
        if creating or spec.labels is not None:
            row.labels = valid_labels(spec.labels)
        mode = spec.request_retention_mode
        if mode is not None:
            valid_retention_mode(mode)
        if mode is not None or creating:
            row.request_retention_mode = mode or "full"
        row.request_retention_time = bounded_int(
            spec.request_retention_time,
            "request_retention_time",
            604800 if creating else row.request_retention_time,
            0,
            365 * 24 * 3600,
        )
        if creating or not isinstance(spec.metadata, Unset):
            row.meta = None if isinstance(spec.metadata, Unset) else spec.metadata
        objects = spec.objects if spec.objects is not None else (None if not creating else [])
        attachments = spec.attachments if spec.attachments is not None else (None if not creating else [])
        if objects is not None or attachments is not None:
            objects = objects if objects is not None else row.objects
            attachments = attachments if attachments is not None else row.attachments
            row.objects, row.attachments = self._validate_graph(s, p, pl, objects, attachments)

    # --- references from deployments -------------------------------------------------------------
    @staticmethod
    def _users_of(s: Session, project_id: str, deployment: str, *, pinned: str | None = None) -> list[str]:
        """Pipeline versions with an object on ``deployment`` (only those pinned to version ``pinned``, if given)."""
        out = set()
        rows = s.execute(
            select(PipelineRow.name, PipelineVersionRow.version, PipelineVersionRow.objects)
            .join(PipelineRow, PipelineRow.id == PipelineVersionRow.pipeline_id)
            .where(PipelineRow.project_id == project_id)
        ).all()
        for pname, pversion, objects in rows:
            for o in objects or []:
                if o.get("reference_name") == deployment and (pinned is None or o.get("version") == pinned):
                    out.add(f"{pname}/{pversion}")
        return sorted(out)

    def _refuse_if_used(self, s: Session, d: DeploymentRow) -> None:
        users = self._users_of(s, d.project_id, d.name)
        if users:
            raise InvalidInput(f"Deployment {d.name!r} is used by pipeline version(s) {', '.join(users)}.")

    def _refuse_if_version_used(self, s: Session, v: DeploymentVersionRow) -> None:
        d = s.get(DeploymentRow, v.deployment_id)
        users = self._users_of(s, d.project_id, d.name, pinned=v.version)
        if users:
            raise InvalidInput(
                f"Version {v.version!r} of {d.name!r} is used by pipeline version(s) {', '.join(users)}."
            )

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _pipeline_row(s: Session, p, name: str) -> PipelineRow:
        return named_row(
            s,
            PipelineRow,
            PipelineRow.project_id == p.id,
            PipelineRow.name == name,
            key=name,
            missing=f"Pipeline {name!r} not found in project {p.name!r}",
        )

    @staticmethod
    def _version_row(s: Session, pl: PipelineRow, version: str) -> PipelineVersionRow:
        return named_row(
            s,
            PipelineVersionRow,
            PipelineVersionRow.pipeline_id == pl.id,
            PipelineVersionRow.version == version,
            key=version,
            missing=f"Version {version!r} of pipeline {pl.name!r} not found",
        )

    @staticmethod
    def _pipeline_entity(s: Session, project: str, r: PipelineRow) -> Pipeline:
        default = s.get(PipelineVersionRow, r.default_version_id) if r.default_version_id else None
        return Pipeline(
            r.id,
            project,
            r.name,
            r.description or "",
            r.input_type,
            r.output_type,
            fields_of(r.input_fields),
            fields_of(r.output_fields),
            dict(r.labels or {}),
            default.version if default else None,
            aware(r.created_at),
            aware(r.updated_at),
        )

    @staticmethod
    def _version_entity(project: str, pl: PipelineRow, r: PipelineVersionRow) -> PipelineVersion:
        return PipelineVersion(
            r.id,
            project,
            pl.name,
            r.version,
            r.description or "",
            dict(r.labels or {}),
            r.request_retention_mode,
            r.request_retention_time,
            pl.default_version_id == r.id,
            tuple(r.objects or ()),
            tuple(r.attachments or ()),
            r.meta,
            aware(r.created_at),
            aware(r.updated_at),
        )
