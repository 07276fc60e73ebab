"""Native routes for chunked upload sessions: start, put chunk (raw body), status, list, complete, abort."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response, status

from modelharbor.api.common import body_stream, services_of
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.files import _principal
from modelharbor.api.native.mapping import file_out, upload_out
from modelharbor.api.native.openapi import errors

router = APIRouter(tags=["uploads"], route_class=JsonRoute)


@router.post("/uploads", status_code=status.HTTP_201_CREATED, response_model=schemas.UploadOut)
def start_upload(body: schemas.UploadStartIn, services: ServicesDep, principal: PrincipalDep):
    """Open a session for a file sent in ``total_chunks`` chunks (numbered from 0, any order, in parallel).

    With ``sha256`` and ``size`` of content your organisation already holds, the file is made at once: the session
    answers ``state: "completed"``, ``file_id`` and ``deduplicated: true``, and no chunk is to be sent."""
    session = services.uploads.start(
        principal,
        name=body.name,
        total_chunks=body.total_chunks,
        size=body.size,
        context=body.context,
        chunk_size=body.chunk_size,
        fingerprint=body.fingerprint,
        sha256=body.sha256,
    )
    return upload_out(session)


@router.get("/uploads", response_model=list[schemas.UploadOut])
def list_uploads(
    services: ServicesDep,
    principal: PrincipalDep,
    name: str | None = None,
    size: int | None = Query(None, ge=0, le=2**63 - 1),
    fingerprint: str | None = Query(None, pattern=schemas.HEX_SHA256),
):
    """Your open sessions, newest first. To resume, look one up by name, size and fingerprint, and cut the file by
    its ``chunk_size``."""
    found = services.uploads.list_open(principal, name=name, size=size, fingerprint=fingerprint)
    return [upload_out(u) for u in found]


@router.get("/uploads/{upload_id}", response_model=schemas.UploadOut)
def upload_status(upload_id: str, services: ServicesDep, principal: PrincipalDep):
    """Which chunks and how many bytes the server holds."""
    return upload_out(services.uploads.status(principal, upload_id))


@router.put(
    "/uploads/{upload_id}/chunks/{number}",
    response_model=schemas.ChunkOut,
    responses=errors(410),
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def put_chunk(request: Request, upload_id: str, number: int = Path(ge=0)):
    """Store chunk ``number`` from the raw body; sending a chunk again replaces it."""
    services = services_of(request)
    chunk = await services.uploads.put_chunk(await _principal(request), upload_id, body_stream(request), number=number)
    return schemas.ChunkOut(number=chunk.number, size=chunk.size)


@router.post("/uploads/{upload_id}/complete", response_model=schemas.CompleteOut, responses=errors(410))
async def complete_upload(request: Request, upload_id: str):
    """Assemble and verify; refuses while chunks are missing (listing them). Idempotent."""
    services = services_of(request)
    done = await services.uploads.complete(await _principal(request), upload_id)
    return schemas.CompleteOut(upload=upload_out(done.session), file=file_out(done.file), result=done.result)


@router.delete("/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
async def abort_upload(request: Request, upload_id: str):
    services = services_of(request)
    await services.uploads.abort(await _principal(request), upload_id)
    return Response(status_code=204)
