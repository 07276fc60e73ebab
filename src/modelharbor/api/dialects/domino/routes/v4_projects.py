"""Domino's v4 project routes (mounted at ``/v4``) the ``dominodatalab`` client calls — create (``project_create_v4``),
get (``tags_list``), archive (``project_archive``), tags (``tags_add``/``tags_remove``), the gateway listing
(``projects_list``) and ``findProjectByOwnerAndName`` (the client's ``project_id``) — plus the root routes
``POST /project`` (``project_create``, form-encoded, mounted at ``/project``) and ``GET /projectTags/{id}``
(``tag_details``, mounted at ``/projectTags``). Epoch milliseconds, v4 role spellings. Each route parses, makes one
core call and maps the answer (mapping_projects.py).
"""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import json_answer
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping_projects
from modelharbor.api.jsonbody import read_body
from modelharbor.api.openapi import URLENCODED
from modelharbor.api.params import field, flag, json_object
from modelharbor.domain.errors import InvalidInput

router = APIRouter()  # /v4
legacy_form = APIRouter()  # /project
tags_root = APIRouter()  # /projectTags
BODY = "a JSON object body is required"
MAX_FORM = 64 * 1024


def _collaborators(value: object) -> list[tuple[str, str]]:
    """``[{collaboratorId, projectRole}]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("'collaborators' must be a list of {collaboratorId, projectRole}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"'collaborators[{i}]' must be an object {{collaboratorId, projectRole}}")
        out.append((field(item, "collaboratorId", str, required=True), field(item, "projectRole", str, required=True)))
    return out


def _tag_names(body: dict) -> list[str]:
    names = field(body, "tagNames", list, required=True)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise InvalidInput(f"'tagNames[{i}]' must be a string")
    return names


@router.post("/projects")
async def create_project(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``{name, visibility, ownerId, description, collaborators: [{collaboratorId, projectRole}], tags: {tagNames},
    billingTag?}`` → the v4 project."""
    body = await json_object(request, missing=BODY)
    tags = field(body, "tags", dict)
    field(body, "billingTag", dict)  # accepted, not kept (billing tags: a gap)
    created = await run_in_threadpool(
        partial(
            services.projects.create_project,
            principal,
            field(body, "name", str, required=True),
            description=field(body, "description", str),
            owner_id=field(body, "ownerId", str),
            visibility=field(body, "visibility", str) or "Public",
            tags=_tag_names(tags) if tags is not None else (),
            collaborators=_collaborators(body.get("collaborators")),
        )
    )
    return mapping_projects.project_v4(created)


@router.get("/projects/{project_id}")
def get_project(project_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_projects.project_v4(services.projects.get_project(principal, project_id))


@router.delete("/projects/{project_id}")
def archive_project(project_id: str, principal: PrincipalDep, services: ServicesDep):
    """Archive (the client's ``project_archive``): the project stays, read-only, out of the listings."""
    return mapping_projects.project_v4(services.project_settings.archive(principal, project_id))


@router.post("/projects/{project_id}/tags")
async def add_tags(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    names = _tag_names(await json_object(request, missing=BODY))
    changed = await run_in_threadpool(services.project_settings.add_tags, principal, project_id, names)
    return mapping_projects.project_v4(changed)


@router.delete("/projects/{project_id}/tags/{tag_id}")
def remove_tag(project_id: str, tag_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_projects.project_v4(services.project_settings.remove_tag(principal, project_id, tag_id))


@router.get("/gateway/projects")
def gateway_projects(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``?relationship=Owned|Collaborating|Suggesting|Popular&showCompleted=true|false`` → a JSON array."""
    q = request.query_params
    relationship = q.get("relationship") or "Owned"
    completed = flag(q.get("showCompleted"), "showCompleted", False)
    found = services.project_settings.gateway(principal, relationship, show_completed=bool(completed))
    return json_answer(mapping_projects.gateway_summaries(found, relationship.capitalize()))


@router.get("/gateway/projects/findProjectByOwnerAndName")
def find_project(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    owner, name = q.get("ownerName"), q.get("projectName")
    if not owner or not name:
        raise InvalidInput("'ownerName' and 'projectName' (query) are required")
    found = services.projects.find_by_owner_and_name(principal, owner, name)
    return mapping_projects.gateway_overview(found, principal.user_id)


@legacy_form.post("/")
async def create_project_form(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``project_create``: form-encoded ``projectName`` and ``ownerOverrideUsername`` → the v4 project. The
    client's ``Csrf-Token: nocheck`` header is accepted (ModelHarbor takes no cookies, so it checks none)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != URLENCODED:
        raise InvalidInput(f"the body must be a form ({URLENCODED}), not {kind or 'no content type'}")
    raw = await read_body(request, limit=MAX_FORM, what="the form")
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the body must be a form (application/x-www-form-urlencoded): {exc}") from None
    name = (form.get("projectName") or [""])[0]
    if not name:
        raise InvalidInput("'projectName' (form) is required", field="projectName")
    owner = (form.get("ownerOverrideUsername") or [""])[0] or None
    created = await run_in_threadpool(partial(services.projects.create_project, principal, name, owner_id=owner))
    return mapping_projects.project_v4(created)


@tags_root.get("/{tag_id}")
def tag_details(tag_id: str, principal: PrincipalDep, services: ServicesDep):
    """A project tag of the caller's organisation: ``{id, name, isApproved}``."""
    return mapping_projects.tag(services.project_settings.tag(principal, tag_id))
