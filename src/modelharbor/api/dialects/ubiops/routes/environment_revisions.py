"""UbiOps environment revisions and their builds (API v2.1, clients <= 4.12): the builds of an environment's tag
``latest`` (core/serving/environment_builds.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import environment_build_json, environment_revision_json
from modelharbor.api.dialects.ubiops.routes import E, R, json_object, read_form, safe_zip_name, zip_download
from modelharbor.core.serving.environment_tags import DEFAULT_TAG
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
FIELD_LIMIT = 4096


def _file_or_source(file_id: str | None, fields: dict[str, str]) -> None:
    if file_id is not None and fields.get("source_environment"):
        raise InvalidInput("Send either a 'file' part or 'source_environment', not both.")
    if file_id is None and not fields.get("source_environment"):
        raise InvalidInput("Send a 'file' part (the environment package, a .zip) or 'source_environment'.")


@router.post(E + "/revisions", status_code=201)
async def create_environment_revision(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    """Multipart: a ``file`` part (the environment package) or a ``source_environment`` text part (that
    environment's package); a new build of the tag ``latest`` → ``{success, revision, build}``."""
    tags = services.serving.environment_tags
    file_id, fields = await read_form(
        request,
        lambda part: tags.store_package(
            principal, project_name, environment_name, DEFAULT_TAG, part.stream(), part.filename or "package.zip"
        ),
        missing="Send multipart form data: a 'file' part (the environment package, a .zip), or the source.",
        discard=lambda file_id: tags.discard_package(principal, file_id),
        check=_file_or_source,
        field_limit=FIELD_LIMIT,
    )
    source = (fields.get("source_environment"), DEFAULT_TAG)
    tag = await tags.build_from(principal, project_name, environment_name, DEFAULT_TAG, file_id=file_id, source=source)
    return {"success": True, "revision": tag.build_id, "build": tag.build_id}


@router.get(E + "/revisions")
def list_environment_revisions(
    project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep
):
    items = services.serving.environment_tags.list_revisions(principal, project_name, environment_name)
    return [environment_revision_json(r) for r in items]


@router.get(R)
def get_environment_revision(
    project_name: str, environment_name: str, revision_id: str, principal: PrincipalDep, services: ServicesDep
):
    r = services.serving.environment_tags.get_revision(principal, project_name, environment_name, revision_id)
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
    opened = await services.serving.environment_tags.open_revision_package(
        principal, project_name, environment_name, revision_id, request.headers.get("range")
    )
    return zip_download(opened, safe_zip_name(f"{environment_name}_{revision_id[:8]}"))


@router.post(R + "/rebuild")
async def rebuild_environment_revision(
    project_name: str,
    environment_name: str,
    revision_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    await json_object(request, required=False, what=" (or empty)")
    tags = services.serving.environment_tags
    b = await run_in_threadpool(
        tags.rebuild_environment_revision, principal, project_name, environment_name, revision_id
    )
    return environment_build_json(b)


@router.get(R + "/builds")
def list_environment_builds(
    project_name: str, environment_name: str, revision_id: str, principal: PrincipalDep, services: ServicesDep
):
    items = services.serving.environment_tags.list_builds(principal, project_name, environment_name, revision_id)
    return [environment_build_json(b) for b in items]


@router.get(R + "/builds/{build_id}")
def get_environment_build(
    project_name: str,
    environment_name: str,
    revision_id: str,
    build_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    tags = services.serving.environment_tags
    return environment_build_json(tags.get_build(principal, project_name, environment_name, revision_id, build_id))


@router.get(R + "/builds/{build_id}/dependency-files")
def environment_build_dependency_files(
    project_name: str,
    environment_name: str,
    revision_id: str,
    build_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    tags = services.serving.environment_tags
    files = tags.build_dependency_files(principal, project_name, environment_name, revision_id, build_id)
    return [{"name": name, "content": content} for name, content in files]
