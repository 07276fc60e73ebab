"""Domino's registered-model API (mounted at ``/api/registeredmodels``): models, versions, stages, reviews.

Each route checks its input's shape, makes one core call (registry, projects, reviews, run registration) and
renders the answer; every rule lives in the core.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import public_base
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping
from modelharbor.api.dialects.domino.mapping import failure, metadata
from modelharbor.api.inputs import stage_list
from modelharbor.api.paging import decode_token, encode_token
from modelharbor.api.params import field, flag, int_param, json_object
from modelharbor.core.projects import DEFAULT_STAGES
from modelharbor.core.registry import validate_version
from modelharbor.domain.errors import HarborError, InvalidInput

router = APIRouter()
ORDER_KEYS = {
    "name": "name",
    "createdat": "created",
    "created": "created",
    "updatedat": "updated",
    "updated": "updated",
    "lastmodified": "updated",
}


def _order(value: str | None) -> tuple[str, bool]:
    """``orderBy``: ``name``, ``createdAt`` or ``updatedAt``; ``-x``, ``x desc`` or ``x:desc`` for descending."""
    if not value:
        return ("updated", True)
    text = value.strip()
    desc = text.startswith("-")
    text = text.lstrip("-+")
    for sep in (":", " "):
        if sep in text:
            text, _, direction = text.partition(sep)
            if direction.strip().lower() not in ("asc", "desc"):
                raise InvalidInput(f"orderBy direction must be asc or desc, not {direction!r}")
            desc = direction.strip().lower() == "desc"
    key = ORDER_KEYS.get(text.strip().lower())
    if key is None:
        raise InvalidInput(
            f"orderBy must be one of name, createdAt, updatedAt (optionally '-' or ':desc'), not {value!r}"
        )
    return key, desc


def _tags(value: Any, what: str = "tags") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(f"'{what}' must be an object of string values")
    return value


def _user_ids(value: list | None, what: str) -> list[str] | None:
    """A list of user ids (``field`` checked it is a list): each a string, and not empty (the core's rule too: so
    the reviewers to add are checked before the ones to remove, as always)."""
    if value is not None and not all(isinstance(u, str) and u for u in value):
        raise InvalidInput(f"'{what}' must be a list of user ids.")
    return value


def _version_number(version: str) -> int:
    if not version.isdecimal():  # what int() reads: "³" is a digit but no number
        raise InvalidInput(f"version must be a positive integer, not {version!r}")
    return validate_version(int(version))


def _listing(request: Request, principal, services, *, ui: bool):
    q = request.query_params
    page = services.registry.model_cards(
        principal,
        project_id=q.get("projectId") or None,
        name_contains=q.get("searchPattern") or None,
        discoverable=True
        if ui and flag(q.get("globallyDiscoverable"), "globallyDiscoverable", None, loose=False)
        else None,
        order=_order(q.get("orderBy")),
        max_results=int_param(q.get("maxResults"), "maxResults", 25, low=1, high=1000),
        offset=decode_token(q.get("pageToken") or None),
        metrics=ui,
    )
    items = [(mapping.model_for_ui if ui else mapping.model)(card) for card in page.items]
    return {"items": items, "metadata": metadata(request, nextPageToken=encode_token(page.next_offset))}


# --- models -------------------------------------------------------------------------------------
@router.get("/v1")
def list_models(request: Request, principal: PrincipalDep, services: ServicesDep):
    return _listing(request, principal, services, ui=False)


@router.get("/v1/ui")
def list_models_for_ui(request: Request, principal: PrincipalDep, services: ServicesDep):
    return _listing(request, principal, services, ui=True)


@router.get("/v1/names")
def list_names(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    limit = int_param(q.get("limit"), "limit", 10, low=1, high=1000)
    category = q.get("modelCategory")
    if category not in (None, "", "ml", "genai"):
        raise InvalidInput(f"modelCategory must be genai or ml, not {category!r}")
    if category == "genai":  # every model ModelHarbor holds is a classic ML model
        return {"items": [], "metadata": metadata(request, offset=offset, limit=limit, totalCount=0)}
    page = services.registry.list_models(
        principal,
        project_id=q.get("projectId") or None,
        name_contains=q.get("search") or None,
        order=("name", False),
        max_results=limit,
        offset=offset,
    )
    return {"items": [m.name for m in page.items], "metadata": metadata(request, offset=offset, limit=limit)}


@router.post("/v1")
async def create_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body is required")
    model, _ = await run_in_threadpool(
        partial(
            services.run_registration.register,
            principal,
            field(body, "modelName", str, required=True),
            field(body, "experimentRunId", str, required=True),
            create=True,
            description=field(body, "description", str),
            discoverable=field(body, "discoverable", bool, required=True),
            tags=_tags(body.get("tags")),
            project_id=field(body, "projectId", str),
            artifact=field(body, "artifact", str),
        )
    )
    return mapping.model(model)


@router.post("/v1/access/{project_id}", status_code=204)
async def request_access(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """Ask the project's owners for a collaborator role (204; core/access_requests.py). Domino sends no body; an
    optional ``{role?, message?}`` (ModelHarbor extension) names the role (Contributor by default)."""
    body = await json_object(request, required=False)
    await run_in_threadpool(
        partial(
            services.access_requests.request,
            principal,
            project_id,
            role=field(body, "role", str),
            message=field(body, "message", str),
        )
    )
    return Response(status_code=204)


@router.get("/v1/stages")
def default_stages(principal: PrincipalDep):
    return {"stages": list(DEFAULT_STAGES)}


@router.get("/v1/stages/projects/{project_id}")
def project_stages(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    defaults = flag(request.query_params.get("includeDefaults"), "includeDefaults", True, loose=False)
    own, effective = services.projects.get_stages(principal, project_id)
    return mapping.stages(project_id, own, effective, defaults=defaults)


@router.put("/v1/stages/projects/{project_id}")
async def set_project_stages(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body is required")
    stages = stage_list(field(body, "stages", list, required=True))
    project = await run_in_threadpool(services.projects.set_stages, principal, project_id, stages)
    return mapping.stages(project.id, project.stages, project.effective_stages)


@router.get("/v1/{model_name}")
def get_model(model_name: str, principal: PrincipalDep, services: ServicesDep):
    return mapping.model(services.registry.model_card(principal, model_name))


@router.patch("/v1/{model_name}")
async def update_model(request: Request, model_name: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body is required")
    changes: dict[str, Any] = {}
    if "description" in body:
        changes["description"] = field(body, "description", str) or ""
    if body.get("discoverable") is not None:
        changes["discoverable"] = field(body, "discoverable", bool)
    if not changes:
        raise InvalidInput("give description and/or discoverable to change")
    card = await run_in_threadpool(partial(services.registry.update_model_card, principal, model_name, **changes))
    return mapping.model(card)


def _no_model_apis(request: Request, services, principal, model_name: str, version: str | None = None):
    """Model APIs deployed from the model (or one version): ModelHarbor serves none yet, so the list is empty
    once the model (and version) is known to exist."""
    if version is None:
        services.registry.get_model(principal, model_name)
    else:
        services.registry.get_version(principal, model_name, _version_number(version))
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    limit = int_param(q.get("limit"), "limit", 10, low=1, high=1000)
    return {"items": [], "metadata": metadata(request, offset=offset, limit=limit, totalCount=0)}


@router.get("/v1/{model_name}/modelapis")
def model_apis(request: Request, model_name: str, principal: PrincipalDep, services: ServicesDep):
    return _no_model_apis(request, services, principal, model_name)


# --- versions -----------------------------------------------------------------------------------
def _versions(request: Request, model_name: str, principal, services, *, details: bool):
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    limit = int_param(q.get("limit"), "limit", 20, low=1, high=1000)
    cards, total = services.registry.version_cards(principal, model_name, offset=offset, limit=limit, runs=details)
    base = public_base(request)
    return {
        "items": [mapping.version_details(c, base) if details else mapping.version_overview(c) for c in cards],
        "metadata": metadata(request, offset=offset, limit=limit, totalCount=total),
    }


@router.get("/v1/{model_name}/versions")
def list_versions(request: Request, model_name: str, principal: PrincipalDep, services: ServicesDep):
    return _versions(request, model_name, principal, services, details=False)


@router.post("/v1/{model_name}/versions")
async def create_version(request: Request, model_name: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body is required")
    field(body, "description", str, required=True)
    _, version = await run_in_threadpool(
        partial(
            services.run_registration.register,
            principal,
            model_name,
            field(body, "experimentRunId", str, required=True),
            create=False,
            artifact=field(body, "artifact", str, required=True),
            description=body["description"],
        )
    )
    return mapping.version_details(version, public_base(request))


@router.get("/v1/{model_name}/versions/{version}")
def get_version(request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    try:
        number = _version_number(version)
    except HarborError:
        services.registry.get_model(principal, model_name)  # Domino looks the model up first: its 404 comes first
        raise
    return mapping.version_details(services.registry.version_card(principal, model_name, number), public_base(request))


@router.patch("/v1/{model_name}/versions/{version}")
async def update_version(
    request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    number = _version_number(version)
    body = await json_object(request, missing="a JSON object body is required")
    changes: dict[str, Any] = {}
    if body.get("modelVersionDescription") is not None:
        changes["description"] = field(body, "modelVersionDescription", str)
    if body.get("stage") is not None:
        changes["stage"] = field(body, "stage", str)
    if body.get("tags") is not None:
        changes["tags"] = _tags(body["tags"])
    card = await run_in_threadpool(
        partial(services.registry.update_version_card, principal, model_name, number, **changes)
    )
    return mapping.version_details(card, public_base(request))


@router.get("/v1/{model_name}/versions/{version}/modelapis")
def version_model_apis(request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    return _no_model_apis(request, services, principal, model_name, version)


@router.post("/v1/{model_name}/versions/{version}/stages/validate")
async def validate_stage(
    request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    number = _version_number(version)
    body = await json_object(request, missing="a JSON object body is required")
    target = field(body, "targetStage", str, required=True)
    reasons = await run_in_threadpool(services.reviews.validate_transition, principal, model_name, number, target)
    return {"isValid": not reasons, "reasons": reasons}


# --- reviews ------------------------------------------------------------------------------------
@router.get("/v1/{model_name}/versions/{version}/reviews/stages")
def review_stages(model_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    return {"stages": services.reviews.stages_for_review(principal, model_name, _version_number(version))}


@router.get("/v1/{model_name}/versions/{version}/reviews")
def list_reviews(request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    reviews = services.reviews.list_reviews(principal, model_name, _version_number(version))
    return {"items": [mapping.review(r) for r in reviews], "metadata": metadata(request)}


@router.post("/v1/{model_name}/versions/{version}/reviews")
async def create_review(
    request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    number = _version_number(version)
    body = await json_object(request, missing="a JSON object body is required")
    reviewers = field(body, "reviewerIds", list, required=True)
    target, notes = field(body, "targetStage", str, required=True), field(body, "notes", str)
    review = await run_in_threadpool(
        partial(
            services.reviews.create_review,
            principal,
            model_name,
            number,
            reviewer_ids=_user_ids(reviewers, "reviewerIds"),
            target_stage=target,
            notes=notes,
        )
    )
    return JSONResponse(mapping.review(review), status_code=201)


@router.get("/v1/{model_name}/versions/{version}/reviews/{review_id}")
def get_review(model_name: str, version: str, review_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping.review(services.reviews.get_review(principal, model_name, _version_number(version), review_id))


@router.patch("/v1/{model_name}/versions/{version}/reviews/{review_id}")
async def update_review(
    request: Request, model_name: str, version: str, review_id: str, principal: PrincipalDep, services: ServicesDep
):
    number = _version_number(version)
    body = await json_object(request, missing="a JSON object body is required")
    add, remove = field(body, "reviewerIdsToAdd", list), field(body, "reviewerIdsToRemove", list)
    status, notes = field(body, "status", str), field(body, "notes", str)
    await run_in_threadpool(
        partial(
            services.reviews.update_review,
            principal,
            model_name,
            number,
            review_id,
            add=_user_ids(add, "reviewerIdsToAdd"),
            remove=_user_ids(remove, "reviewerIdsToRemove"),
            status=status,
            notes=notes,
        )
    )
    return Response(status_code=204)


@router.post("/v1/{model_name}/versions/{version}/reviews/{review_id}/responses")
async def respond(
    request: Request, model_name: str, version: str, review_id: str, principal: PrincipalDep, services: ServicesDep
):
    number = _version_number(version)
    body = await json_object(request, missing="a JSON object body is required")
    review = await run_in_threadpool(
        partial(
            services.reviews.respond,
            principal,
            model_name,
            number,
            review_id,
            decision=field(body, "decision", str, required=True),
            notes=field(body, "notes", str),
        )
    )
    return JSONResponse(mapping.review(review), status_code=201)


# --- v2 -----------------------------------------------------------------------------------------
@router.get("/v2")
def list_models_v2(request: Request, principal: PrincipalDep, services: ServicesDep):
    return _listing(request, principal, services, ui=False)


@router.post("/v2")
async def register_v2(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``NewRegisteredModelV2``: ``create`` true = a new model, false = the next version of an existing one."""
    body = await json_object(request, missing="a JSON object body is required")
    create = field(body, "create", bool, required=True)
    source = field(body, "modelSource", dict, required=True)
    kind = source.get("sourceType")
    if kind == "huggingface":
        return failure(
            request,
            501,
            "Hugging Face model sources are not supported: ModelHarbor does not download from the hub. "
            "Log the model with MLflow and register the run (sourceType mlflow).",
        )
    if kind != "mlflow":
        raise InvalidInput("modelSource.sourceType must be mlflow or huggingface")
    mlflow_source = field(source, "mlflowSource", dict, required=True)
    model, version = await run_in_threadpool(
        partial(
            services.run_registration.register,
            principal,
            field(body, "modelName", str, required=True),
            field(mlflow_source, "experimentRunId", str, required=True),
            create=create,
            artifact=field(mlflow_source, "artifactPath", str),
            logged_model_id=field(mlflow_source, "loggedModelId", str),
            description=field(body, "description", str),
            discoverable=field(body, "discoverable", bool),
            project_id=field(body, "projectId", str),
        )
    )
    return {
        "registeredModel": mapping.model(model),
        "modelVersion": mapping.version_details(version, public_base(request)),
    }


@router.get("/v2/{model_name}/versions")
def list_versions_v2(request: Request, model_name: str, principal: PrincipalDep, services: ServicesDep):
    return _versions(request, model_name, principal, services, details=True)


@router.get("/v2/{model_name}/versions/{version}")
def get_version_v2(request: Request, model_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    return get_version(request, model_name, version, principal, services)
