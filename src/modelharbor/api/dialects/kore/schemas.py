"""Kore.ai's wire shapes as pydantic models: the error envelope, the answers of the upload, job and dock-status
routes, and the credentials (an ``x-api-key`` header; a media URL's signature for ``/api/getMediaStream``).

The routes build their answers in mapping.py and parse request bodies field by field (the vendor's samples send
JSON, forms and multipart alike); these models document the shapes (OpenAPI, ``Dialect.error_schema``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SECURITY = {
    "KoreApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "KoreSignedLink": {
        "type": "apiKey",
        "in": "query",
        "name": "s",
        "description": "A media URL's signature (with its e, n, del and fileName): the link is the credential.",
    },
}


class ErrorItem(BaseModel):
    msg: str
    code: str


class ErrorBody(BaseModel):
    """Every error: one ``{msg, code}``, plus ``sessionId``/chunk counts/sizes or a 500's ``requestId``."""

    errors: list[ErrorItem]
    requestId: str | None = None
    sessionId: str | None = None
    totalChunks: int | None = None
    receivedChunks: int | None = None
    missingChunks: list[int] | None = None
    expectedSize: int | None = None
    receivedSize: int | None = None


class MediaFile(BaseModel):
    """A stored file: its signed media URL and id."""

    url: str
    fileId: str


class SessionStarted(BaseModel):
    sessionId: str
    expirationDate: str
    modelId: str | None = None  # fileContext "model" only


class ChunkStored(BaseModel):
    chunkNumber: str
    sessionId: str


class JobStarted(BaseModel):
    """A model import completed, or an export/deploy/undeploy started: the dock status to poll."""

    model_config = ConfigDict(populate_by_name=True)

    dock_status_id: str = Field(alias="dock-statusId")
    dockStatusId: str
    modelId: str
    jobType: str
    action: str
    status: str


class DockStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    jobType: str
    action: str
    status: str
    percentageComplete: int
    modelId: str | None = None
    error: str | None = None
    response: dict | None = None
