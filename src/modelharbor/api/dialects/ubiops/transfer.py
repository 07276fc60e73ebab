"""UbiOps project exports and imports (``…/exports``, ``…/imports``): zips of a project's deployments,
pipelines, environments and variables, built and read by background tasks (core/transfer/)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import file_response
from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, flag, json_body, json_object, read_form
from modelharbor.api.dialects.ubiops.mapping import iso
from modelharbor.core.serving import truncate
from modelharbor.core.transfer import Export, Import
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
P = "/projects/{project_name}"
E = P + "/exports/{export_id}"
IM = P + "/imports/{import_id}"
FIELD_LIMIT = 8192


def export_json(e: Export, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "exported_by": e.created_by,
        "creation_date": iso(e.created_at),
        "status": e.status,
        "error_message": truncate(e.error_message) or "",
        "size": e.size,
        "description": e.description or None,
    }
    if detail:
        for kind in ("deployments", "pipelines", "environment_variables", "environments"):
            out[kind] = e.selection.get(kind) or {}
        out["services"] = {}
    return out


def import_json(i: Import, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id,
        "imported_by": i.created_by,
        "creation_date": iso(i.created_at),
        "status": i.status,
        "error_message": truncate(i.error_message) or "",
        "size": i.size,
    }
    if detail:
        for kind in ("deployments", "pipelines", "environment_variables", "environments"):
            out[kind] = i.content.get(kind) or {}
        out["services"] = {}
    return out


def _status(request: Request) -> str | None:
    return request.query_params.get("status") or None


async def _download(services, principal, request: Request, file_id: str, name: str) -> Response:
    record, rng, stream = await services.files.open(principal, file_id, request.headers.get("range"))
    response = file_response(record, rng, stream, download_name=name.replace(" ", "_"))
    response.headers["content-type"] = "application/zip"
    return response


# --- exports ------------------------------------------------------------------------------------
@router.post(P + "/exports")
async def create_export(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """``?all=True`` exports everything (the body is ignored); ``?packages=False`` leaves the packages out."""
    everything = flag(request.query_params.get("all"), "all", False)
    packages = flag(request.query_params.get("packages"), "packages", True)
    body = await json_body(request, required=False)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object (the selection)")
    e = await run_in_threadpool(
        lambda: services.transfer.create_export(
            principal, project_name, body, all_objects=everything, packages=packages
        )
    )
    return JSONResponse(export_json(e), status_code=201)


@router.get(P + "/exports")
async def list_exports(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    status = _status(request)
    items = await run_in_threadpool(lambda: services.transfer.list_exports(principal, project_name, status=status))
    return [export_json(e) for e in items]


@router.get(E)
async def get_export(project_name: str, export_id: str, principal: PrincipalDep, services: ServicesDep):
    e = await run_in_threadpool(services.transfer.get_export, principal, project_name, export_id)
    return export_json(e, detail=True)


@router.get(E + "/download")
async def download_export(
    project_name: str, export_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    file_id, name = await run_in_threadpool(services.transfer.export_file, principal, project_name, export_id)
    return await _download(services, principal, request, file_id, name)


@router.delete(E, status_code=204)
async def delete_export(project_name: str, export_id: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.transfer.delete_export, principal, project_name, export_id)
    return Response(status_code=204)


# --- imports ------------------------------------------------------------------------------------
@router.post(P + "/imports")
async def create_import(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    """Multipart: a ``file`` part (the zip), or an ``import_link`` or ``export_id`` text part; optionally
    ``skip_confirmation`` (``True``/``False``)."""
    await run_in_threadpool(services.transfer.check_write, principal, project_name)  # before any byte is kept
    record, fields = await read_form(
        request,
        lambda part: services.transfer.store_import_file(principal, part.stream(), part.filename),
        missing="Send multipart form data with a 'file' part (a zip), 'import_link' or 'export_id'.",
        discard=lambda record: services.files.delete(principal, record.id),
        field_limit=FIELD_LIMIT,
        file_needs_filename=False,
    )
    try:
        skip = flag(fields.get("skip_confirmation"), "skip_confirmation", False)
        imp = await run_in_threadpool(
            lambda: services.transfer.create_import(
                principal,
                project_name,
                file=record,
                import_link=fields.get("import_link") or None,
                export_id=fields.get("export_id") or None,
                skip_confirmation=skip,
            )
        )
    except BaseException:
        if record is not None:
            await services.files.delete(principal, record.id)
        raise
    return JSONResponse(import_json(imp), status_code=201)


@router.get(P + "/imports")
async def list_imports(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    status = _status(request)
    items = await run_in_threadpool(lambda: services.transfer.list_imports(principal, project_name, status=status))
    return [import_json(i) for i in items]


@router.get(IM)
async def get_import(project_name: str, import_id: str, principal: PrincipalDep, services: ServicesDep):
    i = await run_in_threadpool(services.transfer.get_import, principal, project_name, import_id)
    return import_json(i, detail=True)


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
    file_id, name = await run_in_threadpool(services.transfer.import_file, principal, project_name, import_id)
    return await _download(services, principal, request, file_id, name)


@router.delete(IM, status_code=204)
async def delete_import(project_name: str, import_id: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.transfer.delete_import, principal, project_name, import_id)
    return Response(status_code=204)
