"""Native serving routes (``/api/v1/projects/{project}/…``): deployments, versions, package uploads and builds,
revisions with their log, predictions (structured, plain, failing), environment variables at three levels
(secrets never answered), pipelines; bad input → 400 in the native shape, permissions, never a 500."""

from __future__ import annotations

import io
import itertools
import os
import zipfile

import pytest

from modelharbor.tasks.runner import run_pending
from tests.conftest import ADMIN_KEY, make_settings
from tests.factories import in_same_org, member_of_new_org, two_step_attachments

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
MAX_PACKAGE = 64 * 1024

ADDER = """
import os

class Deployment:
    def __init__(self, base_directory, context):
        self.offset = int(os.environ.get("OFFSET", "0"))
        self.version = context["version"]

    def request(self, data):
        if data["n"] == 13:
            raise ValueError("unlucky thirteen")
        return {"m": data["n"] + self.offset, "by": self.version}
"""

SHOUT = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return data.upper()
"""

BROKEN = """
class Deployment:
    def __init__(self, base_directory, context):
        print("loading the weights")
        raise RuntimeError("weights.bin is missing")

    def request(self, data):
        return data
"""


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(tmp_path, db_url, max_package_size=MAX_PACKAGE)


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def key_for(services, principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.identity.create_key(principal, 'k').secret}"}


def error_of(resp, status: int, code: str | None = None) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]["message"]


def assert_no_workers() -> None:
    import psutil

    left = [c for c in psutil.Process(os.getpid()).children(recursive=True) if "worker_main" in " ".join(c.cmdline())]
    assert left == [], left


def adder_body(name: str = "adder") -> dict:
    return {
        "name": name,
        "description": "adds",
        "input_type": "structured",
        "output_type": "structured",
        "input_fields": [{"name": "n", "data_type": "int"}],
        "output_fields": [{"name": "m", "data_type": "int"}, {"name": "by", "data_type": "string"}],
    }


@pytest.fixture
def project(client):
    resp = client.post("/api/v1/projects", json={"name": "serve"}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    return resp.json()


def build(client, services, url: str, package: bytes, **params) -> dict:
    resp = client.put(
        url + "/package", content=package, params=params, headers=AUTH | {"content-type": "application/zip"}
    )
    assert resp.status_code == 202, resp.text
    queued = resp.json()
    assert queued["status"] == "queued"
    run_pending(services)
    got = client.get(f"{url}/revisions/{queued['id']}", headers=AUTH)
    assert got.status_code == 200, got.text
    return got.json()


def test_deployment_and_version_routes(client, services, project):
    base = "/api/v1/projects/serve"
    resp = client.post(base + "/deployments", json=adder_body(), headers=AUTH)
    assert resp.status_code == 201, resp.text
    d = resp.json()
    assert (d["name"], d["project"], d["input_type"], d["default_version"]) == ("adder", "serve", "structured", None)
    assert d["input_fields"] == [{"name": "n", "data_type": "int", "widget": None}]
    error_of(client.post(base + "/deployments", json=adder_body(), headers=AUTH), 409, "CONFLICT")
    for bad in (
        {"name": "Bad Name"},
        {"name": "x", "input_type": "weird"},
        {"name": "x", "input_fields": [{"name": "a", "data_type": "complex"}]},
        {"name": "x", "input_fields": [{"name": "a", "data_type": "int"}] * 2},
        {"name": "x", "input_type": "plain", "input_fields": [{"name": "a", "data_type": "int"}]},
        {"name": "x", "colour": "red"},
        {"description": "no name"},
        [],
    ):
        error_of(client.post(base + "/deployments", json=bad, headers=AUTH), 400, "INVALID_INPUT")
    error_of(client.post(base + "/deployments", content=b"{", headers=AUTH | {"content-type": "application/json"}), 400)
    assert [x["name"] for x in client.get(base + "/deployments", headers=AUTH).json()] == ["adder"]
    by_id = client.get(f"/api/v1/projects/{project['id']}/deployments/adder", headers=AUTH)
    assert by_id.status_code == 200 and by_id.json()["id"] == d["id"]  # the project by its 24-hex id too
    error_of(client.get(base + "/deployments/nope", headers=AUTH), 404, "NOT_FOUND")
    error_of(client.get("/api/v1/projects/nope/deployments", headers=AUTH), 404, "NOT_FOUND")
    error_of(client.get("/api/v1/projects/" + "0" * 24 + "/deployments", headers=AUTH), 404, "NOT_FOUND")
    patched = client.patch(base + "/deployments/adder", json={"description": "adds one"}, headers=AUTH)
    assert patched.status_code == 200 and patched.json()["description"] == "adds one"
    error_of(client.patch(base + "/deployments/adder", json={"input_type": "plain"}, headers=AUTH), 400)

    v = base + "/deployments/adder/versions"
    resp = client.post(v, json={"version": "v1", "maximum_idle_time": 10, "minimum_instances": 0}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    v1 = resp.json()
    assert (v1["version"], v1["status"], v1["is_default"], v1["maximum_idle_time"]) == ("v1", "unavailable", True, 10)
    assert v1["environment"].startswith("python3-")
    envs = client.get(base + "/environments", headers=AUTH).json()
    assert v1["environment"] in [e["name"] for e in envs if e["system"]]
    for bad in (
        {"version": "V 1"},
        {"version": "v2", "minimum_instances": 3, "maximum_instances": 1},
        {"version": "v2", "maximum_idle_time": 1},
        {"version": "v2", "maximum_instances": "many"},
        {"version": "v2", "request_retention_mode": "all"},
        {"version": "v2", "environment": "python0-1"},
        {},
    ):
        assert client.post(v, json=bad, headers=AUTH).status_code in (400, 404), bad
    error_of(client.post(v, json={"version": "v2", "environment": "python0-1"}, headers=AUTH), 404)
    error_of(client.post(v, json={"version": "v1"}, headers=AUTH), 409)
    assert client.post(v, json={"version": "v2", "maximum_idle_time": 10}, headers=AUTH).status_code == 201
    assert [x["version"] for x in client.get(v, headers=AUTH).json()] == ["v1", "v2"]
    got = client.patch(v + "/v2", json={"maximum_instances": 2, "description": "two"}, headers=AUTH)
    assert got.status_code == 200 and (got.json()["maximum_instances"], got.json()["description"]) == (2, "two")
    assert client.get(v + "/v2", headers=AUTH).json()["maximum_instances"] == 2
    error_of(client.get(v + "/v9", headers=AUTH), 404)
    error_of(client.delete(v + "/v1", headers=AUTH), 400)  # the default, while v2 exists
    assert client.patch(base + "/deployments/adder", json={"default_version": "v2"}, headers=AUTH).status_code == 200
    assert client.delete(v + "/v1", headers=AUTH).status_code == 204
    assert client.get(base + "/deployments/adder", headers=AUTH).json()["default_version"] == "v2"
    assert client.delete(base + "/deployments/adder", headers=AUTH).status_code == 204
    error_of(client.get(base + "/deployments/adder", headers=AUTH), 404)
    assert client.get(base + "/deployments").status_code == 401


def test_package_build_and_predict(client, services, project):
    base = "/api/v1/projects/serve/deployments"
    assert client.post(base, json=adder_body(), headers=AUTH).status_code == 201
    url = base + "/adder/versions/v1"
    assert client.post(base + "/adder/versions", json={"version": "v1", "maximum_idle_time": 10}, headers=AUTH)
    predict = base + "/adder/predict"
    error_of(client.post(predict, json={"n": 1}, headers=AUTH), 400)  # nothing uploaded yet
    try:
        rev = build(client, services, url, zip_of({"deployment.py": ADDER}))
        assert rev["status"] == "success", rev
        assert "the deployment initialised" in rev["build_log"] and rev["has_request_method"] is True
        version = client.get(url, headers=AUTH).json()
        assert (version["status"], version["active_revision"], version["latest_revision"]) == (
            "available",
            rev["id"],
            rev["id"],
        )

        ok = client.post(predict, json={"n": 2}, headers=AUTH)
        assert ok.status_code == 200, ok.text
        assert {k: ok.json()[k] for k in ("status", "result", "error_message", "version", "deployment")} == {
            "status": "completed",
            "result": {"m": 2, "by": "v1"},
            "error_message": None,
            "version": "v1",
            "deployment": "adder",
        }
        assert ok.json()["id"]
        failed = client.post(predict, json={"n": 13}, headers=AUTH).json()
        assert failed["status"] == "failed" and "unlucky thirteen" in failed["error_message"]
        assert failed["result"] is None
        batch = client.post(predict, json=[{"n": 1}, {"n": 5}], headers=AUTH).json()
        assert batch["status"] == "completed" and [r["m"] for r in batch["result"]] == [1, 5], batch
        assert "'x'" in error_of(client.post(predict, json=[{"n": 1}, {"x": 5}], headers=AUTH), 400)
        assert "'n'" in error_of(client.post(predict, json={"n": "two"}, headers=AUTH), 400, "INVALID_INPUT")
        assert "'x'" in error_of(client.post(predict, json={"n": 1, "x": 2}, headers=AUTH), 400)
        error_of(client.post(predict, json={}, headers=AUTH), 400)
        error_of(client.post(predict, content=b"{nope", headers=AUTH | {"content-type": "application/json"}), 400)
        error_of(client.post(predict, content=b"", headers=AUTH), 400)
        error_of(client.post(predict, content=b"hello", headers=AUTH | {"content-type": "text/plain"}), 400)
        error_of(client.post(predict, json={"n": 1}, params={"timeout": 5}, headers=AUTH), 400)
        error_of(client.post(predict, json={"n": 1}, params={"timeout": "soon"}, headers=AUTH), 400)
        error_of(client.post(predict, json={"n": 1}, params={"version": "v9"}, headers=AUTH), 404)
        by_id = client.post(f"/api/v1/projects/{project['id']}/deployments/adder/predict", json={"n": 3}, headers=AUTH)
        assert by_id.json()["result"] == {"m": 3, "by": "v1"}

        # a second version, asked by ?version=; its env var reaches it
        assert client.post(base + "/adder/versions", json={"version": "v2", "maximum_idle_time": 10}, headers=AUTH)
        ev = client.post(base + "/adder/versions/v2/environment-variables", json={"name": "OFFSET", "value": "100"})
        assert ev.status_code == 401
        ev = client.post(
            base + "/adder/versions/v2/environment-variables",
            json={"name": "OFFSET", "value": "100", "secret": True},
            headers=AUTH,
        )
        assert ev.status_code == 201 and ev.json()["value"] is None
        rev2 = build(client, services, base + "/adder/versions/v2", zip_of({"pkg/deployment.py": ADDER}))
        assert rev2["status"] == "success", rev2
        two = client.post(predict, json={"n": 1}, params={"version": "v2"}, headers=AUTH).json()
        assert two["result"] == {"m": 101, "by": "v2"} and two["version"] == "v2"
        assert client.post(predict, json={"n": 1}, headers=AUTH).json()["version"] == "v1"

        # a failing build: the revision fails with the reason and log, the version keeps serving the good one
        bad = build(client, services, url, zip_of({"deployment.py": BROKEN}))
        assert bad["status"] == "failed" and "weights.bin is missing" in bad["error_message"]
        assert "build failed" in bad["build_log"]
        assert client.get(url, headers=AUTH).json()["active_revision"] == rev["id"]
        assert client.post(predict, json={"n": 4}, headers=AUTH).json()["result"]["m"] == 4
        listed = client.get(url + "/revisions", headers=AUTH).json()
        assert [r["id"] for r in listed] == [rev["id"], bad["id"]] and "build_log" not in listed[0]
        not_zip = build(client, services, url, b"this is not a zip at all")
        assert not_zip["status"] == "failed" and "zip" in not_zip["error_message"]
        no_code = build(client, services, url, zip_of({"README.md": "hi"}))
        assert no_code["status"] == "failed" and "deployment.py" in no_code["error_message"]
        error_of(client.get(url + "/revisions/nope", headers=AUTH), 404)
        error_of(client.get(url + "/revisions/" + "a" * 300, headers=AUTH), 404)

        # refused uploads
        put = url + "/package"
        error_of(client.put(put, content=b"x" * (MAX_PACKAGE + 1), headers=AUTH), 413, "TOO_LARGE")

        def chunked():
            yield b"x" * (MAX_PACKAGE // 2)
            yield b"x" * (MAX_PACKAGE // 2)
            yield b"x"

        error_of(client.put(put, content=chunked(), headers=AUTH), 413, "TOO_LARGE")
        error_of(client.put(put, content=b"", headers=AUTH), 400)
        error_of(
            client.put(put, content=zip_of({"deployment.py": ADDER}), params={"filename": "pkg.tar"}, headers=AUTH), 400
        )
        error_of(client.put(base + "/adder/versions/v9/package", content=b"zip", headers=AUTH), 404)
        assert len(client.get(url + "/revisions", headers=AUTH).json()) == 4  # nothing refused was kept

        # plain text in and out
        plain = {"name": "shout", "input_type": "plain", "output_type": "plain"}
        assert client.post(base, json=plain, headers=AUTH).status_code == 201
        assert client.post(base + "/shout/versions", json={"version": "v1", "maximum_idle_time": 10}, headers=AUTH)
        assert build(client, services, base + "/shout/versions/v1", zip_of({"deployment.py": SHOUT}))["status"] == (
            "success"
        )
        said = client.post(base + "/shout/predict", content="hello", headers=AUTH | {"content-type": "text/plain"})
        assert said.status_code == 200 and said.json()["result"] == "HELLO"
        assert client.post(base + "/shout/predict", json="json text", headers=AUTH).json()["result"] == "JSON TEXT"
        error_of(client.post(base + "/shout/predict", json={"a": 1}, headers=AUTH), 400)
    finally:
        services.serving.shutdown()
    assert_no_workers()


def test_environment_variables_at_three_levels(client, services, project):
    base = "/api/v1/projects/serve"
    assert client.post(base + "/deployments", json=adder_body(), headers=AUTH).status_code == 201
    assert client.post(base + "/deployments/adder/versions", json={"version": "v1"}, headers=AUTH).status_code == 201
    levels = {
        "project": base,
        "deployment": base + "/deployments/adder",
        "version": base + "/deployments/adder/versions/v1",
    }
    made = {}
    for level, prefix in levels.items():
        resp = client.post(
            prefix + "/environment-variables", json={"name": level.upper(), "value": f"{level}-value"}, headers=AUTH
        )
        assert resp.status_code == 201, resp.text
        made[level] = resp.json()
    secret = client.post(
        levels["version"] + "/environment-variables",
        json={"name": "TOKEN", "value": "hush-hush-42", "secret": True},
        headers=AUTH,
    )
    assert secret.status_code == 201 and secret.json()["value"] is None and secret.json()["secret"] is True
    listed = client.get(levels["version"] + "/environment-variables", headers=AUTH)
    assert listed.status_code == 200
    assert [(e["name"], e["value"], e["inheritance_type"], e["inheritance_name"]) for e in listed.json()] == [
        ("PROJECT", "project-value", "project", "serve"),
        ("DEPLOYMENT", "deployment-value", "deployment", "adder"),
        ("TOKEN", None, None, None),
        ("VERSION", "version-value", None, None),
    ]
    assert "hush-hush-42" not in listed.text
    assert [e["name"] for e in client.get(levels["project"] + "/environment-variables", headers=AUTH).json()] == [
        "PROJECT"
    ]
    by_id = client.get(f"/api/v1/projects/{project['id']}/environment-variables", headers=AUTH)
    assert [e["name"] for e in by_id.json()] == ["PROJECT"]

    tok = levels["version"] + "/environment-variables/" + secret.json()["id"]
    error_of(client.patch(tok, json={"secret": False}, headers=AUTH), 400)  # making it visible needs the value
    renamed = client.patch(tok, json={"name": "API_TOKEN", "value": "new-hush"}, headers=AUTH)
    assert renamed.status_code == 200 and renamed.json()["name"] == "API_TOKEN" and renamed.json()["value"] is None
    shown = client.patch(tok, json={"secret": False, "value": "now-visible"}, headers=AUTH)
    assert shown.json()["value"] == "now-visible" and shown.json()["secret"] is False
    # a variable is addressed at its own level only
    error_of(
        client.patch(levels["project"] + "/environment-variables/" + secret.json()["id"], json={}, headers=AUTH), 404
    )
    error_of(client.delete(levels["deployment"] + "/environment-variables/" + made["project"]["id"], headers=AUTH), 404)
    for bad in (
        {"name": "1BAD", "value": "x"},
        {"name": "OK_"},
        {"name": "OK", "value": 5},
        {"name": "OK", "value": "x", "secret": "yes"},
        {"name": "OK", "value": "x", "extra": 1},
        {"name": "OK", "value": "x" * (64 * 1024 + 1)},
    ):
        error_of(client.post(levels["project"] + "/environment-variables", json=bad, headers=AUTH), 400)
    error_of(
        client.post(levels["project"] + "/environment-variables", json={"name": "PROJECT", "value": "x"}, headers=AUTH),
        409,
    )
    for level, prefix in levels.items():
        assert client.delete(prefix + "/environment-variables/" + made[level]["id"], headers=AUTH).status_code == 204
    assert [e["name"] for e in client.get(levels["version"] + "/environment-variables", headers=AUTH).json()] == [
        "API_TOKEN"
    ]
    error_of(client.get(base + "/deployments/nope/environment-variables", headers=AUTH), 404)
    error_of(client.get(base + "/deployments/adder/versions/v9/environment-variables", headers=AUTH), 404)


def pipeline_version(objects=None, attachments=None) -> dict:
    objects = (
        objects
        if objects is not None
        else [
            {"name": "first", "reference_name": "adder"},
            {"name": "second", "reference_name": "adder", "version": "v1"},
        ]
    )
    if attachments is None:
        attachments = two_step_attachments()
    return {"version": "v1", "objects": objects, "attachments": attachments}


def test_pipelines(client, services, project):
    base = "/api/v1/projects/serve"
    assert client.post(base + "/deployments", json=adder_body(), headers=AUTH).status_code == 201
    assert client.post(
        base + "/deployments/adder/versions", json={"version": "v1", "maximum_idle_time": 10}, headers=AUTH
    )
    assert (
        client.post(base + "/environment-variables", json={"name": "OFFSET", "value": "1"}, headers=AUTH).status_code
        == 201
    )
    pipes = base + "/pipelines"
    body = {
        "name": "twice",
        "input_fields": [{"name": "n", "data_type": "int"}],
        "output_fields": [{"name": "m", "data_type": "int"}],
    }
    resp = client.post(pipes, json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["name"], resp.json()["input_type"], resp.json()["default_version"]) == (
        "twice",
        "structured",
        None,
    )
    error_of(client.post(pipes, json=body, headers=AUTH), 409)
    error_of(client.post(pipes, json={"name": "x", "input_type": "nope"}, headers=AUTH), 400)
    assert [p["name"] for p in client.get(pipes, headers=AUTH).json()] == ["twice"]
    assert client.get(pipes + "/twice", headers=AUTH).json()["name"] == "twice"
    error_of(client.get(pipes + "/nope", headers=AUTH), 404)

    for bad in (
        pipeline_version(objects=[{"name": "x", "reference_name": "nope"}], attachments=[]),
        pipeline_version(attachments=pipeline_version()["attachments"][:2]),  # nothing feeds pipeline_end
        pipeline_version(objects=[{"name": "x", "reference_name": "adder", "version": "v9"}], attachments=[]),
        {"version": "v1", "objects": [{"name": "x"}]},
        {"version": "v1", "attachments": [{"destination_name": "pipeline_end"}]},
    ):
        error_of(client.post(pipes + "/twice/versions", json=bad, headers=AUTH), 400)
    resp = client.post(pipes + "/twice/versions", json=pipeline_version(), headers=AUTH)
    assert resp.status_code == 201, resp.text
    v = resp.json()
    assert [o["name"] for o in v["objects"]] == ["first", "second"] and all(o["id"] for o in v["objects"])
    assert v["is_default"] is True
    assert [x["version"] for x in client.get(pipes + "/twice/versions", headers=AUTH).json()] == ["v1"]
    assert client.get(pipes + "/twice/versions/v1", headers=AUTH).json()["id"] == v["id"]
    error_of(client.get(pipes + "/twice/versions/v9", headers=AUTH), 404)
    error_of(client.delete(base + "/deployments/adder", headers=AUTH), 400)  # a pipeline uses it

    try:
        assert (
            build(client, services, base + "/deployments/adder/versions/v1", zip_of({"deployment.py": ADDER}))["status"]
            == "success"
        )
        answer = client.post(pipes + "/twice/predict", json={"n": 1}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        a = answer.json()
        assert (a["status"], a["result"], a["version"]) == ("completed", {"m": 3}, "v1"), a
        assert [s["object_name"] for s in a["steps"]] == ["first", "second"]
        failed = client.post(pipes + "/twice/predict", json={"n": 13}, params={"version": "v1"}, headers=AUTH).json()
        assert failed["status"] == "failed" and "first" in failed["error_message"]
        error_of(client.post(pipes + "/twice/predict", json={"x": 1}, headers=AUTH), 400)
        error_of(client.post(pipes + "/twice/predict", json={"n": 1}, params={"version": "v9"}, headers=AUTH), 404)
    finally:
        services.serving.shutdown()
    assert_no_workers()
    assert client.delete(pipes + "/twice/versions/v1", headers=AUTH).status_code == 204
    assert client.delete(pipes + "/twice", headers=AUTH).status_code == 204
    error_of(client.get(pipes + "/twice", headers=AUTH), 404)
    assert client.delete(base + "/deployments/adder", headers=AUTH).status_code == 204


def test_permissions(client, services, admin, project):
    base = "/api/v1/projects/serve"
    assert client.post(base + "/deployments", json=adder_body(), headers=AUTH).status_code == 201
    assert client.post(base + "/deployments/adder/versions", json={"version": "v1"}, headers=AUTH).status_code == 201
    var = client.post(base + "/environment-variables", json={"name": "A", "value": "1"}, headers=AUTH).json()
    assert client.post(base + "/pipelines", json={"name": "pipe"}, headers=AUTH).status_code == 201

    stranger = key_for(services, member_of_new_org(services, "owner"))  # another organisation, even its owner
    for method, path in (
        ("GET", base + "/deployments"),
        ("GET", base + "/deployments/adder"),
        ("GET", base + "/deployments/adder/versions/v1"),
        ("GET", base + "/environment-variables"),
        ("GET", base + "/pipelines/pipe"),
        ("GET", f"/api/v1/projects/{project['id']}/deployments"),
        ("DELETE", base + "/deployments/adder"),
        ("POST", base + "/deployments/adder/predict"),
        ("PUT", base + "/deployments/adder/versions/v1/package"),
    ):
        error_of(client.request(method, path, json={"n": 1}, headers=stranger), 404)

    viewer = key_for(services, in_same_org(services, admin, "viewer"))
    assert client.get(base + "/deployments/adder", headers=viewer).status_code == 200
    assert client.get(base + "/deployments/adder/versions", headers=viewer).status_code == 200
    assert client.get(base + "/environment-variables", headers=viewer).json()[0]["value"] == "1"
    assert client.get(base + "/pipelines", headers=viewer).status_code == 200
    for method, path, body in (
        ("POST", base + "/deployments", adder_body("mine")),
        ("PATCH", base + "/deployments/adder", {"description": "x"}),
        ("DELETE", base + "/deployments/adder", None),
        ("POST", base + "/deployments/adder/versions", {"version": "v2"}),
        ("PATCH", base + "/deployments/adder/versions/v1", {"description": "x"}),
        ("DELETE", base + "/deployments/adder/versions/v1", None),
        ("POST", base + "/environment-variables", {"name": "B", "value": "2"}),
        ("PATCH", base + "/environment-variables/" + var["id"], {"value": "2"}),
        ("DELETE", base + "/environment-variables/" + var["id"], None),
        ("POST", base + "/deployments/adder/predict", {"n": 1}),
        ("POST", base + "/pipelines", {"name": "other"}),
        ("DELETE", base + "/pipelines/pipe", None),
        ("POST", base + "/pipelines/pipe/predict", {}),
    ):
        error_of(client.request(method, path, json=body, headers=viewer), 403, "FORBIDDEN")
    error_of(client.put(base + "/deployments/adder/versions/v1/package", content=b"zip", headers=viewer), 403)

    # a member of the organisation who is not one of the project's writers reads but does not change it
    colleague = key_for(services, in_same_org(services, admin, "member"))
    assert client.get(base + "/deployments/adder", headers=colleague).status_code == 200
    error_of(client.patch(base + "/deployments/adder", json={"description": "x"}, headers=colleague), 403)
    error_of(client.put(base + "/deployments/adder/versions/v1/package", content=b"zip", headers=colleague), 403)
    assert client.get(base + "/deployments/adder", headers=AUTH).json()["description"] == "adds"
    error_of(client.get(base + "/deployments", headers={"Authorization": "Bearer nope"}), 401)


def test_openapi_describes_the_serving_routes(client):
    spec = client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    create = paths["/projects/{project}/deployments"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DeploymentIn")
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/DeploymentOut")
    package = paths["/projects/{project}/deployments/{deployment}/versions/{version}/package"]["put"]
    assert "application/zip" in package["requestBody"]["content"] and "202" in package["responses"]
    predict = paths["/projects/{project}/deployments/{deployment}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictionOut")
    assert {"version", "timeout"} <= {p["name"] for p in predict["parameters"]}
    schemas = spec["components"]["schemas"]
    assert "build_log" in schemas["RevisionDetailOut"]["properties"]
    assert "int" in str(schemas["ServingFieldIn"]["properties"]["data_type"])
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_garbage_never_answers_5xx(client, services, project):
    """The serving routes with hostile names, ids and bodies: 4xx in the native shape, never 5xx."""
    import re

    assert client.post("/api/v1/projects/serve/deployments", json=adder_body(), headers=AUTH).status_code == 201
    spec = client.get("/api/v1/openapi.json").json()
    routes = [(m.upper(), p) for p, ops in spec["paths"].items() if p.startswith("/projects/{project}") for m in ops]
    assert len(routes) >= 35
    values = ["%00", "a%00b", "x" * 300, "..%2F..", "serve", "adder", "0" * 24, "%F0%9F%92%A9", "-1"]
    bodies = [
        (None, None),
        (b"{", "application/json"),
        (b'{"name": "\\u0000", "version": "\\u0000", "value": "\\u0000"}', "application/json"),
        (b"\xff\xfe", "text/plain"),
        (b'{"n": 1e999, "name": ["x"], "input_fields": {"a": 1}}', "application/json"),
    ]
    failures = []
    cases = itertools.product(routes, values, bodies, (True, False))
    for (method, path), value, (body, ctype), known_project in cases:
        if known_project:
            path = path.replace("{project}", "serve")
        url = "/api/v1" + re.sub(r"\{[^}]+\}", value, path) + "?version=%00&timeout=x&filename=%00.zip"
        headers = AUTH | ({"content-type": ctype} if ctype else {})
        r = client.request(method, url, content=body, headers=headers)
        if r.status_code >= 500:
            failures.append((method, url[:100], r.status_code, r.text[:100]))
        elif r.status_code >= 400 and method != "HEAD":  # a HEAD answer has no body
            assert set(r.json()) == {"error"}, (method, url, r.text)
    assert not failures, failures[:10]
