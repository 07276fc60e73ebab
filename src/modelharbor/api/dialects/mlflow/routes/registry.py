"""MLflow model-registry REST API (``/api/2.0/mlflow/registered-models/*`` and ``/model-versions/*``).

Exactly what the ``mlflow`` 3.x client calls (``mlflow/store/model_registry/rest_store.py``). GETs carry their
parameters in the query string (repeated keys for lists); other methods carry a JSON body. Each route reads its
parameters into the core's typed arguments (inputs.py; in the order the registry checks them, so a request with
several faults answers the one it always has), makes one :mod:`modelharbor.core.registry` call and maps the answer
(mapping.py).

These are the hot routes (bench/registry.py): each endpoint takes exactly ``(request, principal, services)`` and
answers a ``JSONResponse``, so api/hot.py answers them by one ``(method, path)`` lookup ahead of FastAPI's layers,
and its SQLite calls run on the event loop when they need not wait (``run_db``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelharbor.api.dbcalls import run_db
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.mlflow import PrincipalDep, filters, schemas
from modelharbor.api.dialects.mlflow.inputs import (
    alias_in,
    flag,
    model_name_in,
    name_in,
    new_alias_in,
    required_text_in,
    stages_in,
    tag_key_in,
    tag_pair_in,
    tags_in,
    target_stage_in,
    text_in,
    version_in,
)
from modelharbor.api.dialects.mlflow.mapping import MALFORMED_REQUEST, model_version_json, paged, registered_model_json
from modelharbor.api.params import json_object

router = APIRouter()

LIST_PARAMS = {"order_by", "stages"}


async def _params(request: Request) -> dict[str, Any]:
    """The JSON body (MLflow clients send JSON even on some GETs), with query-string parameters on top (lists for
    repeatable keys)."""
    params = await json_object(request, required=False, code=MALFORMED_REQUEST)
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if key in LIST_PARAMS else values[-1]
    return params


def _json(content: dict[str, Any]) -> JSONResponse:
    """The answer rendered straight to JSON. It holds only dicts, lists, strings and numbers, so FastAPI's
    ``jsonable_encoder`` pass over it (milliseconds for a page of models) is skipped."""
    return JSONResponse(content)


# --- registered models ------------------------------------------------------------------------------
@router.post("/registered-models/create", response_model=schemas.RegisteredModelAnswer)
async def create_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    tags = tags_in(p.get("tags"))
    name, description = name_in(p.get("name")), text_in(p.get("description"), "description")
    m = await run_db(services.db, services.registry.create_model, principal, name, description=description, tags=tags)
    return _json({"registered_model": registered_model_json(m)})


@router.get("/registered-models/get", response_model=schemas.RegisteredModelAnswer)
async def get_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    m = await run_db(services.db, services.registry.get_model, principal, model_name_in(p.get("name")))
    return _json({"registered_model": registered_model_json(m)})


@router.post("/registered-models/rename", response_model=schemas.RegisteredModelAnswer)
async def rename_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    new_name = name_in(p.get("new_name"), "new_name")
    m = await run_db(services.db, services.registry.rename_model, principal, model_name_in(p.get("name")), new_name)
    return _json({"registered_model": registered_model_json(m)})


@router.patch("/registered-models/update", response_model=schemas.RegisteredModelAnswer)
async def update_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    description = text_in(p.get("description"), "description")
    name = model_name_in(p.get("name"))
    m = await run_db(services.db, services.registry.update_model, principal, name, description=description)
    return _json({"registered_model": registered_model_json(m)})


@router.delete("/registered-models/delete", response_model=schemas.Empty)
async def delete_registered_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    await run_db(services.db, services.registry.delete_model, principal, model_name_in(p.get("name")))
    return _json({})


@router.get("/registered-models/search", response_model=schemas.RegisteredModels)
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


@router.api_route(
    "/registered-models/get-latest-versions", methods=["GET", "POST"], response_model=schemas.ModelVersions
)
async def get_latest_versions(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    stages = stages_in(p.get("stages"))
    name = model_name_in(p.get("name"))
    versions = await run_db(services.db, services.registry.latest_versions, principal, name, stages)
    return _json({"model_versions": [model_version_json(v) for v in versions]})


@router.post("/registered-models/set-tag", response_model=schemas.Empty)
async def set_registered_model_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    key, value = tag_pair_in(p.get("key"), p.get("value"))
    await run_db(services.db, services.registry.set_model_tag, principal, model_name_in(p.get("name")), key, value)
    return _json({})


@router.delete("/registered-models/delete-tag", response_model=schemas.Empty)
async def delete_registered_model_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    key = tag_key_in(p.get("key"))
    await run_db(services.db, services.registry.delete_model_tag, principal, model_name_in(p.get("name")), key)
    return _json({})


@router.post("/registered-models/alias", response_model=schemas.Empty)
async def set_registered_model_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    alias, version = new_alias_in(p.get("alias")), version_in(p.get("version"))
    name = model_name_in(p.get("name"))
    await run_db(services.db, services.registry.set_alias, principal, name, alias, version)
    return _json({})


@router.delete("/registered-models/alias", response_model=schemas.Empty)
async def delete_registered_model_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    alias = alias_in(p.get("alias"))
    await run_db(services.db, services.registry.delete_alias, principal, model_name_in(p.get("name")), alias)
    return _json({})


@router.get("/registered-models/alias", response_model=schemas.ModelVersionAnswer)
async def get_model_version_by_alias(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    alias = alias_in(p.get("alias"))
    name = model_name_in(p.get("name"))
    v = await run_db(services.db, services.registry.get_version_by_alias, principal, name, alias)
    return _json({"model_version": model_version_json(v)})


# --- model versions ---------------------------------------------------------------------------------
@router.post("/model-versions/create", response_model=schemas.ModelVersionAnswer)
async def create_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    tags = tags_in(p.get("tags"))
    source = required_text_in(p.get("source"), "source")
    run_id = text_in(p.get("run_id"), "run_id", max_len=64)
    run_link = text_in(p.get("run_link"), "run_link")
    model_id = text_in(p.get("model_id"), "model_id", max_len=64)
    description = text_in(p.get("description"), "description")
    v = await run_db(
        services.db,
        services.registry.create_version,
        principal,
        model_name_in(p.get("name")),
        source,
        run_id=run_id,
        tags=tags,
        run_link=run_link,
        description=description,
        model_id=model_id,
    )
    return _json({"model_version": model_version_json(v)})


@router.get("/model-versions/get", response_model=schemas.ModelVersionAnswer)
async def get_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version = version_in(p.get("version"))
    v = await run_db(services.db, services.registry.get_version, principal, model_name_in(p.get("name")), version)
    return _json({"model_version": model_version_json(v)})


@router.patch("/model-versions/update", response_model=schemas.ModelVersionAnswer)
async def update_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version, description = version_in(p.get("version")), text_in(p.get("description"), "description")
    name = model_name_in(p.get("name"))
    v = await run_db(services.db, services.registry.update_version, principal, name, version, description=description)
    return _json({"model_version": model_version_json(v)})


@router.delete("/model-versions/delete", response_model=schemas.Empty)
async def delete_model_version(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version = version_in(p.get("version"))
    await run_db(services.db, services.registry.delete_version, principal, model_name_in(p.get("name")), version)
    return _json({})


@router.get("/model-versions/search", response_model=schemas.ModelVersions)
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


@router.get("/model-versions/get-download-uri", response_model=schemas.DownloadUri)
async def get_model_version_download_uri(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version = version_in(p.get("version"))
    uri = await run_db(services.db, services.registry.download_uri, principal, model_name_in(p.get("name")), version)
    return _json({"artifact_uri": uri})


@router.post("/model-versions/transition-stage", response_model=schemas.ModelVersionAnswer)
async def transition_model_version_stage(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    archive = flag(p.get("archive_existing_versions"), "archive_existing_versions")
    version, stage = version_in(p.get("version")), target_stage_in(p.get("stage"), archive)
    name = model_name_in(p.get("name"))
    v = await run_db(
        services.db,
        services.registry.transition_stage,
        principal,
        name,
        version,
        stage,
        archive_existing_versions=archive,
    )
    return _json({"model_version": model_version_json(v)})


@router.post("/model-versions/set-tag", response_model=schemas.Empty)
async def set_model_version_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version = version_in(p.get("version"))
    key, value = tag_pair_in(p.get("key"), p.get("value"))
    name = model_name_in(p.get("name"))
    await run_db(services.db, services.registry.set_version_tag, principal, name, version, key, value)
    return _json({})


@router.delete("/model-versions/delete-tag", response_model=schemas.Empty)
async def delete_model_version_tag(request: Request, principal: PrincipalDep, services: ServicesDep):
    p = await _params(request)
    version, key = version_in(p.get("version")), tag_key_in(p.get("key"))
    name = model_name_in(p.get("name"))
    await run_db(services.db, services.registry.delete_version_tag, principal, name, version, key)
    return _json({})
