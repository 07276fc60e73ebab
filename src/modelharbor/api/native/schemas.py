"""Wire models of the native API. The SDK imports these; the core never does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorOut(BaseModel):
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


class UploadStartIn(Strict):
    name: str = Field(min_length=1, max_length=1024)
    total_chunks: int = Field(ge=1)
    size: int | None = Field(None, ge=0)
    context: str = Field("", max_length=200)


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


# Request bodies of the catalogue are validated by the core (per-field messages in ``details.fields``);
# these models only describe them in the OpenAPI document.
class CatalogueModelIn(BaseModel):
    name: str = Field(max_length=200)
    url: str = Field(max_length=200)
    description: str = ""
    metadata: str = ""
    framework: int = Field(description="The framework's pk.")
    domain: str = Field(description="The domain's code, e.g. 'ic'.")
    licence: str = Field(description="The licence's name, e.g. 'MIT'.")


class ModelDataFromFileIn(BaseModel):
    file_id: str = Field(description="An already-uploaded file; its bytes are shared, not copied.")


class FrameworkIn(BaseModel):
    name: str = Field(max_length=32)
    version: str = Field(max_length=32)


class LicenceIn(BaseModel):
    name: str = Field(max_length=100)
    url: str = Field(max_length=200)


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
