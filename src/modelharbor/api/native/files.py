"""Native routes for files: single streamed upload, list, get, delete, content (ranges, HEAD), signed links."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status

from modelharbor.api.common import bearer_token, body_stream, file_response, principal_of_key, public_base, services_of
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep, get_principal
from modelharbor.api.native.mapping import file_detail_out, file_out
from modelharbor.api.native.openapi import KEY_OR_SIGNED_LINK
from modelharbor.domain.errors import InvalidInput, LinkInvalid

router = APIRouter(tags=["files"], route_class=JsonRoute)


@router.post(
    "/files",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.FileOut,
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def upload_file(
    request: Request, name: str = Query(..., min_length=1, max_length=1024), context: str = Query("", max_length=200)
):
    """Upload a whole file as the raw request body (streamed; up to MAX_SINGLE_UPLOAD_SIZE)."""
    services = services_of(request)
    principal = await _principal(request)
    record = await services.files.upload(principal, name=name, context=context, data=body_stream(request))
    return file_out(record)


@router.get("/files", response_model=schemas.FileList)
def list_files(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**63 - 1),
    context: str | None = None,
    all_files: bool = Query(False, alias="all"),
):
    """The organisation's files, newest first. Internal files (deployment and environment packages, export and
    import zips: what the server keeps for its own objects) only with ``all=true`` or when ``context`` names theirs."""
    page = services.files.list(principal, limit=limit, offset=offset, context=context, include_internal=all_files)
    return schemas.FileList(items=[file_out(f) for f in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/files/{file_id}", response_model=schemas.FileDetailOut)
def get_file(file_id: str, services: ServicesDep, principal: PrincipalDep):
    """One file, with every object that uses it (``used_by``)."""
    return file_detail_out(services.files.detail(principal, file_id))


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_file(file_id: str, request: Request):
    services = services_of(request)
    await services.files.delete(await _principal(request), file_id)
    return Response(status_code=204)


@router.get(
    "/files/{file_id}/content",
    response_class=Response,
    operation_id="get_file_content",
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "A range"}},
    openapi_extra=KEY_OR_SIGNED_LINK,
)
@router.head(
    "/files/{file_id}/content",
    response_class=Response,
    operation_id="head_file_content",
    responses={206: {"description": "A range"}},
    openapi_extra=KEY_OR_SIGNED_LINK,
)
async def file_content(
    file_id: str,
    request: Request,
    expires: str | None = None,
    nonce: str | None = None,
    signature: str | None = None,
):
    """The file's bytes. Authenticate with a Bearer key, or with the query of a signed link. Honours Range."""
    services = services_of(request)
    if signature is not None or expires is not None or nonce is not None:
        if not (signature and expires and nonce):
            raise LinkInvalid("a signed link needs expires, nonce and signature")
        try:
            mac = bytes.fromhex(signature)
        except ValueError:
            raise LinkInvalid("the link's signature is invalid; ask for a new link") from None
        record, rng, stream = await services.files.open(
            None, file_id, request.headers.get("range"), link=(expires, nonce, mac, "")
        )
    else:
        record, rng, stream = await services.files.open(
            await _principal(request), file_id, request.headers.get("range")
        )
    return file_response(record, rng, stream, head=request.method == "HEAD")


@router.post("/files/{file_id}/links", response_model=schemas.LinkOut)
def create_link(
    file_id: str, request: Request, services: ServicesDep, principal: PrincipalDep, body: schemas.LinkIn | None = None
):
    """A signed, expiring URL that downloads the file without credentials."""
    settings = services.settings
    ttl = (body.expires_in if body and body.expires_in else None) or settings.link_ttl
    if ttl > settings.max_link_ttl:
        raise InvalidInput(f"expires_in may be at most {settings.max_link_ttl} seconds", field="expires_in")
    _, link = services.files.sign_link(principal, file_id, ttl)
    query = urlencode({"expires": link.expires, "nonce": link.nonce, "signature": link.signature})
    return schemas.LinkOut(
        url=f"{public_base(request)}/api/v1/files/{file_id}/content?{query}",
        expires_at=datetime.fromtimestamp(link.expires, UTC),
    )


async def _principal(request: Request):
    """Authenticate inside an async route (streaming routes cannot use the sync dependency)."""
    token = bearer_token(request)
    if token is None:
        return get_principal(request)  # raises the 401 with guidance
    return await principal_of_key(services_of(request), token)  # on the loop when verified a moment ago
