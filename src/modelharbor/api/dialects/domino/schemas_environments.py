"""Domino's environment request bodies (ops 53-58; Domino 6.3's names), documented for the OpenAPI document; the
routes (routes/environments.py) check them field by field. Paths are relative to the ``/api/environments`` mount."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelharbor.api.openapi import JSON, Inputs, Takes


class EnvironmentVariableV1(BaseModel):
    key: str
    value: str


class NewEnvironmentRevisionV1(BaseModel):
    """A new revision. ``dockerfileInstructions``: comments and ``RUN pip install <package> …`` lines only (any
    other instruction is refused, 400); ``image``: a base environment's name (``python3-12``) picks that
    interpreter, any other image is kept as given and builds on the newest one. ``environmentVariables`` and the
    four scripts must be empty; the other fields are kept and shown as given."""

    dockerfileInstructions: str | None = None
    environmentVariables: list[EnvironmentVariableV1] | None = Field(None, description="Must be empty.")
    image: str | None = None
    postRunScript: str | None = Field(None, description="Must be empty.")
    postSetupScript: str | None = Field(None, description="Must be empty.")
    preRunScript: str | None = Field(None, description="Must be empty.")
    preSetupScript: str | None = Field(None, description="Must be empty.")
    skipCache: bool | None = None
    summary: str | None = None
    supportedClusters: list[str] | None = None
    tags: list[str] | None = None
    useVpn: bool | None = None
    workspaceTools: list[dict[str, Any]] | None = None
    requirements: list[str] | None = Field(
        None, description="ModelHarbor's extension: requirement specifiers to install besides the RUN pip lines."
    )


class NewEnvironmentV1(NewEnvironmentRevisionV1):
    """A new environment and its first revision. ``visibility``: global (organisation admins only), private or
    organization (with ``orgOwnerId``), any case. ``duplicateFromEnvironmentId`` is not supported."""

    name: str
    visibility: str = Field(description="global | private | organization, any case")
    addBaseDependencies: bool | None = None
    description: str | None = None
    duplicateFromEnvironmentId: str | None = Field(None, description="Not supported (400).")
    isCurated: bool | None = None
    isRestricted: bool | None = Field(None, description="Mark the first revision restricted (admins).")
    orgOwnerId: str | None = Field(None, description="The id of the organization (team) owning the environment.")
    rebuildOnBaseChanges: str | None = None


class UpdateEnvironmentRevisionV1(BaseModel):
    isRestricted: bool


class EnvironmentsQuery(BaseModel):
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


INPUTS: Inputs = {
    ("GET", "/beta/environments"): Takes(query=EnvironmentsQuery),
    ("POST", "/beta/environments"): Takes({JSON: NewEnvironmentV1}),
    ("POST", "/beta/environments/{environment_id}/revisions"): Takes({JSON: NewEnvironmentRevisionV1}),
    ("PATCH", "/beta/environments/{environment_id}/revisions/{revision_id}"): Takes(
        {JSON: UpdateEnvironmentRevisionV1}
    ),
}
