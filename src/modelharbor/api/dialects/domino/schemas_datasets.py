"""Domino's wire shapes for datasets (ops 34–46 at ``/api/datasetrw``, the client's legacy ``/dataset``): request
bodies and query strings (Domino 6.3's names; the routes check each field by hand, api/params.py). :data:`INPUTS`
is merged into schemas.INPUTS: keys are relative to their mount; the legacy mount's root (``/dataset``, which
``/project`` shares as ``/``) is keyed by its full path."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelharbor.api.openapi import JSON, Inputs, Takes

ROLE = "DatasetRwOwner, DatasetRwEditor or DatasetRwReader (any case)."


class DatasetRwGrantV1(BaseModel):
    targetId: str = Field(description="A user's id (or username) or an organization's (team's) id.")
    targetRole: str = Field(description=ROLE)


class NewDatasetRwV1(BaseModel):
    name: str
    projectId: str = Field(description="The project the dataset belongs to (project write needed).")
    description: str | None = None
    grants: list[DatasetRwGrantV1] | None = None
    snapshotId: str | None = Field(None, description="Start the head with this snapshot's files (same project).")


class DatasetRwMetadataV1(BaseModel):
    name: str | None = None
    description: str | None = None


class NewSnapshotV1(BaseModel):
    relativeFilePaths: list[str] = Field(description="Paths in the head to freeze; [] or ['.']: all of it.")


class DatasetRwTagToAddV1(BaseModel):
    tagName: str
    snapshotId: str


class PageQuery(BaseModel):
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


class DatasetsQuery(PageQuery):
    projectId: str | None = None


class DatasetsV2Query(PageQuery):
    minimumPermission: str | None = Field(None, description="Read, Update, EditSecurity or a role name.")
    projectIdsToInclude: list[str] | None = None
    projectIdsToExclude: list[str] | None = None
    includeProjectInfo: bool = False
    includeArchivedProjects: bool = False


class LegacyDatasetsQuery(BaseModel):
    projectId: str | None = None


class NewLegacyDataset(BaseModel):
    datasetName: str
    projectId: str
    description: str | None = None


class LegacyDatasetUpdate(BaseModel):
    datasetName: str | None = None
    description: str | None = None


class DatasetToAddV1(BaseModel):
    datasetId: str = Field(description="A dataset of another project the caller reads.")


DATASET = "/v1/datasets/{dataset_id}"


class StartUpload(BaseModel):
    filePaths: list[str] | None = Field(None, description="Ignored (the client sends []): files are named per chunk.")
    fileCollisionSetting: str | None = Field(
        "Ignore", description="Ignore (skip a file whose path is taken), Overwrite or Rename (name_1.ext, …)."
    )


class ChunkTestQuery(BaseModel):
    key: str = Field(description="The upload key snapshot/file/start answered.")
    resumableChunkNumber: int = Field(ge=1, description="The chunk's number, from 1.")
    resumableIdentifier: str = Field(description="The client's identifier of the file: '{size}-{filename}'.")
    resumableTotalChunks: int = Field(ge=1)
    checksum: str = Field(description="The chunk's MD5, hex (the client sends upper case).")


class ChunkQuery(ChunkTestQuery):
    resumableChunkSize: int = Field(ge=1, description="The size of every chunk but the last (bytes).")
    resumableCurrentChunkSize: int | None = Field(None, ge=0, description="This chunk's size (bytes).")
    resumableRelativePath: str | None = Field(
        None, description="The file's path in the dataset ('/'-separated, relative; no '..'); else the part's name."
    )
    resumableTotalSize: int | None = Field(None, ge=0, description="The file's size; else read from the identifier.")
    checksum: str | None = Field(None, description="The chunk's MD5, hex: checked as the bytes arrive.")  # type: ignore[assignment]


class EndQuery(BaseModel):
    targetRelativePath: str | None = Field(None, description="A directory of the dataset to land the files under.")


CHUNK_FORM = {
    "type": "object",
    "description": "One file part whose field name is the file's relative path (filename: its base name).",
    "additionalProperties": {"type": "string", "format": "binary"},
}
UPLOAD = "/datasetrw/datasets/{dataset_id}/snapshot/file"  # at /v4

INPUTS: Inputs = {
    ("POST", UPLOAD + "/start"): Takes({JSON: StartUpload}, required=False),
    ("GET", UPLOAD + "/test"): Takes(query=ChunkTestQuery),
    ("POST", UPLOAD): Takes({"multipart/form-data": CHUNK_FORM}, query=ChunkQuery, statuses=(410,)),
    ("GET", UPLOAD + "/end/{key}"): Takes(query=EndQuery, statuses=(410,)),
    ("GET", "/v1/datasets"): Takes(query=DatasetsQuery),
    ("POST", "/v1/datasets"): Takes({JSON: NewDatasetRwV1}),
    ("PATCH", DATASET): Takes({JSON: DatasetRwMetadataV1}),
    ("POST", DATASET + "/grants"): Takes({JSON: DatasetRwGrantV1}),
    ("DELETE", DATASET + "/grants"): Takes({JSON: DatasetRwGrantV1}),
    ("GET", DATASET + "/snapshots"): Takes(query=PageQuery),
    ("POST", DATASET + "/snapshots"): Takes({JSON: NewSnapshotV1}, required=False),
    ("POST", DATASET + "/tags"): Takes({JSON: DatasetRwTagToAddV1}),
    ("GET", "/v2/datasets"): Takes(query=DatasetsV2Query),
    ("GET", "/dataset/"): Takes(query=LegacyDatasetsQuery),
    ("POST", "/dataset/"): Takes({JSON: NewLegacyDataset}),
    ("PATCH", "/{dataset_id}"): Takes({JSON: LegacyDatasetUpdate}),
    ("POST", "/v1/projects/{project_id}/shared-datasets"): Takes({JSON: DatasetToAddV1}),  # at /api/projects
}
