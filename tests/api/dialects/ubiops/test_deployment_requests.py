"""UbiOps deployment-request routes over kept requests (collect, cancel, delete, PATCH, input/output, filters):
answers fit the 4.15 client's models, cancelled batch requests stay cancelled, every bad input is a 4xx in the
dialect's shape ``{"error": …}``. Runs on SQLite and PostgreSQL with a real worker process."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from modelharbor.api.inputs import deployment_in, version_in
from modelharbor.tasks.runner import run_pending
from tests.api.dialects.ubiops import client_model
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Token {ADMIN_KEY}"}
D = "/v2/projects/kr/deployments/echo"
PKG = "class Deployment:\n    def __init__(self, b, c):\n        pass\n    def request(self, d):\n        return {'y': d['x'] * 2}\n"
ubiops = pytest.importorskip("ubiops")


@pytest.fixture
def deployed(client, services, admin):
    services.projects.create_project(admin, "kr")
    sv = services.serving
    sv.create_deployment(
        admin,
        "kr",
        deployment_in(
            {
                "name": "echo",
                "input_fields": [{"name": "x", "data_type": "int"}],
                "output_fields": [{"name": "y", "data_type": "int"}],
            }
        ),
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("deployment.py", PKG)

    async def body():
        yield buf.getvalue()

    for version, mode in (("v1", "full"), ("v2", "metadata")):
        sv.create_version(
            admin, "kr", "echo", version_in({"version": version, "request_retention_mode": mode}, creating=True)
        )
        asyncio.run(sv.upload_revision(admin, "kr", "echo", version, body(), "p.zip"))
    run_pending(services)
    yield client, services
    sv.shutdown()


def test_kept_requests_collect_cancel_delete_and_files(deployed):
    c, services = deployed
    direct = c.post(D + "/versions/v1/requests", json={"x": 3}, headers=AUTH).json()
    assert direct["result"] == {"y": 6}
    queued = c.post(D + "/versions/v1/requests/batch", json=[{"x": 1}, {"x": 2}, {"x": 3}], headers=AUTH)
    assert queued.status_code == 201
    a, b, kept = (x["id"] for x in queued.json())

    # collect: in the order asked, unknown ids left out, each fitting the client's model
    got = c.post(D + "/requests/collect", json=[kept, "no-such-id", direct["id"], a], headers=AUTH)
    assert [x.id for x in client_model("list[DeploymentRequestDetail]", got.json())] == [kept, direct["id"], a]

    # cancel one by PATCH, one by the batch cancel (status filter), before the workers get to them
    patched = c.patch(f"{D}/requests/{a}", json={"status": "cancelled"}, headers=AUTH)
    assert (
        patched.status_code == 200
        and client_model("DeploymentRequestSingleDetail", patched.json()).status == "cancelled"
    )
    many = c.post(D + "/requests/cancel?status=pending", json=[b, direct["id"]], headers=AUTH).json()
    assert many == {"success": True, "cancelled": 1}  # the direct one is finished: not cancelled
    run_pending(services)
    states = {x["id"]: x["status"] for x in c.post(D + "/requests/collect", json=[a, b, kept], headers=AUTH).json()}
    assert states == {a: "cancelled", b: "cancelled", kept: "completed"}  # the workers left the cancelled alone
    again = c.patch(f"{D}/requests/{kept}", json={"status": "cancelled"}, headers=AUTH)
    assert again.status_code == 400 and "completed" in again.json()["error"]

    # the kept input and output as files; metadata_only leaves data and result out
    out = c.get(f"{D}/versions/v1/requests/{kept}/output", headers=AUTH)
    assert out.json() == {"y": 6} and f"{kept}_output.json" in out.headers["content-disposition"]
    assert c.get(f"{D}/requests/{direct['id']}/input", headers=AUTH).json() == {"x": 3}
    meta = c.get(f"{D}/requests/{kept}?metadata_only=true", headers=AUTH).json()
    assert (meta["status"], meta["result"], meta["request_data"]) == ("completed", None, None)

    # a request of v1 is not found under v2; v2 keeps metadata only (no input file)
    assert c.get(f"{D}/versions/v2/requests/{kept}", headers=AUTH).status_code == 404
    m = c.post(D + "/versions/v2/requests", json={"x": 5}, headers=AUTH).json()
    assert c.get(f"{D}/versions/v2/requests/{m['id']}", headers=AUTH).json()["request_data"] is None
    assert c.get(f"{D}/requests/{m['id']}/input", headers=AUTH).status_code == 404

    # lists and their filters
    listed = c.get(D + "/requests", headers=AUTH).json()
    assert {x.id for x in client_model("list[DeploymentRequestList]", listed)} == {direct["id"], a, b, kept, m["id"]}
    assert {x["id"] for x in c.get(D + "/requests?status=cancelled", headers=AUTH).json()} == {a, b}
    assert [x["id"] for x in c.get(D + "/versions/v2/requests", headers=AUTH).json()] == [m["id"]]
    assert [x["id"] for x in c.get(f"{D}/requests?search_id={kept[-12:]}", headers=AUTH).json()] == [kept]
    assert c.get(D + "/requests?start_date=2999-01-01", headers=AUTH).json() == []

    # deletes: by list (only this version's), then one
    gone = c.post(D + "/versions/v2/requests/delete", json=[a, m["id"]], headers=AUTH).json()
    assert gone == {"success": True, "deleted": 1}
    assert c.delete(f"{D}/versions/v1/requests/{a}", headers=AUTH).status_code == 204
    assert c.get(f"{D}/requests/{a}", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/requests/collect", {"ids": []}, 400),
        ("POST", "/requests/collect", [], 400),
        ("POST", "/requests/collect", [1, 2], 400),
        ("POST", "/requests/collect", ["x"] * 251, 400),
        ("POST", "/requests/delete", "nope", 400),
        ("POST", "/requests/cancel?status=completed", ["a"], 400),
        ("GET", "/requests?status=finished", None, 400),
        ("GET", "/requests?status=", None, 200),
        ("GET", "/requests?limit=x", None, 400),
        ("GET", "/requests?limit=0", None, 400),
        ("GET", "/requests?offset=-3", None, 400),
        ("GET", "/requests?start_date=tomorrow", None, 400),
        ("GET", "/requests?start_date=2024-02-02&end_date=2024-02-01", None, 400),
        ("GET", "/requests?search_id=" + "z" * 50, None, 400),
        ("GET", "/requests/not-an-id", None, 404),
        ("GET", "/requests/" + "%00" * 3, None, 404),
        ("GET", "/requests/00000000-0000-0000-0000-000000000000?metadata_only=maybe", None, 400),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", {"status": "done"}, 400),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", {"status": "cancelled", "x": 1}, 400),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", {"status": "cancelled"}, 404),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", [1], 400),
        ("DELETE", "/requests/00000000-0000-0000-0000-000000000000", None, 404),
        ("GET", "/requests/00000000-0000-0000-0000-000000000000/input", None, 404),
        ("GET", "/requests/00000000-0000-0000-0000-000000000000/output", None, 404),
        ("GET", "/versions/v9/requests", None, 404),
        ("POST", "/versions/v9/requests/collect", ["a"], 404),
    ],
)
def test_bad_input_is_a_4xx_in_the_error_shape(deployed, method, path, body, status):
    c, _ = deployed
    resp = c.request(method, D + path, json=body, headers=AUTH)
    assert resp.status_code == status, resp.text
    if status >= 400:
        assert isinstance(resp.json()["error"], str) and resp.json()["error"]


def test_changing_kept_requests_needs_credentials(deployed):
    c, _ = deployed
    for method, path in (("POST", "/requests/collect"), ("POST", "/requests/cancel"), ("PATCH", "/requests/x")):
        resp = c.request(method, D + path, json=["x"] if method == "POST" else {"status": "cancelled"})
        assert resp.status_code == 401 and resp.json()["error"]
