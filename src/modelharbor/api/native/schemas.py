"""Wire models of the native API. The SDK imports these; the core never does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """A request body: no field the model does not name, and JSON's own types (``false`` is not a number, ``"1"``
    not an integer), as the OpenAPI document declares them."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine code: INVALID_INPUT, UNAUTHENTICATED, NOT_FOUND, CONFLICT, ….")
    message: str = Field(description="What went wrong and what to do about it.")
    details: dict[str, Any] = Field(description="More about it (problems, fields, missing chunks…); may be empty.")


class ErrorOut(BaseModel):
    """Every error of the native API."""

    error: ErrorBody


class FileOut(BaseModel):
    id: str
    name: str
    extension: str
    size: int
    sha256: str
    content_type: str
    context: str
    owner_id: str
    created_at: datetime
    internal: bool = Field(
        False,
        description="Kept by the server for one of its own objects (a deployment or environment package, a project "
        "export's or import's zip); listed only with `all=true`.",
    )


class FileUseOut(BaseModel):
    kind: str = Field(
        description="artifact, catalogue_model, imported_model, model_version, deployment_version, environment_tag, "
        "export or import."
    )
    id: str = Field(description="What the object's API addresses it by (`<model>/<version>` for a model version).")
    name: str = Field(description="What it is called (`project/deployment/version`, `project/environment:tag`, …).")


class FileDetailOut(FileOut):
    used_by: list[FileUseOut] = Field(description="Every object that uses the file; empty when none does.")


class FileList(BaseModel):
    items: list[FileOut]
    total: int
    limit: int
    offset: int


class LinkIn(Strict):
    expires_in: int | None = Field(None, ge=1, description="Seconds the link stays valid (default LINK_TTL).")


class LinkOut(BaseModel):
    url: str
    expires_at: datetime


HEX_SHA256 = r"^[0-9a-fA-F]{64}$"


class UploadStartIn(Strict):
    name: str = Field(min_length=1, max_length=1024)
    total_chunks: int = Field(ge=1)
    size: int | None = Field(None, ge=0)
    context: str = Field("", max_length=200)
    chunk_size: int | None = Field(
        None,
        ge=1,
        description="Bytes per chunk (the last may be shorter); every chunk is then held to it. Without it the server "
        "records the size of the first full chunk.",
    )
    fingerprint: str | None = Field(
        None,
        pattern=HEX_SHA256,
        description="Hex SHA-256 of the file's size in decimal ASCII, a newline, its first MiB and its last MiB "
        "(docs/uploads.md): what a resume finds the session by (`GET /uploads?name=&size=&fingerprint=`).",
    )
    sha256: str | None = Field(
        None,
        pattern=HEX_SHA256,
        description="Hex SHA-256 of the whole file. With `size`: content your organisation already holds makes the "
        "file at once (`state` completed, `deduplicated` true, no chunk to send); otherwise completing refuses a "
        "file with another hash (`SHA256_MISMATCH`).",
    )


class ChunkOut(BaseModel):
    number: int
    size: int


class UploadOut(BaseModel):
    id: str
    name: str
    size: int | None
    total_chunks: int
    context: str
    state: str
    expires_at: datetime
    created_at: datetime
    received_bytes: int
    chunks: list[ChunkOut]
    missing_chunks: list[int]
    file_id: str | None = None
    chunk_size: int | None = Field(
        None,
        description="Bytes per chunk: a resuming client cuts the file by this, not by its own default. Null while "
        "no full chunk arrived (cut `size` into `total_chunks` chunks) or when the chunks disagree (start anew).",
    )
    fingerprint: str | None = None
    deduplicated: bool = Field(False, description="Completed at once from content the organisation already held.")


class CompleteOut(BaseModel):
    upload: UploadOut
    file: FileOut
    result: dict[str, Any] = {}


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    username: str | None = None
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    user_id: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    key: str | None = Field(None, description="The secret; returned only once, when the key is created.")


class UserIn(Strict):
    username: str = Field(
        min_length=1, max_length=200, description="Unique on the server; printable, no leading or trailing spaces."
    )
    password: str | None = Field(
        None, description="At least 12 characters (docs/api.md, Users); without one the user signs in with keys only."
    )
    role: str | None = Field(None, description="viewer, member (the default), admin or owner; at most your own.")
    org: str | None = Field(None, description="The organisation (id or name; superusers only). Default: yours.")


class UserOut(BaseModel):
    id: str
    username: str
    org_id: str = Field(description="The organisation this membership is of (the caller's, or the one asked for).")
    role: str
    is_superuser: bool
    created_at: datetime
    has_password: bool = Field(description="Whether the user can sign in with a password (UFDL, MLflow Basic).")


class PasswordIn(Strict):
    password: str = Field(description="The new password: at least 12 characters.")
    current_password: str | None = Field(
        None, description="Your current password, when you change your own (and have one)."
    )


class MeOut(BaseModel):
    user_id: str
    username: str
    org_id: str
    role: str
    is_superuser: bool


class TaskOut(BaseModel):
    id: str
    kind: str
    status: str
    percent: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime


class ImportedModelOut(BaseModel):
    id: str
    name: str
    is_adapter: bool
    status: str
    file_id: str | None
    error: str | None
    created_at: datetime


# --- the pretrained-model catalogue ----------------------------------------------------------------
class FrameworkOut(BaseModel):
    pk: int
    name: str
    version: str


class DomainOut(BaseModel):
    pk: int
    name: str = Field(description="The domain's code, e.g. 'ic'.")
    description: str


class LicenceRefOut(BaseModel):
    pk: int
    name: str
    url: str


class LicenceOut(LicenceRefOut):
    permissions: list[str]
    conditions: list[str]
    limitations: list[str]
    domains: list[str]


class ModelDataOut(BaseModel):
    file_id: str
    size: int
    sha256: str


class CatalogueModelOut(BaseModel):
    pk: int
    name: str
    url: str
    description: str
    metadata: str
    framework: FrameworkOut
    domain: DomainOut
    licence: LicenceRefOut
    data: ModelDataOut | None = Field(description="The model's data (a file), or null when it has none.")
    creator_id: str | None
    creation_time: datetime
    deletion_time: datetime | None = Field(description="Set while the model is (soft-)deleted.")


# Request bodies of the catalogue are validated by the core (per-field messages in ``details.fields``), with the
# rules of the UFDL dialect it shares: a text field also takes a number (as its text) and may not be blank (only
# spaces) unless it may be empty. These models only describe the bodies in the OpenAPI document.
Text = str | int | float
ShortText = Annotated[str, Field(max_length=200, pattern=r"\S")] | int | float


class CatalogueModelIn(BaseModel):
    name: ShortText = Field(description="At most 200 characters, not blank (a number is taken as its text).")
    url: ShortText = Field(description="At most 200 characters, not blank (a number is taken as its text).")
    description: Text = Field("", description="A number is taken as its text.")
    metadata: Text = Field("", description="A number is taken as its text.")
    framework: int | Annotated[str, Field(pattern=r"^[0-9]+$")] = Field(
        description="The framework's pk (a number, or its digits)."
    )
    domain: str = Field(description="The domain's code, e.g. 'ic'.")
    licence: str | int = Field(description="The licence's name, e.g. 'MIT', or its pk.")


class ModelDataFromFileIn(BaseModel):
    file_id: str = Field(pattern=r"\S", description="An already-uploaded file; its bytes are shared, not copied.")


class FrameworkIn(BaseModel):
    name: str = Field(max_length=32, pattern=r"\S")
    version: str = Field(max_length=32, pattern=r"\S")


class LicenceIn(BaseModel):
    name: str = Field(max_length=100, pattern=r"\S")
    url: str = Field(max_length=200, pattern=r"\S")


# --- the model registry ----------------------------------------------------------------------------
class ModelVersionOut(BaseModel):
    name: str = Field(description="The registered model's name.")
    version: int
    description: str
    source: str = Field(description="Where the files are: models:/m-…, runs:/…, mlflow-artifacts:/…, modelharbor:/…")
    run_id: str | None
    run_link: str | None
    model_id: str | None = Field(description="The MLflow 3 logged model holding the files, if any.")
    current_stage: str
    status: str
    tags: dict[str, str]
    aliases: list[str]
    creator_id: str | None
    creation_time: datetime
    last_updated_time: datetime


class RegisteredModelOut(BaseModel):
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int] = Field(description="Alias → version number.")
    latest_versions: list[ModelVersionOut] = Field(description="The newest version in each stage that has one.")
    project_id: str | None
    creator_id: str | None
    creation_time: datetime
    last_updated_time: datetime


class RegisteredModelPage(BaseModel):
    models: list[RegisteredModelOut]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null on the last.")


class ModelVersionPage(BaseModel):
    versions: list[ModelVersionOut]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null on the last.")


class VersionFileOut(BaseModel):
    path: str = Field(description="Relative to the version's root, '/'-separated.")
    size: int
    sha256: str
    file_id: str = Field(description="Download it from /api/v1/files/{file_id}/content (Range, signed links).")


class RegisteredModelIn(Strict):
    name: str
    description: str | None = None
    tags: dict[str, str] | None = None


class RegisteredModelPatchIn(Strict):
    description: str


class VersionFileIn(Strict):
    path: str = Field(description="Relative path inside the version, e.g. 'MLmodel' or 'weights/model.bin'.")
    file_id: str = Field(description="An uploaded file of your organisation; its record is used, no bytes copied.")


class ModelVersionIn(Strict):
    files: list[VersionFileIn] | None = Field(None, description="The version's files (give these or source).")
    source: str | None = Field(None, description="Or: a model URI this server holds, e.g. models:/m-… or runs:/….")
    description: str | None = None
    tags: dict[str, str] | None = None
    run_id: str | None = Field(None, description="The MLflow run the model came from, if any.")
    aliases: list[str] | None = Field(None, description="Aliases to point at the new version.")
    create_model: bool = Field(False, description="Create the registered model if it does not exist.")
    model_description: str | None = Field(None, description="The description of a model created here.")


class ModelVersionPatchIn(Strict):
    description: str


class AliasIn(Strict):
    version: int


class StageIn(Strict):
    stage: str
    archive_existing_versions: bool = False


# --- serving: deployments, versions, packages, predictions, environment variables, pipelines -----
DataType = Literal[
    "int", "string", "double", "bool", "dict", "file", "array_int", "array_double", "array_string", "array_file"
]
IoType = Literal["structured", "plain"]
RetentionMode = Literal["none", "metadata", "full"]


def _no_nul(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'a string'} must not contain NUL characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k, where)
            _no_nul(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _no_nul(v, f"{where}.{i}")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _no_nul(getattr(value, name), f"{where}.{name}" if where else name)


class ServingIn(Strict):
    """A request body of the serving routes: no NUL character anywhere (names end up in queries)."""

    @model_validator(mode="after")
    def _refuse_nul(self):
        _no_nul(self, "")
        return self


class ServingFieldIn(ServingIn):
    name: str = Field(min_length=1, max_length=64)
    data_type: DataType
    widget: dict[str, Any] | None = None


class ServingFieldOut(BaseModel):
    name: str
    data_type: str
    widget: dict[str, Any] | None = None


class EnvironmentOut(BaseModel):
    name: str
    system: bool = Field(description="True for a base environment (an interpreter of the server).")
    description: str
    base_environment: str | None = Field(description="A custom environment's base; null for base environments.")


class DeploymentOut(BaseModel):
    id: str
    project: str = Field(description="The project's name.")
    name: str
    description: str
    input_type: str = Field(description="structured (typed fields) or plain (text).")
    output_type: str
    input_fields: list[ServingFieldOut]
    output_fields: list[ServingFieldOut]
    labels: dict[str, str]
    default_version: str | None = Field(description="The version requests without ?version= go to.")
    created_at: datetime
    updated_at: datetime


class DeploymentIn(ServingIn):
    name: str = Field(description="Lowercase letters, digits, '-' and '_' (at most 64), unique in the project.")
    description: str | None = None
    input_type: IoType = "structured"
    output_type: IoType = "structured"
    input_fields: list[ServingFieldIn] = Field([], description="Structured input only.")
    output_fields: list[ServingFieldIn] = Field([], description="Structured output only.")
    labels: dict[str, str] | None = None


class DeploymentPatchIn(ServingIn):
    name: str | None = None
    description: str | None = None
    input_fields: list[ServingFieldIn] | None = None
    output_fields: list[ServingFieldIn] | None = None
    labels: dict[str, str] | None = None
    default_version: str | None = Field(None, description="Make this version the default.")


class DeploymentVersionOut(BaseModel):
    id: str
    deployment: str
    version: str
    description: str
    labels: dict[str, str]
    environment: str
    status: str = Field(description="available (a built revision serves), processing (building) or unavailable.")
    is_default: bool
    active_revision: str | None = Field(description="The revision that serves: the newest that built.")
    latest_revision: str | None = Field(description="The newest uploaded revision (it may still be building).")
    minimum_instances: int
    maximum_instances: int
    maximum_idle_time: int = Field(description="Seconds an idle instance above the minimum lives.")
    request_retention_mode: str
    request_retention_time: int
    maximum_queue_size: int
    has_request_method: bool | None
    has_requests_method: bool | None
    last_file_upload: datetime | None
    created_at: datetime
    updated_at: datetime


class DeploymentVersionIn(ServingIn):
    version: str = Field(description="Lowercase letters, digits, '-' and '_' (at most 64), e.g. v1.")
    description: str | None = None
    environment: str | None = Field(None, description="A base environment (python3-11, …) or a custom one.")
    minimum_instances: int | None = Field(None, ge=0, le=20)
    maximum_instances: int | None = Field(None, ge=1, le=20)
    maximum_idle_time: int | None = Field(None, ge=10, description="Seconds (default 300).")
    request_retention_mode: RetentionMode | None = None
    request_retention_time: int | None = Field(None, ge=0)
    maximum_queue_size: int | None = Field(None, ge=1)
    labels: dict[str, str] | None = None


class DeploymentVersionPatchIn(DeploymentVersionIn):
    version: str | None = Field(None, description="Rename the version.")


class LogLineOut(BaseModel):
    time: datetime
    deployment: str
    version: str
    instance: str = Field(description="The instance (worker process) that wrote it.")
    pid: int | None
    stream: str = Field(description="stdout, stderr, or system (the executor's own notes on the instance).")
    level: str = Field(description="info (stdout and system) or error (stderr).")
    text: str


class LogsOut(BaseModel):
    items: list[LogLineOut] = Field(description="Oldest first: the newest `limit` lines that match.")


class RevisionOut(BaseModel):
    id: str
    version: str
    status: str = Field(description="queued, building, success or failed.")
    error_message: str | None = Field(description="Why the build failed (at most 1,024 characters).")
    created_by: str | None
    created_at: datetime
    has_request_method: bool | None
    has_requests_method: bool | None
    file_id: str | None = Field(description="The package (a file; download it from /api/v1/files/{id}/content).")


class RevisionDetailOut(RevisionOut):
    build_log: str = Field(description="What the build did, line by line (the tail of a long log).")


class PredictionOut(BaseModel):
    id: str
    deployment: str
    version: str
    status: str = Field(description="completed or failed (a failed prediction is an answer, not an error).")
    result: Any = Field(description="The output (an object, a list for a batch, or text for plain deployments).")
    error_message: str | None


class EnvVarOut(BaseModel):
    id: str
    name: str
    value: str | None = Field(description="Null for secrets: their values are never returned.")
    secret: bool
    inheritance_type: str | None = Field(description="project or deployment when inherited; null for own ones.")
    inheritance_name: str | None = Field(description="The name of the level it is inherited from.")


class EnvVarIn(ServingIn):
    name: str = Field(description="Letters, digits and '_', starting with a letter, not ending with '_', ≤ 64.")
    value: str = Field(description="At most 64 KiB; encrypted at rest.")
    secret: bool = Field(False, strict=True, description="A secret's value is never returned.")


class EnvVarPatchIn(ServingIn):
    name: str | None = None
    value: str | None = None
    secret: bool | None = Field(None, strict=True, description="Making a secret visible needs its value again.")


class PipelineOut(BaseModel):
    id: str
    project: str
    name: str
    description: str
    input_type: str
    output_type: str
    input_fields: list[ServingFieldOut]
    output_fields: list[ServingFieldOut]
    labels: dict[str, str]
    default_version: str | None
    created_at: datetime
    updated_at: datetime


class PipelineIn(ServingIn):
    name: str
    description: str | None = None
    input_type: IoType = "structured"
    output_type: IoType = "structured"
    input_fields: list[ServingFieldIn] = []
    output_fields: list[ServingFieldIn] = []
    labels: dict[str, str] | None = None


class PipelineObjectIn(ServingIn):
    name: str = Field(description="The object's name within the version.")
    reference_name: str = Field(description="The deployment it runs.")
    version: str | None = Field(None, description="Pin a version of the deployment (default: its default).")
    configuration: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class FieldMappingIn(ServingIn):
    source_field_name: str
    destination_field_name: str


class AttachmentSourceIn(ServingIn):
    source_name: str = Field(description="pipeline_start or an object's name.")
    mapping: list[FieldMappingIn] = []


class AttachmentIn(ServingIn):
    destination_name: str = Field(description="pipeline_end or an object's name.")
    sources: list[AttachmentSourceIn]


class PipelineVersionOut(BaseModel):
    id: str
    pipeline: str
    version: str
    description: str
    labels: dict[str, str]
    is_default: bool
    request_retention_mode: str
    objects: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class PipelineVersionIn(ServingIn):
    version: str
    description: str | None = None
    objects: list[PipelineObjectIn] = []
    attachments: list[AttachmentIn] = []
    request_retention_mode: RetentionMode | None = None
    labels: dict[str, str] | None = None


class PipelineStepOut(BaseModel):
    id: str
    object_name: str
    deployment: str
    version: str
    status: str
    error_message: str | None
    started_at: datetime
    finished_at: datetime


class PipelinePredictionOut(BaseModel):
    id: str
    pipeline: str
    version: str
    status: str = Field(description="completed or failed (naming the object that failed).")
    result: Any
    error_message: str | None
    steps: list[PipelineStepOut] = Field(description="Each object's request, in the order they finished.")


# --- project exports and imports -----------------------------------------------------------------
class ExportIn(Strict):
    """What to export: a selection (the UbiOps dialect's shape), or ``all``."""

    all: bool = Field(False, strict=True, description="Everything, with values (the selection is ignored).")
    packages: bool = Field(True, strict=True, description="Each version's package (the one it serves, else newest).")
    description: str | None = None
    deployments: dict[str, Any] = Field(
        {},
        description='{"<d>": {"versions": {"<v>": {"environment_variables": {"<NAME>": {"include_value": true}}}}, '
        '"environment_variables": {...}}}',
    )
    pipelines: dict[str, Any] = Field({}, description='{"<p>": {"versions": {"<v>": {}}}}')
    environment_variables: dict[str, Any] = Field({}, description='Project level: {"<NAME>": {"include_value": true}}')
    environments: dict[str, Any] = Field({}, description='Custom environments: {"<e>": {}}')


class ExportOut(BaseModel):
    id: str
    project: str
    status: str = Field(description="pending, processing, completed or failed.")
    percent: int | None = Field(description="How far the export's task is (100 once completed; null when failed).")
    error_message: str | None
    description: str
    size: int | None = Field(description="Bytes of the zip, once completed.")
    packages: bool
    created_by: str | None = Field(description="The username.")
    created_at: datetime


class ExportDetailOut(ExportOut):
    deployments: dict[str, Any]
    pipelines: dict[str, Any]
    environment_variables: dict[str, Any]
    environments: dict[str, Any]
    file_id: str | None = Field(description="The zip (a file; signed links work on it), once completed.")
    sha256: str | None = Field(description="The zip's SHA-256, once completed.")


class ImportIn(Strict):
    """Exactly one of ``file_id``, ``export_id`` or ``import_link``."""

    file_id: str | None = Field(None, description="An uploaded zip (e.g. through a chunked upload); not copied.")
    export_id: str | None = Field(None, description="A completed export of the same project.")
    import_link: str | None = Field(None, description="An https:// URL the server downloads.")
    skip_confirmation: bool = Field(False, strict=True, description="Import everything without the confirmation.")


class ImportOut(BaseModel):
    id: str
    project: str
    status: str = Field(
        description="pending, scanning, confirmation, confirmation_pending, processing, completed or failed."
    )
    percent: int | None = Field(description="How far the import's task is (null at confirmation and when failed).")
    error_message: str | None
    size: int | None
    source: str = Field(description="file, export or link.")
    skip_confirmation: bool
    created_by: str | None
    created_at: datetime


class ImportDetailOut(ImportOut):
    deployments: dict[str, Any] = Field(description="What the zip holds (once scanned), in the confirmation's shape.")
    pipelines: dict[str, Any]
    environment_variables: dict[str, Any]
    environments: dict[str, Any]


class ImportConfirmIn(Strict):
    """The objects to create, keyed by name, in the detail's shape; entries left out are not imported."""

    deployments: dict[str, Any] = {}
    pipelines: dict[str, Any] = {}
    environment_variables: dict[str, Any] = {}
    environments: dict[str, Any] = {}


# --- access requests (api/native/access_requests.py) ---
class AccessRequestOut(BaseModel):
    id: str
    project_id: str
    project_name: str
    user_id: str
    username: str | None
    role: str
    message: str
    status: str = Field(description="Pending, Approved or Declined.")
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
