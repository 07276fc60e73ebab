"""Native routes for data sources (core/data_sources.py): list, one, create, update, delete, connection test, audit.

Credentials go in (``visible_credentials``, ``secret_credentials``) and never come out: the secret ones are sealed
at rest. Who may see, change and delete a data source is the core's rule (docs/api.md#data-sources).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.schemas import Strict
from modelharbor.api.params import iso_time
from modelharbor.core.data_sources import (
    AuditEvent,
    AuditQuery,
    ConnectionTest,
    Credentials,
    DataSource,
    DataSourceUpdate,
    NewDataSource,
    Permissions,
)

router = APIRouter(tags=["data sources"], route_class=JsonRoute)
BASE = "/data-sources"


class DataSourceOut(BaseModel):
    id: str
    name: str
    description: str
    data_source_type: str
    auth_type: str
    credential_type: str = Field(description="Shared or Individual.")
    config: dict[str, str]
    is_everyone: bool
    grantee_ids: list[str] = Field(description="Users and teams allowed to see and use it.")
    owner_id: str | None
    owner_username: str
    created_at: datetime
    updated_at: datetime


class CredentialsIn(Strict):
    visible: dict[str, str] = Field(default_factory=dict, description="username, accessKeyID: kept, not returned.")
    secret: dict[str, str] = Field(default_factory=dict, description="password, secretAccessKey, token: sealed.")


class PermissionsIn(Strict):
    is_everyone: bool = False
    grantee_ids: list[str] = Field(default_factory=list, description="User ids or usernames, team ids.")


class DataSourceIn(Strict):
    name: str
    data_source_type: str = Field(description="S3Config, GenericS3Config, PostgreSQLConfig, MySQLConfig, …")
    auth_type: str = Field(description="Basic, AWSIAMBasic, OAuth or NoAuth, as the type takes.")
    credential_type: str = "Shared"
    config: dict[str, str]
    credentials: CredentialsIn
    permissions: PermissionsIn = Field(default_factory=PermissionsIn)
    description: str = ""


class DataSourceChange(Strict):
    config: dict[str, str] | None = Field(None, description="Keys given replace theirs; '' removes an optional one.")
    credentials: CredentialsIn | None = None
    permissions: PermissionsIn | None = None


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str
    data_source_type: str
    elapsed_ms: int


class AuditEventOut(BaseModel):
    data_source_id: str
    data_source_name: str
    data_source_type: str
    event_kind: str
    details: dict[str, str]
    performed_by: str
    timestamp: datetime


def data_source_out(d: DataSource) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "data_source_type": d.data_source_type,
        "auth_type": d.auth_type,
        "credential_type": d.credential_type,
        "config": dict(d.config),
        "is_everyone": d.is_everyone,
        "grantee_ids": list(d.grantee_ids),
        "owner_id": d.owner_id,
        "owner_username": d.owner_username,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def _test_out(t: ConnectionTest) -> dict[str, Any]:
    return {"ok": t.ok, "message": t.message, "data_source_type": t.data_source_type, "elapsed_ms": t.elapsed_ms}


def _event_out(e: AuditEvent) -> dict[str, Any]:
    return {
        "data_source_id": e.data_source_id,
        "data_source_name": e.data_source_name,
        "data_source_type": e.data_source_type,
        "event_kind": e.event_kind,
        "details": dict(e.details),
        "performed_by": e.performed_by,
        "timestamp": e.timestamp,
    }


TimeQuery = Query(None, description="ISO-8601 date-time.", json_schema_extra={"format": "date-time"})


def _credentials(c: CredentialsIn | None) -> Credentials | None:
    return None if c is None else Credentials(c.visible, c.secret)


def _permissions(p: PermissionsIn | None) -> Permissions | None:
    return None if p is None else Permissions(p.is_everyone, tuple(p.grantee_ids))


@router.get(BASE, response_model=list[DataSourceOut], summary="The data sources you may see, by name")
def list_data_sources(
    principal: PrincipalDep,
    services: ServicesDep,
    name: list[str] = Query(default_factory=list),
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(100, ge=1, le=1000),
):
    found, _ = services.data_sources.list(principal, names=name, offset=offset, limit=limit)
    return [data_source_out(d) for d in found]


@router.post(BASE, status_code=201, response_model=DataSourceOut, summary="Create a data source")
def create_data_source(body: DataSourceIn, principal: PrincipalDep, services: ServicesDep):
    new = NewDataSource(
        name=body.name,
        data_source_type=body.data_source_type,
        auth_type=body.auth_type,
        credential_type=body.credential_type,
        config=body.config,
        credentials=_credentials(body.credentials),
        permissions=_permissions(body.permissions),
        description=body.description,
    )
    return data_source_out(services.data_sources.create(principal, new))


@router.get(
    "/data-source-audit", response_model=list[AuditEventOut], responses=errors(403), summary="The audit log (admins)"
)
def audit(
    principal: PrincipalDep,
    services: ServicesDep,
    data_source_id: list[str] = Query(default_factory=list),
    data_source_name: list[str] = Query(default_factory=list),
    event_kind: list[str] = Query(default_factory=list),
    start: str | None = TimeQuery,
    end: str | None = TimeQuery,
):
    since, until = iso_time(start, "start"), iso_time(end, "end")
    query = AuditQuery(tuple(data_source_id), tuple(data_source_name), tuple(event_kind), since, until)
    return [_event_out(e) for e in services.data_sources.audit(principal, query)]


@router.get(BASE + "/{data_source_id}", response_model=DataSourceOut, summary="One data source")
def get_data_source(data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    return data_source_out(services.data_sources.get(principal, data_source_id))


@router.patch(BASE + "/{data_source_id}", response_model=DataSourceOut, responses=errors(403), summary="Change one")
def update_data_source(data_source_id: str, body: DataSourceChange, principal: PrincipalDep, services: ServicesDep):
    change = DataSourceUpdate(body.config, _credentials(body.credentials), _permissions(body.permissions))
    return data_source_out(services.data_sources.update(principal, data_source_id, change))


@router.delete(BASE + "/{data_source_id}", response_model=DataSourceOut, responses=errors(403), summary="Delete one")
def delete_data_source(data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    return data_source_out(services.data_sources.delete(principal, data_source_id))


@router.post(BASE + "/{data_source_id}/test", response_model=ConnectionTestOut, summary="Test the connection")
def test_data_source(data_source_id: str, principal: PrincipalDep, services: ServicesDep):
    return _test_out(services.data_sources.test_connection(principal, data_source_id))
