"""``GET /version``: unauthenticated, as the client calls it before anything else (it gates features on it)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.requests import Request

from modelharbor import __version__

# The Domino release whose API this dialect follows; the client requires >= 4.1.0.
DOMINO_VERSION = "6.3.0"


async def version(_request: Request) -> JSONResponse:
    return JSONResponse(
        {"version": DOMINO_VERSION, "buildId": f"modelharbor-{__version__}", "commitId": "", "timestamp": ""}
    )
