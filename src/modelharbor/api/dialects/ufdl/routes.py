"""UFDL routes: each parses UFDL's request, makes one core call and renders UFDL's answer.

Every path takes an optional trailing slash (both spellings are routed; nothing redirects), detail routes
match integer pks only, and every error is a DRF-style JSON body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount

from modelharbor.api import failures
from modelharbor.api.common import body_stream, services_of
from modelharbor.api.dialects.ufdl import mapping as m
from modelharbor.api.dialects.ufdl.filters import parse_filter_spec
from modelharbor.api.jsonbody import blank, read_body
from modelharbor.core.catalogue import FieldErrors
from modelharbor.core.tokens import looks_like_jwt
from modelharbor.domain.errors import Forbidden, HarborError, InvalidInput, TooLarge, Unauthenticated
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.services import Services

JSON_LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE: a JSON body larger than this is refused


def mounts(services: Services) -> list[Mount]:
    return [Mount("/v1", app=create_ufdl_app(services))]


def create_ufdl_app(services: Services) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.services = services
    failures.install(app, m.internal_error)

    @app.exception_handler(HarborError)
    async def _harbor(_r: Request, exc: HarborError):
        return m.render_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            return m.method_not_allowed(request.method, (exc.headers or {}).get("Allow"))
        if exc.status_code == 404:
            return m.detail(404, m.NOT_FOUND)
        return m.detail(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError):
        return m.detail(400, "; ".join(str(e.get("msg")) for e in exc.errors()) or "Bad request.")

    @app.exception_handler(ClientDisconnect)
    async def _gone(_r: Request, _exc: ClientDisconnect):
        return m.detail(400, "The client disconnected before the request body was complete.")

    _auth_routes(app)
    _model_routes(app)
    _reference_routes(app)
    return app


def _add(app: FastAPI, method: str, path: str, endpoint: Callable[..., Awaitable[Any]]) -> None:
    """Route ``path`` and ``path/`` (UFDL's ``/?$``); only the first appears in the schema."""
    app.add_api_route(path, endpoint, methods=[method])
    app.add_api_route(path + "/", endpoint, methods=[method], include_in_schema=False)


# --- request helpers ------------------------------------------------------------------------------


async def _principal(request: Request) -> Principal:
    """``Authorization: Bearer <access JWT>`` or ``Bearer <ModelHarbor API key>``."""
    parts = request.headers.get("authorization", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthenticated(m.NOT_PROVIDED, code=m.NOT_AUTHENTICATED)
    services, token = services_of(request), parts[1]
    if looks_like_jwt(token):
        return await run_in_threadpool(services.tokens.authenticate, token)
    return await run_in_threadpool(services.identity.authenticate_key, token)


def _require(principal: Principal, action: Action) -> None:
    """UFDL checks permission before it looks the object up, so a non-admin gets 403 even for an unknown pk."""
    require(principal, action, principal.org_id, what="catalogue")


async def _json(request: Request, default: Any = None) -> Any:
    """The body as JSON (whatever Content-Type says); ``default`` when it is empty."""
    raw = await read_body(request, limit=JSON_LIMIT)
    return default if blank(raw) else m.parse_json(raw)


async def _json_after_lookup(request: Request, lookup: Callable[[], Any], default: Any = None) -> Any:
    """Like :func:`_json`, but an unknown pk (404) wins over a malformed body (400), as in DRF."""
    try:
        return await _json(request, default)
    except (InvalidInput, TooLarge):
        await run_in_threadpool(lookup)
        raise


def services_of_app(app: FastAPI) -> Services:
    return app.state.services


def _many(items: list, render: Callable[[Any], dict]) -> JSONResponse:
    return JSONResponse([render(x) for x in items])


# --- /v1/auth -------------------------------------------------------------------------------------


def _auth_routes(app: FastAPI) -> None:
    async def obtain(request: Request):
        fields = m.required_strings(await _json(request, {}), ("username", "password"))
        try:
            refresh, access = await run_in_threadpool(
                services_of(request).tokens.obtain, fields["username"].strip(), fields["password"]
            )
        except Unauthenticated:
            return m.unauthorized({"detail": m.NO_ACCOUNT})
        return {"refresh": refresh, "access": access}

    async def refresh(request: Request):
        token = m.required_strings(await _json(request, {}), ("refresh",))["refresh"]
        try:
            access = await run_in_threadpool(services_of(request).tokens.refresh, token)
        except Unauthenticated:
            return m.unauthorized({"detail": m.TOKEN_INVALID, "code": "token_not_valid"})
        return {"access": access}

    async def verify(request: Request):
        token = m.required_strings(await _json(request, {}), ("token",))["token"]
        try:
            services_of(request).tokens.verify(token)
        except Unauthenticated:
            return m.unauthorized({"detail": m.TOKEN_INVALID, "code": "token_not_valid"})
        return {}

    _add(app, "POST", "/auth/obtain", obtain)
    _add(app, "POST", "/auth/refresh", refresh)
    _add(app, "POST", "/auth/verify", verify)


# --- /v1/pretrained-models ------------------------------------------------------------------------


def _model_routes(app: FastAPI) -> None:
    base = "/pretrained-models"
    catalogue = services_of_app(app).catalogue

    async def list_models(request: Request):
        principal = await _principal(request)
        spec = await _json(request)
        return _many(await run_in_threadpool(catalogue.list_models, principal, parse_filter_spec(spec)), m.model_out)

    async def create_model(request: Request):
        principal = await _principal(request)
        body = await _json(request, {})
        model = await run_in_threadpool(catalogue.create_model, principal, body)
        return JSONResponse(m.model_out(model), status_code=201)

    async def retrieve_model(pk: int, request: Request):
        principal = await _principal(request)
        return m.model_out(await run_in_threadpool(catalogue.get_model, principal, pk))

    def updater(partial: bool):
        async def update_model(pk: int, request: Request):
            principal = await _principal(request)
            _require(principal, Action.CATALOGUE_WRITE)
            body = await _json_after_lookup(request, lambda: catalogue.get_model_for_write(principal, pk), {})
            model = await run_in_threadpool(
                lambda: catalogue.update_model(principal, pk, body, partial=partial),
            )
            return m.model_out(model)

        update_model.__name__ = "partial_update_model" if partial else "update_model"
        return update_model

    async def destroy_model(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.CATALOGUE_WRITE)
        await run_in_threadpool(catalogue.soft_delete, principal, pk)
        return Response(status_code=204)

    async def set_data(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.CATALOGUE_WRITE)
        if m.upload_filename(request.headers.get("content-disposition")) is None:
            await run_in_threadpool(catalogue.get_model_for_write, principal, pk)  # 404 before 400
            raise InvalidInput(m.MISSING_FILENAME)
        # The bytes are stored as sent (a multipart body too, envelope included, as UFDL does).
        model = await catalogue.set_data(principal, pk, body_stream(request), filename=m.DATA_FILENAME)
        return m.model_out(model)

    async def delete_data(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.CATALOGUE_WRITE)
        return m.model_out(await catalogue.delete_data(principal, pk))

    async def download(pk: int, request: Request):
        principal = await _principal(request)
        _model, record, _rng, stream = await catalogue.open_data(principal, pk)
        m.check_download_body(await _json(request))  # after the lookup, as UFDL does; the stream is lazy
        headers = {"Content-Disposition": f'attachment; filename="{m.DATA_FILENAME}"'}
        if stream is None:  # no data attached: UFDL answers 200 with an empty body
            return Response(b"", media_type=m.DATA_MEDIA_TYPE, headers=headers)
        headers["Content-Length"] = str(record.size)
        return StreamingResponse(stream, media_type=m.DATA_MEDIA_TYPE, headers=headers)

    async def hard_delete(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.CATALOGUE_WRITE)
        return m.model_out(await catalogue.hard_delete(principal, pk))

    async def reinstate(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.CATALOGUE_WRITE)
        return m.model_out(await run_in_threadpool(catalogue.reinstate, principal, pk))

    _add(app, "POST", f"{base}/list", list_models)
    _add(app, "POST", f"{base}/create", create_model)
    _add(app, "GET", f"{base}/{{pk:int}}", retrieve_model)
    _add(app, "PUT", f"{base}/{{pk:int}}", updater(partial=False))
    _add(app, "PATCH", f"{base}/{{pk:int}}", updater(partial=True))
    _add(app, "DELETE", f"{base}/{{pk:int}}", destroy_model)
    _add(app, "POST", f"{base}/{{pk:int}}/data", set_data)
    _add(app, "DELETE", f"{base}/{{pk:int}}/data", delete_data)
    _add(app, "POST", f"{base}/{{pk:int}}/download", download)
    _add(app, "DELETE", f"{base}/{{pk:int}}/hard", hard_delete)
    _add(app, "DELETE", f"{base}/{{pk:int}}/reinstate", reinstate)
    _add(app, "POST", f"{base}/{{pk:int}}/reinstate", reinstate)


# --- /v1/frameworks, /v1/licences (+ /v1/licenses), /v1/domains ---------------------------------------


def _reference_routes(app: FastAPI) -> None:
    catalogue = services_of_app(app).catalogue

    def resource(base: str, *, lister, getter, saver, deleter, render) -> None:
        async def list_items(request: Request):
            principal = await _principal(request)
            spec = await _json(request)
            return _many(await run_in_threadpool(lister, principal, parse_filter_spec(spec)), render)

        async def create_item(request: Request):
            principal = await _principal(request)
            body = await _json(request, {})
            return JSONResponse(render(await run_in_threadpool(saver, principal, body)), status_code=201)

        async def retrieve_item(pk: int, request: Request):
            principal = await _principal(request)
            return render(await run_in_threadpool(getter, principal, pk))

        def updater(partial: bool):
            async def update_item(pk: int, request: Request):
                principal = await _principal(request)
                _require(principal, Action.REFERENCE_WRITE)
                body = await _json_after_lookup(request, lambda: getter(principal, pk), {})
                return render(await run_in_threadpool(lambda: saver(principal, body, pk=pk, partial=partial)))

            return update_item

        async def destroy_item(pk: int, request: Request):
            principal = await _principal(request)
            await run_in_threadpool(deleter, principal, pk)
            return Response(status_code=204)

        _add(app, "POST", f"{base}/list", list_items)
        _add(app, "POST", f"{base}/create", create_item)
        _add(app, "GET", f"{base}/{{pk:int}}", retrieve_item)
        _add(app, "PUT", f"{base}/{{pk:int}}", updater(False))
        _add(app, "PATCH", f"{base}/{{pk:int}}", updater(True))
        _add(app, "DELETE", f"{base}/{{pk:int}}", destroy_item)

    resource(
        "/frameworks",
        lister=catalogue.list_frameworks,
        getter=catalogue.get_framework,
        saver=catalogue.save_framework,
        deleter=catalogue.delete_framework,
        render=m.framework_out,
    )

    async def subdescriptors(pk: int, request: Request):
        principal = await _principal(request)
        _require(principal, Action.REFERENCE_WRITE)
        lookup = lambda: catalogue.get_licence(principal, pk)  # noqa: E731
        body = await _json_after_lookup(request, lookup, {})
        try:
            if not isinstance(body, dict):
                raise FieldErrors({"non_field_errors": ["Invalid data. Expected a dictionary."]})
            missing = {k: ["This field is required."] for k in ("method", "type", "names") if k not in body}
            if missing:
                raise FieldErrors(missing)
            licence = await run_in_threadpool(
                catalogue.edit_subdescriptors, principal, pk, body["method"], body["type"], body["names"]
            )
        except FieldErrors:
            await run_in_threadpool(lookup)  # the core validates before it looks up; DRF looks up first (404)
            raise
        return m.licence_out(licence)

    for base in ("/licences", "/licenses"):  # UFDL routes both spellings to the same view
        resource(
            base,
            lister=catalogue.list_licences,
            getter=catalogue.get_licence,
            saver=catalogue.save_licence,
            deleter=catalogue.delete_licence,
            render=m.licence_out,
        )
        _add(app, "PATCH", f"{base}/{{pk:int}}/subdescriptors", subdescriptors)

    # Domains are seeded and read-only: no one, not even an admin, may create, change or delete them.
    async def list_domains(request: Request):
        principal = await _principal(request)
        spec = await _json(request)
        return _many(await run_in_threadpool(catalogue.list_domains, principal, parse_filter_spec(spec)), m.domain_out)

    async def retrieve_domain(pk: int, request: Request):
        principal = await _principal(request)
        return m.domain_out(await run_in_threadpool(catalogue.get_domain, principal, pk))

    async def refuse_domain_write(request: Request):
        await _principal(request)
        raise Forbidden("domains are read-only")

    _add(app, "POST", "/domains/list", list_domains)
    _add(app, "GET", "/domains/{pk:int}", retrieve_domain)
    _add(app, "POST", "/domains/create", refuse_domain_write)
    for method in ("PUT", "PATCH", "DELETE"):
        _add(app, method, "/domains/{pk:int}", refuse_domain_write)
