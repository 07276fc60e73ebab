"""UbiOps project exports and imports (``…/exports``, ``…/imports``): zips of a project's deployments, pipelines,
environments and variables, built and read by background tasks (core/transfer/)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import export_json, import_json
from modelharbor.api.dialects.ubiops.routes import EX, IM, P, json_object, read_form, true_false, zip_download
from modelharbor.core.transfer import ImportForm

router = APIRouter()
FIELD_LIMIT = 8192


# --- exports ------------------------------------------------------------------------------------
@router.post(P + "/exports", status_code=201)
async def create_export(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """``?all=True`` exports everything (the body is ignored); ``?packages=False`` leaves the packages out."""
    everything = true_false(request.query_params.get("all"), "all", False)
    packages = true_false(request.query_params.get("packages"), "packages", True)
    body = await json_object(request, required=False, what=" (the selection)")
    e = await run_in_threadpool(
        services.transfer.create_export, principal, project_name, body, all_objects=everything, packages=packages
    )
    return export_json(e)


@router.get(P + "/exports")
def list_exports(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    status = request.query_params.get("status") or None
    return [export_json(e) for e in services.transfer.list_exports(principal, project_name, status=status)]


@router.get(EX)
def get_export(project_name: str, export_id: str, principal: PrincipalDep, services: ServicesDep):
    return export_json(services.transfer.get_export(principal, project_name, export_id), detail=True)


@router.get(EX + "/download")
async def download_export(
    project_name: str, export_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    *opened, name = await services.transfer.open_export_file(
        principal, project_name, export_id, request.headers.get("range")
    )
    return zip_download(tuple(opened), name.replace(" ", "_"))


@router.delete(EX, status_code=204)
def delete_export(project_name: str, export_id: str, principal: PrincipalDep, services: ServicesDep):
    services.transfer.delete_export(principal, project_name, export_id)
    return Response(status_code=204)


# --- imports ------------------------------------------------------------------------------------
@router.post(P + "/imports", status_code=201)
async def create_import(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """Multipart: a ``file`` part (the zip), or an ``import_link`` or ``export_id`` text part; optionally
    ``skip_confirmation`` (``True``/``False``)."""

    async def read(store) -> ImportForm:  # the zip part is stored as it is read; the core deletes it on failure
        _, fields = await read_form(
            request,
            lambda part: store(part.stream(), part.filename),
            missing="Send multipart form data with a 'file' part (a zip), 'import_link' or 'export_id'.",
            field_limit=FIELD_LIMIT,
            file_needs_filename=False,
        )
        return ImportForm(
            import_link=fields.get("import_link") or None,
            export_id=fields.get("export_id") or None,
            skip_confirmation=true_false(fields.get("skip_confirmation"), "skip_confirmation", False),
        )

    imp = await services.transfer.create_import_from_upload(principal, project_name, read)
    return import_json(imp)


@router.get(P + "/imports")
def list_imports(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    status = request.query_params.get("status") or None
    return [import_json(i) for i in services.transfer.list_imports(principal, project_name, status=status)]


@router.get(IM)
def get_import(project_name: str, import_id: str, principal: PrincipalDep, services: ServicesDep):
    return import_json(services.transfer.get_import(principal, project_name, import_id), detail=True)


@router.patch(IM)
async def confirm_import(
    project_name: str, import_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    """The confirmation: the objects to create (the detail's shape), with secret values given again."""
    body = await json_object(request)
    i = await run_in_threadpool(services.transfer.confirm_import, principal, project_name, import_id, body)
    return import_json(i, detail=True)


@router.get(IM + "/download")
async def download_import(
    project_name: str, import_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    *opened, name = await services.transfer.open_import_file(
        principal, project_name, import_id, request.headers.get("range")
    )
    return zip_download(tuple(opened), name.replace(" ", "_"))


@router.delete(IM, status_code=204)
def delete_import(project_name: str, import_id: str, principal: PrincipalDep, services: ServicesDep):
    services.transfer.delete_import(principal, project_name, import_id)
    return Response(status_code=204)
