"""UFDL's pretrained models (``/v1/pretrained-models``): list (FilterSpec), create, read, change, soft delete,
reinstate, hard delete, and the model's data (set from the raw body, delete, download).

Anyone in the organisation lists, reads and downloads; its admins change. Each route makes one catalogue call,
which checks in DRF's order (403, then 404, then the request's own problems: see core/catalogue/pretrained.py); a
body's fields are read by api/catalogue_inputs.py, every field's fault answered together.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.catalogue_inputs import model_in
from modelharbor.api.common import body_stream
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ufdl import PrincipalDep
from modelharbor.api.dialects.ufdl.mapping import model_out
from modelharbor.api.dialects.ufdl.routes import Router, json_body, read_later
from modelharbor.api.filterspec import parse_filter_spec
from modelharbor.domain.errors import InvalidInput, UnsupportedType

router = Router(prefix="/pretrained-models")
MISSING_FILENAME = "Missing filename. Request should include a Content-Disposition header with a filename parameter."
DATA_FILENAME = "model.data"
DATA_MEDIA_TYPE = "application/data"


# --- request checks -------------------------------------------------------------------------------
def upload_filename(header: str | None) -> str | None:
    """The ``filename`` (or RFC 2231 ``filename*``) of a Content-Disposition header; None if absent or empty."""
    if not header or len(header) > 8192:
        return None
    msg = Message()
    try:
        msg["content-disposition"] = header
        name = msg.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    return name.strip() if isinstance(name, str) and name.strip() else None


def _kind(v: Any) -> str:
    return {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(v), type(v).__name__)


def _bad_argument(parameter: str, expected: str, value: Any) -> InvalidInput:
    # UFDL's BadArgumentType wording
    return InvalidInput(
        f"The type passed to download parameter '{parameter}' should be '{expected}', but received '{value}'",
        code="BAD_ARGUMENT_TYPE",
    )


def check_download_body(body: Any) -> None:
    """``{"filetype": "data", "params": {str: str | [str]}}``, both optional; params are ignored."""
    if body is None:
        return
    if not isinstance(body, dict):
        raise InvalidInput(f"Invalid data. Expected a dictionary, but got {_kind(body)}.", code="BAD_ARGUMENT_TYPE")
    params = body.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
        for k, v in params.items()
    ):
        raise _bad_argument("params", "mapping from strings to strings/arrays of strings", params)
    filetype = body.get("filetype", "data")
    if not isinstance(filetype, str):
        raise _bad_argument("filetype", "string", filetype)
    if filetype != "data":
        raise UnsupportedType(f'Unsupported media type "{filetype}" in request.')


# --- models ---------------------------------------------------------------------------------------
@router.post("/list")
async def list_models(request: Request, principal: PrincipalDep, services: ServicesDep):
    query = parse_filter_spec(await json_body(request))
    return [model_out(x) for x in await run_in_threadpool(services.catalogue.list_models, principal, query)]


@router.post("/create", status_code=201)
async def create_model(request: Request, principal: PrincipalDep, services: ServicesDep):
    fields = model_in(await json_body(request, {}), partial=False)
    return model_out(await run_in_threadpool(services.catalogue.create_model, principal, fields))


@router.get("/{pk:int}")
def get_model(pk: int, principal: PrincipalDep, services: ServicesDep):
    return model_out(services.catalogue.get_model(principal, pk))


@router.put("/{pk:int}")
async def replace_model(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: model_in(read(), partial=False)  # noqa: E731
    return model_out(
        await run_in_threadpool(services.catalogue.update_model_from, principal, pk, fields, partial=False)
    )


@router.patch("/{pk:int}")
async def patch_model(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: model_in(read(), partial=True)  # noqa: E731
    return model_out(await run_in_threadpool(services.catalogue.update_model_from, principal, pk, fields, partial=True))


@router.delete("/{pk:int}", status_code=204)
def delete_model(pk: int, principal: PrincipalDep, services: ServicesDep):
    """A soft delete (reinstate undoes it); idempotent."""
    services.catalogue.soft_delete(principal, pk)
    return Response(status_code=204)


@router.delete("/{pk:int}/hard")
async def hard_delete_model(pk: int, principal: PrincipalDep, services: ServicesDep):
    """Gone for good, with its data; answers the model as it was."""
    return model_out(await services.catalogue.hard_delete(principal, pk))


@router.delete("/{pk:int}/reinstate")
@router.post("/{pk:int}/reinstate")
def reinstate_model(pk: int, principal: PrincipalDep, services: ServicesDep):
    return model_out(services.catalogue.reinstate(principal, pk))


# --- data -----------------------------------------------------------------------------------------
@router.post("/{pk:int}/data")
async def set_data(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    """The raw body is the data, stored as sent (a multipart body too, envelope included, as UFDL does) and served
    as ``model.data``; UFDL requires a filename in ``Content-Disposition`` all the same."""
    named = upload_filename(request.headers.get("content-disposition")) is not None

    def read():
        if not named:
            raise InvalidInput(MISSING_FILENAME)
        return body_stream(request)

    return model_out(await services.catalogue.set_data_from(principal, pk, read, filename=DATA_FILENAME))


@router.delete("/{pk:int}/data")
async def delete_data(pk: int, principal: PrincipalDep, services: ServicesDep):
    return model_out(await services.catalogue.delete_data(principal, pk))


@router.post("/{pk:int}/download")
async def download(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    """``application/data`` as ``model.data``; a model without data answers 200 with an empty body."""
    _model, record, _range, stream = await services.catalogue.open_data(principal, pk)
    check_download_body(await json_body(request))  # after the lookup, as UFDL does; the stream is lazy
    headers = {"Content-Disposition": f'attachment; filename="{DATA_FILENAME}"'}
    if stream is None:
        return Response(b"", media_type=DATA_MEDIA_TYPE, headers=headers)
    headers["Content-Length"] = str(record.size)
    return StreamingResponse(stream, media_type=DATA_MEDIA_TYPE, headers=headers)
