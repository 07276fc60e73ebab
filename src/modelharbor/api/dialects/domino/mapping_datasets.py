"""Domino's wire shapes for datasets (ops 34–46, the legacy ``/dataset`` routes): pure functions over the core's
entities (core/datasets.py). ISO-8601 times on ``/api/...``."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from modelharbor.api.dialects.domino.mapping import iso, metadata
from modelharbor.core.dataset_uploads import Landed
from modelharbor.core.datasets import Dataset, Grant, Snapshot


def details(d: Dataset) -> dict[str, Any]:
    """``DatasetRwDetailsV1``."""
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "projectId": d.project_id,
        "createdAt": iso(d.created_at),
        "snapshotIds": list(d.snapshot_ids),
        "tags": dict(d.tags),
    }


def envelope(request: Request, d: Dataset) -> dict[str, Any]:
    """``DatasetRwEnvelopeV1``."""
    return {"dataset": details(d), "metadata": metadata(request)}


def info(d: Dataset, with_project: bool) -> dict[str, Any]:
    """``DatasetRwInfoDtoV1``."""
    out: dict[str, Any] = {"dataset": details(d)}
    if with_project:
        out["projectInfo"] = {
            "projectId": d.project_id,
            "projectName": d.project_name,
            "projectOwnerUsername": d.project_owner or "",
        }
    return out


def grant(g: Grant) -> dict[str, Any]:
    """``DatasetRwGrantV1``."""
    return {"targetId": g.target_id, "targetRole": g.role}


def grant_details(g: Grant) -> dict[str, Any]:
    """``DatasetRwGrantDetailsV1``."""
    return {"targetId": g.target_id, "targetName": g.target_name, "targetRole": g.role, "isOrganization": g.is_team}


def snapshot(s: Snapshot) -> dict[str, Any]:
    """``SnapshotDetailsV1``."""
    return {
        "id": s.id,
        "datasetId": s.dataset_id,
        "createdAt": iso(s.created_at),
        "creatorId": s.creator_id,
        "description": s.description,
        "status": s.status,
    }


def legacy(d: Dataset) -> dict[str, Any]:
    """What the client's ``datasets_list`` / ``datasets_details`` read (legacy ``/dataset``)."""
    return {
        "datasetId": d.id,
        "datasetName": d.name,
        "datasetDescription": d.description,
        "description": d.description,
        "projectId": d.project_id,
        "snapshotIds": list(d.snapshot_ids),
        "tags": dict(d.tags),
    }


def landed(done: Landed) -> dict[str, Any]:
    """What ending an upload did (the client reads only the status): the paths written, skipped and renamed."""
    return {
        "key": done.key,
        "written": [e.path for e in done.written],
        "skipped": list(done.skipped),
        "renamed": dict(done.renamed),
    }
