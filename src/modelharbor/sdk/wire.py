"""The SDK's typed objects: the native API's own wire schemas (``modelharbor.api.native.schemas``), each opened to
the fields a newer server may add (``extra="allow"``: they stay readable as attributes and in ``model_dump()``).

A few answers are described by models that live beside their routes rather than in ``schemas.py`` (projects,
organisations) or that a newer server adds (users, a file's users): they are mirrored at the end of this module,
field for field, until ``schemas.py`` holds them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelharbor.api.native import schemas as s

OPEN = ConfigDict(extra="allow")


class File(s.FileOut):
    model_config = OPEN


class FilePage(s.FileList):
    model_config = OPEN
    items: list[File]


class Link(s.LinkOut):
    model_config = OPEN


class Chunk(s.ChunkOut):
    model_config = OPEN


class Upload(s.UploadOut):
    """A chunked upload session. A newer server adds ``chunk_size``, ``fingerprint`` and ``deduplicated``."""

    model_config = OPEN
    chunks: list[Chunk]


class Completed(s.CompleteOut):
    model_config = OPEN
    upload: Upload
    file: File


class Key(s.KeyOut):
    model_config = OPEN


class Me(s.MeOut):
    model_config = OPEN


class Task(s.TaskOut):
    model_config = OPEN


class ImportedModel(s.ImportedModelOut):
    model_config = OPEN


class Framework(s.FrameworkOut):
    model_config = OPEN


class Domain(s.DomainOut):
    model_config = OPEN


class Licence(s.LicenceOut):
    model_config = OPEN


class CatalogueModel(s.CatalogueModelOut):
    model_config = OPEN


class ModelVersion(s.ModelVersionOut):
    model_config = OPEN


class RegisteredModel(s.RegisteredModelOut):
    model_config = OPEN
    latest_versions: list[ModelVersion]


class RegisteredModelPage(s.RegisteredModelPage):
    model_config = OPEN
    models: list[RegisteredModel]


class ModelVersionPage(s.ModelVersionPage):
    model_config = OPEN
    versions: list[ModelVersion]


class VersionFile(s.VersionFileOut):
    model_config = OPEN


class Environment(s.EnvironmentOut):
    model_config = OPEN


class Deployment(s.DeploymentOut):
    model_config = OPEN


class DeploymentVersion(s.DeploymentVersionOut):
    model_config = OPEN


class LogLine(s.LogLineOut):
    model_config = OPEN


class Logs(s.LogsOut):
    model_config = OPEN
    items: list[LogLine]


class Revision(s.RevisionOut):
    model_config = OPEN


class RevisionDetail(s.RevisionDetailOut):
    model_config = OPEN


class Prediction(s.PredictionOut):
    model_config = OPEN


class EnvVar(s.EnvVarOut):
    model_config = OPEN


class Pipeline(s.PipelineOut):
    model_config = OPEN


class PipelineVersion(s.PipelineVersionOut):
    model_config = OPEN


class PipelinePrediction(s.PipelinePredictionOut):
    model_config = OPEN


class Export(s.ExportOut):
    model_config = OPEN


class ExportDetail(s.ExportDetailOut):
    model_config = OPEN


class Import(s.ImportOut):
    model_config = OPEN


class ImportDetail(s.ImportDetailOut):
    model_config = OPEN


# --- mirrors of models not (yet) in api/native/schemas.py -----------------------------------------------------
class Collaborator(BaseModel):
    """``CollaboratorOut`` of ``api/native/projects.py``."""

    model_config = OPEN
    user_id: str
    username: str
    role: str


class Project(BaseModel):
    """``ProjectOut`` of ``api/native/projects.py``."""

    model_config = OPEN
    id: str
    name: str
    description: str
    owner_id: str | None
    owner_username: str | None
    created_at: datetime
    stages: list[str]
    default_stages: bool
    collaborators: list[Collaborator]
    visibility: str = "Public"
    archived: bool = False
    tags: list[str] = []
    status: str = "active"
    owner_team_id: str | None = None


class Org(BaseModel):
    """``OrgOut`` of ``api/native/orgs.py``."""

    model_config = OPEN
    id: str
    name: str
    created_at: datetime
    members: int


class Member(BaseModel):
    """``MemberOut`` of ``api/native/orgs.py``."""

    model_config = OPEN
    user_id: str
    username: str
    org_id: str
    role: str
    is_superuser: bool


class User(s.UserOut):
    model_config = OPEN


class UsedBy(s.FileUseOut):
    model_config = OPEN


class FileDetail(s.FileDetailOut):
    """One file as ``GET /api/v1/files/{id}`` answers: the file, whether it is ``internal`` and what uses it."""

    model_config = OPEN
    used_by: list[UsedBy]


def dump(value: Any) -> Any:
    """JSON-ready data of a typed object (or a list of them, or plain data)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


class HardwareTier(BaseModel):
    """``HardwareTierOut`` of ``api/native/hardware_tiers.py``: sizes in cores and bytes."""

    model_config = OPEN
    id: str
    name: str
    cores: float
    cores_limit: float | None
    memory: int
    memory_limit: int | None
    gpus: int
    gpu_key: str | None
    cents_per_minute: float
    is_default: bool
    is_visible: bool
    is_archived: bool
    created_at: datetime
    updated_at: datetime


class ProjectCommit(BaseModel):
    """``CommitOut`` of ``api/native/project_files.py``: one commit of a project's files."""

    model_config = OPEN
    id: str
    number: int
    parent_id: str | None
    path: str
    author_id: str | None
    author: str | None
    created_at: datetime


class ProjectCommitList(BaseModel):
    model_config = OPEN
    items: list[ProjectCommit]
    limit: int
    offset: int


class ProjectFileEntry(BaseModel):
    """``EntryOut``: a file or directory at a commit."""

    model_config = OPEN
    path: str
    name: str
    is_dir: bool
    key: str
    size: int
    modified_at: datetime


class ProjectFileListing(BaseModel):
    """``ListingOut``: the entries under a path at a commit (``commit`` None while the project has no files)."""

    model_config = OPEN
    commit: ProjectCommit | None
    path: str
    entries: list[ProjectFileEntry]


class AccessRequest(s.AccessRequestOut):
    model_config = OPEN


class DataSource(BaseModel):
    """``DataSourceOut`` of ``api/native/data_sources.py``: never a credential."""

    model_config = OPEN
    id: str
    name: str
    description: str
    data_source_type: str
    auth_type: str
    credential_type: str
    config: dict[str, str]
    is_everyone: bool
    grantee_ids: list[str]
    owner_id: str | None
    owner_username: str
    created_at: datetime
    updated_at: datetime


class ConnectionTest(BaseModel):
    """``ConnectionTestOut`` of ``api/native/data_sources.py``."""

    model_config = OPEN
    ok: bool
    message: str
    data_source_type: str
    elapsed_ms: int


class DataSourceEvent(BaseModel):
    """``AuditEventOut`` of ``api/native/data_sources.py``."""

    model_config = OPEN
    data_source_id: str
    data_source_name: str
    data_source_type: str
    event_kind: str
    details: dict[str, str]
    performed_by: str
    timestamp: datetime


class Dataset(BaseModel):
    """``DatasetOut`` of ``api/native/dataset_records.py``: ``role`` is the caller's (DatasetRwReader, …Editor,
    …Owner); ``snapshot_ids`` newest first; ``tags`` tag → snapshot id."""

    model_config = OPEN
    id: str
    project_id: str
    project_name: str
    project_owner: str | None
    project_archived: bool
    name: str
    description: str
    created_at: datetime
    creator_id: str | None
    snapshot_ids: list[str]
    tags: dict[str, str]
    role: str


class DatasetPage(BaseModel):
    model_config = OPEN
    items: list[Dataset]
    total: int
    limit: int
    offset: int


class DatasetGrant(BaseModel):
    """``GrantOut``: a user's or team's role on a dataset."""

    model_config = OPEN
    target_id: str
    role: str
    is_team: bool
    target_name: str


class DatasetSnapshot(BaseModel):
    """``SnapshotOut``: an immutable state of a dataset's files (``size`` their bytes)."""

    model_config = OPEN
    id: str
    dataset_id: str
    created_at: datetime
    creator_id: str | None
    description: str
    size: int
    status: str


class DatasetSnapshotPage(BaseModel):
    model_config = OPEN
    items: list[DatasetSnapshot]
    total: int
    limit: int
    offset: int


class DatasetListing(BaseModel):
    """``DatasetListingOut`` of ``api/native/datasets.py``: the entries under a path of the head (``snapshot_id``
    None) or of a snapshot."""

    model_config = OPEN
    snapshot_id: str | None
    path: str
    entries: list[ProjectFileEntry]
