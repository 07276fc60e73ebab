"""Domino's environment shapes (pure): ``EnvironmentV1`` / ``EnvironmentRevisionV1`` on the public API (lower-case
visibility, ISO-8601 times), the v4 ``EnvironmentDetails`` and the legacy ``/v1/environments`` entries (capitalised
visibility, epoch milliseconds), from the core's CatalogEnvironment and CatalogRevision
(core/serving/environment_catalog.py)."""

from __future__ import annotations

from typing import Any

from modelharbor.api.dialects.domino.mapping import epoch_ms, iso
from modelharbor.core.serving.environment_catalog import CatalogEnvironment, CatalogRevision

# the core's build states as Domino's EnvironmentRevisionBuildStatusV1 (public) and v4's capitalised spelling
STATUS = {"queued": "queued", "building": "building", "success": "succeeded", "failed": "failed"}
V4_VISIBILITY = {"global": "Global", "private": "Private", "organization": "Organization"}


def _owner(e: CatalogEnvironment) -> dict[str, Any] | None:
    if e.team_id is not None:
        return {"id": e.team_id, "ownerType": "organization", "username": e.team_name or ""}
    if e.owner_id is not None:
        return {"id": e.owner_id, "ownerType": "individual", "username": e.owner_username or ""}
    return None


def revision(r: CatalogRevision | None) -> dict[str, Any] | None:
    """``EnvironmentRevisionV1`` and what ModelHarbor keeps of the revision."""
    if r is None:
        return None
    return {
        "id": r.id,
        "number": r.number,
        "status": STATUS.get(r.status, r.status),
        "availableTools": list(r.kept.get("workspaceTools") or []),
        "image": r.image,
        "baseEnvironment": r.base,
        "dockerfileInstructions": r.instructions,
        "requirements": list(r.requirements),
        "summary": r.summary,
        "tags": list(r.kept.get("tags") or []),
        "isRestricted": r.restricted,
        "errorMessage": r.error_message,
        "created": iso(r.created_at),
    }


def environment(e: CatalogEnvironment) -> dict[str, Any]:
    """``EnvironmentV1``; ``selectedRevision`` is the newest revision that built (else the newest)."""
    latest = e.latest
    kept = latest.kept if latest else {}
    out: dict[str, Any] = {
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "archived": e.archived,
        "visibility": e.visibility,
        "activeRevisionTags": list(kept.get("tags") or []),
        "internalTags": [],
        "isCurated": bool(kept.get("isCurated", False)),
        "isDefault": e.is_default,
        "latestRevision": revision(latest),
        "selectedRevision": revision(e.active or latest),
        "restrictedRevision": revision(e.restricted),
        "rebuildOnBaseChanges": kept.get("rebuildOnBaseChanges") or "never",
        "supportedClusters": list(kept.get("supportedClusters") or []),
    }
    owner = _owner(e)
    if owner is not None:
        out["owner"] = owner
    return out


def _v4_revision(r: CatalogRevision | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "id": r.id,
        "number": r.number,
        "status": STATUS.get(r.status, r.status).capitalize(),
        "dockerImage": r.image,
        "dockerfileInstructions": r.instructions,
        "created": epoch_ms(r.created_at),
        "isRestricted": r.restricted,
    }


def v4_environment(e: CatalogEnvironment) -> dict[str, Any]:
    """v4 ``EnvironmentDetails`` (the client reads ``latestRevisionDetails.dockerImage``)."""
    selected = e.active or e.latest
    owner = _owner(e)
    return {
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "archived": e.archived,
        "visibility": V4_VISIBILITY.get(e.visibility, e.visibility),
        "owner": {"id": owner["id"], "username": owner["username"]} if owner else None,
        "isDefault": e.is_default,
        "latestRevision": e.latest.number if e.latest else None,
        "selectedRevision": selected.number if selected else None,
        "latestRevisionDetails": _v4_revision(e.latest),
        "selectedRevisionDetails": _v4_revision(selected),
        "created": epoch_ms(e.created_at),
        "lastUpdated": epoch_ms(e.updated_at),
    }


def legacy_environment(e: CatalogEnvironment) -> dict[str, Any]:
    """An entry of legacy ``GET /v1/environments``'s ``data``."""
    owner = _owner(e)
    return {
        "id": e.id,
        "name": e.name,
        "visibility": V4_VISIBILITY.get(e.visibility, e.visibility),
        "owner": {"id": owner["id"], "username": owner["username"]} if owner else None,
        "archived": e.archived,
        "latestRevision": e.latest.number if e.latest else None,
    }
