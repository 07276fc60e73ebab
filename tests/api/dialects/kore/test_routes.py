"""The Kore.ai dialect end to end over HTTP, against the spec (shared/specs/kore.md).

Single uploads, chunked sessions, GALE model import + dock status, signed media URLs, auth and isolation.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from modelharbor.api.dialects.kore import mapping as m
from modelharbor.app import create_app
from modelharbor.db.tables import UploadSessionRow
from modelharbor.domain.principal import Role
from modelharbor.services import Services, build_services
from modelharbor.tasks.runner import run_pending

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

MiB = 1024 * 1024
UNKNOWN_ID = "3f2b9c1e-7d4a-4e8b-9a6c-0d5e1f2a3b4c"  # an id nothing has
KORE_LIMIT = 25 * MiB
BOUNDARY = "----mh-test-boundary-7MA4YWxkTrZu0gW"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MODEL_ID = re.compile(r"^cm-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DOCK_ID = re.compile(r"^ds-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MEDIA_URL = re.compile(
    r"^http://testserver/api/getMediaStream/orgFiles/f-(?P<id>[0-9a-f]{24})\.(?P<ext>[a-z0-9]+)"
    r"\?e=\d{10}&n=\d{10}&del=false&s=[A-Za-z0-9+/%]+&fileName=.+$"
)

# Request-parsing checks that do not depend on the database run on SQLite only (keeps the suite fast).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# --- helpers --------------------------------------------------------------------------------------------


def multipart(*parts: tuple[str, bytes | str, str | None], boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """A multipart body with the parts in exactly the given order: (name, value, filename or None)."""
    out = bytearray()
    for name, value, filename in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + (value.encode() if isinstance(value, str) else value) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def kore_error(resp, status: int, code: str, **extra) -> str:
    """Assert the Kore.ai error envelope ``{"errors":[{"msg","code"}], **extra}``; return the message."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"errors", *extra}, body
    assert len(body["errors"]) == 1
    err = body["errors"][0]
    assert set(err) == {"msg", "code"}
    assert err["code"] == code, body
    assert isinstance(err["msg"], str) and err["msg"]
    for key, value in extra.items():
        assert body[key] == value, (key, body)
    return err["msg"]


def stored_objects(services: Services, prefix: str = "") -> list[str]:
    root = services.store.root
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    q = query_of(url)
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(q)}"


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{path}?{parts.query}"


def split(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i * step : (i + 1) * step] for i in range(n)]


def tar_of(entries: dict[str, bytes], *, links: dict[str, str] | None = None, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


MODEL_FILES = {
    "my-model/config.json": b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}',
    "my-model/weights.bin": bytes(range(256)) * 300,
    "my-model/tokenizer.json": b'{"version": "1.0"}',
}


class Kore:
    """A Kore.ai API client over the TestClient, acting with one x-api-key."""

    def __init__(self, client: TestClient, key: str | None):
        self.client = client
        self.key = key

    def headers(self, **extra) -> dict[str, str]:
        h = {"x-api-key": self.key} if self.key is not None else {}
        h.update(extra)
        return h

    def post_form(self, path: str, *parts, content_type: str | None = None):
        body, ctype = multipart(*parts)
        return self.client.post(path, content=body, headers=self.headers(**{"content-type": content_type or ctype}))

    def upload(self, data: bytes, name: str = "sample.wav", context: str = "bulkImport", *, context_first=True):
        fields = [("fileContext", context, None)]
        file = [("file", data, name)]
        return self.post_form("/api/public/files", *(fields + file if context_first else file + fields))

    def uploaded(self, data: bytes, name: str = "sample.wav", **kw) -> dict:
        resp = self.upload(data, name, **kw)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def start(self, **fields):
        return self.client.post("/api/public/files/session/start", json=fields, headers=self.headers())

    def started(
        self, *, size: int, chunks: int, ext: str = "wav", name: str | None = None, context="bulkImport", **more
    ) -> dict:
        body = {
            "fileContext": context,
            "totalChunks": chunks,
            "fileExtension": ext,
            "fileName": name or f"upload.{ext}",
            "fileSize": size,
            **more,
        }
        resp = self.start(**body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def chunk(self, sid: str, number, data: bytes, *, number_first: bool = True, content_type: str | None = None):
        num = [("chunkNumber", str(number), None)]
        file = [("file", data, "blob")]
        parts = num + file if number_first else file + num
        return self.post_form(f"/api/public/files/session/{sid}", *parts, content_type=content_type)

    def put(self, sid: str, number: int, data: bytes, **kw) -> None:
        resp = self.chunk(sid, number, data, **kw)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"chunkNumber": str(number), "sessionId": sid}

    def complete(self, sid: str, *, headers: dict | None = None, **kw):
        return self.client.post(f"/api/public/files/session/{sid}/complete", headers=headers or self.headers(), **kw)

    def session_upload(self, data: bytes, chunks: int, *, order=None, cuts=None, **start) -> tuple[dict, dict]:
        """Start, send all chunks (in ``order``; split at the offsets ``cuts`` or evenly), complete;
        returns (start body, complete body)."""
        started = self.started(size=len(data), chunks=chunks, **start)
        if cuts:
            edges = [0, *cuts, len(data)]
            pieces = [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]
        else:
            pieces = split(data, chunks)
        assert len(pieces) == chunks and b"".join(pieces) == data
        for n in order or range(chunks):
            self.put(started["sessionId"], n, pieces[n])
        resp = self.complete(started["sessionId"])
        assert resp.status_code == 200, resp.text
        return started, resp.json()

    def dock(self, dock_id: str):
        return self.client.get(f"/api/public/dock-status/{dock_id}", headers=self.headers())

    def download(self, url: str, **headers):
        return self.client.get(url, headers=headers)  # media URLs need no key


@pytest.fixture
def kore(client, services) -> Kore:
    """The admin's Kore.ai client."""
    return Kore(client, services.settings.admin_key)


@pytest.fixture
def outsider(client, services, admin) -> Kore:
    """A member of a second organisation with their own key."""
    services.identity.create_org(admin, "other-org")
    owner_there = services.identity.principal_for(admin.username, "other-org")
    services.identity.create_user(owner_there, "bob", role=Role.MEMBER)
    key = services.identity.create_key(owner_there, "bob's key", username="bob")
    principal = services.identity.authenticate_key(key.secret)
    assert principal.org_id != admin.org_id and not principal.is_superuser
    return Kore(client, key.secret)


@pytest.fixture
def custom_app(settings):
    """``with custom_app(name=value) as (kore, services)``: an app over the test database with settings changed.
    Use instead of the ``client``/``services`` fixtures."""

    @contextmanager
    def build(**overrides) -> Iterator[tuple[Kore, Services]]:
        changed = settings.model_copy(update=overrides)
        svc = build_services(changed)
        app = create_app(changed, svc, run_workers=False)
        try:
            with TestClient(app, raise_server_exceptions=False) as c:
                yield Kore(c, changed.admin_key), svc
        finally:
            svc.close()

    return build


def expire_session(services: Services, sid: str) -> None:
    with services.db.uow() as s:
        s.execute(
            update(UploadSessionRow)
            .where(UploadSessionRow.id == sid)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def signed_url(services: Services, file_id: str, ext: str, name: str, *, ttl: int, now: float | None = None) -> str:
    stored = m.stored_name(file_id, ext)
    link = services.signer.sign(file_id, ttl, extra=m.link_extra(stored, "false", name), now=now)
    q = urlencode(
        {"e": link.expires, "n": link.nonce, "del": "false", "s": m.encode_signature(link.mac), "fileName": name}
    )
    return f"http://testserver/api/getMediaStream/orgFiles/{stored}?{q}"


# --- Mode 1: single upload -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ext", "content_types"),
    [("sample4.wav", "wav", {"audio/x-wav", "audio/wav"}), ("Photo.PNG", "png", {"image/png"})],
)
def test_single_upload_and_download(kore, services, admin, name, ext, content_types):
    data = b"RIFF" + bytes(range(256)) * 40
    body = kore.uploaded(data, name)
    assert set(body) == {"url", "fileId"}
    assert HEX24.match(body["fileId"])
    match = MEDIA_URL.match(body["url"])
    assert match, body["url"]
    assert match["id"] == body["fileId"] and match["ext"] == ext
    q = query_of(body["url"])
    assert q["fileName"] == name and q["del"] == "false"
    assert abs(int(q["e"]) - (time.time() + services.settings.link_ttl)) < 60
    assert len(m.decode_signature(q["s"])) == 32  # base64(JSON-quoted base64(32-byte MAC)), '=' as '$'
    assert q["s"].endswith("$$")

    resp = kore.download(body["url"])
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["content-length"] == str(len(data))
    assert resp.headers["content-type"].split(";")[0] in content_types
    assert resp.headers["content-disposition"].startswith(f'attachment; filename="{name}"')

    record = services.files.get(admin, body["fileId"])
    assert (record.name, record.extension, record.size, record.context) == (name, ext, len(data), "bulkImport")
    assert record.sha256 == hashlib.sha256(data).hexdigest()


def test_single_upload_context_after_file(kore, services, admin):
    body = kore.uploaded(b"gif-bytes", "anim.gif", context="bulkImport", context_first=False)
    assert services.files.get(admin, body["fileId"]).context == "bulkImport"
    assert kore.download(body["url"]).content == b"gif-bytes"


def test_two_uploads_give_different_urls_and_ids(kore):
    a = kore.uploaded(b"same", "a.mp3")
    b = kore.uploaded(b"same", "a.mp3")
    assert a["fileId"] != b["fileId"]
    assert query_of(a["url"])["n"] != query_of(b["url"])["n"]
    assert kore.download(a["url"]).content == kore.download(b["url"]).content == b"same"


def test_media_head_and_range(kore):
    data = bytes(range(200))
    url = kore.uploaded(data, "clip.mp4")["url"]
    head = kore.client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.content == b""
    part = kore.download(url, range="bytes=10-19")
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = kore.download(url, range="bytes=-5")
    assert (tail.status_code, tail.content) == (206, data[-5:])


@sqlite_only
def test_media_non_ascii_file_name(kore):
    body = kore.uploaded(b"\x89PNG", "résumé photo.png")
    assert query_of(body["url"])["fileName"] == "résumé photo.png"
    resp = kore.download(body["url"])
    assert resp.status_code == 200
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20photo.png" in resp.headers["content-disposition"]


@sqlite_only
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda u: with_query(u, fileName="other.wav"), id="fileName"),
        pytest.param(lambda u: with_query(u, e=str(int(query_of(u)["e"]) + 3600)), id="e-forged-future"),
        pytest.param(lambda u: with_query(u, e=str(int(query_of(u)["e"]) - 1)), id="e-minus-one"),
        pytest.param(lambda u: with_query(u, n=str(int(query_of(u)["n"]) + 1)), id="n"),
        pytest.param(lambda u: with_query(u, **{"del": "true"}), id="del"),
        pytest.param(
            lambda u: with_query(u, s=m.encode_signature(bytes(b ^ 1 for b in m.decode_signature(query_of(u)["s"])))),
            id="s-flipped",
        ),
        pytest.param(lambda u: with_query(u, s="garbage"), id="s-garbage"),
        pytest.param(lambda u: with_query(u, s=None), id="s-missing"),
        pytest.param(lambda u: with_query(u, e=None), id="e-missing"),
        pytest.param(lambda u: with_query(u, n=None), id="n-missing"),
        pytest.param(lambda u: with_query(u, fileName=None), id="fileName-missing"),
        pytest.param(lambda u: with_query(u, e="soon"), id="e-not-a-number"),
        pytest.param(lambda u: with_path(u, urlsplit(u).path.replace(".wav", ".mp3")), id="stored-extension"),
        pytest.param(lambda u: with_path(u, urlsplit(u).path.replace("/f-", "/g-")), id="stored-prefix"),
    ],
)
def test_tampered_media_url_is_refused(kore, tamper):
    url = kore.uploaded(b"secret audio", "sample.wav")["url"]
    kore_error(kore.download(tamper(url)), 403, "INVALID_SIGNATURE")
    assert kore.download(url).status_code == 200  # the genuine URL still works


def test_media_url_ignores_unsigned_extras(kore):
    url = kore.uploaded(b"extra", "a.wav")["url"]
    assert kore.download(with_query(url, repeatableUrl="true", filename="a.wav")).content == b"extra"


def test_media_unsatisfiable_range(kore):
    url = kore.uploaded(bytes(200), "a.wav")["url"]
    resp = kore.download(url, range="bytes=500-")
    kore_error(resp, 416, "RANGE_NOT_SATISFIABLE")
    assert resp.headers["content-range"] == "bytes */200"


def test_public_url_setting_is_the_link_base(custom_app):
    with custom_app(public_url="https://hub.example.com/") as (kore, _svc):
        body = kore.uploaded(b"abc", "a.wav")
        assert body["url"].startswith(f"https://hub.example.com/api/getMediaStream/orgFiles/f-{body['fileId']}.wav?")
        local = body["url"].replace("https://hub.example.com", "http://testserver")
        assert kore.download(local).content == b"abc"


def test_signature_of_one_file_does_not_open_another(kore):
    a = kore.uploaded(b"file a", "a.wav")
    b = kore.uploaded(b"file b", "a.wav")
    forged = a["url"].replace(a["fileId"], b["fileId"])
    kore_error(kore.download(forged), 403, "INVALID_SIGNATURE")


def test_expired_media_url(kore, services):
    body = kore.uploaded(b"old news", "news.mp3")
    url = signed_url(services, body["fileId"], "mp3", "news.mp3", ttl=60, now=time.time() - 3600)
    kore_error(kore.download(url), 403, "URL_EXPIRED")
    fresh = signed_url(services, body["fileId"], "mp3", "news.mp3", ttl=60)
    assert kore.download(fresh).content == b"old news"


def test_link_ttl_setting_applies(custom_app):
    with custom_app(link_ttl=-5) as (kore, _svc):
        url = kore.uploaded(b"short-lived", "a.wav")["url"]
        kore_error(kore.download(url), 403, "URL_EXPIRED")


def test_media_of_deleted_or_unknown_file_is_404(kore, services, admin):
    body = kore.uploaded(b"doomed", "doomed.wav")
    resp = kore.client.delete(
        f"/api/v1/files/{body['fileId']}", headers={"authorization": f"Bearer {services.settings.admin_key}"}
    )
    assert resp.status_code == 204
    kore_error(kore.download(body["url"]), 404, "NOT_FOUND")
    ghost = signed_url(services, "0123456789abcdef01234567", "wav", "ghost.wav", ttl=60)
    kore_error(kore.download(ghost), 404, "NOT_FOUND")


def test_upload_larger_than_25_mib_is_refused(kore, services, admin):
    for context_first in (True, False):
        resp = kore.upload(b"\0" * (KORE_LIMIT + 1), "big.wav", context_first=context_first)
        kore_error(resp, 413, "FILE_TOO_LARGE")
    assert services.files.list(admin).total == 0
    assert stored_objects(services) == []


def test_upload_of_exactly_25_mib_is_accepted(kore):
    body = kore.uploaded(b"\1" * KORE_LIMIT, "edge.wav")
    head = kore.client.head(body["url"])
    assert head.headers["content-length"] == str(KORE_LIMIT)


@sqlite_only
@pytest.mark.parametrize("name", ["setup.exe", "noextension", "archive.tar", "model.wav.exe", "trailingdot."])
def test_upload_with_disallowed_extension(kore, services, admin, name):
    kore_error(kore.upload(b"MZ\x90\x00", name), 415, "UNSUPPORTED_FILE_TYPE")
    assert services.files.list(admin).total == 0
    assert stored_objects(services) == []


@sqlite_only
@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([("file", b"x" * 1000, "a.wav")], id="file-only"),
        pytest.param([("file", b"x" * 1000, "a.wav"), ("other", "y", None)], id="file-then-other-field"),
        pytest.param([("fileContext", "", None), ("file", b"x" * 1000, "a.wav")], id="empty-context-first"),
        pytest.param([("file", b"x" * 1000, "a.wav"), ("fileContext", "  ", None)], id="blank-context-after"),
    ],
)
def test_upload_without_file_context(kore, services, admin, parts):
    kore_error(kore.post_form("/api/public/files", *parts), 400, "BAD_REQUEST")
    assert services.files.list(admin).total == 0
    assert stored_objects(services) == []


@sqlite_only
@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([("fileContext", "bulkImport", None)], id="no-file-part"),
        pytest.param([("fileContext", "bulkImport", None), ("file", b"data", None)], id="file-part-without-filename"),
        pytest.param([("fileContext", "bulkImport", None), ("file", b"data", "")], id="file-part-empty-filename"),
        pytest.param([("fileContext", "bulkImport", None), ("upload", b"data", "a.wav")], id="file-part-misnamed"),
    ],
)
def test_upload_without_usable_file_part(kore, services, admin, parts):
    kore_error(kore.post_form("/api/public/files", *parts), 400, "BAD_REQUEST")
    assert services.files.list(admin).total == 0


def test_upload_with_json_content_type_and_boundary(kore):
    """curl -H 'Content-Type: application/json' -F ... sends 'application/json; boundary=...' (spec §6)."""
    body, _ = multipart(("fileContext", "bulkImport", None), ("file", b"quirky", "q.wav"))
    resp = kore.client.post(
        "/api/public/files",
        content=body,
        headers=kore.headers(**{"content-type": f"application/json; boundary={BOUNDARY}"}),
    )
    assert resp.status_code == 200, resp.text
    assert kore.download(resp.json()["url"]).content == b"quirky"


@sqlite_only
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_upload_sniffs_boundary_from_body(kore, content_type):
    body, _ = multipart(("fileContext", "bulkImport", None), ("file", b"sniffed", "s.wav"))
    headers = kore.headers(**({"content-type": content_type} if content_type else {}))
    resp = kore.client.post("/api/public/files", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert kore.download(resp.json()["url"]).content == b"sniffed"


@sqlite_only
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"fileContext": "bulkImport"}', "application/json"),
        (b"fileContext=bulkImport", "application/x-www-form-urlencoded"),
        (b"", "multipart/form-data"),
        (b"raw bytes", "application/octet-stream"),
    ],
)
def test_upload_of_non_multipart_body(kore, content, content_type):
    resp = kore.client.post(
        "/api/public/files", content=content, headers=kore.headers(**{"content-type": content_type})
    )
    msg = kore_error(resp, 400, "BAD_REQUEST")
    assert msg == "expected multipart form data with a 'file' part"


@sqlite_only
def test_upload_with_truncated_multipart_body(kore, services):
    body, ctype = multipart(("fileContext", "bulkImport", None), ("file", b"x" * 5000, "a.wav"))
    resp = kore.client.post("/api/public/files", content=body[:3000], headers=kore.headers(**{"content-type": ctype}))
    kore_error(resp, 400, "BAD_REQUEST")
    assert stored_objects(services) == []


# --- Mode 2: sessions ------------------------------------------------------------------------------------


def test_start_session(kore):
    before = datetime.now(UTC)
    body = kore.started(size=10, chunks=2, ext="wav", name="a.wav")
    assert set(body) == {"sessionId", "expirationDate"}
    assert UUID4.match(body["sessionId"])
    assert ISO_MS.match(body["expirationDate"])
    expires = datetime.strptime(body["expirationDate"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert before + timedelta(hours=24) - timedelta(seconds=5) <= expires <= datetime.now(UTC) + timedelta(hours=24)


@sqlite_only
@pytest.mark.parametrize(
    "fields",
    [
        {"totalChunks": "2", "fileSize": "10"},
        {"totalChunks": " 2 ", "fileSize": "10"},
        {"fileExtension": "WAV"},
        {"fileExtension": ".wav"},
        {"isAdapter": True},  # ignored outside the model context
    ],
)
def test_start_session_lenient_fields(kore, fields):
    body = {"fileContext": "bulkImport", "totalChunks": 2, "fileExtension": "wav", "fileName": "a.wav", "fileSize": 10}
    resp = kore.start(**{**body, **fields})
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"sessionId", "expirationDate"}


def test_start_session_from_form_fields(kore):
    fields = {
        "fileContext": "bulkImport",
        "totalChunks": "1",
        "fileExtension": "png",
        "fileName": "a.png",
        "fileSize": "3",
    }
    resp = kore.client.post("/api/public/files/session/start", data=fields, headers=kore.headers())
    assert resp.status_code == 200, resp.text
    resp = kore.post_form("/api/public/files/session/start", *[(k, v, None) for k, v in fields.items()])
    assert resp.status_code == 200, resp.text


BAD_START = [
    ({"fileContext": None}, "missing fileContext"),
    ({"fileContext": ""}, "empty fileContext"),
    ({"totalChunks": None}, "missing totalChunks"),
    ({"totalChunks": 0}, "zero chunks"),
    ({"totalChunks": -1}, "negative chunks"),
    ({"totalChunks": "-1"}, "negative chunks as string"),
    ({"totalChunks": 1.5}, "fractional chunks"),
    ({"totalChunks": "1.5"}, "fractional chunks as string"),
    ({"totalChunks": "two"}, "word"),
    ({"totalChunks": True}, "bool chunks"),
    ({"totalChunks": [2]}, "list chunks"),
    ({"totalChunks": 11}, "more chunks than bytes"),
    ({"fileSize": None}, "missing fileSize"),
    ({"fileSize": -1}, "negative size"),
    ({"fileSize": False}, "bool size"),
    ({"fileSize": "ten"}, "word size"),
    ({"fileName": None}, "missing fileName"),
    ({"fileName": "   "}, "blank fileName"),
    ({"fileName": 5}, "numeric fileName"),
    ({"fileExtension": None}, "missing fileExtension"),
    ({"isAdapter": "yes"}, "isAdapter word"),
]


@sqlite_only
@pytest.mark.parametrize("change", [c for c, _ in BAD_START], ids=[i for _, i in BAD_START])
def test_start_session_bad_fields(kore, change):
    body = {"fileContext": "bulkImport", "totalChunks": 2, "fileExtension": "wav", "fileName": "a.wav", "fileSize": 10}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    kore_error(kore.start(**body), 400, "BAD_REQUEST")


@sqlite_only
@pytest.mark.parametrize("value", ["--5", "²"])
def test_start_session_odd_integer_strings(kore, value):
    body = {"fileContext": "bulkImport", "totalChunks": value, "fileExtension": "wav", "fileName": "a.wav"}
    kore_error(kore.start(**body, fileSize=10), 400, "BAD_REQUEST")


@sqlite_only
@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"not json", "application/json"), (b"[1, 2]", "application/json"), (b"", "application/json")],
)
def test_start_session_body_not_an_object(kore, content, content_type):
    resp = kore.client.post(
        "/api/public/files/session/start", content=content, headers=kore.headers(**{"content-type": content_type})
    )
    kore_error(resp, 400, "BAD_REQUEST")


@sqlite_only
@pytest.mark.parametrize(
    ("context", "ext"),
    [("bulkImport", "exe"), ("bulkImport", "tar"), ("dataset", "zip"), ("model", "wav"), ("model", "exe")],
)
def test_start_session_disallowed_extension(kore, context, ext):
    resp = kore.start(fileContext=context, totalChunks=1, fileExtension=ext, fileName=f"x.{ext}", fileSize=5)
    kore_error(resp, 415, "UNSUPPORTED_FILE_TYPE")


@pytest.mark.parametrize("number_first", [True, False], ids=["number-first", "file-first"])
def test_chunks_any_order_and_field_position(kore, number_first):
    data = b"0123456789abcdefghij"
    sid = kore.started(size=len(data), chunks=4)["sessionId"]
    pieces = split(data, 4)
    for n in (3, 1, 0, 2):
        kore.put(sid, n, pieces[n], number_first=number_first)
    done = kore.complete(sid)
    assert done.status_code == 200, done.text
    assert set(done.json()) == {"url", "fileId"}
    assert kore.download(done.json()["url"]).content == data


def test_chunk_form_extra_fields_are_ignored(kore):
    sid = kore.started(size=4, chunks=1)["sessionId"]
    resp = kore.post_form(
        f"/api/public/files/session/{sid}",
        ("fileContext", "bulkImport", None),
        ("totalChunks", "99", None),
        ("file", b"abcd", "upload.wav"),
        ("chunkNumber", "0", None),
        ("fileName", "ignored.wav", None),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"chunkNumber": "0", "sessionId": sid}


def test_chunk_with_json_content_type_quirk(kore):
    sid = kore.started(size=4, chunks=1)["sessionId"]
    resp = kore.chunk(sid, 0, b"abcd", content_type=f"application/json; boundary={BOUNDARY}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"chunkNumber": "0", "sessionId": sid}
    assert kore.download(kore.complete(sid).json()["url"]).content == b"abcd"


def test_resent_chunk_replaces_the_earlier_bytes(kore, services):
    sid = kore.started(size=6, chunks=2)["sessionId"]
    kore.put(sid, 0, b"AAAA")
    kore.put(sid, 0, b"BB")
    kore.put(sid, 1, b"CCCC")
    assert len(stored_objects(services, f"uploads/{sid}")) == 2  # the replaced chunk's object is gone
    done = kore.complete(sid)
    assert done.status_code == 200, done.text
    assert kore.download(done.json()["url"]).content == b"BBCCCC"


@sqlite_only
@pytest.mark.parametrize("number", ["2", "-1", "abc", "1.0", ""])
@pytest.mark.parametrize("number_first", [True, False], ids=["number-first", "file-first"])
def test_chunk_number_invalid(kore, services, number, number_first):
    sid = kore.started(size=10, chunks=2)["sessionId"]
    kore_error(kore.chunk(sid, number, b"12345", number_first=number_first), 400, "INVALID_CHUNK_NUMBER")
    assert stored_objects(services, "uploads") == []


def test_chunk_without_number_or_file(kore, services):
    sid = kore.started(size=10, chunks=2)["sessionId"]
    resp = kore.post_form(f"/api/public/files/session/{sid}", ("file", b"12345", "blob"))
    kore_error(resp, 400, "INVALID_CHUNK_NUMBER")
    resp = kore.post_form(f"/api/public/files/session/{sid}", ("chunkNumber", "0", None))
    kore_error(resp, 400, "BAD_REQUEST")
    resp = kore.client.post(f"/api/public/files/session/{sid}", content=b"12345", headers=kore.headers())
    assert kore_error(resp, 400, "BAD_REQUEST") == "expected multipart form data with a 'file' part"
    assert stored_objects(services, "uploads") == []


def test_chunk_as_octet_stream_with_query_number(kore):
    sid = kore.started(size=8, chunks=2)["sessionId"]
    for n, data in ((1, b"5678"), (0, b"1234")):
        resp = kore.client.post(
            f"/api/public/files/session/{sid}?chunkNumber={n}",
            content=data,
            headers=kore.headers(**{"content-type": "application/octet-stream"}),
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"chunkNumber": str(n), "sessionId": sid}
    assert kore.download(kore.complete(sid).json()["url"]).content == b"12345678"


def test_chunk_to_unknown_session(kore):
    sid = str(uuid.uuid4())
    kore_error(kore.chunk(sid, 0, b"data"), 404, "SESSION_NOT_FOUND")
    kore_error(kore.complete(sid), 404, "SESSION_NOT_FOUND")


def test_chunk_over_the_per_chunk_limit(custom_app):
    with custom_app(kore_max_chunk_size=1000) as (kore, svc):
        sid = kore.started(size=5000, chunks=5)["sessionId"]
        kore_error(kore.chunk(sid, 0, b"x" * 1001), 413, "FILE_TOO_LARGE")
        kore_error(kore.chunk(sid, 1, b"x" * 1001, number_first=False), 413, "FILE_TOO_LARGE")
        assert stored_objects(svc, "uploads") == []
        kore.put(sid, 0, b"x" * 1000)


def test_chunks_adding_up_to_more_than_declared(kore, services):
    sid = kore.started(size=6, chunks=2)["sessionId"]
    kore.put(sid, 0, b"1234")
    kore_error(kore.chunk(sid, 1, b"5678"), 400, "SIZE_MISMATCH", sessionId=sid, expectedSize=6, receivedSize=8)
    assert len(stored_objects(services, f"uploads/{sid}")) == 1
    kore_error(
        kore.complete(sid), 400, "MISSING_CHUNKS", sessionId=sid, totalChunks=2, receivedChunks=[0], missingChunks=[1]
    )


def test_complete_with_missing_chunks_keeps_the_session_open(kore):
    data = b"aaaabbbbccccdddd"
    sid = kore.started(size=len(data), chunks=4)["sessionId"]
    pieces = split(data, 4)
    kore.put(sid, 2, pieces[2])
    kore.put(sid, 0, pieces[0])
    msg = kore_error(
        kore.complete(sid),
        400,
        "MISSING_CHUNKS",
        sessionId=sid,
        totalChunks=4,
        receivedChunks=[0, 2],
        missingChunks=[1, 3],
    )
    assert "1, 3" in msg and "2 of 4" in msg
    kore.put(sid, 3, pieces[3])
    kore_error(
        kore.complete(sid),
        400,
        "MISSING_CHUNKS",
        sessionId=sid,
        totalChunks=4,
        receivedChunks=[0, 2, 3],
        missingChunks=[1],
    )
    kore.put(sid, 1, pieces[1])
    done = kore.complete(sid)
    assert done.status_code == 200, done.text
    assert kore.download(done.json()["url"]).content == data


def test_complete_with_size_mismatch(kore):
    sid = kore.started(size=10, chunks=2)["sessionId"]
    kore.put(sid, 0, b"abc")
    kore.put(sid, 1, b"def")
    kore_error(kore.complete(sid), 400, "SIZE_MISMATCH", sessionId=sid, expectedSize=10, receivedSize=6)
    kore.put(sid, 1, b"defghij")  # fix it: the session is still open
    assert kore.download(kore.complete(sid).json()["url"]).content == b"abcdefghij"


def test_complete_merges_in_numeric_order_not_arrival_order(kore, services, admin):
    data = bytes(range(256)) * 50
    started, done = kore.session_upload(
        data, 12, order=[11, 2, 10, 0, 1, 9, 3, 8, 4, 7, 5, 6], name="long.webm", ext="webm"
    )
    assert HEX24.match(done["fileId"])
    match = MEDIA_URL.match(done["url"])
    assert match and match["id"] == done["fileId"] and match["ext"] == "webm"
    assert query_of(done["url"])["fileName"] == "long.webm"
    resp = kore.download(done["url"])
    assert resp.content == data
    assert resp.headers["content-disposition"].startswith('attachment; filename="long.webm"')
    record = services.files.get(admin, done["fileId"])
    assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_complete_is_idempotent(kore):
    started, first = kore.session_upload(b"twice", 1, ext="mp3")
    again = kore.complete(started["sessionId"])
    assert again.status_code == 200, again.text
    assert again.json()["fileId"] == first["fileId"]
    assert kore.download(again.json()["url"]).content == b"twice"


def test_chunk_after_complete_conflicts(kore):
    started, _ = kore.session_upload(b"done", 1, ext="mp3")
    kore_error(kore.chunk(started["sessionId"], 0, b"late"), 409, "SESSION_COMPLETED")


def test_complete_ignores_a_json_body(kore):
    sid = kore.started(size=2, chunks=1)["sessionId"]
    kore.put(sid, 0, b"ok")
    resp = kore.complete(sid, json={"sessionId": sid})
    assert resp.status_code == 200, resp.text
    assert kore.download(resp.json()["url"]).content == b"ok"


@pytest.mark.parametrize("quirk", [False, True], ids=["multipart", "json-content-type"])
def test_complete_with_piggy_backed_final_chunk(kore, quirk):
    sid = kore.started(size=8, chunks=2)["sessionId"]
    kore.put(sid, 0, b"head")
    body, ctype = multipart(("file", b"tail", "blob"), ("chunkNumber", "1", None))
    if quirk:
        ctype = f"application/json; boundary={BOUNDARY}"
    resp = kore.complete(sid, content=body, headers=kore.headers(**{"content-type": ctype}))
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"url", "fileId"}
    assert kore.download(resp.json()["url"]).content == b"headtail"


def test_retried_complete_with_piggy_backed_chunk_is_idempotent(kore):
    sid = kore.started(size=8, chunks=2)["sessionId"]
    kore.put(sid, 0, b"head")
    body, ctype = multipart(("file", b"tail", "blob"), ("chunkNumber", "1", None))
    first = kore.complete(sid, content=body, headers=kore.headers(**{"content-type": ctype}))
    assert first.status_code == 200, first.text
    again = kore.complete(sid, content=body, headers=kore.headers(**{"content-type": ctype}))
    assert again.status_code == 200, again.text
    assert again.json()["fileId"] == first.json()["fileId"]


def test_expired_session(kore, services):
    sid = kore.started(size=4, chunks=2)["sessionId"]
    kore.put(sid, 0, b"ab")
    expire_session(services, sid)
    kore_error(kore.chunk(sid, 1, b"cd"), 410, "SESSION_EXPIRED")
    kore_error(kore.complete(sid), 410, "SESSION_EXPIRED")
    assert len(stored_objects(services, f"uploads/{sid}")) == 1  # the refused chunk left nothing behind


def test_session_ttl_setting(custom_app):
    with custom_app(upload_session_ttl=0) as (kore, _svc):
        started = kore.started(size=2, chunks=1)
        expires = datetime.strptime(started["expirationDate"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert expires <= datetime.now(UTC)
        kore_error(kore.chunk(started["sessionId"], 0, b"ab"), 410, "SESSION_EXPIRED")


# --- GALE model import -----------------------------------------------------------------------------------


def import_model(kore: Kore, data: bytes, *, ext: str = "tar", chunks: int = 3, order=None, cuts=None, **more) -> dict:
    started, done = kore.session_upload(
        data, chunks, order=order, cuts=cuts, context="model", ext=ext, name=f"example_model.{ext}", **more
    )
    assert set(started) == {"sessionId", "expirationDate", "modelId"}
    assert MODEL_ID.match(started["modelId"])
    assert done["modelId"] == started["modelId"]
    return done


def test_model_import_tar(kore, services):
    data = tar_of(MODEL_FILES)
    done = import_model(kore, data, order=[2, 0, 1])
    dock = done["dockStatusId"]
    assert DOCK_ID.match(dock)
    assert done == {
        "dock-statusId": dock,
        "dockStatusId": dock,
        "modelId": done["modelId"],
        "jobType": "MODELS",
        "action": "IMPORT",
        "status": "IN_PROGRESS",
    }
    resp = kore.dock(dock)
    assert resp.status_code == 200
    assert resp.json() == {
        "_id": dock,
        "modelId": done["modelId"],
        "jobType": "MODELS",
        "action": "IMPORT",
        "status": "IN_PROGRESS",
        "percentageComplete": 0,
    }
    assert run_pending(services) == 1
    assert kore.dock(dock).json() == {
        "_id": dock,
        "modelId": done["modelId"],
        "jobType": "MODELS",
        "action": "IMPORT",
        "status": "SUCCESS",
        "percentageComplete": 100,
    }
    native = kore.client.get(
        f"/api/v1/imports/{done['modelId'][3:]}", headers={"authorization": f"Bearer {kore.key}"}
    ).json()
    assert (native["status"], native["is_adapter"], native["name"]) == ("ready", False, "example_model.tar")


def test_model_import_complete_is_idempotent(kore, services):
    data = tar_of(MODEL_FILES)
    started = kore.started(size=len(data), chunks=1, context="model", ext="tar", name="m.tar")
    kore.put(started["sessionId"], 0, data)
    first = kore.complete(started["sessionId"]).json()
    again = kore.complete(started["sessionId"])
    assert again.status_code == 200, again.text
    assert again.json() == first
    assert run_pending(services) == 1  # one import job, not two
    assert kore.dock(first["dockStatusId"]).json()["status"] == "SUCCESS"
    assert kore.complete(started["sessionId"]).json() == {**first, "status": "IN_PROGRESS"}


@sqlite_only
@pytest.mark.parametrize(("value", "expected"), [("True", True), (True, True), ("false", False), ("FALSE", False)])
def test_model_import_is_adapter(kore, services, value, expected):
    done = import_model(kore, tar_of(MODEL_FILES), chunks=1, isAdapter=value)
    native = kore.client.get(
        f"/api/v1/imports/{done['modelId'][3:]}", headers={"authorization": f"Bearer {kore.key}"}
    ).json()
    assert native["is_adapter"] is expected
    run_pending(services)
    assert kore.dock(done["dockStatusId"]).json()["status"] == "SUCCESS"


@sqlite_only
@pytest.mark.parametrize(
    ("ext", "data"),
    [
        ("tar", tar_of({"config.json": b"{}", "weights.bin": b"\0" * 5000}, links={"latest.bin": "weights.bin"})),
        ("tar", tar_of({"./model/config.json": b"{}", "model/sub/weights.bin": b"\1" * 100})),
        ("tar", tar_of(MODEL_FILES, gz=True)),  # a gzipped tar still named .tar
        ("tgz", tar_of(MODEL_FILES, gz=True)),
        ("tar.gz", tar_of(MODEL_FILES, gz=True)),
        ("zip", zip_of(MODEL_FILES)),
        ("gguf", b"GGUF" + b"\0" * 100),
        ("bin", b"\0\1\2\3" * 100),
    ],
    ids=["tar-with-internal-link", "tar-dot-slash", "tar-gzipped", "tgz", "tar.gz", "zip", "gguf", "bin"],
)
def test_model_import_valid_archives(kore, services, ext, data):
    done = import_model(kore, data, ext=ext, chunks=1)
    run_pending(services)
    body = kore.dock(done["dockStatusId"]).json()
    assert (body["status"], body["percentageComplete"]) == ("SUCCESS", 100), body
    assert "error" not in body


@sqlite_only
@pytest.mark.parametrize(
    ("ext", "data", "mention"),
    [
        ("tar", tar_of({"config.json": b"{}", "../evil": b"x"}), "../evil"),
        ("tar", tar_of({"/etc/x": b"x"}), "/etc/x"),
        ("tar", tar_of({"model/../../evil.sh": b"x"}), "model/../../evil.sh"),
        ("tar", tar_of({"config.json": b"{}"}, links={"passwd": "../../etc/passwd"}), "passwd"),
        ("tar", tar_of({"config.json": b"{}"}, links={"abs": "/etc/shadow"}), "abs"),
        ("tar", b"this is not a tar archive at all " * 40, "not a readable tar"),
        ("tar", tar_of({}), "empty"),
        ("zip", zip_of({"config.json": b"{}", "../evil.txt": b"x"}), "../evil.txt"),
        ("zip", b"PK\x03\x04 but broken " * 20, "not a readable zip"),
        ("gguf", b"NOPE" + b"\0" * 60, "GGUF"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "nested-dotdot",
        "symlink-out",
        "symlink-absolute",
        "not-tar",
        "empty-tar",
        "zip-dotdot",
        "not-zip",
        "bad-gguf",
    ],
)
def test_model_import_hostile_or_broken_archives(kore, services, ext, data, mention):
    done = import_model(kore, data, ext=ext, chunks=1)
    run_pending(services)
    body = kore.dock(done["dockStatusId"]).json()
    assert set(body) == {"_id", "modelId", "jobType", "action", "status", "percentageComplete", "error"}
    assert body["status"] == "FAILED"
    assert mention in body["error"], body["error"]
    native = kore.client.get(
        f"/api/v1/imports/{done['modelId'][3:]}", headers={"authorization": f"Bearer {kore.key}"}
    ).json()
    assert native["status"] == "failed" and mention in native["error"]


def dock_result(kore: Kore, services, done: dict) -> dict:
    assert run_pending(services) == 1
    return kore.dock(done["dockStatusId"]).json()


def test_model_import_tar_split_inside_data(kore, services):
    """Chunk boundaries inside member data and inside the end-of-archive blocks."""
    data = tar_of(MODEL_FILES)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        starts = {m.name: m.offset_data for m in tf.getmembers()}
    cuts = [starts["my-model/weights.bin"] + 1000, starts["my-model/tokenizer.json"] + 5, len(data) - 600]
    done = import_model(kore, data, chunks=4, cuts=cuts, order=[3, 1, 2, 0])
    assert dock_result(kore, services, done)["status"] == "SUCCESS"


def test_model_import_tar_with_first_header_across_chunks(kore, services):
    done = import_model(kore, tar_of(MODEL_FILES), chunks=2, cuts=[100])
    body = dock_result(kore, services, done)
    assert body["status"] == "SUCCESS", body


def test_model_import_checks_entries_after_a_chunk_boundary(kore, services):
    data = tar_of({"config.json": b"{}", "../evil": b"#!/bin/sh\n"})  # 2nd header at 1024..1536
    done = import_model(kore, data, chunks=2, cuts=[1100])
    body = dock_result(kore, services, done)
    assert body["status"] == "FAILED" and "../evil" in body["error"], body


def test_model_import_zip_central_directory_across_chunks(kore, services):
    data = zip_of(MODEL_FILES)
    done = import_model(kore, data, ext="zip", chunks=2, cuts=[len(data) - 60])
    body = dock_result(kore, services, done)
    assert body["status"] == "SUCCESS", body.get("error")


def test_model_import_of_a_deleted_archive_fails(kore, services):
    data = tar_of(MODEL_FILES)
    started = kore.started(size=len(data), chunks=1, context="model", ext="tar", name="m.tar")
    kore.put(started["sessionId"], 0, data)
    done = kore.complete(started["sessionId"]).json()
    file_id = services.tasks.get(services.identity.authenticate_key(kore.key), done["dockStatusId"][3:]).payload[
        "file_id"
    ]
    # the model holds its archive: deleting it through the API is refused ...
    refused = kore.client.delete(f"/api/v1/files/{file_id}", headers={"authorization": f"Bearer {kore.key}"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "FILE_IN_USE"
    # ... so simulate the archive vanishing (e.g. an operator removed it) before the import task runs
    from sqlalchemy import delete as sql_delete

    from modelharbor.db.tables import FileRow, ImportedModelRow

    with services.db.uow() as s:
        s.query(ImportedModelRow).filter_by(file_id=file_id).update({"file_id": None})
        s.execute(sql_delete(FileRow).where(FileRow.id == file_id))
    body = dock_result(kore, services, done)
    assert body["status"] == "FAILED" and "no longer exists" in body["error"], body
    kore_error(kore.complete(started["sessionId"]), 410, "FILE_DELETED")


@sqlite_only
# fixed ids: test ids must be the same in every pytest worker (pytest -n)
@pytest.mark.parametrize("dock_id", [f"ds-{UNKNOWN_ID}", "ds-", "no-prefix", UNKNOWN_ID])
def test_unknown_dock_status(kore, dock_id):
    kore_error(kore.dock(dock_id), 404, "NOT_FOUND")


DEPLOYABLE = {
    "my-llm/deployment.py": b"""
import json
import os


class Deployment:
    def __init__(self, base_directory, context):
        self.temperature = float(os.environ["KORE_TEMPERATURE"])
        self.stop = json.loads(os.environ["KORE_STOP_SEQUENCE"])

    def request(self, data):
        return f"echo({data}) t={self.temperature} stop={self.stop}"
""",
    "my-llm/weights.bin": b"\x00" * 100,
}
DEPLOY_BODY = {
    "name": "my llm",
    "isDeployedPreviouly": False,
    "hyperParameters": {"temperature": 0.5, "maxTokens": 64, "topP": 0.9, "topK": 40, "stopSequence": ["###"]},
    "scalingParameters": {"minReplicas": 1, "maxReplicas": 2, "scaleDownDelay": 60},
    "deviceType": "g5.xlarge",
}


def test_model_deploy_export_undeploy(kore, services, admin):
    done = import_model(kore, tar_of(DEPLOYABLE), chunks=1)
    assert dock_result(kore, services, done)["status"] == "SUCCESS"
    model = done["modelId"]
    resp = kore.client.post(
        f"/api/public/models/{model}/deploy?modelType=openSource", json=DEPLOY_BODY, headers=kore.headers()
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert (job["action"], job["status"], job["modelId"]) == ("DEPLOY", "IN_PROGRESS", model)
    assert job["dockStatusId"] == job["dock-statusId"]
    try:
        body = dock_result(kore, services, job)
        assert (body["status"], body["action"]) == ("SUCCESS", "DEPLOY"), body
        deployment = body["response"]["deployment"]
        answer = asyncio.run(services.serving.request(admin, "kore-models", deployment, "hi"))
        assert answer.result == "echo(hi) t=0.5 stop=['###']", answer.error_message
        exported = kore.client.post(f"/api/public/models/{model}/export", headers=kore.headers()).json()
        assert exported["action"] == "EXPORT"
        url = dock_result(kore, services, exported)["response"]["downloadUrl"]
        assert kore.download(url).content == tar_of(DEPLOYABLE)
        undone = kore.client.post(f"/api/public/models/{model}/undeploy", headers=kore.headers()).json()
        assert dock_result(kore, services, undone)["status"] == "SUCCESS"
        assert deployment not in [d.name for d in services.serving.list_deployments(admin, "kore-models")]
        again = kore.client.post(f"/api/public/models/{model}/undeploy", headers=kore.headers()).json()
        failed = dock_result(kore, services, again)
        assert failed["status"] == "FAILED" and "not deployed" in failed["error"]
    finally:
        services.serving.shutdown()


def test_model_deploy_of_raw_weights_fails_with_a_reason(kore, services):
    done = import_model(kore, b"GGUF" + b"\x00" * 100, ext="gguf", chunks=1)
    assert dock_result(kore, services, done)["status"] == "SUCCESS"
    job = kore.client.post(f"/api/public/models/{done['modelId']}/deploy", json=DEPLOY_BODY, headers=kore.headers())
    body = dock_result(kore, services, job.json())
    assert body["status"] == "FAILED" and "deployment.py" in body["error"]


@sqlite_only
@pytest.mark.parametrize(
    "change",
    [
        {"name": None},
        {"deviceType": None},
        {"hyperParameters": None},
        {"hyperParameters": {"temperature": 3, "maxTokens": 1, "topP": 0.5, "topK": 1}},
        {"hyperParameters": {"temperature": 1, "maxTokens": 1000, "topP": 0.5, "topK": 1}},
        {"scalingParameters": {"minReplicas": 5, "maxReplicas": 2}},
        {"scalingParameters": {"maxBatchSize": 0}},
    ],
)
def test_model_deploy_bad_body(kore, services, change):
    done = import_model(kore, tar_of(DEPLOYABLE), chunks=1)
    dock_result(kore, services, done)
    body = {k: v for k, v in {**DEPLOY_BODY, **change}.items() if v is not None}
    resp = kore.client.post(f"/api/public/models/{done['modelId']}/deploy", json=body, headers=kore.headers())
    kore_error(resp, 400, "BAD_REQUEST")


@sqlite_only
@pytest.mark.parametrize("action", ["export", "deploy", "undeploy"])
def test_model_actions_on_unknown_or_unready_models(kore, action):
    resp = kore.client.post(f"/api/public/models/cm-{uuid.uuid4()}/{action}", json=DEPLOY_BODY, headers=kore.headers())
    kore_error(resp, 404, "NOT_FOUND")
    bad = {**DEPLOY_BODY, "name": None}  # the model is looked up before the body is read
    resp = kore.client.post(f"/api/public/models/cm-{uuid.uuid4()}/{action}", json=bad, headers=kore.headers())
    kore_error(resp, 404, "NOT_FOUND")
    started = kore.started(size=10, chunks=1, context="model", ext="tar", name="m.tar")  # still importing
    resp = kore.client.post(
        f"/api/public/models/{started['modelId']}/{action}", json=DEPLOY_BODY, headers=kore.headers()
    )
    kore_error(resp, 400, "BAD_REQUEST")
    resp = kore.client.post(f"/api/public/models/cm-{uuid.uuid4()}/{action}")
    kore_error(resp, 401, "UNAUTHENTICATED")


# --- auth, isolation, routing ----------------------------------------------------------------------------

PUBLIC_CALLS = [
    ("POST", "/api/public/files"),
    ("POST", "/api/public/files/session/start"),
    ("POST", f"/api/public/files/session/{UNKNOWN_ID}"),
    ("POST", f"/api/public/files/session/{UNKNOWN_ID}/complete"),
    ("GET", f"/api/public/dock-status/ds-{UNKNOWN_ID}"),
]


@sqlite_only
@pytest.mark.parametrize(("method", "path"), PUBLIC_CALLS)
@pytest.mark.parametrize("key", [None, "", "wrong-key", "mh_" + "x" * 43, "y" * 600])
def test_missing_or_wrong_api_key(client, method, path, key):
    headers = {} if key is None else {"x-api-key": key}
    body, ctype = multipart(("fileContext", "bulkImport", None), ("file", b"data", "a.wav"))
    resp = client.request(
        method, path, content=body if method == "POST" else None, headers={**headers, "content-type": ctype}
    )
    kore_error(resp, 401, "UNAUTHENTICATED")


def test_api_key_header_name_is_case_insensitive(client, services):
    resp = client.get(f"/api/public/dock-status/ds-{uuid.uuid4()}", headers={"X-API-KEY": services.settings.admin_key})
    kore_error(resp, 404, "NOT_FOUND")


def test_nothing_stored_for_an_unauthenticated_upload(client, services, admin):
    body, ctype = multipart(("fileContext", "bulkImport", None), ("file", b"data", "a.wav"))
    client.post("/api/public/files", content=body, headers={"content-type": ctype, "x-api-key": "nope"})
    assert services.files.list(admin).total == 0 and stored_objects(services) == []


def test_revoked_key_is_refused(kore, services, admin):
    key = services.identity.create_key(admin, "temp")
    temp = Kore(kore.client, key.secret)
    assert temp.uploaded(b"ok", "a.wav")
    services.identity.revoke_key(admin, key.id)
    kore_error(temp.upload(b"no", "b.wav"), 401, "UNAUTHENTICATED")


def test_key_without_write_permission_gets_403(kore, services, admin):
    services.identity.create_user(admin, "vera", role=Role.VIEWER)
    viewer = Kore(kore.client, services.identity.create_key(admin, "vera", username="vera").secret)
    kore_error(viewer.upload(b"data", "a.wav"), 403, "FORBIDDEN")
    kore_error(
        viewer.start(fileContext="bulkImport", totalChunks=1, fileExtension="wav", fileName="a.wav", fileSize=1),
        403,
        "FORBIDDEN",
    )
    kore_error(
        viewer.start(fileContext="model", totalChunks=1, fileExtension="tar", fileName="m.tar", fileSize=1),
        403,
        "FORBIDDEN",
    )
    sid = kore.started(size=2, chunks=1)["sessionId"]
    assert viewer.chunk(sid, 0, b"ab").status_code in (403, 404)
    assert stored_objects(services) == [] and services.files.list(admin).total == 0
    imported = import_model(kore, tar_of(MODEL_FILES), chunks=1)
    assert viewer.dock(imported["dockStatusId"]).json()["status"] == "IN_PROGRESS"  # reading is allowed


def test_other_organisation_sees_no_dock_status_or_file(kore, outsider, services):
    _, done = kore.session_upload(b"mine", 1, ext="png")
    imported = import_model(kore, tar_of(MODEL_FILES), chunks=1)
    kore_error(outsider.dock(imported["dockStatusId"]), 404, "NOT_FOUND")
    native = kore.client.get(f"/api/v1/files/{done['fileId']}", headers={"authorization": f"Bearer {outsider.key}"})
    assert native.status_code == 404
    run_pending(services)
    kore_error(outsider.dock(imported["dockStatusId"]), 404, "NOT_FOUND")
    assert kore.dock(imported["dockStatusId"]).json()["status"] == "SUCCESS"
    # the outsider's key works in their own organisation
    theirs = outsider.uploaded(b"theirs", "t.wav")
    assert outsider.download(theirs["url"]).content == b"theirs"


def test_other_organisation_cannot_touch_a_session(kore, outsider, services):
    open_sid = kore.started(size=4, chunks=2)["sessionId"]
    kore.put(open_sid, 0, b"ab")
    done_started, _ = kore.session_upload(b"mine", 1, ext="png")
    for resp in (
        outsider.chunk(open_sid, 1, b"cd"),
        outsider.complete(open_sid),
        outsider.complete(done_started["sessionId"]),
    ):
        assert resp.status_code == 404, resp.text
    assert len(stored_objects(services, f"uploads/{open_sid}")) == 1
    kore.put(open_sid, 1, b"cd")
    assert kore.download(kore.complete(open_sid).json()["url"]).content == b"abcd"


def test_other_organisation_session_looks_unknown(kore, outsider):
    open_sid = kore.started(size=4, chunks=2)["sessionId"]
    done_started, _ = kore.session_upload(b"mine", 1, ext="png")
    for sid in (open_sid, done_started["sessionId"]):
        for call in (lambda s: outsider.chunk(s, 1, b"cd"), outsider.complete):
            theirs, unknown = call(sid), call(str(uuid.uuid4()))
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json()["errors"][0]["code"] == unknown.json()["errors"][0]["code"] == "SESSION_NOT_FOUND"


def test_unknown_route_and_wrong_method(kore):
    kore_error(kore.client.get("/api/public/nothing-here", headers=kore.headers()), 404, "NOT_FOUND")
    kore_error(kore.client.get("/api/getMediaStream/nothing-here"), 404, "NOT_FOUND")
    kore_error(kore.client.get("/api/public/files", headers=kore.headers()), 405, "METHOD_NOT_ALLOWED")
    kore_error(kore.client.delete("/api/public/files/session/start", headers=kore.headers()), 405, "METHOD_NOT_ALLOWED")
    kore_error(kore.client.post("/api/getMediaStream/orgFiles/f-x.wav"), 405, "METHOD_NOT_ALLOWED")
