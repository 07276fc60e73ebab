"""The native project-file routes over HTTP: log, listing, streamed upload, ranged download, errors."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ADMIN_KEY
from tests.factories import member_of_new_org

H = {"Authorization": f"Bearer {ADMIN_KEY}"}


def err(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]["message"]


@pytest.fixture
def pid(client):
    r = client.post("/api/v1/projects", json={"name": f"nf-{uuid.uuid4().hex[:6]}"}, headers=H)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_upload_log_list_download(client, pid):
    base = f"/api/v1/projects/{pid}"
    empty = client.get(f"{base}/files", headers=H).json()
    assert empty == {"commit": None, "path": "", "entries": []}
    c1 = client.put(f"{base}/files", params={"path": "data/a.csv"}, content=b"x,y\n1,2\n", headers=H)
    assert c1.status_code == 201, c1.text
    c2 = client.put(f"{base}/files", params={"path": "README.md"}, content=b"hi", headers=H)
    log = client.get(f"{base}/commits", headers=H).json()["items"]
    assert [c["id"] for c in log] == [c2.json()["id"], c1.json()["id"]] and log[0]["author"] == "admin"
    root = client.get(f"{base}/files", headers=H).json()
    assert [(e["name"], e["is_dir"]) for e in root["entries"]] == [("README.md", False), ("data", True)]
    at_c1 = client.get(f"{base}/files", params={"commit": c1.json()["id"], "path": "data"}, headers=H).json()
    assert [e["path"] for e in at_c1["entries"]] == ["data/a.csv"]
    got = client.get(f"{base}/files/content", params={"path": "data/a.csv"}, headers=H)
    assert got.status_code == 200 and got.content == b"x,y\n1,2\n"
    part = client.get(f"{base}/files/content", params={"path": "data/a.csv"}, headers={**H, "Range": "bytes=0-2"})
    assert part.status_code == 206 and part.content == b"x,y"
    head = client.head(f"{base}/files/content", params={"path": "README.md"}, headers=H)
    assert head.status_code == 200 and head.headers["content-length"] == "2"


def test_errors(client, services, pid):
    base = f"/api/v1/projects/{pid}"
    assert err(client.get(f"{base}/commits"), 401)
    for bad, word in (("../x", ".."), ("/abs", "relative"), ("a\x00b", "NUL")):
        assert word in err(client.put(f"{base}/files", params={"path": bad}, content=b"x", headers=H), 400)
    client.put(f"{base}/files", params={"path": "a"}, content=b"x", headers=H)
    assert "empty commit" in err(client.put(f"{base}/files", params={"path": "a"}, content=b"x", headers=H), 400)
    assert err(client.get(f"{base}/files/content", params={"path": "nope"}, headers=H), 404)
    assert err(client.get(f"{base}/files", params={"commit": "f" * 40}, headers=H), 404)
    outsider = member_of_new_org(services)
    other = {"Authorization": f"Bearer {services.identity.create_key(outsider, 'k').secret}"}
    assert err(client.get(f"{base}/commits", headers=other), 404)
    assert err(client.put(f"{base}/files", params={"path": "b"}, content=b"x", headers=other), 404)
    assert err(client.get("/api/v1/projects/" + "0" * 24 + "/commits", headers=H), 404)


def test_project_file_content_is_internal_and_in_use(client, pid):
    base = f"/api/v1/projects/{pid}"
    client.put(f"{base}/files", params={"path": "kept.bin"}, content=b"kept bytes", headers=H)
    listed = client.get("/api/v1/files", params={"context": "project-file", "limit": 1000}, headers=H).json()["items"]
    mine = [f for f in listed if f["name"] == "kept.bin"]
    assert mine and mine[0]["internal"] is True
    assert "kept.bin" not in [f["name"] for f in client.get("/api/v1/files", headers=H).json()["items"]]
    detail = client.get(f"/api/v1/files/{mine[0]['id']}", headers=H).json()
    assert [u["kind"] for u in detail["used_by"]] == ["project_file"]
    assert "versioned files of project" in err(client.delete(f"/api/v1/files/{mine[0]['id']}", headers=H), 409)
