"""Native dataset routes (``/api/v1/datasets``, ``/api/v1/dataset-snapshots``) over HTTP on SQLite: create, list,
read, change, delete; grants; snapshots (whole head and a subset); tags; files of a snapshot. 401, foreign 404s, a
reader cannot change or snapshot, an editor cannot grant or delete, bad input is a 400 in the native envelope."""

from __future__ import annotations

import uuid

import pytest

from tests.api.dialects.domino.test_registered_models import new_user
from tests.api.dialects.domino.test_users_orgs import stranger

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the core is tested on PostgreSQL too
URL = "/api/v1/datasets"


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert set(resp.json()) == {"error"}, resp.text
    return resp.json()["error"]


@pytest.fixture
def owner(services, admin):
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"nds-{uuid.uuid4().hex[:6]}")
    return principal, key, project


def put_file(client, key, dataset_id, path, data):
    r = client.put(f"{URL}/{dataset_id}/files", params={"path": path}, content=data, headers=h(key))
    assert r.status_code == 201, r.text


def test_dataset_lifecycle(client, owner):
    principal, key, project = owner
    r = client.post(URL, json={"project_id": project.id, "name": "sales", "description": "d"}, headers=h(key))
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["name"], d["description"], d["project_id"], d["project_name"]) == ("sales", "d", project.id, project.name)
    assert (d["role"], d["snapshot_ids"], d["tags"], d["creator_id"]) == ("DatasetRwOwner", [], {}, principal.user_id)
    one = f"{URL}/{d['id']}"
    assert client.get(one, headers=h(key)).json() == d
    other = client.post(URL, json={"project_id": project.id, "name": "other"}, headers=h(key)).json()
    page = client.get(URL, params={"project_id": project.id, "limit": 1}, headers=h(key)).json()
    assert ([x["id"] for x in page["items"]], page["total"], page["limit"]) == ([other["id"]], 2, 1)
    named = client.get(URL, params={"name": "sales"}, headers=h(key)).json()
    assert [x["id"] for x in named["items"]] == [d["id"]]
    changed = client.patch(one, json={"name": "sales-2", "description": ""}, headers=h(key)).json()
    assert (changed["name"], changed["description"]) == ("sales-2", "")
    assert client.patch(one, json={}, headers=h(key)).json() == changed
    # snapshots freeze the head; a subset keeps just the paths named
    put_file(client, key, d["id"], "data/a.csv", b"x,y\n1,2\n")
    put_file(client, key, d["id"], "readme.txt", b"hello")
    whole = client.post(f"{one}/snapshots", headers=h(key))
    assert whole.status_code == 201, whole.text
    s1 = whole.json()
    assert (s1["dataset_id"], s1["size"], s1["status"], s1["creator_id"]) == (d["id"], 13, "active", principal.user_id)
    s2 = client.post(f"{one}/snapshots", json={"paths": ["data"]}, headers=h(key)).json()
    assert s2["size"] == 8
    assert client.get(f"/api/v1/dataset-snapshots/{s1['id']}", headers=h(key)).json() == s1
    snaps = client.get(f"{one}/snapshots", params={"limit": 1}, headers=h(key)).json()
    assert ([x["id"] for x in snaps["items"]], snaps["total"]) == ([s2["id"]], 2)
    put_file(client, key, d["id"], "readme.txt", b"changed")
    listed = client.get(f"{one}/files", params={"snapshot": s2["id"]}, headers=h(key)).json()
    assert [e["path"] for e in listed["entries"]] == ["data"]
    old = client.get(f"{one}/files/content", params={"path": "readme.txt", "snapshot": s1["id"]}, headers=h(key))
    assert old.content == b"hello"
    # tags
    tagged = client.put(f"{one}/tags/v1", json={"snapshot_id": s1["id"]}, headers=h(key))
    assert tagged.status_code == 200 and tagged.json()["tags"] == {"v1": s1["id"]}, tagged.text
    moved = client.put(f"{one}/tags/v1", json={"snapshot_id": s2["id"]}, headers=h(key)).json()
    assert moved["tags"] == {"v1": s2["id"]} and moved["snapshot_ids"] == [s2["id"], s1["id"]]
    assert client.delete(f"{one}/tags/v1", headers=h(key)).json()["tags"] == {}
    error(client.delete(f"{one}/tags/v1", headers=h(key)), 404)
    error(client.put(f"{one}/tags/v2", json={"snapshot_id": "f" * 24}, headers=h(key)), 404)
    # delete
    gone = client.delete(one, headers=h(key))
    assert gone.status_code == 200 and gone.json()["id"] == d["id"]
    error(client.get(one, headers=h(key)), 404)
    error(client.get(f"/api/v1/dataset-snapshots/{s1['id']}", headers=h(key)), 404)


def test_grants_and_roles(client, services, admin, owner):
    principal, key, project = owner
    d = client.post(URL, json={"project_id": project.id, "name": "shared"}, headers=h(key)).json()
    one = f"{URL}/{d['id']}"
    reader, reader_key = new_user(services, admin)
    editor, editor_key = new_user(services, admin)
    _, outsider_key = new_user(services, admin)
    error(client.get(one, headers=h(reader_key)), 404)  # no role: not there
    assert client.get(URL, headers=h(outsider_key)).json()["items"] == []
    granted = client.post(f"{one}/grants", json={"target_id": reader.username, "role": "datasetrwreader"},
                          headers=h(key))  # fmt: skip
    assert granted.status_code == 200, granted.text
    assert {(g["target_id"], g["role"]) for g in granted.json()} == {
        (principal.user_id, "DatasetRwOwner"),
        (reader.user_id, "DatasetRwReader"),
    }
    assert {g["target_name"] for g in granted.json()} == {principal.username, reader.username}
    client.post(f"{one}/grants", json={"target_id": editor.user_id, "role": "DatasetRwEditor"}, headers=h(key))
    grants = client.get(f"{one}/grants", headers=h(reader_key)).json()
    assert {g["target_name"] for g in grants} == {principal.username, reader.username, editor.username}
    # a reader reads but cannot change or snapshot
    assert client.get(one, headers=h(reader_key)).json()["role"] == "DatasetRwReader"
    assert [x["id"] for x in client.get(URL, headers=h(reader_key)).json()["items"]] == [d["id"]]
    assert "DatasetRwEditor" in error(client.post(f"{one}/snapshots", headers=h(reader_key)), 403)["message"]
    error(client.patch(one, json={"description": "x"}, headers=h(reader_key)), 403)
    error(client.put(f"{one}/files", params={"path": "a"}, content=b"a", headers=h(reader_key)), 403)
    # an editor changes and snapshots, but neither grants nor deletes
    put_file(client, editor_key, d["id"], "a.txt", b"a")
    snap = client.post(f"{one}/snapshots", headers=h(editor_key))
    assert snap.status_code == 201, snap.text
    assert (
        client.put(f"{one}/tags/t", json={"snapshot_id": snap.json()["id"]}, headers=h(editor_key)).status_code == 200
    )
    grant = {"target_id": reader.user_id, "role": "DatasetRwOwner"}
    error(client.post(f"{one}/grants", json=grant, headers=h(editor_key)), 403)
    error(client.delete(f"{one}/grants/{reader.user_id}", params={"role": "DatasetRwReader"}, headers=h(editor_key)),
          403)  # fmt: skip
    error(client.delete(one, headers=h(editor_key)), 403)
    # the owner takes a grant away; the wrong role or an unknown target is a 404
    error(client.delete(f"{one}/grants/{reader.user_id}", params={"role": "DatasetRwEditor"}, headers=h(key)), 404)
    after = client.delete(f"{one}/grants/{reader.username}", params={"role": "DatasetRwReader"}, headers=h(key))
    assert reader.user_id not in {g["target_id"] for g in after.json()}, after.text
    error(client.get(one, headers=h(reader_key)), 404)
    error(client.post(f"{one}/grants", json={"target_id": "nobody-here", "role": "DatasetRwReader"}, headers=h(key)),
          404)  # fmt: skip


def test_unauthenticated_foreign_and_bad_input(client, services, admin, owner):
    _, key, project = owner
    d = client.post(URL, json={"project_id": project.id, "name": "mine"}, headers=h(key)).json()
    one = f"{URL}/{d['id']}"
    snap = client.post(f"{one}/snapshots", headers=h(key)).json()
    for method, path in (("GET", URL), ("GET", one), ("POST", f"{one}/snapshots"), ("GET", f"{one}/grants")):
        error(client.request(method, path), 401)
    _, foreign = stranger(services, admin)
    for method, path in (("GET", one), ("GET", f"{one}/snapshots"), ("GET", f"/api/v1/dataset-snapshots/{snap['id']}"),
                         ("DELETE", one), ("GET", f"{one}/grants")):  # fmt: skip
        error(client.request(method, path, headers=h(foreign)), 404)
    assert client.get(URL, params={"project_id": project.id}, headers=h(foreign)).json()["total"] == 0
    error(client.post(URL, json={"project_id": project.id, "name": "x"}, headers=h(foreign)), 404)
    for bad, field in (
        ({"project_id": project.id}, "name"),
        ({"project_id": project.id, "name": "  "}, "name"),
        ({"project_id": project.id, "name": "mine"}, "name"),  # taken in the project
        ({"project_id": project.id, "name": 1}, "name"),
        ({"project_id": project.id, "name": "y", "colour": "red"}, "colour"),
    ):
        assert field in error(client.post(URL, json=bad, headers=h(key)), 400)["message"], bad
    error(client.post(URL, json={"project_id": "nope", "name": "z"}, headers=h(key)), 404)
    error(client.get(URL, params={"limit": 0}, headers=h(key)), 400)
    error(client.get(URL, params={"offset": -1}, headers=h(key)), 400)
    error(client.patch(one, json={"name": ""}, headers=h(key)), 400)
    error(client.post(f"{one}/snapshots", json={"paths": ["../x"]}, headers=h(key)), 400)
    error(client.post(f"{one}/snapshots", json={"paths": ["missing"]}, headers=h(key)), 404)
    error(client.post(f"{one}/snapshots", json={"paths": "a"}, headers=h(key)), 400)
    error(client.post(f"{one}/grants", json={"target_id": "x", "role": "boss"}, headers=h(key)), 400)
    error(client.delete(f"{one}/grants/x", headers=h(key)), 400)  # role is required
    error(client.put(f"{one}/tags/v1", json={}, headers=h(key)), 400)
    error(client.put(f"{one}/tags/%20v1", json={"snapshot_id": snap["id"]}, headers=h(key)), 400)
