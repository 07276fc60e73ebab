"""Domino's project shapes (pure: the core's ``Project`` entities as Domino's JSON).

- Public API (``/api/projects/…``): ``ProjectV1`` (ISO-8601 times, collaborator roles in the public spelling
  ``contributor``…), ``ProjectStatusV1``, ``ProjectResultsSettingsV1``, ``DeleteEnvelopeV1``.
- v4 and the gateway (``/v4/…``): the v4 project, ``ProjectGatewaySummary`` and ``ProjectGatewayOverview``
  (epoch milliseconds, roles in the v4 spelling ``Contributor``…).

Visibility is ``Public``/``Searchable``/``Private`` on both (the spelling of the public ``ProjectVisibilityV1``).
A team-owned project shows the team as its owner (``ownerId``/``ownerUsername`` are the team's id and name).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from modelharbor.api.dialects.domino.mapping import epoch_ms, iso, metadata
from modelharbor.core.project_settings import ProjectListing
from modelharbor.core.projects import Project, ProjectTag

# v4 role -> the public spelling (ProjectCollaboratorV1.role); Owner has no public spelling and stays "owner"
PUBLIC_ROLES = {
    "Owner": "owner",
    "Contributor": "contributor",
    "ResultsConsumer": "resultsConsumer",
    "LauncherUser": "launcherUser",
    "ProjectImporter": "projectImporter",
}


def owner_id(p: Project | ProjectListing) -> str:
    return p.owner_team_id or p.owner_id or ""


def tag(t: ProjectTag) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "isApproved": t.is_approved}


def status(p: Project | ProjectListing) -> dict[str, Any]:
    """``ProjectStatusV1`` (the v4 ``status`` object too)."""
    out: dict[str, Any] = {"status": p.status, "isBlocked": p.is_blocked}
    if p.blocked_reason is not None:
        out["blockedReason"] = p.blocked_reason
    if p.completed_message is not None:
        out["completedMessage"] = p.completed_message
    return out


def project(p: Project) -> dict[str, Any]:
    """``ProjectV1`` (with ModelHarbor's additions: tags, status, archived, times)."""
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "ownerId": owner_id(p),
        "ownerUsername": p.owner_name or "",
        "visibility": p.visibility,
        "isRestricted": False,
        "collaborators": [{"id": c.user_id, "role": PUBLIC_ROLES.get(c.role, c.role)} for c in p.collaborators],
        "internalTags": [],
        "tags": [tag(t) for t in p.tags],
        "status": status(p),
        "isArchived": p.archived,
        "createdAt": iso(p.created_at),
        "updatedAt": iso(p.updated_at),
    }


def envelope(request: Request, p: Project) -> dict[str, Any]:
    """``ProjectEnvelopeV1``."""
    return {"project": project(p), "metadata": metadata(request)}


def results_settings(request: Request, branch: str) -> dict[str, Any]:
    """``ProjectResultsSettingsEnvelopeV1``."""
    return {"resultsSettings": {"branch": branch}, "metadata": metadata(request)}


def status_envelope(request: Request, p: Project) -> dict[str, Any]:
    """``ProjectStatusEnvelopeV1``."""
    return {"status": status(p), "metadata": metadata(request)}


def deleted(request: Request) -> dict[str, Any]:
    """``DeleteEnvelopeV1``."""
    return {"success": True, "metadata": metadata(request)}


# --- v4 ------------------------------------------------------------------------------------------
def project_v4(p: Project) -> dict[str, Any]:
    """The v4 project (``project_create_v4``'s answer, ``GET /v4/projects/{id}``: the client reads ``tags``)."""
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "ownerId": owner_id(p),
        "ownerUsername": p.owner_name or "",
        "visibility": p.visibility,
        "collaborators": [{"collaboratorId": c.user_id, "projectRole": c.role} for c in p.collaborators],
        "tags": [tag(t) for t in p.tags],
        "status": status(p),
        "isArchived": p.archived,
        "created": epoch_ms(p.created_at),
        "updated": epoch_ms(p.updated_at),
        "mainRepository": None,
    }


def gateway_summaries(found: list[ProjectListing], relationship: str) -> list[dict[str, Any]]:
    """``projects_list``'s JSON array of ``ProjectGatewaySummary`` (up to 1,000 in one pass: the few distinct tags
    and statuses are one dict each, shared by the projects that have them)."""
    tags = {t.id: tag(t) for p in found for t in p.tags}
    statuses: dict[tuple[Any, ...], dict[str, Any]] = {}
    out = []
    for p in found:
        key = (p.status, p.is_blocked, p.blocked_reason, p.completed_message)
        shown = statuses.get(key)
        if shown is None:
            shown = statuses[key] = status(p)
        out.append(
            {
                "id": p.id,
                "name": p.name,
                "ownerId": owner_id(p),
                "ownerName": p.owner_name or "",
                "description": p.description,
                "visibility": p.visibility,
                "tags": [tags[t.id] for t in p.tags],
                "relationship": relationship,
                "status": shown,
                "isArchived": p.archived,
                "created": p.created_ms,
                "lastUpdated": p.updated_ms,
            }
        )
    return out


def requesting_role(p: Project, user_id: str) -> str:
    """The caller's role as the gateway names it (Owner, a collaborator's role, else Anonymous)."""
    if p.owner_id == user_id and not p.owner_team_id:
        return "Owner"
    for c in p.collaborators:
        if c.user_id == user_id:
            return c.role
    return "Anonymous"


def gateway_overview(p: Project, user_id: str) -> dict[str, Any]:
    """``ProjectGatewayOverview`` (``findProjectByOwnerAndName``: the client's ``project_id`` reads ``id``)."""
    return {
        "id": p.id,
        "name": p.name,
        "owner": {"id": owner_id(p), "userName": p.owner_name or ""},
        "visibility": p.visibility,
        "description": p.description,
        "tags": [tag(t) for t in p.tags],
        "status": status(p),
        "isArchived": p.archived,
        "requestingUserRole": requesting_role(p, user_id),
        "hardwareTierId": None,
        "hardwareTierName": None,
        "environmentName": None,
        "stageId": None,
        "allowedOperations": [],
    }
