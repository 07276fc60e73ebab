"""Domino's project entity over HTTP, on SQLite and PostgreSQL: the public routes (ops 112–117, 128, v2 create),
the v4 routes and gateway the ``dominodatalab`` client calls, ``POST /project`` and ``GET /projectTags/{id}``;
visibility, archived projects read-only (for every writer that authorises through the core), 401, foreign 404,
bad bodies as 400 in FailureEnvelopeV1."""

from __future__ import annotations

import pytest

from modelharbor.api.openapi import URLENCODED
from modelharbor.core.teams import TeamRole
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import stranger
from tests.conftest import ADMIN_KEY

BETA, V1 = "/api/projects/beta/projects", "/api/projects/v1/projects"


@pytest.fixture
def admin_h():
    return h(ADMIN_KEY)


def new_project(client, key, name, visibility="Public", description="d"):
    resp = client.post(BETA, json={"name": name, "description": description, "visibility": visibility}, headers=h(key))
    assert resp.status_code == 200, resp.text
    return resp.json()["project"]


# --- public API --------------------------------------------------------------------------------------
def test_create_get_list(client, services, admin, admin_h):
    body = client.post(BETA, json={"name": "vision", "description": "cv", "visibility": "public"}, headers=admin_h)
    assert body.status_code == 200, body.text
    p = body.json()["project"]
    assert set(body.json()["metadata"]) == {"requestId", "notices"}
    assert (p["name"], p["description"], p["visibility"], p["ownerUsername"]) == ("vision", "cv", "Public", "admin")
    assert p["ownerId"] == admin.user_id and len(p["id"]) == 24 and p["isRestricted"] is False
    assert p["status"] == {"status": "active", "isBlocked": False} and p["tags"] == [] and not p["isArchived"]
    assert p["createdAt"].endswith("Z")
    got = client.get(f"{V1}/{p['id']}", headers=admin_h).json()["project"]
    assert got["id"] == p["id"] and got["name"] == "vision"
    v2 = client.post(
        "/api/projects/v2/projects", json={"name": "nlp", "description": "", "visibility": "Private"}, headers=admin_h
    )
    assert v2.status_code == 200 and v2.json()["project"]["visibility"] == "Private"
    for i in range(3):
        new_project(client, ADMIN_KEY, f"p{i}")
    page = client.get(f"{BETA}?offset=1&limit=2", headers=admin_h).json()
    assert [x["name"] for x in page["projects"]] == ["p0", "p1"]  # by name: nlp, p0, p1, p2, vision
    assert page["metadata"]["totalCount"] == 5 and page["metadata"]["offset"] == 1 and page["metadata"]["limit"] == 2
    # the same rows the native API and the registry use
    assert {x.name for x in services.projects.list_projects(admin)} == {"vision", "nlp", "p0", "p1", "p2"}


def test_create_bad_bodies(client, admin_h):
    new_project(client, ADMIN_KEY, "taken")
    msg = failure(
        client.post(BETA, json={"name": "Taken", "description": "", "visibility": "Public"}, headers=admin_h), 400
    )
    assert "already exists" in msg  # a duplicate is 400, never 409
    msg = failure(
        client.post(BETA, json={"name": "a/b", "description": "", "visibility": "Public"}, headers=admin_h), 400
    )
    assert "'name'" in msg and "slash" in msg
    for bad in (
        {"description": "", "visibility": "Public"},
        {"name": "x", "visibility": "Public"},
        {"name": "x", "description": ""},
        {"name": "x", "description": "", "visibility": "Everyone"},
        {"name": 7, "description": "", "visibility": "Public"},
        {"name": "a b", "description": "", "visibility": "Public"},
        {"name": "x" * 257, "description": "", "visibility": "Public"},
        {"name": "x", "description": "", "visibility": "Public", "ownerId": "nobody"},
        {"name": "x", "description": "a\x00b", "visibility": "Public"},
        {"name": "x", "description": "", "visibility": "Public", "ownerId": "a\x00b"},
        {"name": "x\x00", "description": "", "visibility": "Public"},
    ):
        failure(client.post(BETA, json=bad, headers=admin_h), 400)
    failure(client.post(BETA, content=b"[1]", headers={**admin_h, "content-type": "application/json"}), 400)
    failure(client.post(BETA, content=b"{", headers={**admin_h, "content-type": "application/json"}), 400)
    gap = {"name": "git", "description": "", "visibility": "Public", "mainRepository": {"uri": "https://x/y.git"}}
    assert "not supported" in failure(client.post(BETA, json=gap, headers=admin_h), 501)
    assert client.get(f"{BETA}?limit=0", headers=admin_h).status_code == 400
    assert client.get(f"{BETA}?offset=x", headers=admin_h).status_code == 400
    assert [p["name"] for p in client.get(BETA, headers=admin_h).json()["projects"]] == ["taken"]  # nothing else


def test_unauthenticated_and_foreign(client, services, admin, admin_h):
    p = new_project(client, ADMIN_KEY, "mine")
    for method, url in (
        ("GET", BETA),
        ("POST", BETA),
        ("GET", f"{V1}/{p['id']}"),
        ("DELETE", f"{BETA}/{p['id']}"),
        ("GET", f"/v4/projects/{p['id']}"),
        ("GET", "/v4/gateway/projects"),
        ("POST", "/project"),
        ("GET", "/projectTags/" + "0" * 24),
    ):
        failure(client.request(method, url, headers=h("mh_wrong")), 401)
        failure(client.request(method, url), 401)
    _, skey = stranger(services, admin)
    tag = client.post(f"/v4/projects/{p['id']}/tags", json={"tagNames": ["x"]}, headers=admin_h).json()["tags"][0]
    for method, url, body in (
        ("GET", f"{V1}/{p['id']}", None),
        ("DELETE", f"{BETA}/{p['id']}", None),
        ("GET", f"{BETA}/{p['id']}/results-settings", None),
        ("PUT", f"{BETA}/{p['id']}/results-settings", {"branch": "main"}),
        ("PUT", f"{V1}/{p['id']}/status", {"status": "active", "isBlocked": False}),
        ("GET", f"/v4/projects/{p['id']}", None),
        ("DELETE", f"/v4/projects/{p['id']}", None),
        ("POST", f"/v4/projects/{p['id']}/tags", {"tagNames": ["y"]}),
        ("DELETE", f"/v4/projects/{p['id']}/tags/{tag['id']}", None),
        ("GET", f"/projectTags/{tag['id']}", None),
        ("GET", "/v4/gateway/projects/findProjectByOwnerAndName?ownerName=admin&projectName=mine", None),
    ):
        failure(client.request(method, url, json=body, headers=h(skey)), 404)
    for bad in ("0" * 24, "nope", "%00", "x" * 300):
        failure(client.get(f"{V1}/{bad}", headers=admin_h), 404)
        failure(client.get(f"/v4/projects/{bad}", headers=admin_h), 404)
        failure(client.get(f"/projectTags/{bad}", headers=admin_h), 404)
    assert client.get(BETA, headers=h(skey)).json()["projects"] == []
    assert not client.get(f"{V1}/{p['id']}", headers=admin_h).json()["project"]["isArchived"]  # still whole


def test_visibility(client, services, admin):
    bob, bob_key = new_user(services, admin)
    carol, carol_key = new_user(services, admin)
    private = new_project(client, bob_key, "secret", "Private")
    searchable = new_project(client, bob_key, "findable", "searchable")
    public = new_project(client, bob_key, "open", "Public")
    assert searchable["visibility"] == "Searchable"
    listed = [p["name"] for p in client.get(BETA, headers=h(carol_key)).json()["projects"]]
    assert listed == ["findable", "open"]
    failure(client.get(f"{V1}/{private['id']}", headers=h(carol_key)), 404)
    failure(client.get(f"/v4/projects/{private['id']}", headers=h(carol_key)), 404)
    failure(
        client.get(
            "/v4/gateway/projects/findProjectByOwnerAndName",
            params={"ownerName": bob.username, "projectName": "secret"},
            headers=h(carol_key),
        ),
        404,
    )
    # searchable: what it is, yes; its contents (result settings, files) no
    assert client.get(f"{V1}/{searchable['id']}", headers=h(carol_key)).status_code == 200
    failure(client.get(f"{BETA}/{searchable['id']}/results-settings", headers=h(carol_key)), 403)
    failure(client.get(f"/v1/projects/{bob.username}/findable/commits", headers=h(carol_key)), 403)
    assert client.get(f"{BETA}/{public['id']}/results-settings", headers=h(carol_key)).status_code == 200
    # a collaborator sees the private project (v4 create with collaborators)
    made = client.post(
        "/v4/projects",
        json={
            "name": "shared",
            "visibility": "Private",
            "ownerId": bob.user_id,
            "description": "",
            "collaborators": [{"collaboratorId": carol.user_id, "projectRole": "ResultsConsumer"}],
            "tags": {"tagNames": []},
        },
        headers=h(bob_key),
    )
    assert made.status_code == 200, made.text
    assert made.json()["collaborators"] == [{"collaboratorId": carol.user_id, "projectRole": "ResultsConsumer"}]
    assert client.get(f"{V1}/{made.json()['id']}", headers=h(carol_key)).json()["project"]["collaborators"] == [
        {"id": carol.user_id, "role": "resultsConsumer"}
    ]
    # the registry's cards leave out private projects the caller is no member of
    shown = services.projects.list_projects(services.identity.principal_by_ids(carol.user_id, admin.org_id))
    assert {p.name for p in shown} == {"findable", "open", "shared"}


def test_archived_projects_are_read_only(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    carol, carol_key = new_user(services, admin)
    p = new_project(client, bob_key, "old")
    pid = p["id"]
    up = client.put(f"/v1/projects/{bob.username}/old/a.txt", content=b"hello", headers=h(bob_key))
    assert up.status_code == 201, up.text
    failure(client.delete(f"{BETA}/{pid}", headers=h(carol_key)), 403)  # not the owner
    archived = client.delete(f"{BETA}/{pid}", headers=h(bob_key))
    assert archived.status_code == 200 and archived.json()["success"] is True
    assert client.delete(f"{BETA}/{pid}", headers=h(bob_key)).json()["success"] is True  # again: no change
    assert client.get(f"{V1}/{pid}", headers=h(bob_key)).json()["project"]["isArchived"] is True
    assert client.get(BETA, headers=h(bob_key)).json()["projects"] == []
    assert client.get("/v4/gateway/projects?showCompleted=true", headers=h(bob_key)).json() == []
    # every write refuses, naming the reason; reads still work
    for method, url, body in (
        ("PUT", f"{BETA}/{pid}/results-settings", {"branch": "isolated"}),
        ("PUT", f"{V1}/{pid}/status", {"status": "complete", "isBlocked": False}),
        ("POST", f"/v4/projects/{pid}/tags", {"tagNames": ["late"]}),
    ):
        assert "archived" in failure(client.request(method, url, json=body, headers=h(bob_key)), 403)
    assert "archived" in failure(
        client.put(f"/v1/projects/{bob.username}/old/b.txt", content=b"x", headers=h(bob_key)), 403
    )
    assert client.get(f"/v1/projects/{bob.username}/old/commits", headers=h(bob_key)).status_code == 200
    assert client.get(f"{BETA}/{pid}/results-settings", headers=h(bob_key)).json()["resultsSettings"] == {
        "branch": "main"
    }
    native = client.put(
        f"/api/v1/projects/{pid}/collaborators/{carol.username}",
        json={"role": "Contributor"},
        headers={"Authorization": f"Bearer {bob_key}"},
    )
    assert native.status_code == 403 and native.json()["error"]["code"] == "PROJECT_ARCHIVED"
    failure(client.post(BETA, json={"name": "old", "description": "", "visibility": "Public"}, headers=h(bob_key)), 400)
    # un-archiving (native) makes it writable again
    back = client.patch(
        f"/api/v1/projects/{pid}", json={"archived": False}, headers={"Authorization": f"Bearer {bob_key}"}
    )
    assert back.status_code == 200 and back.json()["archived"] is False
    assert (
        client.put(f"{V1}/{pid}/status", json={"status": "active", "isBlocked": False}, headers=h(bob_key)).status_code
        == 200
    )


def test_status_and_results_settings(client, services, admin, admin_h):
    p = new_project(client, ADMIN_KEY, "work")
    url = f"{V1}/{p['id']}/status"
    done = client.put(
        url,
        json={"status": "Complete", "isBlocked": True, "blockedReason": "data", "completedMessage": "shipped"},
        headers=admin_h,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == {
        "status": "complete",
        "isBlocked": True,
        "blockedReason": "data",
        "completedMessage": "shipped",
    }
    again = client.put(url, json={"status": "active", "isBlocked": False, "blockedReason": "gone"}, headers=admin_h)
    assert again.json()["status"] == {"status": "active", "isBlocked": False}
    for bad in (
        {"status": "done", "isBlocked": False},
        {"status": "active"},
        {"isBlocked": False},
        {"status": "active", "isBlocked": "no"},
        {"status": "active", "isBlocked": False, "blockedReason": 3},
    ):
        failure(client.put(url, json=bad, headers=admin_h), 400)
    rs = f"{BETA}/{p['id']}/results-settings"
    assert client.get(rs, headers=admin_h).json()["resultsSettings"] == {"branch": "main"}
    assert client.put(rs, json={"branch": "isolated"}, headers=admin_h).json()["resultsSettings"] == {
        "branch": "isolated"
    }
    assert client.get(rs, headers=admin_h).json()["resultsSettings"]["branch"] == "isolated"
    for bad in ({"branch": "dev"}, {}, {"branch": 1}):
        failure(client.put(rs, json=bad, headers=admin_h), 400)
    _, member_key = new_user(services, admin)
    failure(client.put(rs, json={"branch": "main"}, headers=h(member_key)), 403)
    failure(client.put(url, json={"status": "active", "isBlocked": False}, headers=h(member_key)), 403)


# --- v4, gateway, tags, legacy form --------------------------------------------------------------------
def test_v4_tags_and_gateway(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    made = client.post(
        "/v4/projects",
        content=(
            '{"name": "tagged", "visibility": "Public", "ownerId": null, "description": "x", "collaborators": [], '
            '"tags": {"tagNames": ["cv", "prod"]}}'
        ),
        headers={**h(bob_key), "Content-Type": "application/json"},
    )
    assert made.status_code == 200, made.text
    v4 = made.json()
    assert [t["name"] for t in v4["tags"]] == ["cv", "prod"] and not any(t["isApproved"] for t in v4["tags"])
    assert isinstance(v4["created"], int) and v4["ownerUsername"] == bob.username
    pid = v4["id"]
    added = client.post(f"/v4/projects/{pid}/tags", json={"tagNames": ["cv", "new"]}, headers=h(bob_key))
    assert [t["name"] for t in added.json()["tags"]] == ["cv", "new", "prod"]
    tags = {t["name"]: t for t in client.get(f"/v4/projects/{pid}", headers=h(bob_key)).json()["tags"]}
    assert client.get(f"/projectTags/{tags['cv']['id']}", headers=h(bob_key)).json() == tags["cv"]
    # tags are shared by name inside the organisation; an admin's new tag is approved
    other = client.post(
        "/v4/projects", json={"name": "other", "tags": {"tagNames": ["cv", "admin-made"]}}, headers=admin_h
    ).json()
    by_name = {t["name"]: t for t in other["tags"]}
    assert by_name["cv"]["id"] == tags["cv"]["id"] and by_name["admin-made"]["isApproved"] is True
    assert client.delete(f"/v4/projects/{pid}/tags/{tags['cv']['id']}", headers=h(bob_key)).status_code == 200
    failure(client.delete(f"/v4/projects/{pid}/tags/{tags['cv']['id']}", headers=h(bob_key)), 404)
    assert [t["name"] for t in client.get(f"/v4/projects/{pid}", headers=h(bob_key)).json()["tags"]] == ["new", "prod"]
    assert client.get(f"/projectTags/{tags['cv']['id']}", headers=h(bob_key)).status_code == 200  # still in use
    for bad in (
        {},
        {"tagNames": "x"},
        {"tagNames": [1]},
        {"tagNames": [" pad"]},
        {"tagNames": []},
        {"tagNames": ["x" * 101]},
    ):
        failure(client.post(f"/v4/projects/{pid}/tags", json=bad, headers=h(bob_key)), 400)
    failure(
        client.post(f"/v4/projects/{pid}/tags", json={"tagNames": [f"t{i}" for i in range(101)]}, headers=h(bob_key)),
        400,
    )
    for bad in (
        {"visibility": "Public"},
        {"name": "b/c"},
        {"name": "y", "collaborators": "x"},
        {"name": "y", "collaborators": [{"collaboratorId": bob.user_id, "projectRole": "King"}]},
        {"name": "y", "tags": ["a"]},
        {"name": "y", "visibility": "Open"},
    ):
        failure(client.post("/v4/projects", json=bad, headers=h(bob_key)), 400)
    assert client.get("/v4/gateway/projects?relationship=Owned", headers=h(bob_key)).json()[0]["name"] == "tagged"

    # a summary says what the v4 project says (the listing's read model: times computed by the database, to the
    # millisecond; tags by name; a blocked status with its reason), on SQLite and PostgreSQL alike
    blocked = {"status": "active", "isBlocked": True, "blockedReason": "waiting for data"}
    assert client.put(f"{V1}/{pid}/status", json=blocked, headers=h(bob_key)).status_code == 200
    v4 = client.get(f"/v4/projects/{pid}", headers=h(bob_key)).json()
    assert v4["updated"] > v4["created"] and v4["updated"] % 1000  # (a whole second would hide a lost fraction)
    assert client.get("/v4/gateway/projects?relationship=Owned", headers=h(bob_key)).json() == [
        {
            "id": pid,
            "name": "tagged",
            "ownerId": bob.user_id,
            "ownerName": bob.username,
            "description": "x",
            "visibility": "Public",
            "tags": v4["tags"],
            "relationship": "Owned",
            "status": {"status": "active", "isBlocked": True, "blockedReason": "waiting for data"},
            "isArchived": False,
            "created": v4["created"],
            "lastUpdated": v4["updated"],
        }
    ]

    # the gateway by relationship; completed projects only with showCompleted
    carol, carol_key = new_user(services, admin)
    services.projects.set_collaborator(admin, other["id"], carol.user_id, "Contributor")

    def names(key, rel, completed="false"):
        resp = client.get(
            "/v4/gateway/projects", params={"relationship": rel, "showCompleted": completed}, headers=h(key)
        )
        assert resp.status_code == 200, resp.text
        return [p["name"] for p in resp.json()]

    assert names(carol_key, "Owned") == [] and names(carol_key, "Collaborating") == ["other"]
    assert names(carol_key, "Suggesting") == ["tagged"] == names(carol_key, "Popular")
    summary = client.get("/v4/gateway/projects?relationship=Collaborating", headers=h(carol_key)).json()[0]
    assert summary["relationship"] == "Collaborating" and summary["ownerName"] == "admin"
    client.put(f"{V1}/{pid}/status", json={"status": "complete", "isBlocked": False}, headers=h(bob_key))
    assert names(bob_key, "Owned") == [] and names(bob_key, "Owned", "true") == ["tagged"]
    failure(client.get("/v4/gateway/projects?relationship=Mine", headers=h(bob_key)), 400)
    failure(client.get("/v4/gateway/projects?showCompleted=maybe", headers=h(bob_key)), 400)

    # findProjectByOwnerAndName (the client's project_id)
    found = client.get(
        "/v4/gateway/projects/findProjectByOwnerAndName",
        params={"ownerName": bob.username, "projectName": "tagged"},
        headers=h(carol_key),
    )
    assert found.json()["id"] == pid and found.json()["owner"] == {"id": bob.user_id, "userName": bob.username}
    assert found.json()["requestingUserRole"] == "Anonymous"
    for params in (
        {"ownerName": bob.username, "projectName": "nope"},
        {"ownerName": "nobody", "projectName": "tagged"},
        {"ownerName": bob.username, "projectName": "a\x00b"},
    ):
        failure(client.get("/v4/gateway/projects/findProjectByOwnerAndName", params=params, headers=h(bob_key)), 404)
    failure(client.get("/v4/gateway/projects/findProjectByOwnerAndName?ownerName=x", headers=h(bob_key)), 400)

    # archive through v4 (the client's project_archive)
    gone = client.delete(f"/v4/projects/{pid}", headers=h(bob_key))
    assert gone.status_code == 200 and gone.json()["isArchived"] is True
    assert names(bob_key, "Owned", "true") == []


def test_team_owned_project(client, services, admin, admin_h):
    lead, lead_key = new_user(services, admin)
    member, member_key = new_user(services, admin)
    _, outsider_key = new_user(services, admin)
    team = services.teams.create(
        services.identity.principal_by_ids(lead.user_id, admin.org_id),
        "vision-team",
        [(member.user_id, TeamRole.MEMBER)],
    )
    resp = client.post(
        BETA,
        json={"name": "team-proj", "description": "", "visibility": "Private", "ownerId": team.id},
        headers=h(lead_key),
    )
    assert resp.status_code == 200, resp.text
    p = resp.json()["project"]
    assert p["ownerId"] == team.id and p["ownerUsername"] == "vision-team"
    failure(
        client.post(
            BETA,
            json={"name": "t2", "description": "", "visibility": "Public", "ownerId": team.id},
            headers=h(member_key),
        ),
        403,
    )  # team members are no team admins
    # members of the team read and write it; others do not see it
    assert (
        client.post(f"/v4/projects/{p['id']}/tags", json={"tagNames": ["x"]}, headers=h(member_key)).status_code == 200
    )
    failure(client.get(f"{V1}/{p['id']}", headers=h(outsider_key)), 404)
    [owned] = client.get("/v4/gateway/projects", headers=h(lead_key)).json()
    assert (owned["name"], owned["ownerId"], owned["ownerName"]) == ("team-proj", team.id, "vision-team")
    assert [t["name"] for t in owned["tags"]] == ["x"]
    assert [
        x["name"] for x in client.get("/v4/gateway/projects?relationship=Collaborating", headers=h(member_key)).json()
    ] == ["team-proj"]
    found = client.get(
        "/v4/gateway/projects/findProjectByOwnerAndName",
        params={"ownerName": "vision-team", "projectName": "team-proj"},
        headers=h(member_key),
    )
    assert found.status_code == 200 and found.json()["id"] == p["id"]
    failure(client.delete(f"{BETA}/{p['id']}", headers=h(member_key)), 403)
    assert client.delete(f"{BETA}/{p['id']}", headers=h(lead_key)).status_code == 200


def test_legacy_form_create(client, services, admin, admin_h):
    bob, bob_key = new_user(services, admin)
    form = {**h(bob_key), "Csrf-Token": "nocheck"}
    made = client.post("/project", data={"projectName": "legacy"}, headers=form)
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "legacy" and made.json()["ownerUsername"] == bob.username
    failure(client.post("/project", data={"projectName": "legacy"}, headers=form), 400)
    failure(client.post("/project", data={}, headers=form), 400)
    failure(client.post("/project", data={"projectName": "a/b"}, headers=form), 400)
    failure(client.post("/project", content=b"\xff\xfe", headers={**form, "content-type": URLENCODED}), 400)
    failure(client.post("/project", json={"projectName": "j"}, headers=form), 400)  # a form, not JSON
    failure(client.post("/project", data={"projectName": "x", "ownerOverrideUsername": "admin"}, headers=form), 403)
    by_admin = client.post(
        "/project",
        data={"projectName": "forbob", "ownerOverrideUsername": bob.username},
        headers={**admin_h, "Csrf-Token": "nocheck"},
    )
    assert by_admin.status_code == 200 and by_admin.json()["ownerUsername"] == bob.username


def test_archive_is_inherited_by_every_writer_in_the_core(services, admin):
    """Writers that authorise through require_project_write (registry, serving, project files) refuse an archived
    project with PROJECT_ARCHIVED; reading it still works; un-archiving restores writes."""
    from modelharbor.domain.errors import Forbidden
    from modelharbor.domain.inputs import DeploymentIn

    p = services.projects.create_project(admin, "frozen")
    services.serving.create_deployment(admin, "frozen", DeploymentIn(name="before"))
    services.project_settings.archive(admin, p.id)
    for attempt in (
        lambda: services.registry.create_model(admin, "m-frozen", project_id=p.id),
        lambda: services.serving.create_deployment(admin, "frozen", DeploymentIn(name="after")),
        lambda: services.projects.set_stages(admin, p.id, ["None", "Prod"]),
        lambda: services.project_settings.set_results_settings(admin, p.id, "isolated"),
    ):
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.code == "PROJECT_ARCHIVED" and "archived" in refused.value.message
    assert [d.name for d in services.serving.list_deployments(admin, "frozen")] == ["before"]
    assert services.projects.get_project(admin, p.id).archived
    services.project_settings.update(admin, p.id, archived=False)
    assert services.registry.create_model(admin, "m-frozen", project_id=p.id).name == "m-frozen"
