"""The Domino client's resumable dataset upload (``datasets_upload_files``, spec §5.5), mounted at ``/v4``:
``snapshot/file/start`` → the upload key (a JSON string); per chunk ``snapshot/file/test`` (204: send it, 200: the
server has it) and ``snapshot/file`` (multipart, one part whose field name is the relative path); then
``snapshot/file/end/{key}`` lands the files, or ``snapshot/file/cancel/{key}`` drops them. Chunks are numbered from
1 on this wire (from 0 in the core). Each route parses, makes one core call (core/dataset_uploads.py) and maps."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import body_stream, request_parts
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping_datasets
from modelharbor.api.params import field, int_param, json_object
from modelharbor.domain.errors import InvalidInput

router = APIRouter()  # /v4
FILE = "/datasetrw/datasets/{dataset_id}/snapshot/file"
IDENTIFIER = re.compile(r"([0-9]{1,19})-.+", re.S)
MAX_NUMBER = 10**9


def _required(q, name: str) -> str:
    value = q.get(name)
    if not value:
        raise InvalidInput(f"'{name}' is required", field=name)
    return value


def _chunk(q) -> tuple[int, int]:
    """The chunk number (from 1 on the wire, from 0 returned) and the chunk count."""
    total = int_param(q.get("resumableTotalChunks"), "resumableTotalChunks", low=1, high=MAX_NUMBER, required=True)
    number = int_param(q.get("resumableChunkNumber"), "resumableChunkNumber", low=1, high=MAX_NUMBER, required=True)
    if number > total:
        raise InvalidInput(
            f"'resumableChunkNumber' {number} is out of range: the file has {total} chunk(s), numbered from 1",
            field="resumableChunkNumber",
        )
    return number - 1, total


def _size(q, identifier: str) -> int:
    """The file's size: ``resumableTotalSize`` when sent, else the client's identifier ``{size}-{filename}``."""
    if q.get("resumableTotalSize") not in (None, ""):
        return int_param(q.get("resumableTotalSize"), "resumableTotalSize", low=0, high=None, digits=True)
    m = IDENTIFIER.fullmatch(identifier)
    if m is None:
        raise InvalidInput(
            "'resumableIdentifier' must be '{size}-{filename}' (or send resumableTotalSize)",
            field="resumableIdentifier",
        )
    return int(m.group(1))


@router.post(FILE + "/start")
async def start_upload(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """``{filePaths: [], fileCollisionSetting}`` → the upload key, a JSON string."""
    body = await json_object(request, required=False)
    collision = field(body, "fileCollisionSetting", str) or "Ignore"
    field(body, "filePaths", list)
    upload = await run_in_threadpool(services.dataset_uploads.start, principal, dataset_id, collision)
    return upload.key


@router.get(FILE + "/test")
def test_chunk(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """204: send this chunk; 200: the server holds it already (from an earlier, unfinished upload)."""
    q = request.query_params
    number, _ = _chunk(q)
    held = services.dataset_uploads.has_chunk(
        principal,
        dataset_id,
        _required(q, "key"),
        _required(q, "resumableIdentifier"),
        number,
        _required(q, "checksum"),
    )
    return Response(status_code=200 if held else 204)


@router.post(FILE)
async def upload_chunk(request: Request, dataset_id: str, principal: PrincipalDep, services: ServicesDep):
    """One chunk: multipart/form-data whose one file part is named by the relative path (a raw body is taken
    too); ``checksum`` is its MD5, checked as it arrives."""
    q = request.query_params
    number, total = _chunk(q)
    identifier = _required(q, "resumableIdentifier")
    chunk_size = int_param(q.get("resumableChunkSize"), "resumableChunkSize", low=1, high=None, required=True)
    parts = await request_parts(request)
    path = q.get("resumableRelativePath")
    part = None
    if parts is not None:
        async for candidate in parts:
            if candidate.filename is not None:
                part = candidate
                break
            await candidate.drain()
        if part is None:
            raise InvalidInput("the form has no file part: send the chunk as a file field named by its relative path")
        path = path or part.name
    if not path:
        raise InvalidInput("'resumableRelativePath' is required", field="resumableRelativePath")
    info = await services.dataset_uploads.put_chunk(
        principal,
        dataset_id,
        _required(q, "key"),
        part.stream() if part is not None else body_stream(request),
        path=path,
        identifier=identifier,
        size=_size(q, identifier),
        total_chunks=total,
        chunk_size=chunk_size,
        number=number,
        md5=q.get("checksum") or None,
    )
    if parts is not None:
        async for rest in parts:
            await rest.drain()
    return {"resumableChunkNumber": info.number + 1, "size": info.size}


@router.get(FILE + "/end/{key}")
async def end_upload(
    request: Request, dataset_id: str, key: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """Land the upload's files in the dataset's read-write head (under ``targetRelativePath``)."""
    target = request.query_params.get("targetRelativePath") or ""
    return mapping_datasets.landed(await services.dataset_uploads.end(principal, dataset_id, key, target))


@router.get(FILE + "/cancel/{key}")
async def cancel_upload(dataset_id: str, key: str, principal: PrincipalDep, services: ServicesDep):
    await services.dataset_uploads.cancel(principal, dataset_id, key)
    return {"key": key, "cancelled": True}
