"""Domino datasets (ops 34–46, mounted at ``/api/datasetrw``) and the client's legacy ``/dataset`` routes
(``datasets_list``/``_create``/``_details``/``_update_details``/``_remove``): each route parses, makes one core call
(core/datasets.py) and maps the answer (mapping_datasets.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping_datasets
from modelharbor.api.dialects.domino.mapping import metadata
from modelharbor.api.params import field, flag, int_param, json_object, json_value
from modelharbor.core.dataset_access import READER, permission_of
from modelharbor.domain.errors import InvalidInput

router = APIRouter()  # /api/datasetrw
legacy = APIRouter()  # /dataset
shared = APIRouter()  # /api/projects: a project's shared datasets (ops 131-133)
DATASET = "/v1/datasets/{dataset_id}"


def _page(request: Request) -> tuple[int, int]:
    q = request.query_params
    return int_param(q.get("offset"), "offset", 0, high=10**9), int_param(q.get("limit"), "limit", 10, low=1, high=1000)


def _grants(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(g, dict) for g in value):
        raise InvalidInput("'grants' must be a list of {targetId, targetRole} objects", field="grants")
    return [(field(g, "targetId", str, required=True), field(g, "targetRole", str, required=True)) for g in value]


async def _grant(request: Request) -> tuple[str, str]:
    body = await json_object(request, missing="a JSON object body {targetId, targetRole} is required")
    return field(body, "targetId", str, required=True), field(body, "targetRole", str, required=True)


def _listing(request: Request, total: int, offset: int, limit: int, items: list) -> dict[str, Any]:
    return {"datasets": items, "metadata": metadata(request, offset=offset, limit=limit, totalCount=total)}


# --- ops 34-37 and delete -------------------------------------------------------------------------------------------
@router.get("/v1/datasets")
def datasets_v1(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = _page(request)
    project_id = request.query_params.get("projectId") or None
    found, total = services.datasets.list(principal, project_id=project_id, offset=offset, limit=limit)
    return _listing(request, total, offset, limit, [mapping_datasets.details(d) for d in found])


@router.get("/v2/datasets")
def datasets_v2(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    offset, limit = _page(request)
    permission = q.get("minimumPermission")
    with_project = flag(q.get("includeProjectInfo"), "includeProjectInfo", False, loose=False)
    found, total = services.datasets.list(
        principal,
        minimum=permission_of(permission) if permission else READER,
        include=[p for p in q.getlist("projectIdsToInclude") if p],
        exclude=[p for p in q.getlist("projectIdsToExclude") if p],
        archived=flag(q.get("includeArchivedProjects"), "includeArchivedProjects", False, loose=False),
        offset=offset,
        limit=limit,
    )
    return _listing(request, total, offset, limit, [mapping_datasets.info(d, with_project) for d in found])


@router.post("/v1/datasets")
async def create_dataset(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``NewDatasetRwV1`` ``{name, projectId, description?, grants?, snapshotId?}``."""
    body = await json_object(request, missing="a JSON object body {name, projectId, …} is required")
    dataset = await run_in_threadpool(
        partial(
            services.datasets.create,
            principal,
            field(body, "projectId", str, required=True),
            field(body, "name", str, required=True),
            description=field(body, "description", str),
            grants=_grants(body.get("grants")),
            snapshot_id=field(body, "snapshotId", str),
        )
    )
    return mapping_datasets.envelope(request, dataset)


@router.get(DATASET)
def get_dataset(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_datasets.envelope(request, services.datasets.get(principal, dataset_id))


@router.patch(DATASET)
async def update_dataset(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """``DatasetRwMetadataV1`` ``{name?, description?}``."""
    body = await json_object(request, missing="a JSON object body {name?, description?} is required")
    dataset = await run_in_threadpool(
        partial(
            services.datasets.update,
            principal,
            dataset_id,
            name=field(body, "name", str),
            description=field(body, "description", str),
        )
    )
    return mapping_datasets.envelope(request, dataset)


@router.delete(DATASET)
def delete_dataset(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_datasets.envelope(request, services.datasets.delete(principal, dataset_id))


# --- ops 38-40: grants ----------------------------------------------------------------------------------------------
@router.get(DATASET + "/grants")
def dataset_grants(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    grants = services.datasets.grants(principal, dataset_id)
    return {"grantDetails": [mapping_datasets.grant_details(g) for g in grants], "metadata": metadata(request)}


@router.post(DATASET + "/grants")
async def add_grant(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    target, role = await _grant(request)
    grants = await run_in_threadpool(services.datasets.add_grant, principal, dataset_id, target, role)
    return {"grants": [mapping_datasets.grant(g) for g in grants], "metadata": metadata(request)}


@router.delete(DATASET + "/grants")
async def remove_grant(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """DELETE with a JSON body: the grant to remove."""
    target, role = await _grant(request)
    grants = await run_in_threadpool(services.datasets.remove_grant, principal, dataset_id, target, role)
    return {"grants": [mapping_datasets.grant(g) for g in grants], "metadata": metadata(request)}


# --- ops 41-45: snapshots and tags ----------------------------------------------------------------------------------
@router.get(DATASET + "/snapshots")
def dataset_snapshots(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    offset, limit = _page(request)
    found, total = services.datasets.snapshots(principal, dataset_id, offset=offset, limit=limit)
    return {
        "snapshots": [mapping_datasets.snapshot(s) for s in found],
        "metadata": metadata(request, offset=offset, limit=limit, totalCount=total),
    }


@router.post(DATASET + "/snapshots")
async def create_snapshot(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """``NewSnapshotV1`` ``{relativeFilePaths}`` ([] or ``["."]``: the whole head; an empty body too)."""
    body = await json_object(request, required=False)
    paths = body.get("relativeFilePaths") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InvalidInput("'relativeFilePaths' must be a list of strings", field="relativeFilePaths")
    snap = await run_in_threadpool(services.datasets.create_snapshot, principal, dataset_id, paths)
    return {"snapshot": mapping_datasets.snapshot(snap), "metadata": metadata(request)}


@router.get("/v1/snapshots/{snapshot_id}")
def get_snapshot(request: Request, snapshot_id: str, principal: PrincipalDep, services: ServicesDep):
    snap = services.datasets.snapshot(principal, snapshot_id)
    return {"snapshot": mapping_datasets.snapshot(snap), "metadata": metadata(request)}


@router.post(DATASET + "/tags")
async def add_tag(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """``DatasetRwTagToAddV1`` ``{tagName, snapshotId}``."""
    body = await json_object(request, missing="a JSON object body {tagName, snapshotId} is required")
    tag, snap = field(body, "tagName", str, required=True), field(body, "snapshotId", str, required=True)
    dataset = await run_in_threadpool(services.datasets.add_tag, principal, dataset_id, tag, snap)
    return mapping_datasets.envelope(request, dataset)


@router.delete(DATASET + "/tags/{tag_name}")
def remove_tag(request: Request, dataset_id: str, tag_name: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_datasets.envelope(request, services.datasets.remove_tag(principal, dataset_id, tag_name))


# --- legacy /dataset (the client's datasets_* calls) ----------------------------------------------------------------
@legacy.get("/")
def legacy_datasets(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``datasets_list``: a JSON array of ``{datasetId, datasetName, datasetDescription, projectId}``."""
    project_id = request.query_params.get("projectId") or None
    found, _ = services.datasets.list(principal, project_id=project_id, limit=1000)
    return [mapping_datasets.legacy(d) for d in found]


@legacy.post("/")
async def legacy_create(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``datasets_create``: ``{datasetName, description, projectId}``."""
    body = await json_object(request, missing="a JSON object body {datasetName, projectId} is required")
    dataset = await run_in_threadpool(
        partial(
            services.datasets.create,
            principal,
            field(body, "projectId", str, required=True),
            field(body, "datasetName", str, required=True),
            description=field(body, "description", str),
        )
    )
    return mapping_datasets.legacy(dataset)


@legacy.get("/{dataset_id}")
def legacy_details(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_datasets.legacy(services.datasets.get(principal, dataset_id))


@legacy.patch("/{dataset_id}")
async def legacy_update(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """``datasets_update_details``: ``{datasetName?, description?}``."""
    body = await json_value(request, missing="a JSON object body {datasetName?, description?} is required")
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    dataset = await run_in_threadpool(
        partial(
            services.datasets.update,
            principal,
            dataset_id,
            name=field(body, "datasetName", str),
            description=field(body, "description", str),
        )
    )
    return mapping_datasets.legacy(dataset)


@legacy.delete("/{dataset_id}")
def legacy_remove(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_datasets.legacy(services.datasets.delete(principal, dataset_id))


# --- ops 131-133: shared datasets (mounted at /api/projects) --------------------------------------------------------
SHARED = "/v1/projects/{project_id}/shared-datasets"


def _shared(request: Request, project_id: str, ids: list[str]) -> dict[str, Any]:
    return {"dataset": {"projectId": project_id, "sharedDatasetIds": ids}, "metadata": metadata(request)}


@shared.get(SHARED)
def shared_datasets(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    return _shared(request, project_id, services.datasets.shared(principal, project_id))


@shared.post(SHARED)
async def link_dataset(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """``DatasetToAddV1`` ``{datasetId}``."""
    body = await json_object(request, missing="a JSON object body {datasetId} is required")
    dataset_id = field(body, "datasetId", str, required=True)
    ids = await run_in_threadpool(services.datasets.link, principal, project_id, dataset_id)
    return _shared(request, project_id, ids)


@shared.delete(SHARED + "/{dataset_id}")
def unlink_dataset(request: Request, project_id: str, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    services.datasets.unlink(principal, project_id, dataset_id)
    return {"success": True, "metadata": metadata(request)}
