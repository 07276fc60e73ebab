"""Native API /api/v1/uploads: chunked sessions (parallel chunks, status, complete, abort, list) and dedup."""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from modelharbor.app import create_app
from modelharbor.db.tables import UploadSessionRow
from modelharbor.domain.principal import Role
from modelharbor.services import build_services

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def native_error(resp, status: int, code: str, **details) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    for key, value in details.items():
        assert err["details"].get(key) == value, (key, err)
    return err


def stored_objects(services, prefix: str = "") -> list[str]:
    root = services.store.root
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def split(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i * step : (i + 1) * step] for i in range(n)]


class Uploads:
    """The native upload API over the TestClient, acting with one Bearer key."""

    def __init__(self, client: TestClient, key: str):
        self.client = client
        self.auth = bearer(key)

    def start(self, **body):
        return self.client.post("/api/v1/uploads", json=body, headers=self.auth)

    def started(self, name: str = "model.bin", total_chunks: int = 1, size: int | None = None, **more) -> dict:
        resp = self.start(name=name, total_chunks=total_chunks, size=size, **more)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def chunk(self, uid: str, number, data: bytes):
        return self.client.put(f"/api/v1/uploads/{uid}/chunks/{number}", content=data, headers=self.auth)

    def put(self, uid: str, number: int, data: bytes) -> None:
        resp = self.chunk(uid, number, data)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"number": number, "size": len(data)}

    def status(self, uid: str):
        return self.client.get(f"/api/v1/uploads/{uid}", headers=self.auth)

    def complete(self, uid: str):
        return self.client.post(f"/api/v1/uploads/{uid}/complete", headers=self.auth)

    def abort(self, uid: str):
        return self.client.delete(f"/api/v1/uploads/{uid}", headers=self.auth)

    def whole(self, data: bytes, chunks: int = 1, name: str = "model.bin", **more) -> dict:
        """Start, send every chunk, complete; the complete answer."""
        uid = self.started(name, chunks, len(data), **more)["id"]
        for n, piece in enumerate(split(data, chunks)):
            self.put(uid, n, piece)
        resp = self.complete(uid)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def content(self, file_id: str) -> bytes:
        resp = self.client.get(f"/api/v1/files/{file_id}/content", headers=self.auth)
        assert resp.status_code == 200, resp.text
        return resp.content


@pytest.fixture
def up(client, services) -> Uploads:
    return Uploads(client, services.settings.admin_key)


@pytest.fixture
def custom(settings):
    """``with custom(setting=value) as (up, services)``: an app with changed settings (instead of ``client``)."""

    @contextmanager
    def build(**overrides):
        changed = settings.model_copy(update=overrides)
        svc = build_services(changed)
        try:
            with TestClient(create_app(changed, svc, run_workers=False), raise_server_exceptions=False) as c:
                yield Uploads(c, changed.admin_key), svc
        finally:
            svc.close()

    return build


def expire(services, uid: str) -> None:
    with services.db.uow() as s:
        s.execute(
            update(UploadSessionRow)
            .where(UploadSessionRow.id == uid)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# --- the happy path ------------------------------------------------------------------------------------


def test_start(up, services):
    before = datetime.now(UTC)
    resp = up.start(name="llama.gguf", total_chunks=4, size=400, context="weights")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert UUID4.match(body["id"])
    expires, created = parse_time(body.pop("expires_at")), parse_time(body.pop("created_at"))
    assert body == {
        "id": body["id"],
        "name": "llama.gguf",
        "size": 400,
        "total_chunks": 4,
        "context": "weights",
        "state": "open",
        "received_bytes": 0,
        "chunks": [],
        "missing_chunks": [0, 1, 2, 3],
        "file_id": None,
        "chunk_size": None,
        "fingerprint": None,
        "deduplicated": False,
    }
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)
    assert abs((expires - created).total_seconds() - services.settings.upload_session_ttl) < 2


def test_start_without_size(up):
    body = up.started("unknown-size.bin", 2)
    assert body["size"] is None
    up.put(body["id"], 1, b"world")
    up.put(body["id"], 0, b"hello ")
    done = up.complete(body["id"]).json()
    assert done["file"]["size"] == 11
    assert up.content(done["file"]["id"]) == b"hello world"


def test_parallel_chunks_status_and_complete(up, services):
    data = os.urandom(64 * 1024 + 17)
    pieces = split(data, 16)
    uid = up.started("parallel.bin", 16, len(data))["id"]
    up.put(uid, 15, pieces[15])
    up.put(uid, 3, pieces[3])

    status = up.status(uid).json()
    assert status["chunks"] == [{"number": 3, "size": len(pieces[3])}, {"number": 15, "size": len(pieces[15])}]
    assert status["missing_chunks"] == [n for n in range(16) if n not in (3, 15)]
    assert status["received_bytes"] == len(pieces[3]) + len(pieces[15])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: up.chunk(uid, n, pieces[n]), [n for n in range(16) if n not in (3, 15)]))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]

    status = up.status(uid).json()
    assert status["chunks"] == [{"number": n, "size": len(p)} for n, p in enumerate(pieces)]
    assert (status["missing_chunks"], status["received_bytes"], status["state"]) == ([], len(data), "open")

    resp = up.complete(uid)
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert set(done) == {"upload", "file", "result"}
    assert done["result"] == {}
    assert done["upload"]["state"] == "completed"
    assert done["upload"]["missing_chunks"] == []
    assert done["upload"]["file_id"] == done["file"]["id"]
    f = done["file"]
    assert (f["name"], f["size"], f["extension"]) == ("parallel.bin", len(data), "bin")
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert up.content(f["id"]) == data
    assert up.status(uid).json()["state"] == "completed"
    assert stored_objects(services, "objects") == []  # completing does not copy bytes


def test_parallel_chunk_resends(up):
    """Every chunk sent three times concurrently: one copy of each wins, nothing is duplicated."""
    data = os.urandom(8 * 1000)
    pieces = split(data, 8)
    uid = up.started("race.bin", 8, len(data))["id"]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda n: up.chunk(uid, n % 8, pieces[n % 8]), range(24)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    assert up.status(uid).json()["received_bytes"] == len(data)
    done = up.complete(uid).json()
    assert up.content(done["file"]["id"]) == data


def test_resent_chunk_replaces(up, services):
    uid = up.started("r.bin", 2)["id"]
    up.put(uid, 0, b"first version")
    up.put(uid, 0, b"v2")
    up.put(uid, 1, b"|end")
    assert up.status(uid).json()["chunks"] == [{"number": 0, "size": 2}, {"number": 1, "size": 4}]
    assert len(stored_objects(services, f"uploads/{uid}")) == 2
    assert up.content(up.complete(uid).json()["file"]["id"]) == b"v2|end"


def test_complete_with_missing_chunks(up):
    uid = up.started("m.bin", 4, 8)["id"]
    up.put(uid, 0, b"aa")
    up.put(uid, 2, b"cc")
    err = native_error(
        up.complete(uid), 400, "MISSING_CHUNKS", total_chunks=4, received_chunks=[0, 2], missing_chunks=[1, 3]
    )
    assert "1, 3" in err["message"]
    assert up.status(uid).json()["state"] == "open"
    up.put(uid, 1, b"bb")
    up.put(uid, 3, b"dd")
    assert up.content(up.complete(uid).json()["file"]["id"]) == b"aabbccdd"


def test_complete_with_size_mismatch(up):
    uid = up.started("s.bin", 2, 10)["id"]
    up.put(uid, 0, b"abc")
    up.put(uid, 1, b"de")
    native_error(up.complete(uid), 400, "SIZE_MISMATCH", expected_size=10, received_size=5)
    native_error(up.chunk(uid, 1, b"d" * 8), 400, "SIZE_MISMATCH", expected_size=10, received_size=11)
    up.put(uid, 1, b"defghij")
    assert up.content(up.complete(uid).json()["file"]["id"]) == b"abcdefghij"


def test_complete_is_idempotent(up):
    uid = up.started("i.bin", 1, 3)["id"]
    up.put(uid, 0, b"xyz")
    first = up.complete(uid).json()
    second = up.complete(uid)
    assert second.status_code == 200
    assert second.json() == first
    native_error(up.chunk(uid, 0, b"xyz"), 409, "SESSION_COMPLETED")
    native_error(up.abort(uid), 409, "SESSION_COMPLETED")


def test_abort(up, services):
    uid = up.started("a.bin", 3, 9)["id"]
    up.put(uid, 0, b"aaa")
    up.put(uid, 2, b"ccc")
    assert len(stored_objects(services, f"uploads/{uid}")) == 2
    resp = up.abort(uid)
    assert (resp.status_code, resp.content) == (204, b"")
    assert stored_objects(services, "uploads") == []
    status = up.status(uid).json()
    assert (status["state"], status["chunks"], status["missing_chunks"]) == ("aborted", [], [])
    native_error(up.chunk(uid, 1, b"bbb"), 410, "SESSION_ABORTED")
    native_error(up.complete(uid), 410, "SESSION_ABORTED")
    assert uid not in [u["id"] for u in up.client.get("/api/v1/uploads", headers=up.auth).json()]


def test_list_open_sessions(up):
    a = up.started("a.bin", 2, 10)
    b = up.started("b.bin", 1, 5)
    c = up.started("a.bin", 1, 7)
    done = up.started("done.bin", 1, 1)
    up.put(done["id"], 0, b"x")
    up.complete(done["id"])
    gone = up.started("gone.bin", 1, 1)
    up.abort(gone["id"])
    up.put(a["id"], 1, b"12345")

    listed = up.client.get("/api/v1/uploads", headers=up.auth).json()
    assert [u["id"] for u in listed] == [c["id"], b["id"], a["id"]]  # newest first
    assert listed[2]["chunks"] == [{"number": 1, "size": 5}] and listed[2]["missing_chunks"] == [0]
    by_name = up.client.get("/api/v1/uploads?name=a.bin", headers=up.auth).json()
    assert [u["id"] for u in by_name] == [c["id"], a["id"]]
    by_both = up.client.get("/api/v1/uploads?name=a.bin&size=10", headers=up.auth).json()
    assert [u["id"] for u in by_both] == [a["id"]]
    assert up.client.get("/api/v1/uploads?name=zzz", headers=up.auth).json() == []


# --- expiry, limits, bad input -------------------------------------------------------------------------


def test_expired_session(up, services):
    uid = up.started("e.bin", 2, 4)["id"]
    up.put(uid, 0, b"ab")
    expire(services, uid)
    native_error(up.chunk(uid, 1, b"cd"), 410, "SESSION_EXPIRED")
    native_error(up.complete(uid), 410, "SESSION_EXPIRED")
    assert up.client.get("/api/v1/uploads", headers=up.auth).json() == []
    assert len(stored_objects(services, f"uploads/{uid}")) == 1


def test_chunk_larger_than_the_limit(custom):
    with custom(max_chunk_size=1024) as (up, svc):
        uid = up.started("big.bin", 4)["id"]
        native_error(up.chunk(uid, 0, b"x" * 1025), 413, "FILE_TOO_LARGE", limit=1024)
        native_error(up.chunk(uid, 1, b"x" * 100_000), 413, "FILE_TOO_LARGE", limit=1024)
        assert stored_objects(svc) == []
        assert up.status(uid).json()["chunks"] == []
        up.put(uid, 0, b"x" * 1024)


def test_chunk_larger_than_the_declared_size(up, services):
    uid = up.started("small.bin", 2, 10)["id"]
    native_error(up.chunk(uid, 0, b"x" * 11), 413, "FILE_TOO_LARGE", limit=10)
    assert stored_objects(services, "uploads") == []


def test_start_limits(custom):
    with custom(max_upload_size=1000, max_chunks=4) as (up, _svc):
        native_error(up.start(name="a", total_chunks=1, size=1001), 413, "FILE_TOO_LARGE", limit=1000)
        native_error(up.start(name="a", total_chunks=5, size=100), 400, "INVALID_INPUT", field="total_chunks")
        assert up.start(name="a", total_chunks=4, size=1000).status_code == 201


@sqlite_only
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"total_chunks": 1}', "application/json"),
        (b'{"name": "a.bin"}', "application/json"),
        (b'{"name": "", "total_chunks": 1}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": 0}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": -2}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": "many"}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": 1, "size": -1}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": 4, "size": 3}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": 1, "colour": "red"}', "application/json"),
        (b'{"name": "a.bin", "total_chunks": 1, "context": "' + b"c" * 201 + b'"}', "application/json"),
        (b"name=a.bin&total_chunks=1", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
    ids=[
        "invalid-json",
        "array",
        "no-name",
        "no-total",
        "empty-name",
        "zero-chunks",
        "negative-chunks",
        "word-chunks",
        "negative-size",
        "more-chunks-than-bytes",
        "unknown-field",
        "long-context",
        "form-encoded",
        "empty-body",
    ],
)
def test_start_bad_input(up, body, content_type):
    resp = up.client.post("/api/v1/uploads", content=body, headers={**up.auth, "content-type": content_type})
    if content_type == "application/x-www-form-urlencoded":  # not JSON: the answer names the header to send
        native_error(resp, 415, "UNSUPPORTED_TYPE")
    else:
        native_error(resp, 400, "INVALID_INPUT")


@sqlite_only
def test_bad_chunk_numbers(up, services):
    uid = up.started("n.bin", 4, 100)["id"]
    native_error(up.chunk(uid, -1, b"x"), 400, "INVALID_INPUT")
    native_error(up.chunk(uid, "abc", b"x"), 400, "INVALID_INPUT")
    native_error(up.chunk(uid, 4, b"x"), 400, "INVALID_CHUNK_NUMBER")
    native_error(up.chunk(uid, 10**12, b"x"), 400, "INVALID_CHUNK_NUMBER")
    assert stored_objects(services) == []


def test_unknown_session(up):
    uid = "00000000-0000-4000-8000-000000000000"
    for resp in (up.status(uid), up.chunk(uid, 0, b"x"), up.complete(uid), up.abort(uid)):
        native_error(resp, 404, "SESSION_NOT_FOUND")


@sqlite_only
def test_upload_routes_need_auth(client):
    uid = "00000000-0000-4000-8000-000000000000"
    for resp in (
        client.post("/api/v1/uploads", json={"name": "a", "total_chunks": 1}),
        client.get("/api/v1/uploads"),
        client.get(f"/api/v1/uploads/{uid}"),
        client.put(f"/api/v1/uploads/{uid}/chunks/0", content=b"x"),
        client.post(f"/api/v1/uploads/{uid}/complete"),
        client.delete(f"/api/v1/uploads/{uid}"),
    ):
        native_error(resp, 401, "UNAUTHENTICATED")


# --- dedup ---------------------------------------------------------------------------------------------


def test_identical_uploads_share_one_blob(up, services):
    data = os.urandom(5000)
    first = up.client.post("/api/v1/files?name=one.bin", content=data, headers=up.auth).json()
    second = up.client.post("/api/v1/files?name=two.bin", content=data, headers=up.auth).json()
    third = up.whole(data, 3, name="three.bin")["file"]
    assert first["sha256"] == second["sha256"] == third["sha256"] == hashlib.sha256(data).hexdigest()
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert len(stored_objects(services)) == 1  # one copy of the bytes: the redundant objects were deleted

    assert up.client.delete(f"/api/v1/files/{first['id']}", headers=up.auth).status_code == 204
    assert up.content(second["id"]) == data
    assert up.content(third["id"]) == data
    assert up.client.delete(f"/api/v1/files/{second['id']}", headers=up.auth).status_code == 204
    assert up.content(third["id"]) == data
    assert len(stored_objects(services)) == 1
    assert up.client.delete(f"/api/v1/files/{third['id']}", headers=up.auth).status_code == 204
    assert stored_objects(services) == []


def test_chunked_upload_first_then_identical_single_upload(up, services):
    data = os.urandom(3000)
    chunked = up.whole(data, 3, name="c.bin")["file"]
    assert len(stored_objects(services, "uploads")) == 3
    single = up.client.post("/api/v1/files?name=s.bin", content=data, headers=up.auth).json()
    assert single["sha256"] == chunked["sha256"] and single["id"] != chunked["id"]
    assert stored_objects(services, "objects") == []  # the single upload's own copy was dropped
    up.client.delete(f"/api/v1/files/{chunked['id']}", headers=up.auth)
    assert up.content(single["id"]) == data
    up.client.delete(f"/api/v1/files/{single['id']}", headers=up.auth)
    assert stored_objects(services) == []


# --- who may touch a session ---------------------------------------------------------------------------


@pytest.fixture
def outsider(client, services, admin) -> Uploads:
    services.identity.create_org(admin, "other-org")
    owner_there = services.identity.principal_for(admin.username, "other-org")
    services.identity.create_user(owner_there, "bob", role=Role.MEMBER)
    return Uploads(client, services.identity.create_key(owner_there, "bob", username="bob").secret)


@pytest.fixture
def colleague(client, services, admin) -> Uploads:
    """A plain member of the admin's own organisation."""
    services.identity.create_user(admin, "mia", role=Role.MEMBER)
    return Uploads(client, services.identity.create_key(admin, "mia", username="mia").secret)


def test_other_organisation_cannot_touch_a_session(up, outsider, services):
    uid = up.started("mine.bin", 2, 4)["id"]
    up.put(uid, 0, b"ab")
    for resp in (outsider.status(uid), outsider.chunk(uid, 1, b"cd"), outsider.complete(uid), outsider.abort(uid)):
        assert resp.status_code == 404, resp.text
    assert outsider.client.get("/api/v1/uploads", headers=outsider.auth).json() == []
    assert outsider.started("theirs.bin", 1, 1)["state"] == "open"
    assert [u["id"] for u in up.client.get("/api/v1/uploads", headers=up.auth).json()] == [uid]
    up.put(uid, 1, b"cd")
    assert up.content(up.complete(uid).json()["file"]["id"]) == b"abcd"


def test_a_session_is_private_to_its_owner(up, colleague, services):
    uid = up.started("mine.bin", 2, 4)["id"]
    up.put(uid, 0, b"ab")
    for resp in (
        colleague.status(uid),
        colleague.chunk(uid, 1, b"cd"),
        colleague.complete(uid),
        colleague.abort(uid),
    ):
        native_error(resp, 404, "SESSION_NOT_FOUND")
    assert colleague.client.get("/api/v1/uploads", headers=colleague.auth).json() == []
    # ... but the organisation's admin may act on the colleague's session
    theirs = colleague.started("theirs.bin", 1, 2)["id"]
    up.put(theirs, 0, b"ok")
    assert up.status(theirs).json()["received_bytes"] == 2
    assert up.status(uid).json()["state"] == "open"
