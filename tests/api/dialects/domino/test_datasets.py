"""Domino datasets (ops 34–46) and the client's legacy ``/dataset`` routes over HTTP, on SQLite and PostgreSQL:
envelopes, listings and paging, grants (a reader cannot write, an editor cannot grant), snapshots and tags, 401,
foreign 404s, bad bodies as 400 naming the field."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import stranger

API = "/api/datasetrw"


async def _one(data: bytes):
    yield data


@pytest.fixture
def owner(services, admin):
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"ds-{uuid.uuid4().hex[:6]}")
    return principal, key, project


def test_dataset_lifecycle(client, services, owner):
    principal, key, project = owner
    r = client.post(f"{API}/v1/datasets", json={"name": "sales", "projectId": project.id, "description": "d"},
                    headers=h(key))  # fmt: skip
    assert r.status_code == 200, r.text
    d = r.json()["dataset"]
    assert d["name"] == "sales" and d["projectId"] == project.id and d["description"] == "d"
    assert d["snapshotIds"] == [] and d["tags"] == {} and d["createdAt"].endswith("Z") and len(d["id"]) == 24
    assert set(r.json()["metadata"]) == {"requestId", "notices"}
    url = f"{API}/v1/datasets/{d['id']}"
    assert client.get(url, headers=h(key)).json()["dataset"] == d
    patched = client.patch(url, json={"name": "sales2", "description": "new"}, headers=h(key)).json()["dataset"]
    assert (patched["name"], patched["description"]) == ("sales2", "new")
    # files land in the head (the upload's job later); a snapshot freezes them
    asyncio.run(services.datasets.write(principal, d["id"], "data/a.csv", _one(b"x,y\n1,2\n")))
    snap = client.post(f"{url}/snapshots", json={"relativeFilePaths": []}, headers=h(key))
    assert snap.status_code == 200, snap.text
    s = snap.json()["snapshot"]
    assert s["datasetId"] == d["id"] and s["status"] == "active" and s["creatorId"] == principal.user_id
    assert client.get(f"{API}/v1/snapshots/{s['id']}", headers=h(key)).json()["snapshot"] == s
    second = client.post(f"{url}/snapshots", json={"relativeFilePaths": ["data"]}, headers=h(key)).json()["snapshot"]
    listed = client.get(f"{url}/snapshots?limit=1", headers=h(key)).json()
    assert [x["id"] for x in listed["snapshots"]] == [second["id"]]
    assert (listed["metadata"]["totalCount"], listed["metadata"]["limit"], listed["metadata"]["offset"]) == (2, 1, 0)
    tagged = client.post(f"{url}/tags", json={"tagName": "v1", "snapshotId": s["id"]}, headers=h(key))
    assert tagged.status_code == 200 and tagged.json()["dataset"]["tags"] == {"v1": s["id"]}
    assert tagged.json()["dataset"]["snapshotIds"] == [second["id"], s["id"]]
    untagged = client.delete(f"{url}/tags/v1", headers=h(key))
    assert untagged.status_code == 200 and untagged.json()["dataset"]["tags"] == {}
    assert failure(client.delete(f"{url}/tags/v1", headers=h(key)), 404)
    # listings
    v1 = client.get(f"{API}/v1/datasets?projectId={project.id}", headers=h(key)).json()
    assert [x["id"] for x in v1["datasets"]] == [d["id"]] and v1["metadata"]["totalCount"] == 1
    v2 = client.get(f"{API}/v2/datasets?includeProjectInfo=true&projectIdsToInclude={project.id}", headers=h(key))
    info = v2.json()["datasets"][0]
    assert info["dataset"]["id"] == d["id"]
    assert info["projectInfo"] == {"projectId": project.id, "projectName": project.name,
                                   "projectOwnerUsername": principal.username}  # fmt: skip
    assert "projectInfo" not in client.get(f"{API}/v2/datasets", headers=h(key)).json()["datasets"][0]
    excluded = client.get(f"{API}/v2/datasets?projectIdsToExclude={project.id}", headers=h(key)).json()
    assert excluded["datasets"] == [] and excluded["metadata"]["totalCount"] == 0
    owners = client.get(f"{API}/v2/datasets?minimumPermission=EditSecurity", headers=h(key)).json()
    assert [x["dataset"]["id"] for x in owners["datasets"]] == [d["id"]]
    assert "minimumPermission" in failure(client.get(f"{API}/v2/datasets?minimumPermission=x", headers=h(key)), 400)
    # delete
    gone = client.delete(url, headers=h(key))
    assert gone.status_code == 200 and gone.json()["dataset"]["id"] == d["id"]
    assert failure(client.get(url, headers=h(key)), 404)


def test_grants_and_permissions(client, services, admin, owner):
    principal, key, project = owner
    d = client.post(f"{API}/v1/datasets", json={"name": "g", "projectId": project.id}, headers=h(key)).json()
    url = f"{API}/v1/datasets/{d['dataset']['id']}"
    reader, reader_key = new_user(services, admin)
    editor, editor_key = new_user(services, admin)
    assert failure(client.get(url, headers=h(reader_key)), 404)  # no role: not there
    r = client.post(f"{url}/grants", json={"targetId": reader.user_id, "targetRole": "DatasetRwReader"}, headers=h(key))
    assert r.status_code == 200, r.text
    assert {"targetId": reader.user_id, "targetRole": "DatasetRwReader"} in r.json()["grants"]
    client.post(f"{url}/grants", json={"targetId": editor.username, "targetRole": "DatasetRwEditor"}, headers=h(key))
    details = client.get(f"{url}/grants", headers=h(reader_key)).json()["grantDetails"]
    assert {"targetId": editor.user_id, "targetName": editor.username, "targetRole": "DatasetRwEditor",
            "isOrganization": False} in details  # fmt: skip
    # a reader cannot write
    assert client.get(url, headers=h(reader_key)).status_code == 200
    assert failure(client.patch(url, json={"description": "x"}, headers=h(reader_key)), 403)
    assert failure(client.post(f"{url}/snapshots", json={"relativeFilePaths": []}, headers=h(reader_key)), 403)
    # an editor writes but cannot grant nor delete
    assert client.patch(url, json={"description": "x"}, headers=h(editor_key)).status_code == 200
    grant = {"targetId": reader.user_id, "targetRole": "DatasetRwOwner"}
    assert failure(client.post(f"{url}/grants", json=grant, headers=h(editor_key)), 403)
    assert failure(client.delete(url, headers=h(editor_key)), 403)
    # a team (Domino organization) grant
    team = services.teams.create(principal, f"team-{uuid.uuid4().hex[:6]}")
    r = client.post(f"{url}/grants", json={"targetId": team.id, "targetRole": "DatasetRwReader"}, headers=h(key))
    assert r.status_code == 200
    assert any(g["isOrganization"] for g in client.get(f"{url}/grants", headers=h(key)).json()["grantDetails"])
    # removing: DELETE with a body; the role must match
    body = {"targetId": reader.user_id, "targetRole": "DatasetRwEditor"}
    assert failure(client.request("DELETE", f"{url}/grants", json=body, headers=h(key)), 404)
    body["targetRole"] = "DatasetRwReader"
    r = client.request("DELETE", f"{url}/grants", json=body, headers=h(key))
    assert r.status_code == 200 and reader.user_id not in {g["targetId"] for g in r.json()["grants"]}
    assert failure(client.get(url, headers=h(reader_key)), 404)
    # malformed grants: 400 naming the field; unknown targets 404
    for bad, named in (({"targetId": reader.user_id}, "targetRole"), ({"targetRole": "DatasetRwReader"}, "targetId"),
                       ({"targetId": reader.user_id, "targetRole": "Boss"}, "targetRole"),
                       ({"targetId": 3, "targetRole": "DatasetRwReader"}, "targetId")):  # fmt: skip
        assert named in failure(client.post(f"{url}/grants", json=bad, headers=h(key)), 400)
    assert failure(client.post(f"{url}/grants", content=b"[]", headers=h(key)), 400)
    ghost = {"targetId": "ghost", "targetRole": "DatasetRwReader"}
    assert "targetId" in failure(client.post(f"{url}/grants", json=ghost, headers=h(key)), 404)


def test_errors(client, services, admin, owner):
    principal, key, project = owner
    d = client.post(f"{API}/v1/datasets", json={"name": "e", "projectId": project.id}, headers=h(key)).json()
    url = f"{API}/v1/datasets/{d['dataset']['id']}"
    assert failure(client.get(url), 401)
    assert failure(client.get(f"{API}/v1/datasets"), 401)
    assert failure(client.get("/dataset"), 401)
    _, skey = stranger(services, admin)
    assert failure(client.get(url, headers=h(skey)), 404)
    assert failure(client.get(f"/dataset/{d['dataset']['id']}", headers=h(skey)), 404)
    assert client.get(f"{API}/v1/datasets", headers=h(skey)).json()["datasets"] == []
    assert failure(client.post(f"{API}/v1/datasets", json={"name": "x", "projectId": project.id}, headers=h(skey)), 404)
    for missing in ("a" * 24, "nope", "%00" + "a" * 23):
        assert failure(client.get(f"{API}/v1/datasets/{missing}", headers=h(key)), 404)
        assert failure(client.get(f"{API}/v1/snapshots/{missing}", headers=h(key)), 404)
    assert "name" in failure(client.post(f"{API}/v1/datasets", json={"projectId": project.id}, headers=h(key)), 400)
    assert "already exists" in failure(
        client.post(f"{API}/v1/datasets", json={"name": "e", "projectId": project.id}, headers=h(key)), 400
    )
    assert "grants" in failure(
        client.post(f"{API}/v1/datasets", json={"name": "z", "projectId": project.id, "grants": "x"}, headers=h(key)),
        400,
    )
    for bad in (["../x"], ["/abs"], ["a\u0000b"]):
        assert "relativeFilePaths" in failure(
            client.post(f"{url}/snapshots", json={"relativeFilePaths": bad}, headers=h(key)), 400
        )
    assert "relativeFilePaths" in failure(
        client.post(f"{url}/snapshots", json={"relativeFilePaths": "x"}, headers=h(key)), 400
    )
    assert "tagName" in failure(client.post(f"{url}/tags", json={"snapshotId": "x"}, headers=h(key)), 400)
    assert failure(client.post(f"{url}/tags", json={"tagName": "t", "snapshotId": "a" * 24}, headers=h(key)), 404)
    assert "limit" in failure(client.get(f"{API}/v1/datasets?limit=0", headers=h(key)), 400)
    # an archived project is read-only
    services.project_settings.archive(principal, project.id)
    assert failure(client.patch(url, json={"description": "x"}, headers=h(key)), 403)
    assert client.get(url, headers=h(key)).status_code == 200


def test_legacy_dataset_routes(client, services, admin, owner):
    """What the dominodatalab 2.2.0 client's datasets_* calls send and read."""
    principal, key, project = owner
    r = client.post("/dataset", json={"datasetName": "legacy", "description": "old", "projectId": project.id},
                    headers=h(key))  # fmt: skip
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["datasetName"], d["datasetDescription"], d["projectId"]) == ("legacy", "old", project.id)
    listed = client.get(f"/dataset?projectId={project.id}", headers=h(key)).json()
    assert [x["datasetId"] for x in listed] == [d["datasetId"]]
    assert client.get(f"/dataset/{d['datasetId']}", headers=h(key)).json()["datasetName"] == "legacy"
    upd = client.patch(f"/dataset/{d['datasetId']}", json={"datasetName": "renamed"}, headers=h(key))
    assert upd.status_code == 200 and upd.json()["datasetName"] == "renamed"
    assert client.delete(f"/dataset/{d['datasetId']}", headers=h(key)).status_code == 200
    assert client.get(f"/dataset?projectId={project.id}", headers=h(key)).json() == []
    assert failure(client.delete(f"/dataset/{d['datasetId']}", headers=h(key)), 404)
    assert "datasetName" in failure(client.post("/dataset", json={"projectId": project.id}, headers=h(key)), 400)


def test_shared_datasets(client, services, admin, owner):
    principal, key, project = owner
    d = client.post(f"{API}/v1/datasets", json={"name": "s", "projectId": project.id}, headers=h(key)).json()
    dataset_id = d["dataset"]["id"]
    other, other_key = new_user(services, admin)
    theirs = services.projects.create_project(other, f"use-{uuid.uuid4().hex[:6]}")
    url = f"/api/projects/v1/projects/{theirs.id}/shared-datasets"
    assert failure(client.post(url, json={"datasetId": dataset_id}, headers=h(other_key)), 404)  # no role
    grant = {"targetId": other.user_id, "targetRole": "DatasetRwReader"}
    client.post(f"{API}/v1/datasets/{dataset_id}/grants", json=grant, headers=h(key))
    r = client.post(url, json={"datasetId": dataset_id}, headers=h(other_key))
    assert r.status_code == 200, r.text
    assert r.json()["dataset"] == {"projectId": theirs.id, "sharedDatasetIds": [dataset_id]}
    assert client.get(url, headers=h(other_key)).json()["dataset"]["sharedDatasetIds"] == [dataset_id]
    assert "datasetId" in failure(client.post(url, json={}, headers=h(other_key)), 400)
    own = f"/api/projects/v1/projects/{project.id}/shared-datasets"
    assert "datasetId" in failure(client.post(own, json={"datasetId": dataset_id}, headers=h(key)), 400)
    assert failure(client.post(url, json={"datasetId": dataset_id}, headers=h(key)), 403)  # not a writer there
    assert failure(client.get(url), 401)
    gone = client.delete(f"{url}/{dataset_id}", headers=h(other_key))
    assert gone.status_code == 200 and gone.json()["success"] is True
    assert failure(client.delete(f"{url}/{dataset_id}", headers=h(other_key)), 404)
    assert client.get(url, headers=h(other_key)).json()["dataset"]["sharedDatasetIds"] == []


def test_native_file_routes(client, services, owner):
    """``/api/v1/datasets/{id}/files``: write into the head, list it and a snapshot, read with a range."""
    principal, key, project = owner
    d = client.post(f"{API}/v1/datasets", json={"name": "n", "projectId": project.id}, headers=h(key)).json()
    base = f"/api/v1/datasets/{d['dataset']['id']}/files"
    auth = {"Authorization": f"Bearer {key}"}
    r = client.put(f"{base}?path=dir/a.txt", content=b"0123456789", headers=auth)
    assert r.status_code == 201, r.text
    assert (r.json()["path"], r.json()["size"], r.json()["is_dir"]) == ("dir/a.txt", 10, False)
    snap = client.post(f"{API}/v1/datasets/{d['dataset']['id']}/snapshots", json={"relativeFilePaths": []},
                       headers=h(key)).json()["snapshot"]  # fmt: skip
    client.put(f"{base}?path=dir/a.txt", content=b"changed", headers=auth)
    listed = client.get(f"{base}?path=dir&snapshot={snap['id']}", headers=auth).json()
    assert listed["snapshot_id"] == snap["id"] and [(e["name"], e["size"]) for e in listed["entries"]] == [
        ("a.txt", 10)
    ]
    part = client.get(f"{base}/content?path=dir/a.txt&snapshot={snap['id']}", headers={**auth, "Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert client.get(f"{base}/content?path=dir/a.txt", headers=auth).content == b"changed"
    assert client.put(f"{base}?path=../x", content=b"x", headers=auth).status_code == 400
    assert client.get(f"{base}?path=missing", headers=auth).status_code == 404
    assert client.get(f"/api/v1/datasets/{'a' * 24}/files", headers=auth).status_code == 404
    assert client.get(base).status_code == 401
