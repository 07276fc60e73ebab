"""UbiOps ``GET /status`` (at the root) and ``GET /v2/status`` (the client's ``service_status()``): open, no
credentials; ``fail`` when the database does not answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelharbor.api.common import services_of

router = APIRouter()


@router.get("/status")
def status(request: Request) -> JSONResponse:
    """Plain ``def``: Starlette (the root route, the same function) and FastAPI both run it in their threadpool."""
    ok = services_of(request).db.ping()
    return JSONResponse({"status": "ok"} if ok else {"status": "fail", "reason": "database unreachable"})
