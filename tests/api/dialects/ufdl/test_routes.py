"""The UFDL dialect end to end over HTTP, against the spec (shared/specs/ufdl.md).

JWT auth, pretrained models (CRUD, soft/hard delete, reinstate, data, download), the filter language,
frameworks, licences (both spellings), read-only domains, permissions, trailing slashes and error shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

import pytest

from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY
from tests.factories import member_of_new_org

MiB = 1024 * 1024
PM = "/v1/pretrained-models"
BASE = {"framework": 1, "domain": "ic", "licence": "MIT", "url": "https://example.org/r18", "name": "resnet18"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
UPLOAD = {"Content-Type": "application/data", "Content-Disposition": "attachment; filename=data"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
JWT = re.compile(r"^eyJ[\w-]+\.[\w-]+\.[\w-]+$")
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
TOKEN_NOT_VALID = {
    "detail": "Given token not valid for any token type",
    "code": "token_not_valid",
    "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is invalid or expired"}],
}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}
MISSING_FILENAME = {
    "detail": "Missing filename. Request should include a Content-Disposition header with a filename parameter."
}
DOCS = Path(__file__).resolve().parents[4] / "docs" / "dialects" / "ufdl.md"

# Every route, split by who may call it; {pk} is filled in per test.
AUTH_ROUTES = [("POST", "/v1/auth/obtain"), ("POST", "/v1/auth/refresh"), ("POST", "/v1/auth/verify")]
READS = [
    ("POST", f"{PM}/list"),
    ("GET", f"{PM}/{{pk}}"),
    ("POST", f"{PM}/{{pk}}/download"),
    *[(m, f"/v1/{r}/{p}") for r in ("frameworks", "licences", "licenses", "domains") for m, p in [("POST", "list")]],
    *[("GET", f"/v1/{r}/{{pk}}") for r in ("frameworks", "licences", "licenses", "domains")],
]
MODEL_WRITES = [
    ("POST", f"{PM}/create"),
    ("PUT", f"{PM}/{{pk}}"),
    ("PATCH", f"{PM}/{{pk}}"),
    ("DELETE", f"{PM}/{{pk}}"),
    ("POST", f"{PM}/{{pk}}/data"),
    ("DELETE", f"{PM}/{{pk}}/data"),
    ("DELETE", f"{PM}/{{pk}}/hard"),
    ("DELETE", f"{PM}/{{pk}}/reinstate"),
    ("POST", f"{PM}/{{pk}}/reinstate"),
]
REF_WRITES = [
    (m, f"/v1/{r}/{p}")
    for r in ("frameworks", "licences", "licenses", "domains")
    for m, p in [("POST", "create"), ("PUT", "{pk}"), ("PATCH", "{pk}"), ("DELETE", "{pk}")]
] + [("PATCH", "/v1/licences/{pk}/subdescriptors"), ("PATCH", "/v1/licenses/{pk}/subdescriptors")]
PROTECTED = READS + MODEL_WRITES + REF_WRITES

# Request-parsing checks that do not depend on the database run on SQLite only (keeps the suite fast).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# --- helpers --------------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client, headers=ADMIN, **fields) -> dict:
    r = client.post(f"{PM}/create", json={**BASE, **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def listed(client, spec=None, headers=ADMIN) -> list[str]:
    kw = {"json": spec} if spec is not None else {}
    r = client.post(f"{PM}/list", headers=headers, **kw)
    assert r.status_code == 200, r.text
    return [m["name"] for m in r.json()]


def download(client, pk: int, headers=ADMIN, **kw):
    return client.post(f"{PM}/{pk}/download", headers=headers, **kw)


def stored_blobs(services) -> int:
    return len([p for p in services.store.root.rglob("*") if p.is_file()])


@pytest.fixture
def member(client, services, admin) -> dict[str, str]:
    """Headers of a non-admin (MEMBER) user, logged in with a JWT."""
    services.identity.create_user(admin, "u", password="member-pw-1", role=Role.MEMBER)
    r = client.post("/v1/auth/obtain", json={"username": "u", "password": "member-pw-1"})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access"])


# --- auth -----------------------------------------------------------------------------------------------


@sqlite_only
def test_obtain_refresh_verify(client, services, admin):
    services.identity.create_user(admin, "boss", password="boss-pw-1", role=Role.ADMIN)
    for slash in ("", "/"):
        r = client.post(f"/v1/auth/obtain{slash}", json={"username": "boss", "password": "boss-pw-1"})
        assert r.status_code == 200 and set(r.json()) == {"refresh", "access"}, r.text
        assert JWT.match(r.json()["access"]) and JWT.match(r.json()["refresh"])
    refresh, access = r.json()["refresh"], r.json()["access"]
    assert client.post(f"{PM}/list", headers=bearer(access)).json() == []
    assert create(client, bearer(access))["creator"] is not None  # an admin by JWT may write

    r = client.post("/v1/auth/refresh/", json={"refresh": refresh})
    assert r.status_code == 200 and set(r.json()) == {"access"}  # refresh tokens are not rotated
    assert client.get("/v1/frameworks/1", headers=bearer(r.json()["access"])).status_code == 200
    for token in (access, refresh):
        r = client.post("/v1/auth/verify", json={"token": token})
        assert (r.status_code, r.json()) == (200, {})

    bad = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
    for path, body in [
        ("/v1/auth/refresh", {"refresh": access}),  # an access token is no refresh token
        ("/v1/auth/refresh", {"refresh": "garbage"}),
        ("/v1/auth/verify", {"token": access[:-3] + "xyz"}),
        ("/v1/auth/verify/", {"token": "eyJ.eyJ.x"}),
    ]:
        r = client.post(path, json=body)
        assert (r.status_code, r.json()) == (401, bad), (path, r.text)
        assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    # a refresh token does not authenticate requests
    r = client.post(f"{PM}/list", headers=bearer(refresh))
    assert (r.status_code, r.json()) == (401, TOKEN_NOT_VALID)


@sqlite_only
def test_obtain_errors(client, services, admin):
    services.identity.create_user(admin, "ann", password="ann-pw-1", role=Role.MEMBER)
    no_account = {"detail": "No active account found with the given credentials"}
    for body in ({"username": "ann", "password": "wrong"}, {"username": "nobody", "password": "x"}):
        r = client.post("/v1/auth/obtain", json=body)
        assert (r.status_code, r.json()) == (401, no_account)
        assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    required = ["This field is required."]
    cases = [
        (None, {"username": required, "password": required}),
        ({}, {"username": required, "password": required}),
        ({"password": "x"}, {"username": required}),
        ({"username": "", "password": "x"}, {"username": ["This field may not be blank."]}),
        ({"username": None, "password": "x"}, {"username": ["This field may not be null."]}),
        ({"username": ["ann"], "password": "x"}, {"username": ["Not a valid string."]}),
    ]
    for body, expected in cases:
        r = client.post("/v1/auth/obtain/", json=body) if body is not None else client.post("/v1/auth/obtain")
        assert (r.status_code, r.json()) == (400, expected), body
    assert client.post("/v1/auth/refresh", json={}).json() == {"refresh": required}
    assert client.post("/v1/auth/verify", json={}).json() == {"token": required}
    r = client.post("/v1/auth/obtain", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("JSON parse error - ")
    r = client.get("/v1/auth/obtain")
    assert (r.status_code, r.json()) == (405, {"detail": 'Method "GET" not allowed.'})


@sqlite_only
def test_expired_access_token(client, services, admin, monkeypatch):
    services.identity.create_user(admin, "eve", password="eve-pw-1", role=Role.ADMIN)
    monkeypatch.setattr(services.tokens, "access_ttl", -1)
    tokens = client.post("/v1/auth/obtain", json={"username": "eve", "password": "eve-pw-1"}).json()
    r = client.post(f"{PM}/list", headers=bearer(tokens["access"]))
    assert (r.status_code, r.json()) == (401, TOKEN_NOT_VALID)
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert client.post("/v1/auth/verify", json={"token": tokens["access"]}).status_code == 401
    assert client.post("/v1/auth/refresh", json={"refresh": tokens["refresh"]}).status_code == 200  # still valid


@sqlite_only
def test_authorization_header_forms(client, services, admin):
    assert client.post(f"{PM}/list", headers=ADMIN).status_code == 200  # a ModelHarbor API key as Bearer
    for header in (None, "", "Bearer", "Basic YWRtaW46eA==", f"Bearer {ADMIN_KEY} extra", f"Token{ADMIN_KEY}"):
        headers = {"Authorization": header} if header is not None else {}
        r = client.post(f"{PM}/list", headers=headers)
        assert (r.status_code, r.json()) == (401, NOT_PROVIDED), header
        assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    key = services.identity.create_key(admin, "revoked")
    services.identity.revoke_key(admin, key.id)
    for token in ("mh_unknown_key", key.secret, "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln"):
        r = client.post(f"{PM}/list", headers=bearer(token))
        assert (r.status_code, r.json()) == (401, TOKEN_NOT_VALID), token


@sqlite_only
def test_anonymous_gets_401_everywhere(client):
    for method, path in PROTECTED:
        for pk in ("1", "999999"):
            r = client.request(method, path.replace("{pk}", pk), json={})
            assert (r.status_code, r.json()) == (401, NOT_PROVIDED), (method, path)


@sqlite_only
def test_member_reads_but_may_not_write(client, member):
    m = create(client, name="shared")
    assert client.put(f"{PM}/{m['pk']}/data", headers=ADMIN).status_code == 405
    assert client.post(f"{PM}/{m['pk']}/data", content=b"w", headers={**ADMIN, **UPLOAD}).status_code == 200
    for method, path in READS:
        r = client.request(method, path.replace("{pk}", str(m["pk"])), headers=member)
        assert r.status_code == 200, (method, path, r.text)
    assert download(client, m["pk"], member).content == b"w"
    for method, path in MODEL_WRITES + REF_WRITES:
        for pk in (m["pk"], 999999):  # permission comes before lookup: 403 even for an unknown pk
            r = client.request(
                method, path.replace("{pk}", str(pk)), json={**BASE, "version": "1"}, headers={**member, **UPLOAD}
            )
            assert (r.status_code, r.json()) == (403, FORBIDDEN), (method, path, pk)
    assert client.get(f"{PM}/{m['pk']}", headers=member).json() == m | {"data": True}  # nothing changed


@sqlite_only
def test_admin_unknown_pk_is_404(client):
    for method, path in [*READS, *MODEL_WRITES, *REF_WRITES]:
        if "{pk}" not in path or path.startswith("/v1/domains"):
            continue
        r = client.request(method, path.replace("{pk}", "999999"), json={}, headers=ADMIN)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, path)
    # also when the body is malformed or lacks a filename: the lookup wins
    for method, path in [("PUT", f"{PM}/999999"), ("PATCH", "/v1/frameworks/999999"), ("POST", f"{PM}/999999/data")]:
        r = client.request(method, path, content=b"{", headers=ADMIN)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, path)
    r = client.post(f"{PM}/999999/download", json={"filetype": "xyz"}, headers=ADMIN)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


@sqlite_only
def test_routing_errors(client):
    m = create(client)
    cases = [
        ("GET", "/v1/nothing-here"),
        ("GET", f"{PM}/abc"),
        ("GET", f"{PM}/-1"),
        ("GET", f"{PM}/1.5"),
        ("DELETE", f"{PM}/abc/hard"),
        ("GET", f"{PM}/{'9' * 40}"),
        ("GET", "/v1/modelz/1"),  # (/v1/models, /v1/projects, /v1/environments: Domino legacy mounts)
        ("GET", f"{PM}/{m['pk']}//"),
    ]
    for method, path in cases:
        r = client.request(method, path, headers=ADMIN)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path
    for method, path in [
        ("GET", f"{PM}/list"),
        ("GET", f"{PM}/list/"),
        ("GET", f"{PM}/create"),
        ("GET", f"{PM}/{m['pk']}/download"),
        ("OPTIONS", f"{PM}/{m['pk']}"),
        ("POST", f"{PM}/{m['pk']}"),
        ("GET", f"{PM}/{m['pk']}/hard"),
        ("GET", "/v1/domains/list"),
    ]:
        r = client.request(method, path, headers=ADMIN)
        assert (r.status_code, r.json()) == (405, {"detail": f'Method "{method}" not allowed.'}), path
        assert r.headers["allow"]


@sqlite_only
def test_trailing_slash_is_optional_and_never_redirects(client):
    a, b = create(client, name="a"), create(client, name="b")
    fw = client.post("/v1/frameworks/create", json={"name": "jax", "version": "0.4"}, headers=ADMIN).json()
    calls = [
        ("POST", f"{PM}/list", None, 200),
        ("POST", f"{PM}/create", BASE, 201),
        ("GET", f"{PM}/{a['pk']}", None, 200),
        ("PUT", f"{PM}/{a['pk']}", BASE, 200),
        ("PATCH", f"{PM}/{a['pk']}", {"name": "a"}, 200),
        ("POST", f"{PM}/{a['pk']}/download", None, 200),
        ("DELETE", f"{PM}/{a['pk']}/data", None, 200),
        ("DELETE", f"{PM}/{a['pk']}", None, 204),
        ("DELETE", f"{PM}/{a['pk']}/reinstate", None, 200),
        ("POST", f"{PM}/{a['pk']}/reinstate", None, 200),
        ("POST", "/v1/frameworks/list", None, 200),
        ("GET", f"/v1/frameworks/{fw['pk']}", None, 200),
        ("PATCH", f"/v1/frameworks/{fw['pk']}", {"version": "0.4"}, 200),
        ("PUT", f"/v1/frameworks/{fw['pk']}", {"name": "jax", "version": "0.4"}, 200),
        ("POST", "/v1/licences/list", None, 200),
        ("POST", "/v1/licenses/list", None, 200),
        ("GET", "/v1/licences/1", None, 200),
        ("GET", "/v1/licenses/1", None, 200),
        ("PATCH", "/v1/licences/1/subdescriptors", {"method": "add", "type": "domains", "names": ["Models"]}, 200),
        ("POST", "/v1/domains/list", None, 200),
        ("GET", "/v1/domains/1", None, 200),
    ]
    for method, path, body, status in calls:
        for p in (path, path + "/"):
            r = client.request(method, p, json=body, headers=ADMIN, follow_redirects=False)
            assert r.status_code == status, (method, p, r.status_code, r.text)
            assert "location" not in r.headers
    r = client.post(f"{PM}/{b['pk']}/data/", content=b"x", headers={**ADMIN, **UPLOAD}, follow_redirects=False)
    assert r.status_code == 200 and r.json()["data"] is True
    assert client.delete(f"{PM}/{b['pk']}/hard/", headers=ADMIN, follow_redirects=False).status_code == 200
    assert client.delete(f"/v1/frameworks/{fw['pk']}/", headers=ADMIN, follow_redirects=False).status_code == 204


# --- pretrained models: lifecycle on SQLite and PostgreSQL ---------------------------------------------


def test_model_lifecycle(client, services):
    # create: 201 and the §4 shape exactly
    m = create(client, description="ResNet-18", metadata='{"classes": ["cat", "dog"]}', framework=5)
    assert set(m) == {
        "url",
        "description",
        "name",
        "metadata",
        "pk",
        "framework",
        "domain",
        "licence",
        "data",
        "creator",
        "creation_time",
        "deletion_time",
    }
    assert m["framework"] == client.get("/v1/frameworks/5", headers=ADMIN).json()
    assert set(m["framework"]) == {"pk", "name", "version"} and m["framework"]["name"] == "mmclassification"
    assert (m["domain"], m["licence"], m["data"], m["deletion_time"]) == ("Image Classification", "MIT", False, None)
    assert isinstance(m["pk"], int) and isinstance(m["creator"], int)
    assert TIMESTAMP.match(m["creation_time"]) and m["metadata"] == '{"classes": ["cat", "dog"]}'
    pk = m["pk"]
    assert client.get(f"{PM}/{pk}", headers=ADMIN).json() == m

    # update (PUT replaces, PATCH merges); description is optional
    r = client.put(f"{PM}/{pk}", json={**BASE, "name": "r18", "domain": "od", "licence": "Apache 2.0"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["domain"], r.json()["licence"]) == ("r18", "Object Detection", "Apache 2.0")
    assert r.json()["creation_time"] == m["creation_time"]
    r = client.put(f"{PM}/{pk}", json={"name": "only"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"framework", "domain", "licence", "url"}
    r = client.patch(f"{PM}/{pk}", json={"description": "new", "framework": 1}, headers=ADMIN)
    assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("r18", "new")
    assert r.json()["framework"]["pk"] == 1

    # data: a 20 MiB round trip, byte for byte
    data = os.urandom(20 * MiB)
    r = client.post(f"{PM}/{pk}/data", content=data, headers={**ADMIN, **UPLOAD})
    assert r.status_code == 200 and r.json()["data"] is True, r.text
    r = download(client, pk, json={"filetype": "data", "params": {}})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/data"
    assert r.headers["content-disposition"] == 'attachment; filename="model.data"'
    assert int(r.headers["content-length"]) == len(data)
    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()

    # a set-data without a filename is refused and the data stays
    r = client.post(f"{PM}/{pk}/data", content=b"other", headers={**ADMIN, "Content-Type": "application/data"})
    assert (r.status_code, r.json()) == (400, MISSING_FILENAME)
    assert hashlib.sha256(download(client, pk).content).hexdigest() == hashlib.sha256(data).hexdigest()
    # replacing data keeps one blob
    assert client.post(f"{PM}/{pk}/data", content=b"v2", headers={**ADMIN, **UPLOAD}).status_code == 200
    assert download(client, pk).content == b"v2" and stored_blobs(services) == 1

    # soft delete: 204 empty, hidden from the list, still retrievable, idempotent
    other = create(client, name="other")
    r = client.delete(f"{PM}/{pk}", headers=ADMIN)
    assert (r.status_code, r.content) == (204, b"")
    assert listed(client) == ["other"]
    assert listed(client, {"include_inactive": True}) == ["r18", "other"]
    gone = client.get(f"{PM}/{pk}", headers=ADMIN).json()
    assert TIMESTAMP.match(gone["deletion_time"])
    assert client.delete(f"{PM}/{pk}", headers=ADMIN).status_code == 204
    assert client.get(f"{PM}/{pk}", headers=ADMIN).json()["deletion_time"] == gone["deletion_time"]
    # a soft-deleted model may still be updated and downloaded
    assert client.patch(f"{PM}/{pk}", json={"metadata": "m"}, headers=ADMIN).json()["deletion_time"] is not None
    assert download(client, pk).content == b"v2"

    # reinstate (DELETE, and POST as an extension); reinstating an active model is a no-op
    r = client.delete(f"{PM}/{pk}/reinstate", headers=ADMIN)
    assert r.status_code == 200 and r.json()["deletion_time"] is None
    assert client.post(f"{PM}/{pk}/reinstate", headers=ADMIN).json()["deletion_time"] is None
    assert listed(client) == ["r18", "other"]

    # delete data; a model without data downloads as 200 with an empty body
    r = client.delete(f"{PM}/{pk}/data", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"] is False and stored_blobs(services) == 0
    assert client.delete(f"{PM}/{pk}/data", headers=ADMIN).status_code == 200  # no data: no error
    r = download(client, pk)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "application/data")

    # hard delete: 200 with the model as it was; afterwards 404 everywhere and gone from every list
    client.post(f"{PM}/{pk}/data", content=b"last", headers={**ADMIN, **UPLOAD})
    client.delete(f"{PM}/{pk}", headers=ADMIN)
    before = client.get(f"{PM}/{pk}", headers=ADMIN).json()
    r = client.delete(f"{PM}/{pk}/hard", headers=ADMIN)
    assert (r.status_code, r.json()) == (200, before)
    assert stored_blobs(services) == 0
    for method, path in [("GET", f"{PM}/{pk}"), ("DELETE", f"{PM}/{pk}/hard"), ("DELETE", f"{PM}/{pk}/reinstate")]:
        assert client.request(method, path, headers=ADMIN).status_code == 404
    assert download(client, pk).status_code == 404
    assert listed(client, {"include_inactive": True}) == ["other"]
    assert client.delete(f"{PM}/{other['pk']}/hard", headers=ADMIN).json()["name"] == "other"


def test_filters_over_http(client):
    create(client, name="ResNet18", framework=5, domain="ic", metadata="a")
    create(client, name="resnet50", framework=4, domain="od", licence="Apache 2.0", metadata="b")
    yolo = create(client, name="yolo", framework=10, domain="od", metadata="c")
    client.post(f"{PM}/{yolo['pk']}/data", content=b"w", headers={**ADMIN, **UPLOAD})
    old = create(client, name="old-resnet", framework=4, domain="is", metadata="d")
    client.delete(f"{PM}/{old['pk']}", headers=ADMIN)

    def ex(**e):
        return {"expressions": [e]}

    assert listed(client, {}) == ["ResNet18", "resnet50", "yolo"]
    assert listed(client, ex(type="exact", field="name", value="yolo")) == ["yolo"]
    assert listed(client, ex(type="exact", field="name", value="RESNET50", case_insensitive=True)) == ["resnet50"]
    assert listed(client, ex(type="exact", field="domain.name", value="od", invert=True)) == ["ResNet18"]
    assert listed(client, ex(type="contains", field="name", sub_string="resnet")) == ["resnet50"]
    assert listed(client, ex(type="contains", field="name", sub_string="RESNET", case_insensitive=True)) == [
        "ResNet18",
        "resnet50",
    ]
    assert listed(client, ex(type="isnull", field="data")) == ["ResNet18", "resnet50"]
    assert listed(client, ex(type="is_null", field="data", invert=True)) == ["yolo"]
    assert listed(client, ex(type="compare", field="framework", operator=">=", value=5)) == ["ResNet18", "yolo"]
    assert listed(client, ex(type="compare", field="metadata", operator="<", value="b")) == ["ResNet18"]
    assert listed(client, ex(type="exact", field="framework.name", value="mmclassification")) == [
        "ResNet18",
        "resnet50",
    ]
    assert listed(client, ex(type="exact", field="licence.name", value="Apache 2.0")) == ["resnet50"]
    assert listed(client, ex(type="exact", field="domain.description", value="Object Detection")) == [
        "resnet50",
        "yolo",
    ]
    creator = yolo["creator"]
    assert listed(client, ex(type="exact", field="creator", value=creator)) == ["ResNet18", "resnet50", "yolo"]
    nested = {
        "type": "or",
        "sub_expressions": [
            {"type": "exact", "field": "licence.name", "value": "Apache 2.0"},
            {
                "type": "and",
                "sub_expressions": [
                    {"type": "exact", "field": "domain.name", "value": "od"},
                    {"type": "contains", "field": "name", "sub_string": "ol"},
                ],
            },
        ],
    }
    assert listed(client, {"expressions": [nested]}) == ["resnet50", "yolo"]
    assert listed(client, {"expressions": [{**nested, "invert": True}]}) == ["ResNet18"]
    two = [ex(type="contains", field="name", sub_string="s")["expressions"][0]] + [
        {"type": "exact", "field": "domain.name", "value": "od"}
    ]
    assert listed(client, {"expressions": two}) == ["resnet50"]  # successive expressions AND together

    # ordering: several keys, descending, nulls first/last, include_inactive
    by = {"order_by": [{"field": "framework"}, {"field": "name", "ascending": False}]}
    assert listed(client, by) == ["resnet50", "ResNet18", "yolo"]
    assert listed(client, {"order_by": [{"field": "creation_time", "ascending": False}]}) == [
        "yolo",
        "resnet50",
        "ResNet18",
    ]
    order = {"include_inactive": True, "order_by": [{"field": "deletion_time", "nulls_first": True}]}
    assert listed(client, order) == ["ResNet18", "resnet50", "yolo", "old-resnet"]
    order["order_by"][0]["nulls_first"] = False
    assert listed(client, order) == ["old-resnet", "ResNet18", "resnet50", "yolo"]
    spec = {
        "expressions": [{"type": "contains", "field": "name", "sub_string": "resnet", "case_insensitive": True}],
        "order_by": [{"field": "creation_time", "ascending": False}],
        "include_inactive": True,
    }
    assert listed(client, spec) == ["old-resnet", "resnet50", "ResNet18"]  # the spec's own example


@sqlite_only
@pytest.mark.parametrize(
    "spec",
    [
        {"expressions": [{"type": "exact", "field": "nope", "value": 1}]},
        {"expressions": [{"type": "regex", "field": "name", "value": "x"}]},
        {"expressions": [{"type": "exact", "field": "name"}]},
        {"expressions": [{"type": "exact", "field": "name", "value": "a", "extra": 1}]},
        {"expressions": [{"type": "and", "sub_expressions": [{"type": "exact", "field": "name", "value": "a"}]}]},
        {"expressions": [{"type": "and", "sub_expressions": [{"type": "or", "sub_expressions": []}, {}]}]},
        {"expressions": [{"type": "compare", "field": "pk", "operator": "!=", "value": 1}]},
        {"expressions": [{"type": "exact", "field": "creation_time", "value": "yesterday"}]},
        {"order_by": [{"field": "nope"}]},
        {"order_by": [{"field": "name", "up": True}]},
        {"include_inactive": "yes"},
        {"filter": {}},
        [],
        "name",
    ],
)
def test_bad_filters_are_400(client, spec):
    r = client.post(f"{PM}/list", json=spec, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"detail"}, r.text
    assert r.json()["detail"].startswith("Unable to parse JSON: ")


@sqlite_only
def test_list_body_forms(client):
    create(client)
    assert listed(client) == ["resnet18"]  # no body
    for raw in (b"", b"  ", b"{}", b"null"):
        r = client.post(f"{PM}/list", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 200 and len(r.json()) == 1, raw
    for raw in (b"{", b'{"a": NaN}', b"\xff\xfe", b"[" * 100_000):
        r = client.post(f"{PM}/list", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"].startswith("JSON parse error - "), raw[:10]


# --- pretrained models: validation -------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    "change,expected",
    [
        ({"framework": 999}, {"framework": ['Invalid pk "999" - object does not exist.']}),
        ({"framework": {"pk": 1}}, {"framework": ["Incorrect type. Expected pk value, received dict."]}),
        ({"domain": "zz"}, {"domain": ["Object with name=zz does not exist."]}),
        ({"licence": "WTFPL"}, {"licence": ["Object with name=WTFPL does not exist."]}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"name": "x" * 201}, {"name": ["Ensure this field has no more than 200 characters."]}),
        ({"url": None}, {"url": ["This field may not be null."]}),
        ({"url": ["x"]}, {"url": ["Not a valid string."]}),
    ],
)
def test_create_field_errors(client, change, expected):
    r = client.post(f"{PM}/create", json={**BASE, **change}, headers=ADMIN)
    assert (r.status_code, r.json()) == (400, expected)


@sqlite_only
def test_create_body_forms(client):
    required = ["This field is required."]
    r = client.post(f"{PM}/create", headers=ADMIN)
    assert (r.status_code, r.json()) == (400, {k: required for k in ("name", "url", "framework", "domain", "licence")})
    r = client.post(f"{PM}/create", json=[BASE], headers=ADMIN)
    assert r.status_code == 400 and "non_field_errors" in r.json()
    r = client.post(f"{PM}/create", content=b'{"name": ', headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("JSON parse error - ")
    r = client.post(f"{PM}/create", content=b'{"a": "' + b"x" * (3 * MiB) + b'"}', headers=ADMIN)
    assert r.status_code == 413 and set(r.json()) == {"detail"}
    m = create(client, licence=2, url="not a url at all")  # licence by pk (TypeScript client); url is free text
    assert (m["licence"], m["url"], m["description"], m["metadata"]) == ("Apache 2.0", "not a url at all", "", "")
    r = client.patch(f"{PM}/{m['pk']}", json="name", headers=ADMIN)
    assert r.status_code == 400 and "non_field_errors" in r.json()
    r = client.patch(f"{PM}/{m['pk']}", json={"framework": m["framework"]}, headers=ADMIN)
    assert r.json() == {"framework": ["Incorrect type. Expected pk value, received dict."]}


@sqlite_only
def test_every_field_error_in_one_answer_and_nothing_stored(client, member):
    """DRF collects every field's fault: the body's own (types, blanks, lengths, nulls) and those found in the
    database (no such framework, domain, licence) arrive together, in one 400, and nothing is stored."""
    bad = {
        "name": "",
        "url": None,
        "description": ["x"],
        "metadata": "m",
        "framework": 999,
        "domain": "zz",
        "licence": "WTFPL",
    }
    r = client.post(f"{PM}/create", json=bad, headers=ADMIN)
    assert (r.status_code, r.json()) == (
        400,
        {
            "name": ["This field may not be blank."],
            "url": ["This field may not be null."],
            "description": ["Not a valid string."],
            "framework": ['Invalid pk "999" - object does not exist.'],
            "domain": ["Object with name=zz does not exist."],
            "licence": ["Object with name=WTFPL does not exist."],
        },
    )
    # only database faults, only body faults, and body faults beside a missing field
    r = client.post(f"{PM}/create", json={**BASE, "framework": 999, "licence": 10**6}, headers=ADMIN)
    assert r.json() == {
        "framework": ['Invalid pk "999" - object does not exist.'],
        "licence": ["Object with name=1000000 does not exist."],
    }
    r = client.post(f"{PM}/create", json={"name": "x" * 201, "domain": "zz", "framework": "1"}, headers=ADMIN)
    assert r.json() == {
        "name": ["Ensure this field has no more than 200 characters."],
        "url": ["This field is required."],
        "domain": ["Object with name=zz does not exist."],
        "licence": ["This field is required."],
    }
    assert client.post(f"{PM}/list", json={"include_inactive": True}, headers=ADMIN).json() == []

    m = create(client)
    for method in ("put", "patch"):
        r = client.request(
            method.upper(), f"{PM}/{m['pk']}", json={**BASE, "name": "new", "url": 5.5, "domain": 3}, headers=ADMIN
        )
        # a number is a string to DRF's CharField: only the domain is wrong
        assert r.json() == {"domain": ["Object with name=3 does not exist."]}
        r = client.request(method.upper(), f"{PM}/{m['pk']}", json={"name": "new", "framework": 0}, headers=ADMIN)
        expected = {"framework": ['Invalid pk "0" - object does not exist.']}
        if method == "put":
            expected = {"url": ["This field is required."], **expected}
            expected.update(domain=["This field is required."], licence=["This field is required."])
        assert (r.status_code, r.json()) == (400, expected)
    assert client.get(f"{PM}/{m['pk']}", headers=ADMIN).json() == m  # unchanged

    # the answer comes after the permission and existence checks, whatever the body
    assert client.patch(f"{PM}/{m['pk']}", json=bad, headers=member).status_code == 403
    assert client.patch(f"{PM}/999999", json=bad, headers=ADMIN).json() == NOT_FOUND
    refs = {r: len(client.post(f"/v1/{r}/list", json={}, headers=ADMIN).json()) for r in ("licences", "frameworks")}
    r = client.post("/v1/licences/create", json={"name": "", "url": "ftp:nope"}, headers=ADMIN)
    assert r.json() == {"name": ["This field may not be blank."], "url": ["Enter a valid URL."]}
    r = client.post("/v1/frameworks/create", json={"name": 5}, headers=ADMIN)
    assert r.json() == {"name": ["Not a valid string."], "version": ["This field is required."]}
    assert refs == {r: len(client.post(f"/v1/{r}/list", json={}, headers=ADMIN).json()) for r in refs}


# --- pretrained models: data and download edge cases ---------------------------------------------------


@sqlite_only
def test_download_parameters(client):
    pk = create(client)["pk"]
    client.post(f"{PM}/{pk}/data", content=b"bytes", headers={**ADMIN, **UPLOAD})
    for body in (None, {}, {"filetype": "data"}, {"params": {"a": "b", "c": ["d", "e"]}}):
        r = download(client, pk, json=body)
        assert (r.status_code, r.content) == (200, b"bytes"), body
    r = download(client, pk, json={"filetype": "xyz"})
    assert (r.status_code, r.json()) == (415, {"detail": 'Unsupported media type "xyz" in request.'})
    for body in ({"filetype": 1}, {"filetype": None}, {"params": []}, {"params": {"a": 1}}, {"params": {"a": [1]}}, []):
        r = download(client, pk, json=body)
        assert r.status_code == 400 and set(r.json()) == {"detail"}, body
    r = download(client, pk, content=b"{", headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("JSON parse error - ")


@sqlite_only
def test_set_data_headers_and_bodies(client):
    pk = create(client)["pk"]
    for disposition in (
        "attachment; filename=data",
        'attachment; filename="weights.bin"',
        "attachment; filename*=UTF-8''w%C3%A9ights.bin",
        'form-data; name="file"; filename="x"',
    ):
        r = client.post(f"{PM}/{pk}/data", content=b"ok", headers={**ADMIN, "Content-Disposition": disposition})
        assert r.status_code == 200, disposition
    for disposition in ("attachment", 'attachment; filename=""', "inline; name=x", "\x00"):
        r = client.post(f"{PM}/{pk}/data", content=b"no", headers={**ADMIN, "Content-Disposition": disposition})
        assert (r.status_code, r.json()) == (400, MISSING_FILENAME), disposition
    # a multipart body is stored verbatim, envelope included, as UFDL does
    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="w"\r\n\r\nW\r\n--b--\r\n'
    headers = {
        **ADMIN,
        "Content-Type": "multipart/form-data; boundary=b",
        "Content-Disposition": "attachment; filename=w",
    }
    assert client.post(f"{PM}/{pk}/data", content=form, headers=headers).status_code == 200
    assert download(client, pk).content == form
    r = client.post(f"{PM}/{pk}/data", content=b"", headers={**ADMIN, **UPLOAD})  # an empty file is a file
    assert r.json()["data"] is True and download(client, pk).content == b""


@sqlite_only
def test_failed_uploads_keep_the_previous_data(client, services, monkeypatch):
    pk = create(client)["pk"]
    client.post(f"{PM}/{pk}/data", content=b"precious", headers={**ADMIN, **UPLOAD})

    # too large for the configured limit
    monkeypatch.setattr(services.catalogue, "max_data_size", 10)
    r = client.post(f"{PM}/{pk}/data", content=b"x" * 100, headers={**ADMIN, **UPLOAD})
    assert r.status_code == 413 and set(r.json()) == {"detail"}
    monkeypatch.undo()

    # the client goes away half-way through the body
    sent: list[dict] = []
    incoming = [{"type": "http.request", "body": b"partial", "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    path = f"{PM}/{pk}/data"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {ADMIN_KEY}".encode()),
            (b"content-disposition", b"attachment; filename=data"),
        ],
        "server": ("testserver", 80),
        "client": ("testclient", 5000),
    }
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert download(client, pk).content == b"precious"
    assert stored_blobs(services) == 1


# --- frameworks, licences, domains ---------------------------------------------------------------------


@sqlite_only
def test_frameworks(client, member):
    seeded = client.post("/v1/frameworks/list", headers=ADMIN).json()
    assert len(seeded) >= 10 and set(seeded[0]) == {"pk", "name", "version"}
    assert {"name": "tensorflow", "version": "1.14"} in [{k: f[k] for k in ("name", "version")} for f in seeded]
    spec = {"expressions": [{"type": "exact", "field": "name", "value": "tensorflow"}]}
    assert {f["version"] for f in client.post("/v1/frameworks/list", json=spec, headers=member).json()} >= {"1.14"}
    r = client.post("/v1/frameworks/create", json={"name": "jax", "version": "0.4"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["name"] == "jax"
    fw = r.json()
    assert client.get(f"/v1/frameworks/{fw['pk']}", headers=member).json() == fw
    r = client.post("/v1/frameworks/create", json={"name": "jax", "version": "0.4"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"detail"}  # duplicate pair
    r = client.post("/v1/frameworks/create", json={"name": "jax"}, headers=ADMIN)
    assert (r.status_code, r.json()) == (400, {"version": ["This field is required."]})
    r = client.post("/v1/frameworks/create", json={"name": "x" * 33, "version": "1"}, headers=ADMIN)
    assert r.json() == {"name": ["Ensure this field has no more than 32 characters."]}
    assert client.put(f"/v1/frameworks/{fw['pk']}", json={"name": "jax", "version": "0.5"}, headers=ADMIN).json() == {
        **fw,
        "version": "0.5",
    }
    assert client.put(f"/v1/frameworks/{fw['pk']}", json={"name": "jax"}, headers=ADMIN).status_code == 400
    assert client.patch(f"/v1/frameworks/{fw['pk']}", json={"name": "flax"}, headers=ADMIN).json()["name"] == "flax"
    # deleting one in use: 409 (UFDL silently keeps it)
    m = create(client, framework=fw["pk"])
    r = client.delete(f"/v1/frameworks/{fw['pk']}", headers=ADMIN)
    assert r.status_code == 409 and set(r.json()) == {"detail"}
    client.delete(f"{PM}/{m['pk']}/hard", headers=ADMIN)
    r = client.delete(f"/v1/frameworks/{fw['pk']}", headers=ADMIN)
    assert (r.status_code, r.content) == (204, b"")
    assert client.get(f"/v1/frameworks/{fw['pk']}", headers=ADMIN).status_code == 404


@sqlite_only
def test_update_to_a_duplicate_is_400(client):
    fw = client.post("/v1/frameworks/create", json={"name": "jax", "version": "0.4"}, headers=ADMIN).json()
    r = client.patch(f"/v1/frameworks/{fw['pk']}", json={"name": "tensorflow", "version": "1.14"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"detail"}  # would duplicate a seeded one
    lic = client.post("/v1/licences/create", json={"name": "WTFPL", "url": "http://www.wtfpl.net/"}, headers=ADMIN)
    r = client.patch(f"/v1/licences/{lic.json()['pk']}", json={"name": "MIT"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"detail"}


@sqlite_only
def test_licences_both_spellings(client, member):
    names = [lic["name"] for lic in client.post("/v1/licences/list", headers=member).json()]
    assert {"MIT", "Apache 2.0", "GPL3", "Proprietary"} <= set(names)
    assert (
        client.post("/v1/licenses/list", headers=member).json()
        == client.post("/v1/licences/list", headers=member).json()
    )
    r = client.post("/v1/licenses/create", json={"name": "WTFPL", "url": "http://www.wtfpl.net/"}, headers=ADMIN)
    assert r.status_code == 201
    lic = r.json()
    assert lic == {
        "pk": lic["pk"],
        "name": "WTFPL",
        "url": "http://www.wtfpl.net/",
        "permissions": [],
        "conditions": [],
        "limitations": [],
        "domains": [],
    }
    assert client.get(f"/v1/licences/{lic['pk']}", headers=member).json() == lic
    r = client.post("/v1/licences/create", json={"name": "WTFPL", "url": "http://x.org/"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"detail"}
    r = client.post("/v1/licences/create", json={"name": "Other", "url": "ftp:nope"}, headers=ADMIN)
    assert (r.status_code, r.json()) == (400, {"url": ["Enter a valid URL."]})
    assert (
        client.patch(f"/v1/licences/{lic['pk']}", json={"url": "https://wtfpl.net"}, headers=ADMIN).status_code == 200
    )
    r = client.put(f"/v1/licenses/{lic['pk']}", json={"name": "WTFPL-2", "url": "https://wtfpl.net"}, headers=ADMIN)
    assert r.json()["name"] == "WTFPL-2"

    sub = f"/v1/licences/{lic['pk']}/subdescriptors"
    body = {"method": "add", "type": "permissions", "names": ["Commercial use", "Modification"]}
    assert client.patch(sub, json=body, headers=ADMIN).json()["permissions"] == ["Commercial use", "Modification"]
    body = {"method": "remove", "type": "permissions", "names": ["Modification"]}
    r = client.patch(f"/v1/licenses/{lic['pk']}/subdescriptors", json=body, headers=ADMIN)
    assert r.json()["permissions"] == ["Commercial use"]
    r = client.patch(sub, json={"method": "swap", "type": "colours", "names": "x"}, headers=ADMIN)
    assert r.status_code == 400 and set(r.json()) == {"method", "type", "names"}
    r = client.patch(sub, json={"method": "add"}, headers=ADMIN)
    assert r.json() == {"type": ["This field is required."], "names": ["This field is required."]}
    assert client.patch(sub, json=[], headers=ADMIN).status_code == 400

    m = create(client, licence="WTFPL-2")
    assert client.delete(f"/v1/licences/{lic['pk']}", headers=ADMIN).status_code == 409
    client.delete(f"{PM}/{m['pk']}/hard", headers=ADMIN)
    assert client.delete(f"/v1/licenses/{lic['pk']}", headers=ADMIN).status_code == 204
    assert client.get(f"/v1/licences/{lic['pk']}", headers=ADMIN).status_code == 404


@sqlite_only
def test_domains_are_read_only(client, member):
    domains = client.post("/v1/domains/list", headers=member).json()
    assert [(d["name"], d["description"]) for d in domains] == [
        ("ic", "Image Classification"),
        ("od", "Object Detection"),
        ("is", "Image Segmentation"),
        ("sp", "Speech"),
        ("sc", "Spectrum Classification"),
    ]
    assert client.get(f"/v1/domains/{domains[0]['pk']}", headers=member).json() == domains[0]
    spec = {"expressions": [{"type": "exact", "field": "name", "value": "sp"}]}
    assert client.post("/v1/domains/list", json=spec, headers=ADMIN).json()[0]["description"] == "Speech"
    assert client.get("/v1/domains/999", headers=ADMIN).json() == NOT_FOUND
    for method, path in [("POST", "/v1/domains/create"), ("PUT", "/v1/domains/1"), ("PATCH", "/v1/domains/1")]:
        r = client.request(method, path, json={"name": "xx", "description": "X"}, headers=ADMIN)  # not even admins
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
    assert client.delete("/v1/domains/1/", headers=ADMIN).status_code == 403
    assert len(client.post("/v1/domains/list", headers=ADMIN).json()) == 5


@sqlite_only
def test_catalogue_is_scoped_per_organisation(client, services, admin):
    m = create(client)
    outsider = member_of_new_org(services)
    key = services.identity.create_key(outsider, "k").secret
    assert client.post(f"{PM}/list", headers=bearer(key)).json() == []
    assert client.get(f"{PM}/{m['pk']}", headers=bearer(key)).status_code == 404
    assert download(client, m["pk"], bearer(key)).status_code == 404
    mine = create(client, bearer(key), name="theirs")  # an owner of its own organisation is an admin there
    assert listed(client) == ["resnet18"] and listed(client, headers=bearer(key)) == ["theirs"]
    services.identity.create_user(admin, "ann", role=Role.ADMIN)  # an admin, not a superuser
    ann = services.identity.create_key(services.identity.principal_for("ann"), "k").secret
    assert client.get(f"{PM}/{mine['pk']}", headers=bearer(ann)).status_code == 404
    assert client.delete(f"{PM}/{mine['pk']}/hard", headers=bearer(ann)).status_code == 404
    assert listed(client, headers=bearer(ann)) == ["resnet18"]
    # frameworks and licences are shared by every organisation: an organisation admin may not change them
    for method, path in REF_WRITES:
        r = client.request(method, path.replace("{pk}", "1"), json={"name": "n", "version": "1"}, headers=bearer(ann))
        assert (r.status_code, r.json()) == (403, FORBIDDEN), (method, path)


# --- docs -----------------------------------------------------------------------------------------------


@sqlite_only
def test_every_route_is_tested_and_documented(client):
    from starlette.routing import Mount

    (ufdl,) = [r.app for r in client.app.routes if isinstance(r, Mount) and r.path == "/v1"]
    ufdl.openapi_schema = None
    routes = {(m.upper(), "/v1" + p) for p, ops in ufdl.openapi()["paths"].items() for m in ops}
    known = {(m, p) for m, p in AUTH_ROUTES + PROTECTED}
    assert routes == known
    documented = set()
    for line in DOCS.read_text().splitlines():
        row = re.match(r"\|\s*([A-Z, ]+)\s*\|\s*`([^`]+)`", line)
        if row:
            documented |= {(x.strip(), row.group(2)) for x in row.group(1).split(",")}
    assert {(m, p) for m, p in routes if p.startswith("/v1/")} <= documented
