"""Domino's environments (ops 53-58), the client's v4 default and project environments and legacy
``GET /v1/environments`` over HTTP, on SQLite and PostgreSQL: envelopes, builds run by the task queue (no
requirements, or requirements that are already installed, so nothing is downloaded), visibility, restricted
revisions, archive, refused Dockerfile instructions, foreign 404s and bad bodies."""

from __future__ import annotations

import pytest

from modelharbor.core.teams import TeamRole
from modelharbor.domain.principal import Role
from modelharbor.tasks.runner import run_pending
from tests.api.dialects.domino.test_hardware_tiers import stranger_key
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.conftest import ADMIN_KEY

BETA = "/api/environments/beta/environments"
V1 = "/api/environments/v1/environments"


@pytest.fixture
def admin_h():
    return h(ADMIN_KEY)


def body(**over):
    """What the dominodatalab client's create_environment sends by default."""
    out = {
        "dockerfileInstructions": "",
        "environmentVariables": [],
        "image": "",
        "postRunScript": "",
        "postSetupScript": "",
        "preRunScript": "",
        "preSetupScript": "",
        "skipCache": False,
        "summary": "",
        "supportedClusters": [],
        "tags": [],
        "useVpn": False,
        "workspaceTools": [],
        "addBaseDependencies": True,
        "description": "",
        "isRestricted": False,
        "name": "env",
        "visibility": "Private",
    }
    out.update(over)
    return out


def test_default_list_create_build_revise_restrict_archive(client, services, admin_h):
    default = client.get("/v4/environments/defaultEnvironment", headers=admin_h)
    assert default.status_code == 200, default.text
    d = default.json()
    base = services.serving.system_environments()[-1]
    assert d["isDefault"] and d["visibility"] == "Global" and d["latestRevisionDetails"]["dockerImage"] == base
    assert d["latestRevisionDetails"]["status"] == "Succeeded" and isinstance(d["created"], int)
    assert client.get("/v4/environments/defaultEnvironment", headers=admin_h).json()["id"] == d["id"]  # made once

    instructions = '# packages\nRUN pip install --no-cache-dir "pip>=1" \\\n    setuptools\n'
    resp = client.post(
        BETA,
        json=body(
            name="science",
            visibility="GLOBAL",
            image=base,
            dockerfileInstructions=instructions,
            tags=["cpu"],
            summary="first",
            description="for tests",
        ),
        headers=admin_h,
    )
    assert resp.status_code == 200, resp.text
    env = resp.json()["environment"]
    assert resp.json()["metadata"]["requestId"]
    assert env["visibility"] == "global" and env["archived"] is False and env["name"] == "science"
    assert env["owner"]["ownerType"] == "individual" and env["owner"]["username"] == "admin"
    rev1 = env["latestRevision"]
    assert rev1["number"] == 1 and rev1["status"] == "queued" and rev1["requirements"] == ["pip>=1", "setuptools"]
    assert rev1["dockerfileInstructions"] == instructions and rev1["image"] == base and rev1["tags"] == ["cpu"]
    assert env["restrictedRevision"] is None

    # built by the task queue (both requirements are installed already: nothing is downloaded)
    assert run_pending(services) >= 1
    got = client.get(f"{V1}/{env['id']}", headers=admin_h)
    assert got.status_code == 200, got.text
    built = got.json()["environment"]
    assert built["latestRevision"]["status"] == "succeeded", built
    assert built["selectedRevision"]["id"] == rev1["id"] and built["latestRevision"]["created"].endswith("Z")
    log = services.serving.environment_catalog.build_log(
        services.identity.authenticate_key(ADMIN_KEY), env["id"], rev1["id"]
    )
    assert "requirements: pip>=1, setuptools" in log and "is ready" in log

    # a second revision: any image string is kept, the newest base builds it
    resp = client.post(
        f"{BETA}/{env['id']}/revisions",
        json={"image": "quay.io/domino/standard:latest", "dockerfileInstructions": "", "summary": "second"},
        headers=admin_h,
    )
    assert resp.status_code == 200, resp.text
    rev2 = resp.json()["environmentRevision"]
    assert rev2["number"] == 2 and rev2["status"] == "queued" and rev2["image"] == "quay.io/domino/standard:latest"
    assert rev2["baseEnvironment"] == base and rev2["requirements"] == []
    run_pending(services)
    env2 = client.get(f"{V1}/{env['id']}", headers=admin_h).json()["environment"]
    assert env2["latestRevision"]["id"] == rev2["id"] and env2["latestRevision"]["status"] == "succeeded"

    # restricted revision (admins): one per environment
    resp = client.patch(f"{BETA}/{env['id']}/revisions/{rev1['id']}", json={"isRestricted": True}, headers=admin_h)
    assert resp.status_code == 200 and resp.json() == {"id": rev1["id"]}
    env3 = client.get(f"{V1}/{env['id']}", headers=admin_h).json()["environment"]
    assert env3["restrictedRevision"]["id"] == rev1["id"] and env3["restrictedRevision"]["isRestricted"]
    client.patch(f"{BETA}/{env['id']}/revisions/{rev1['id']}", json={"isRestricted": False}, headers=admin_h)
    assert client.get(f"{V1}/{env['id']}", headers=admin_h).json()["environment"]["restrictedRevision"] is None

    # listings: public (paged), legacy and v4
    listed = client.get(BETA, params={"limit": 1}, headers=admin_h).json()
    assert listed["metadata"]["totalCount"] == 2 and [e["id"] for e in listed["environments"]] == [d["id"]]
    page2 = client.get(BETA, params={"offset": 1, "limit": 5}, headers=admin_h).json()
    assert [e["id"] for e in page2["environments"]] == [env["id"]]
    legacy = client.get("/v1/environments", headers=admin_h)
    assert legacy.status_code == 200, legacy.text
    assert {(e["id"], e["visibility"]) for e in legacy.json()["data"]} == {(d["id"], "Global"), (env["id"], "Global")}

    # archive: soft, returns the archived environment, hidden from listings, readable by id, no new revisions
    resp = client.delete(f"{V1}/{env['id']}", headers=admin_h)
    assert resp.status_code == 200 and resp.json()["environment"]["archived"] is True
    assert [e["id"] for e in client.get(BETA, headers=admin_h).json()["environments"]] == [d["id"]]
    assert client.get(f"{V1}/{env['id']}", headers=admin_h).json()["environment"]["archived"] is True
    assert "archived" in failure(client.post(f"{BETA}/{env['id']}/revisions", json={}, headers=admin_h), 400)
    assert "default" in failure(client.delete(f"{V1}/{d['id']}", headers=admin_h), 400)


def test_visibility_and_permissions(client, services, admin, admin_h):
    alice, alice_key = new_user(services, admin)
    bob, bob_key = new_user(services, admin)
    ah, bh = h(alice_key), h(bob_key)
    # members do not create global environments, nor mark revisions restricted
    assert "admin" in failure(client.post(BETA, json=body(visibility="global"), headers=ah), 403)
    assert "admin" in failure(client.post(BETA, json=body(isRestricted=True), headers=ah), 403)
    mine = client.post(BETA, json=body(name="mine", visibility="private"), headers=ah).json()["environment"]
    assert mine["visibility"] == "private"
    # bob does not see alice's private environment
    assert failure(client.get(f"{V1}/{mine['id']}", headers=bh), 404)
    assert mine["id"] not in [e["id"] for e in client.get(BETA, headers=bh).json()["environments"]]
    assert failure(client.post(f"{BETA}/{mine['id']}/revisions", json={}, headers=bh), 404)
    # the organisation's admin sees it
    assert client.get(f"{V1}/{mine['id']}", headers=admin_h).status_code == 200

    # an organization (team) environment: its members see it, its admins change it
    team = services.teams.create(alice, "science", [(bob.user_id, TeamRole.MEMBER)])
    org_env = client.post(
        BETA, json=body(name="team-env", visibility="organization", orgOwnerId=team.id), headers=ah
    ).json()["environment"]
    assert org_env["visibility"] == "organization" and org_env["owner"] == {
        "id": team.id,
        "ownerType": "organization",
        "username": "science",
    }
    assert client.get(f"{V1}/{org_env['id']}", headers=bh).status_code == 200
    assert "may not change" in failure(client.post(f"{BETA}/{org_env['id']}/revisions", json={}, headers=bh), 403)
    assert failure(client.delete(f"{V1}/{org_env['id']}", headers=bh), 403)
    assert client.post(f"{BETA}/{org_env['id']}/revisions", json={}, headers=ah).status_code == 200
    carol, carol_key = new_user(services, admin)
    assert failure(client.get(f"{V1}/{org_env['id']}", headers=h(carol_key)), 404)
    # a team one is not a member of cannot own one's environment; an unknown team is missing
    assert failure(client.post(BETA, json=body(orgOwnerId=team.id), headers=h(carol_key)), 403)
    for unknown in ("f" * 32, "a\x00b", "x" * 300):
        assert failure(client.post(BETA, json=body(orgOwnerId=unknown), headers=ah), 404)
    # restricting takes an admin
    rev = org_env["latestRevision"]["id"]
    assert failure(
        client.patch(f"{BETA}/{org_env['id']}/revisions/{rev}", json={"isRestricted": True}, headers=ah), 403
    )
    # viewers (no serving.write) create nothing
    viewer, viewer_key = new_user(services, admin, role=Role.VIEWER)
    assert failure(client.post(BETA, json=body(), headers=h(viewer_key)), 403)
    assert client.get(BETA, headers=h(viewer_key)).status_code == 200


def test_project_environments_and_foreign(client, services, admin, admin_h):
    project = services.projects.create_project(admin, "envs-project")
    resp = client.get(f"/v4/projects/{project.id}/useableEnvironments", headers=admin_h)
    assert resp.status_code == 200, resp.text
    ids = [e["id"] for e in resp.json()["environments"]]
    default = client.get("/v4/environments/defaultEnvironment", headers=admin_h).json()
    assert ids == [default["id"]]
    # another organisation: neither the project nor the environments
    other = h(stranger_key(services, admin))
    assert failure(client.get(f"/v4/projects/{project.id}/useableEnvironments", headers=other), 404)
    assert failure(client.get(f"{V1}/{default['id']}", headers=other), 404)
    assert failure(client.delete(f"{V1}/{default['id']}", headers=other), 404)
    theirs = client.get(BETA, headers=other).json()["environments"]
    assert [e["isDefault"] for e in theirs] == [True] and theirs[0]["id"] != default["id"]
    for bad in ("nope", "0" * 36, "%00", "x" * 300):
        assert failure(client.get(f"{V1}/{bad}", headers=admin_h), 404)
    assert failure(client.get("/v4/projects/nope/useableEnvironments", headers=admin_h), 404)
    rev = default["latestRevisionDetails"]["id"]
    assert failure(
        client.patch(f"{BETA}/{default['id']}/revisions/{'1' * 36}", json={"isRestricted": True}, headers=admin_h), 404
    )
    assert (
        client.patch(
            f"{BETA}/{default['id']}/revisions/{rev}", json={"isRestricted": True}, headers=admin_h
        ).status_code
        == 200
    )


def test_unauthenticated(client):
    for method, path in (
        ("GET", BETA),
        ("POST", BETA),
        ("POST", f"{BETA}/x/revisions"),
        ("PATCH", f"{BETA}/x/revisions/y"),
        ("GET", f"{V1}/x"),
        ("DELETE", f"{V1}/x"),
        ("GET", "/v4/environments/defaultEnvironment"),
        ("GET", "/v4/projects/x/useableEnvironments"),
        ("GET", "/v1/environments"),
    ):
        resp = client.request(method, path, json={})
        assert failure(resp, 401), (method, path)
    assert failure(client.get(BETA, headers=h("wrong")), 401)


@pytest.mark.parametrize(
    ("instructions", "named"),
    [
        ("FROM ubuntu:22.04", "FROM"),
        ("RUN apt-get update", "apt-get"),
        ("ENV A=1", "ENV"),
        ("COPY . /app", "COPY"),
        ("USER root", "USER"),
        ("RUN pip install -r requirements.txt", "-r"),
        ("RUN pip install numpy && rm -rf /tmp", "&&"),
        ("RUN pip install numpy>=1", "'>'"),
        ("RUN pip install https://example.com/x.whl", "https://example.com/x.whl"),
        ("RUN pip install --index-url http://x numpy", "--index-url"),
        ("RUN pip install", "names no package"),
        ('RUN pip install "unterminated', "quotation"),
    ],
)
def test_refused_instructions(client, admin_h, instructions, named):
    for path in (BETA, None):
        if path is None:  # the same on a new revision
            env = client.post(BETA, json=body(name="ok"), headers=admin_h).json()["environment"]
            path = f"{BETA}/{env['id']}/revisions"
        message = failure(client.post(path, json=body(dockerfileInstructions=instructions), headers=admin_h), 400)
        assert named in message and "line 1" in message, message
    names = [e["name"] for e in client.get(BETA, headers=admin_h).json()["environments"]]
    assert names.count("ok") == 1  # nothing stored by the refused creation
    assert "RUN pip install" in failure(
        client.post(BETA, json=body(dockerfileInstructions="WORKDIR /x"), headers=admin_h), 400
    )


def test_bad_bodies(client, admin_h):
    assert failure(client.post(BETA, content=b"{", headers={**admin_h, "content-type": "application/json"}), 400)
    assert failure(client.post(BETA, json=[1], headers=admin_h), 400)
    for over, word in (
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"visibility": "public"}, "visibility"),
        ({"visibility": None}, "visibility"),
        ({"dockerfileInstructions": 3}, "dockerfileInstructions"),
        ({"environmentVariables": [{"key": "A", "value": "1"}]}, "environmentVariables"),
        ({"preRunScript": "echo hi"}, "preRunScript"),
        ({"tags": "cpu"}, "tags"),
        ({"isRestricted": "yes"}, "isRestricted"),
        ({"requirements": [1]}, "requirements"),
        ({"requirements": ["git+https://x/y"]}, "requirement"),
        ({"duplicateFromEnvironmentId": "abc"}, "duplicateFromEnvironmentId"),
        ({"rebuildOnBaseChanges": "always"}, "rebuildOnBaseChanges"),
        ({"visibility": "organization"}, "organization"),
    ):
        assert word in failure(client.post(BETA, json=body(**over), headers=admin_h), 400), over
    default = client.get("/v4/environments/defaultEnvironment", headers=admin_h).json()
    rev = default["latestRevisionDetails"]["id"]
    for bad in ({}, {"isRestricted": "true"}, {"isRestricted": None}):
        assert failure(client.patch(f"{BETA}/{default['id']}/revisions/{rev}", json=bad, headers=admin_h), 400)
    assert "default" in failure(client.post(f"{BETA}/{default['id']}/revisions", json={}, headers=admin_h), 400)
    for q in ({"limit": 0}, {"offset": -1}, {"limit": "x"}):
        assert failure(client.get(BETA, params=q, headers=admin_h), 400)


def test_requirements_list_extension(client, services, admin_h):
    resp = client.post(
        BETA,
        json=body(name="listed", requirements=["setuptools"], dockerfileInstructions="RUN pip3 install pip"),
        headers=admin_h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["environment"]["latestRevision"]["requirements"] == ["pip", "setuptools"]


def test_exec_form_and_continuations(client, admin_h):
    instructions = (
        '# a comment\n\nRUN ["python3", "-m", "pip", "install", "pip"]\nRUN pip install -U \\\n  setuptools\n'
    )
    resp = client.post(BETA, json=body(name="exec", dockerfileInstructions=instructions), headers=admin_h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["environment"]["latestRevision"]["requirements"] == ["pip", "setuptools"]
    for bad, word in (('RUN ["apt-get", "install", "x"]', "apt-get"), ("RUN [1]", "JSON form"), ("RUN [", "JSON")):
        assert word in failure(client.post(BETA, json=body(dockerfileInstructions=bad), headers=admin_h), 400), bad
    message = failure(
        client.post(BETA, json=body(dockerfileInstructions="RUN pip install x\nCOPY a b"), headers=admin_h), 400
    )
    assert "line 2" in message and "COPY" in message
