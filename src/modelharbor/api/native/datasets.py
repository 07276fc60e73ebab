"""Native routes for a dataset's files (core/datasets.py): a listing of its head or of a snapshot, a streamed write
into its head (what the resumable upload will do per file) and a download (ranges, HEAD). One core call each."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from modelharbor.api.common import body_stream, file_response
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.project_files import PATH_HELP, EntryOut, entry_out

router = APIRouter(prefix="/datasets", tags=["datasets"])
SNAPSHOT_HELP = "A snapshot of the dataset (its id); the read-write head when omitted."


class DatasetListingOut(BaseModel):
    snapshot_id: str | None = Field(description="The snapshot listed; null: the head.")
    path: str
    entries: list[EntryOut]


@router.get("/{dataset_id}/files", response_model=DatasetListingOut, summary="A dataset's files under a path")
def list_dataset_files(
    dataset_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query("", max_length=4096, description=PATH_HELP + " The root when omitted."),
    snapshot: str | None = Query(None, max_length=64, description=SNAPSHOT_HELP),
):
    """The files and directories directly under ``path`` (the file itself when ``path`` names one)."""
    entries = services.datasets.list_files(principal, dataset_id, path, snapshot_id=snapshot)
    return DatasetListingOut(snapshot_id=snapshot, path=path.strip("/"), entries=[entry_out(e) for e in entries])


@router.put(
    "/{dataset_id}/files",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryOut,
    summary="Write a file of the dataset's head (the raw body, streamed)",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def write_dataset_file(
    dataset_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query(..., min_length=1, max_length=4096, description=PATH_HELP),
):
    """Any size up to MAX_UPLOAD_SIZE, in flat memory; snapshots keep their files. DatasetRwEditor."""
    return entry_out(await services.datasets.write(principal, dataset_id, path, body_stream(request)))


@router.get(
    "/{dataset_id}/files/content",
    response_class=Response,
    operation_id="get_dataset_file_content",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "A range"}},
    summary="A file's bytes in the dataset's head or a snapshot",
)
@router.head(
    "/{dataset_id}/files/content",
    response_class=Response,
    operation_id="head_dataset_file_content",
    responses={206: {"description": "A range"}},
    summary="A file's size and hash in the dataset's head or a snapshot",
)
async def dataset_file_content(
    dataset_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str = Query(..., min_length=1, max_length=4096, description=PATH_HELP),
    snapshot: str | None = Query(None, max_length=64, description=SNAPSHOT_HELP),
):
    """Honours ``Range`` (206)."""
    opened = await services.datasets.open(
        principal, dataset_id, path, snapshot_id=snapshot, range_header=request.headers.get("range")
    )
    return file_response(
        opened.record, opened.range, opened.stream, head=request.method == "HEAD", download_name=opened.entry.name
    )
