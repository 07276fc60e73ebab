"""Native API /api/v1/files: raw-body uploads, listing, get, delete, content with ranges and HEAD, signed links."""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from modelharbor.api.dialects.kore import mapping as kore_mapping
from modelharbor.app import create_app
from modelharbor.domain.principal import Role
from modelharbor.services import build_services

HEX24 = re.compile(r"^[0-9a-f]{24}$")
DATA = bytes(range(50))  # a 50-byte file for the range tests
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def native_error(resp, status: int, code: str, **details) -> dict:
    """Assert the native error envelope ``{"error": {"code", "message", "details"}}``; return the error."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    for key, value in details.items():
        assert err["details"].get(key) == value, (key, err)
    return err


def stored_objects(services, prefix: str = "") -> list[str]:
    root = services.store.root
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def auth(services) -> dict[str, str]:
    return bearer(services.settings.admin_key)


def upload(client, auth, data: bytes, name: str = "weights.bin", context: str | None = None, **params):
    query = {"name": name, **({"context": context} if context is not None else {}), **params}
    return client.post(f"/api/v1/files?{urlencode(query)}", content=data, headers=auth)


def uploaded(client, auth, data: bytes = DATA, name: str = "weights.bin", context: str | None = None) -> dict:
    resp = upload(client, auth, data, name, context)
    assert resp.status_code == 201, resp.text
    return resp.json()


def link_of(client, auth, file_id: str, **body) -> dict:
    resp = client.post(f"/api/v1/files/{file_id}/links", json=body or None, headers=auth)
    assert resp.status_code == 200, resp.text
    return resp.json()


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return f"{parts.path}?{urlencode(q)}"


@pytest.fixture
def outsider(services, admin) -> dict[str, str]:
    """Bearer headers of a member of another organisation."""
    services.identity.create_org(admin, "other-org")
    owner_there = services.identity.principal_for(admin.username, "other-org")
    services.identity.create_user(owner_there, "bob", role=Role.MEMBER)
    return bearer(services.identity.create_key(owner_there, "bob", username="bob").secret)


@pytest.fixture
def custom_client(settings):
    @contextmanager
    def build(**overrides):
        changed = settings.model_copy(update=overrides)
        svc = build_services(changed)
        try:
            with TestClient(create_app(changed, svc, run_workers=False), raise_server_exceptions=False) as c:
                yield c, svc
        finally:
            svc.close()

    return build


# --- upload --------------------------------------------------------------------------------------------


def test_upload_raw_body(client, auth, services, admin):
    data = b"\x00weights\xff" * 1000
    before = datetime.now(UTC)
    resp = upload(client, auth, data, "weights.bin", "checkpoints")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {
        "id",
        "name",
        "extension",
        "size",
        "sha256",
        "content_type",
        "context",
        "owner_id",
        "created_at",
        "internal",
    }
    assert body["internal"] is False
    assert HEX24.match(body["id"])
    assert body["name"] == "weights.bin"
    assert body["extension"] == "bin"
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["content_type"] == "application/octet-stream"
    assert body["context"] == "checkpoints"
    assert body["owner_id"] == admin.user_id
    assert before - timedelta(seconds=1) <= parse_time(body["created_at"]) <= datetime.now(UTC)
    assert len(stored_objects(services, "objects")) == 1


@pytest.mark.parametrize(
    ("name", "extension", "content_type"),
    [
        ("config.json", "json", "application/json"),
        ("model.tar.gz", "tar.gz", None),
        ("README", "", "application/octet-stream"),
        ("Photo.PNG", "png", "image/png"),
        ("dir/sub/näme.safetensors", "safetensors", None),
    ],
)
@sqlite_only
def test_upload_names_and_extensions(client, auth, name, extension, content_type):
    body = uploaded(client, auth, b"x", name)
    assert (body["name"], body["extension"]) == (name, extension)
    if content_type:
        assert body["content_type"] == content_type
    assert body["context"] == ""


def test_upload_streamed_body(client, auth):
    pieces = [bytes([i]) * 10_000 for i in range(20)]
    resp = client.post("/api/v1/files?name=streamed.bin", content=iter(pieces), headers=auth)
    assert resp.status_code == 201, resp.text
    data = b"".join(pieces)
    assert (resp.json()["size"], resp.json()["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert client.get(f"/api/v1/files/{resp.json()['id']}/content", headers=auth).content == data


def test_public_url_setting_is_the_link_base(custom_client):
    with custom_client(public_url="https://hub.example.com") as (client, svc):
        auth = bearer(svc.settings.admin_key)
        made = uploaded(client, auth)
        url = link_of(client, auth, made["id"])["url"]
        assert url.startswith(f"https://hub.example.com/api/v1/files/{made['id']}/content?expires=")
        assert client.get(url.replace("https://hub.example.com", "")).content == DATA


def test_upload_empty_body(client, auth):
    body = uploaded(client, auth, b"", "empty.txt")
    assert body["size"] == 0
    assert body["sha256"] == hashlib.sha256(b"").hexdigest()
    resp = client.get(f"/api/v1/files/{body['id']}/content", headers=auth)
    assert (resp.status_code, resp.content, resp.headers["content-length"]) == (200, b"", "0")


@sqlite_only
@pytest.mark.parametrize(
    "query",
    [{}, {"name": ""}, {"name": "x" * 1025}, {"name": "a.bin", "context": "c" * 201}, {"name": "tab\there.bin"}],
    ids=["no-name", "empty-name", "long-name", "long-context", "control-char"],
)
def test_upload_bad_query(client, auth, services, query):
    resp = client.post(f"/api/v1/files?{urlencode(query)}", content=b"data", headers=auth)
    native_error(resp, 400, "INVALID_INPUT")
    assert stored_objects(services) == []


@sqlite_only
@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer "}, {"authorization": "Bearer wrong"}, {"authorization": "Basic YWRtaW46eA=="}],
    ids=["none", "empty-bearer", "wrong-key", "basic"],
)
def test_upload_unauthenticated(client, services, headers):
    resp = client.post("/api/v1/files?name=a.bin", content=b"data", headers=headers)
    native_error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert stored_objects(services) == []


def test_upload_size_limit(custom_client):
    with custom_client(max_single_upload_size=1000) as (client, svc):
        auth = bearer(svc.settings.admin_key)
        native_error(upload(client, auth, b"x" * 1001), 413, "FILE_TOO_LARGE", limit=1000)
        native_error(upload(client, auth, b"x" * 50_000), 413, "FILE_TOO_LARGE", limit=1000)
        assert stored_objects(svc) == []
        assert uploaded(client, auth, b"x" * 1000)["size"] == 1000


# --- list, get, delete ---------------------------------------------------------------------------------


def test_list_with_paging_and_context(client, auth):
    made = [uploaded(client, auth, f"file {i}".encode(), f"f{i}.bin", "a" if i % 2 else "b") for i in range(5)]
    page = client.get("/api/v1/files?limit=2", headers=auth).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 0, 2)
    seen = []
    for offset in (0, 2, 4):
        page = client.get(f"/api/v1/files?limit=2&offset={offset}", headers=auth).json()
        assert page["total"] == 5 and page["offset"] == offset
        seen += page["items"]
    assert [f["id"] for f in seen] == [f["id"] for f in reversed(made)]  # newest first, no gaps or repeats
    assert seen[0] == made[-1]
    assert client.get("/api/v1/files?offset=10", headers=auth).json()["items"] == []
    only_a = client.get("/api/v1/files?context=a", headers=auth).json()
    assert only_a["total"] == 2 and {f["name"] for f in only_a["items"]} == {"f1.bin", "f3.bin"}
    assert client.get("/api/v1/files?context=zzz", headers=auth).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }


@sqlite_only
@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=abc", "offset=1.5"])
def test_list_bad_paging(client, auth, query):
    native_error(client.get(f"/api/v1/files?{query}", headers=auth), 400, "INVALID_INPUT")


def test_get_file(client, auth):
    made = uploaded(client, auth, b"abc", "a.txt", "ctx")
    resp = client.get(f"/api/v1/files/{made['id']}", headers=auth)
    assert resp.status_code == 200 and resp.json() == {**made, "used_by": []}
    native_error(client.get("/api/v1/files/0123456789abcdef01234567", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/files/{made['id']}"), 401, "UNAUTHENTICATED")


def test_delete_file(client, auth, services):
    made = uploaded(client, auth, b"short-lived", "a.bin")
    url = link_of(client, auth, made["id"])["url"]
    resp = client.delete(f"/api/v1/files/{made['id']}", headers=auth)
    assert (resp.status_code, resp.content) == (204, b"")
    native_error(client.get(f"/api/v1/files/{made['id']}", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/files/{made['id']}/content", headers=auth), 404, "NOT_FOUND")
    native_error(client.delete(f"/api/v1/files/{made['id']}", headers=auth), 404, "NOT_FOUND")
    native_error(client.post(f"/api/v1/files/{made['id']}/links", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(url), 404, "NOT_FOUND")  # a link outlives nothing
    assert stored_objects(services) == []
    assert client.get("/api/v1/files", headers=auth).json()["total"] == 0


# --- content -------------------------------------------------------------------------------------------


def test_content_whole_file(client, auth):
    made = uploaded(client, auth, DATA, "model.safetensors")
    resp = client.get(f"/api/v1/files/{made['id']}/content", headers=auth)
    assert resp.status_code == 200
    assert resp.content == DATA
    h = resp.headers
    assert h["content-length"] == "50"
    assert h["accept-ranges"] == "bytes"
    assert h["etag"] == f'"{made["sha256"]}"'
    assert h["x-content-sha256"] == made["sha256"]
    assert h["content-disposition"] == "attachment; filename=\"model.safetensors\"; filename*=UTF-8''model.safetensors"
    assert "content-range" not in h


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=0-0", 0, 1),
        ("bytes=49-49", 49, 50),
        ("bytes=10-", 10, 50),
        ("bytes=-10", 40, 50),
        ("bytes=-1", 49, 50),
        ("bytes=-500", 0, 50),
        ("bytes=45-1000", 45, 50),
        ("bytes = 5-6", 5, 7),
        ("Bytes=5-6", 5, 7),
    ],
)
@sqlite_only
def test_content_ranges(client, auth, header, start, end):
    made = uploaded(client, auth, DATA)
    resp = client.get(f"/api/v1/files/{made['id']}/content", headers={**auth, "range": header})
    assert resp.status_code == 206, resp.text
    assert resp.content == DATA[start:end]
    assert resp.headers["content-range"] == f"bytes {start}-{end - 1}/50"
    assert resp.headers["content-length"] == str(end - start)


@sqlite_only
@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", ""])
def test_content_ranges_served_whole(client, auth, header):
    made = uploaded(client, auth, DATA)
    resp = client.get(f"/api/v1/files/{made['id']}/content", headers={**auth, "range": header})
    assert (resp.status_code, resp.content) == (200, DATA)


@sqlite_only
@pytest.mark.parametrize("header", ["bytes=50-", "bytes=100-200", "bytes=-0", "bytes=5-3", "bytes=abc-def", "bytes=5"])
def test_content_unsatisfiable_ranges(client, auth, header):
    made = uploaded(client, auth, DATA)
    resp = client.get(f"/api/v1/files/{made['id']}/content", headers={**auth, "range": header})
    native_error(resp, 416, "RANGE_NOT_SATISFIABLE", size=50)
    assert resp.headers["content-range"] == "bytes */50"


def test_content_head(client, auth):
    made = uploaded(client, auth, DATA, "a.bin")
    resp = client.head(f"/api/v1/files/{made['id']}/content", headers=auth)
    assert resp.status_code == 200
    assert resp.headers["content-length"] == "50"
    assert resp.headers["etag"] == f'"{made["sha256"]}"'
    assert resp.content == b""
    resp = client.head(f"/api/v1/files/{made['id']}/content", headers={**auth, "range": "bytes=-10"})
    assert (resp.status_code, resp.headers["content-length"], resp.content) == (206, "10", b"")
    assert resp.headers["content-range"] == "bytes 40-49/50"
    assert client.head("/api/v1/files/0123456789abcdef01234567/content", headers=auth).status_code == 404


# --- signed links --------------------------------------------------------------------------------------


def test_signed_link_downloads_without_auth(client, auth, services):
    made = uploaded(client, auth, DATA, "w.bin")
    link = link_of(client, auth, made["id"])
    assert set(link) == {"url", "expires_at"}
    parts = urlsplit(link["url"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"http://testserver/api/v1/files/{made['id']}/content"
    q = parse_qs(parts.query)
    assert set(q) == {"expires", "nonce", "signature"}
    assert re.fullmatch(r"[0-9a-f]{64}", q["signature"][0])
    expected = time.time() + services.settings.link_ttl
    assert abs(int(q["expires"][0]) - expected) < 60
    assert parse_time(link["expires_at"]) == datetime.fromtimestamp(int(q["expires"][0]), UTC)
    resp = client.get(link["url"])
    assert (resp.status_code, resp.content) == (200, DATA)
    resp = client.get(link["url"], headers={"range": "bytes=-10"})
    assert (resp.status_code, resp.content) == (206, DATA[-10:])
    resp = client.head(link["url"])
    assert (resp.status_code, resp.headers["content-length"], resp.content) == (200, "50", b"")
    # a bad Bearer key does not spoil a valid link
    assert client.get(link["url"], headers=bearer("wrong")).status_code == 200


def test_signed_link_with_custom_lifetime(client, auth, services):
    made = uploaded(client, auth)
    link = link_of(client, auth, made["id"], expires_in=60)
    assert abs(parse_time(link["expires_at"]).timestamp() - (time.time() + 60)) < 10
    url = f"/api/v1/files/{made['id']}/links"
    too_long = services.settings.max_link_ttl + 1
    native_error(
        client.post(url, json={"expires_in": too_long}, headers=auth), 400, "INVALID_INPUT", field="expires_in"
    )
    native_error(client.post(url, json={"expires_in": 0}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.post(url, json={"expires_in": "soon"}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.post(url, json={"lifetime": 60}, headers=auth), 400, "INVALID_INPUT")
    resp = client.post(url, content=b"{not json", headers={**auth, "content-type": "application/json"})
    native_error(resp, 400, "INVALID_INPUT")
    native_error(client.post(url), 401, "UNAUTHENTICATED")


def _flip(hexsig: str) -> str:
    return ("0" if hexsig[0] != "0" else "1") + hexsig[1:]


@sqlite_only
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda url, q: with_query(url, signature=_flip(q["signature"])), id="signature"),
        pytest.param(lambda url, q: with_query(url, signature=q["signature"][:-2]), id="signature-short"),
        pytest.param(lambda url, q: with_query(url, signature="zz" * 32), id="signature-not-hex"),
        pytest.param(lambda url, q: with_query(url, expires=str(int(q["expires"]) + 1)), id="expires"),
        pytest.param(lambda url, q: with_query(url, expires="tomorrow"), id="expires-not-a-number"),
        pytest.param(lambda url, q: with_query(url, nonce=q["nonce"] + "0"), id="nonce"),
        pytest.param(lambda url, q: with_query(url, signature=None), id="no-signature"),
        pytest.param(lambda url, q: with_query(url, expires=None), id="no-expires"),
        pytest.param(lambda url, q: with_query(url, nonce=None), id="no-nonce"),
        pytest.param(lambda url, q: with_query(url, signature=""), id="empty-signature"),
    ],
)
def test_tampered_link_is_refused(client, auth, tamper):
    made = uploaded(client, auth)
    url = link_of(client, auth, made["id"])["url"]
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    native_error(client.get(tamper(url, q)), 403, "INVALID_SIGNATURE")
    native_error(client.get(tamper(url, q), headers=auth), 403, "INVALID_SIGNATURE")  # auth does not rescue it
    assert client.get(url).status_code == 200


def test_link_of_one_file_does_not_open_another(client, auth):
    a = uploaded(client, auth, b"file a")
    b = uploaded(client, auth, b"file b")
    url = link_of(client, auth, a["id"])["url"].replace(a["id"], b["id"])
    native_error(client.get(url), 403, "INVALID_SIGNATURE")


def test_expired_link(client, auth, services):
    made = uploaded(client, auth)
    link = services.signer.sign(made["id"], 60, now=time.time() - 3600)
    query = urlencode({"expires": link.expires, "nonce": link.nonce, "signature": link.signature})
    native_error(client.get(f"/api/v1/files/{made['id']}/content?{query}"), 403, "URL_EXPIRED")
    forged = urlencode({"expires": link.expires + 7200, "nonce": link.nonce, "signature": link.signature})
    native_error(client.get(f"/api/v1/files/{made['id']}/content?{forged}"), 403, "INVALID_SIGNATURE")


def test_kore_signature_does_not_work_as_a_native_link(client, auth, services):
    made = uploaded(client, auth, b"abc", "a.wav")
    stored = kore_mapping.stored_name(made["id"], "wav")
    link = services.signer.sign(made["id"], 600, extra=kore_mapping.link_extra(stored, "false", "a.wav"))
    query = urlencode({"expires": link.expires, "nonce": link.nonce, "signature": link.signature})
    native_error(client.get(f"/api/v1/files/{made['id']}/content?{query}"), 403, "INVALID_SIGNATURE")


# --- permissions ---------------------------------------------------------------------------------------


def test_other_organisation_cannot_see_files(client, auth, outsider):
    made = uploaded(client, auth, b"private")
    fid = made["id"]
    native_error(client.get(f"/api/v1/files/{fid}", headers=outsider), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/files/{fid}/content", headers=outsider), 404, "NOT_FOUND")
    native_error(client.post(f"/api/v1/files/{fid}/links", headers=outsider), 404, "NOT_FOUND")
    native_error(client.delete(f"/api/v1/files/{fid}", headers=outsider), 404, "NOT_FOUND")
    assert client.get("/api/v1/files", headers=outsider).json()["total"] == 0
    theirs = uploaded(client, outsider, b"theirs")
    assert client.get("/api/v1/files", headers=outsider).json()["items"] == [theirs]
    assert client.get(f"/api/v1/files/{fid}/content", headers=auth).content == b"private"


def test_viewer_reads_but_cannot_write(client, auth, services, admin):
    services.identity.create_user(admin, "vera", role=Role.VIEWER)
    viewer = bearer(services.identity.create_key(admin, "vera", username="vera").secret)
    made = uploaded(client, auth, b"shared")
    assert client.get(f"/api/v1/files/{made['id']}/content", headers=viewer).content == b"shared"
    assert client.get("/api/v1/files", headers=viewer).json()["total"] == 1
    native_error(upload(client, viewer, b"nope"), 403, "FORBIDDEN")
    native_error(client.delete(f"/api/v1/files/{made['id']}", headers=viewer), 403, "FORBIDDEN")
    assert len(stored_objects(services, "objects")) == 1
