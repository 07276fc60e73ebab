"""Kore.ai's wire shapes as pydantic models: the error envelope, the requests and answers of the upload, job and
dock-status routes, and the credentials (an ``x-api-key`` header; a media URL's signature for
``/api/getMediaStream``).

The routes build their answers in mapping.py and parse request bodies field by field (the vendor's samples send
JSON, forms and multipart alike); these models document the shapes (OpenAPI, ``Dialect.error_schema``), and
:data:`INPUTS` says which route takes which (api/openapi.py writes it into the document).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelharbor.api.openapi import BYTES, FORM, JSON, URLENCODED, Inputs, Takes

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


# --- requests -------------------------------------------------------------------------------------
NonBlank = Annotated[str, Field(pattern=r"\S")]
Flag = bool | Annotated[str, Field(pattern=r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\s*$")]


def _count(low: int) -> object:
    """An integer from ``low`` up, or its digits as a string (form-posting clients)."""
    return Annotated[int, Field(ge=low)] | Annotated[str, Field(pattern=r"^\s*-?[0-9]{1,19}\s*$")]


class FileUpload(BaseModel):
    """Mode 1 (``POST /files``): one media file (m4a, mp3, webm, mp4, mpga, wav, mpeg, png, jpeg, jpg, webp, gif;
    the part's filename gives the type) of at most 25 MiB."""

    file: bytes
    fileContext: NonBlank


class SessionStart(BaseModel):
    """``POST /files/session/start``: JSON as documented (a form is read too). ``fileContext`` ``model`` imports a
    model (tar, zip, …; the answer names its ``modelId``); any other context is a media file."""

    fileContext: NonBlank
    fileExtension: NonBlank
    fileName: NonBlank
    totalChunks: _count(1)  # type: ignore[valid-type]
    fileSize: _count(0)  # type: ignore[valid-type]
    isAdapter: Flag = False


ChunkNumber = Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"^\s*[0-9]+\s*$")]


class Chunk(BaseModel):
    """One chunk (``POST /files/session/{sessionId}``): its bytes and its 0-based number."""

    file: bytes
    chunkNumber: ChunkNumber


class LastChunk(BaseModel):
    """The final chunk a completion may carry (one vendor page documents that); no body at all is the usual."""

    file: bytes | None = None
    chunkNumber: ChunkNumber | None = None


class ChunkQuery(BaseModel):
    chunkNumber: int | None = Field(None, ge=0, description="With a raw application/octet-stream body: its number.")


class HyperParameters(BaseModel):
    temperature: float = Field(ge=0, le=2)
    maxTokens: int = Field(ge=0, le=512)
    topP: float = Field(ge=0, le=1)
    topK: int = Field(ge=1, le=100)
    stopSequence: list[str] | None = None


class ScalingParameters(BaseModel):
    maxBatchSize: int | None = Field(None, ge=1, le=256)
    minReplicas: int | None = Field(None, ge=1, le=10)
    maxReplicas: int | None = Field(None, ge=1, le=50)
    scaleUpDelay: int | None = Field(None, ge=1, le=1000)
    scaleDownDelay: int | None = Field(None, ge=50, le=2000)


class Deploy(BaseModel):
    """``POST /models/{modelId}/deploy`` (``isDeployedPreviouly``, the vendor sample's spelling, is read too)."""

    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"\S")]
    deviceType: Annotated[str, Field(min_length=1)]
    hyperParameters: HyperParameters
    isDeployedPreviously: bool | None = None
    scalingParameters: ScalingParameters | None = None
    optimizationInfo: dict | None = None


class DeployQuery(BaseModel):
    modelType: Literal["openSource", "fineTune"] | None = None


class MediaLink(BaseModel):
    """A signed media URL's query (``_file_answer`` makes it): all but ``fileName`` and ``del`` are signed."""

    model_config = ConfigDict(populate_by_name=True)

    e: str = Field(description="When the link expires (seconds since the epoch).")
    n: str = Field(description="The link's nonce.")
    s: str = Field(description="The signature (base64url).")
    delete: str = Field("false", alias="del")
    fileName: str = Field("", description="The name the download is saved as.")


MEDIA = Takes(query=MediaLink)
INPUTS: Inputs = {
    ("POST", "/files"): Takes({FORM: FileUpload}, statuses=(415,)),
    ("POST", "/files/session/start"): Takes(
        {JSON: SessionStart, URLENCODED: SessionStart, FORM: SessionStart}, statuses=(415,)
    ),
    ("POST", "/files/session/{session_id}"): Takes({FORM: Chunk, BYTES: bytes}, query=ChunkQuery, statuses=(410,)),
    ("POST", "/files/session/{session_id}/complete"): Takes({FORM: LastChunk}, required=False, statuses=(410,)),
    ("POST", "/models/{model_id}/deploy"): Takes({JSON: Deploy}, query=DeployQuery),
    ("GET", "/orgFiles/{stored}"): MEDIA,
    ("HEAD", "/orgFiles/{stored}"): MEDIA,
}
