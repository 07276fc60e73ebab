"""Native API identity: /me and /keys (create shows the secret once, list hides it, revoke locks it out)."""

from __future__ import annotations

import io
import tarfile
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from modelharbor.db.tables import ApiKeyRow
from modelharbor.domain.principal import Role
from modelharbor.tasks.runner import run_pending

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KEY_FIELDS = {"id", "name", "prefix", "user_id", "created_at", "last_used_at", "revoked_at", "expires_at", "key"}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def native_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def auth(services) -> dict[str, str]:
    return bearer(services.settings.admin_key)


def create(client, auth, **body) -> dict:
    resp = client.post("/api/v1/keys", json=body, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def member(client, services, admin) -> dict[str, str]:
    """Bearer headers of mia, a plain member of the admin's organisation."""
    services.identity.create_user(admin, "mia", role=Role.MEMBER)
    return bearer(services.identity.create_key(admin, "mia's key", username="mia").secret)


def test_me(client, auth, admin):
    resp = client.get("/api/v1/me", headers=auth)
    assert resp.status_code == 200
    assert resp.json() == {
        "user_id": admin.user_id,
        "username": "admin",
        "org_id": admin.org_id,
        "role": "owner",
        "is_superuser": True,
    }


@sqlite_only
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer"},
        {"authorization": "Bearer mh_nope"},
        {"authorization": "Basic YWRtaW46cGFzcw=="},
        {"x-api-key": "ADMIN"},  # the Kore header is not the native one
    ],
    ids=["none", "bearer-no-key", "unknown-key", "basic", "x-api-key"],
)
def test_me_unauthenticated(client, services, headers):
    headers = {k: services.settings.admin_key if v == "ADMIN" else v for k, v in headers.items()}
    resp = client.get("/api/v1/me", headers=headers)
    native_error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"] == "Bearer"


@sqlite_only
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "Token"])
def test_auth_scheme_is_case_insensitive(client, services, scheme):
    resp = client.get("/api/v1/me", headers={"authorization": f"{scheme} {services.settings.admin_key}"})
    assert resp.status_code == 200


def test_create_key_shows_the_secret_once(client, auth, admin):
    before = datetime.now(UTC)
    key = create(client, auth, name="ci")
    assert set(key) == KEY_FIELDS
    assert key["key"].startswith("mh_") and len(key["key"]) > 40
    assert key["prefix"] == key["key"][:8]
    assert (key["name"], key["user_id"]) == ("ci", admin.user_id)
    assert (key["revoked_at"], key["expires_at"], key["last_used_at"]) == (None, None, None)
    assert before - timedelta(seconds=1) <= parse_time(key["created_at"]) <= datetime.now(UTC)

    me = client.get("/api/v1/me", headers=bearer(key["key"]))
    assert me.status_code == 200 and me.json()["user_id"] == admin.user_id

    listed = client.get("/api/v1/keys", headers=auth).json()
    assert all(k["key"] is None for k in listed)
    mine = [k for k in listed if k["id"] == key["id"]]
    assert len(mine) == 1 and mine[0]["prefix"] == key["prefix"] and mine[0]["name"] == "ci"
    assert key["key"] not in client.get("/api/v1/keys", headers=auth).text


def test_create_key_with_expiry(client, auth):
    key = create(client, auth, name="short", expires_in_days=2)
    expected = datetime.now(UTC) + timedelta(days=2)
    assert abs((parse_time(key["expires_at"]) - expected).total_seconds()) < 60


def test_expired_key_is_refused(client, auth, services):
    key = create(client, auth, name="short", expires_in_days=1)
    with services.db.uow() as s:
        s.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key["id"]).values(expires_at=datetime.now(UTC) - timedelta(1))
        )
    native_error(client.get("/api/v1/me", headers=bearer(key["key"])), 401, "UNAUTHENTICATED")


@sqlite_only
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "k", "expires_in_days": 0},
        {"name": "k", "expires_in_days": 3651},
        {"name": "k", "scopes": ["all"]},
        {"name": 5},
    ],
    ids=["no-name", "empty-name", "long-name", "zero-days", "too-many-days", "unknown-field", "numeric-name"],
)
def test_create_key_bad_input(client, auth, body):
    native_error(client.post("/api/v1/keys", json=body, headers=auth), 400, "INVALID_INPUT")


def test_revoke_key(client, auth):
    key = create(client, auth, name="temp")
    resp = client.delete(f"/api/v1/keys/{key['id']}", headers=auth)
    assert resp.status_code == 200
    revoked = resp.json()
    assert revoked["id"] == key["id"] and revoked["key"] is None
    revoked_at = parse_time(revoked["revoked_at"])
    assert abs((revoked_at - datetime.now(UTC)).total_seconds()) < 60
    resp = client.get("/api/v1/me", headers=bearer(key["key"]))
    native_error(resp, 401, "UNAUTHENTICATED")
    assert "revoked" in resp.json()["error"]["message"]
    native_error(client.get("/api/v1/files", headers=bearer(key["key"])), 401, "UNAUTHENTICATED")
    again = client.delete(f"/api/v1/keys/{key['id']}", headers=auth)
    assert again.status_code == 200 and parse_time(again.json()["revoked_at"]) == revoked_at
    listed = {k["id"]: k for k in client.get("/api/v1/keys", headers=auth).json()}
    assert listed[key["id"]]["revoked_at"] is not None
    native_error(client.delete("/api/v1/keys/0000000000000000", headers=auth), 404, "NOT_FOUND")


def test_revoked_key_is_refused_by_the_kore_dialect_too(client, auth):
    key = create(client, auth, name="both")
    assert client.get("/api/public/dock-status/ds-x", headers={"x-api-key": key["key"]}).status_code == 404
    client.delete(f"/api/v1/keys/{key['id']}", headers=auth)
    resp = client.get("/api/public/dock-status/ds-x", headers={"x-api-key": key["key"]})
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHENTICATED"


def test_admin_creates_a_key_for_a_member(client, auth, services, admin):
    services.identity.create_user(admin, "mia", role=Role.MEMBER)
    key = create(client, auth, name="for mia", username="mia")
    me = client.get("/api/v1/me", headers=bearer(key["key"])).json()
    assert (me["username"], me["role"], me["is_superuser"], me["org_id"]) == ("mia", "member", False, admin.org_id)
    assert key["user_id"] == me["user_id"]
    # the admin sees it with ?all=true, not in their own list
    assert key["id"] not in [k["id"] for k in client.get("/api/v1/keys", headers=auth).json()]
    assert key["id"] in [k["id"] for k in client.get("/api/v1/keys?all=true", headers=auth).json()]
    native_error(client.post("/api/v1/keys", json={"name": "x", "username": "nobody"}, headers=auth), 404, "NOT_FOUND")


def test_member_manages_only_own_keys(client, auth, member, services):
    own = create(client, member, name="mine")
    listed = client.get("/api/v1/keys", headers=member).json()
    assert sorted(k["name"] for k in listed) == ["mia's key", "mine"]
    assert own["id"] in [k["id"] for k in listed]
    native_error(client.get("/api/v1/keys?all=true", headers=member), 403, "FORBIDDEN")
    native_error(client.post("/api/v1/keys", json={"name": "x", "username": "admin"}, headers=member), 403, "FORBIDDEN")
    admin_keys = client.get("/api/v1/keys", headers=auth).json()
    native_error(client.delete(f"/api/v1/keys/{admin_keys[0]['id']}", headers=member), 403, "FORBIDDEN")
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    assert client.delete(f"/api/v1/keys/{own['id']}", headers=member).status_code == 200


def test_other_organisation_cannot_revoke(client, auth, services, admin):
    services.identity.create_org(admin, "other-org")
    owner_there = services.identity.principal_for(admin.username, "other-org")
    services.identity.create_user(owner_there, "bob", role=Role.ADMIN)
    bob = bearer(services.identity.create_key(owner_there, "bob", username="bob").secret)
    me = client.get("/api/v1/me", headers=bob).json()
    assert (me["username"], me["role"], me["org_id"]) == ("bob", "admin", owner_there.org_id)
    key = create(client, auth, name="victim")
    native_error(client.delete(f"/api/v1/keys/{key['id']}", headers=bob), 404, "NOT_FOUND")
    assert key["id"] not in [k["id"] for k in client.get("/api/v1/keys?all=true", headers=bob).json()]
    assert client.get("/api/v1/me", headers=bearer(key["key"])).status_code == 200


# --- tasks and imported models (served by the same router) ---------------------------------------------


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_task_and_imported_model_status(client, auth, services, admin):
    data = _tar({"config.json": b"{}", "weights.bin": b"\0" * 3000})
    session, model = services.imports.start(
        admin, name="m.tar", total_chunks=2, size=len(data), extension="tar", is_adapter=True
    )
    for n, piece in enumerate((data[:1000], data[1000:])):
        resp = client.put(f"/api/v1/uploads/{session.id}/chunks/{n}", content=piece, headers=auth)
        assert resp.status_code == 200, resp.text
    done = client.post(f"/api/v1/uploads/{session.id}/complete", headers=auth).json()
    assert done["upload"]["context"] == "model"
    assert done["result"]["model_id"] == model.id
    task_id = done["result"]["task_id"]

    task = client.get(f"/api/v1/tasks/{task_id}", headers=auth).json()
    assert (task["id"], task["kind"], task["status"], task["percent"], task["error"]) == (
        task_id,
        "model_import",
        "queued",
        0,
        None,
    )
    imported = client.get(f"/api/v1/imports/{model.id}", headers=auth).json()
    assert (imported["status"], imported["is_adapter"], imported["file_id"]) == ("importing", True, done["file"]["id"])

    assert run_pending(services) == 1
    task = client.get(f"/api/v1/tasks/{task_id}", headers=auth).json()
    assert (task["status"], task["percent"], task["error"]) == ("succeeded", 100, None)
    assert task["result"] == {
        "model_id": model.id,
        "format": "tar",
        "entries": 2,
        "uncompressed_bytes": 3002,
        "registered_model": "m.tar",
        "version": 1,
    }
    assert client.get(f"/api/v1/imports/{model.id}", headers=auth).json()["status"] == "ready"

    native_error(client.get(f"/api/v1/tasks/{uuid.uuid4()}", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/imports/{uuid.uuid4()}", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/tasks/{task_id}"), 401, "UNAUTHENTICATED")

    services.identity.create_org(admin, "other-org")
    owner_there = services.identity.principal_for(admin.username, "other-org")
    services.identity.create_user(owner_there, "bob", role=Role.MEMBER)
    bob = bearer(services.identity.create_key(owner_there, "bob", username="bob").secret)
    native_error(client.get(f"/api/v1/tasks/{task_id}", headers=bob), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/imports/{model.id}", headers=bob), 404, "NOT_FOUND")
