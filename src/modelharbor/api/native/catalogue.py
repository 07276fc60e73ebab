"""Native routes for the pretrained-model catalogue: models (filter, create, change, soft/hard delete,
reinstate), their data (streamed in, taken from an uploaded file, ranged download) and reference data.

Request bodies are read as UFDL's are (api/catalogue_inputs.py), so every validation problem of a body, with those
the core finds in the database, comes back as one ``400 INVALID_FIELDS`` with per-field messages in
``details.fields``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from modelharbor.api.catalogue_inputs import framework_in, licence_in, model_in
from modelharbor.api.common import body_stream, file_response, services_of
from modelharbor.api.filterspec import parse_filter_spec
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.files import _principal
from modelharbor.api.native.mapping import catalogue_model_out, domain_out, framework_out, licence_out
from modelharbor.api.native.openapi import READS
from modelharbor.core.catalogue import REQUIRED, FieldErrors
from modelharbor.domain.errors import NotFound
from modelharbor.domain.query import Comparison
from modelharbor.domain.query import Query as SearchQuery

router = APIRouter(prefix="/catalogue", tags=["catalogue"], route_class=JsonRoute)

ModelOut = schemas.CatalogueModelOut
BINARY_BODY = {
    "requestBody": {
        "required": False,  # no body: empty data, as for /files
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _json_body(model: type[BaseModel], *, partial: bool = False) -> dict[str, Any]:
    """OpenAPI description of a JSON body that the route takes raw (the core validates it)."""
    schema = model.model_json_schema()
    if partial:
        schema.pop("required", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _spec(
    include_inactive: bool,
    name_contains: str | None,
    framework: str | None,
    domain: str | None,
    licence: str | None,
) -> SearchQuery:
    """The simple query filters as a domain query."""
    where: list[Comparison] = []
    if name_contains:
        where.append(Comparison("name", "CONTAINS", name_contains, case_insensitive=True))
    if framework:
        if framework.isdecimal():
            where.append(Comparison("framework", "=", int(framework)))
        else:
            where.append(Comparison("framework.name", "=", framework))
    if domain:
        where.append(Comparison("domain.name", "=", domain))
    if licence:
        where.append(Comparison("licence.name", "=", licence))
    return SearchQuery(tuple(where), include_inactive=include_inactive)


# --- models --------------------------------------------------------------------------------------
@router.get("/models", response_model=list[ModelOut])
def list_models(
    services: ServicesDep,
    principal: PrincipalDep,
    include_inactive: bool = Query(False, description="Also list soft-deleted models."),
    name_contains: str | None = Query(None, max_length=200, description="Name contains this (any case)."),
    framework: str | None = Query(None, max_length=64, description="A framework pk, or a framework name."),
    domain: str | None = Query(None, max_length=64, description="A domain code, e.g. 'ic'."),
    licence: str | None = Query(None, max_length=100, description="A licence name, e.g. 'MIT'."),
):
    """The organisation's models, oldest first (soft-deleted ones only with ``include_inactive=true``)."""
    spec = _spec(include_inactive, name_contains, framework, domain, licence)
    return [catalogue_model_out(m) for m in services.catalogue.list_models(principal, spec)]


@router.post("/models/search", response_model=list[ModelOut], openapi_extra=READS)
def search_models(services: ServicesDep, principal: PrincipalDep, spec: Any = Body(None)):
    """Models matching a full filter spec: ``{"expressions": [...], "order_by": [...], "include_inactive": bool}``
    (expression types ``exact``, ``contains``, ``isnull``, ``compare``, ``and``, ``or``; bad specs → 400
    ``INVALID_FILTER`` naming the problem)."""
    return [catalogue_model_out(m) for m in services.catalogue.list_models(principal, parse_filter_spec(spec))]


@router.post(
    "/models",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelOut,
    openapi_extra=_json_body(schemas.CatalogueModelIn),
)
def create_model(services: ServicesDep, principal: PrincipalDep, body: Any = Body(...)):
    """Create a model (admins): ``{name, url, framework (pk), domain (code), licence (name), description?,
    metadata?}``."""
    return catalogue_model_out(services.catalogue.create_model(principal, model_in(body, partial=False)))


@router.get("/models/{pk:int}", response_model=ModelOut)
def get_model(pk: int, services: ServicesDep, principal: PrincipalDep):
    return catalogue_model_out(services.catalogue.get_model(principal, pk))


@router.patch(
    "/models/{pk:int}", response_model=ModelOut, openapi_extra=_json_body(schemas.CatalogueModelIn, partial=True)
)
def patch_model(pk: int, services: ServicesDep, principal: PrincipalDep, body: Any = Body(...)):
    """Change some fields of a model (admins)."""
    return catalogue_model_out(
        services.catalogue.update_model(principal, pk, model_in(body, partial=True), partial=True)
    )


@router.put("/models/{pk:int}", response_model=ModelOut, openapi_extra=_json_body(schemas.CatalogueModelIn))
def replace_model(pk: int, services: ServicesDep, principal: PrincipalDep, body: Any = Body(...)):
    """Replace a model's fields (admins; every required field must be sent)."""
    return catalogue_model_out(
        services.catalogue.update_model(principal, pk, model_in(body, partial=False), partial=False)
    )


@router.delete("/models/{pk:int}", response_model=ModelOut)
async def delete_model(request: Request, pk: int, hard: bool = Query(False, description="Delete for good.")):
    """Soft-delete a model (it can be reinstated), or with ``hard=true`` delete it and its data for good.
    Returns the model (as it was, for a hard delete)."""
    catalogue = services_of(request).catalogue
    principal = await _principal(request)
    if hard:
        model = await catalogue.hard_delete(principal, pk)
    else:
        model = await run_in_threadpool(catalogue.soft_delete, principal, pk)
    return catalogue_model_out(model)


@router.post("/models/{pk:int}/reinstate", response_model=ModelOut)
def reinstate_model(pk: int, services: ServicesDep, principal: PrincipalDep):
    """Undo a soft delete."""
    return catalogue_model_out(services.catalogue.reinstate(principal, pk))


# --- model data ----------------------------------------------------------------------------------
@router.put("/models/{pk:int}/data", response_model=ModelOut, openapi_extra=BINARY_BODY)
async def put_model_data(
    request: Request,
    pk: int,
    filename: str | None = Query(None, min_length=1, max_length=1024, description="Name of the data file."),
):
    """Set the model's data from the raw request body (streamed). The previous data stays until the new
    bytes are stored."""
    services = services_of(request)
    principal = await _principal(request)
    kw = {"filename": filename} if filename else {}
    return catalogue_model_out(await services.catalogue.set_data(principal, pk, body_stream(request), **kw))


@router.post(
    "/models/{pk:int}/data/from-file", response_model=ModelOut, openapi_extra=_json_body(schemas.ModelDataFromFileIn)
)
async def model_data_from_file(request: Request, pk: int, body: Any = Body(...)):
    """Use an already-uploaded file (``{"file_id": ...}``) as the model's data, without sending the bytes
    again."""
    services = services_of(request)
    principal = await _principal(request)
    if not isinstance(body, dict):
        raise FieldErrors({"non_field_errors": ["Invalid data. Expected a dictionary."]})
    file_id = body.get("file_id")
    if "file_id" not in body:
        raise FieldErrors({"file_id": [REQUIRED]})
    if not isinstance(file_id, str) or not file_id.strip():
        raise FieldErrors({"file_id": ["Expected the id of an uploaded file."]})
    return catalogue_model_out(await services.catalogue.set_data_from_file(principal, pk, file_id))


@router.delete("/models/{pk:int}/data", response_model=ModelOut)
async def delete_model_data(request: Request, pk: int):
    """Remove the model's data."""
    services = services_of(request)
    return catalogue_model_out(await services.catalogue.delete_data(await _principal(request), pk))


@router.get(
    "/models/{pk:int}/data",
    response_class=Response,
    operation_id="get_catalogue_model_data",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "A range"}},
)
@router.head(
    "/models/{pk:int}/data",
    response_class=Response,
    operation_id="head_catalogue_model_data",
    responses={206: {"description": "A range"}},
)
async def model_data(request: Request, pk: int):
    """The model's data. Honours ``Range`` (206); ``ETag`` and ``X-Content-SHA256`` carry the hash.
    404 ``NO_DATA`` when the model has none."""
    services = services_of(request)
    model, record, rng, stream = await services.catalogue.open_data(
        await _principal(request), pk, request.headers.get("range")
    )
    if record is None or stream is None:
        raise NotFound(f"pretrained model {model.pk} has no data", code="NO_DATA")
    return file_response(record, rng, stream, head=request.method == "HEAD")


# --- reference data ------------------------------------------------------------------------------
@router.get("/frameworks", response_model=list[schemas.FrameworkOut])
def list_frameworks(services: ServicesDep, principal: PrincipalDep):
    """Frameworks (shared by every organisation)."""
    return [framework_out(f) for f in services.catalogue.list_frameworks(principal)]


@router.post(
    "/frameworks",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.FrameworkOut,
    openapi_extra=_json_body(schemas.FrameworkIn),
)
def create_framework(services: ServicesDep, principal: PrincipalDep, body: Any = Body(...)):
    """Add a framework ``{name, version}`` (admins; 409 ``DUPLICATE`` if it exists)."""
    return framework_out(services.catalogue.save_framework(principal, framework_in(body)))


@router.get("/licences", response_model=list[schemas.LicenceOut])
def list_licences(services: ServicesDep, principal: PrincipalDep):
    """Licences (shared by every organisation), with their permissions, conditions and limitations."""
    return [licence_out(lic) for lic in services.catalogue.list_licences(principal)]


@router.post(
    "/licences",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.LicenceOut,
    openapi_extra=_json_body(schemas.LicenceIn),
)
def create_licence(services: ServicesDep, principal: PrincipalDep, body: Any = Body(...)):
    """Add a licence ``{name, url}`` (admins; 409 ``DUPLICATE`` if the name exists)."""
    return licence_out(services.catalogue.save_licence(principal, licence_in(body)))


@router.get("/domains", response_model=list[schemas.DomainOut])
def list_domains(services: ServicesDep, principal: PrincipalDep):
    """The (seeded, read-only) domains."""
    return [domain_out(d) for d in services.catalogue.list_domains(principal)]
