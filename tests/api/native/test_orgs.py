"""Native API /api/v1/orgs: organisations and moving users between them (superusers only)."""

from __future__ import annotations

import pytest

from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
ORG_KEYS = {"id", "name", "created_at", "members"}
MEMBER_KEYS = {"user_id", "username", "org_id", "role", "is_superuser"}


def error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def owner_key(services, admin) -> dict[str, str]:
    """Headers of the owner of the default organisation — no superuser."""
    services.identity.create_user(admin, "olga", role=Role.OWNER)
    return {
        "authorization": f"Bearer {services.identity.create_key(services.identity.principal_for('olga'), 'k').secret}"
    }


def test_create_list_read_rename(client):
    r = client.post("/api/v1/orgs", json={"name": "acme"}, headers=AUTH)
    assert r.status_code == 201, r.text
    acme = r.json()
    assert set(acme) == ORG_KEYS and (acme["name"], acme["members"]) == ("acme", 1)
    listed = client.get("/api/v1/orgs", headers=AUTH).json()
    assert [o["name"] for o in listed] == ["default", "acme"] and all(set(o) == ORG_KEYS for o in listed)
    assert client.get("/api/v1/orgs/acme", headers=AUTH).json() == acme
    assert client.get(f"/api/v1/orgs/{acme['id']}", headers=AUTH).json() == acme
    r = client.patch(f"/api/v1/orgs/{acme['id']}", json={"name": "acme corp"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == acme | {"name": "acme corp"}
    members = client.get("/api/v1/orgs/acme%20corp/members", headers=AUTH).json()
    assert [(m["username"], m["role"], m["is_superuser"]) for m in members] == [("admin", "owner", True)]
    assert set(members[0]) == MEMBER_KEYS

    error(client.post("/api/v1/orgs", json={"name": "acme corp"}, headers=AUTH), 409, "CONFLICT")
    error(client.patch("/api/v1/orgs/default", json={"name": "x"}, headers=AUTH), 409, "ORG_NAME_RESERVED")
    error(client.get("/api/v1/orgs/nowhere", headers=AUTH), 404, "ORG_NOT_FOUND")
    error(client.patch("/api/v1/orgs/nowhere", json={"name": "y"}, headers=AUTH), 404, "ORG_NOT_FOUND")
    for bad in ({"name": ""}, {"name": " lead"}, {"name": "x" * 201}, {}, {"name": "ok", "extra": 1}, {"name": 5}):
        error(client.post("/api/v1/orgs", json=bad, headers=AUTH), 400)
    assert len(client.get("/api/v1/orgs", headers=AUTH).json()) == 2


def test_non_superusers_get_403_and_change_nothing(client, owner_key):
    calls = [
        ("GET", "/api/v1/orgs", None),
        ("POST", "/api/v1/orgs", {"name": "mine"}),
        ("GET", "/api/v1/orgs/default", None),
        ("PATCH", "/api/v1/orgs/default", {"name": "mine"}),
        ("GET", "/api/v1/orgs/default/members", None),
        ("PUT", "/api/v1/orgs/default/members/olga", {"role": "owner"}),
    ]
    for method, path, body in calls:
        error(client.request(method, path, json=body, headers=owner_key), 403, "FORBIDDEN")
        error(client.request(method, path, json=body), 401, "UNAUTHENTICATED")
    assert [o["name"] for o in client.get("/api/v1/orgs", headers=AUTH).json()] == ["default"]


def test_moving_a_user_and_their_keys(client, services, admin, owner_key):
    acme = client.post("/api/v1/orgs", json={"name": "acme"}, headers=AUTH).json()
    me = client.get("/api/v1/me", headers=owner_key).json()
    assert me["role"] == "owner" and me["org_id"] != acme["id"]

    r = client.put("/api/v1/orgs/acme/members/olga", json={}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": me["user_id"],
        "username": "olga",
        "org_id": acme["id"],
        "role": "member",
        "is_superuser": False,
    }
    now = client.get("/api/v1/me", headers=owner_key).json()  # the same key, at once: acting in acme
    assert (now["org_id"], now["role"]) == (acme["id"], "member")
    assert [m["username"] for m in client.get("/api/v1/orgs/default/members", headers=AUTH).json()] == ["admin"]

    r = client.put(f"/api/v1/orgs/{acme['id']}/members/{me['user_id']}", json={"role": "admin"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    error(client.put("/api/v1/orgs/acme/members/nobody", json={}, headers=AUTH), 404, "USER_NOT_FOUND")
    error(client.put("/api/v1/orgs/nowhere/members/olga", json={}, headers=AUTH), 404, "ORG_NOT_FOUND")
    error(client.put("/api/v1/orgs/acme/members/olga", json={"role": "emperor"}, headers=AUTH), 400)
    error(client.put("/api/v1/orgs/acme/members/olga", json={"from_org": "nowhere"}, headers=AUTH), 404)
    assert client.get("/api/v1/me", headers=owner_key).json()["role"] == "admin"
