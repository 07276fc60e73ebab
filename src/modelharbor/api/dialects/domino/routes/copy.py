"""Copying a project: the public ``POST /api/projects/v1/projects/{projectId}/copy-project`` (op 120,
``CopyProjectSpecV1``) and the client's ``POST /v4/projects/{id}/fork`` ``{name}`` (``fork_project``). One core call
each (core/project_copy.py: files shared, not duplicated)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_collab, mapping_projects
from modelharbor.api.params import field, flag, json_object
from modelharbor.core.project_copy import FORK, CopyOptions
from modelharbor.domain.errors import InvalidInput

public = APIRouter()  # mounted at /api/projects
v4 = APIRouter()  # mounted at /v4
VISIBILITIES = ("public", "searchable", "private")


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"'{name}' must be true or false, not {value!r}")
    return flag(value, name, default)  # type: ignore[return-value]


@public.post("/v1/projects/{project_id}/copy-project")
async def copy_project(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body (CopyProjectSpecV1) is required")
    name = field(body, "name", str, required=True)
    notices: list[str] = []
    if field(body, "gitCodeRepoSpec", dict) is not None:
        return mapping.failure(
            request,
            501,
            "'gitCodeRepoSpec': git-based projects are not supported by ModelHarbor; copy without it "
            "(the project's files are copied from its newest commit).",
        )
    visibility = field(body, "visibility", str)
    if visibility is not None and visibility.lower() not in VISIBILITIES:
        raise InvalidInput(f"'visibility' must be Public, Searchable or Private, not {visibility!r}")
    if field(body, "billingTag", dict) is not None:
        notices.append("billing tags are not supported by ModelHarbor: 'billingTag' was not applied.")
    _flag(body, "copyDatasets", False)  # ModelHarbor has no datasets yet: none to copy, none failed
    _flag(body, "copyNetAppVolumes", False)
    options = CopyOptions(
        files=_flag(body, "copyFiles", True),
        repositories=_flag(body, "copyImportedRepos", True),
        goals=_flag(body, "copyGoals", False),
        collaborators=_flag(body, "copyCollaborators", False),
        credential_id=field(body, "importedGitReposCredentialId", str) or None,
    )
    result = await run_in_threadpool(
        partial(
            services.project_copy.copy,
            principal,
            project_id,
            name,
            owner_id=field(body, "ownerId", str) or None,
            description=field(body, "description", str),
            visibility=visibility,
            options=options,
        )
    )
    return mapping_collab.copy_result(request, result, notices)


@v4.post("/projects/{project_id}/fork")
async def fork_project(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """The client's ``fork_project(target_name)``: a copy of the caller's with the files and imported repositories."""
    body = await json_object(request, missing="a JSON object body {name} is required")
    name = field(body, "name", str, required=True)
    result = await run_in_threadpool(partial(services.project_copy.copy, principal, project_id, name, options=FORK))
    return mapping_projects.project_v4(result.project)
