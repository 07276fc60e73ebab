"""Domino's versioned project files over HTTP: the legacy /v1/projects routes the client calls and ops 129–130."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.api.dialects.domino.test_registered_models import failure, h
from tests.conftest import ADMIN_KEY
from tests.factories import member_of_new_org


@pytest.fixture
def project(services, admin):
    return services.projects.create_project(admin, f"files-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def P(project):
    return f"/v1/projects/admin/{project.name}"


def test_upload_list_commits_download(client, project, P):
    hd = h(ADMIN_KEY)
    r = client.put(f"{P}/README.md", content=b"# hello", headers=hd)
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "README.md" and len(r.json()["commitId"]) == 40
    r2 = client.put(f"{P}/src/train.py", content=b"print('x')" * 100, headers=hd)
    assert r2.status_code == 201, r2.text
    commits = client.get(f"{P}/commits", headers=hd).json()
    assert commits == [r2.json()["commitId"], r.json()["commitId"]]
    sha = commits[0]
    listing = client.get(f"{P}/files/{sha}//", headers=hd)  # the client's double slash: the root
    assert listing.status_code == 200, listing.text
    data = listing.json()["data"]
    assert [(e["path"], e["isDirectory"]) for e in data] == [("README.md", False), ("src", True)]
    readme = data[0]
    assert readme["size"] == 7 and len(readme["key"]) == 40 and isinstance(readme["lastModified"], int)
    assert client.get(f"{P}/files/{sha}", headers=hd).json() == listing.json()
    sub = client.get(f"{P}/files/{sha}/src", headers=hd).json()["data"]
    assert [e["path"] for e in sub] == ["src/train.py"]
    assert client.get(f"{P}/blobs/{readme['key']}", headers=hd).content == b"# hello"
    # op 130 (and 129), slashes not encoded, a leading slash giving //
    for api in ("v1", "beta"):
        url = f"/api/projects/{api}/projects/{project.id}/files/{sha}//src/train.py/content"
        got = client.get(url, headers=hd)
        assert got.status_code == 200 and got.content == b"print('x')" * 100
    encoded = client.get(f"/api/projects/v1/projects/{project.id}/files/{sha}/src%2Ftrain.py/content", headers=hd)
    assert encoded.status_code == 200
    ranged = client.get(
        f"/api/projects/v1/projects/{project.id}/files/{sha}/README.md/content", headers={**hd, "Range": "bytes=2-"}
    )
    assert ranged.status_code == 206 and ranged.content == b"hello"
    # the older commit has the old tree
    old = client.get(f"{P}/files/{commits[1]}//", headers=hd).json()["data"]
    assert [e["path"] for e in old] == ["README.md"]


def test_401_and_foreign_404(client, services, project, P):
    assert failure(client.get(f"{P}/commits"), 401)
    assert failure(client.put(f"{P}/a.txt", content=b"x"), 401)
    assert failure(client.get(f"{P}/commits", headers=h("wrong")), 401)
    outsider = member_of_new_org(services)
    key = services.identity.create_key(outsider, "k").secret
    assert "not found" in failure(client.get(f"{P}/commits", headers=h(key)), 404)
    assert failure(client.put(f"{P}/a.txt", content=b"x", headers=h(key)), 404)
    assert failure(
        client.get(f"/api/projects/v1/projects/{project.id}/files/{'a' * 40}/x/content", headers=h(key)), 404
    )
    assert failure(client.get("/v1/projects/nobody/none/commits", headers=h(ADMIN_KEY)), 404)


@pytest.mark.parametrize(
    "path,word",
    [("a/%2E%2E/x", ".."), ("%2E%2E", ".."), ("a%00b", "NUL"), ("", "must name a file"), ("a%5Cb", "'/'")],
)
def test_bad_paths_are_400(client, P, path, word):
    msg = failure(client.put(f"{P}/{path}", content=b"x", headers=h(ADMIN_KEY)), 400)
    assert word in msg and "path" in msg
    assert client.get(f"{P}/commits", headers=h(ADMIN_KEY)).json() == []


def test_empty_commit_and_bad_commit_ids_are_400_or_404(client, project, P):
    hd = h(ADMIN_KEY)
    assert client.put(f"{P}/a.txt", content=b"same", headers=hd).status_code == 201
    assert "empty commit" in failure(client.put(f"{P}/a.txt", content=b"same", headers=hd), 400)
    assert failure(client.get(f"{P}/files/not-a-sha//", headers=hd), 400)
    assert failure(client.get(f"{P}/files/{'0' * 40}//", headers=hd), 404)
    sha = client.get(f"{P}/commits", headers=hd).json()[0]
    assert failure(client.get(f"{P}/files/{sha}/missing", headers=hd), 404)
    assert failure(client.get(f"{P}/blobs/{'0' * 40}", headers=hd), 404)
    assert failure(client.get(f"{P}/blobs/short", headers=hd), 400)
    assert len(client.get(f"{P}/commits", headers=hd).json()) == 1


def test_cut_off_upload_leaves_no_commit_and_no_bytes(client, services, P):
    """A body that ends early (the client went away mid-body, as the server sees it): a 400, no commit, no file
    record, no stored object."""

    def stored():
        return sorted(p for p in services.settings.data_dir.rglob("*") if p.is_file() and "objects" in p.parts)

    before = stored()
    files_before = services.files.list(services.identity.principal_for("admin"), include_internal=True).total
    sent: list[dict] = []
    messages = [
        {"type": "http.request", "body": b"x" * 65536, "more_body": True},
        {"type": "http.request", "body": b"y" * 65536, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"{P}/big.bin",
        "raw_path": f"{P}/big.bin".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"x-domino-api-key", ADMIN_KEY.encode()), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(client.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    assert stored() == before
    assert services.files.list(services.identity.principal_for("admin"), include_internal=True).total == files_before
    assert client.get(f"{P}/commits", headers=h(ADMIN_KEY)).json() == []


def test_nul_in_owner_or_project_is_404(client):
    for path in ("/v1/projects/%00/p/commits", "/v1/projects/admin/%00/commits"):
        assert failure(client.get(path, headers=h(ADMIN_KEY)), 404)
        assert failure(client.put(path.replace("/commits", "/a.txt"), content=b"x", headers=h(ADMIN_KEY)), 404)
