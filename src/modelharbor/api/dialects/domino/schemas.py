"""Domino's wire shapes as pydantic models: the error envelope, the metadata envelope, the credentials, and the
request bodies and query strings of the registered-model API (Domino 6.3's names).

Request bodies are checked field by field in the routes (``api/params.field``), answering Domino's own messages;
these models document them, and :data:`INPUTS` says which route takes which (api/openapi.py writes it into the
document).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from modelharbor.api.dialects.domino import (
    schemas_collab,
    schemas_data_sources,
    schemas_datasets,
    schemas_environments,
    schemas_projects,
)
from modelharbor.api.openapi import BYTES, JSON, Inputs, Takes

SECURITY = {
    "DominoApiKey": {"type": "apiKey", "in": "header", "name": "X-Domino-Api-Key"},
    "BearerAuth": {"type": "http", "scheme": "bearer"},
}


class FailureEnvelopeV1(BaseModel):
    errors: list[str]
    requestId: str


class Metadata(BaseModel):
    requestId: str
    notices: list[str]


class Version(BaseModel):
    version: str
    buildId: str
    commitId: str
    timestamp: str


# --- requests -------------------------------------------------------------------------------------
Tags = dict[str, str]


class NewRegisteredModelV1(BaseModel):
    """A new model from an experiment run's artifact (``POST /v1``; deprecated for ``/v2``)."""

    modelName: str
    experimentRunId: str
    discoverable: bool
    description: str | None = None
    tags: Tags | None = None
    projectId: str | None = None
    artifact: str | None = Field(None, description="The run's artifact path of the model (default: its only model).")


class PatchRegisteredModelV1(BaseModel):
    """At least one of the two."""

    description: str | None = None
    discoverable: bool | None = None


class RegisteredModelVersionStagesV1(BaseModel):
    stages: list[str] = Field(description="The project's stages, in order.")


class NewRegisteredModelVersionV1(BaseModel):
    artifact: str
    description: str
    experimentRunId: str


class UpdatedRegisteredModelVersionV1(BaseModel):
    modelVersionDescription: str | None = None
    stage: str | None = Field(None, description="One of the project's stages.")
    tags: Tags | None = None


class RegisteredModelVersionStageValidationV1(BaseModel):
    targetStage: str


class NewRegisteredModelReviewV1(BaseModel):
    reviewerIds: list[str]
    targetStage: str
    notes: str | None = None


class UpdatedRegisteredModelReviewV1(BaseModel):
    """Reviewer changes (and notes), or ``status`` Canceled (and notes), or notes alone."""

    reviewerIdsToAdd: list[str] | None = None
    reviewerIdsToRemove: list[str] | None = None
    status: str | None = None
    notes: str | None = None


class NewRegisteredModelReviewResponseV1(BaseModel):
    decision: Literal["Approved", "Rejected"]
    notes: str | None = None


class MlflowModelSourceV1(BaseModel):
    experimentRunId: str
    artifactPath: str | None = None
    loggedModelId: str | None = None


class ModelSourceV1(BaseModel):
    """``mlflow`` registers a run's model; ``huggingface`` is answered 501 (ModelHarbor does not download)."""

    sourceType: Literal["mlflow", "huggingface"]
    mlflowSource: MlflowModelSourceV1 | None = None
    huggingFaceSource: dict | None = None


class NewRegisteredModelV2(BaseModel):
    """``create`` true: a new model; false: the next version of an existing one."""

    create: bool
    modelName: str
    modelSource: ModelSourceV1
    description: str | None = None
    discoverable: bool | None = None
    projectId: str | None = None


class ModelsQuery(BaseModel):
    projectId: str | None = None
    searchPattern: str | None = Field(None, description="Part of the name, any case.")
    orderBy: str | None = Field(None, description="name, createdAt or updatedAt; '-x', 'x desc' or 'x:desc' descend.")
    maxResults: int = Field(25, ge=1, le=1000)
    pageToken: str | None = None


class ModelsForUiQuery(ModelsQuery):
    globallyDiscoverable: bool | None = None


class NamesQuery(BaseModel):
    search: str | None = None
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)
    projectId: str | None = None
    modelCategory: Literal["genai", "ml"] | None = None


class PageQuery(BaseModel):
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


class VersionsQuery(PageQuery):
    limit: int = Field(20, ge=1, le=1000)


class StagesQuery(BaseModel):
    includeDefaults: bool = True


# --- hardware tiers, organizations, git credentials (issue 16) ---------------------------------------------------
class InformationV1(BaseModel):
    value: float
    units: str = Field(description="B, KB, KiB, MB, MiB, GB, GiB, TB or TiB.")


class HardwareTierResourcesV1(BaseModel):
    cores: float
    coresLimit: float | None = None
    memory: InformationV1
    memoryLimit: InformationV1 | None = None
    allowSharedMemoryToExceedDefault: bool | None = None


class HardwareTierFlagsV1(BaseModel):
    isDefault: bool | None = None
    isGlobal: bool | None = None
    isVisible: bool | None = None


class GpuConfigurationV1(BaseModel):
    gpuKey: str | None = None
    numberOfGpus: int


class NewHardwareTierV1(BaseModel):
    id: str
    name: str
    resources: HardwareTierResourcesV1
    nodePool: str
    centsPerMinute: float | None = None
    flags: HardwareTierFlagsV1 | None = None
    gpuConfiguration: GpuConfigurationV1 | None = None
    maxSimultaneousExecutions: int | None = None


class HardwareTierUpdateV1(NewHardwareTierV1):
    name: str | None = None  # type: ignore[assignment]
    resources: HardwareTierResourcesV1 | None = None  # type: ignore[assignment]
    nodePool: str | None = None  # type: ignore[assignment]


class OrganizationMemberV1(BaseModel):
    userId: str
    organizationRole: str = Field(description="Admin or Member (any case).")


class NewOrganizationV1(BaseModel):
    name: str
    members: list[OrganizationMemberV1]


class NewGitCredentialV4(BaseModel):
    type: str = Field(description="TokenGitCredentialDto (with token) or SshGitCredentialDto (with key).")
    name: str | None = None
    domain: str | None = None
    gitServiceProvider: str | None = None
    token: str | None = None
    key: str | None = None
    passphrase: str | None = None


VERSION = "/v1/{model_name}/versions/{version}"
REVIEW = VERSION + "/reviews/{review_id}"
INPUTS: Inputs = {
    ("POST", "/v1/hardwaretiers"): Takes({JSON: NewHardwareTierV1}),
    ("PUT", "/v1/hardwaretiers"): Takes({JSON: HardwareTierUpdateV1}),
    ("POST", "/organizations/v1/organizations"): Takes({JSON: NewOrganizationV1}),
    ("PUT", "/organizations/v1/organizations/{organization_id}/user"): Takes({JSON: OrganizationMemberV1}),
    ("POST", "/accounts/{user_id}/gitcredentials"): Takes({JSON: NewGitCredentialV4}),
    ("PUT", "/{owner}/{project}/{path}"): Takes({BYTES: bytes}),  # a project file, streamed (routes/files.py)
    ("GET", "/v1"): Takes(query=ModelsQuery),
    ("GET", "/v2"): Takes(query=ModelsQuery),
    ("GET", "/v1/ui"): Takes(query=ModelsForUiQuery),
    ("GET", "/v1/names"): Takes(query=NamesQuery),
    ("POST", "/v1"): Takes({JSON: NewRegisteredModelV1}),
    ("GET", "/v1/stages/projects/{project_id}"): Takes(query=StagesQuery),
    ("PUT", "/v1/stages/projects/{project_id}"): Takes({JSON: RegisteredModelVersionStagesV1}),
    ("PATCH", "/v1/{model_name}"): Takes({JSON: PatchRegisteredModelV1}),
    ("GET", "/v1/{model_name}/modelapis"): Takes(query=PageQuery),
    ("GET", "/v1/{model_name}/versions"): Takes(query=VersionsQuery),
    ("GET", "/v2/{model_name}/versions"): Takes(query=VersionsQuery),
    ("POST", "/v1/{model_name}/versions"): Takes({JSON: NewRegisteredModelVersionV1}),
    ("PATCH", VERSION): Takes({JSON: UpdatedRegisteredModelVersionV1}),
    ("GET", VERSION + "/modelapis"): Takes(query=PageQuery),
    ("POST", VERSION + "/stages/validate"): Takes({JSON: RegisteredModelVersionStageValidationV1}),
    ("POST", VERSION + "/reviews"): Takes({JSON: NewRegisteredModelReviewV1}),
    ("PATCH", REVIEW): Takes({JSON: UpdatedRegisteredModelReviewV1}),
    ("POST", REVIEW + "/responses"): Takes({JSON: NewRegisteredModelReviewResponseV1}),
    ("POST", "/v2"): Takes({JSON: NewRegisteredModelV2}, statuses=(501,)),
}


def _merged(*tables: Inputs) -> Inputs:
    """One table from the areas' tables (schemas_<area>.py); a route declared twice is a mistake, not an override."""
    merged: Inputs = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise RuntimeError(f"Domino routes declared in two INPUTS tables: {sorted(twice)}")
        merged.update(table)
    return merged


# each area's wire models live in schemas_<area>.py with its own table
INPUTS = _merged(
    INPUTS,
    schemas_collab.INPUTS,
    schemas_environments.INPUTS,
    schemas_projects.INPUTS,
    schemas_data_sources.INPUTS,
    schemas_datasets.INPUTS,
)
