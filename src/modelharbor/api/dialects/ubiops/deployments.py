"""UbiOps deployments, versions, package revisions, requests and deployment/version environment variables."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import file_response
from modelharbor.api.dialects.ubiops import kept
from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, json_body, json_object, read_form
from modelharbor.api.dialects.ubiops.mapping import (
    deployment_json,
    env_var_json,
    request_detail_json,
    request_json,
    revision_json,
    version_json,
)
from modelharbor.api.jsonbody import MAX_INPUT_BODY, blank, loads, read_body
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
P = "/projects/{project_name}"
D = P + "/deployments/{deployment_name}"
V = D + "/versions/{version}"
FIELD_LIMIT = 4096


# --- deployments --------------------------------------------------------------------------------
@router.post(P + "/deployments")
async def create_deployment(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    d = await run_in_threadpool(services.serving.create_deployment, principal, project_name, body)
    return JSONResponse(deployment_json(d), status_code=201)


@router.get(P + "/deployments")
async def list_deployments(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    items = await run_in_threadpool(services.serving.list_deployments, principal, project_name)
    return [deployment_json(d, detail=False) for d in items]


@router.get(D)
async def get_deployment(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    return deployment_json(
        await run_in_threadpool(services.serving.get_deployment, principal, project_name, deployment_name)
    )


@router.patch(D)
async def update_deployment(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    d = await run_in_threadpool(services.serving.update_deployment, principal, project_name, deployment_name, body)
    return deployment_json(d)


@router.delete(D, status_code=204)
async def delete_deployment(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.serving.delete_deployment, principal, project_name, deployment_name)
    return Response(status_code=204)


# --- versions -----------------------------------------------------------------------------------
@router.post(D + "/versions")
async def create_version(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    v = await run_in_threadpool(services.serving.create_version, principal, project_name, deployment_name, body)
    return JSONResponse(version_json(v), status_code=201)


@router.get(D + "/versions")
async def list_versions(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    items = await run_in_threadpool(services.serving.list_versions, principal, project_name, deployment_name)
    return [version_json(v) for v in items]


@router.get(V)
async def get_version(
    project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    v = await run_in_threadpool(services.serving.get_version, principal, project_name, deployment_name, version)
    return version_json(v)


@router.patch(V)
async def update_version(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    body = await json_object(request)
    v = await run_in_threadpool(
        services.serving.update_version, principal, project_name, deployment_name, version, body
    )
    return version_json(v)


@router.delete(V, status_code=204)
async def delete_version(
    project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    await run_in_threadpool(services.serving.delete_version, principal, project_name, deployment_name, version)
    return Response(status_code=204)


# --- revisions ----------------------------------------------------------------------------------
@router.post(V + "/revisions")
async def upload_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Multipart: a ``file`` part (the zip), or ``source_deployment`` + ``source_version`` text parts."""
    revision, fields = await read_form(
        request,
        lambda part: services.serving.upload_revision(
            principal, project_name, deployment_name, version, part.stream(), part.filename or "package.zip"
        ),
        missing="Send the package as multipart form data with a 'file' part (a .zip).",
        field_limit=FIELD_LIMIT,
    )
    if revision is None:
        source_deployment, source_version = fields.get("source_deployment"), fields.get("source_version")
        if fields.get("template_deployment_id"):
            raise InvalidInput("Templates are not supported: upload a package or name a source deployment.")
        if not source_deployment or not source_version:
            raise InvalidInput("Send a 'file' part (the .zip package) or 'source_deployment' and 'source_version'.")
        revision = await run_in_threadpool(
            services.serving.copy_revision,
            principal,
            project_name,
            deployment_name,
            version,
            source_deployment,
            source_version,
        )
    return {"success": True, "revision": revision.id, "build": revision.id}


@router.get(V + "/revisions")
async def list_revisions(
    project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    items = await run_in_threadpool(services.serving.list_revisions, principal, project_name, deployment_name, version)
    return [revision_json(r) for r in items]


@router.get(V + "/revisions/{revision_id}")
async def get_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    revision_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    r = await run_in_threadpool(
        services.serving.get_revision, principal, project_name, deployment_name, version, revision_id
    )
    return revision_json(r)


@router.post(V + "/revisions/{revision_id}/rebuild")
async def rebuild_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    revision_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Build the revision's package again (the client sends a JSON object, e.g. ``{}``; nothing in it is read)."""
    body = await json_body(request, required=False)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (e.g. {})")
    r = await run_in_threadpool(
        services.serving.rebuild_revision, principal, project_name, deployment_name, version, revision_id
    )
    return revision_json(r)


@router.get(V + "/revisions/{revision_id}/download")
async def download_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    revision_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    file_id = await run_in_threadpool(
        services.serving.revision_file, principal, project_name, deployment_name, version, revision_id
    )
    record, rng, stream = await services.files.open(principal, file_id, request.headers.get("range"))
    name = f"{deployment_name}_{version}_{revision_id[:8]}.zip".replace(" ", "_")
    response = file_response(record, rng, stream, download_name=name)
    response.headers["content-type"] = "application/zip"
    return response


# --- requests -----------------------------------------------------------------------------------
def parse_input(raw: bytes, content_type: str) -> Any:
    """Structured input arrives as JSON (checked: api/jsonbody.py; NaN and Infinity pass, as Python clients write
    them); plain input as the raw text (the client sends text/plain)."""
    if "json" in content_type:
        return None if blank(raw) else loads(raw, nan=True)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput("plain input must be UTF-8 text") from None


async def _request_data(request: Request) -> Any:
    raw = await read_body(request, limit=MAX_INPUT_BODY)
    return parse_input(raw, request.headers.get("content-type", ""))


async def _predict(request, services, principal, project_name, deployment_name, version=None):
    data = await _request_data(request)
    result = await services.serving.request(
        principal, project_name, deployment_name, data, version=version, timeout=_timeout(request)
    )
    return request_json(result)


def _timeout(request: Request) -> int | None:
    value = request.query_params.get("timeout")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"'timeout' must be a whole number of seconds, not {value!r}") from None


@router.post(D + "/requests")
async def deployment_request(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    return await _predict(request, services, principal, project_name, deployment_name)


@router.post(V + "/requests")
async def version_request(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    return await _predict(request, services, principal, project_name, deployment_name, version)


async def _batch(request, services, principal, project_name, deployment_name, version=None):
    items = await json_body(request, nan=True)  # inputs, as for a direct request
    results = await run_in_threadpool(
        lambda: services.serving.submit_batch(
            principal, project_name, deployment_name, items, version=version, timeout=_timeout(request)
        )
    )
    return JSONResponse([request_detail_json(r) for r in results], status_code=201)


@router.post(D + "/requests/batch")
async def deployment_batch(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    return await _batch(request, services, principal, project_name, deployment_name)


@router.post(V + "/requests/batch")
async def version_batch(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    return await _batch(request, services, principal, project_name, deployment_name, version)


kept.add_routes(
    router,
    (D, V),
    owner="deployment_name",
    service=lambda services: services.serving,
    listed=request_detail_json,
    detail=request_detail_json,
)


# --- deployment and version environment variables -----------------------------------------------
def _env_routes(prefix: str, with_version: bool) -> None:
    def level(deployment_name: str, version: str | None):
        return {"deployment": deployment_name, "version": version if with_version else None}

    @router.get(prefix + "/environment-variables", name=f"list_env_{with_version}")
    async def list_vars(
        project_name: str,
        deployment_name: str,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        items = await run_in_threadpool(
            lambda: services.serving.list_env_vars(principal, project_name, **level(deployment_name, version))
        )
        return [env_var_json(e, inherited_shape=True) for e in items]

    @router.post(prefix + "/environment-variables", name=f"create_env_{with_version}")
    async def create_var(
        project_name: str,
        deployment_name: str,
        request: Request,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        body = await json_object(request)
        e = await run_in_threadpool(
            lambda: services.serving.create_env_var(principal, project_name, body, **level(deployment_name, version))
        )
        return JSONResponse(env_var_json(e, inherited_shape=True), status_code=201)

    @router.get(prefix + "/environment-variables/{var_id}", name=f"get_env_{with_version}")
    async def get_var(
        project_name: str,
        deployment_name: str,
        var_id: str,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        e = await run_in_threadpool(
            lambda: services.serving.get_env_var(principal, project_name, var_id, **level(deployment_name, version))
        )
        return env_var_json(e, inherited_shape=True)

    @router.patch(prefix + "/environment-variables/{var_id}", name=f"update_env_{with_version}")
    async def update_var(
        project_name: str,
        deployment_name: str,
        var_id: str,
        request: Request,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        body = await json_object(request)
        e = await run_in_threadpool(
            lambda: services.serving.update_env_var(
                principal, project_name, var_id, body, **level(deployment_name, version)
            )
        )
        return env_var_json(e, inherited_shape=True)

    @router.delete(prefix + "/environment-variables/{var_id}", status_code=204, name=f"delete_env_{with_version}")
    async def delete_var(
        project_name: str,
        deployment_name: str,
        var_id: str,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        await run_in_threadpool(
            lambda: services.serving.delete_env_var(principal, project_name, var_id, **level(deployment_name, version))
        )
        return Response(status_code=204)

    @router.post(prefix + "/copy-environment-variables", name=f"copy_env_{with_version}")
    async def copy_vars(
        project_name: str,
        deployment_name: str,
        request: Request,
        principal: PrincipalDep,
        services: ServicesDep,
        version: str | None = None,
    ):
        body = await json_object(request)
        source = body.get("source_deployment")
        if not isinstance(source, str) or not source:
            raise InvalidInput("'source_deployment' is required.")
        items = await run_in_threadpool(
            lambda: services.serving.copy_env_vars(
                principal,
                project_name,
                source,
                body.get("source_version"),
                deployment_name,
                version if with_version else None,
            )
        )
        return [env_var_json(e, inherited_shape=True) for e in items]


_env_routes(D, with_version=False)
_env_routes(V, with_version=True)
