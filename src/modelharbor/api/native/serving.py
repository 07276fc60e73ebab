"""Native routes for serving (``/projects/{project}/…``): deployments and their versions, package uploads and
their builds (revisions with the build log), predictions, environment variables at project, deployment and
version level (secrets' values never leave the server), and pipelines.

``{project}`` is the project's name, or its 24-hex id. The core (core/serving/, with core/serving/pipelines.py) validates
and checks permissions; these routes translate. A failed prediction is an answer (``status: failed``), not an
error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import body_stream, services_of
from modelharbor.api.inputs import (
    deployment_in,
    deployment_patch,
    env_var_in,
    pipeline_in,
    pipeline_version_in,
    version_in,
)
from modelharbor.api.jsonbody import MAX_INPUT_BODY, JsonRejected, JsonRoute, blank, loads, read_body
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.files import _principal
from modelharbor.core.serving import Deployment, DeploymentVersion, EnvironmentInfo, EnvVar, Revision
from modelharbor.core.serving import logs as serving_logs
from modelharbor.core.serving.entities import Pipeline, PipelineResult, PipelineVersion
from modelharbor.domain.errors import InvalidInput, NotFound, TooLarge
from modelharbor.domain.logs import LabelMatch, LineFilter, LogQuery
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

router = APIRouter(prefix="/projects/{project}", tags=["serving"], route_class=JsonRoute)

D = "/deployments/{deployment}"
V = D + "/versions/{version}"
PL = "/pipelines/{pipeline}"
MAX_PREDICT_BODY = MAX_INPUT_BODY
_PROJECT_ID = re.compile(r"[0-9a-f]{24}")
_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}  # what a datetime query takes
_RAW_JSON_OR_TEXT = {
    "requestBody": {
        "description": "The input: a JSON object of the input fields, or the text itself (Content-Type "
        "text/plain, or a JSON string) for a plain deployment.",
        "required": True,
        "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}},
    }
}


# --- resolving the project -----------------------------------------------------------------------
def _project_name(services: Services, principal: Principal, project: str) -> str:
    """The project's name: ``project`` itself, or the name of the project whose 24-hex id it is."""
    if "\x00" in project or len(project) > 256:
        raise NotFound(f"Project {project[:64]!r} not found")
    if not _PROJECT_ID.fullmatch(project):
        return project
    try:
        services.projects.get_by_name(principal, project)
        return project
    except NotFound:
        pass
    try:
        p = services.projects.get_project(principal, project)
    except NotFound:
        return project  # the core answers 404
    return p.name if p.org_id == principal.org_id else project  # superusers see others' by id: not here


def _name_of(value: str, what: str) -> str:
    if "\x00" in value or len(value) > 256:
        raise NotFound(f"{what} {value[:64]!r} not found")
    return value


def _optional(value: str | None, what: str) -> str | None:
    return None if value is None else _name_of(value, what)


def project_dep(project: str, principal: PrincipalDep, services: ServicesDep) -> str:
    return _project_name(services, principal, project)


ProjectDep = Annotated[str, Depends(project_dep)]


async def _resolve(request: Request, project: str) -> tuple[Services, Principal, str]:
    """For async routes: (services, principal, project name)."""
    services = services_of(request)
    principal = await _principal(request)
    if _PROJECT_ID.fullmatch(project):  # perhaps an id: a database read
        return services, principal, await run_in_threadpool(_project_name, services, principal, project)
    return services, principal, _project_name(services, principal, project)  # a name: nothing to look up


def _body(model: Any) -> dict[str, Any]:
    return model.model_dump(exclude_unset=True)


# --- entity → wire -------------------------------------------------------------------------------
def _fields(fields) -> list[schemas.ServingFieldOut]:
    return [schemas.ServingFieldOut(name=f.name, data_type=f.data_type, widget=f.widget) for f in fields]


def deployment_out(d: Deployment) -> schemas.DeploymentOut:
    return schemas.DeploymentOut(
        id=d.id,
        project=d.project,
        name=d.name,
        description=d.description,
        input_type=d.input_type,
        output_type=d.output_type,
        input_fields=_fields(d.input_fields),
        output_fields=_fields(d.output_fields),
        labels=dict(d.labels),
        default_version=d.default_version,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def version_out(v: DeploymentVersion) -> schemas.DeploymentVersionOut:
    return schemas.DeploymentVersionOut(
        id=v.id,
        deployment=v.deployment,
        version=v.version,
        description=v.description,
        labels=dict(v.labels),
        environment=v.environment,
        status=v.status,
        is_default=v.is_default,
        active_revision=v.active_revision,
        latest_revision=v.latest_revision,
        minimum_instances=v.minimum_instances,
        maximum_instances=v.maximum_instances,
        maximum_idle_time=v.maximum_idle_time,
        request_retention_mode=v.request_retention_mode,
        request_retention_time=v.request_retention_time,
        maximum_queue_size=v.maximum_queue_size,
        has_request_method=v.has_request_method,
        has_requests_method=v.has_requests_method,
        last_file_upload=v.last_file_upload,
        created_at=v.created_at,
        updated_at=v.updated_at,
    )


def _revision_fields(r: Revision) -> dict[str, Any]:
    return {
        "id": r.id,
        "version": r.version,
        "status": r.status,
        "error_message": r.error_message,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "has_request_method": r.has_request_method,
        "has_requests_method": r.has_requests_method,
        "file_id": r.file_id,
    }


def revision_out(r: Revision) -> schemas.RevisionOut:
    return schemas.RevisionOut(**_revision_fields(r))


def env_var_out(e: EnvVar) -> schemas.EnvVarOut:
    return schemas.EnvVarOut(
        id=e.id,
        name=e.name,
        value=None if e.secret else e.value,
        secret=e.secret,
        inheritance_type=e.inheritance_type,
        inheritance_name=e.inheritance_name,
    )


def environment_out(e: EnvironmentInfo) -> schemas.EnvironmentOut:
    return schemas.EnvironmentOut(
        name=e.name,
        system=e.system,
        description=e.description,
        base_environment=None if e.system else e.base_environment,
    )


def pipeline_out(p: Pipeline) -> schemas.PipelineOut:
    return schemas.PipelineOut(
        id=p.id,
        project=p.project,
        name=p.name,
        description=p.description,
        input_type=p.input_type,
        output_type=p.output_type,
        input_fields=_fields(p.input_fields),
        output_fields=_fields(p.output_fields),
        labels=dict(p.labels),
        default_version=p.default_version,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def pipeline_version_out(v: PipelineVersion) -> schemas.PipelineVersionOut:
    return schemas.PipelineVersionOut(
        id=v.id,
        pipeline=v.pipeline,
        version=v.version,
        description=v.description,
        labels=dict(v.labels),
        is_default=v.is_default,
        request_retention_mode=v.request_retention_mode,
        objects=[dict(o) for o in v.objects],
        attachments=[dict(a) for a in v.attachments],
        created_at=v.created_at,
        updated_at=v.updated_at,
    )


def pipeline_result_out(r: PipelineResult) -> schemas.PipelinePredictionOut:
    return schemas.PipelinePredictionOut(
        id=r.id,
        pipeline=r.pipeline,
        version=r.version,
        status=r.status,
        result=r.result,
        error_message=r.error_message,
        steps=[
            schemas.PipelineStepOut(
                id=s.id,
                object_name=s.object_name,
                deployment=s.deployment,
                version=s.version,
                status=s.status,
                error_message=s.error_message,
                started_at=s.started_at,
                finished_at=s.finished_at,
            )
            for s in r.steps
        ],
    )


# --- environments --------------------------------------------------------------------------------
@router.get("/environments", response_model=list[schemas.EnvironmentOut], summary="Environments a version may use")
def list_environments(project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """The base environments (the server's interpreters, e.g. ``python3-11``) and the project's custom ones."""
    return [environment_out(e) for e in services.serving.list_environments(principal, project)]


# --- deployments ---------------------------------------------------------------------------------
@router.get("/deployments", response_model=list[schemas.DeploymentOut], summary="The project's deployments")
def list_deployments(project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return [deployment_out(d) for d in services.serving.list_deployments(principal, project)]


@router.post(
    "/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.DeploymentOut,
    summary="Create a deployment",
)
def create_deployment(body: schemas.DeploymentIn, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """Declare a deployment's input and output: ``structured`` with typed fields, or ``plain`` text."""
    return deployment_out(services.serving.create_deployment(principal, project, deployment_in(_body(body))))


@router.get(D, response_model=schemas.DeploymentOut, summary="One deployment")
def get_deployment(deployment: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return deployment_out(services.serving.get_deployment(principal, project, _name_of(deployment, "Deployment")))


@router.patch(D, response_model=schemas.DeploymentOut, summary="Change a deployment")
def update_deployment(
    deployment: str,
    body: schemas.DeploymentPatchIn,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Rename it, change its description, labels or fields, or make another version the default."""
    return deployment_out(
        services.serving.update_deployment(
            principal, project, _name_of(deployment, "Deployment"), deployment_patch(_body(body))
        )
    )


@router.delete(D, status_code=status.HTTP_204_NO_CONTENT, summary="Delete a deployment with its versions")
def delete_deployment(deployment: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_deployment(principal, project, _name_of(deployment, "Deployment"))
    return Response(status_code=204)


# --- versions ------------------------------------------------------------------------------------
@router.get(D + "/versions", response_model=list[schemas.DeploymentVersionOut], summary="A deployment's versions")
def list_versions(deployment: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return [
        version_out(v) for v in services.serving.list_versions(principal, project, _name_of(deployment, "Deployment"))
    ]


@router.post(
    D + "/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.DeploymentVersionOut,
    summary="Create a version",
)
def create_version(
    deployment: str,
    body: schemas.DeploymentVersionIn,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """A version says where and how the deployment runs (environment, instances, idle time, retention). The first
    version becomes the default."""
    return version_out(
        services.serving.create_version(
            principal, project, _name_of(deployment, "Deployment"), version_in(_body(body), creating=True)
        )
    )


@router.get(V, response_model=schemas.DeploymentVersionOut, summary="One version")
def get_version(deployment: str, version: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return version_out(
        services.serving.get_version(
            principal, project, _name_of(deployment, "Deployment"), _name_of(version, "Version")
        )
    )


@router.patch(V, response_model=schemas.DeploymentVersionOut, summary="Change a version")
def update_version(
    deployment: str,
    version: str,
    body: schemas.DeploymentVersionPatchIn,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    return version_out(
        services.serving.update_version(
            principal,
            project,
            _name_of(deployment, "Deployment"),
            _name_of(version, "Version"),
            version_in(_body(body), creating=False),
        )
    )


@router.delete(V, status_code=status.HTTP_204_NO_CONTENT, summary="Delete a version")
def delete_version(deployment: str, version: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """Its revisions, variables and kept requests go with it; the default goes only when it is the last."""
    services.serving.delete_version(
        principal, project, _name_of(deployment, "Deployment"), _name_of(version, "Version")
    )
    return Response(status_code=204)


# --- packages and revisions ----------------------------------------------------------------------
@router.put(
    V + "/package",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.RevisionOut,
    summary="Upload a package (a zip) as a new revision",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_package(
    project: str,
    deployment: str,
    version: str,
    request: Request,
    filename: str = Query("package.zip", min_length=5, max_length=255, description="The package's name (.zip)."),
):
    """The raw body is the zip (streamed; at most MAX_PACKAGE_SIZE). The build runs in the background: poll the
    revision until its status is ``success`` or ``failed``."""
    services, principal, project = await _resolve(request, project)
    limit = services.serving.max_package_size
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdecimal():
        if int(length) > limit:
            raise TooLarge(f"A deployment package may be at most {limit} bytes.")
        if int(length) == 0:
            raise InvalidInput("The body is empty: send the package (a .zip) as the raw request body.")
    if "\x00" in filename or "/" in filename or "\\" in filename:
        raise InvalidInput("'filename' must be a plain file name ending in .zip.")
    revision = await services.serving.upload_revision(
        principal,
        project,
        _name_of(deployment, "Deployment"),
        _name_of(version, "Version"),
        body_stream(request),
        filename,
    )
    return revision_out(revision)


@router.get(D + "/logs", response_model=schemas.LogsOut, summary="What the deployment's instances wrote")
def deployment_logs(
    deployment: str,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
    version: str | None = Query(None, description="Only this version."),
    since: datetime | None = Query(
        None, description="Lines from this time on (ISO 8601, or Unix seconds; inclusive).", json_schema_extra=_TIME
    ),
    until: datetime | None = Query(
        None, description="Lines before this time (ISO 8601, or Unix seconds; exclusive).", json_schema_extra=_TIME
    ),
    level: str | None = Query(None, description="info (stdout and system lines) or error (stderr)."),
    contains: str | None = Query(None, max_length=1024, description="Only lines containing this text."),
    limit: int = Query(serving_logs.DEFAULT_LIMIT, ge=1, le=serving_logs.MAX_LIMIT, description="At most this many."),
):
    """Runtime logs: what `Deployment.__init__` and `request()` printed (stdout, stderr) and the executor's notes on
    the instances (starts, exits, restarts), kept in memory for the versions this server runs. Build logs are on
    the revisions."""
    if level not in (None, "info", "error"):
        raise InvalidInput("level must be info or error")
    labels = () if level is None else (LabelMatch("level", "=", level),)
    lines = () if not contains else (LineFilter("|=", contains),)
    entries = serving_logs.deployment_logs(
        services.serving,
        principal,
        project,
        query=LogQuery(labels, lines),
        deployment=_name_of(deployment, "Deployment"),
        version=None if version is None else _name_of(version, "Version"),
        start=None if since is None else _epoch(since),
        end=None if until is None else _epoch(until),
        limit=limit,
    )
    return {
        "items": [
            {
                "time": datetime.fromtimestamp(e.time, tz=UTC),
                "deployment": e.deployment,
                "version": e.version,
                "instance": e.instance,
                "pid": e.pid,
                "stream": e.stream,
                "level": e.level,
                "text": e.text,
            }
            for e in entries
        ]
    }


def _epoch(t: datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@router.get(V + "/revisions", response_model=list[schemas.RevisionOut], summary="A version's revisions, oldest first")
def list_revisions(deployment: str, version: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return [
        revision_out(r)
        for r in services.serving.list_revisions(
            principal, project, _name_of(deployment, "Deployment"), _name_of(version, "Version")
        )
    ]


@router.get(V + "/revisions/{revision_id}", response_model=schemas.RevisionDetailOut, summary="One revision")
def get_revision(
    deployment: str,
    version: str,
    revision_id: str,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Its build status, error and build log."""
    args = (
        principal,
        project,
        _name_of(deployment, "Deployment"),
        _name_of(version, "Version"),
        _name_of(revision_id, "Revision"),
    )
    r = services.serving.get_revision(*args)
    return schemas.RevisionDetailOut(**_revision_fields(r), build_log=services.serving.revision_log(*args))


# --- predictions ---------------------------------------------------------------------------------
async def _input(request: Request) -> Any:
    """JSON (checked: api/jsonbody.py; NaN and Infinity pass, as Python clients write them), or the text itself
    when the body is ``text/*``."""
    raw = await read_body(request, limit=MAX_PREDICT_BODY, what="a prediction's input")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype.startswith("text/"):
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise InvalidInput("Plain input must be UTF-8 text.") from None
    if blank(raw):
        raise InvalidInput("The body is empty: send the input as JSON (or as text/plain for a plain deployment).")
    try:
        return loads(raw, nan=True)
    except JsonRejected as exc:
        if exc.problem != "syntax":
            raise
        raise InvalidInput(
            f"{exc.message} (send plain text with Content-Type: text/plain for a plain deployment)"
        ) from None


@router.post(
    D + "/predict",
    response_model=schemas.PredictionOut,
    summary="Ask a deployment for a prediction",
    openapi_extra=_RAW_JSON_OR_TEXT,
)
async def predict(
    project: str,
    deployment: str,
    request: Request,
    version: str | None = Query(None, max_length=64, description="A version (default: the deployment's default)."),
    timeout: int | None = Query(None, description="Seconds, 10 to 3600 (default 300)."),
):
    """Input that does not match the deployment's fields → 400 naming the field; a JSON array is a batch (one
    result per item). A ``request()`` that raises (or answers a wrong output) → 200 with ``status: failed`` and the
    reason."""
    services, principal, project = await _resolve(request, project)
    data = await _input(request)
    r = await services.serving.request(
        principal,
        project,
        _name_of(deployment, "Deployment"),
        data,
        version=_optional(version, "Version"),
        timeout=timeout,
    )
    return schemas.PredictionOut(
        id=r.id,
        deployment=r.deployment,
        version=r.version,
        status=r.status,
        result=r.result,
        error_message=r.error_message,
    )


# --- environment variables -----------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    project: str
    deployment: str | None = None
    version: str | None = None


def _project_level(project: ProjectDep) -> Level:
    return Level(project)


def _deployment_level(project: ProjectDep, deployment: str) -> Level:
    return Level(project, _name_of(deployment, "Deployment"))


def _version_level(project: ProjectDep, deployment: str, version: str) -> Level:
    return Level(project, _name_of(deployment, "Deployment"), _name_of(version, "Version"))


def _env_routes(prefix: str, level_of, what: str) -> None:
    level_dep = Depends(level_of)

    @router.get(
        prefix + "/environment-variables",
        response_model=list[schemas.EnvVarOut],
        summary=f"{what.capitalize()} environment variables, inherited ones first",
        operation_id=f"list_{what}_environment_variables",
    )
    def list_vars(principal: PrincipalDep, services: ServicesDep, level: Level = level_dep):
        items = services.serving.list_env_vars(principal, level.project, level.deployment, level.version)
        return [env_var_out(e) for e in items]

    @router.post(
        prefix + "/environment-variables",
        status_code=status.HTTP_201_CREATED,
        response_model=schemas.EnvVarOut,
        summary=f"Create a {what} environment variable",
        operation_id=f"create_{what}_environment_variable",
    )
    def create_var(body: schemas.EnvVarIn, principal: PrincipalDep, services: ServicesDep, level: Level = level_dep):
        e = services.serving.create_env_var(
            principal, level.project, env_var_in(body.model_dump(), creating=True), level.deployment, level.version
        )
        return env_var_out(e)

    @router.patch(
        prefix + "/environment-variables/{var_id}",
        response_model=schemas.EnvVarOut,
        summary=f"Change a {what} environment variable",
        operation_id=f"update_{what}_environment_variable",
    )
    def update_var(
        var_id: str,
        body: schemas.EnvVarPatchIn,
        principal: PrincipalDep,
        services: ServicesDep,
        level: Level = level_dep,
    ):
        e = services.serving.update_env_var(
            principal,
            level.project,
            _name_of(var_id, "Variable"),
            env_var_in(_body(body), creating=False),
            level.deployment,
            level.version,
        )
        return env_var_out(e)

    @router.delete(
        prefix + "/environment-variables/{var_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary=f"Delete a {what} environment variable",
        operation_id=f"delete_{what}_environment_variable",
    )
    def delete_var(var_id: str, principal: PrincipalDep, services: ServicesDep, level: Level = level_dep):
        services.serving.delete_env_var(
            principal, level.project, _name_of(var_id, "Variable"), level.deployment, level.version
        )
        return Response(status_code=204)


_env_routes("", _project_level, "project")
_env_routes(D, _deployment_level, "deployment")
_env_routes(V, _version_level, "version")


# --- pipelines -----------------------------------------------------------------------------------
@router.get("/pipelines", response_model=list[schemas.PipelineOut], summary="The project's pipelines")
def list_pipelines(project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return [pipeline_out(p) for p in services.pipelines.list_pipelines(principal, project)]


@router.post(
    "/pipelines", status_code=status.HTTP_201_CREATED, response_model=schemas.PipelineOut, summary="Create a pipeline"
)
def create_pipeline(body: schemas.PipelineIn, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return pipeline_out(services.pipelines.create_pipeline(principal, project, pipeline_in(_body(body))))


@router.get(PL, response_model=schemas.PipelineOut, summary="One pipeline")
def get_pipeline(pipeline: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return pipeline_out(services.pipelines.get_pipeline(principal, project, _name_of(pipeline, "Pipeline")))


@router.delete(PL, status_code=status.HTTP_204_NO_CONTENT, summary="Delete a pipeline with its versions")
def delete_pipeline(pipeline: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    services.pipelines.delete_pipeline(principal, project, _name_of(pipeline, "Pipeline"))
    return Response(status_code=204)


@router.get(PL + "/versions", response_model=list[schemas.PipelineVersionOut], summary="A pipeline's versions")
def list_pipeline_versions(pipeline: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    return [
        pipeline_version_out(v)
        for v in services.pipelines.list_versions(principal, project, _name_of(pipeline, "Pipeline"))
    ]


@router.post(
    PL + "/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.PipelineVersionOut,
    summary="Create a pipeline version (its graph of deployments)",
)
def create_pipeline_version(
    pipeline: str,
    body: schemas.PipelineVersionIn,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """``objects`` are deployments (optionally pinned to a version); ``attachments`` feed each object and
    ``pipeline_end`` from ``pipeline_start`` and other objects, field by field. Checked when saved."""
    payload = _body(body)
    payload["objects"] = [o.model_dump(exclude_none=True) for o in body.objects]
    payload["attachments"] = [a.model_dump() for a in body.attachments]
    return pipeline_version_out(
        services.pipelines.create_version(
            principal, project, _name_of(pipeline, "Pipeline"), pipeline_version_in(payload, creating=True)
        )
    )


@router.get(PL + "/versions/{version}", response_model=schemas.PipelineVersionOut, summary="One pipeline version")
def get_pipeline_version(
    pipeline: str, version: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep
):
    return pipeline_version_out(
        services.pipelines.get_version(principal, project, _name_of(pipeline, "Pipeline"), _name_of(version, "Version"))
    )


@router.delete(PL + "/versions/{version}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a pipeline version")
def delete_pipeline_version(
    pipeline: str, version: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep
):
    services.pipelines.delete_version(principal, project, _name_of(pipeline, "Pipeline"), _name_of(version, "Version"))
    return Response(status_code=204)


@router.post(
    PL + "/predict",
    response_model=schemas.PipelinePredictionOut,
    summary="Ask a pipeline for a prediction",
    openapi_extra=_RAW_JSON_OR_TEXT,
)
async def predict_pipeline(
    project: str,
    pipeline: str,
    request: Request,
    version: str | None = Query(None, max_length=64, description="A version (default: the pipeline's default)."),
    timeout: int | None = Query(None, description="Seconds for the whole pipeline, 10 to 7200 (default 3600)."),
):
    """Runs the objects in dependency order; the first failure fails the answer (``status: failed``, naming the
    object)."""
    services, principal, project = await _resolve(request, project)
    data = await _input(request)
    r = await services.pipelines.request(
        principal,
        project,
        _name_of(pipeline, "Pipeline"),
        data,
        version=_optional(version, "Version"),
        timeout=timeout,
    )
    return pipeline_result_out(r)
