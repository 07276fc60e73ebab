"""UbiOps environment tags (API v2): tags of custom environments, their builds from environment packages, the
packages themselves, and which versions use a tag; and, for clients <= 4.12 (API v2.1), environment revisions and
their builds, which are the builds of the tag ``latest``. Core: core/serving/environment_tags.py, environment_builds.py."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import file_response
from modelharbor.api.dialects.ubiops.common import (
    PrincipalDep,
    ServicesDep,
    flag,
    json_body,
    json_object,
    read_form,
)
from modelharbor.api.dialects.ubiops.mapping import (
    environment_build_json,
    environment_revision_json,
    environment_tag_json,
    tag_usage_json,
)
from modelharbor.core.serving.environment_tags import DEFAULT_TAG
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
E = "/projects/{project_name}/environments/{environment_name}"
T = E + "/tags/{tag_name}"
FIELD_LIMIT = 4096


@router.get(E + "/tags")
async def list_tags(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    wanted = flag(request.query_params.get("supports_request_format"), "supports_request_format")
    tags = await run_in_threadpool(
        services.serving.environment_tags.list_tags, principal, project_name, environment_name
    )
    return [environment_tag_json(t) for t in tags if wanted is None or t.supports_request_format == wanted]


@router.post(E + "/tags")
async def create_tag(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    tag = await run_in_threadpool(
        services.serving.environment_tags.create_tag, principal, project_name, environment_name, body
    )
    return JSONResponse(environment_tag_json(tag), status_code=201)


@router.get(T)
async def get_tag(
    project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep
):
    tags = services.serving.environment_tags
    tag = await run_in_threadpool(tags.get_tag, principal, project_name, environment_name, tag_name)
    log = await run_in_threadpool(tags.build_log, principal, project_name, environment_name, tag_name)
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
    body = await json_object(request)
    tag = await run_in_threadpool(
        services.serving.environment_tags.update_tag, principal, project_name, environment_name, tag_name, body
    )
    return environment_tag_json(tag)


@router.delete(T, status_code=204)
async def delete_tag(
    project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep
):
    await run_in_threadpool(
        services.serving.environment_tags.delete_tag, principal, project_name, environment_name, tag_name
    )
    return Response(status_code=204)


async def _package_form(request: Request, store, discard) -> tuple[str | None, dict[str, str]]:
    """Read a multipart build request: the ``file`` part is stored with ``store(stream, filename)`` (its file id),
    text parts are returned. On any failure a stored file is dropped again (``discard(file_id)``)."""
    return await read_form(
        request,
        lambda part: store(part.stream(), part.filename or "package.zip"),
        missing="Send multipart form data: a 'file' part (the environment package, a .zip), or the source.",
        discard=discard,
        field_limit=FIELD_LIMIT,
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
    """Multipart: a ``file`` part (the environment package, a .zip), or ``source_environment`` + ``source_tag``
    text parts (that tag's package); query ``base_environment_name``, ``base_environment_tag``."""
    tags = services.serving.environment_tags
    q = request.query_params
    base = {"base_environment": q.get("base_environment_name"), "base_environment_tag": q.get("base_environment_tag")}
    file_id, fields = await _package_form(
        request,
        lambda stream, filename: tags.store_package(
            principal, project_name, environment_name, tag_name, stream, filename, **base
        ),
        lambda file_id: tags.discard_package(principal, file_id),
    )
    source_environment, source_tag = fields.get("source_environment"), fields.get("source_tag")
    if file_id is not None:
        if source_environment or source_tag:
            await tags.discard_package(principal, file_id)
            raise InvalidInput("Send either a 'file' part or 'source_environment' and 'source_tag', not both.")
        await tags.build_package(principal, project_name, environment_name, tag_name, file_id, **base)
    else:
        if not source_environment or not source_tag:
            raise InvalidInput(
                "Send a 'file' part (the environment package, a .zip), or 'source_environment' and 'source_tag'."
            )
        await run_in_threadpool(
            lambda: tags.copy_build(
                principal, project_name, environment_name, tag_name, source_environment, source_tag, **base
            )
        )
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
    body = await json_body(request, required=False)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (or empty)")
    await run_in_threadpool(
        services.serving.environment_tags.rebuild, principal, project_name, environment_name, tag_name
    )
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
    file_id = await run_in_threadpool(
        services.serving.environment_tags.package_file, principal, project_name, environment_name, tag_name
    )
    return await _zip(request, services, principal, file_id, f"{environment_name}_{tag_name}")


async def _zip(request: Request, services, principal, file_id: str, stem: str):
    """An environment package as a download: ``application/zip``, a name without spaces or quotes."""
    record, rng, stream = await services.files.open(principal, file_id, request.headers.get("range"))
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".zip"
    response = file_response(record, rng, stream, download_name=name)
    response.headers["content-type"] = "application/zip"
    return response


@router.get(T + "/usage")
async def tag_usage(
    project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep
):
    items = await run_in_threadpool(
        services.serving.environment_tags.usage, principal, project_name, environment_name, tag_name
    )
    return [tag_usage_json(u) for u in items]


@router.get(T + "/dependency-files")
async def tag_dependency_files(
    project_name: str, environment_name: str, tag_name: str, principal: PrincipalDep, services: ServicesDep
):
    files = await run_in_threadpool(
        services.serving.environment_tags.dependency_files, principal, project_name, environment_name, tag_name
    )
    return [{"name": name, "content": content} for name, content in files]


# --- API v2.1 (clients <= 4.12): environment revisions and builds = the builds of the tag 'latest' -------------
R = E + "/revisions/{revision_id}"


@router.post(E + "/revisions")
async def create_environment_revision(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    """Multipart: a ``file`` part (the environment package) or a ``source_environment`` text part (that
    environment's package); a new build of the tag ``latest`` → ``{success, revision, build}``."""
    tags = services.serving.environment_tags
    file_id, fields = await _package_form(
        request,
        lambda stream, filename: tags.store_package(
            principal, project_name, environment_name, DEFAULT_TAG, stream, filename
        ),
        lambda file_id: tags.discard_package(principal, file_id),
    )
    source = fields.get("source_environment")
    if file_id is not None:
        if source:
            await tags.discard_package(principal, file_id)
            raise InvalidInput("Send either a 'file' part or 'source_environment', not both.")
        tag = await tags.build_package(principal, project_name, environment_name, DEFAULT_TAG, file_id)
    elif source:
        tag = await run_in_threadpool(
            tags.copy_build, principal, project_name, environment_name, DEFAULT_TAG, source, DEFAULT_TAG
        )
    else:
        raise InvalidInput("Send a 'file' part (the environment package, a .zip) or 'source_environment'.")
    return JSONResponse({"success": True, "revision": tag.build_id, "build": tag.build_id}, status_code=201)


@router.get(E + "/revisions")
async def list_environment_revisions(
    project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep
):
    items = await run_in_threadpool(
        services.serving.environment_tags.list_revisions, principal, project_name, environment_name
    )
    return [environment_revision_json(r) for r in items]


@router.get(R)
async def get_environment_revision(
    project_name: str, environment_name: str, revision_id: str, principal: PrincipalDep, services: ServicesDep
):
    r = await run_in_threadpool(
        services.serving.environment_tags.get_revision, principal, project_name, environment_name, revision_id
    )
    return environment_revision_json(r)


@router.get(R + "/download")
async def download_environment_revision(
    project_name: str,
    environment_name: str,
    revision_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    file_id = await run_in_threadpool(
        services.serving.environment_tags.revision_file, principal, project_name, environment_name, revision_id
    )
    return await _zip(request, services, principal, file_id, f"{environment_name}_{revision_id[:8]}")


@router.post(R + "/rebuild")
async def rebuild_environment_revision(
    project_name: str,
    environment_name: str,
    revision_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    body = await json_body(request, required=False)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (or empty)")
    b = await run_in_threadpool(
        services.serving.environment_tags.rebuild_environment_revision,
        principal,
        project_name,
        environment_name,
        revision_id,
    )
    return environment_build_json(b)


@router.get(R + "/builds")
async def list_environment_builds(
    project_name: str, environment_name: str, revision_id: str, principal: PrincipalDep, services: ServicesDep
):
    items = await run_in_threadpool(
        services.serving.environment_tags.list_builds, principal, project_name, environment_name, revision_id
    )
    return [environment_build_json(b) for b in items]


@router.get(R + "/builds/{build_id}")
async def get_environment_build(
    project_name: str,
    environment_name: str,
    revision_id: str,
    build_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    b = await run_in_threadpool(
        services.serving.environment_tags.get_build, principal, project_name, environment_name, revision_id, build_id
    )
    return environment_build_json(b)


@router.get(R + "/builds/{build_id}/dependency-files")
async def environment_build_dependency_files(
    project_name: str,
    environment_name: str,
    revision_id: str,
    build_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    files = await run_in_threadpool(
        services.serving.environment_tags.build_dependency_files,
        principal,
        project_name,
        environment_name,
        revision_id,
        build_id,
    )
    return [{"name": name, "content": content} for name, content in files]
