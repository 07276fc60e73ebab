"""Native routes for datasets themselves (core/datasets.py): list, create, read, change, delete; grants; snapshots;
tags. Their files are api/native/datasets.py. Who may do what is the core's rule (core/dataset_access.py): reading
takes ``DatasetRwReader``, changing and snapshotting ``DatasetRwEditor``, grants and deleting ``DatasetRwOwner``.
One core call per route; docs/api.md#datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.schemas import Strict
from modelharbor.core.dataset_access import ROLES
from modelharbor.core.datasets import MAX_DESCRIPTION, MAX_NAME, MAX_PAGE, MAX_PATHS, MAX_TAG, Dataset, Grant, Snapshot

router = APIRouter(tags=["datasets"], route_class=JsonRoute)
BASE = "/datasets"
ONE = BASE + "/{dataset_id}"
ROLE_HELP = f"One of {', '.join(ROLES)} (any case)."


class DatasetOut(BaseModel):
    id: str
    project_id: str
    project_name: str
    project_owner: str | None = Field(description="The project's owner's username (a team-owned project: the team).")
    project_archived: bool = Field(description="An archived project's datasets are read-only.")
    name: str
    description: str
    created_at: datetime
    creator_id: str | None
    snapshot_ids: list[str] = Field(description="The dataset's snapshots, newest first.")
    tags: dict[str, str] = Field(description="Tag → the snapshot it names.")
    role: str = Field(description=f"Your role on the dataset: {', '.join(ROLES)}.")


class DatasetList(BaseModel):
    items: list[DatasetOut]
    total: int
    limit: int
    offset: int


class DatasetIn(Strict):
    project_id: str = Field(max_length=64, description="The project's id.")
    name: str = Field(max_length=MAX_NAME, description="Unique in the project.")
    description: str = Field("", max_length=MAX_DESCRIPTION)


class DatasetChange(Strict):
    name: str | None = Field(None, max_length=MAX_NAME, description="A new name, unique in the project.")
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class GrantOut(BaseModel):
    target_id: str = Field(description="A user's or a team's id.")
    role: str
    is_team: bool
    target_name: str = Field(description="The user's username or the team's name.")


class GrantIn(Strict):
    target_id: str = Field(max_length=256, description="A user's id or username, or a team's id.")
    role: str = Field(max_length=64, description=ROLE_HELP)


class SnapshotOut(BaseModel):
    id: str
    dataset_id: str
    created_at: datetime
    creator_id: str | None
    description: str
    size: int = Field(description="Bytes of the files it holds.")
    status: str


class SnapshotList(BaseModel):
    items: list[SnapshotOut]
    total: int
    limit: int
    offset: int


class SnapshotIn(Strict):
    paths: list[str] = Field(
        default_factory=list,
        max_length=MAX_PATHS,
        description="Files and directories of the head to keep; the whole head when empty (or '.').",
    )


class TagIn(Strict):
    snapshot_id: str = Field(max_length=64, description="The snapshot of this dataset the tag names.")


def dataset_out(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.id,
        "project_id": d.project_id,
        "project_name": d.project_name,
        "project_owner": d.project_owner,
        "project_archived": d.project_archived,
        "name": d.name,
        "description": d.description,
        "created_at": d.created_at,
        "creator_id": d.creator_id,
        "snapshot_ids": list(d.snapshot_ids),
        "tags": dict(d.tags),
        "role": d.role,
    }


def grant_out(g: Grant) -> dict[str, Any]:
    return {"target_id": g.target_id, "role": g.role, "is_team": g.is_team, "target_name": g.target_name}


def snapshot_out(x: Snapshot) -> dict[str, Any]:
    return {
        "id": x.id,
        "dataset_id": x.dataset_id,
        "created_at": x.created_at,
        "creator_id": x.creator_id,
        "description": x.description,
        "size": x.size,
        "status": x.status,
    }


Offset = Query(0, ge=0, le=10**9)
Limit = Query(100, ge=1, le=MAX_PAGE)
TagPath = Path(..., min_length=1, max_length=MAX_TAG, description="The tag's name (printable, no surrounding spaces).")


# --- datasets ---------------------------------------------------------------------------------------------------
@router.get(BASE, response_model=DatasetList, summary="The datasets you have a role on, newest first")
def list_datasets(
    principal: PrincipalDep,
    services: ServicesDep,
    project_id: str | None = Query(None, max_length=64, description="Only this project's (its id)."),
    name: str | None = Query(None, max_length=MAX_NAME, description="Only the datasets with this name."),
    offset: int = Offset,
    limit: int = Limit,
):
    found, total = services.datasets.list(principal, project_id=project_id, name=name, offset=offset, limit=limit)
    return {"items": [dataset_out(d) for d in found], "total": total, "limit": limit, "offset": offset}


@router.post(BASE, status_code=201, response_model=DatasetOut, responses=errors(404), summary="Create a dataset")
def create_dataset(body: DatasetIn, principal: PrincipalDep, services: ServicesDep):
    """In a project you may write to; you are its DatasetRwOwner. A name the project has → 400."""
    return dataset_out(services.datasets.create(principal, body.project_id, body.name, description=body.description))


@router.get(ONE, response_model=DatasetOut, summary="One dataset")
def get_dataset(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return dataset_out(services.datasets.get(principal, dataset_id))


@router.patch(ONE, response_model=DatasetOut, summary="Rename or describe a dataset (DatasetRwEditor)")
def update_dataset(dataset_id: str, body: DatasetChange, principal: PrincipalDep, services: ServicesDep):
    return dataset_out(services.datasets.update(principal, dataset_id, name=body.name, description=body.description))


@router.delete(ONE, response_model=DatasetOut, summary="Delete a dataset, its snapshots, tags and grants (Owner)")
def delete_dataset(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return dataset_out(services.datasets.delete(principal, dataset_id))


# --- grants -----------------------------------------------------------------------------------------------------
@router.get(ONE + "/grants", response_model=list[GrantOut], summary="A dataset's grants")
def list_grants(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return [grant_out(g) for g in services.datasets.grants(principal, dataset_id)]


@router.post(ONE + "/grants", response_model=list[GrantOut], summary="Give a user or team a role (Owner)")
def add_grant(dataset_id: str, body: GrantIn, principal: PrincipalDep, services: ServicesDep):
    """Replaces the target's grant; the grants after the change."""
    return [grant_out(g) for g in services.datasets.add_grant(principal, dataset_id, body.target_id, body.role)]


@router.delete(ONE + "/grants/{target_id}", response_model=list[GrantOut], summary="Take a grant away (Owner)")
def remove_grant(
    dataset_id: str,
    target_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    role: str = Query(..., max_length=64, description=ROLE_HELP + " The role the target has."),
):
    """``target_id``: a user's or team's id, or a username. The grants after the change; no such grant → 404."""
    return [grant_out(g) for g in services.datasets.remove_grant(principal, dataset_id, target_id, role)]


# --- snapshots and tags ------------------------------------------------------------------------------------------
@router.get(ONE + "/snapshots", response_model=SnapshotList, summary="A dataset's snapshots, newest first")
def list_snapshots(
    dataset_id: str, principal: PrincipalDep, services: ServicesDep, offset: int = Offset, limit: int = Limit
):
    found, total = services.datasets.snapshots(principal, dataset_id, offset=offset, limit=limit)
    return {"items": [snapshot_out(x) for x in found], "total": total, "limit": limit, "offset": offset}


@router.post(
    ONE + "/snapshots", status_code=201, response_model=SnapshotOut, summary="Snapshot the head (DatasetRwEditor)"
)
def create_snapshot(dataset_id: str, principal: PrincipalDep, services: ServicesDep, body: SnapshotIn = Body(None)):
    """All of the head (no body, or no ``paths``), or just ``paths`` (each must exist: else 404). No byte is
    copied."""
    return snapshot_out(services.datasets.create_snapshot(principal, dataset_id, (body or SnapshotIn()).paths))


@router.get("/dataset-snapshots/{snapshot_id}", response_model=SnapshotOut, summary="One snapshot")
def get_snapshot(snapshot_id: str, principal: PrincipalDep, services: ServicesDep):
    return snapshot_out(services.datasets.snapshot(principal, snapshot_id))


@router.put(ONE + "/tags/{tag}", response_model=DatasetOut, summary="Name a snapshot (DatasetRwEditor)")
def put_tag(dataset_id: str, body: TagIn, principal: PrincipalDep, services: ServicesDep, tag: str = TagPath):
    """An existing tag moves to the snapshot; the dataset with its tags."""
    return dataset_out(services.datasets.add_tag(principal, dataset_id, tag, body.snapshot_id))


@router.delete(ONE + "/tags/{tag}", response_model=DatasetOut, summary="Remove a tag (DatasetRwEditor)")
def delete_tag(dataset_id: str, principal: PrincipalDep, services: ServicesDep, tag: str = TagPath):
    return dataset_out(services.datasets.remove_tag(principal, dataset_id, tag))
