"""Domino's hardware tiers (ops 59-63, mounted at ``/api/hardwaretiers``), the client's
``GET /v4/projects/{id}/hardwareTiers`` and the compute providers and tiers (ops 16-26, ``/api/admin/v1``).

Each route checks its input's shape (sizes: Domino's ``InformationV1`` into bytes, :func:`to_bytes`), makes one core
call (core/hardware_tiers.py, core/compute_providers.py) and
renders the answer. Providers are the server's executors: creating, changing or deleting them (and compute tiers,
which are hardware tiers a provider can run) is answered with a "not supported" error.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping
from modelharbor.api.dialects.domino.mapping import failure, metadata
from modelharbor.api.params import field, flag, int_param, json_object
from modelharbor.core.hardware_tiers import MAX_MEMORY, UNITS, TierChanges
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
v4_router = APIRouter()
admin_router = APIRouter()

# NewHardwareTierV1 fields ModelHarbor keeps and echoes without acting on them, and their JSON types
_KEPT = {
    "availabilityZones": list,
    "computeClusterRestrictions": dict,
    "dataPlaneId": str,
    "overProvisioning": dict,
    "podCustomization": dict,
    "tags": list,
    "metadata": dict,
}


def to_bytes(value: Any, units: Any, what: str) -> int:
    """Domino's ``InformationV1`` (``value`` in ``units`` MB, MiB, GB or GiB) as the bytes the core takes."""
    if not isinstance(units, str) or units not in UNITS:
        raise InvalidInput(f"'{what}.units' must be one of {', '.join(UNITS)}, not {units!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"'{what}.value' must be a positive number")
    size = value * UNITS[units]
    if not size <= MAX_MEMORY:  # also infinity, from a huge float
        raise InvalidInput(f"'{what}' is larger than {MAX_MEMORY // 2**40} TiB")
    return round(size)


def _info(body: dict[str, Any], name: str) -> tuple[int, str] | None:
    value = field(body, name, dict)
    if value is None:
        return None
    return to_bytes(value.get("value"), value.get("units"), f"resources.{name}"), value["units"]


def _changes(body: dict[str, Any], *, create: bool) -> TierChanges:
    """NewHardwareTierV1 / HardwareTierV1 as the core's changes (given fields only: a PUT changes what it names)."""
    resources = field(body, "resources", dict, required=create) or {}
    flags = field(body, "flags", dict) or {}
    gpu = field(body, "gpuConfiguration", dict)
    memory = _info(resources, "memory")
    memory_limit = _info(resources, "memoryLimit")
    if create and memory is None:
        raise InvalidInput("'resources.memory' is required")
    extra: dict[str, Any] = {}
    for name, kind in _KEPT.items():
        if name in body and body[name] is not None:
            extra[name] = field(body, name, kind)
    for name in mapping.TIER_EXTRA_FLAGS:
        if flags.get(name) is not None:
            extra[name] = field(flags, name, bool)
    for name in ("memorySwapLimit", "sharedMemoryLimit"):
        if resources.get(name) is not None:
            extra[name] = field(resources, name, dict)
    if resources.get("allowSharedMemoryToExceedDefault") is not None:
        extra["allowSharedMemoryToExceedDefault"] = field(resources, "allowSharedMemoryToExceedDefault", bool)
    if create and field(body, "nodePool", str, required=True) is None:
        raise InvalidInput("'nodePool' is required")
    changes = TierChanges(
        name=field(body, "name", str, required=create),
        cores=field(resources, "cores", (int, float), required=create),
        cores_limit=field(resources, "coresLimit", (int, float)),
        memory=memory[0] if memory else None,
        memory_limit=memory_limit[0] if memory_limit else None,
        memory_units=memory[1] if memory else None,
        gpu_key=field(gpu, "gpuKey", str) if gpu else None,
        gpus=field(gpu, "numberOfGpus", int) if gpu else None,
        cents_per_minute=field(body, "centsPerMinute", (int, float)),
        is_default=field(flags, "isDefault", bool),
        is_visible=field(flags, "isVisible", bool),
        is_global=field(flags, "isGlobal", bool),
        node_pool=field(body, "nodePool", str),
        max_executions=field(body, "maxSimultaneousExecutions", int),
        extra=extra,
    )
    return changes


def _envelope(request: Request, tier) -> dict[str, Any]:
    return {"hardwareTier": mapping.hardware_tier(tier), "metadata": metadata(request)}


# --- ops 59-63 -----------------------------------------------------------------------------------------
@router.get("/v1/hardwaretiers")
def list_hardware_tiers(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    limit = int_param(q.get("limit"), "limit", 10, low=1, high=1000)
    archived = flag(q.get("includeArchived"), "includeArchived", False, loose=False)
    tiers, total = services.hardware_tiers.list_tiers(principal, include_archived=archived, offset=offset, limit=limit)
    return {
        "hardwareTiers": [mapping.hardware_tier(t) for t in tiers],
        "metadata": metadata(request, offset=offset, limit=limit, totalCount=total),
    }


@router.post("/v1/hardwaretiers")
async def create_hardware_tier(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body (NewHardwareTierV1) is required")
    tier_id = field(body, "id", str, required=True)
    tier = await run_in_threadpool(services.hardware_tiers.create_tier, principal, tier_id, _changes(body, create=True))
    return _envelope(request, tier)


@router.put("/v1/hardwaretiers")
async def update_hardware_tier(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body (HardwareTierV1) is required")
    tier_id = field(body, "id", str, required=True)
    tier = await run_in_threadpool(
        services.hardware_tiers.update_tier, principal, tier_id, _changes(body, create=False)
    )
    return _envelope(request, tier)


@router.get("/v1/hardwaretiers/{tier_id}")
def get_hardware_tier(request: Request, tier_id: str, principal: PrincipalDep, services: ServicesDep):
    return _envelope(request, services.hardware_tiers.get_tier(principal, tier_id))


@router.delete("/v1/hardwaretiers/{tier_id}")
def archive_hardware_tier(request: Request, tier_id: str, principal: PrincipalDep, services: ServicesDep):
    return _envelope(request, services.hardware_tiers.archive_tier(principal, tier_id))


# --- the client's project tiers ------------------------------------------------------------------------
@v4_router.get("/projects/{project_id}/hardwareTiers")
def project_hardware_tiers(project_id: str, principal: PrincipalDep, services: ServicesDep):
    return [mapping.v4_hardware_tier(t) for t in services.hardware_tiers.for_project(principal, project_id)]


# --- compute providers and tiers (ops 16-26) -----------------------------------------------------------
def _not_supported(request: Request, what: str) -> Any:
    return failure(
        request,
        400,
        f"{what} is not supported by ModelHarbor: compute providers are the server's executors (its configuration), "
        "and their compute tiers are the hardware tiers they can run — manage those with "
        "/api/hardwaretiers/v1/hardwaretiers.",
    )


def _tier_page(request: Request, principal, services, *, selectable: bool) -> dict[str, Any]:
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    limit = int_param(q.get("limit"), "limit", 10, low=1, high=1000)
    tiers = services.compute_providers.list_tiers(
        principal, provider_id=q.get("computeProviderId") or None, search=q.get("search"), selectable=selectable
    )
    return {
        "items": [mapping.compute_tier(t) for t in tiers[offset : offset + limit]],
        "metadata": metadata(request, offset=offset, limit=limit, totalCount=len(tiers)),
    }


@admin_router.get("/v1/computeProviderTypes")
def compute_provider_types(principal: PrincipalDep, services: ServicesDep):
    return [mapping.provider_type(t) for t in services.compute_providers.provider_types(principal)]


@admin_router.get("/v1/computeProviders")
def compute_providers(principal: PrincipalDep, services: ServicesDep):
    return [mapping.compute_provider(c) for c in services.compute_providers.list_providers(principal)]


@admin_router.post("/v1/computeProviders")
def create_compute_provider(request: Request, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.provider_types(principal)  # 403 for non-admins first
    return _not_supported(request, "Creating a compute provider")


@admin_router.patch("/v1/computeProviders/{provider_id}")
def update_compute_provider(request: Request, provider_id: str, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.get_provider(principal, provider_id)
    return _not_supported(request, "Changing a compute provider")


@admin_router.delete("/v1/computeProviders/{provider_id}")
def delete_compute_provider(request: Request, provider_id: str, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.get_provider(principal, provider_id)
    return _not_supported(request, "Deleting a compute provider")


@admin_router.get("/v1/computeTiers")
def compute_tiers(request: Request, principal: PrincipalDep, services: ServicesDep):
    return _tier_page(request, principal, services, selectable=False)


@admin_router.get("/v1/computeTiers/selectable")
def selectable_compute_tiers(request: Request, principal: PrincipalDep, services: ServicesDep):
    return _tier_page(request, principal, services, selectable=True)


@admin_router.post("/v1/computeTiers")
def create_compute_tier(request: Request, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.provider_types(principal)
    return _not_supported(request, "Creating a compute tier")


@admin_router.get("/v1/computeTiers/{tier_id}")
def get_compute_tier(tier_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping.compute_tier(services.compute_providers.get_tier(principal, tier_id))


@admin_router.patch("/v1/computeTiers/{tier_id}")
def update_compute_tier(request: Request, tier_id: str, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.get_tier(principal, tier_id)
    return _not_supported(request, "Changing a compute tier")


@admin_router.delete("/v1/computeTiers/{tier_id}")
def delete_compute_tier(request: Request, tier_id: str, principal: PrincipalDep, services: ServicesDep):
    services.compute_providers.get_tier(principal, tier_id)
    return _not_supported(request, "Deleting a compute tier")
