"""Kore.ai routes: ``public`` (mounted at ``/api/public``, ``x-api-key``) and ``media`` (``/api/getMediaStream``,
signed links). Each parses the vendor's request, makes one core call and renders the vendor's answer (mapping.py).

Plain ``def`` routes make a sync core call (FastAPI runs them in its threadpool); ``async def`` routes stream or read
a body, and put their sync core call through ``run_in_threadpool``. A media URL is signed here (``_file_answer``:
an HMAC over the file, no state) and its answer shaped by ``mapping.media_answer``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import body_stream, file_response, public_base, request_parts, services_of
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.kore import PrincipalDep
from modelharbor.api.dialects.kore import mapping as m
from modelharbor.api.dialects.kore.inputs import deploy_settings
from modelharbor.api.jsonbody import blank, loads, read_body
from modelharbor.api.multipart import MultipartError, Part
from modelharbor.api.params import Wording, flag, int_param, json_value
from modelharbor.core.catalogue import DEPLOY, EXPORT, UNDEPLOY
from modelharbor.core.files import ChunkIn
from modelharbor.core.files.purposes import MEDIA_EXTENSIONS
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import InvalidInput, LinkInvalid, NotFound

public = APIRouter()
media = APIRouter()

FIELD_LIMIT = 4096
START_BODY_LIMIT = 65536

# Kore.ai's messages for the values api/params.py reads
START_FIELD = Wording(
    missing="field {name!r} is required and must be an integer",
    invalid="field {name!r} must be an integer, not {value!r}",
    out_of_range="field {name!r} must be ≥ {low}",
)
ADAPTER = Wording(invalid="{name} must be {spelled}, not {value!r}")
CHUNK = Wording(
    missing="form field {name!r} is required",
    invalid="{name} {value!r} is not an integer",
    out_of_range="{name} {value!r} is negative",
    code="INVALID_CHUNK_NUMBER",
)
chunk_number = partial(int_param, name="chunkNumber", required=True, low=0, high=None, wording=CHUNK)


# --- multipart and form parsing -------------------------------------------------------------------


async def _form(request: Request, *, required: bool = True) -> AsyncIterator[Part] | None:
    """The request's parts, whatever Content-Type claims (the vendor's sample sends application/json with a
    multipart body). None when the body is not multipart and ``required`` is False."""
    parts = await request_parts(request)
    if parts is None and required:
        raise MultipartError("expected multipart form data with a 'file' part")
    return parts


async def _field(part: Part) -> str:
    try:
        return (await part.read_all(FIELD_LIMIT)).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput(f"form field {part.name!r} is not UTF-8 text") from None


async def _rest_fields(parts: AsyncIterator[Part], fields: dict[str, str]) -> None:
    async for part in parts:
        if part.filename is None:
            fields.setdefault(part.name, await _field(part))
        else:
            await part.drain()


async def _chunk_from_form(request: Request, parts) -> ChunkIn | None:
    """The form's ``file`` part as chunk ``chunkNumber`` (a field before or after it); None when the form has no file
    part. The rest of the form is read once the chunk is stored."""
    fields: dict[str, str] = {}
    async for part in parts:
        if part.name == "file":

            async def number_after() -> int:
                await _rest_fields(parts, fields)
                return chunk_number(fields.get("chunkNumber"))

            known = fields.get("chunkNumber")
            return ChunkIn(
                part.stream(),
                number=chunk_number(known) if known is not None else None,
                number_after=None if known is not None else number_after,
                max_size=services_of(request).settings.kore_max_chunk_size,
                rest=lambda: _rest_fields(parts, fields),
            )
        if part.filename is None:
            fields.setdefault(part.name, await _field(part))
        else:
            await part.drain()
    return None


async def _start_fields(request: Request) -> dict:
    """The start fields from JSON (documented), or leniently from a form."""
    ctype = request.headers.get("content-type", "")
    if "multipart/" in ctype or "boundary=" in ctype:
        parts = await _form(request)
        fields: dict[str, str] = {}
        await _rest_fields(parts, fields)
        return fields
    raw = await read_body(request, limit=START_BODY_LIMIT, what="the session start body")
    if "application/x-www-form-urlencoded" in ctype:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    body = {} if blank(raw) else loads(raw)  # JSON with fileContext, totalChunks, fileExtension, fileName, fileSize
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _req_str(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"field {key!r} is required and must be a non-empty string")
    return value.strip()


def _count(body: dict, key: str, low: int) -> int:
    """``totalChunks``/``fileSize``: an integer, or its digits as a string (form-posting clients)."""
    return int_param(
        body.get(key), key, required=True, low=low, high=None, blank_is_missing=False, digits=True, wording=START_FIELD
    )


def _file_answer(request: Request, record: FileRecord) -> dict:
    """``{url, fileId}``: the record's media URL, signed for ``LINK_TTL`` over its stored name and file name."""
    services = services_of(request)
    stored = m.stored_name(record.id, record.extension)
    link = services.signer.sign(record.id, services.settings.link_ttl, extra=m.link_extra(stored, "false", record.name))
    return m.media_answer(public_base(request), record, link)


def _core_model_id(model_id: str) -> str:
    core_id = m.strip_prefix(model_id, m.MODEL_PREFIX)
    if core_id is None:
        raise NotFound(f"model {model_id!r} not found")
    return core_id


# --- /api/public: files and upload sessions -------------------------------------------------------


@public.post("/files")
async def upload_file(request: Request, principal: PrincipalDep, services: ServicesDep):
    """Mode 1: one multipart ``file`` (a media extension: the core refuses others) with its ``fileContext``."""
    parts = await _form(request)
    fields: dict[str, str] = {}
    async for part in parts:
        if part.name == "file":
            if not part.filename:
                raise InvalidInput("the 'file' part needs a filename")
            ext = part.filename.rsplit(".", 1)[-1].lower() if "." in part.filename else ""

            async def context() -> str:
                await _rest_fields(parts, fields)
                if not fields.get("fileContext"):
                    raise InvalidInput("form field 'fileContext' is required")
                return fields["fileContext"]

            record = await services.files.upload(
                principal,
                name=part.filename,
                data=part.stream(),
                extension=ext,
                file_extensions=MEDIA_EXTENSIONS,  # checked before a byte is read
                context=fields["fileContext"] if fields.get("fileContext") else context,
                max_size=services.settings.kore_max_file_size,
            )
            return _file_answer(request, record)
        if part.filename is None:
            fields.setdefault(part.name, await _field(part))
        else:
            await part.drain()
    raise InvalidInput("expected multipart form data with a 'file' part")


@public.post("/files/session/start")
async def start_session(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await _start_fields(request)
    context = _req_str(body, "fileContext")
    ext = _req_str(body, "fileExtension").lower().lstrip(".")
    name = _req_str(body, "fileName")
    total = _count(body, "totalChunks", 1)
    size = _count(body, "fileSize", 0)
    is_adapter = flag(body.get("isAdapter", False), "isAdapter", loose=False, blank_is_default=False, wording=ADAPTER)
    # the context picks the purpose (``model``: a model import, with its extensions); plain files are media
    opened = await run_in_threadpool(
        lambda: services.uploads.open(
            principal,
            name=name,
            total_chunks=total,
            size=size,
            context=context,
            extension=ext,
            options={"is_adapter": is_adapter},
            file_extensions=MEDIA_EXTENSIONS,
        )
    )
    answer = {"sessionId": opened.session.id, "expirationDate": m.iso(opened.session.expires_at)}
    if "model_id" in opened.result:
        answer["modelId"] = m.model_id_out(opened.result["model_id"])
    return answer


@public.post("/files/session/{session_id}")
async def upload_chunk(session_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/octet-stream") and "chunkNumber" in request.query_params:
        chunk = ChunkIn(
            body_stream(request),
            number=chunk_number(request.query_params["chunkNumber"]),
            max_size=services.settings.kore_max_chunk_size,
        )
    else:
        chunk = await _chunk_from_form(request, await _form(request))
        if chunk is None:
            raise InvalidInput("expected multipart form data with a 'file' part")
    stored = await services.uploads.receive(principal, session_id, chunk)
    return {"chunkNumber": str(stored.number), "sessionId": session_id}


@public.post("/files/session/{session_id}/complete")
async def complete_session(session_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    parts = await _form(request, required=False)
    # a final chunk may ride along (one vendor page documents that)
    last = await _chunk_from_form(request, parts) if parts is not None else None
    done = await services.uploads.complete(principal, session_id, last_chunk=last)
    if done.result.get("task_id"):  # a model import's
        dock = m.dock_id_out(done.result["task_id"])
        return {
            "dock-statusId": dock,
            "dockStatusId": dock,
            "modelId": m.model_id_out(done.result["model_id"]),
            "jobType": "MODELS",
            "action": "IMPORT",
            "status": "IN_PROGRESS",
        }
    return _file_answer(request, done.file)


# --- /api/public: dock status and jobs on imported models -----------------------------------------


@public.get("/dock-status/{dock_id}")
def dock_status(dock_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    task_id = m.strip_prefix(dock_id, m.DOCK_PREFIX)
    if task_id is None:
        raise NotFound(f"dock status {dock_id!r} not found")
    job = services.model_jobs.status(principal, task_id)
    url = _file_answer(request, job.archive)["url"] if job.archive is not None else None
    return m.dock_status(dock_id, job.task, url)


@public.post("/models/{model_id}/export")
def export_model(model_id: str, principal: PrincipalDep, services: ServicesDep):
    task = services.model_jobs.start(principal, _core_model_id(model_id), EXPORT)
    return m.job_started(task, model_id, EXPORT)


@public.post("/models/{model_id}/deploy")
async def deploy_model(model_id: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    core_id = _core_model_id(model_id)
    body = await json_value(request, required=False)
    if request.query_params.get("modelType") not in (None, "openSource", "fineTune"):
        raise InvalidInput("modelType must be openSource or fineTune")
    settings = partial(deploy_settings, body)  # read once the model is found and ready (the vendor's order)
    task = await run_in_threadpool(services.model_jobs.start, principal, core_id, DEPLOY, settings)
    return m.job_started(task, model_id, DEPLOY)


@public.post("/models/{model_id}/undeploy")
def undeploy_model(model_id: str, principal: PrincipalDep, services: ServicesDep):
    task = services.model_jobs.start(principal, _core_model_id(model_id), UNDEPLOY)
    return m.job_started(task, model_id, UNDEPLOY)


# --- /api/getMediaStream: signed media links (the signature is the credential) -------------------


@media.get("/orgFiles/{stored}", operation_id="get_media")
@media.head("/orgFiles/{stored}", operation_id="head_media")
async def media_file(stored: str, request: Request, services: ServicesDep):
    q = request.query_params
    file_id = m.file_id_of(stored)
    e, n, s = q.get("e"), q.get("n"), q.get("s")
    delete, file_name = q.get("del", "false"), q.get("fileName", "")
    mac = m.decode_signature(s) if s else None
    if file_id is None or not e or not n or mac is None:
        raise LinkInvalid("the media URL is missing or has a malformed signature (e, n, s)")
    record, rng, stream = await services.files.open(
        None, file_id, request.headers.get("range"), link=(e, n, mac, m.link_extra(stored, delete, file_name))
    )
    return file_response(record, rng, stream, head=request.method == "HEAD", download_name=file_name or None)
