"""UbiOps deployments, their versions and package revisions (``…/deployments[/{d}[/versions[/{v}[/revisions…]]]]``).
Core: core/serving/deployments.py, revisions.py. Requests are routes/requests.py; variables routes/env_vars.py."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import (
    deployment_json,
    instance_type_group_json,
    revision_json,
    version_json,
)
from modelharbor.api.dialects.ubiops.routes import D, P, V, json_object, read_form, zip_download
from modelharbor.api.inputs import deployment_in, deployment_patch, version_in
from modelharbor.api.params import int_param
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
FIELD_LIMIT = 4096


# --- deployments --------------------------------------------------------------------------------
@router.post(P + "/deployments", status_code=201)
async def create_deployment(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    spec = deployment_in(await json_object(request))
    return deployment_json(await run_in_threadpool(services.serving.create_deployment, principal, project_name, spec))


@router.get(P + "/deployments")
def list_deployments(project_name: str, principal: PrincipalDep, services: ServicesDep):
    return [deployment_json(d, detail=False) for d in services.serving.list_deployments(principal, project_name)]


@router.get(D)
def get_deployment(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    return deployment_json(services.serving.get_deployment(principal, project_name, deployment_name))


@router.patch(D)
async def update_deployment(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    change = deployment_patch(await json_object(request))
    d = await run_in_threadpool(services.serving.update_deployment, principal, project_name, deployment_name, change)
    return deployment_json(d)


@router.delete(D, status_code=204)
def delete_deployment(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_deployment(principal, project_name, deployment_name)
    return Response(status_code=204)


# --- versions -----------------------------------------------------------------------------------
@router.post(D + "/versions", status_code=201)
async def create_version(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    spec = version_in(await json_object(request), creating=True)
    v = await run_in_threadpool(services.serving.create_version, principal, project_name, deployment_name, spec)
    return version_json(v)


@router.get(D + "/versions")
def list_versions(project_name: str, deployment_name: str, principal: PrincipalDep, services: ServicesDep):
    return [version_json(v) for v in services.serving.list_versions(principal, project_name, deployment_name)]


@router.get(V)
def get_version(project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep):
    return version_json(services.serving.get_version(principal, project_name, deployment_name, version))


@router.patch(V)
async def update_version(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    change = version_in(await json_object(request), creating=False)
    v = await run_in_threadpool(
        services.serving.update_version, principal, project_name, deployment_name, version, change
    )
    return version_json(v)


@router.delete(V, status_code=204)
def delete_version(
    project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    services.serving.delete_version(principal, project_name, deployment_name, version)
    return Response(status_code=204)


# --- revisions ----------------------------------------------------------------------------------
def _file_or_source(revision, fields: dict[str, str]) -> None:
    if revision is not None:
        return
    if fields.get("template_deployment_id"):
        raise InvalidInput("Templates are not supported: upload a package or name a source deployment.")
    if not fields.get("source_deployment") or not fields.get("source_version"):
        raise InvalidInput("Send a 'file' part (the .zip package) or 'source_deployment' and 'source_version'.")


@router.post(V + "/revisions")
async def upload_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Multipart: a ``file`` part (the zip, made a revision while it is read), or ``source_deployment`` +
    ``source_version`` text parts (that version's built package, no bytes copied)."""
    revision, fields = await read_form(
        request,
        lambda part: services.serving.upload_revision(
            principal, project_name, deployment_name, version, part.stream(), part.filename or "package.zip"
        ),
        missing="Send the package as multipart form data with a 'file' part (a .zip).",
        check=_file_or_source,
        field_limit=FIELD_LIMIT,
    )
    if revision is None:  # the form named a source instead
        revision = await run_in_threadpool(
            services.serving.copy_revision,
            principal,
            project_name,
            deployment_name,
            version,
            fields["source_deployment"],
            fields["source_version"],
        )
    return {"success": True, "revision": revision.id, "build": revision.id}


@router.get(V + "/revisions")
def list_revisions(
    project_name: str, deployment_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    items = services.serving.list_revisions(principal, project_name, deployment_name, version)
    return [revision_json(r) for r in items]


@router.get(V + "/revisions/{revision_id}")
def get_revision(
    project_name: str,
    deployment_name: str,
    version: str,
    revision_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    return revision_json(services.serving.get_revision(principal, project_name, deployment_name, version, revision_id))


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
    await json_object(request, required=False, what=" (e.g. {})")
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
    opened = await services.serving.open_revision_file(
        principal, project_name, deployment_name, version, revision_id, request.headers.get("range")
    )
    return zip_download(opened, f"{deployment_name}_{version}_{revision_id[:8]}.zip".replace(" ", "_"))


# --- instance type groups: the hardware tiers a version may name ------------------------------------------
@router.get(P + "/instance-type-groups")
def list_instance_type_groups(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """The hardware tiers as UbiOps' paginated instance type groups (``cursor``: where a page starts)."""
    q = request.query_params
    limit = int_param(q.get("limit"), "limit", 100, low=1, high=1000, what="a whole number")
    start = int_param(q.get("cursor"), "cursor", 0, low=0, high=None, what="a whole number", digits=True)
    groups = services.serving.instance_type_groups(principal, project_name)

    def page(at: int) -> str:
        return str(request.url.include_query_params(cursor=at, limit=limit))

    return {
        "next": page(start + limit) if start + limit < len(groups) else None,
        "previous": page(max(0, start - limit)) if start > 0 else None,
        "results": [instance_type_group_json(t) for t in groups[start : start + limit]],
    }


@router.get(P + "/instance-type-groups/{instance_type_group_id}")
def get_instance_type_group(
    project_name: str, instance_type_group_id: str, principal: PrincipalDep, services: ServicesDep
):
    tier = services.serving.instance_type_group(principal, project_name, instance_type_group_id)
    return instance_type_group_json(tier)
