"""Domino's wire shapes as pydantic models: the error envelope, the metadata envelope and the credentials.

Request bodies are checked field by field in the routes (``api/params.field``), answering Domino's own messages.
"""

from __future__ import annotations

from pydantic import BaseModel

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
