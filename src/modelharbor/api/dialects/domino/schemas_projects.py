"""Domino's project wire shapes (issue 16): the request bodies and query strings of the public project routes
(``/api/projects/{beta,v1,v2}/projects…``), the v4 routes the ``dominodatalab`` client calls (``/v4/projects``,
``/v4/gateway/projects``) and the root routes (``POST /project``, ``GET /projectTags/{id}``). Routes check bodies
field by field (``api/params.field``); these models document them, :data:`INPUTS` says which route takes which.

Keys of :data:`INPUTS` are (method, path relative to the mount): ``/beta/…``, ``/v1/…``, ``/v2/…`` are under
``/api/projects``; ``/projects…`` and ``/gateway/…`` under ``/v4``; ``/`` under ``/project`` (the legacy form);
``/{tag_id}`` under ``/projectTags``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from modelharbor.api.openapi import JSON, URLENCODED, Inputs, Takes

Visibility = Literal["Public", "Searchable", "Private"]  # any case is accepted


class BillingTagV1(BaseModel):
    tag: str


class NewProjectV1(BaseModel):
    """``POST /api/projects/beta/projects`` (and ``/v2/projects``: NewProjectV2, the same fields here)."""

    name: str = Field(description="1 to 256 letters, digits, '_', '-' or '.'; unique in the organisation.")
    description: str
    visibility: Visibility
    ownerId: str | None = Field(None, description="A user (organisation admins) or a team (its admins) to own it.")
    isRestricted: bool | None = Field(None, description="Must be false or absent (restricted projects: a gap).")
    billingTag: BillingTagV1 | None = Field(None, description="Ignored: ModelHarbor keeps no billing tags.")
    mainRepository: dict | None = Field(None, description="Answered 501: git-based projects are a gap.")
    repoToCreate: dict | None = Field(None, description="Answered 501: git-based projects are a gap.")
    templateDetails: dict | None = Field(None, description="Answered 501: project templates are a gap.")


class ProjectResultsSettingsV1(BaseModel):
    branch: Literal["isolated", "main"]


class ProjectStatusV1(BaseModel):
    status: Literal["active", "complete"]
    isBlocked: bool
    blockedReason: str | None = None
    completedMessage: str | None = None


class ProjectsQuery(BaseModel):
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


class CollaboratorV4(BaseModel):
    collaboratorId: str = Field(description="A user id or username of the organisation.")
    projectRole: str = Field(description="Contributor, ResultsConsumer, LauncherUser, ProjectImporter or Owner.")


class TagNamesV4(BaseModel):
    tagNames: list[str]


class NewProjectV4(BaseModel):
    """``POST /v4/projects`` as ``project_create_v4`` sends it."""

    name: str
    visibility: Visibility | None = Field(None, description="Default Public.")
    ownerId: str | None = None
    description: str | None = None
    collaborators: list[CollaboratorV4] | None = None
    tags: TagNamesV4 | None = None
    billingTag: BillingTagV1 | None = Field(None, description="Ignored: ModelHarbor keeps no billing tags.")


class GatewayQuery(BaseModel):
    relationship: Literal["Owned", "Collaborating", "Suggesting", "Popular"] = "Owned"
    showCompleted: bool = False


class FindProjectQuery(BaseModel):
    ownerName: str
    projectName: str


class LegacyProjectForm(BaseModel):
    """``POST /project`` (``project_create``), form-encoded; the client sends ``Csrf-Token: nocheck``."""

    projectName: str
    ownerOverrideUsername: str | None = Field(None, description="Another member to own it (organisation admins).")


INPUTS: Inputs = {
    ("GET", "/beta/projects"): Takes(query=ProjectsQuery),
    ("POST", "/beta/projects"): Takes({JSON: NewProjectV1}, statuses=(501,)),
    ("POST", "/v2/projects"): Takes({JSON: NewProjectV1}, statuses=(501,)),
    ("PUT", "/beta/projects/{project_id}/results-settings"): Takes({JSON: ProjectResultsSettingsV1}),
    ("PUT", "/v1/projects/{project_id}/status"): Takes({JSON: ProjectStatusV1}),
    ("POST", "/projects"): Takes({JSON: NewProjectV4}),
    ("POST", "/projects/{project_id}/tags"): Takes({JSON: TagNamesV4}),
    ("GET", "/gateway/projects"): Takes(query=GatewayQuery),
    ("GET", "/gateway/projects/findProjectByOwnerAndName"): Takes(query=FindProjectQuery),
    ("POST", "/"): Takes({URLENCODED: LegacyProjectForm}),
}
