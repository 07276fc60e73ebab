"""A Domino project's collaborators (public ops 118–119, the client's v4 routes, the legacy root
``GET /{owner}/{project}/collaborators``) and access requests (op 136 and the native routes that decide them), over
HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from modelharbor.domain.principal import Role
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import stranger
from tests.conftest import ADMIN_KEY

API = "/api/projects/v1/projects"


@pytest.fixture
def owner(services, admin):
    """A member (not an admin) who owns a project: (principal, key, project)."""
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"collab-{uuid.uuid4().hex[:6]}")
    return principal, key, project


def test_public_add_change_remove(client, services, admin, owner):
    principal, key, project = owner
    member, _ = new_user(services, admin)
    url = f"{API}/{project.id}/collaborators"
    r = client.post(url, json={"id": member.user_id, "role": "CONTRIBUTOR"}, headers=h(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["collaborator"] == {"id": member.user_id, "role": "contributor"} and body["metadata"]["requestId"]
    # the v4 spelling and the v4 field names are accepted too; a second add changes the role
    r = client.post(url, json={"collaboratorId": member.username, "projectRole": "launcherUser"}, headers=h(key))
    assert r.json()["collaborator"]["role"] == "launcherUser"
    got = services.projects.get_project(principal, project.id).collaborators
    assert [(c.user_id, c.role) for c in got] == [(member.user_id, "LauncherUser")]
    r = client.delete(f"{url}/{member.user_id}", headers=h(key))
    assert r.status_code == 200 and r.json()["success"] is True
    assert services.projects.get_project(principal, project.id).collaborators == ()
    assert "not a collaborator" in failure(client.delete(f"{url}/{member.user_id}", headers=h(key)), 404)


def test_public_errors(client, services, admin, owner):
    principal, key, project = owner
    member, member_key = new_user(services, admin)
    url = f"{API}/{project.id}/collaborators"
    assert failure(client.post(url, json={"id": member.user_id, "role": "contributor"}), 401)
    # a non-owner, even a Contributor, may not manage collaborators: 403
    services.projects.set_collaborator(principal, project.id, member.user_id, "Contributor")
    assert "only the owner" in failure(
        client.post(url, json={"id": admin.user_id, "role": "contributor"}, headers=h(member_key)), 403
    )
    assert failure(client.delete(f"{url}/{member.user_id}", headers=h(member_key)), 403)
    # another organisation: 404
    _, skey = stranger(services, admin)
    assert failure(client.post(url, json={"id": member.user_id, "role": "contributor"}, headers=h(skey)), 404)
    assert failure(
        client.post(f"{API}/{'0' * 24}/collaborators", json={"id": "x", "role": "owner"}, headers=h(key)), 404
    )
    # bad bodies: 400 naming the field
    assert "role" in failure(client.post(url, json={"id": member.user_id, "role": "boss"}, headers=h(key)), 400)
    assert "'id' is required" in failure(client.post(url, json={"role": "contributor"}, headers=h(key)), 400)
    assert "'role'" in failure(client.post(url, json={"id": member.user_id, "role": 3}, headers=h(key)), 400)
    assert failure(client.post(url, content=b"[1]", headers=h(key)), 400)
    assert failure(client.post(url, content=b"{", headers=h(key)), 400)
    assert "not a member" in failure(client.post(url, json={"id": "nobody", "role": "owner"}, headers=h(key)), 400)


def test_v4_and_legacy_routes(client, services, admin, owner):
    principal, key, project = owner
    member, member_key = new_user(services, admin)
    url = f"/v4/projects/{project.id}/collaborators"
    r = client.post(url, json={"collaboratorId": member.user_id, "projectRole": "Contributor"}, headers=h(key))
    assert r.status_code == 200, r.text
    assert r.json() == {"collaboratorId": member.user_id, "projectRole": "Contributor", "userName": member.username}
    assert client.get(url, headers=h(member_key)).json() == [r.json()]
    legacy = client.get(f"/{principal.username}/{project.name}/collaborators", headers=h(member_key))
    assert legacy.status_code == 200, legacy.text
    assert legacy.json() == [
        {"id": member.user_id, "username": member.username, "userName": member.username, "projectRole": "Contributor"}
    ]
    # the collaborator now may write the project's files (Contributor)
    put = client.put(f"/v1/projects/{principal.username}/{project.name}/a.txt", content=b"x", headers=h(member_key))
    assert put.status_code == 201, put.text
    assert client.delete(f"{url}/{member.user_id}", headers=h(key)).json() == []
    assert failure(client.get(f"/{principal.username}/{project.name}/collaborators"), 401)
    assert failure(client.get(f"/{principal.username}/nothing/collaborators", headers=h(key)), 404)
    _, skey = stranger(services, admin)
    assert failure(client.get(f"/{principal.username}/{project.name}/collaborators", headers=h(skey)), 404)
    assert failure(client.get(url, headers=h(skey)), 404)
    assert failure(client.post(url, json={"collaboratorId": member.user_id}, headers=h(member_key)), 403)
    assert "collaboratorId" in failure(client.post(url, json={}, headers=h(key)), 400)


def test_access_requests(client, services, admin, owner):
    """Op 136 stores a request; the owner lists it natively and approves it (granting the role) or declines it."""
    principal, key, project = owner
    asker, asker_key = new_user(services, admin)
    other, other_key = new_user(services, admin)
    op136 = f"/api/registeredmodels/v1/access/{project.id}"
    r = client.post(op136, headers=h(asker_key))
    assert r.status_code == 204 and r.content == b""
    assert client.post(op136, headers=h(asker_key)).status_code == 204  # asking again: the same open request
    assert (
        client.post(op136, json={"role": "resultsconsumer", "message": "please"}, headers=h(other_key)).status_code
        == 204
    )
    native = f"/api/v1/projects/{project.id}/access-requests"
    listed = client.get(native, headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200, listed.text
    got = {a["username"]: a for a in listed.json()}
    assert set(got) == {asker.username, other.username}
    assert got[asker.username]["role"] == "Contributor" and got[other.username]["role"] == "ResultsConsumer"
    assert got[other.username]["message"] == "please" and got[asker.username]["status"] == "Pending"
    # the owner's own list and the asker's
    mine = client.get("/api/v1/access-requests", headers={"Authorization": f"Bearer {key}"}).json()
    assert len(mine) == 2
    theirs = client.get("/api/v1/access-requests", headers={"Authorization": f"Bearer {asker_key}"}).json()
    assert [a["user_id"] for a in theirs] == [asker.user_id]
    # only the owner (or an admin) sees and decides them
    nb = {"Authorization": f"Bearer {asker_key}"}
    assert client.get(native, headers=nb).status_code == 403
    rid = got[asker.username]["id"]
    assert client.post(f"{native}/{rid}/approve", headers=nb).status_code == 403
    ok = client.post(f"{native}/{rid}/approve", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and ok.json()["status"] == "Approved" and ok.json()["decided_by"] == principal.user_id
    roles = {c.user_id: c.role for c in services.projects.get_project(principal, project.id).collaborators}
    assert roles == {asker.user_id: "Contributor"}
    again = client.post(f"{native}/{rid}/decline", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 400 and "approved already" in again.text
    oid = got[other.username]["id"]
    no = client.post(f"{native}/{oid}/decline", headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # an admin
    assert no.status_code == 200 and no.json()["status"] == "Declined"
    assert other.user_id not in {c.user_id for c in services.projects.get_project(principal, project.id).collaborators}
    assert client.get(native, headers={"Authorization": f"Bearer {key}"}).json() == []
    everything = client.get(native, params={"status": "all"}, headers={"Authorization": f"Bearer {key}"}).json()
    assert {a["status"] for a in everything} == {"Approved", "Declined"}


def test_access_request_errors(client, services, admin, owner):
    principal, key, project = owner
    asker, asker_key = new_user(services, admin, role=Role.VIEWER)
    op136 = f"/api/registeredmodels/v1/access/{project.id}"
    assert failure(client.post(op136), 401)
    assert "own" in failure(client.post(op136, headers=h(key)), 400)
    assert "role" in failure(client.post(op136, json={"role": "king"}, headers=h(asker_key)), 400)
    assert failure(client.post(op136, json=[1], headers=h(asker_key)), 400)
    assert failure(client.post(f"/api/registeredmodels/v1/access/{'f' * 24}", headers=h(asker_key)), 404)
    _, skey = stranger(services, admin)
    assert failure(client.post(op136, headers=h(skey)), 404)
    native = f"/api/v1/projects/{project.id}/access-requests"
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.post(f"{native}/{'a' * 24}/approve", headers=bearer).status_code == 404
    assert client.post(f"{native}/%00{'a' * 23}/decline", headers=bearer).status_code == 404
    assert client.get(native, params={"status": "maybe"}, headers=bearer).status_code == 400
    assert client.get(native, headers={"Authorization": f"Bearer {skey}"}).status_code == 404
    # approving with another role than the one asked for
    assert client.post(op136, headers=h(asker_key)).status_code == 204
    rid = client.get(native, headers=bearer).json()[0]["id"]
    assert client.post(f"{native}/{rid}/approve", json={"role": "chief"}, headers=bearer).status_code == 400
    ok = client.post(f"{native}/{rid}/approve", json={"role": "launcheruser"}, headers=bearer)
    assert ok.status_code == 200 and ok.json()["role"] == "LauncherUser"
