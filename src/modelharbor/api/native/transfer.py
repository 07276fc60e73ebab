"""Native routes for project exports and imports (``/projects/{project}/exports``, ``…/imports``).

The zips are UbiOps' import-template layout (docs/dialects/ubiops.md, "Exports and imports"); the core
(core/transfer/) builds, checks and reads them in background tasks and checks every permission. An import
takes an already-uploaded file (``file_id``: upload big zips with the resumable chunked upload first), a
completed export of the project or a link; nothing is sent to these routes but JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from modelharbor.api.common import file_response
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.serving import ProjectDep, _name_of, _resolve
from modelharbor.core.transfer import KINDS, Export, Import, OpenedZip
from modelharbor.domain.errors import NotFound
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

router = APIRouter(prefix="/projects/{project}", tags=["transfer"], route_class=JsonRoute)

E = "/exports/{export_id}"
IM = "/imports/{import_id}"
StatusQuery = Query(None, max_length=32, description="Only those with this status.")
_RANGE = {206: {"description": "A range"}}
_ZIP = {200: {"content": {"application/zip": {}}}, **_RANGE}


def _fields(services: Services, item: Export | Import) -> dict:
    return {
        "id": item.id,
        "project": item.project,
        "status": item.status,
        "percent": services.transfer.percent(item),
        "error_message": item.error_message or None,
        "size": item.size,
        "created_by": item.created_by,
        "created_at": item.created_at,
    }


def export_out(services: Services, e: Export) -> schemas.ExportOut:
    return schemas.ExportOut(**_fields(services, e), description=e.description, packages=e.packages)


def export_detail(services: Services, principal: Principal, e: Export) -> schemas.ExportDetailOut:
    file_id = sha256 = None
    if e.status == "completed":
        try:
            file_id, _ = services.transfer.export_file(principal, e.project, e.id)
            sha256 = services.files.get(principal, file_id).sha256
        except NotFound:  # its zip was deleted through the files API
            file_id = None
    return schemas.ExportDetailOut(
        **export_out(services, e).model_dump(),
        **{kind: e.selection.get(kind) or {} for kind in KINDS},
        file_id=file_id,
        sha256=sha256,
    )


def import_out(services: Services, i: Import) -> schemas.ImportOut:
    return schemas.ImportOut(**_fields(services, i), source=i.source, skip_confirmation=i.skip_confirmation)


def import_detail(services: Services, i: Import) -> schemas.ImportDetailOut:
    return schemas.ImportDetailOut(
        **import_out(services, i).model_dump(), **{kind: i.content.get(kind) or {} for kind in KINDS}
    )


def _zip(request: Request, opened: OpenedZip) -> Response:
    record, rng, stream, name = opened
    response = file_response(record, rng, stream, head=request.method == "HEAD", download_name=name)
    response.headers["content-type"] = "application/zip"
    return response


# --- exports -------------------------------------------------------------------------------------
@router.post(
    "/exports",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ExportOut,
    summary="Export (part of) the project as a zip",
)
def create_export(body: schemas.ExportIn, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """The body selects what to export (unknown names → 400), or ``all: true`` exports everything with values;
    ``packages: false`` leaves the packages out. A secret's value is never exported. The zip is built in the
    background: poll the export until ``completed`` (then download it) or ``failed``."""
    selection = {kind: getattr(body, kind) for kind in KINDS}
    if body.description is not None:
        selection["description"] = body.description
    e = services.transfer.create_export(principal, project, selection, all_objects=body.all, packages=body.packages)
    return export_out(services, e)


@router.get("/exports", response_model=list[schemas.ExportOut], summary="The project's exports, newest first")
def list_exports(project: ProjectDep, principal: PrincipalDep, services: ServicesDep, status: str | None = StatusQuery):
    return [export_out(services, e) for e in services.transfer.list_exports(principal, project, status=status)]


@router.get(E, response_model=schemas.ExportDetailOut, summary="One export, with its selection")
def get_export(export_id: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """The selection as stored (for ``all``: what it resolved to); once completed, the zip's file id and
    SHA-256."""
    e = services.transfer.get_export(principal, project, _name_of(export_id, "Export"))
    return export_detail(services, principal, e)


@router.delete(E, status_code=status.HTTP_204_NO_CONTENT, summary="Delete an export and its zip")
def delete_export(export_id: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    services.transfer.delete_export(principal, project, _name_of(export_id, "Export"))
    return Response(status_code=204)


@router.get(E + "/download", response_class=Response, responses=_ZIP, summary="The export's zip")
@router.head(E + "/download", response_class=Response, responses=_RANGE, operation_id="head_export_download")
async def download_export(project: str, export_id: str, request: Request):
    """Once completed. ``Range`` → 206; ``ETag`` and ``X-Content-SHA256`` carry the hash."""
    services, principal, project = await _resolve(request, project)
    opened = await services.transfer.open_export_file(
        principal, project, _name_of(export_id, "Export"), request.headers.get("range")
    )
    return _zip(request, opened)


# --- imports -------------------------------------------------------------------------------------
@router.post(
    "/imports",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ImportOut,
    summary="Import a zip into the project",
)
def create_import(body: schemas.ImportIn, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """From an uploaded file (``file_id``; its bytes are shared, not copied — the uploaded file may be deleted
    afterwards), a completed export of this project (``export_id``) or a link (``import_link``). The zip is
    scanned in the background; then the import waits in ``confirmation`` (PATCH it) or, with
    ``skip_confirmation``, creates everything at once."""
    i = services.transfer.create_import(
        principal,
        project,
        file_id=body.file_id or None,
        export_id=body.export_id or None,
        import_link=body.import_link or None,
        skip_confirmation=body.skip_confirmation,
    )
    return import_out(services, i)


@router.get("/imports", response_model=list[schemas.ImportOut], summary="The project's imports, newest first")
def list_imports(project: ProjectDep, principal: PrincipalDep, services: ServicesDep, status: str | None = StatusQuery):
    return [import_out(services, i) for i in services.transfer.list_imports(principal, project, status=status)]


@router.get(IM, response_model=schemas.ImportDetailOut, summary="One import, with what its zip holds")
def get_import(import_id: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """At ``confirmation`` the detail describes the zip in the shape the PATCH takes; a variable whose ``value``
    is null (every secret) needs one in the PATCH."""
    return import_detail(services, services.transfer.get_import(principal, project, _name_of(import_id, "Import")))


@router.patch(IM, response_model=schemas.ImportDetailOut, summary="Confirm an import")
def confirm_import(
    import_id: str,
    body: schemas.ImportConfirmIn,
    project: ProjectDep,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """The objects to create, keyed by name (``{}`` = as in the zip); secrets' values given again as
    ``{"value": "…", "secret": true}``. Only while the import is in ``confirmation``."""
    i = services.transfer.confirm_import(
        principal, project, _name_of(import_id, "Import"), body.model_dump(exclude_unset=True)
    )
    return import_detail(services, i)


@router.delete(IM, status_code=status.HTTP_204_NO_CONTENT, summary="Delete an import and its zip")
def delete_import(import_id: str, project: ProjectDep, principal: PrincipalDep, services: ServicesDep):
    """The objects it created stay."""
    services.transfer.delete_import(principal, project, _name_of(import_id, "Import"))
    return Response(status_code=204)


@router.get(IM + "/download", response_class=Response, responses=_ZIP, summary="The imported zip")
@router.head(IM + "/download", response_class=Response, responses=_RANGE, operation_id="head_import_download")
async def download_import(project: str, import_id: str, request: Request):
    services, principal, project = await _resolve(request, project)
    opened = await services.transfer.open_import_file(
        principal, project, _name_of(import_id, "Import"), request.headers.get("range")
    )
    return _zip(request, opened)
