"""Native routes for hardware tiers (core/hardware_tiers.py): list, one, create, update, archive.

Sizes are plain numbers: ``cores``/``cores_limit`` in cores, ``memory``/``memory_limit`` in bytes. Everyone in the
organisation reads (non-admins: the visible tiers); admins write.
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
from modelharbor.core.hardware_tiers import HardwareTier, TierChanges

router = APIRouter(prefix="/hardware-tiers", tags=["hardware tiers"], route_class=JsonRoute)


class HardwareTierOut(BaseModel):
    id: str
    name: str
    cores: float = Field(description="CPU cores requested; the CPU limit when cores_limit is null.")
    cores_limit: float | None
    memory: int = Field(description="Bytes requested; the memory limit when memory_limit is null.")
    memory_limit: int | None
    gpus: int
    gpu_key: str | None
    cents_per_minute: float
    is_default: bool
    is_visible: bool
    is_archived: bool
    created_at: datetime
    updated_at: datetime


class HardwareTierUpdate(Strict):
    name: str | None = None
    cores: float | None = Field(None, gt=0)
    cores_limit: float | None = Field(None, gt=0)
    memory: int | None = Field(None, gt=0, description="Bytes.")
    memory_limit: int | None = Field(None, gt=0, description="Bytes.")
    gpus: int | None = Field(None, ge=0)
    gpu_key: str | None = None
    cents_per_minute: float | None = Field(None, ge=0)
    is_default: bool | None = Field(None, description="Making a tier the default clears the flag on the others.")
    is_visible: bool | None = None


class HardwareTierIn(HardwareTierUpdate):
    id: str = Field(description="1-100 letters, digits, '.', '_' or '-'; unique in the organisation.")
    name: str
    cores: float = Field(gt=0)
    memory: int = Field(gt=0, description="Bytes.")


def tier_out(t: HardwareTier) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "cores": t.cores,
        "cores_limit": t.cores_limit,
        "memory": t.memory,
        "memory_limit": t.memory_limit,
        "gpus": t.gpus,
        "gpu_key": t.gpu_key,
        "cents_per_minute": t.cents_per_minute,
        "is_default": t.is_default,
        "is_visible": t.is_visible,
        "is_archived": t.is_archived,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def _changes(body: HardwareTierUpdate) -> TierChanges:
    return TierChanges(**body.model_dump(exclude={"id"}, exclude_none=True))


@router.get("", response_model=list[HardwareTierOut], summary="The organisation's hardware tiers, default first")
def list_tiers(principal: PrincipalDep, services: ServicesDep, include_archived: bool = Query(False)):
    tiers, _ = services.hardware_tiers.list_tiers(principal, include_archived=include_archived)
    return [tier_out(t) for t in tiers]


@router.post("", status_code=201, response_model=HardwareTierOut, responses=errors(403), summary="Create a tier")
def create_tier(body: HardwareTierIn, principal: PrincipalDep, services: ServicesDep):
    return tier_out(services.hardware_tiers.create_tier(principal, body.id, _changes(body)))


@router.get("/{tier_id}", response_model=HardwareTierOut, summary="One hardware tier")
def get_tier(tier_id: str, principal: PrincipalDep, services: ServicesDep):
    return tier_out(services.hardware_tiers.get_tier(principal, tier_id))


@router.patch("/{tier_id}", response_model=HardwareTierOut, responses=errors(403), summary="Change a tier")
def update_tier(tier_id: str, body: HardwareTierUpdate, principal: PrincipalDep, services: ServicesDep):
    return tier_out(services.hardware_tiers.update_tier(principal, tier_id, _changes(body)))


@router.post("/{tier_id}/archive", response_model=HardwareTierOut, responses=errors(403), summary="Archive a tier")
def archive_tier(tier_id: str, principal: PrincipalDep, services: ServicesDep):
    return tier_out(services.hardware_tiers.archive_tier(principal, tier_id))
