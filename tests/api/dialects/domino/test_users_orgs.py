"""Domino's users, git credentials and organizations (teams) over HTTP, on SQLite and PostgreSQL: envelopes,
permissions, foreign-organisation 404s, bad input as 400 in FailureEnvelopeV1."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from modelharbor.core.teams import TeamRole
from modelharbor.domain.principal import Role
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.conftest import ADMIN_KEY

ORGS = "/api/organizations/v1/organizations"


@pytest.fixture
def admin_h():
    return h(ADMIN_KEY)


def stranger(services, admin):
    """A user (and key) of another organisation only."""
    other = services.identity.create_org(admin, f"elsewhere-{uuid.uuid4().hex[:6]}")
    user = services.identity.create_user(admin, f"stranger-{uuid.uuid4().hex[:6]}", role=Role.OWNER)
    services.identity.move_user(admin, user.id, other.id, role="owner")
    principal = services.identity.principal_by_ids(user.id, other.id)
    return principal, services.identity.create_key(principal, "k").secret


def ssh_key(passphrase: bytes | None = None) -> str:
    """An ed25519 key: OpenSSH format, or PKCS#8 PEM with a passphrase."""
    key = ed25519.Ed25519PrivateKey.generate()
    if passphrase is None:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
    enc = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


# --- users ---------------------------------------------------------------------------------------
def test_self_and_visible_users(client, services, admin, admin_h):
    body = client.get("/api/users/v1/self", headers=admin_h).json()
    assert body["user"]["id"] == admin.user_id and body["user"]["userName"] == "admin"
    assert set(body["user"]) >= {"avatarUrl", "firstName", "lastName", "fullName", "id", "userName", "email"}
    assert set(body["metadata"]) == {"requestId", "notices"}
    bob, bob_key = new_user(services, admin)
    assert client.get("/api/users/v1/self", headers=h(bob_key)).json()["user"]["userName"] == bob.username
    # Bearer works like the API-key header
    bearer = {"Authorization": f"Bearer {bob_key}"}
    assert client.get("/api/users/v1/self", headers=bearer).json()["user"]["id"] == bob.user_id
    new_user(services, admin)
    _, skey = stranger(services, admin)
    page = client.get("/api/users/v1/users?limit=2", headers=h(bob_key)).json()
    assert [u["userName"] for u in page["users"]] == sorted(u["userName"] for u in page["users"])
    assert page["metadata"]["totalCount"] == 3 and page["metadata"]["limit"] == 2 and len(page["users"]) == 2
    rest = client.get("/api/users/v1/users?offset=2", headers=h(bob_key)).json()
    assert len(rest["users"]) == 1 and rest["metadata"]["offset"] == 2
    # the stranger sees only their own organisation (its members: them and the superuser who made it)
    theirs = {u["userName"] for u in client.get("/api/users/v1/users", headers=h(skey)).json()["users"]}
    assert bob.username not in theirs and len(theirs) == 2
    # v4 (the client's get_user_id): a bare array
    people = client.get("/v4/users", headers=h(bob_key)).json()
    assert isinstance(people, list) and {p["userName"] for p in people} >= {"admin", bob.username}
    assert all(isinstance(p["createdAt"], int) for p in people)  # epoch milliseconds on v4


def test_users_errors(client, admin_h):
    failure(client.get("/api/users/v1/self"), 401)
    failure(client.get("/api/users/v1/users", headers=h("mh_nope")), 401)
    failure(client.get("/v4/users"), 401)
    for query in ("limit=0", "limit=x", "offset=-1", "limit=1001"):
        failure(client.get(f"/api/users/v1/users?{query}", headers=admin_h), 400)


def test_git_credentials_sealed_and_never_returned(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    base = f"/v4/accounts/{bob.user_id}/gitcredentials"
    token = "ghp_" + "s3cr3t" * 6
    resp = client.post(
        base,
        json={"name": "gh", "domain": "GitHub.com", "type": "TokenGitCredentialDto", "token": token},
        headers=h(bob_key),
    )
    assert resp.status_code == 200, resp.text
    cred = resp.json()
    assert cred["gitServiceProvider"] == "Github" and cred["domain"] == "github.com" and cred["protocol"] == "https"
    assert token not in resp.text and cred["fingerprint"].startswith("HMAC-SHA256:")
    key = ssh_key(b"pw")
    resp = client.post(
        base,
        json={
            "name": "lab",
            "domain": "git.example.org:2222",
            "type": "SshGitCredentialDto",
            "key": key,
            "passphrase": "pw",
            "gitServiceProvider": "gitlabenterprise",
        },
        headers=h(bob_key),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["fingerprint"].startswith("SHA256:") and resp.json()["gitServiceProvider"] == "GitLabEnterprise"
    # stored sealed: neither the token nor the key is in the database
    from modelharbor.db.tables_people import GitCredentialRow

    with services.db.uow(readonly=True) as s:
        sealed = [r.sealed for r in s.query(GitCredentialRow)]
    assert len(sealed) == 2 and not any(token.encode() in b or b"PRIVATE KEY" in b for b in sealed)
    assert services.git_credentials.secret(bob.user_id, cred["id"]).secret == token
    plain = {"name": "plain", "domain": "github.com", "type": "SshGitCredentialDto", "key": ssh_key()}
    made = client.post(base, json=plain, headers=h(bob_key)).json()
    assert made["fingerprint"].startswith("SHA256:") and made["type"] == "SshGitCredentialDto"
    assert client.delete(f"{base}/{made['id']}", headers=h(bob_key)).status_code == 204
    # the public accessor (op 155): the user and the organisation's admin; metadata only
    for headers in (h(bob_key), admin_h):
        listed = client.get(f"/api/users/beta/credentials/{bob.user_id}", headers=headers)
        assert listed.status_code == 200 and token not in listed.text and "PRIVATE" not in listed.text
        assert [c["name"] for c in listed.json()["credentials"]] == ["gh", "lab"]
        assert set(listed.json()["credentials"][0]) == {
            "id",
            "name",
            "domain",
            "protocol",
            "gitServiceProvider",
            "fingerprint",
        }
    # a duplicate name is a 400 (never 409), another member may not look, a stranger does not see the user
    dup = {"name": "gh", "domain": "github.com", "type": "TokenGitCredentialDto", "token": "t"}
    failure(client.post(base, json=dup, headers=h(bob_key)), 400)
    _, carol_key = new_user(services, admin)
    failure(client.get(f"/api/users/beta/credentials/{bob.user_id}", headers=h(carol_key)), 403)
    failure(client.post(base, json={**dup, "name": "x"}, headers=h(carol_key)), 403)
    _, skey = stranger(services, admin)
    failure(client.get(f"/api/users/beta/credentials/{bob.user_id}", headers=h(skey)), 404)
    failure(client.get("/api/users/beta/credentials/nobody", headers=admin_h), 404)
    failure(client.get(f"/api/users/beta/credentials/{bob.user_id}"), 401)
    # bad bodies
    for body in (
        [],
        {"name": "a", "domain": "github.com", "type": "Password", "token": "t"},
        {"name": "a", "domain": "github.com", "type": "TokenGitCredentialDto"},
        {"name": "a", "domain": "not a host", "type": "TokenGitCredentialDto", "token": "t"},
        {"name": "a", "domain": "github.com", "type": "SshGitCredentialDto", "key": "not a key"},
        {"name": "a", "domain": "github.com", "type": "SshGitCredentialDto", "key": key, "passphrase": "wrong"},
        {"name": "a", "domain": "github.com", "type": "TokenGitCredentialDto", "token": "t", "gitServiceProvider": 3},
        {"name": "", "domain": "github.com", "type": "TokenGitCredentialDto", "token": "t"},
    ):
        failure(client.post(base, json=body, headers=h(bob_key)), 400)
    # delete: 204, then gone
    assert client.delete(f"{base}/{cred['id']}", headers=h(bob_key)).status_code == 204
    failure(client.delete(f"{base}/{cred['id']}", headers=h(bob_key)), 404)
    assert [c["name"] for c in client.get(base, headers=h(bob_key)).json()] == ["lab"]


# --- organizations (teams) -----------------------------------------------------------------------
def test_organizations_lifecycle(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    carol, carol_key = new_user(services, admin)
    dave, dave_key = new_user(services, admin)
    resp = client.post(
        ORGS,
        json={"name": "vision", "members": [{"userId": carol.user_id, "organizationRole": "member"}]},
        headers=h(bob_key),
    )
    assert resp.status_code == 200, resp.text
    org = resp.json()["org"]
    assert len(org["id"]) == 24 and org["name"] == "vision" and set(resp.json()["metadata"]) == {"requestId", "notices"}
    roles = {m["userId"]: m["organizationRole"] for m in org["members"]}
    assert roles == {bob.user_id: "admin", carol.user_id: "member"}
    # duplicates answer 400, not 409
    failure(client.post(ORGS, json={"name": "vision", "members": []}, headers=h(dave_key)), 400)
    # mine: members only; exact name filter
    assert [o["name"] for o in client.get(ORGS, headers=h(carol_key)).json()["orgs"]] == ["vision"]
    assert client.get(ORGS, headers=h(dave_key)).json()["orgs"] == []
    assert client.get(f"{ORGS}?nameFilter=visio", headers=h(carol_key)).json()["orgs"] == []
    # read: members and organisation admins; other members get 403
    assert client.get(f"{ORGS}/{org['id']}", headers=h(carol_key)).status_code == 200
    assert client.get(f"{ORGS}/{org['id']}", headers=admin_h).status_code == 200
    failure(client.get(f"{ORGS}/{org['id']}", headers=h(dave_key)), 403)
    # add / remove: the team's admins and the organisation's admins
    failure(
        client.put(
            f"{ORGS}/{org['id']}/user",
            json={"userId": dave.user_id, "organizationRole": "member"},
            headers=h(carol_key),
        ),
        403,
    )
    resp = client.put(
        f"{ORGS}/{org['id']}/user", json={"userId": dave.user_id, "organizationRole": "Admin"}, headers=h(bob_key)
    )
    assert resp.status_code == 200 and {m["userId"] for m in resp.json()["org"]["members"]} >= {dave.user_id}
    resp = client.delete(f"{ORGS}/{org['id']}/user?memberToRemoveId={carol.user_id}", headers=admin_h)
    assert resp.status_code == 200 and carol.user_id not in {m["userId"] for m in resp.json()["org"]["members"]}
    failure(client.delete(f"{ORGS}/{org['id']}/user?memberToRemoveId={carol.user_id}", headers=admin_h), 404)
    # the last admin stays
    client.delete(f"{ORGS}/{org['id']}/user?memberToRemoveId={dave.user_id}", headers=h(bob_key))
    failure(client.delete(f"{ORGS}/{org['id']}/user?memberToRemoveId={bob.user_id}", headers=h(bob_key)), 400)
    # all: organisation admins only, with filters
    client.post(ORGS, json={"name": "Speech", "members": []}, headers=h(dave_key))
    failure(client.get(f"{ORGS}/all", headers=h(bob_key)), 403)
    everything = client.get(f"{ORGS}/all", headers=admin_h).json()
    assert [o["name"] for o in everything["orgs"]] == ["Speech", "vision"] and everything["metadata"]["totalCount"] == 2
    assert [o["name"] for o in client.get(f"{ORGS}/all?nameFilter=SPE", headers=admin_h).json()["orgs"]] == ["Speech"]
    by_user = client.get(f"{ORGS}/all?userIdFilter={bob.user_id}", headers=admin_h).json()["orgs"]
    assert [o["name"] for o in by_user] == ["vision"]
    paged = client.get(f"{ORGS}/all?limit=1&offset=1", headers=admin_h).json()
    assert [o["name"] for o in paged["orgs"]] == ["vision"] and paged["metadata"]["offset"] == 1


def test_organizations_errors(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    viewer, viewer_key = new_user(services, admin, role=Role.VIEWER)
    org = client.post(ORGS, json={"name": "t", "members": []}, headers=h(bob_key)).json()["org"]
    failure(client.get(ORGS), 401)
    failure(client.post(ORGS, json={"name": "v", "members": []}), 401)
    failure(client.post(ORGS, json={"name": "v", "members": []}, headers=h(viewer_key)), 403)
    sprincipal, skey = stranger(services, admin)
    failure(client.get(f"{ORGS}/{org['id']}", headers=h(skey)), 404)
    failure(
        client.put(
            f"{ORGS}/{org['id']}/user",
            json={"userId": sprincipal.user_id, "organizationRole": "member"},
            headers=h(skey),
        ),
        404,
    )
    failure(client.get(f"{ORGS}/nope", headers=admin_h), 404)
    # a user of another organisation cannot be added (404 naming the user)
    failure(
        client.put(
            f"{ORGS}/{org['id']}/user",
            json={"userId": sprincipal.user_id, "organizationRole": "member"},
            headers=admin_h,
        ),
        404,
    )
    failure(
        client.post(
            ORGS,
            json={"name": "w", "members": [{"userId": sprincipal.user_id, "organizationRole": "member"}]},
            headers=h(bob_key),
        ),
        404,
    )
    for body in (
        [],
        {"name": "w"},
        {"name": "", "members": []},
        {"name": " w", "members": []},
        {"name": 3, "members": []},
        {"name": "w", "members": ["x"]},
        {"name": "w", "members": [{"userId": bob.user_id, "organizationRole": "owner"}]},
        {"name": "w", "members": [{"organizationRole": "member"}]},
    ):
        failure(client.post(ORGS, json=body, headers=h(bob_key)), 400)
    for body in ({}, {"userId": viewer.user_id}, {"userId": viewer.user_id, "organizationRole": "boss"}):
        failure(client.put(f"{ORGS}/{org['id']}/user", json=body, headers=h(bob_key)), 400)
    failure(client.delete(f"{ORGS}/{org['id']}/user", headers=h(bob_key)), 400)
    failure(client.get(f"{ORGS}?limit=0", headers=h(bob_key)), 400)
    assert (
        client.post(ORGS, content=b"{", headers={**h(bob_key), "content-type": "application/json"}).status_code == 400
    )


def test_team_roles_for_owned_objects(services, admin):
    """The hook projects will use: the caller's role in a team of their organisation."""
    bob, _ = new_user(services, admin)
    team = services.teams.create(bob, "owners", [(admin.user_id, TeamRole.MEMBER)])
    assert services.teams.role_of(bob, team.id) == "admin" and services.teams.role_of(admin, team.id) == "member"
