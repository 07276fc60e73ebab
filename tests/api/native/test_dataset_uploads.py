"""Native dataset upload routes (``/api/v1/datasets/{id}/uploads``) on SQLite and PostgreSQL: open, chunks in any
order with an optional MD5, the status a resuming client reads, end (collision, target), cancel; bad input in the
native envelope, a reader's 403, another user's key, 401."""

from __future__ import annotations

import hashlib
import uuid

from modelharbor.core.dataset_access import READER
from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def url(ds: str, rest: str = "") -> str:
    return f"/api/v1/datasets/{ds}/uploads{rest}"


def dataset(services, admin) -> str:
    project = services.projects.create_project(admin, f"nu-{uuid.uuid4().hex[:6]}")
    return services.datasets.create(admin, project.id, "train").id


def put(client, ds, key, file_path, data, number, chunk, headers=AUTH, **extra):
    piece = data[number * chunk : (number + 1) * chunk]
    q = {
        "path": file_path,
        "size": len(data),
        "total_chunks": max(1, -(-len(data) // chunk)),
        "chunk_size": chunk,
        **extra,
    }
    return client.put(url(ds, f"/{key}/chunks/{number}"), params=q, content=piece, headers=headers)


def test_upload_resume_and_land(client, services, admin):
    ds = dataset(services, admin)
    r = client.post(url(ds), json={"collision": "Rename"}, headers=AUTH)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["state"] == "open" and up["collision"] == "Rename" and up["files"] == []
    key = up["key"]
    data = bytes(range(256)) * 10  # 2,560 bytes, 3 chunks of 1,000
    for n in (2, 0):
        md5 = hashlib.md5(data[n * 1000 : (n + 1) * 1000]).hexdigest()
        assert put(client, ds, key, "dir/a.bin", data, n, 1000, md5=md5).json() == {
            "number": n,
            "size": 1000 if n < 2 else 560,
        }
    status = client.get(url(ds, f"/{key}"), headers=AUTH).json()
    assert [(f["path"], f["received"], f["total_chunks"]) for f in status["files"]] == [("dir/a.bin", [0, 2], 3)]
    assert [u["key"] for u in client.get(url(ds), headers=AUTH).json()] == [key]
    missing = client.post(url(ds, f"/{key}/end"), json={}, headers=AUTH)
    assert missing.status_code == 400 and "dir/a.bin (2 of 3 chunks)" in missing.text
    assert put(client, ds, key, "dir/a.bin", data, 1, 1000).status_code == 200
    assert put(client, ds, key, "b.txt", b"hello", 0, 1000).status_code == 200
    done = client.post(url(ds, f"/{key}/end"), json={"target": "in"}, headers=AUTH)
    assert done.status_code == 200, done.text
    body = done.json()
    assert [e["path"] for e in body["written"]] == ["in/b.txt", "in/dir/a.bin"]
    assert body["written"][1]["key"] == hashlib.sha256(data).hexdigest()[:40]
    assert client.post(url(ds, f"/{key}/end"), json={"target": "in"}, headers=AUTH).json() == body
    got = client.get(f"/api/v1/datasets/{ds}/files/content", params={"path": "in/dir/a.bin"}, headers=AUTH)
    assert got.content == data
    again = client.post(url(ds), json={"collision": "Rename"}, headers=AUTH).json()["key"]
    put(client, ds, again, "b.txt", b"second", 0, 1000)
    assert client.post(url(ds, f"/{again}/end"), json={"target": "in"}, headers=AUTH).json()["renamed"] == {
        "b.txt": "in/b_1.txt"
    }
    assert client.get(url(ds), headers=AUTH).json() == []  # ended: not open any more


def test_bad_input_cancel_and_permissions(client, services, admin):
    ds = dataset(services, admin)
    key = client.post(url(ds), json={}, headers=AUTH).json()["key"]
    data = b"z" * 1500
    bad_md5 = put(client, ds, key, "f", data, 0, 1000, md5="0" * 32)
    assert bad_md5.status_code == 400 and bad_md5.json()["error"]["code"] == "CHECKSUM_MISMATCH"
    for params, problem in (
        ({"path": "../x"}, "'..'"),
        ({"path": "/x"}, "relative"),
        ({"md5": "nothex"}, "md5"),
        ({"total_chunks": 0}, "total_chunks"),
    ):
        r = put(client, ds, key, "f", data, 0, 1000, **params)
        assert r.status_code in (400, 422) and problem in r.text, (params, r.text)
    assert put(client, ds, key, "f", data, 5, 1000).status_code == 400  # out of range
    assert "unknown upload key" in put(client, ds, uuid.uuid4().hex, "f", data, 0, 1000).text
    assert client.post(url(ds), json={"collision": "Merge"}, headers=AUTH).status_code in (400, 422)
    assert put(client, ds, key, "f", data, 0, 1000).status_code == 200
    assert client.delete(url(ds, f"/{key}"), headers=AUTH).status_code == 204
    assert client.delete(url(ds, f"/{key}"), headers=AUTH).status_code == 204
    assert put(client, ds, key, "f", data, 1, 1000).status_code == 410
    assert client.get(url(ds, f"/{key}"), headers=AUTH).json()["state"] == "cancelled"
    user = services.identity.create_user(admin, f"r-{uuid.uuid4().hex[:6]}", role=Role.MEMBER)
    reader = services.identity.principal_by_ids(user.id, admin.org_id)
    services.datasets.add_grant(admin, ds, user.id, READER)
    rh = {"Authorization": f"Bearer {services.identity.create_key(reader, 'k').secret}"}
    assert client.post(url(ds), json={}, headers=rh).status_code == 403
    other = client.post(url(ds), json={}, headers=AUTH).json()["key"]
    assert "unknown upload key" in client.get(url(ds, f"/{other}"), headers=rh).text
    assert client.post(url(ds), json={}).status_code == 401
    assert client.post(url(uuid.uuid4().hex[:24]), json={}, headers=AUTH).status_code == 404
