"""MLflow model-registry REST API (``/api/2.0/mlflow/registered-models/*`` and ``/model-versions/*``).

Exactly what the ``mlflow`` 3.x client calls (``mlflow/store/model_registry/rest_store.py``). GETs carry their
parameters in the query string (repeated keys for lists); other methods carry a JSON body. All rules live in
:mod:`modelharbor.core.registry`; this module only translates shapes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import bearer_token, principal_of_key, services_of
from modelharbor.api.dialects.mlflow import filters
from modelharbor.api.dialects.mlflow.common import get_principal, json_body, paged
from modelharbor.core.registry import ModelVersion, RegisteredModel, ms
from modelharbor.db.engine import run_db
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

router = APIRouter()


# Both dependencies are async: FastAPI runs a plain ``def`` dependency in a worker thread, and on a busy box handing a
# request to a thread and back costs more than these lookups (bench/registry.py).
async def principal(request: Request) -> Principal:
    """:func:`get_principal`, answered on the event loop when the key was verified a moment ago."""
    token = bearer_token(request)
    if token:
        return await principal_of_key(services_of(request), token)
    return await run_in_threadpool(get_principal, request)  # Basic auth, or none


async def _services(request: Request) -> Services:
    return services_of(request)


PrincipalDep = Annotated[Principal, Depends(principal)]
ServicesDep = Annotated[Services, Depends(_services)]

LIST_PARAMS = {"order_by", "stages"}


async def _params(request: Request) -> dict[str, Any]:
    """The JSON body, with query-string parameters on top (lists for repeatable keys)."""
    params = await json_body(request)
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if key in LIST_PARAMS else values[-1]
    return params


def _json(content: dict[str, Any]) -> JSONResponse:
    """The answer rendered straight to JSON. It holds only dicts, lists, strings and numbers, so FastAPI's
    ``jsonable_encoder`` pass over it (milliseconds for a page of models) is skipped."""
    return JSONResponse(content)


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def model_version_json(v: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": ms(v.creation_time),
        "last_updated_timestamp": ms(v.last_updated_time),
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
        "status": v.status,
        "tags": _tags(v.tags),
        "aliases": list(v.aliases),
    }
    for key in ("run_id", "run_link", "model_id"):
        if getattr(v, key):
            out[key] = getattr(v, key)
    return out


def registered_model_json(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": ms(m.creation_time),
        "last_updated_timestamp": ms(m.last_updated_time),
        "description": m.description,
        "latest_versions": [model_version_json(v) for v in m.latest_versions],
        "tags": _tags(m.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in m.aliases],
    }


# --- registered models ------------------------------------------------------------------------------
@router.post("/registered-models/create")
async def create_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    m = await run_db(
        services.db,
        services.registry.create_model,
        principal,
        p.get("name"),
        description=p.get("description"),
        tags=p.get("tags"),
    )
    return _json({"registered_model": registered_model_json(m)})


@router.get("/registered-models/get")
async def get_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    m = await run_db(services.db, services.registry.get_model, principal, p.get("name"))
    return _json({"registered_model": registered_model_json(m)})


@router.post("/registered-models/rename")
async def rename_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    m = await run_db(services.db, services.registry.rename_model, principal, p.get("name"), p.get("new_name"))
    return _json({"registered_model": registered_model_json(m)})


@router.patch("/registered-models/update")
async def update_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    m = await run_db(
        services.db, services.registry.update_model, principal, p.get("name"), description=p.get("description")
    )
    return _json({"registered_model": registered_model_json(m)})


@router.delete("/registered-models/delete")
async def delete_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.delete_model, principal, p.get("name"))
    return _json({})


@router.get("/registered-models/search")
async def search_registered_models(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    page = await run_db(
        services.db,
        services.registry.search_models,
        principal,
        filters.query(p.get("filter"), p.get("order_by")),
        max_results=filters.max_results(p.get("max_results")),
        offset=filters.decode_token(p.get("page_token")),
    )
    return _json(paged(page, "registered_models", registered_model_json))


@router.api_route("/registered-models/get-latest-versions", methods=["GET", "POST"])
async def get_latest_versions(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    versions = await run_db(services.db, services.registry.latest_versions, principal, p.get("name"), p.get("stages"))
    return _json({"model_versions": [model_version_json(v) for v in versions]})


@router.post("/registered-models/set-tag")
async def set_registered_model_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.set_model_tag, principal, p.get("name"), p.get("key"), p.get("value"))
    return _json({})


@router.delete("/registered-models/delete-tag")
async def delete_registered_model_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.delete_model_tag, principal, p.get("name"), p.get("key"))
    return _json({})


@router.post("/registered-models/alias")
async def set_registered_model_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.set_alias, principal, p.get("name"), p.get("alias"), p.get("version"))
    return _json({})


@router.delete("/registered-models/alias")
async def delete_registered_model_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.delete_alias, principal, p.get("name"), p.get("alias"))
    return _json({})


@router.get("/registered-models/alias")
async def get_model_version_by_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    v = await run_db(services.db, services.registry.get_version_by_alias, principal, p.get("name"), p.get("alias"))
    return _json({"model_version": model_version_json(v)})


# --- model versions ---------------------------------------------------------------------------------
@router.post("/model-versions/create")
async def create_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    v = await run_db(
        services.db,
        services.registry.create_version,
        principal,
        p.get("name"),
        p.get("source"),
        run_id=p.get("run_id"),
        tags=p.get("tags"),
        run_link=p.get("run_link"),
        description=p.get("description"),
        model_id=p.get("model_id"),
    )
    return _json({"model_version": model_version_json(v)})


@router.get("/model-versions/get")
async def get_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    v = await run_db(services.db, services.registry.get_version, principal, p.get("name"), p.get("version"))
    return _json({"model_version": model_version_json(v)})


@router.patch("/model-versions/update")
async def update_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    v = await run_db(
        services.db,
        services.registry.update_version,
        principal,
        p.get("name"),
        p.get("version"),
        description=p.get("description"),
    )
    return _json({"model_version": model_version_json(v)})


@router.delete("/model-versions/delete")
async def delete_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.delete_version, principal, p.get("name"), p.get("version"))
    return _json({})


@router.get("/model-versions/search")
async def search_model_versions(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    page = await run_db(
        services.db,
        services.registry.search_versions,
        principal,
        filters.query(p.get("filter"), p.get("order_by")),
        max_results=filters.max_results(p.get("max_results")),
        offset=filters.decode_token(p.get("page_token")),
    )
    return _json(paged(page, "model_versions", model_version_json))


@router.get("/model-versions/get-download-uri")
async def get_model_version_download_uri(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    uri = await run_db(services.db, services.registry.download_uri, principal, p.get("name"), p.get("version"))
    return _json({"artifact_uri": uri})


@router.post("/model-versions/transition-stage")
async def transition_model_version_stage(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    v = await run_db(
        services.db,
        services.registry.transition_stage,
        principal,
        p.get("name"),
        p.get("version"),
        p.get("stage"),
        archive_existing_versions=p.get("archive_existing_versions", False),
    )
    return _json({"model_version": model_version_json(v)})


@router.post("/model-versions/set-tag")
async def set_model_version_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(
        services.db,
        services.registry.set_version_tag,
        principal,
        p.get("name"),
        p.get("version"),
        p.get("key"),
        p.get("value"),
    )
    return _json({})


@router.delete("/model-versions/delete-tag")
async def delete_model_version_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(
        services.db, services.registry.delete_version_tag, principal, p.get("name"), p.get("version"), p.get("key")
    )
    return _json({})
