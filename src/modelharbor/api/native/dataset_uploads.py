"""Native routes for resumable uploads into a dataset's head (core/dataset_uploads.py): open a batch, put chunks of
its files (raw bodies, any order, in parallel), see what the server holds (to resume), end it (every file lands at
once) or cancel it. The SDK's ``client.datasets.upload`` and the CLI's ``modelharbor datasets upload`` use them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from modelharbor.api.common import body_stream, services_of
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.files import _principal
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.project_files import PATH_HELP, EntryOut, entry_out
from modelharbor.core.dataset_uploads import COLLISIONS, DatasetUpload, Landed

router = APIRouter(prefix="/datasets/{dataset_id}/uploads", tags=["datasets"], route_class=JsonRoute)
COLLISION_HELP = "What a file whose path is taken does: Ignore (skipped), Overwrite, or Rename (name_1.ext, …)."


class DatasetUploadIn(BaseModel):
    collision: str = Field("Ignore", pattern="^(" + "|".join(COLLISIONS) + ")$", description=COLLISION_HELP)


class UploadFileOut(BaseModel):
    path: str
    identifier: str = Field(description="What the client named the file by (the SDK: its size and fingerprint).")
    size: int | None
    total_chunks: int
    received: list[int] = Field(description="The chunk numbers the server holds (from 0).")
    adopted: bool = Field(description="Taken over from an earlier, unfinished upload (the Domino client's re-run).")


class DatasetUploadOut(BaseModel):
    key: str
    dataset_id: str
    collision: str
    state: str = Field(description="open, ended, cancelled or expired.")
    created_at: datetime
    expires_at: datetime
    files: list[UploadFileOut]


class EndIn(BaseModel):
    target: str = Field("", max_length=1024, description="A directory of the head to land the files under.")


class LandedOut(BaseModel):
    key: str
    written: list[EntryOut] = Field(description="The files written, by the paths they landed at.")
    skipped: list[str] = Field(description="Paths sent that were not written (Ignore, and the path was taken).")
    renamed: dict[str, str] = Field(description="Path sent → path landed (Rename).")


class DatasetChunkOut(BaseModel):
    number: int
    size: int


def _out(u: DatasetUpload) -> DatasetUploadOut:
    files = [UploadFileOut(**{**f.__dict__, "received": list(f.received)}) for f in u.files]
    return DatasetUploadOut(
        key=u.key, dataset_id=u.dataset_id, collision=u.collision, state=u.state, created_at=u.created_at,
        expires_at=u.expires_at, files=files,
    )  # fmt: skip


def _landed(done: Landed) -> LandedOut:
    return LandedOut(
        key=done.key, written=[entry_out(e) for e in done.written], skipped=done.skipped, renamed=done.renamed
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetUploadOut, summary="Open an upload")
def start_dataset_upload(dataset_id: str, body: DatasetUploadIn, principal: PrincipalDep, services: ServicesDep):
    """A batch of files for the dataset's head (DatasetRwEditor); files open with their first chunk."""
    return _out(services.dataset_uploads.start(principal, dataset_id, body.collision))


@router.get("", response_model=list[DatasetUploadOut], summary="Your open uploads into the dataset")
def list_dataset_uploads(dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """Newest first, with the chunks held of each file: what a resuming client skips."""
    return [_out(u) for u in services.dataset_uploads.list_open(principal, dataset_id)]


@router.get("/{key}", response_model=DatasetUploadOut, summary="An upload, its files and the chunks held")
def dataset_upload_status(dataset_id: str, key: str, principal: PrincipalDep, services: ServicesDep):
    return _out(services.dataset_uploads.get(principal, dataset_id, key))


@router.put(
    "/{key}/chunks/{number}",
    response_model=DatasetChunkOut,
    responses=errors(410),
    summary="Put a chunk of a file (the raw body)",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def put_dataset_chunk(
    request: Request,
    dataset_id: str,
    key: str,
    principal: PrincipalDep,  # a dependency: authentication answers before the query is checked
    number: int = Path(ge=0, le=10**9),
    path: str = Query(..., min_length=1, max_length=1024, description=PATH_HELP),
    size: int = Query(..., ge=0, le=2**63 - 1, description="The file's size (bytes)."),
    total_chunks: int = Query(..., ge=1, le=10**9, description="How many chunks make the file."),
    chunk_size: int = Query(..., ge=1, le=2**63 - 1, description="Bytes of every chunk but the last."),
    identifier: str | None = Query(
        None, min_length=1, max_length=300, description="What names the file's bytes (default: '{size}-{name}')."
    ),
    md5: str | None = Query(
        None, pattern="^[0-9a-fA-F]{32}$", description="The chunk's MD5, checked as it arrives (optional)."
    ),
):
    """Chunk ``number`` (from 0) of the file ``path``; the file's first chunk fixes its size and chunking. Sending a
    chunk again replaces it. DatasetRwEditor."""
    info = await services_of(request).dataset_uploads.put_chunk(
        principal,
        dataset_id,
        key,
        body_stream(request),
        path=path,
        identifier=identifier or f"{size}-{path.rsplit('/', 1)[-1]}",
        size=size,
        total_chunks=total_chunks,
        chunk_size=chunk_size,
        number=number,
        md5=md5,
    )
    return DatasetChunkOut(number=info.number, size=info.size)


@router.post("/{key}/end", response_model=LandedOut, responses=errors(410), summary="Land the upload's files")
async def end_dataset_upload(request: Request, dataset_id: str, key: str, body: EndIn | None = None):
    """Every file must be complete (else a 400 naming those missing chunks); they land in one transaction with the
    upload's collision setting. Ending again answers the same."""
    services = services_of(request)
    target = body.target if body is not None else ""
    return _landed(await services.dataset_uploads.end(await _principal(request), dataset_id, key, target))


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT, summary="Cancel an upload")
async def cancel_dataset_upload(request: Request, dataset_id: str, key: str):
    """Drops the upload and the chunks it received; an ended upload cannot be cancelled (409)."""
    await services_of(request).dataset_uploads.cancel(await _principal(request), dataset_id, key)
    return Response(status_code=204)
