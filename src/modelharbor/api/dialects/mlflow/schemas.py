"""MLflow's wire shapes as pydantic models: the error body, the credentials, and the model registry's answers.

The registry's models document its routes (``response_model``; the routes answer ``JSONResponse``\\ s built by
mapping.py, so nothing is validated twice on the hot path). Tracking and artifact bodies follow MLflow's protobuf
JSON (mlflow/protos/service.proto) and are read field by field in the routes, answering MLflow's own messages.
"""

from __future__ import annotations

from pydantic import BaseModel

SECURITY = {
    "BearerAuth": {"type": "http", "scheme": "bearer"},  # MLFLOW_TRACKING_TOKEN: a ModelHarbor API key
    "BasicAuth": {"type": "http", "scheme": "basic"},  # MLFLOW_TRACKING_USERNAME / _PASSWORD (or a key)
}


class ErrorBody(BaseModel):
    """Every error: ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}``."""

    error_code: str
    message: str


class Tag(BaseModel):
    key: str
    value: str


class Alias(BaseModel):
    alias: str
    version: str


class ModelVersion(BaseModel):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    description: str
    source: str
    status: str
    tags: list[Tag]
    aliases: list[str]
    run_id: str | None = None
    run_link: str | None = None
    model_id: str | None = None


class RegisteredModel(BaseModel):
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    latest_versions: list[ModelVersion]
    tags: list[Tag]
    aliases: list[Alias]


class RegisteredModelAnswer(BaseModel):
    registered_model: RegisteredModel


class ModelVersionAnswer(BaseModel):
    model_version: ModelVersion


class RegisteredModels(BaseModel):
    registered_models: list[RegisteredModel]
    next_page_token: str | None = None


class ModelVersions(BaseModel):
    model_versions: list[ModelVersion]
    next_page_token: str | None = None


class DownloadUri(BaseModel):
    artifact_uri: str


class Empty(BaseModel):
    pass
