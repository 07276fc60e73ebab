"""api/hot.py's exact routes: which routes the table takes, and that it answers them as the mounted FastAPI
sub-application would — the dialect's principal (sync or async), its error rendering, its 500 — while every other
request goes to the fallback untouched. (The MLflow registry's routes are the real ones: tests/api/dialects/mlflow.)
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from modelharbor.api.hot import ExactRoutes, HotTable
from modelharbor.domain.errors import HarborError, NotFound

router = APIRouter()


@router.post("/hot")
async def hot(request: Request, principal, services):
    if request.query_params.get("fail") == "harbor":
        raise NotFound("no such thing")
    if request.query_params.get("fail") == "bug":
        raise RuntimeError("a bug")
    app = request.app
    return JSONResponse(
        {"principal": principal, "services": services, "app": app.title, "root": request.scope["root_path"]}
    )


@router.get("/items/{item}")  # a path parameter: not exact
async def item(request: Request, principal, services):
    return JSONResponse({})


@router.get("/sync")  # a plain def: FastAPI's threadpool, not the table
def sync(request: Request, principal, services):
    return JSONResponse({})


@router.get("/other")  # another shape of endpoint
async def other(request: Request):
    return JSONResponse({})


def render(request: Request, exc: HarborError) -> JSONResponse:
    return JSONResponse({"rendered": exc.code, "path": request.url.path}, status_code=exc.status)


def fail(rid: str) -> JSONResponse:
    return JSONResponse({"internal": rid}, status_code=500)


async def fallback(scope, receive, send):
    await JSONResponse({"fallback": scope["path"]}, status_code=418)(scope, receive, send)


def table(principal) -> HotTable:
    hot_table = HotTable(fallback, "the services")
    hot_table.add(ExactRoutes("/api/x", router.routes, principal, render, fail, FastAPI(title="sub")))
    return hot_table


async def async_principal(request: Request) -> str:
    return "async " + request.headers.get("authorization", "")


def sync_principal(request: Request) -> str:
    if not request.headers.get("authorization"):
        raise HarborError("who are you", code="UNAUTHENTICATED")
    return "sync " + request.headers["authorization"]


def test_the_table_takes_exact_async_routes_of_the_request_principal_services_shape():
    assert set(table(async_principal).exact) == {("POST", "/api/x/hot")}


def test_exact_routes_answer_with_the_dialects_principal_errors_and_500():
    for principal, who in ((async_principal, "async k"), (sync_principal, "sync k")):
        client = TestClient(table(principal), raise_server_exceptions=False)
        r = client.post("/api/x/hot", headers={"authorization": "k"})
        assert r.status_code == 200
        assert r.json() == {"principal": who, "services": "the services", "app": "sub", "root": "/api/x"}
        r = client.post("/api/x/hot?fail=harbor", headers={"authorization": "k"})
        assert (r.status_code, r.json()) == (404, {"rendered": "NOT_FOUND", "path": "/api/x/hot"})
        r = client.post("/api/x/hot?fail=bug", headers={"authorization": "k"})
        assert r.status_code == 500 and r.json()["internal"] == r.headers["x-request-id"]
    r = TestClient(table(sync_principal)).post("/api/x/hot")  # the principal's own error, rendered
    assert (r.status_code, r.json()["rendered"]) == (400, "UNAUTHENTICATED")


def test_everything_else_goes_to_the_fallback():
    client = TestClient(table(async_principal))
    for method, path in (("GET", "/api/x/hot"), ("GET", "/api/x/items/1"), ("GET", "/api/x/sync"), ("POST", "/hot")):
        r = client.request(method, path)
        assert (r.status_code, r.json()) == (418, {"fallback": path})
