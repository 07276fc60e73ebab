"""Native routes for the model registry (``/models``): registered models, their versions, aliases and stages,
and the files of a version (each one downloadable through the files API, so ranges and signed links work).

The registry is the one the MLflow dialect fills; names may hold any character MLflow allows except '/', and
arrive URL-encoded in the path. Another organisation's models read as missing (404).
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from modelharbor.api.common import services_of
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.files import _principal
from modelharbor.api.native.openapi import errors
from modelharbor.api.paging import decode_token, encode_token
from modelharbor.core.registry import MAX_MODELS_PAGE, MAX_VERSIONS_PAGE
from modelharbor.domain.entities import ModelVersion, RegisteredModel, VersionFile
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import VersionFileIn
from modelharbor.domain.query import Comparison, Order
from modelharbor.domain.query import Query as SearchQuery

router = APIRouter(prefix="/models", tags=["models"], route_class=JsonRoute)


# --- entity → wire -------------------------------------------------------------------------------
def version_out(v: ModelVersion) -> schemas.ModelVersionOut:
    return schemas.ModelVersionOut(
        name=v.name,
        version=v.version,
        description=v.description,
        source=v.source,
        run_id=v.run_id,
        run_link=v.run_link,
        model_id=v.model_id,
        current_stage=v.current_stage,
        status=v.status,
        tags=dict(v.tags),
        aliases=list(v.aliases),
        creator_id=v.creator_id,
        creation_time=v.creation_time,
        last_updated_time=v.last_updated_time,
    )


def model_out(m: RegisteredModel) -> schemas.RegisteredModelOut:
    return schemas.RegisteredModelOut(
        name=m.name,
        description=m.description,
        tags=dict(m.tags),
        aliases=dict(m.aliases),
        latest_versions=[version_out(v) for v in m.latest_versions],
        project_id=m.project_id,
        creator_id=m.creator_id,
        creation_time=m.creation_time,
        last_updated_time=m.last_updated_time,
    )


def file_out(f: VersionFile) -> schemas.VersionFileOut:
    return schemas.VersionFileOut(path=f.path, size=f.size, sha256=f.sha256, file_id=f.file_id)


# --- filters -------------------------------------------------------------------------------------
def _pattern(text: str) -> str:
    """``text`` for LIKE: a backslash (an escape character on PostgreSQL only) becomes the one-character wildcard;
    ``%`` and ``_`` stay wildcards. The caller keeps the exact matches."""
    if "\x00" in text:
        raise InvalidInput("Parameter 'filter' must not contain NUL characters.")
    return text.replace("\\", "_")


def _model_filter(name_contains: str | None, name_prefix: str | None, tags: list[str]) -> SearchQuery:
    where = []
    if name_contains:
        where.append(Comparison("name", "ILIKE", "%" + _pattern(name_contains) + "%"))
    if name_prefix:
        where.append(Comparison("name", "LIKE", _pattern(name_prefix) + "%"))
    for item in tags:
        key, eq, value = item.partition("=")
        if not key or "`" in key or "\x00" in item:
            raise InvalidInput(f"tag filter {item!r} must be KEY=VALUE (or KEY: the model has the tag)", field="tag")
        where.append(Comparison(key, "=", value, "tags") if eq else Comparison(key, "LIKE", "%", "tags"))
    return SearchQuery(tuple(where))


# --- registered models ---------------------------------------------------------------------------
@router.get("", response_model=schemas.RegisteredModelPage)
def list_models(
    services: ServicesDep,
    principal: PrincipalDep,
    name_contains: str | None = Query(None, max_length=256, description="Name contains this (any case)."),
    name_prefix: str | None = Query(None, max_length=256, description="Name starts with this (exact case)."),
    tag: list[str] = Query([], description="KEY=VALUE: has this tag with this value (repeatable); KEY: has it."),
    max_results: int = Query(100, ge=1, le=MAX_MODELS_PAGE, description="Models per page."),
    page_token: str | None = Query(None, max_length=200, description="next_page_token of the previous page."),
):
    """The organisation's registered models by name. A page may hold fewer than ``max_results`` models; follow
    ``next_page_token`` until it is null."""
    page = services.registry.search_models(
        principal,
        _model_filter(name_contains, name_prefix, tag),
        max_results=max_results,
        offset=decode_token(page_token),
    )
    items = list(page.items)
    # the filter language treats % and _ as wildcards: keep exact matches only
    if name_contains:
        items = [m for m in items if name_contains.lower() in m.name.lower()]
    if name_prefix:
        items = [m for m in items if m.name.startswith(name_prefix)]
    return schemas.RegisteredModelPage(
        models=[model_out(m) for m in items], next_page_token=encode_token(page.next_offset)
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.RegisteredModelOut)
def create_model(body: schemas.RegisteredModelIn, services: ServicesDep, principal: PrincipalDep):
    """Create a registered model ``{name, description?, tags?}``; 409 ``CONFLICT`` if the name is taken."""
    return model_out(services.registry.create_model(principal, body.name, description=body.description, tags=body.tags))


@router.get("/{name}", response_model=schemas.RegisteredModelOut)
def get_model(name: str, services: ServicesDep, principal: PrincipalDep):
    """One registered model with its tags, aliases and latest version per stage."""
    return model_out(services.registry.get_model(principal, name))


@router.patch("/{name}", response_model=schemas.RegisteredModelOut)
def update_model(name: str, body: schemas.RegisteredModelPatchIn, services: ServicesDep, principal: PrincipalDep):
    """Change a model's description."""
    return model_out(services.registry.update_model(principal, name, description=body.description))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(name: str, request: Request):
    """Delete a model and its versions (and the logged models that registering files created, with the files)."""
    await services_of(request).model_files.delete_model(await _principal(request), name)
    return Response(status_code=204)


# --- versions ------------------------------------------------------------------------------------
@router.get("/{name}/versions", response_model=schemas.ModelVersionPage)
def list_versions(
    name: str,
    services: ServicesDep,
    principal: PrincipalDep,
    max_results: int = Query(100, ge=1, le=MAX_VERSIONS_PAGE, description="Versions per page."),
    page_token: str | None = Query(None, max_length=200, description="next_page_token of the previous page."),
):
    """A model's versions, newest first."""
    model = services.registry.get_model(principal, name)  # 404 for an unknown model, not an empty list
    page = services.registry.search_versions(
        principal,
        SearchQuery((Comparison("name", "=", model.name),), (Order("version_number", ascending=False),)),
        max_results=max_results,
        offset=decode_token(page_token),
    )
    return schemas.ModelVersionPage(
        versions=[version_out(v) for v in page.items], next_page_token=encode_token(page.next_offset)
    )


@router.post("/{name}/versions", status_code=status.HTTP_201_CREATED, response_model=schemas.ModelVersionOut)
def register_version(name: str, body: schemas.ModelVersionIn, services: ServicesDep, principal: PrincipalDep):
    """Register a new version from uploaded files ``{files: [{path, file_id}], …}`` (they become the artifacts
    of a new MLflow logged model; no bytes are copied), or from a ``source`` this server holds. One transaction:
    on any error nothing is written."""
    files = None if body.files is None else [VersionFileIn(f.path, f.file_id) for f in body.files]
    version = services.model_files.register(
        principal,
        name,
        files=files,
        source=body.source,
        description=body.description,
        tags=body.tags,
        run_id=body.run_id,
        aliases=body.aliases,
        create_model=body.create_model,
        model_description=body.model_description,
    )
    return version_out(version)


@router.get("/{name}/versions/{version}", response_model=schemas.ModelVersionOut)
def get_version(name: str, version: int, services: ServicesDep, principal: PrincipalDep):
    return version_out(services.registry.get_version(principal, name, version))


@router.patch("/{name}/versions/{version}", response_model=schemas.ModelVersionOut)
def update_version(
    name: str, version: int, body: schemas.ModelVersionPatchIn, services: ServicesDep, principal: PrincipalDep
):
    """Change a version's description."""
    return version_out(services.registry.update_version(principal, name, version, description=body.description))


@router.delete("/{name}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_version(name: str, version: int, request: Request):
    """Delete a version (numbers are never reused). A logged model that registering files created goes with its
    last version, and its files with it."""
    await services_of(request).model_files.delete_version(await _principal(request), name, version)
    return Response(status_code=204)


@router.post("/{name}/versions/{version}/stage", response_model=schemas.ModelVersionOut)
def transition_stage(name: str, version: int, body: schemas.StageIn, services: ServicesDep, principal: PrincipalDep):
    """Move a version to a stage (None, Staging, Production, Archived, or the model's project's stages);
    ``archive_existing_versions`` archives the versions already in Staging/Production."""
    return version_out(
        services.registry.transition_stage(
            principal, name, version, body.stage, archive_existing_versions=body.archive_existing_versions
        )
    )


@router.get("/{name}/versions/{version}/files", response_model=list[schemas.VersionFileOut], responses=errors(409))
def version_files(name: str, version: int, services: ServicesDep, principal: PrincipalDep):
    """The version's files, by path: download each from ``/api/v1/files/{file_id}/content``. A source this
    server does not hold → 409 ``UNSUPPORTED_SOURCE``; one that no longer exists → 404 ``SOURCE_NOT_FOUND``."""
    return [file_out(f) for f in services.model_files.version_files(principal, name, version)]


# --- aliases -------------------------------------------------------------------------------------
@router.get("/{name}/aliases/{alias}", response_model=schemas.ModelVersionOut)
def get_alias(name: str, alias: str, services: ServicesDep, principal: PrincipalDep):
    """The version an alias points at."""
    return version_out(services.registry.get_version_by_alias(principal, name, alias))


@router.put("/{name}/aliases/{alias}", response_model=schemas.ModelVersionOut)
def set_alias(name: str, alias: str, body: schemas.AliasIn, services: ServicesDep, principal: PrincipalDep):
    """Point an alias at a version ``{version}`` (moving it if it pointed elsewhere) → that version."""
    services.registry.set_alias(principal, name, alias, body.version)
    return version_out(services.registry.get_version_by_alias(principal, name, alias))


@router.delete("/{name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(name: str, alias: str, services: ServicesDep, principal: PrincipalDep):
    services.registry.delete_alias(principal, name, alias)
    return Response(status_code=204)
