"""UbiOps' wire shapes as pydantic models: the error body, the credentials, the small answers the routes share, the
path templates, and the request bodies and query strings (the 4.15 client's names: ``DeploymentCreate``, …).

The objects themselves (projects, deployments, versions, requests…) are rendered by mapping.py in the 4.15 client's
shapes; request bodies are checked by the core, which names the field at fault. These models document them, and
:data:`INPUTS` says which route takes which (api/openapi.py writes it into the document).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from modelharbor.api.openapi import FORM, JSON, TEXT, Inputs, Takes

# The paths (under /v2 and /v2.1) the routes are declared at.
P = "/projects/{project_name}"
D = P + "/deployments/{deployment_name}"
V = D + "/versions/{version}"
PL = P + "/pipelines/{pipeline_name}"
PV = PL + "/versions/{version}"
E = P + "/environments/{environment_name}"
T = E + "/tags/{tag_name}"
R = E + "/revisions/{revision_id}"
EV = "/environment-variables"
EX = P + "/exports/{export_id}"
IM = P + "/imports/{import_id}"

SECURITY = {
    # the client sends "Authorization: Token <key>" for a bare API key; "Bearer <key>" works too
    "UbiOpsToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
}


class Error(BaseModel):
    """Every error: ``{"error": "what went wrong and what to do"}`` (401s add ``WWW-Authenticate: Token``)."""

    error: str


class Status(BaseModel):
    """``GET /status``: ``ok``, or ``fail`` with the reason when the database does not answer."""

    status: str
    reason: str | None = None


class Success(BaseModel):
    """The answer of builds, rebuilds and bulk operations (``revision``/``build`` on uploads, counts on bulks)."""

    success: bool
    revision: str | None = None
    build: str | None = None
    deleted: int | None = None
    cancelled: int | None = None


# --- requests -------------------------------------------------------------------------------------
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]  # a deployment, version or pipeline
Text = Annotated[str, Field(max_length=400)]
Labels = dict[str, str | None]
IoType = Literal["structured", "plain"]
DataType = Literal[
    "int", "string", "double", "bool", "dict", "file", "array_int", "array_double", "array_string", "array_file"
]
RetentionMode = Literal["none", "metadata", "full"]


class ProjectCreate(BaseModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
    organization_name: str | None = Field(None, description="The caller's organisation (the only one it may name).")


class ProjectUpdate(BaseModel):
    """Projects are not renamed: ``name``, when given, is the project's own."""

    name: str | None = None


class ProjectsQuery(BaseModel):
    organization: str | None = None
    labels: str | None = Field(None, description="key:value,key2:value2")


class EnvironmentCreate(BaseModel):
    name: str
    description: Text | None = None
    labels: Labels | None = None
    base_environment: str | None = None


class EnvironmentUpdate(BaseModel):
    description: Text | None = None
    labels: Labels | None = None


class EnvironmentsQuery(BaseModel):
    system: bool | None = Field(None, description="Only base (True) or only custom (False) environments.")
    labels: str | None = Field(None, description="key:value,key2:value2")


class EnvironmentTagCreate(BaseModel):
    name: str | None = None
    status: str | None = Field(None, description="A tag's status comes from its builds: leave it out.")
    supports_request_format: bool | None = None


class EnvironmentTagUpdate(BaseModel):
    status: str | None = None
    supports_request_format: bool | None = None


class TagsQuery(BaseModel):
    supports_request_format: bool | None = None


class EnvironmentPackage(BaseModel):
    """A ``file`` part (the environment package, a .zip), or ``source_environment`` + ``source_tag``."""

    file: bytes | None = None
    source_environment: str | None = None
    source_tag: str | None = None


class BuildQuery(BaseModel):
    base_environment_name: str | None = None
    base_environment_tag: str | None = None


class EnvironmentRevisionCreate(BaseModel):
    """A ``file`` part (the environment package), or ``source_environment``."""

    file: bytes | None = None
    source_environment: str | None = None


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?$")]


class EnvironmentVariableCreate(BaseModel):
    name: EnvName
    value: Annotated[str, Field(max_length=65536)]
    secret: bool = False


class EnvironmentVariableUpdate(BaseModel):
    name: EnvName | None = None
    value: Annotated[str, Field(max_length=65536)] | None = None
    secret: bool | None = None


class EnvironmentVariableCopy(BaseModel):
    source_deployment: Annotated[str, Field(min_length=1)]
    source_version: str | None = None


class FieldCreate(BaseModel):
    """An input or output field of a structured deployment or pipeline."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    data_type: DataType
    widget: dict[str, Any] | None = None


Fields = Annotated[list[FieldCreate], Field(max_length=100)]


class DeploymentCreate(BaseModel):
    name: Name
    description: Text | None = None
    input_type: IoType | None = None
    output_type: IoType | None = None
    input_fields: Fields | None = None
    output_fields: Fields | None = None
    labels: Labels | None = None
    supports_request_format: bool = True


class DeploymentUpdate(BaseModel):
    name: Name | None = None
    description: Text | None = None
    labels: Labels | None = None
    input_fields: Fields | None = None
    output_fields: Fields | None = None
    default_version: str | None = None


class DeploymentVersionUpdate(BaseModel):
    version: Name | None = None
    environment: str | None = Field(None, description="The environment (default: the newest base environment).")
    environment_name: str | None = None
    environment_tag: str | None = None
    description: Text | None = None
    labels: Labels | None = None
    minimum_instances: int | None = Field(None, ge=0, le=20)
    maximum_instances: int | None = Field(None, ge=1, le=20)
    maximum_idle_time: int | None = Field(None, ge=10, le=604800)
    request_retention_time: int | None = Field(None, ge=0, le=31536000)
    request_retention_mode: RetentionMode | None = None
    maximum_queue_size: int | None = Field(None, ge=1, le=100000)
    instance_type: str | None = None
    instance_type_group_id: str | None = None
    instance_type_group_name: Annotated[str, Field(max_length=256)] | None = None
    ports: list[Any] | None = None
    scaling_strategy: str | None = None
    instance_processes: int | None = None
    health_check: Any = None
    command: Any = None
    args: Any = None
    restart_request_interruption: bool | None = None


class DeploymentVersionCreate(DeploymentVersionUpdate):
    version: Name  # type: ignore[assignment]


class RevisionUpload(BaseModel):
    """A ``file`` part (the deployment package, a .zip), or ``source_deployment`` + ``source_version``."""

    file: bytes | None = None
    source_deployment: str | None = None
    source_version: str | None = None
    template_deployment_id: str | None = Field(None, description="Templates are not supported (400).")


class TimeoutQuery(BaseModel):
    timeout: int | None = Field(None, description="Seconds to wait for the result.")


class RequestsQuery(BaseModel):
    status: str | None = None
    limit: int | None = None
    offset: int | None = None
    start_date: str | None = None
    end_date: str | None = None
    search_id: str | None = None


class PageQuery(BaseModel):
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, description="Where the page starts (the next/previous link's cursor)")


class StatusQuery(BaseModel):
    status: str | None = None


class RequestQuery(BaseModel):
    metadata_only: bool = False


class RequestUpdate(BaseModel):
    """``DeploymentRequestUpdate``, ``PipelineRequestUpdate``: only cancelling."""

    status: Literal["cancelled"]


class PipelineCreate(BaseModel):
    name: Name
    description: Text | None = None
    input_type: IoType | None = None
    input_fields: Fields | None = None
    output_type: IoType | None = None
    output_fields: Fields | None = None
    labels: Labels | None = None


class PipelineUpdate(BaseModel):
    name: Name | None = None
    description: Text | None = None
    input_fields: Fields | None = None
    output_fields: Fields | None = None
    labels: Labels | None = None
    default_version: str | None = None


class PipelineVersionUpdate(BaseModel):
    version: Name | None = None
    description: Text | None = None
    labels: Labels | None = None
    request_retention_time: int | None = Field(None, ge=0)
    request_retention_mode: RetentionMode | None = None
    metadata: Any = None
    objects: list[dict[str, Any]] | None = Field(
        None, description="The deployments of the graph (name, reference_name…)."
    )
    attachments: list[dict[str, Any]] | None = Field(None, description="The graph's edges (destination_name, sources).")


class PipelineVersionCreate(PipelineVersionUpdate):
    version: Name  # type: ignore[assignment]


class ExportCreate(BaseModel):
    """What to export (ignored with ``?all=True``)."""

    deployments: dict[str, Any] | None = None
    pipelines: dict[str, Any] | None = None
    environment_variables: dict[str, Any] | None = None
    environments: dict[str, Any] | None = None
    description: str | None = None


class ExportQuery(BaseModel):
    all: bool = False
    packages: bool = True


class ImportCreate(BaseModel):
    """A ``file`` part (the zip), or ``import_link`` or ``export_id``."""

    file: bytes | None = None
    import_link: str | None = None
    export_id: str | None = None
    skip_confirmation: bool = False


class ImportUpdate(BaseModel):
    """The confirmation: the objects to create (an import's detail), secret values given again."""

    deployments: dict[str, Any] | None = None
    pipelines: dict[str, Any] | None = None
    environment_variables: dict[str, Any] | None = None
    environments: dict[str, Any] | None = None


class LogsQuery(BaseModel):
    query: str | None = Field(None, description="LogQL: a label selector and line filters.")
    start: str | None = Field(None, description="ISO 8601, inclusive.")
    end: str | None = Field(None, description="ISO 8601, exclusive.")
    limit: int = Field(1000, ge=1, le=5000)


JsonInput = Takes({JSON: Any, TEXT: str}, required=False, query=TimeoutQuery)  # structured (JSON) or plain (text)
REBUILD = Takes({JSON: dict[str, Any]}, required=False)  # nothing in it is read
IDS = Takes({JSON: list[str]})


def _json(model: Any, *, query: type[BaseModel] | None = None) -> Takes:
    return Takes({JSON: model}, query=query)


def _requests(base: str, *, kind: str) -> dict[tuple[str, str], Takes]:
    """A deployment's or pipeline's (``base``) requests: direct, batch, kept."""
    return {
        ("POST", base + "/requests"): JsonInput,
        ("POST", base + "/requests/batch"): _json(list[Any], query=TimeoutQuery),
        ("GET", base + "/requests"): Takes(query=RequestsQuery),
        ("POST", base + "/requests/collect"): IDS,
        ("POST", base + "/requests/delete"): IDS,
        ("POST", base + "/requests/cancel"): Takes({JSON: list[str]}, query=StatusQuery),
        ("GET", base + "/requests/{request_id}"): Takes(query=RequestQuery),
        ("PATCH", base + "/requests/{request_id}"): _json(RequestUpdate),
    }


def _env_vars(base: str) -> dict[tuple[str, str], Takes]:
    return {
        ("POST", base + EV): _json(EnvironmentVariableCreate),
        ("PATCH", base + EV + "/{var_id}"): _json(EnvironmentVariableUpdate),
    }


INPUTS: Inputs = {
    ("GET", P + "/instance-type-groups"): Takes(query=PageQuery),
    ("POST", "/projects"): _json(ProjectCreate),
    ("GET", "/projects"): Takes(query=ProjectsQuery),
    ("PATCH", P): _json(ProjectUpdate),
    ("GET", P + "/environments"): Takes(query=EnvironmentsQuery),
    ("POST", P + "/environments"): _json(EnvironmentCreate),
    ("PATCH", E): _json(EnvironmentUpdate),
    ("GET", E + "/tags"): Takes(query=TagsQuery),
    ("POST", E + "/tags"): _json(EnvironmentTagCreate),
    ("PATCH", T): _json(EnvironmentTagUpdate),
    ("POST", T + "/build"): Takes({FORM: EnvironmentPackage}, query=BuildQuery),
    ("POST", T + "/rebuild"): REBUILD,
    ("POST", E + "/revisions"): Takes({FORM: EnvironmentRevisionCreate}),
    ("POST", R + "/rebuild"): REBUILD,
    ("POST", P + "/deployments"): _json(DeploymentCreate),
    ("PATCH", D): _json(DeploymentUpdate),
    ("POST", D + "/versions"): _json(DeploymentVersionCreate),
    ("PATCH", V): _json(DeploymentVersionUpdate),
    ("POST", V + "/revisions"): Takes({FORM: RevisionUpload}),
    ("POST", V + "/revisions/{revision_id}/rebuild"): REBUILD,
    **_env_vars(P),
    **_env_vars(D),
    **_env_vars(V),
    ("POST", D + "/copy-environment-variables"): _json(EnvironmentVariableCopy),
    ("POST", V + "/copy-environment-variables"): _json(EnvironmentVariableCopy),
    **_requests(D, kind="deployment"),
    **_requests(V, kind="deployment"),
    ("POST", P + "/pipelines"): _json(PipelineCreate),
    ("PATCH", PL): _json(PipelineUpdate),
    ("POST", PL + "/versions"): _json(PipelineVersionCreate),
    ("PATCH", PV): _json(PipelineVersionUpdate),
    **_requests(PL, kind="pipeline"),
    **_requests(PV, kind="pipeline"),
    ("POST", P + "/exports"): Takes({JSON: ExportCreate}, required=False, query=ExportQuery),
    ("GET", P + "/exports"): Takes(query=StatusQuery),
    ("POST", P + "/imports"): Takes({FORM: ImportCreate}),
    ("GET", P + "/imports"): Takes(query=StatusQuery),
    ("PATCH", IM): _json(ImportUpdate),
    ("GET", P + "/logs"): Takes(query=LogsQuery),
}
