"""The prediction hot path answers exactly like the routes it stands in front of: auth, errors, versions."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from modelharbor.api.failures import Unexpected
from modelharbor.api.hot import HotTable
from modelharbor.api.inputs import deployment_in, version_in
from modelharbor.tasks.runner import run_pending
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Token {ADMIN_KEY}"}
BASE = "/v2/projects/fp/deployments/echo"
PKG = "class Deployment:\n    def __init__(self, b, c):\n        pass\n    def request(self, d):\n        return {'y': d['x'] * 2}\n"


@pytest.fixture
def deployed(client, services, admin):
    services.projects.create_project(admin, "fp")
    sv = services.serving
    sv.create_deployment(
        admin,
        "fp",
        deployment_in(
            {
                "name": "echo",
                "input_fields": [{"name": "x", "data_type": "int"}],
                "output_fields": [{"name": "y", "data_type": "int"}],
            }
        ),
    )
    sv.create_version(
        admin, "fp", "echo", version_in({"version": "v1", "request_retention_mode": "none"}, creating=True)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("deployment.py", PKG)

    async def body():
        yield buf.getvalue()

    asyncio.run(sv.upload_revision(admin, "fp", "echo", "v1", body(), "p.zip"))
    run_pending(services)
    yield client
    sv.shutdown()


def test_answers_and_errors(deployed):
    c = deployed
    ok = c.post(f"{BASE}/requests", json={"x": 3}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["result"] == {"y": 6} and ok.json()["status"] == "completed"
    assert c.post("/v2.1/projects/fp/deployments/echo/versions/v1/requests", json={"x": 1}, headers=AUTH).json()[
        "result"
    ] == {"y": 2}
    for headers, status in (({}, 401), ({"Authorization": "Token nope"}, 401), ({"Authorization": "Basic x"}, 401)):
        r = c.post(f"{BASE}/requests", json={"x": 1}, headers=headers)
        assert r.status_code == status and set(r.json()) == {"error"}
        assert r.headers["www-authenticate"] == "Token"
    cases = [
        (f"{BASE}/requests", {"content": b"{bad", "headers": {**AUTH, "content-type": "application/json"}}, 400),
        (f"{BASE}/requests?timeout=soon", {"json": {"x": 1}, "headers": AUTH}, 400),
        (f"{BASE}/requests?timeout=1", {"json": {"x": 1}, "headers": AUTH}, 400),
        (f"{BASE}/requests", {"json": {"x": "one"}, "headers": AUTH}, 400),
        (f"{BASE}/requests", {"content": "plain text", "headers": AUTH}, 400),
        ("/v2/projects/nope/deployments/echo/requests", {"json": {"x": 1}, "headers": AUTH}, 404),
        (f"{BASE}x/requests", {"json": {"x": 1}, "headers": AUTH}, 404),
        (f"{BASE}/versions/v9/requests", {"json": {"x": 1}, "headers": AUTH}, 404),
    ]
    for url, kw, status in cases:
        r = c.post(url, **kw)
        assert r.status_code == status, (url, r.text)
        assert set(r.json()) == {"error"}, r.text
    # other methods and paths are not taken by the hot path
    listed = c.get(f"{BASE}/requests", headers=AUTH)  # the FastAPI route (listing), not the hot path
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert c.get("/v2/status").json() == {"status": "ok"}


def test_runs_ahead_of_fastapi_and_answers_500_on_the_unexpected(deployed, services, monkeypatch):
    c = deployed
    app = c.app
    # the hot-route table is the app's front, with no middleware layer in front of it: the app's only one answers
    # unexpected failures, which the hot route does itself (api/failures.py)
    assert isinstance(app.front, HotTable) and [m.cls for m in app.user_middleware] == [Unexpected]

    def fastapi_not_called(*args, **kwargs):
        raise AssertionError("the hot path went through FastAPI")

    monkeypatch.setattr(app, "build_middleware_stack", fastapi_not_called)
    app.middleware_stack = None
    assert c.post(f"{BASE}/requests", json={"x": 2}, headers=AUTH).json()["result"] == {"y": 4}

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services.serving, "request", broken)
    r = c.post(f"{BASE}/requests", json={"x": 2}, headers=AUTH)
    assert r.status_code == 500 and set(r.json()) == {"error"} and "server log" in r.json()["error"]
