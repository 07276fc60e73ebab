"""UbiOps environments (API v2): base and custom environments of a project, the tags of custom ones, their builds
from environment packages (multipart uploads), the packages themselves and which versions use a tag. Core:
core/serving/environments.py, environment_tags.py, environment_builds.py."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import environment_json, environment_tag_json, tag_usage_json
from modelharbor.api.dialects.ubiops.routes import (
    E,
    P,
    T,
    json_object,
    labels_filter,
    read_form,
    safe_zip_name,
    true_false,
    zip_download,
)
from modelharbor.api.inputs import environment_in, environment_patch, tag_in
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
FIELD_LIMIT = 4096


# --- environments -------------------------------------------------------------------------------
@router.get(P + "/environments")
def list_environments(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    system = true_false(q.get("system"), "system")
    envs = services.serving.list_environments(
        principal, project_name, system=system, labels=labels_filter(q.get("labels"))
    )
    return [environment_json(e) for e in envs]


@router.post(P + "/environments", status_code=201)
async def create_environment(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    name, description, labels, base = environment_in(await json_object(request))
    env = await run_in_threadpool(
        services.serving.create_environment,
        principal,
        project_name,
        name=name,
        description=description,
        labels=labels,
        base_environment=base,
    )
    return environment_json(env)


@router.get(E)
def get_environment(project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep):
    return environment_json(services.serving.get_environment(principal, project_name, environment_name))


@router.patch(E)
async def update_environment(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    description, labels = environment_patch(await json_object(request))
    env = await run_in_threadpool(
        services.serving.update_environment,
        principal,
        project_name,
        environment_name,
        description=description,
        labels=labels,
    )
    return environment_json(env)


@router.delete(E, status_code=204)
def delete_environment(project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_environment(principal, project_name, environment_name)
    return Response(status_code=204)


# --- tags ---------------------------------------------------------------------------------------
@router.get(E + "/tags")
def list_tags(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    wanted = true_false(request.query_params.get("supports_request_format"), "supports_request_format")
    tags = services.serving.environment_tags.list_tags(
        principal, project_name, environment_name, supports_request_format=wanted
    )
    return [environment_tag_json(t) for t in tags]


@router.post(E + "/tags", status_code=201)
async def create_tag(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    name, supports, status = tag_in(await json_object(request), creating=True)
    tags = services.serving.environment_tags
    tag = await run_in_threadpool(
        partial(tags.create_tag, supports_request_format=bool(supports), status=status),
        principal,
        project_name,
        environment_name,
        name,
    )
    return environment_tag_json(tag)


@router.get(T)
def get_tag(project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep):
    tag, log = services.serving.environment_tags.tag_detail(principal, project_name, environment_name, tag_name)
    return environment_tag_json(tag, build_log=log)


@router.patch(T)
async def update_tag(
    project_name: str,
    environment_name: str,
    tag_name: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    _, supports, status = tag_in(await json_object(request), creating=False)
    tags = services.serving.environment_tags
    tag = await run_in_threadpool(
        partial(tags.update_tag, status=status, supports_request_format=supports),
        principal,
        project_name,
        environment_name,
        tag_name,
    )
    return environment_tag_json(tag)


@router.delete(T, status_code=204)
def delete_tag(project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.environment_tags.delete_tag(principal, project_name, environment_name, tag_name)
    return Response(status_code=204)


def _file_or_source(file_id: str | None, fields: dict[str, str]) -> None:
    source_environment, source_tag = fields.get("source_environment"), fields.get("source_tag")
    if file_id is not None:
        if source_environment or source_tag:
            raise InvalidInput("Send either a 'file' part or 'source_environment' and 'source_tag', not both.")
    elif not source_environment or not source_tag:
        raise InvalidInput(
            "Send a 'file' part (the environment package, a .zip), or 'source_environment' and 'source_tag'."
        )


@router.post(T + "/build")
async def build_tag(
    project_name: str,
    environment_name: str,
    tag_name: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Multipart: a ``file`` part (the environment package, a .zip, stored while it is read), or
    ``source_environment`` + ``source_tag`` text parts (that tag's package); query ``base_environment_name``,
    ``base_environment_tag``."""
    tags = services.serving.environment_tags
    q = request.query_params
    base = {"base_environment": q.get("base_environment_name"), "base_environment_tag": q.get("base_environment_tag")}
    file_id, fields = await read_form(
        request,
        lambda part: tags.store_package(
            principal, project_name, environment_name, tag_name, part.stream(), part.filename or "package.zip", **base
        ),
        missing="Send multipart form data: a 'file' part (the environment package, a .zip), or the source.",
        discard=lambda file_id: tags.discard_package(principal, file_id),
        check=_file_or_source,
        field_limit=FIELD_LIMIT,
    )
    source = None if file_id is not None else (fields["source_environment"], fields["source_tag"])
    await tags.build_from(principal, project_name, environment_name, tag_name, file_id=file_id, source=source, **base)
    return {"success": True}


@router.post(T + "/rebuild")
async def rebuild_tag(
    project_name: str,
    environment_name: str,
    tag_name: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    await json_object(request, required=False, what=" (or empty)")
    tags = services.serving.environment_tags
    await run_in_threadpool(tags.rebuild, principal, project_name, environment_name, tag_name)
    return {"success": True}


@router.get(T + "/download")
async def download_tag(
    project_name: str,
    environment_name: str,
    tag_name: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    opened = await services.serving.environment_tags.open_package(
        principal, project_name, environment_name, tag_name, request.headers.get("range")
    )
    return zip_download(opened, safe_zip_name(f"{environment_name}_{tag_name}"))


@router.get(T + "/usage")
def tag_usage(project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep):
    items = services.serving.environment_tags.usage(principal, project_name, environment_name, tag_name)
    return [tag_usage_json(u) for u in items]


@router.get(T + "/dependency-files")
def tag_dependency_files(
    project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep
):
    tags = services.serving.environment_tags
    files = tags.dependency_files(principal, project_name, environment_name, tag_name)
    return [{"name": name, "content": content} for name, content in files]
