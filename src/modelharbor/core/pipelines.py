"""Pipelines: deployments chained into a graph, answered as one request.

A pipeline declares its input and output like a deployment. A pipeline **version** holds **objects** (each a
deployment, optionally pinned to a version) and **attachments**: for a destination (an object or
``pipeline_end``), the sources (objects or ``pipeline_start``) whose output fields feed its input fields. A
request runs the objects in dependency order; each object starts once all its sources answered, objects
whose sources are ready run concurrently, and the first failure fails the pipeline (with the object named).

Validated when a version is saved: known deployments and versions, field mappings between declared fields of
matching types, every object fed, ``pipeline_end`` fed, and no cycles.

**Requests** mirror deployment requests (core/serving.py): a direct request is kept as the version's
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

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core import kept_requests as kept
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving import (
    MAX_BATCH,
    MAX_TIMEOUT,
    RETENTION_MODES,
    Field,
    ServingService,
    _fields,
    _fields_of,
    _int,
    _io_type,
    _labels,
    _name,
    _text,
    check_fields,
    held_if_present,
    lookup_key,
    truncate,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    PipelineRequestRow,
    PipelineRow,
    PipelineVersionRow,
)
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

if TYPE_CHECKING:
    from modelharbor.core.identity import IdentityService

START, END = "pipeline_start", "pipeline_end"
MAX_OBJECTS = 100
MAX_ATTACHMENTS = 500
BATCH_TASK = "pipeline_batch"
DEFAULT_PIPELINE_TIMEOUT = MAX_TIMEOUT  # seconds for the whole pipeline; each object gets what remains
MAX_PIPELINE_TIMEOUT = 2 * MAX_TIMEOUT
REQUEST_STATUSES, FINISHED = kept.REQUEST_STATUSES, kept.FINISHED


@dataclass(frozen=True)
class Pipeline:
    id: str
    project: str
    name: str
    description: str
    input_type: str
    output_type: str
    input_fields: tuple[Field, ...]
    output_fields: tuple[Field, ...]
    labels: dict[str, str]
    default_version: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PipelineVersion:
    id: str
    project: str
    pipeline: str
    version: str
    description: str
    labels: dict[str, str]
    request_retention_mode: str
    request_retention_time: int
    is_default: bool
    objects: tuple[dict[str, Any], ...]
    attachments: tuple[dict[str, Any], ...]
    metadata: Any
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StepResult:
    id: str
    object_name: str
    deployment: str
    version: str
    status: str
    error_message: str | None
    started_at: datetime
    finished_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline_object": self.object_name,
            "deployment": self.deployment,
            "version": self.version,
            "status": self.status,
            "error_message": self.error_message,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }

    @staticmethod
    def of_json(raw: dict[str, Any]) -> StepResult:
        return StepResult(
            raw["id"],
            raw["pipeline_object"],
            raw["deployment"],
            raw.get("version") or "",
            raw["status"],
            raw.get("error_message"),
            aware(datetime.fromisoformat(raw["started_at"])),
            aware(datetime.fromisoformat(raw["finished_at"])),
        )


@dataclass(frozen=True)
class PipelineResult:
    id: str
    pipeline: str
    version: str
    status: str  # completed | failed (direct); pending | processing | completed | failed | cancelled (kept)
    result: Any
    error_message: str | None
    steps: tuple[StepResult, ...]
    timeout: int
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    request_data: Any = None  # kept with retention 'full' (and batch requests until answered)
    created_by: str | None = None


class PipelineService(kept.KeptRequests):
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
    def create_pipeline(self, principal: Principal, project: Any, body: dict[str, Any]) -> Pipeline:
        name = _name(body.get("name"), "pipeline")
        input_type = _io_type(body.get("input_type"), "input_type")
        output_type = _io_type(body.get("output_type", input_type), "output_type")
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
            if s.scalar(select(PipelineRow.id).where(PipelineRow.project_id == p.id, PipelineRow.name == name)):
                raise Conflict(f"Pipeline {name!r} already exists in project {p.name!r}.")
            t = now()
            row = PipelineRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=_text(body.get("description"), "description"),
                input_type=input_type,
                output_type=output_type,
                input_fields=_fields(body.get("input_fields"), "input_fields", input_type),
                output_fields=_fields(body.get("output_fields"), "output_fields", output_type),
                labels=_labels(body.get("labels")),
                default_version_id=None,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._pipeline_entity(s, p.name, row)

    def list_pipelines(self, principal: Principal, project: Any) -> list[Pipeline]:
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            rows = s.scalars(select(PipelineRow).where(PipelineRow.project_id == p.id).order_by(PipelineRow.name))
            return [self._pipeline_entity(s, p.name, r) for r in rows]

    def get_pipeline(self, principal: Principal, project: Any, name: Any) -> Pipeline:
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            return self._pipeline_entity(s, p.name, self._pipeline_row(s, p, name))

    def update_pipeline(self, principal: Principal, project: Any, name: Any, body: dict[str, Any]) -> Pipeline:
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
            row = self._pipeline_row(s, p, name)
            if body.get("name") not in (None, row.name):
                new = _name(body["name"], "pipeline")
                if s.scalar(select(PipelineRow.id).where(PipelineRow.project_id == p.id, PipelineRow.name == new)):
                    raise Conflict(f"Pipeline {new!r} already exists in project {p.name!r}.")
                row.name = new
            if body.get("description") is not None:
                row.description = _text(body["description"], "description")
            if body.get("labels") is not None:
                row.labels = _labels(body["labels"])
            if body.get("input_fields") is not None or body.get("output_fields") is not None:
                if s.scalar(select(PipelineVersionRow.id).where(PipelineVersionRow.pipeline_id == row.id).limit(1)):
                    raise InvalidInput("Change the fields of a pipeline before it has versions (or delete them).")
                if body.get("input_fields") is not None:
                    row.input_fields = _fields(body["input_fields"], "input_fields", row.input_type)
                if body.get("output_fields") is not None:
                    row.output_fields = _fields(body["output_fields"], "output_fields", row.output_type)
            if body.get("default_version") is not None:
                row.default_version_id = self._version_row(s, row, body["default_version"]).id
            row.updated_at = now()
            s.flush()
            return self._pipeline_entity(s, p.name, row)

    def delete_pipeline(self, principal: Principal, project: Any, name: Any) -> None:
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
            row = self._pipeline_row(s, p, name)
            s.execute(delete(PipelineRequestRow).where(PipelineRequestRow.pipeline_id == row.id))
            s.execute(delete(PipelineVersionRow).where(PipelineVersionRow.pipeline_id == row.id))
            s.delete(row)

    # --- versions -------------------------------------------------------------------------------
    def create_version(
        self, principal: Principal, project: Any, pipeline: Any, body: dict[str, Any]
    ) -> PipelineVersion:
        version = _name(body.get("version"), "version")
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
            pl = self._pipeline_row(s, p, pipeline)
            if s.scalar(
                select(PipelineVersionRow.id).where(
                    PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == version
                )
            ):
                raise Conflict(f"Version {version!r} of pipeline {pl.name!r} already exists.")
            t = now()
            row = PipelineVersionRow(id=new_uuid(), pipeline_id=pl.id, version=version, created_at=t, updated_at=t)
            self._apply(s, p, pl, row, body, creating=True)
            s.add(row)
            s.flush()
            if pl.default_version_id is None:
                pl.default_version_id = row.id
            s.flush()
            return self._version_entity(p.name, pl, row)

    def list_versions(self, principal: Principal, project: Any, pipeline: Any) -> list[PipelineVersion]:
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            pl = self._pipeline_row(s, p, pipeline)
            rows = s.scalars(
                select(PipelineVersionRow)
                .where(PipelineVersionRow.pipeline_id == pl.id)
                .order_by(PipelineVersionRow.version)
            )
            return [self._version_entity(p.name, pl, r) for r in rows]

    def get_version(self, principal: Principal, project: Any, pipeline: Any, version: Any) -> PipelineVersion:
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            pl = self._pipeline_row(s, p, pipeline)
            return self._version_entity(p.name, pl, self._version_row(s, pl, version))

    def update_version(
        self, principal: Principal, project: Any, pipeline: Any, version: Any, body: dict[str, Any]
    ) -> PipelineVersion:
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
            pl = self._pipeline_row(s, p, pipeline)
            row = self._version_row(s, pl, version)
            if body.get("version") not in (None, row.version):
                new = _name(body["version"], "version")
                if s.scalar(
                    select(PipelineVersionRow.id).where(
                        PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == new
                    )
                ):
                    raise Conflict(f"Version {new!r} of pipeline {pl.name!r} already exists.")
                row.version = new
            self._apply(s, p, pl, row, body, creating=False)
            row.updated_at = now()
            s.flush()
            return self._version_entity(p.name, pl, row)

    def delete_version(self, principal: Principal, project: Any, pipeline: Any, version: Any) -> None:
        with self.db.uow() as s:
            p = self.serving._project(s, principal, project, write=True)
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

    def _apply(self, s: Session, p, pl: PipelineRow, row: PipelineVersionRow, body: dict[str, Any], *, creating: bool):
        if creating or "description" in body:
            row.description = _text(body.get("description"), "description")
        if creating or body.get("labels") is not None:
            row.labels = _labels(body.get("labels"))
        mode = body.get("request_retention_mode")
        if mode is not None and mode not in RETENTION_MODES:
            raise InvalidInput(f"'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
        if mode is not None or creating:
            row.request_retention_mode = mode or "full"
        row.request_retention_time = _int(
            body.get("request_retention_time"),
            "request_retention_time",
            604800 if creating else row.request_retention_time,
            0,
            365 * 24 * 3600,
        )
        if creating or "metadata" in body:
            row.meta = body.get("metadata")
        objects = body.get("objects") if body.get("objects") is not None else (None if not creating else [])
        attachments = body.get("attachments") if body.get("attachments") is not None else (None if not creating else [])
        if objects is not None or attachments is not None:
            objects = objects if objects is not None else row.objects
            attachments = attachments if attachments is not None else row.attachments
            row.objects, row.attachments = self._validate_graph(s, p, pl, objects, attachments)

    def _validate_graph(self, s: Session, p, pl: PipelineRow, objects: Any, attachments: Any):
        if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
            raise InvalidInput(f"'objects' must be a list of at most {MAX_OBJECTS} objects.")
        if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
            raise InvalidInput(f"'attachments' must be a list of at most {MAX_ATTACHMENTS} attachments.")
        nodes: dict[str, dict[str, Any]] = {}
        out_objects = []
        for obj in objects:
            if not isinstance(obj, dict):
                raise InvalidInput("Each pipeline object must be an object {name, reference_name, ...}.")
            name = obj.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= 64 or name in (START, END):
                raise InvalidInput(f"Invalid pipeline object name {name!r} (1 to 64 characters, not {START}/{END}).")
            if name in nodes:
                raise InvalidInput(f"Pipeline object {name!r} appears twice.")
            kind = obj.get("reference_type") or "deployment"
            if kind != "deployment":
                raise InvalidInput(
                    f"Pipeline object {name!r}: reference_type {kind!r} is not supported; use deployments."
                )
            ref = obj.get("reference_name")
            d = (
                s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == ref))
                if lookup_key(ref)
                else None
            )
            if d is None:
                raise InvalidInput(f"Pipeline object {name!r} refers to an unknown deployment {ref!r}.")
            pinned = obj.get("version") or obj.get("reference_version")
            if pinned is not None and not s.scalar(
                select(DeploymentVersionRow.id).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == pinned
                )
            ):
                raise InvalidInput(f"Pipeline object {name!r}: deployment {ref!r} has no version {pinned!r}.")
            for key in ("configuration", "metadata"):
                if obj.get(key) is not None and not isinstance(obj[key], dict):
                    raise InvalidInput(f"Pipeline object {name!r}: '{key}' must be an object.")
            entry = {
                "id": obj.get("id") if isinstance(obj.get("id"), str) else new_uuid(),
                "name": name,
                "reference_type": "deployment",
                "reference_name": ref,
                "version": pinned,
                "configuration": obj.get("configuration") or {},
                "metadata": obj.get("metadata") or {},
            }
            nodes[name] = {
                "in_type": d.input_type,
                "out_type": d.output_type,
                "in": {f["name"]: f["data_type"] for f in d.input_fields or []},
                "out": {f["name"]: f["data_type"] for f in d.output_fields or []},
            }
            out_objects.append(entry)
        start = {"out_type": pl.input_type, "out": {f["name"]: f["data_type"] for f in pl.input_fields or []}}
        end = {"in_type": pl.output_type, "in": {f["name"]: f["data_type"] for f in pl.output_fields or []}}
        fed: dict[str, list[str]] = {}
        out_attachments = []
        for att in attachments:
            if not isinstance(att, dict):
                raise InvalidInput("Each attachment must be an object {destination_name, sources}.")
            dest = att.get("destination_name")
            if dest != END and dest not in nodes:
                raise InvalidInput(f"Attachment destination {dest!r} is not an object of this version (or {END}).")
            if dest in fed:
                raise InvalidInput(f"{dest!r} has two attachments: list every source in one attachment.")
            target = end if dest == END else nodes[dest]
            sources = att.get("sources")
            if not isinstance(sources, list) or not sources:
                raise InvalidInput(f"The attachment to {dest!r} needs at least one source.")
            out_sources = []
            for src in sources:
                sname = src.get("source_name") if isinstance(src, dict) else None
                if sname != START and sname not in nodes:
                    raise InvalidInput(f"Attachment source {sname!r} is not an object of this version (or {START}).")
                if sname == dest:
                    raise InvalidInput(f"Object {dest!r} cannot feed itself.")
                origin = start if sname == START else nodes[sname]
                mapping = src.get("mapping") or []
                if not isinstance(mapping, list):
                    raise InvalidInput(f"'mapping' from {sname!r} to {dest!r} must be a list.")
                if (origin["out_type"] == "plain") != (target["in_type"] == "plain"):
                    raise InvalidInput(f"{sname!r} and {dest!r} do not match: one is plain, the other structured.")
                out_map = []
                for m in mapping:
                    sf = m.get("source_field_name") if isinstance(m, dict) else None
                    df = m.get("destination_field_name") if isinstance(m, dict) else None
                    if sf not in origin["out"]:
                        raise InvalidInput(f"{sname!r} has no output field {sf!r} (mapping to {dest!r}).")
                    if df not in target["in"]:
                        raise InvalidInput(f"{dest!r} has no input field {df!r} (mapping from {sname!r}).")
                    if origin["out"][sf] != target["in"][df]:
                        raise InvalidInput(
                            f"Field {sname}.{sf} ({origin['out'][sf]}) cannot feed {dest}.{df} ({target['in'][df]})."
                        )
                    out_map.append({"source_field_name": sf, "destination_field_name": df})
                out_sources.append({"source_name": sname, "mapping": out_map})
            mapped = {m["destination_field_name"] for src in out_sources for m in src["mapping"]}
            if target["in_type"] == "structured" and set(target["in"]) - mapped:
                missing = ", ".join(sorted(set(target["in"]) - mapped))
                raise InvalidInput(f"Input field(s) {missing} of {dest!r} are fed by no source.")
            fed[dest] = [src["source_name"] for src in out_sources]
            out_attachments.append(
                {
                    "id": att.get("id") if isinstance(att.get("id"), str) else new_uuid(),
                    "destination_name": dest,
                    "sources": out_sources,
                }
            )
        if out_objects or out_attachments:
            unfed = [o["name"] for o in out_objects if o["name"] not in fed]
            if unfed:
                raise InvalidInput(f"Object(s) {', '.join(unfed)} have no attachment feeding them.")
            if END not in fed:
                raise InvalidInput(f"Nothing feeds {END}: attach the object(s) whose output is the pipeline's output.")
            self._order(fed)  # raises on cycles
        return out_objects, out_attachments

    @staticmethod
    def _order(fed: dict[str, list[str]]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(node: str, path: tuple[str, ...]) -> None:
            if node == START:
                return
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                raise InvalidInput(f"The pipeline has a cycle: {' -> '.join((*path, node))}.")
            state[node] = 1
            for src in fed.get(node, []):
                visit(src, (*path, node))
            state[node] = 2
            order.append(node)

        visit(END, ())
        for node in fed:
            visit(node, ())
        return order

    # --- requests -------------------------------------------------------------------------------
    async def request(
        self, principal: Principal, project: Any, pipeline: Any, data: Any, *, version: Any = None, timeout: Any = None
    ) -> PipelineResult:
        """One direct request: validated, run object by object, and kept as the version's retention mode says."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="pipeline")
        timeout = _int(timeout, "timeout", DEFAULT_PIPELINE_TIMEOUT, 10, MAX_PIPELINE_TIMEOUT)
        pl, v = await asyncio.to_thread(self._for_request, principal, project, pipeline, version)
        self._check_input(pl, data)
        started = now()
        status, result, error, steps = await self._execute(principal, pl, v, data, timeout)
        finished = now()
        request_id = new_uuid()
        if v.request_retention_mode != "none":
            full = v.request_retention_mode == "full"
            row = PipelineRequestRow(
                id=request_id,
                pipeline_id=pl.id,
                version_id=v.id,
                status=status,
                request_data=data if full else None,
                result=result if full else None,
                error_message=error,
                timeout=timeout,
                deployment_requests=[step.to_json() for step in steps],
                created_by=principal.user_id,
                created_at=started,
                started_at=started,
                finished_at=finished,
            )
            await asyncio.to_thread(self._keep, row)
        return PipelineResult(
            request_id,
            pl.name,
            v.version,
            status,
            result,
            error,
            steps,
            timeout,
            started,
            started,
            finished,
            data,
            principal.user_id,
        )

    def _keep(self, row: PipelineRequestRow) -> None:
        with self.db.uow() as s:
            # the version may have gone while the request ran: then there is nothing to keep it under
            if held_if_present(s, PipelineVersionRow, row.version_id):
                s.add(row)

    @staticmethod
    def _check_input(pl: Pipeline, data: Any) -> None:
        if pl.input_type == "plain":
            if not isinstance(data, str):
                raise InvalidInput(f"Pipeline {pl.name!r} takes plain text input.")
        else:
            check_fields(pl.input_fields, data, what="input")

    async def _execute(
        self, principal: Principal, pl: Pipeline, v: PipelineVersion, data: Any, timeout: int
    ) -> tuple[str, Any, str | None, tuple[StepResult, ...]]:
        """Run the version's objects in dependency order: (status, result, error, steps). Each object's request
        gets the time the pipeline has left (at most a deployment request's maximum)."""
        objects = {o["name"]: o for o in v.objects}
        fed = {a["destination_name"]: a["sources"] for a in v.attachments}
        if END not in fed:  # an empty pipeline answers its input
            return "completed", data, None, ()
        outputs: dict[str, Any] = {START: data}
        steps: list[StepResult] = []
        done: dict[str, asyncio.Future] = {}
        failure: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def gather_input(dest: str) -> Any:
            sources = fed[dest]
            if len(sources) == 1 and not sources[0]["mapping"]:
                return outputs[sources[0]["source_name"]]
            value: dict[str, Any] = {}
            for src in sources:
                for m in src["mapping"]:
                    value[m["destination_field_name"]] = outputs[src["source_name"]][m["source_field_name"]]
            return value

        async def run(name: str) -> None:
            for src in fed[name]:
                if src["source_name"] != START:
                    await done[src["source_name"]]
            if failure:
                return
            obj = objects[name]
            started = now()
            left = max(10, min(MAX_TIMEOUT, int(deadline - loop.time())))
            try:
                answer = await self.serving.request(
                    principal,
                    pl.project,
                    obj["reference_name"],
                    gather_input(name),
                    version=obj.get("version"),
                    timeout=left,
                )
            except Exception as exc:  # noqa: BLE001 - any failure of a step fails the pipeline, reported
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                failure.append(f"Object {name!r} ({obj['reference_name']}): {message}")
                steps.append(
                    StepResult(
                        new_uuid(),
                        name,
                        obj["reference_name"],
                        obj.get("version") or "",
                        "failed",
                        truncate(message),
                        started,
                        now(),
                    )
                )
                return
            steps.append(
                StepResult(
                    answer.id,
                    name,
                    answer.deployment,
                    answer.version,
                    answer.status,
                    answer.error_message,
                    started,
                    now(),
                )
            )
            if answer.status != "completed":
                failure.append(f"Object {name!r} ({answer.deployment}): {answer.error_message}")
                return
            outputs[name] = answer.result

        for name in objects:
            done[name] = loop.create_future()

        async def run_and_mark(name: str) -> None:
            try:
                await run(name)
            finally:
                done[name].set_result(None)

        try:
            await asyncio.wait_for(asyncio.gather(*(run_and_mark(n) for n in objects)), timeout=timeout)
        except TimeoutError:
            failure.append(f"The pipeline took longer than {timeout} s.")
        if failure:
            return "failed", None, truncate(failure[0]), tuple(steps)
        result = gather_input(END)
        if pl.output_type == "structured":
            try:
                check_fields(pl.output_fields, result, what="output")
            except InvalidInput as exc:
                return "failed", None, truncate(exc.message), tuple(steps)
        return "completed", result, None, tuple(steps)

    def _for_request(self, principal: Principal, project: Any, pipeline: Any, version: Any):
        with self.db.uow(readonly=True) as s:
            p, pl, row = self._resolve(s, principal, project, pipeline, version)
            return self._pipeline_entity(s, p.name, pl), self._version_entity(p.name, pl, row)

    def _resolve(self, s: Session, principal: Principal, project: Any, pipeline: Any, version: Any):
        p = self.serving._project(s, principal, project)
        pl = self._pipeline_row(s, p, pipeline)
        if version is None:
            if pl.default_version_id is None:
                raise InvalidInput(f"Pipeline {pl.name!r} has no versions yet.")
            row = s.get(PipelineVersionRow, pl.default_version_id)
        else:
            row = self._version_row(s, pl, version)
        return p, pl, row

    # --- batch (asynchronous) requests -----------------------------------------------------------
    def submit_batch(
        self,
        principal: Principal,
        project: Any,
        pipeline: Any,
        items: Any,
        *,
        version: Any = None,
        timeout: Any = None,
    ) -> list[PipelineResult]:
        """Queue up to MAX_BATCH pipeline requests (each item one request), answered in the background; poll each
        with :meth:`get_request`."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="pipeline")
        timeout = _int(timeout, "timeout", DEFAULT_PIPELINE_TIMEOUT, 10, MAX_PIPELINE_TIMEOUT)
        if not isinstance(items, list) or not items:
            raise InvalidInput("A batch request is a non-empty JSON array: one element per request.")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"A batch may hold at most {MAX_BATCH} requests, not {len(items)}.")
        t = now()
        ids = [new_uuid() for _ in items]
        with self.db.uow() as s:
            p, plrow, vrow = self._resolve(s, principal, project, pipeline, version)
            pl = self._pipeline_entity(s, p.name, plrow)
            for item in items:
                self._check_input(pl, item)
            for rid, item in zip(ids, items, strict=True):
                s.add(
                    PipelineRequestRow(
                        id=rid,
                        pipeline_id=plrow.id,
                        version_id=vrow.id,
                        status="pending",
                        request_data=item,
                        result=None,
                        error_message=None,
                        timeout=timeout,
                        deployment_requests=[],
                        created_by=principal.user_id,
                        created_at=t,
                        started_at=None,
                        finished_at=None,
                    )
                )
            self.serving.tasks.enqueue_in(
                s, BATCH_TASK, {"request_ids": ids, "user_id": principal.user_id}, org_id=principal.org_id
            )
            version_name = vrow.version
        return [PipelineResult(rid, pl.name, version_name, "pending", None, None, (), timeout, t) for rid in ids]

    def process_batch(
        self, request_ids: list[str], user_id: str, org_id: str, progress: Callable[[int], None]
    ) -> dict[str, Any]:
        """Answer queued batch requests (a background task) as their creator: each pending one becomes completed
        or failed (one cancelled meanwhile stays cancelled)."""
        done = failed = 0
        for n, rid in enumerate(request_ids):
            with self.db.uow() as s:
                row = kept.claim(s, PipelineRequestRow, rid)
                if row is None:
                    continue
                vrow = s.get(PipelineVersionRow, row.version_id)
                plrow = s.get(PipelineRow, row.pipeline_id)
                p = s.get(RegistryProjectRow, plrow.project_id)
                pl, v = self._pipeline_entity(s, p.name, plrow), self._version_entity(p.name, plrow, vrow)
                data, timeout, mode = row.request_data, row.timeout, vrow.request_retention_mode
            try:
                if self.identity is None:
                    raise InvalidInput("This server cannot answer batch pipeline requests (no identity service).")
                principal = self.identity.principal_by_ids(user_id, org_id)
                status, value, error, steps = asyncio.run(self._execute(principal, pl, v, data, timeout))
            except HarborError as exc:
                status, value, error, steps = "failed", None, truncate(exc.message), ()
            with self.db.uow() as s:
                row = kept.settle(s, PipelineRequestRow, rid, status, value, error, mode)
                if row is not None:
                    row.deployment_requests = [step.to_json() for step in steps]
            done += status == "completed"
            failed += status == "failed"
            progress(min(99, (n + 1) * 100 // len(request_ids)))
        return {"completed": done, "failed": failed}

    # --- kept requests ---------------------------------------------------------------------------
    def _kept_owner(self, s: Session, principal: Principal, project: Any, pipeline: Any) -> PipelineRow:
        return self._pipeline_row(s, self.serving._project(s, principal, project), pipeline)

    @staticmethod
    def _sweep_requests(s: Session) -> int:
        """Part of the serving sweep: delete finished pipeline requests older than their version's retention."""
        removed = 0
        for vid, seconds in s.execute(select(PipelineVersionRow.id, PipelineVersionRow.request_retention_time)):
            removed += (
                s.execute(
                    delete(PipelineRequestRow).where(
                        PipelineRequestRow.version_id == vid,
                        PipelineRequestRow.created_at < now() - timedelta(seconds=seconds),
                        PipelineRequestRow.status.in_(FINISHED),
                    )
                ).rowcount
                or 0
            )
        return removed

    @staticmethod
    def _request_entity(pl: PipelineRow, version: str, row: PipelineRequestRow) -> PipelineResult:
        return PipelineResult(
            row.id,
            pl.name,
            version,
            row.status,
            row.result,
            row.error_message,
            tuple(StepResult.of_json(x) for x in row.deployment_requests or ()),
            row.timeout,
            aware(row.created_at),
            aware(row.started_at) if row.started_at else None,
            aware(row.finished_at) if row.finished_at else None,
            row.request_data,
            row.created_by,
        )

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
    def _pipeline_row(s: Session, p, name: Any) -> PipelineRow:
        row = (
            s.scalar(select(PipelineRow).where(PipelineRow.project_id == p.id, PipelineRow.name == name))
            if lookup_key(name)
            else None
        )
        if row is None:
            raise NotFound(f"Pipeline {name!r} not found in project {p.name!r}")
        return row

    @staticmethod
    def _version_row(s: Session, pl: PipelineRow, version: Any) -> PipelineVersionRow:
        row = (
            s.scalar(
                select(PipelineVersionRow).where(
                    PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == version
                )
            )
            if lookup_key(version)
            else None
        )
        if row is None:
            raise NotFound(f"Version {version!r} of pipeline {pl.name!r} not found")
        return row

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
            _fields_of(r.input_fields),
            _fields_of(r.output_fields),
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
