"""A Domino project's goals (ops 121–124) and imported git repositories (ops 125–127) over HTTP, on SQLite and
PostgreSQL: envelopes, permissions, foreign 404s, bad bodies as 400 naming the field."""

from __future__ import annotations

import uuid

import pytest

from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import ssh_key, stranger

API = "/api/projects/v1/projects"


@pytest.fixture
def owner(services, admin):
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"goals-{uuid.uuid4().hex[:6]}")
    return principal, key, project


def test_goals_lifecycle(client, services, admin, owner):
    principal, key, project = owner
    url = f"{API}/{project.id}/goals"
    assert client.get(url, headers=h(key)).json()["goals"] == []
    r = client.post(
        url, json={"title": "Ship v1", "description": "by Friday", "assigneeId": principal.username}, headers=h(key)
    )
    assert r.status_code == 200, r.text
    goal = r.json()["goal"]
    assert goal["title"] == "Ship v1" and goal["description"] == "by Friday" and goal["isComplete"] is False
    assert goal["projectId"] == project.id and goal["creatorId"] == principal.user_id
    assert goal["assigneeId"] == principal.user_id and goal["createdAt"].endswith("Z") and len(goal["id"]) == 24
    second = client.post(url, json={"title": "Second"}, headers=h(key)).json()["goal"]
    assert [g["title"] for g in client.get(url, headers=h(key)).json()["goals"]] == ["Ship v1", "Second"]
    done = client.patch(f"{url}/{goal['id']}", json={"isComplete": True}, headers=h(key))
    assert done.status_code == 200 and done.json()["goal"]["isComplete"] is True
    gone = client.delete(f"{url}/{second['id']}", headers=h(key))
    assert gone.status_code == 200 and gone.json()["success"] is True
    listed = client.get(url, headers=h(key)).json()["goals"]
    assert [(g["id"], g["isComplete"]) for g in listed] == [(goal["id"], True)]
    # a Contributor writes goals too
    member, member_key = new_user(services, admin)
    services.projects.set_collaborator(principal, project.id, member.user_id, "contributor")
    assert client.post(url, json={"title": "Theirs"}, headers=h(member_key)).status_code == 200


def test_goal_errors(client, services, admin, owner):
    principal, key, project = owner
    url = f"{API}/{project.id}/goals"
    goal = client.post(url, json={"title": "g"}, headers=h(key)).json()["goal"]
    assert failure(client.get(url), 401)
    reader, reader_key = new_user(services, admin)
    assert client.get(url, headers=h(reader_key)).status_code == 200  # every member reads
    services.projects.set_collaborator(principal, project.id, reader.user_id, "ResultsConsumer")
    assert failure(client.post(url, json={"title": "x"}, headers=h(reader_key)), 403)
    assert failure(client.patch(f"{url}/{goal['id']}", json={"isComplete": True}, headers=h(reader_key)), 403)
    assert failure(client.delete(f"{url}/{goal['id']}", headers=h(reader_key)), 403)
    _, skey = stranger(services, admin)
    assert failure(client.get(url, headers=h(skey)), 404)
    assert failure(client.post(url, json={"title": "x"}, headers=h(skey)), 404)
    assert failure(client.patch(f"{url}/{'a' * 24}", json={"isComplete": True}, headers=h(key)), 404)
    assert failure(client.delete(f"{url}/nope", headers=h(key)), 404)
    assert failure(client.delete(f"{url}/%00{'a' * 23}", headers=h(key)), 404)  # a NUL finds nothing (no 500)
    assert "'title' is required" in failure(client.post(url, json={}, headers=h(key)), 400)
    assert "title" in failure(client.post(url, json={"title": "  "}, headers=h(key)), 400)
    assert "title" in failure(client.post(url, json={"title": "x" * 300}, headers=h(key)), 400)
    assert "assigneeId" in failure(client.post(url, json={"title": "x", "assigneeId": "ghost"}, headers=h(key)), 400)
    assert "isComplete" in failure(client.patch(f"{url}/{goal['id']}", json={"isComplete": "yes"}, headers=h(key)), 400)
    assert "isComplete" in failure(client.patch(f"{url}/{goal['id']}", json={}, headers=h(key)), 400)
    assert failure(client.post(url, content=b"[]", headers=h(key)), 400)
    assert [g["title"] for g in client.get(url, headers=h(key)).json()["goals"]] == ["g"]  # nothing else stored


def test_repositories_lifecycle(client, services, admin, owner):
    principal, key, project = owner
    cred = services.git_credentials.add(
        principal, principal.user_id, name="gh", domain="github.com", token="ghp_secret", private_key=None,
        passphrase=None, provider="github",
    )  # fmt: skip
    url = f"{API}/{project.id}/repositories"
    r = client.post(url, json={"uri": "https://github.com/acme/churn.git", "gitCredentialId": cred.id}, headers=h(key))
    assert r.status_code == 200, r.text
    repo = r.json()["repository"]
    assert repo["name"] == "churn" and repo["serviceProvider"] == "Github" and repo["defaultRef"] == {"refType": "Head"}
    assert repo["gitCredentialId"] == cred.id and "ghp_secret" not in r.text
    ssh = client.post(
        url,
        json={"uri": "git@gitlab.example.com:team/lib.git", "name": "lib", "serviceProvider": "gitlabenterprise",
              "defaultRef": {"refType": "branch", "value": "develop"}},
        headers=h(key),
    ).json()["repository"]  # fmt: skip
    assert ssh["serviceProvider"] == "GitLabEnterprise" and ssh["defaultRef"] == {
        "refType": "Branch",
        "value": "develop",
    }
    third = client.post(url, json={"uri": "ssh://git@host.example:2222/x/y"}, headers=h(key))
    assert third.status_code == 200 and third.json()["repository"]["name"] == "y"
    page = client.get(url, params={"limit": 2}, headers=h(key)).json()
    assert [x["name"] for x in page["repositories"]] == ["churn", "lib"]
    assert page["metadata"]["totalCount"] == 3 and page["metadata"]["limit"] == 2
    gone = client.delete(f"{url}/{ssh['id']}", headers=h(key))
    assert gone.status_code == 200 and gone.json()["success"] is True
    assert [x["name"] for x in client.get(url, headers=h(key)).json()["repositories"]] == ["churn", "y"]


@pytest.mark.parametrize(
    "uri",
    [
        "http://github.com/a/b.git",
        "git://github.com/a/b.git",
        "file:///etc/passwd",
        "/srv/repos/x.git",
        "ext::sh -c touch% /tmp/pwned",
        "ext::ssh",
        "-uhelp",
        "https://github.com",
        "https://user:pw@github.com/a/b.git",
        "https://git hub.com/a/b",
        "git@host:-oProxyCommand=x",
        "ftp://host/a",
    ],
)
def test_repository_uris_refused(client, owner, uri):
    _, key, project = owner
    url = f"{API}/{project.id}/repositories"
    msg = failure(client.post(url, json={"uri": uri}, headers=h(key)), 400)
    assert "'uri'" in msg
    assert client.get(url, headers=h(key)).json()["repositories"] == []


def test_repository_errors(client, services, admin, owner):
    principal, key, project = owner
    url = f"{API}/{project.id}/repositories"
    assert failure(client.get(url), 401)
    member, member_key = new_user(services, admin)
    services.projects.set_collaborator(principal, project.id, member.user_id, "Contributor")
    assert failure(client.post(url, json={"uri": "https://h.example/a/b"}, headers=h(member_key)), 403)
    _, skey = stranger(services, admin)
    assert failure(client.get(url, headers=h(skey)), 404)
    assert "'uri' is required" in failure(client.post(url, json={}, headers=h(key)), 400)
    assert "serviceProvider" in failure(
        client.post(url, json={"uri": "https://h.example/a/b", "serviceProvider": "svn"}, headers=h(key)), 400
    )
    assert "refType" in failure(
        client.post(url, json={"uri": "https://h.example/a/b", "defaultRef": {"refType": "wat"}}, headers=h(key)), 400
    )
    assert "value" in failure(
        client.post(url, json={"uri": "https://h.example/a/b", "defaultRef": {"refType": "Tag"}}, headers=h(key)), 400
    )
    # someone else's git credential cannot be named
    theirs = services.git_credentials.add(
        member, member.user_id, name="k", domain="h.example", token=None, private_key=ssh_key(), passphrase=None,
        provider=None,
    )  # fmt: skip
    assert "gitCredentialId" in failure(
        client.post(url, json={"uri": "https://h.example/a/b", "gitCredentialId": theirs.id}, headers=h(key)), 400
    )
    assert client.post(url, json={"uri": "https://h.example/a/b"}, headers=h(key)).status_code == 200
    assert "already" in failure(
        client.post(url, json={"uri": "https://h.example/a/b", "name": "c"}, headers=h(key)), 400
    )
    assert "already" in failure(client.post(url, json={"uri": "https://h.example/z/b"}, headers=h(key)), 400)
    assert failure(client.delete(f"{url}/{'b' * 24}", headers=h(key)), 404)
    assert failure(client.delete(f"{url}/%00{'b' * 23}", headers=h(key)), 404)
    nul = {"uri": "https://h.example/q/r", "gitCredentialId": "\x00" * 3}
    assert "gitCredentialId" in failure(client.post(url, json=nul, headers=h(key)), 400)
    assert failure(client.get(url, params={"limit": 0}, headers=h(key)), 400)
