"""MLflow proxied-artifact routes (``/api/2.0/mlflow-artifacts/...``): upload, download, list, delete, multipart."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from modelharbor.api.dialects.mlflow.common import PrincipalDep, ServicesDep, json_body
from modelharbor.domain.errors import InvalidInput, LinkInvalid

router = APIRouter()


@router.get("/artifacts")
async def list_artifacts(request: Request, principal: PrincipalDep, services: ServicesDep):
    entries = await asyncio.to_thread(services.artifacts.list, principal, request.query_params.get("path"))
    files: list[dict[str, Any]] = []
    for e in entries:
        item: dict[str, Any] = {"path": e.path, "is_dir": e.is_dir}
        if e.file_size is not None:
            item["file_size"] = e.file_size
        files.append(item)
    return {"files": files}


@router.put("/artifacts/{path:path}")
async def upload_artifact(path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    await services.artifacts.put(principal, path, request.stream())
    return {}


@router.get("/artifacts/{path:path}")
async def download_artifact(path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    record, rng, stream = await services.artifacts.open(principal, path, request.headers.get("range"))
    headers = {"accept-ranges": "bytes", "content-disposition": f'attachment; filename="{path.rsplit("/", 1)[-1]}"'}
    if rng is None:
        headers["content-length"] = str(record.size)
        return StreamingResponse(stream, media_type=record.content_type, headers=headers)
    headers["content-length"] = str(rng.length)
    headers["content-range"] = f"bytes {rng.start}-{rng.end - 1}/{record.size}"
    return StreamingResponse(stream, status_code=206, media_type=record.content_type, headers=headers)


@router.delete("/artifacts/{path:path}")
async def delete_artifact(path: str, principal: PrincipalDep, services: ServicesDep):
    await services.artifacts.delete(principal, path)
    return {}


# --- multipart upload: parts go to signed URLs on this server --------------------------------
# The URL names the artifact directory; the body's ``path`` is the client's local file, whose base name is the
# artifact's name (as MLflow's own server does).


def _target(directory: str, body: dict[str, Any]) -> str:
    local = body.get("path")
    if not isinstance(local, str) or not local:
        raise InvalidInput("missing value for required parameter 'path'")
    name = local.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return f"{directory.rstrip('/')}/{name}" if directory.strip("/") else name


@router.post("/mpu/create/{path:path}")
async def create_multipart(path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_body(request)
    num_parts = body.get("num_parts", 1)
    if not isinstance(num_parts, int):
        raise InvalidInput("num_parts must be an integer")
    upload_id, links = await asyncio.to_thread(
        services.artifacts.create_multipart, principal, _target(path, body), num_parts
    )
    return {
        "upload_id": upload_id,
        "credentials": [
            {
                "url": f"{request.url_for('upload_part', upload_id=upload_id, part_number=str(n))}?{query}",
                "part_number": n,
                "headers": {},
            }
            for n, query in links
        ],
    }


@router.put("/mpu/part/{upload_id}/{part_number}")
async def upload_part(upload_id: str, part_number: int, request: Request, services: ServicesDep):
    q = request.query_params
    try:
        mac = bytes.fromhex(q.get("sig", ""))
    except ValueError:
        raise LinkInvalid("the part URL's signature is malformed") from None
    await services.artifacts.put_part(
        upload_id, part_number, q.get("expires", ""), q.get("nonce", ""), mac, request.stream()
    )
    return {}


@router.post("/mpu/complete/{path:path}")
async def complete_multipart(path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_body(request)
    await services.artifacts.complete_multipart(principal, _target(path, body), str(body.get("upload_id", "")))
    return {}


@router.post("/mpu/abort/{path:path}")
async def abort_multipart(path: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_body(request)
    await services.artifacts.abort_multipart(principal, _target(path, body), str(body.get("upload_id", "")))
    return {}
