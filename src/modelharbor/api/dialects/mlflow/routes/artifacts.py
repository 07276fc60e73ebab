"""MLflow proxied-artifact routes (``/api/2.0/mlflow-artifacts/...``): upload, download, list, delete, multipart.

Bytes stream through the core's async artifact methods (``services.artifacts``: put, open, put_part, …), so those
routes are ``async def``; listing and starting a multipart upload are plain calls in FastAPI's threadpool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.mlflow import PrincipalDep
from modelharbor.api.dialects.mlflow.mapping import MALFORMED_REQUEST, file_info_json
from modelharbor.api.params import json_object
from modelharbor.domain.errors import InvalidInput, LinkInvalid

router = APIRouter()


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request, required=False, code=MALFORMED_REQUEST)


BodyDep = Annotated[dict[str, Any], Depends(_body)]  # after the principal: no credentials is a 401 first


@router.get("/artifacts")
def list_artifacts(request: Request, principal: PrincipalDep, services: ServicesDep):
    entries = services.artifacts.list(principal, request.query_params.get("path"))
    return {"files": [file_info_json(e) for e in entries]}


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
def create_multipart(path: str, request: Request, principal: PrincipalDep, services: ServicesDep, body: BodyDep):
    num_parts = body.get("num_parts", 1)
    if not isinstance(num_parts, int):
        raise InvalidInput("num_parts must be an integer")
    upload_id, links = services.artifacts.create_multipart(principal, _target(path, body), num_parts)
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
    """Authenticated by the signed URL ``mpu/create`` answered (the core checks it), not by a header."""
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
async def complete_multipart(path: str, principal: PrincipalDep, services: ServicesDep, body: BodyDep):
    await services.artifacts.complete_multipart(principal, _target(path, body), str(body.get("upload_id", "")))
    return {}


@router.post("/mpu/abort/{path:path}")
async def abort_multipart(path: str, principal: PrincipalDep, services: ServicesDep, body: BodyDep):
    await services.artifacts.abort_multipart(principal, _target(path, body), str(body.get("upload_id", "")))
    return {}
