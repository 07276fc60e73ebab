"""The native API application (mounted at ``/api/v1``; OpenAPI at ``/api/v1/openapi.json``, Swagger UI at
``/api/v1/docs`` and ReDoc at ``/api/v1/redoc``, their assets served from the server: api/apidocs.py)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modelharbor.api import apidocs, failures
from modelharbor.api.allow import answer_405_with_allow
from modelharbor.api.native import (
    access_requests,
    catalogue,
    data_sources,
    dataset_records,
    dataset_uploads,
    datasets,
    files,
    hardware_tiers,
    keys,
    models,
    openapi,
    orgs,
    project_files,
    projects,
    serving,
    transfer,
    uploads,
    users,
)
from modelharbor.domain.errors import HarborError, RangeNotSatisfiable
from modelharbor.services import Services


def error_json(status: int, code: str, message: str, details: dict | None = None, headers=None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or {}}}, status_code=status, headers=headers
    )


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): the native envelope, ``details.request_id`` the id it is logged under."""
    return error_json(500, "INTERNAL", failures.message(rid), {"request_id": rid})


NATIVE_SPEC = apidocs.Spec("native", "ModelHarbor native API", "/api/v1/openapi.json")


def create_native_app(services: Services, other_specs: Sequence[apidocs.Spec] = ()) -> FastAPI:
    """The native API; its docs pages also offer ``other_specs`` (the dialects' documents)."""
    app = FastAPI(
        title="ModelHarbor native API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,  # apidocs.install: the pages' assets come from the server, not a CDN
        redoc_url=None,
        description="ModelHarbor's own API. Authenticate with `Authorization: Bearer <API key>`.",
    )
    app.state.services = services
    failures.install(app, internal_error)  # unexpected exceptions: 500 in this envelope, logged with a request id

    @app.exception_handler(HarborError)
    async def _harbor(_req: Request, exc: HarborError):
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RangeNotSatisfiable) and "size" in exc.details:
            headers = {"content-range": f"bytes */{exc.details['size']}"}
        return error_json(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
            problems.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_json(400, "INVALID_INPUT", "; ".join(problems) or "invalid request", {"problems": problems})

    @app.exception_handler(404)
    async def _not_found(_req: Request, _exc):
        return error_json(404, "NOT_FOUND", "no such route in the native API; see /api/v1/openapi.json")

    @app.exception_handler(405)
    async def _method(_req: Request, _exc):
        return error_json(405, "METHOD_NOT_ALLOWED", "method not allowed on this route")

    app.include_router(files.router)
    app.include_router(uploads.router)
    app.include_router(keys.router)
    app.include_router(catalogue.router)
    app.include_router(models.router)
    app.include_router(access_requests.router)
    app.include_router(project_files.router)  # before projects: /projects/{id}/files… are its own
    app.include_router(projects.router)
    app.include_router(serving.router)
    app.include_router(transfer.router)
    app.include_router(orgs.router)
    app.include_router(users.router)
    app.include_router(hardware_tiers.router)
    app.include_router(data_sources.router)
    app.include_router(dataset_records.router)
    app.include_router(datasets.router)
    app.include_router(dataset_uploads.router)
    answer_405_with_allow(app)  # with Allow: every method the path takes
    apidocs.install(app, [NATIVE_SPEC, *other_specs])  # Swagger UI (/docs) and ReDoc (/redoc), served offline
    openapi.install(app)  # the document says what the server answers: errors, security (api/native/openapi.py)
    return app
