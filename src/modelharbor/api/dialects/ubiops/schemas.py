"""UbiOps' wire shapes as pydantic models: the error body, the credentials and the small answers the routes share.

The objects themselves (projects, deployments, versions, requests…) are rendered by mapping.py in the 4.15 client's
shapes; request bodies are checked by the core, which names the field at fault.
"""

from __future__ import annotations

from pydantic import BaseModel

SECURITY = {
    # the client sends "Authorization: Token <key>" for a bare API key; "Bearer <key>" works too
    "UbiOpsToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
}


class Error(BaseModel):
    """Every error: ``{"error": "what went wrong and what to do"}`` (401s add ``WWW-Authenticate: Token``)."""

    error: str


class Status(BaseModel):
    """``GET /status``: ``ok``, or ``fail`` with the reason when the database does not answer."""

    status: str
    reason: str | None = None


class Success(BaseModel):
    """The answer of builds, rebuilds and bulk operations (``revision``/``build`` on uploads, counts on bulks)."""

    success: bool
    revision: str | None = None
    build: str | None = None
    deleted: int | None = None
    cancelled: int | None = None
