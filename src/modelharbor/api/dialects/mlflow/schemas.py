"""MLflow's wire shapes as pydantic models: the error body, the credentials, the model registry's answers, and the
requests of every route.

The registry's models document its routes (``response_model``; the routes answer ``JSONResponse``\\ s built by
mapping.py, so nothing is validated twice on the hot path). Requests follow MLflow's protobuf JSON
(mlflow/protos/service.proto, model_registry.proto, mlflow_artifacts.proto; the models carry the messages' names)
and are read field by field in the routes, answering MLflow's own messages: a GET's parameters are in the query
string (repeated keys for lists), any other method's in a JSON body. :data:`INPUTS` says which route takes which
(api/openapi.py writes it into the document).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from modelharbor.api.openapi import BYTES, JSON, Inputs, Takes

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


# --- requests (protobuf JSON; int64 values may be written as strings) ------------------------------
Int64 = int | str
Id = str | int  # an experiment id: MLflow writes strings, older clients numbers
ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]


class KeyValue(BaseModel):
    """A tag or parameter in a request: ``{key, value}``."""

    key: str
    value: str | None = ""


class CreateExperiment(BaseModel):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] | None = None


class GetExperiment(BaseModel):
    experiment_id: Id


class GetExperimentByName(BaseModel):
    experiment_name: str


class SearchExperiments(BaseModel):
    filter: str | None = None
    order_by: list[str] | None = None
    view_type: ViewType | None = None
    max_results: Int64 | None = None
    page_token: str | None = None


class SearchExperimentsQuery(SearchExperiments):
    order_by: str | None = None  # type: ignore[assignment]


class UpdateExperiment(BaseModel):
    """Renames the experiment when ``new_name`` is given (nothing else changes)."""

    experiment_id: Id | None = None
    new_name: str | None = None


class ExperimentId(BaseModel):
    """``DeleteExperiment``, ``RestoreExperiment``."""

    experiment_id: Id


class SetExperimentTag(BaseModel):
    experiment_id: Id
    key: str
    value: str | None = ""


class DeleteExperimentTag(BaseModel):
    experiment_id: Id
    key: str


class CreateRun(BaseModel):
    experiment_id: Id | None = Field("0", description="The default experiment when absent.")
    user_id: str | None = None
    run_name: str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] | None = None


class RunId(BaseModel):
    """``GetRun``, ``DeleteRun``, ``RestoreRun``, ``LogModel``: ``run_id`` (or MLflow 1's ``run_uuid``)."""

    run_id: str
    run_uuid: str | None = None


class UpdateRun(RunId):
    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class SearchRuns(BaseModel):
    experiment_ids: list[str] | None = None
    filter: str | None = None
    run_view_type: ViewType | None = None
    max_results: int | str | None = None
    order_by: list[str] | None = None
    page_token: str | None = None


class SearchRunsQuery(SearchRuns):
    experiment_ids: str | None = None  # type: ignore[assignment]
    order_by: str | None = None  # type: ignore[assignment]


class LogParam(RunId):
    key: str
    value: str | None = ""


class SetTag(LogParam):
    """The same fields as ``LogParam``."""


class DeleteTag(BaseModel):
    run_id: str
    key: str


class Metric(BaseModel):
    key: str
    value: float | str = Field(description="A number; NaN and ±Infinity as strings.")
    timestamp: Int64 | None = None
    step: Int64 | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(Metric):
    run_id: str
    run_uuid: str | None = None


class LogBatch(BaseModel):
    run_id: str
    metrics: list[Metric] | None = None
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class Dataset(BaseModel):
    name: str
    digest: str
    source_type: str | None = None
    source: str | None = None
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInput(BaseModel):
    dataset: Dataset
    tags: list[KeyValue] | None = None


class ModelInput(BaseModel):
    model_id: str


class ModelOutput(BaseModel):
    model_id: str
    step: Int64 | None = None


class LogInputs(BaseModel):
    run_id: str
    datasets: list[DatasetInput] | None = None
    models: list[ModelInput] | None = None


class LogOutputs(BaseModel):
    run_id: str
    models: list[ModelOutput] | None = None


class GetMetricHistory(BaseModel):
    run_id: str
    run_uuid: str | None = None
    metric_key: str
    max_results: int | None = None
    page_token: str | None = None


class CreateLoggedModel(BaseModel):
    experiment_id: Id
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class DatasetFilter(BaseModel):
    dataset_name: str
    dataset_digest: str | None = None


class LoggedModelOrder(BaseModel):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModels(BaseModel):
    experiment_ids: list[str] | None = None
    filter: str | None = None
    datasets: list[DatasetFilter] | None = None
    max_results: int | None = None
    order_by: list[LoggedModelOrder] | None = None
    page_token: str | None = None


class GetLoggedModel(BaseModel):
    allow_deleted: bool = False


class FinalizeLoggedModel(BaseModel):
    status: Literal["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"]


class SetLoggedModelTags(BaseModel):
    tags: list[KeyValue] | None = None


class LogLoggedModelParams(BaseModel):
    params: list[KeyValue] | None = None


# the model registry
class ModelName(BaseModel):
    """``GetRegisteredModel``, ``DeleteRegisteredModel``."""

    name: str


class CreateRegisteredModel(ModelName):
    description: str | None = None
    tags: list[KeyValue] | None = None


class RenameRegisteredModel(ModelName):
    new_name: str


class UpdateRegisteredModel(ModelName):
    description: str | None = None


class SearchModels(BaseModel):
    """``SearchRegisteredModels``, ``SearchModelVersions``."""

    filter: str | None = None
    max_results: Int64 | None = None
    order_by: list[str] | None = None
    page_token: str | None = None


class GetLatestVersions(ModelName):
    stages: list[str] | None = None


class SetRegisteredModelTag(ModelName):
    key: str
    value: str | None = ""


class DeleteRegisteredModelTag(ModelName):
    key: str


class SetRegisteredModelAlias(ModelName):
    alias: str
    version: str


class ModelAlias(ModelName):
    """``DeleteRegisteredModelAlias``, ``GetModelVersionByAlias``."""

    alias: str


class CreateModelVersion(ModelName):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] | None = None
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class ModelVersionKey(ModelName):
    """``GetModelVersion``, ``DeleteModelVersion``, ``GetModelVersionDownloadUri``."""

    version: str


class UpdateModelVersion(ModelVersionKey):
    description: str | None = None


class TransitionModelVersionStage(ModelVersionKey):
    stage: str
    archive_existing_versions: bool | None = False


class SetModelVersionTag(ModelVersionKey):
    key: str
    value: str | None = ""


class DeleteModelVersionTag(ModelVersionKey):
    key: str


# proxied artifacts
class ArtifactsQuery(BaseModel):
    path: str | None = Field(None, description="The directory to list (the root when absent).")


class CreateMultipartUpload(BaseModel):
    path: str = Field(description="The client's local file: its base name names the artifact in the URL's directory.")
    num_parts: int = 1


class MultipartUploadPart(BaseModel):
    part_number: int
    etag: str | None = None
    url: str | None = None


class CompleteMultipartUpload(BaseModel):
    path: str
    upload_id: str
    parts: list[MultipartUploadPart] | None = None


class AbortMultipartUpload(BaseModel):
    path: str
    upload_id: str


class PartLink(BaseModel):
    """A part's signed URL (``mpu/create`` answers it): the signature is the credential."""

    expires: str
    nonce: str
    sig: str


def _body(model: type[BaseModel], *, required: bool = True) -> Takes:
    return Takes({JSON: model}, required=required)


INPUTS: Inputs = {
    ("POST", "/experiments/create"): _body(CreateExperiment),
    ("GET", "/experiments/get"): Takes(query=GetExperiment),
    ("GET", "/experiments/get-by-name"): Takes(query=GetExperimentByName),
    ("GET", "/experiments/search"): Takes(query=SearchExperimentsQuery),
    ("POST", "/experiments/search"): _body(SearchExperiments, required=False),
    ("POST", "/experiments/update"): _body(UpdateExperiment, required=False),
    ("POST", "/experiments/delete"): _body(ExperimentId),
    ("POST", "/experiments/restore"): _body(ExperimentId),
    ("POST", "/experiments/set-experiment-tag"): _body(SetExperimentTag),
    ("POST", "/experiments/delete-experiment-tag"): _body(DeleteExperimentTag),
    ("POST", "/runs/create"): _body(CreateRun, required=False),
    ("GET", "/runs/get"): Takes(query=RunId),
    ("POST", "/runs/update"): _body(UpdateRun),
    ("POST", "/runs/delete"): _body(RunId),
    ("POST", "/runs/restore"): _body(RunId),
    ("GET", "/runs/search"): Takes(query=SearchRunsQuery),
    ("POST", "/runs/search"): _body(SearchRuns, required=False),
    ("POST", "/runs/log-metric"): _body(LogMetric),
    ("POST", "/runs/log-parameter"): _body(LogParam),
    ("POST", "/runs/set-tag"): _body(SetTag),
    ("POST", "/runs/delete-tag"): _body(DeleteTag),
    ("POST", "/runs/log-batch"): _body(LogBatch),
    ("POST", "/runs/log-model"): _body(RunId),
    ("POST", "/runs/log-inputs"): _body(LogInputs),
    ("POST", "/runs/outputs"): _body(LogOutputs),
    ("GET", "/metrics/get-history"): Takes(query=GetMetricHistory),
    ("POST", "/logged-models"): _body(CreateLoggedModel),
    ("POST", "/logged-models/search"): _body(SearchLoggedModels, required=False),
    ("GET", "/logged-models/{model_id}"): Takes(query=GetLoggedModel),
    ("PATCH", "/logged-models/{model_id}"): _body(FinalizeLoggedModel),
    ("PATCH", "/logged-models/{model_id}/tags"): _body(SetLoggedModelTags),
    ("POST", "/logged-models/{model_id}/params"): _body(LogLoggedModelParams),
    ("POST", "/registered-models/create"): _body(CreateRegisteredModel),
    ("GET", "/registered-models/get"): Takes(query=ModelName),
    ("POST", "/registered-models/rename"): _body(RenameRegisteredModel),
    ("PATCH", "/registered-models/update"): _body(UpdateRegisteredModel),
    ("DELETE", "/registered-models/delete"): _body(ModelName),
    ("GET", "/registered-models/search"): Takes(query=SearchModels),
    ("GET", "/registered-models/get-latest-versions"): Takes(query=GetLatestVersions),
    ("POST", "/registered-models/get-latest-versions"): _body(GetLatestVersions),
    ("POST", "/registered-models/set-tag"): _body(SetRegisteredModelTag),
    ("DELETE", "/registered-models/delete-tag"): _body(DeleteRegisteredModelTag),
    ("POST", "/registered-models/alias"): _body(SetRegisteredModelAlias),
    ("DELETE", "/registered-models/alias"): _body(ModelAlias),
    ("GET", "/registered-models/alias"): Takes(query=ModelAlias),
    ("POST", "/model-versions/create"): _body(CreateModelVersion),
    ("GET", "/model-versions/get"): Takes(query=ModelVersionKey),
    ("PATCH", "/model-versions/update"): _body(UpdateModelVersion),
    ("DELETE", "/model-versions/delete"): _body(ModelVersionKey),
    ("GET", "/model-versions/search"): Takes(query=SearchModels),
    ("GET", "/model-versions/get-download-uri"): Takes(query=ModelVersionKey),
    ("POST", "/model-versions/transition-stage"): _body(TransitionModelVersionStage),
    ("POST", "/model-versions/set-tag"): _body(SetModelVersionTag),
    ("DELETE", "/model-versions/delete-tag"): _body(DeleteModelVersionTag),
    ("GET", "/artifacts"): Takes(query=ArtifactsQuery),
    ("PUT", "/artifacts/{path}"): Takes({BYTES: bytes}, required=False),
    ("POST", "/mpu/create/{path}"): _body(CreateMultipartUpload),
    ("PUT", "/mpu/part/{upload_id}/{part_number}"): Takes({BYTES: bytes}, required=False, query=PartLink),
    ("POST", "/mpu/complete/{path}"): _body(CompleteMultipartUpload),
    ("POST", "/mpu/abort/{path}"): _body(AbortMultipartUpload),
}
