"""Domino's wire shapes for collaborators, access requests, copies and forks, goals and imported repositories.
Pure functions over core entities: ISO-8601 times and lower-case enum spellings on ``/api/...``, epoch
milliseconds and Capitalised spellings on ``/v4`` and the legacy routes."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from modelharbor.api.dialects.domino import mapping_projects
from modelharbor.api.dialects.domino.mapping import iso, metadata
from modelharbor.core.project_copy import CopyResult
from modelharbor.core.project_goals import Goal
from modelharbor.core.project_repos import Repository
from modelharbor.core.projects import Collaborator


def public_role(role: str) -> str:
    """``Contributor`` -> ``contributor``, ``LauncherUser`` -> ``launcherUser`` (the public API's spelling)."""
    return role[:1].lower() + role[1:]


def collaborator(c: Collaborator) -> dict[str, Any]:
    """``ProjectCollaboratorV1``."""
    return {"id": c.user_id, "role": public_role(c.role)}


def collaborator_v4(c: Collaborator) -> dict[str, Any]:
    return {"collaboratorId": c.user_id, "projectRole": c.role, "userName": c.username}


def collaborator_legacy(c: Collaborator) -> dict[str, Any]:
    """One entry of the legacy ``GET /{owner}/{project}/collaborators`` (the client returns the list as is)."""
    return {"id": c.user_id, "username": c.username, "userName": c.username, "projectRole": c.role}


def copy_result(request: Request, result: CopyResult, notices: list[str]) -> dict[str, Any]:
    """``ProjectCopyResultEnvelopeV1``: ModelHarbor has no datasets or NetApp volumes, so none failed to copy."""
    return {
        "project": mapping_projects.project(result.project),
        "datasetsNotCopied": [],
        "netAppVolumesNotCopied": [],
        "metadata": {**metadata(request), "notices": notices},
    }


def goal(g: Goal) -> dict[str, Any]:
    """``ProjectGoalV1`` (plus ``assigneeId`` and ``stageId`` as given)."""
    return {
        "id": g.id,
        "projectId": g.project_id,
        "title": g.title,
        "description": g.description,
        "isComplete": g.is_complete,
        "creatorId": g.creator_id or "",
        "createdAt": iso(g.created_at),
        "assigneeId": g.assignee_id,
        "stageId": g.stage,
    }


def repository(r: Repository) -> dict[str, Any]:
    """``ProjectGitRepositoryV1``."""
    ref: dict[str, Any] = {"refType": r.ref_type}
    if r.ref_value is not None:
        ref["value"] = r.ref_value
    return {
        "id": r.id,
        "name": r.name,
        "uri": r.uri,
        "serviceProvider": r.provider,
        "defaultRef": ref,
        "gitCredentialId": r.credential_id,
    }


def deleted(request: Request) -> dict[str, Any]:
    """``DeleteEnvelopeV1``."""
    return {"success": True, "metadata": metadata(request)}
