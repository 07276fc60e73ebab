"""A project's imported git repositories (ops 125–127, mounted at ``/api/projects``): stored with their URL (https
or ssh only), ref and git credential; cloning them comes with jobs (a later issue). Each route parses, makes one
core call (core/project_repos.py) and maps the answer."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_collab
from modelharbor.api.dialects.domino.routes.users import offset_limit
from modelharbor.api.params import field, json_object
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
BASE = "/v1/projects/{project_id}/repositories"


@router.get(BASE)
def repositories(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    found, total = services.project_repos.list(principal, project_id, offset=offset, limit=limit)
    return {
        "repositories": [mapping_collab.repository(r) for r in found],
        "metadata": mapping.paged(request, offset, limit, total),
    }


@router.post(BASE)
async def add_repository(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """``NewProjectGitRepositoryV1`` ``{uri, name?, serviceProvider?, defaultRef?: {refType, value?},
    gitCredentialId?}``."""
    body = await json_object(request, missing="a JSON object body {uri, …} is required")
    ref = field(body, "defaultRef", dict) or {}
    ref_type, ref_value = ref.get("refType"), ref.get("value")
    if (
        ref_type is not None
        and not isinstance(ref_type, str)
        or ref_value is not None
        and not isinstance(ref_value, str)
    ):
        raise InvalidInput("'defaultRef' must be an object {refType: string, value?: string}")
    repo = await run_in_threadpool(
        partial(
            services.project_repos.add,
            principal,
            project_id,
            field(body, "uri", str, required=True),
            name=field(body, "name", str),
            provider=field(body, "serviceProvider", str),
            ref_type=ref_type,
            ref_value=ref_value,
            credential_id=field(body, "gitCredentialId", str),
        )
    )
    return {"repository": mapping_collab.repository(repo), "metadata": mapping.metadata(request)}


@router.delete(BASE + "/{repository_id}")
def remove_repository(
    request: Request, project_id: str, repository_id: str, principal: PrincipalDep, services: ServicesDep
):
    services.project_repos.remove(principal, project_id, repository_id)
    return mapping_collab.deleted(request)
