"""Native project exports and imports (``/api/v1/projects/{project}/exports`` and ``…/imports``): every route,
status and percent, ranged downloads of the zip, imports from an uploaded file id, an export id or a link, the
confirmation with re-supplied secrets, bad input → 400 in the native shape, permissions; never a 500."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelharbor.tasks.runner import run_pending
from tests.conftest import ADMIN_KEY, make_settings
from tests.factories import in_same_org, member_of_new_org

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
MiB = 1 << 20
MAX_IMPORT = 4 * MiB
SECRET = "planted-secret-3f1a9c"
BASE = "/api/v1/projects"
ADDER = """
import os

class Deployment:
    def __init__(self, base_directory, context):
        self.offset = int(os.environ.get("OFFSET", "0"))

    def request(self, data):
        return {"m": data["n"] + self.offset}
"""


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(
        tmp_path, db_url, max_import_size=MAX_IMPORT, allow_http_import_links=True, allow_private_import_links=True
    )


def ok(resp, status: int = 200):
    assert resp.status_code == status, (resp.status_code, resp.text)
    return resp.json() if resp.content else None


def error_of(resp, status: int, code: str | None = None) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]["message"]


def key_for(services, principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.identity.create_key(principal, 'k').secret}"}


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def upload(client, data: bytes, name: str = "upload.zip", headers=AUTH) -> dict:
    return ok(client.post("/api/v1/files", params={"name": name}, content=data, headers=headers), 201)


@pytest.fixture
def src(client, services):
    """Project ``src`` (a built deployment with variables at every level, one a secret; a pipeline using it) and
    an empty project ``dst``; returns src's id."""
    project = ok(client.post(BASE, json={"name": "src"}, headers=AUTH), 201)
    ok(client.post(BASE, json={"name": "dst"}, headers=AUTH), 201)
    p = f"{BASE}/src"
    fields = {"input_fields": [{"name": "n", "data_type": "int"}], "output_fields": [{"name": "m", "data_type": "int"}]}
    ok(client.post(p + "/deployments", json={"name": "adder", **fields}, headers=AUTH), 201)
    ok(client.post(p + "/deployments/adder/versions", json={"version": "v1"}, headers=AUTH), 201)
    ok(client.post(p + "/environment-variables", json={"name": "A", "value": "project-value"}, headers=AUTH), 201)
    d = p + "/deployments/adder"
    ok(client.post(d + "/environment-variables", json={"name": "OFFSET", "value": "5"}, headers=AUTH), 201)
    secret = {"name": "TOKEN", "value": SECRET, "secret": True}
    ok(client.post(d + "/versions/v1/environment-variables", json=secret, headers=AUTH), 201)
    package = zip_of({"deployment.py": ADDER})
    headers = AUTH | {"content-type": "application/zip"}
    ok(client.put(d + "/versions/v1/package", content=package, headers=headers), 202)
    run_pending(services)
    assert ok(client.get(d + "/versions/v1", headers=AUTH))["status"] == "available"
    ok(client.post(p + "/pipelines", json={"name": "pipe", **fields}, headers=AUTH), 201)
    version = {
        "version": "v1",
        "objects": [{"name": "o", "reference_name": "adder", "version": "v1"}],
        "attachments": [
            {
                "destination_name": "o",
                "sources": [
                    {
                        "source_name": "pipeline_start",
                        "mapping": [{"source_field_name": "n", "destination_field_name": "n"}],
                    }
                ],
            },
            {
                "destination_name": "pipeline_end",
                "sources": [
                    {"source_name": "o", "mapping": [{"source_field_name": "m", "destination_field_name": "m"}]}
                ],
            },
        ],
    }
    ok(client.post(p + "/pipelines/pipe/versions", json=version, headers=AUTH), 201)
    return project["id"]


def completed_export(client, services, project: str = "src", body: dict | None = None) -> tuple[dict, bytes]:
    e = ok(client.post(f"{BASE}/{project}/exports", json=body or {"all": True}, headers=AUTH), 201)
    run_pending(services)
    e = ok(client.get(f"{BASE}/{project}/exports/{e['id']}", headers=AUTH))
    assert e["status"] == "completed", e
    data = client.get(f"{BASE}/{project}/exports/{e['id']}/download", headers=AUTH).content
    assert hashlib.sha256(data).hexdigest() == e["sha256"] and len(data) == e["size"]
    return e, data


def test_export_routes_status_percent_selection_and_ranged_download(client, services, src):
    p = f"{BASE}/src"
    created = ok(client.post(p + "/exports", json={"all": True, "description": "nightly"}, headers=AUTH), 201)
    assert (created["status"], created["percent"], created["project"]) == ("pending", 0, "src")
    assert created["packages"] is True and created["size"] is None and created["description"] == "nightly"
    assert created["created_by"] == "admin" and created["error_message"] is None
    pending = ok(client.get(f"{p}/exports/{created['id']}", headers=AUTH))
    assert pending["file_id"] is None and pending["sha256"] is None
    error_of(client.get(f"{p}/exports/{created['id']}/download", headers=AUTH), 400, "INVALID_INPUT")
    assert [e["id"] for e in ok(client.get(p + "/exports", headers=AUTH))] == [created["id"]]
    assert ok(client.get(p + "/exports", params={"status": "pending"}, headers=AUTH))[0]["id"] == created["id"]
    run_pending(services)
    e = ok(client.get(f"{p}/exports/{created['id']}", headers=AUTH))
    assert (e["status"], e["percent"]) == ("completed", 100) and e["size"] > 0 and len(e["sha256"]) == 64
    assert set(e["deployments"]["adder"]["versions"]) == {"v1"} and set(e["pipelines"]) == {"pipe"}
    assert e["environment_variables"] == {"A": {"include_value": True}}
    assert ok(client.get(p + "/exports", params={"status": "pending"}, headers=AUTH)) == []
    by_id = ok(client.get(f"{BASE}/{src}/exports/{e['id']}", headers=AUTH))  # the project by its id
    assert by_id["id"] == e["id"]

    url = f"{p}/exports/{e['id']}/download"
    whole = client.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/zip"
    assert f'filename="export_src_{e["id"][:8]}.zip"' in whole.headers["content-disposition"]
    assert whole.headers["x-content-sha256"] == e["sha256"] == hashlib.sha256(whole.content).hexdigest()
    assert SECRET.encode() not in whole.content  # a secret's value is never exported
    names = zipfile.ZipFile(io.BytesIO(whole.content)).namelist()
    assert any(n.endswith("deployment_adder_version_v1.zip") for n in names)
    part = client.get(url, headers=AUTH | {"range": "bytes=10-"})
    assert part.status_code == 206 and part.content == whole.content[10:]
    assert part.headers["content-range"] == f"bytes 10-{e['size'] - 1}/{e['size']}"
    head = client.head(url, headers=AUTH)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == e["size"]
    error_of(client.get(url, headers=AUTH | {"range": f"bytes={e['size'] + 5}-"}), 416)
    # the zip is a file of the files service: it can be linked, not deleted there
    assert client.get(f"/api/v1/files/{e['file_id']}/content", headers=AUTH).content == whole.content
    error_of(client.delete(f"/api/v1/files/{e['file_id']}", headers=AUTH), 409, "FILE_IN_USE")

    lean = ok(client.post(p + "/exports", json={"pipelines": {"pipe": {}}, "packages": False}, headers=AUTH), 201)
    run_pending(services)
    lean = ok(client.get(f"{p}/exports/{lean['id']}", headers=AUTH))
    assert lean["packages"] is False and lean["deployments"] == {} and lean["pipelines"] == {"pipe": {"versions": {}}}
    assert [x["id"] for x in ok(client.get(p + "/exports", headers=AUTH))] == [lean["id"], e["id"]]

    assert client.delete(f"{p}/exports/{e['id']}", headers=AUTH).status_code == 204
    error_of(client.get(f"{p}/exports/{e['id']}", headers=AUTH), 404, "NOT_FOUND")
    error_of(client.get(url, headers=AUTH), 404)
    error_of(client.get(f"/api/v1/files/{e['file_id']}", headers=AUTH), 404)
    error_of(client.delete(f"{p}/exports/{e['id']}", headers=AUTH), 404)


def test_import_from_an_uploaded_file_with_confirmation_and_a_secret(client, services, src):
    e, data = completed_export(client, services)
    record = upload(client, data)
    q = f"{BASE}/dst"
    imp = ok(client.post(q + "/imports", json={"file_id": record["id"]}, headers=AUTH), 201)
    assert (imp["status"], imp["percent"], imp["source"], imp["size"]) == ("pending", 0, "file", len(data))
    assert imp["skip_confirmation"] is False and imp["created_by"] == "admin"
    # the import has its own record of the bytes: the uploaded file may go at once
    assert client.delete(f"/api/v1/files/{record['id']}", headers=AUTH).status_code == 204
    run_pending(services)
    i = ok(client.get(f"{q}/imports/{imp['id']}", headers=AUTH))
    assert (i["status"], i["percent"], i["error_message"]) == ("confirmation", None, None)
    v1 = i["deployments"]["adder"]["versions"]["v1"]
    assert v1["environment_variables"] == {"TOKEN": {"value": None, "secret": True}}
    assert v1["zip"].endswith("deployment_adder_version_v1.zip")
    assert i["deployments"]["adder"]["environment_variables"] == {"OFFSET": {"value": "5", "secret": False}}
    assert set(i["pipelines"]) == {"pipe"} and i["environment_variables"]["A"]["value"] == "project-value"
    assert ok(client.get(q + "/imports", params={"status": "confirmation"}, headers=AUTH))[0]["id"] == imp["id"]
    zipped = client.get(f"{q}/imports/{imp['id']}/download", headers=AUTH)
    assert zipped.status_code == 200 and zipped.content == data
    assert (
        client.get(f"{q}/imports/{imp['id']}/download", headers=AUTH | {"range": "bytes=0-3"}).content == b"PK\x03\x04"
    )

    everything = {
        "deployments": {"adder": {"versions": {"v1": {"environment_variables": {"TOKEN": {}}}}}},
        "pipelines": {"pipe": {}},
        "environment_variables": {"A": {}},
    }
    message = error_of(client.patch(f"{q}/imports/{imp['id']}", json=everything, headers=AUTH), 400, "INVALID_INPUT")
    assert "TOKEN" in message
    assert ok(client.get(f"{q}/imports/{imp['id']}", headers=AUTH))["status"] == "confirmation"
    given = {"value": "new-secret-value", "secret": True}
    everything["deployments"]["adder"]["versions"]["v1"]["environment_variables"]["TOKEN"] = given
    confirmed = ok(client.patch(f"{q}/imports/{imp['id']}", json=everything, headers=AUTH))
    assert confirmed["status"] == "confirmation_pending" and confirmed["percent"] == 0
    assert "new-secret-value" not in str(confirmed)
    error_of(client.patch(f"{q}/imports/{imp['id']}", json=everything, headers=AUTH), 400)  # not twice
    run_pending(services)
    done = ok(client.get(f"{q}/imports/{imp['id']}", headers=AUTH))
    assert (done["status"], done["percent"]) == ("completed", 100), done
    assert [d["name"] for d in ok(client.get(q + "/deployments", headers=AUTH))] == ["adder"]
    assert [x["name"] for x in ok(client.get(q + "/pipelines", headers=AUTH))] == ["pipe"]
    version_vars = ok(client.get(q + "/deployments/adder/versions/v1/environment-variables", headers=AUTH))
    token = next(x for x in version_vars if x["name"] == "TOKEN")
    assert token["secret"] is True and token["value"] is None
    run_pending(services)  # the imported package builds like any upload
    assert ok(client.get(q + "/deployments/adder/versions/v1", headers=AUTH))["status"] == "available"
    answer = ok(client.post(q + "/deployments/adder/predict", json={"n": 1}, headers=AUTH))
    assert answer["result"] == {"m": 6}

    assert client.delete(f"{q}/imports/{imp['id']}", headers=AUTH).status_code == 204
    error_of(client.get(f"{q}/imports/{imp['id']}", headers=AUTH), 404)
    assert [d["name"] for d in ok(client.get(q + "/deployments", headers=AUTH))] == ["adder"]  # objects stay


def test_import_from_an_export_id_and_skip_confirmation(client, services, src):
    p = f"{BASE}/src"
    body = {
        "deployments": {"adder": {"versions": {"v1": {}}, "environment_variables": {"OFFSET": {"include_value": True}}}}
    }
    e, data = completed_export(client, services, body=body)
    # an export of src is imported into src: the deployment is already there, nothing is created
    imp = ok(client.post(p + "/imports", json={"export_id": e["id"], "skip_confirmation": True}, headers=AUTH), 201)
    assert imp["source"] == "export" and imp["skip_confirmation"] is True
    run_pending(services)
    failed = ok(client.get(f"{p}/imports/{imp['id']}", headers=AUTH))
    assert (failed["status"], failed["percent"]) == ("failed", None)
    assert "Already in project 'src'" in failed["error_message"] and "adder" in failed["error_message"]
    assert ok(client.get(p + "/imports", params={"status": "failed"}, headers=AUTH))[0]["id"] == imp["id"]
    error_of(client.post(f"{BASE}/dst/imports", json={"export_id": e["id"]}, headers=AUTH), 404)  # not dst's export
    # the same zip uploaded and imported into dst without a confirmation (no variable lacks a value)
    record = upload(client, data)
    imp = ok(
        client.post(f"{BASE}/dst/imports", json={"file_id": record["id"], "skip_confirmation": True}, headers=AUTH),
        201,
    )
    run_pending(services)
    done = ok(client.get(f"{BASE}/dst/imports/{imp['id']}", headers=AUTH))
    assert done["status"] == "completed", done
    assert [d["name"] for d in ok(client.get(f"{BASE}/dst/deployments", headers=AUTH))] == ["adder"]


@pytest.fixture
def web():
    class Handler(BaseHTTPRequestHandler):
        data = b""

        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(200)
            self.send_header("content-length", str(len(self.data)))
            self.end_headers()
            self.wfile.write(self.data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    server.shutdown()
    server.server_close()


def test_import_from_a_link(client, services, src, web):
    base, handler = web
    _, handler.data = completed_export(client, services, body={"pipelines": {}, "environment_variables": {"A": {}}})
    imp = ok(client.post(f"{BASE}/dst/imports", json={"import_link": base + "/x.zip"}, headers=AUTH), 201)
    assert imp["source"] == "link" and imp["size"] is None
    run_pending(services)
    i = ok(client.get(f"{BASE}/dst/imports/{imp['id']}", headers=AUTH))
    assert i["status"] == "confirmation" and i["size"] == len(handler.data)
    assert i["environment_variables"] == {"A": {"value": None, "secret": False}}  # exported without its value
    body = {"environment_variables": {"A": {"value": "given"}}}
    ok(client.patch(f"{BASE}/dst/imports/{imp['id']}", json=body, headers=AUTH))
    run_pending(services)
    assert ok(client.get(f"{BASE}/dst/imports/{imp['id']}", headers=AUTH))["status"] == "completed"
    (var,) = ok(client.get(f"{BASE}/dst/environment-variables", headers=AUTH))
    assert (var["name"], var["value"]) == ("A", "given")


def test_bad_input_answers_400_in_the_native_shape(client, services, src):
    p = f"{BASE}/src"
    for bad in (
        [],
        {"deployments": {"nope": {}}},
        {"deployments": {"adder": {"versions": {"v9": {}}}}},
        {"deployments": []},
        {"pipelines": {"nope": {}}},
        {"environments": {"python3-11": {}}},
        {"environment_variables": {"NOPE": {}}},
        {"all": "yes"},
        {"packages": 1},
        {"colour": "red"},
        {"services": {"s": {}}},
        {"deployments": {"add\x00er": {}}},
        {"description": 5},
    ):
        error_of(client.post(p + "/exports", json=bad, headers=AUTH), 400, "INVALID_INPUT")
    error_of(client.post(p + "/exports", content=b"{", headers=AUTH | {"content-type": "application/json"}), 400)
    error_of(client.get(p + "/exports", params={"status": "weird"}, headers=AUTH), 400, "INVALID_INPUT")
    error_of(client.get(p + "/imports", params={"status": "weird"}, headers=AUTH), 400, "INVALID_INPUT")
    for ident in ("nope", "a" * 300, "%00"):
        error_of(client.get(f"{p}/exports/{ident}", headers=AUTH), 404, "NOT_FOUND")
        error_of(client.get(f"{p}/exports/{ident}/download", headers=AUTH), 404)
        error_of(client.get(f"{p}/imports/{ident}", headers=AUTH), 404, "NOT_FOUND")
        error_of(client.patch(f"{p}/imports/{ident}", json={"pipelines": {"pipe": {}}}, headers=AUTH), 404)
        error_of(client.delete(f"{p}/imports/{ident}", headers=AUTH), 404)
    error_of(client.get(f"{BASE}/nope/exports", headers=AUTH), 404)

    for bad in (
        {},
        [],
        {"file_id": "", "export_id": ""},
        {"file_id": "abc", "export_id": "def"},
        {"skip_confirmation": "yes", "export_id": "x"},
        {"import_link": "ftp://example.org/x.zip"},
        {"import_link": "https://user:pw@example.org/x.zip"},
        {"import_link": "https://example.org/" + "x" * 5000},
        {"file_id": "x", "colour": "red"},
    ):
        error_of(client.post(p + "/imports", json=bad, headers=AUTH), 400)
    error_of(client.post(p + "/imports", json={"file_id": "nope"}, headers=AUTH), 404)
    error_of(client.post(p + "/imports", json={"file_id": "a\x00b"}, headers=AUTH), 404)
    error_of(client.post(p + "/imports", json={"export_id": "nope"}, headers=AUTH), 404)
    big = upload(client, b"x" * (MAX_IMPORT + 1), "big.zip")
    error_of(client.post(p + "/imports", json={"file_id": big["id"]}, headers=AUTH), 413, "TOO_LARGE")
    pending = ok(client.post(p + "/exports", json={"all": True}, headers=AUTH), 201)
    error_of(client.post(p + "/imports", json={"export_id": pending["id"]}, headers=AUTH), 400)  # not completed

    # a file that is no zip: created, then the scan fails with the reason
    junk = upload(client, b"this is not a zip file at all", "junk.zip")
    imp = ok(client.post(f"{BASE}/dst/imports", json={"file_id": junk["id"]}, headers=AUTH), 201)
    error_of(client.patch(f"{BASE}/dst/imports/{imp['id']}", json={"pipelines": {"p": {}}}, headers=AUTH), 400)
    run_pending(services)
    failed = ok(client.get(f"{BASE}/dst/imports/{imp['id']}", headers=AUTH))
    assert failed["status"] == "failed" and "not a zip" in failed["error_message"]

    e, data = completed_export(client, services, body={"pipelines": {"pipe": {"versions": {"v1": {}}}}})
    imp = ok(client.post(f"{BASE}/dst/imports", json={"file_id": upload(client, data)["id"]}, headers=AUTH), 201)
    run_pending(services)
    url = f"{BASE}/dst/imports/{imp['id']}"
    for bad in (
        {},
        [],
        {"pipelines": []},
        {"services": {"s": {}}},
        {"pipeline": {"pipe": {}}},
        {"pipelines": {"nope": {"versions": "x"}}},
        {"pipelines": {"pi\x00pe": {}}},
    ):
        error_of(client.patch(url, json=bad, headers=AUTH), 400, "INVALID_INPUT")
    # the pipeline's deployment is not in dst: the import fails naming it, nothing is created
    ok(client.patch(url, json={"pipelines": {"pipe": {}}}, headers=AUTH))
    run_pending(services)
    failed = ok(client.get(url, headers=AUTH))
    assert failed["status"] == "failed" and "unknown deployment 'adder'" in failed["error_message"]
    assert ok(client.get(f"{BASE}/dst/pipelines", headers=AUTH)) == []


def test_permissions(client, services, admin, src):
    p = f"{BASE}/src"
    e, data = completed_export(client, services)
    record = upload(client, data)
    imp = ok(client.post(p + "/imports", json={"file_id": record["id"]}, headers=AUTH), 201)
    run_pending(services)
    routes = [
        ("POST", p + "/exports", {"all": True}),
        ("GET", p + "/exports", None),
        ("GET", f"{p}/exports/{e['id']}", None),
        ("GET", f"{p}/exports/{e['id']}/download", None),
        ("HEAD", f"{p}/exports/{e['id']}/download", None),
        ("DELETE", f"{p}/exports/{e['id']}", None),
        ("POST", p + "/imports", {"export_id": e["id"]}),
        ("GET", p + "/imports", None),
        ("GET", f"{p}/imports/{imp['id']}", None),
        ("GET", f"{p}/imports/{imp['id']}/download", None),
        ("PATCH", f"{p}/imports/{imp['id']}", {"pipelines": {"pipe": {}}}),
        ("DELETE", f"{p}/imports/{imp['id']}", None),
    ]
    stranger_principal = member_of_new_org(services, "owner")  # another organisation, even its owner
    stranger = key_for(services, stranger_principal)
    for method, path, body in routes:
        resp = client.request(method, path, json=body, headers=stranger)
        assert resp.status_code == 404, (method, path, resp.text)
        by_id = client.request(method, path.replace("/src/", f"/{src}/"), json=body, headers=stranger)
        assert by_id.status_code == 404, (method, path, by_id.text)
    # another organisation's uploaded file cannot be imported by name of its id
    ok(client.post(BASE, json={"name": "mine"}, headers=stranger), 201)
    error_of(client.post(f"{BASE}/mine/imports", json={"file_id": record["id"]}, headers=stranger), 404)

    viewer = key_for(services, in_same_org(services, admin, "viewer"))
    for method, path, body in routes:
        resp = client.request(method, path, json=body, headers=viewer)
        if method in ("GET", "HEAD"):
            assert resp.status_code == 200, (method, path, resp.text)
        else:
            error_of(resp, 403, "FORBIDDEN")
    assert client.get(f"{p}/exports/{e['id']}/download", headers=viewer).content == data
    colleague = key_for(services, in_same_org(services, admin, "member"))  # no write access to admin's project
    error_of(client.post(p + "/exports", json={"all": True}, headers=colleague), 403)
    error_of(client.delete(f"{p}/imports/{imp['id']}", headers=colleague), 403)
    error_of(client.get(p + "/exports", headers={"Authorization": "Bearer nope"}), 401)
    error_of(client.get(p + "/exports"), 401)
    # nothing the refused calls asked for happened
    assert len(ok(client.get(p + "/exports", headers=AUTH))) == 1
    assert ok(client.get(f"{p}/imports/{imp['id']}", headers=AUTH))["status"] == "confirmation"


def store_objects(services) -> set[str]:
    root = services.files.store.root
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_streamed_exports_and_imports_that_fail_leave_nothing_behind(client, services, src):
    """The zip streams from a writing thread into the upload (and each imported package from the zip into its
    upload): a failure on either side fails the export or import with the reason, without a hang or stray bytes."""
    p = f"{BASE}/src"
    e, data = completed_export(client, services)
    before = store_objects(services)
    limits = services.transfer.limits
    services.transfer.limits = replace(limits, max_export_size=len(data) // 2)  # the upload side gives up
    try:
        small = ok(client.post(p + "/exports", json={"all": True}, headers=AUTH), 201)
        run_pending(services)
        failed = ok(client.get(f"{p}/exports/{small['id']}", headers=AUTH))
        assert failed["status"] == "failed" and failed["percent"] is None and failed["error_message"]
    finally:
        services.transfer.limits = limits
    assert store_objects(services) == before

    record = upload(client, data)
    imp = ok(client.post(f"{BASE}/dst/imports", json={"file_id": record["id"]}, headers=AUTH), 201)
    run_pending(services)
    before = store_objects(services)
    services.transfer.limits = replace(limits, max_member=100)  # the reading side gives up on the package
    try:
        body = {"deployments": {"adder": {"versions": {"v1": {"environment_variables": {"TOKEN": {"value": "x"}}}}}}}
        ok(client.patch(f"{BASE}/dst/imports/{imp['id']}", json=body, headers=AUTH))
        run_pending(services)
    finally:
        services.transfer.limits = limits
    failed = ok(client.get(f"{BASE}/dst/imports/{imp['id']}", headers=AUTH))
    assert failed["status"] == "failed" and "unpacks to more than 100 bytes" in failed["error_message"]
    assert ok(client.get(f"{BASE}/dst/deployments", headers=AUTH)) == []
    assert store_objects(services) == before

    # a package whose bytes vanished from the store: the writing thread fails, the export says why
    (version,) = ok(client.get(f"{p}/deployments/adder/versions", headers=AUTH))
    rev = ok(client.get(f"{p}/deployments/adder/versions/v1/revisions/{version['active_revision']}", headers=AUTH))
    for key, _ in services.files.segments(rev["file_id"]):
        services.files.store.local_path(key).unlink()
    broken = ok(client.post(p + "/exports", json={"all": True}, headers=AUTH), 201)
    run_pending(services)
    failed = ok(client.get(f"{p}/exports/{broken['id']}", headers=AUTH))
    assert failed["status"] == "failed" and failed["error_message"]
    assert e["id"] in {x["id"] for x in ok(client.get(p + "/exports", headers=AUTH))}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database involved
def test_the_stream_between_a_writing_thread_and_an_upload_never_hangs(db_url):
    import asyncio

    from modelharbor.core.bridges import PIPE_DEPTH, stream_from_thread

    written: list[int] = []

    def produce(pipe) -> None:
        for i in range(10 * PIPE_DEPTH):  # far more than the pipe holds: the writer blocks until read
            pipe.write(b"h")  # small writes are gathered …
            pipe.write(bytes([i % 256]) * MiB)  # … large ones pass through
            written.append(i)

    async def read_all(chunks) -> tuple[int, str]:
        h, n = hashlib.sha256(), 0
        async for piece in chunks:
            h.update(piece)
            n += len(piece)
        return n, h.hexdigest()

    expected = hashlib.sha256(b"".join(b"h" + bytes([i % 256]) * MiB for i in range(10 * PIPE_DEPTH))).hexdigest()
    assert asyncio.run(stream_from_thread(produce, read_all)) == (10 * PIPE_DEPTH * (MiB + 1), expected)

    async def give_up(chunks) -> None:
        async for _ in chunks:
            raise RuntimeError("the upload failed")

    written.clear()
    with pytest.raises(RuntimeError, match="the upload failed"):
        asyncio.run(asyncio.wait_for(stream_from_thread(produce, give_up), 30))
    assert len(written) < 10 * PIPE_DEPTH  # the writer stopped instead of filling the pipe forever

    def broken(pipe) -> None:
        pipe.write(b"x" * MiB)
        raise OSError("the package's bytes are gone")

    with pytest.raises(OSError, match="bytes are gone"):
        asyncio.run(asyncio.wait_for(stream_from_thread(broken, read_all), 30))
