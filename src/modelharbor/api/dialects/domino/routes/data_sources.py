"""Data sources (ops 47–52, mounted at ``/api/datasource``) and ModelHarbor's connection test: each route parses,
makes one core call (core/data_sources.py) and maps the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_data_sources
from modelharbor.api.dialects.domino.routes.users import offset_limit
from modelharbor.api.params import field, iso_time, json_object
from modelharbor.core.data_sources import AuditQuery, Credentials, DataSourceUpdate, NewDataSource, Permissions

router = APIRouter()
BASE = "/v1/datasources"


def _credentials(body: dict[str, Any], required: bool) -> Credentials | None:
    value = field(body, "credentials", dict, required=required)
    if value is None:
        return None
    return Credentials(
        visible=field(value, "visibleCredentials", dict) or {}, secret=field(value, "secretCredentials", dict) or {}
    )


def _permissions(body: dict[str, Any], required: bool) -> Permissions | None:
    value = field(body, "permissions", dict, required=required)
    if value is None:
        return None
    ids = field(value, "userAndOrganizationIds", list) or []
    return Permissions(is_everyone=bool(field(value, "isEveryone", bool)), grantee_ids=tuple(ids))


@router.get("/v1/audit")
def audit(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    query = AuditQuery(
        data_source_ids=tuple(q.getlist("dataSourceIds")),
        data_source_names=tuple(q.getlist("dataSourceNames")),
        event_kinds=tuple(q.getlist("eventKinds")),
        start=iso_time(q.get("startTime"), "startTime"),
        end=iso_time(q.get("endTime"), "endTime"),
    )
    return [mapping_data_sources.audit_event(e) for e in services.data_sources.audit(principal, query)]


@router.get(BASE)
def data_sources(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    names = request.query_params.getlist("dataSourceNames")
    found, total = services.data_sources.list(principal, names=names, offset=offset, limit=limit)
    return {
        "dataSources": [mapping_data_sources.data_source(d) for d in found],
        "metadata": mapping.paged(request, offset, limit, total),
    }


@router.post(BASE)
async def create(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``NewDataSourceV1``."""
    body = await json_object(request, missing="a JSON object body (NewDataSourceV1) is required")
    new = NewDataSource(
        name=field(body, "name", str, required=True),
        data_source_type=field(body, "dataSourceType", str, required=True),
        auth_type=field(body, "authType", str, required=True),
        credential_type=field(body, "credentialType", str, required=True),
        config=field(body, "config", dict, required=True),
        credentials=_credentials(body, True),
        permissions=_permissions(body, True),
        description=field(body, "description", str) or "",
    )
    ds = await run_in_threadpool(services.data_sources.create, principal, new)
    return mapping_data_sources.data_source(ds)


@router.get(BASE + "/{data_source_id}")
def get(request: Request, data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_data_sources.data_source(services.data_sources.get(principal, data_source_id))


@router.patch(BASE + "/{data_source_id}")
async def update(request: Request, data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    """``DataSourceUpdateV1``: any of config, credentials, permissions."""
    body = await json_object(request, missing="a JSON object body (DataSourceUpdateV1) is required")
    change = DataSourceUpdate(
        config=field(body, "config", dict), credentials=_credentials(body, False), permissions=_permissions(body, False)
    )
    ds = await run_in_threadpool(services.data_sources.update, principal, data_source_id, change)
    return mapping_data_sources.data_source(ds)


@router.delete(BASE + "/{data_source_id}")
def delete(request: Request, data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_data_sources.data_source(services.data_sources.delete(principal, data_source_id))


@router.post(BASE + "/{data_source_id}/test")
def test_connection(request: Request, data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    """ModelHarbor extension: connect with the credentials that apply to the caller; 200 with ``ok`` either way."""
    result = services.data_sources.test_connection(principal, data_source_id)
    return {**mapping_data_sources.connection_test(result), "metadata": mapping.metadata(request)}
