"""Kore.ai routes: each parses the vendor's request, makes one core call and renders the vendor's answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from modelharbor.api import failures
from modelharbor.api.common import body_stream, file_response, public_base, request_parts, services_of
from modelharbor.api.dialects.kore import mapping as m
from modelharbor.api.jsonbody import blank, loads, read_body, read_json
from modelharbor.api.multipart import MultipartError, Part
from modelharbor.core.catalogue import DEPLOY, EXPORT, UNDEPLOY
from modelharbor.core.catalogue.model_jobs import KINDS as JOB_ACTIONS
from modelharbor.core.files import ChunkIn
from modelharbor.domain.errors import (
    HarborError,
    InvalidInput,
    LinkInvalid,
    NotFound,
    RangeNotSatisfiable,
    Unauthenticated,
    UnsupportedType,
)
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

FIELD_LIMIT = 4096


def mounts(services: Services) -> list[Mount]:
    return [Mount("/api/public", app=_public_app(services)), Mount("/api/getMediaStream", app=_media_app(services))]


def _base_app(services: Services) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.services = services
    failures.install(app, m.internal_error)

    @app.exception_handler(HarborError)
    async def _harbor(request: Request, exc: HarborError):
        response = m.render_error(exc, request.path_params.get("session_id"))
        if isinstance(exc, RangeNotSatisfiable) and "size" in exc.details:
            response.headers["content-range"] = f"bytes */{exc.details['size']}"
        return response

    @app.exception_handler(MultipartError)
    async def _multipart(_r: Request, exc: MultipartError):
        return m.error_response(400, str(exc), "BAD_REQUEST")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError):
        return m.error_response(400, "; ".join(str(e.get("msg")) for e in exc.errors()), "BAD_REQUEST")

    @app.exception_handler(404)
    async def _nf(_r: Request, _e):
        return m.error_response(404, "no such Kore.ai API route", "NOT_FOUND")

    @app.exception_handler(405)
    async def _405(_r: Request, _e):
        return m.error_response(405, "method not allowed on this route", "METHOD_NOT_ALLOWED")

    return app


async def _principal(request: Request) -> Principal:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise Unauthenticated("send your API key in the 'x-api-key' header")
    return await run_in_threadpool(services_of(request).identity.authenticate_key, key)


# --- multipart helpers ----------------------------------------------------------------------------


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


def _chunk_number(raw: str | None) -> int:
    if raw is None or raw == "":
        raise InvalidInput("form field 'chunkNumber' is required", code="INVALID_CHUNK_NUMBER")
    try:
        n = int(raw)
    except ValueError:
        raise InvalidInput(f"chunkNumber {raw!r} is not an integer", code="INVALID_CHUNK_NUMBER") from None
    if n < 0:
        raise InvalidInput(f"chunkNumber {raw!r} is negative", code="INVALID_CHUNK_NUMBER")
    return n


async def _chunk_from_form(request: Request, parts) -> ChunkIn | None:
    """The form's ``file`` part as chunk ``chunkNumber`` (a field before or after it); None when the form has no file
    part. The rest of the form is read once the chunk is stored."""
    fields: dict[str, str] = {}
    async for part in parts:
        if part.name == "file":

            async def number_after() -> int:
                await _rest_fields(parts, fields)
                return _chunk_number(fields.get("chunkNumber"))

            known = fields.get("chunkNumber")
            return ChunkIn(
                part.stream(),
                number=_chunk_number(known) if known is not None else None,
                number_after=None if known is not None else number_after,
                max_size=services_of(request).settings.kore_max_chunk_size,
                rest=lambda: _rest_fields(parts, fields),
            )
        if part.filename is None:
            fields.setdefault(part.name, await _field(part))
        else:
            await part.drain()
    return None


# --- /api/public ----------------------------------------------------------------------------------


def _public_app(services: Services) -> FastAPI:
    app = _base_app(services)

    @app.post("/files")
    async def upload_file(request: Request):
        principal = await _principal(request)
        parts = await _form(request)
        fields: dict[str, str] = {}
        async for part in parts:
            if part.name == "file":
                if not part.filename:
                    raise InvalidInput("the 'file' part needs a filename")
                ext = part.filename.rsplit(".", 1)[-1].lower() if "." in part.filename else ""
                if ext not in m.MEDIA_EXTENSIONS:
                    raise UnsupportedType(
                        f"file type {ext or '(none)'!r} is not supported; allowed: "
                        + ", ".join(sorted(m.MEDIA_EXTENSIONS)),
                        code="UNSUPPORTED_FILE_TYPE",
                    )

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
                    context=fields["fileContext"] if fields.get("fileContext") else context,
                    max_size=services.settings.kore_max_file_size,
                )
                return _file_answer(request, record)
            if part.filename is None:
                fields.setdefault(part.name, await _field(part))
            else:
                await part.drain()
        raise InvalidInput("expected multipart form data with a 'file' part")

    @app.post("/files/session/start")
    async def start_session(request: Request):
        principal = await _principal(request)
        body = await _start_fields(request)
        context = _req_str(body, "fileContext")
        ext = _req_str(body, "fileExtension").lower().lstrip(".")
        name = _req_str(body, "fileName")
        total = _req_int(body, "totalChunks", minimum=1)
        size = _req_int(body, "fileSize", minimum=0)
        is_adapter = _bool(body.get("isAdapter", False))
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
                file_extensions=m.MEDIA_EXTENSIONS,
            )
        )
        answer = {"sessionId": opened.session.id, "expirationDate": m.iso(opened.session.expires_at)}
        if "model_id" in opened.result:
            answer["modelId"] = m.model_id_out(opened.result["model_id"])
        return answer

    @app.post("/files/session/{session_id}")
    async def upload_chunk(session_id: str, request: Request):
        principal = await _principal(request)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/octet-stream") and "chunkNumber" in request.query_params:
            chunk = ChunkIn(
                body_stream(request),
                number=_chunk_number(request.query_params["chunkNumber"]),
                max_size=services.settings.kore_max_chunk_size,
            )
        else:
            chunk = await _chunk_from_form(request, await _form(request))
            if chunk is None:
                raise InvalidInput("expected multipart form data with a 'file' part")
        stored = await services.uploads.receive(principal, session_id, chunk)
        return {"chunkNumber": str(stored.number), "sessionId": session_id}

    @app.post("/files/session/{session_id}/complete")
    async def complete_session(session_id: str, request: Request):
        principal = await _principal(request)
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

    @app.get("/dock-status/{dock_id}")
    async def dock_status(dock_id: str, request: Request):
        principal = await _principal(request)
        task_id = m.strip_prefix(dock_id, m.DOCK_PREFIX)
        if task_id is None:
            raise NotFound(f"dock status {dock_id!r} not found")
        task = await run_in_threadpool(services.tasks.get, principal, task_id)
        return await run_in_threadpool(_dock, request, principal, dock_id, task)

    for action, kind in (("export", EXPORT), ("deploy", DEPLOY), ("undeploy", UNDEPLOY)):
        app.add_api_route(f"/models/{{model_id}}/{action}", _job(kind), methods=["POST"])
    return app


def _dock(request: Request, principal: Principal, dock_id: str, task) -> dict:
    """A dock-status document for a task: an import, or an export/deploy/undeploy job."""
    body = {
        "_id": dock_id,
        "jobType": "MODELS",
        "action": JOB_ACTIONS.get(task.kind, "IMPORT"),
        "status": m.TASK_STATUS[task.status],
        "percentageComplete": task.percent,
    }
    if task.payload.get("model_id"):
        body["modelId"] = m.model_id_out(task.payload["model_id"])
    if task.status == "failed":
        body["error"] = task.error
    if task.status == "succeeded" and task.kind == EXPORT:
        services = services_of(request)
        record = services.files.get(principal, task.result["file_id"])
        body["response"] = {"downloadUrl": _file_answer(request, record)["url"]}
    elif task.status == "succeeded" and task.kind in (DEPLOY, UNDEPLOY):
        body["response"] = {k: v for k, v in task.result.items() if k != "model_id"}
    return body


def _job(kind: str):
    async def handler(model_id: str, request: Request):
        services = services_of(request)
        principal = await _principal(request)
        core_id = m.strip_prefix(model_id, m.MODEL_PREFIX)
        if core_id is None:
            raise NotFound(f"model {model_id!r} not found")
        body = None
        if kind == DEPLOY:
            body = await read_json(request, empty=None)
            if isinstance(body, dict) and "isDeployedPreviouly" in body:  # the vendor sample's spelling
                body.setdefault("isDeployedPreviously", body.pop("isDeployedPreviouly"))
            if kind == DEPLOY and request.query_params.get("modelType") not in (None, "openSource", "fineTune"):
                raise InvalidInput("modelType must be openSource or fineTune")
        task = await run_in_threadpool(services.model_jobs.start, principal, core_id, kind, body)
        dock = m.dock_id_out(task.id)
        return {
            "dock-statusId": dock,
            "dockStatusId": dock,
            "modelId": model_id,
            "jobType": "MODELS",
            "action": JOB_ACTIONS[kind],
            "status": m.TASK_STATUS[task.status],
        }

    return handler


def _file_answer(request: Request, record) -> dict:
    services = services_of(request)
    stored = m.stored_name(record.id, record.extension)
    link = services.signer.sign(record.id, services.settings.link_ttl, extra=m.link_extra(stored, "false", record.name))
    query = urlencode(
        {"e": link.expires, "n": link.nonce, "del": "false", "s": m.encode_signature(link.mac), "fileName": record.name}
    )
    return {"url": f"{public_base(request)}/api/getMediaStream/orgFiles/{stored}?{query}", "fileId": record.id}


START_BODY_LIMIT = 65536


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


def _req_int(body: dict, key: str, *, minimum: int) -> int:
    value = body.get(key)
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"field {key!r} is required and must be an integer")
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(f"field {key!r} must be an integer, not {value!r}")
    if value < minimum:
        raise InvalidInput(f"field {key!r} must be ≥ {minimum}")
    return value


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(f"isAdapter must be true or false, not {value!r}")


# --- /api/getMediaStream --------------------------------------------------------------------------


def _media_app(services: Services) -> FastAPI:
    app = _base_app(services)

    @app.get("/orgFiles/{stored}", operation_id="get_media")
    @app.head("/orgFiles/{stored}", operation_id="head_media")
    async def media(stored: str, request: Request):
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

    return app
