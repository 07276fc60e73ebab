"""Native API /api/v1/users (and the admin side of /keys): users created, read, listed, given passwords and deleted
through the API, with the permission answers of each."""

from __future__ import annotations

import pytest

from modelharbor.domain.principal import Role
from tests.api.native.test_orgs import error
from tests.conftest import ADMIN_KEY

API = "/api/v1"
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
USER_KEYS = {"id", "username", "org_id", "role", "is_superuser", "created_at", "has_password"}
PASSWORD = "correct horse battery"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ok(resp, status: int = 200) -> dict | list:
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def boss(services, admin) -> dict[str, str]:
    """Headers of ada, an admin (no superuser) of the default organisation."""
    services.identity.create_user(admin, "ada", role=Role.ADMIN)
    return bearer(services.identity.create_key(admin, "ada's key", username="ada").secret)


def test_create_read_list_set_password_delete(client, boss, services, admin):
    made = ok(client.post(f"{API}/users", json={"username": "ben", "password": PASSWORD}, headers=boss), 201)
    assert set(made) == USER_KEYS
    assert (made["username"], made["role"], made["org_id"], made["has_password"]) == (
        "ben",
        "member",
        admin.org_id,
        True,
    )
    assert ok(client.get(f"{API}/users/ben", headers=boss)) == made
    assert ok(client.get(f"{API}/users/{made['id']}", headers=boss)) == made
    listed = ok(client.get(f"{API}/users", headers=boss))
    assert [u["username"] for u in listed] == ["ada", "admin", "ben"]
    viewer = ok(client.post(f"{API}/users", json={"username": "vic", "role": "viewer"}, headers=boss), 201)
    assert (viewer["role"], viewer["has_password"]) == ("viewer", False)

    # ben signs in to UFDL with his password, then changes it himself
    assert client.post("/v1/auth/obtain", json={"username": "ben", "password": PASSWORD}).status_code == 200
    ben = bearer(services.identity.create_key(admin, "ben's key", username="ben").secret)
    new = {"password": "a new long password", "current_password": PASSWORD}
    assert ok(client.put(f"{API}/users/ben/password", json=new, headers=ben))["has_password"]
    error(
        client.put(f"{API}/users/ben/password", json={"password": "third password!"}, headers=ben),
        403,
        "WRONG_PASSWORD",
    )
    error(client.put(f"{API}/users/ben/password", json={"password": "short"}, headers=boss), 400, "WEAK_PASSWORD")
    ok(client.put(f"{API}/users/ben/password", json={"password": "set by the admin"}, headers=boss))
    assert client.post("/v1/auth/obtain", json={"username": "ben", "password": "set by the admin"}).status_code == 200

    assert client.delete(f"{API}/users/ben", headers=boss).status_code == 204
    error(client.get(f"{API}/me", headers=ben), 401, "UNAUTHENTICATED")  # his keys were revoked
    error(client.get(f"{API}/users/ben", headers=boss), 404, "USER_NOT_FOUND")
    error(client.delete(f"{API}/users/ada", headers=boss), 409, "CANNOT_DELETE_SELF")


def test_permission_answers(client, boss, services, admin):
    services.identity.create_user(admin, "mel", role=Role.MEMBER)
    mel = bearer(services.identity.create_key(admin, "mel's key", username="mel").secret)
    error(client.get(f"{API}/users", headers=mel), 403, "FORBIDDEN")
    error(client.post(f"{API}/users", json={"username": "x"}, headers=mel), 403, "FORBIDDEN")
    error(client.get(f"{API}/users/ada", headers=mel), 403, "FORBIDDEN")
    error(client.put(f"{API}/users/ada/password", json={"password": PASSWORD}, headers=mel), 403, "FORBIDDEN")
    error(client.delete(f"{API}/users/ada", headers=mel), 403, "FORBIDDEN")
    assert ok(client.get(f"{API}/users/mel", headers=mel))["username"] == "mel"  # yourself
    assert ok(client.put(f"{API}/users/mel/password", json={"password": PASSWORD}, headers=mel))["has_password"]

    error(client.post(f"{API}/users", json={"username": "o", "role": "owner"}, headers=boss), 403, "FORBIDDEN")
    error(client.put(f"{API}/users/admin/password", json={"password": PASSWORD}, headers=boss), 403, "FORBIDDEN")
    error(client.delete(f"{API}/users/admin", headers=boss), 403, "FORBIDDEN")
    error(client.get(f"{API}/users", params={"org": "nowhere"}, headers=boss), 404, "ORG_NOT_FOUND")
    error(client.post(f"{API}/users", json={"username": "ada"}, headers=boss), 409, "USER_EXISTS")
    error(client.post(f"{API}/users", json={"username": "q", "extra": 1}, headers=boss), 400, "INVALID_INPUT")
    error(client.post(f"{API}/users", json={"username": "q", "role": "emperor"}, headers=boss), 400, "INVALID_INPUT")


def test_superusers_manage_other_organisations(client, services, admin):
    acme = ok(client.post(f"{API}/orgs", json={"name": "acme"}, headers=AUTH), 201)
    made = ok(client.post(f"{API}/users", json={"username": "cy", "org": "acme", "role": "admin"}, headers=AUTH), 201)
    assert made["org_id"] == acme["id"]
    in_acme = ok(client.get(f"{API}/users", params={"org": acme["id"]}, headers=AUTH))
    assert [u["username"] for u in in_acme] == ["admin", "cy"]
    everyone = ok(client.get(f"{API}/users", headers=AUTH))
    assert [(u["username"], u["org_id"]) for u in everyone if u["username"] == "cy"] == [("cy", acme["id"])]
    cy = bearer(services.identity.create_key(services.identity.principal_for("cy", "acme"), "k").secret)
    error(client.get(f"{API}/users", params={"org": "default"}, headers=cy), 404, "ORG_NOT_FOUND")
    assert ok(client.get(f"{API}/users/admin", headers=cy))["org_id"] == acme["id"]  # its owner, seen from acme
    error(client.delete(f"{API}/users/admin", headers=cy), 403, "FORBIDDEN")  # but a superuser
    assert client.delete(f"{API}/users/cy", headers=AUTH).status_code == 204
    error(client.get(f"{API}/users/cy", headers=AUTH), 404, "USER_NOT_FOUND")


def test_admins_list_and_revoke_another_users_keys_by_prefix(client, boss, services, admin):
    services.identity.create_user(admin, "kit", role=Role.MEMBER)
    kit_key = services.identity.create_key(admin, "kit's key", username="kit")
    kit = bearer(kit_key.secret)
    listed = ok(client.get(f"{API}/keys", params={"username": "kit"}, headers=boss))
    assert [k["id"] for k in listed] == [kit_key.id] and listed[0]["key"] is None
    error(client.get(f"{API}/keys", params={"username": "ada"}, headers=kit), 403, "FORBIDDEN")
    error(client.get(f"{API}/keys", params={"username": "nobody"}, headers=boss), 404, "USER_NOT_FOUND")

    error(client.delete(f"{API}/keys/{kit_key.id[:5]}", headers=boss), 400, "KEY_PREFIX_TOO_SHORT")
    error(client.delete(f"{API}/keys/ffffff0", headers=boss), 404, "NOT_FOUND")
    revoked = ok(client.delete(f"{API}/keys/{kit_key.id[:6]}", headers=boss))
    assert revoked["id"] == kit_key.id and revoked["revoked_at"]
    error(client.get(f"{API}/me", headers=kit), 401, "UNAUTHENTICATED")


def test_an_ambiguous_prefix_is_refused_with_the_ids(client, services, admin):
    from sqlalchemy import update

    from modelharbor.db.tables import ApiKeyRow

    ids = []
    for i in (1, 2):
        key = services.identity.create_key(admin, f"k{i}")
        with services.db.uow() as s:
            s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key.id).values(id=f"c0ffee00000000{i:02d}"))
        ids.append(f"c0ffee00000000{i:02d}")
    err = error(client.delete(f"{API}/keys/c0ffee", headers=AUTH), 409, "AMBIGUOUS_KEY_PREFIX")
    assert err["details"]["key_ids"] == ids and ids[0] in err["message"]
