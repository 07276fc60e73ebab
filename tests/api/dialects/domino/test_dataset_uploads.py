"""The Domino client's resumable dataset upload over HTTP (spec §5.5), on SQLite and PostgreSQL: start → key, test
(204/200), multipart chunks named by the relative path with their MD5, end with the collision setting and a target,
cancel; bad input as 400 naming the problem, a reader's 403, another user's key, 401. The real client drives it in
tests/e2e/test_domino_datasets.py."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from modelharbor.core.dataset_access import READER
from tests.api.dialects.domino.test_registered_models import failure, h, new_user

CHUNK = 1000


def base(ds: str) -> str:
    return f"/v4/datasetrw/datasets/{ds}/snapshot/file"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def params(upload_key, path, data, n, **over):
    chunks = max(1, -(-len(data) // CHUNK))
    piece = data[(n - 1) * CHUNK : n * CHUNK]
    p = {
        "key": upload_key, "resumableChunkNumber": n, "resumableChunkSize": CHUNK, "resumableCurrentChunkSize": len(piece),
        "resumableIdentifier": f"{len(data)}-{path.rsplit('/', 1)[-1]}", "resumableRelativePath": path,
        "resumableTotalChunks": chunks, "checksum": md5(piece),
    }  # fmt: skip
    p.update(over)
    return p, piece


def post_chunk(client, key_h, ds, upload_key, path, data, n, **over):
    p, piece = params(upload_key, path, data, n, **over)
    files = {path: (path.rsplit("/", 1)[-1], piece, "application/octet-stream")}
    return client.post(base(ds), params=p, files=files, headers={**key_h, "Csrf-Token": "nocheck"})


def probe(client, key_h, ds, key, path, data, n):
    p, _ = params(key, path, data, n)
    del p["resumableRelativePath"], p["resumableChunkSize"], p["resumableCurrentChunkSize"]
    return client.get(base(ds) + "/test", params=p, headers=key_h).status_code


@pytest.fixture
def setup(client, services, admin):
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"up-{uuid.uuid4().hex[:6]}")
    ds = services.datasets.create(principal, project.id, "training").id
    return principal, h(key), ds


def start(client, key_h, ds, setting="Ignore"):
    r = client.post(base(ds) + "/start", json={"filePaths": [], "fileCollisionSetting": setting}, headers=key_h)
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), str)
    return r.json()


def content(client, key_h, ds, path):
    bearer = {"Authorization": f"Bearer {key_h['X-Domino-Api-Key']}"}  # the native route reads the bytes
    r = client.get(f"/api/v1/datasets/{ds}/files/content", params={"path": path}, headers=bearer)
    assert r.status_code == 200, r.text
    return r.content


def test_upload_folder_and_resume_after_a_killed_client(client, services, setup):
    principal, key_h, ds = setup
    files = {"data/a.csv": b"a,b\n" * 700, "data/sub/b.bin": bytes(range(256)) * 9, "data/empty.txt": b""}
    key = start(client, key_h, ds)
    for path, data in files.items():
        for n in reversed(range(1, max(1, -(-len(data) // CHUNK)) + 1)):  # any order
            assert probe(client, key_h, ds, key, path, data, n) == 204
            r = post_chunk(client, key_h, ds, key, path, data, n)
            assert r.status_code == 200, r.text
    r = client.get(base(ds) + f"/end/{key}", params={"targetRelativePath": "in"}, headers=key_h)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["written"]) == sorted(f"in/{p}" for p in files)
    for path, data in files.items():
        assert content(client, key_h, ds, f"in/{path}") == data
    # a client killed mid-upload: its key stays open; the re-run's tests skip what the server holds
    big = bytes(range(251)) * 20  # 5,020 bytes: 6 chunks
    first = start(client, key_h, ds)
    for n in (1, 2, 4):
        assert post_chunk(client, key_h, ds, first, "big.bin", big, n).status_code == 200
    second = start(client, key_h, ds)
    answers = [probe(client, key_h, ds, second, "big.bin", big, n) for n in range(1, 7)]
    assert answers == [200, 200, 204, 200, 204, 204]
    for n in (3, 5, 6):
        assert post_chunk(client, key_h, ds, second, "big.bin", big, n).status_code == 200
    assert client.get(base(ds) + f"/end/{second}", headers=key_h).json()["written"] == ["big.bin"]
    assert content(client, key_h, ds, "big.bin") == big


def test_collision_settings(client, services, setup):
    principal, key_h, ds = setup
    for setting, expect in (("Ignore", b"one"), ("Overwrite", b"two"), ("Rename", b"two")):
        key = start(client, key_h, ds, setting)
        data = setting.encode()
        post_chunk(client, key_h, ds, key, "f.txt", b"one" if setting == "Ignore" else b"two", 1)
        r = client.get(base(ds) + f"/end/{key}", headers=key_h)
        assert r.status_code == 200, r.text
        assert content(client, key_h, ds, "f.txt") == expect, (setting, data)
    assert r.json()["renamed"] == {"f.txt": "f_1.txt"} and content(client, key_h, ds, "f_1.txt") == b"two"


def test_bad_input_and_permissions(client, services, admin, setup):
    principal, key_h, ds = setup
    key = start(client, key_h, ds)
    data = b"x" * 2500
    bad = post_chunk(client, key_h, ds, key, "f.bin", data, 1, checksum="0" * 32)
    assert "MD5" in failure(bad, 400)
    assert probe(client, key_h, ds, key, "f.bin", data, 1) == 204  # nothing kept of it
    for over, problem in (
        ({"resumableChunkNumber": 4}, "out of range"),
        ({"resumableChunkNumber": 0}, "resumableChunkNumber"),
        ({"resumableRelativePath": "../etc/passwd"}, "'..'"),
        ({"resumableRelativePath": "/abs"}, "relative"),
        ({"resumableRelativePath": "a\x00b"}, "NUL"),
        ({"key": uuid.uuid4().hex}, "unknown upload key"),
        ({"checksum": "xyz"}, "checksum"),
        ({"resumableIdentifier": "nosize"}, "resumableIdentifier"),
    ):
        assert problem in failure(post_chunk(client, key_h, ds, key, "f.bin", data, 1, **over), 400), over
    r = client.post(base(ds) + "/start", json={"fileCollisionSetting": "Merge"}, headers=key_h)
    assert "fileCollisionSetting" in failure(r, 400)
    assert post_chunk(client, key_h, ds, key, "f.bin", data, 1).status_code == 200
    missing = client.get(base(ds) + f"/end/{key}", headers=key_h)
    assert "f.bin (1 of 3 chunks)" in failure(missing, 400)
    assert client.get(base(ds) + f"/cancel/{key}", headers=key_h).status_code == 200
    assert failure(post_chunk(client, key_h, ds, key, "f.bin", data, 2), 410)
    assert "unknown upload key" in failure(client.get(base(ds) + f"/end/{uuid.uuid4().hex}", headers=key_h), 400)
    reader, reader_key = new_user(services, admin)
    services.datasets.add_grant(principal, ds, reader.user_id, READER)
    assert failure(client.post(base(ds) + "/start", json={}, headers=h(reader_key)), 403)
    other = start(client, key_h, ds)
    assert "unknown upload key" in failure(post_chunk(client, h(reader_key), ds, other, "f.bin", data, 1), 400)
    assert client.post(base(ds) + "/start", json={}).status_code == 401
    assert failure(client.post(base(uuid.uuid4().hex[:24]) + "/start", json={}, headers=key_h), 404)
