"""Copying a Domino project over HTTP (op 120 copy-project, the client's v4 fork): files shared, not duplicated;
options; permissions; foreign 404s; bad bodies; a failed copy leaves nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.db.tables_registry import RegistryProjectRow
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import stranger

API = "/api/projects/v1/projects"


@pytest.fixture
def source(client, services, admin):
    """A member's project with two commits, a goal, an imported repository and a collaborator."""
    principal, key = new_user(services, admin)
    project = services.projects.create_project(principal, f"src-{uuid.uuid4().hex[:6]}", description="the source")
    base = f"/v1/projects/{principal.username}/{project.name}"
    assert client.put(f"{base}/README.md", content=b"# hi", headers=h(key)).status_code == 201
    assert client.put(f"{base}/src/deep/train.py", content=b"print(1)" * 1000, headers=h(key)).status_code == 201
    services.project_goals.add(principal, project.id, "goal one")
    services.project_repos.add(principal, project.id, "https://github.com/acme/lib.git")
    helper, _ = new_user(services, admin)
    services.projects.set_collaborator(principal, project.id, helper.user_id, "Contributor")
    return principal, key, project, helper


def _counts(services):
    with services.db.uow(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(BlobRow)), s.scalar(select(func.count()).select_from(FileRow))


def test_copy_project_shares_blobs(client, services, admin, source):
    principal, key, project, helper = source
    copier, copier_key = new_user(services, admin)
    blobs_before, files_before = _counts(services)
    r = client.post(
        f"{API}/{project.id}/copy-project",
        json={"name": "the-copy", "copyDatasets": True, "copyGoals": True, "copyCollaborators": True},
        headers=h(copier_key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    new = body["project"]
    assert new["name"] == "the-copy" and new["ownerId"] == copier.user_id and new["ownerUsername"] == copier.username
    assert new["description"] == "the source" and new["collaborators"] == [
        {"id": helper.user_id, "role": "contributor"}
    ]
    assert body["datasetsNotCopied"] == [] and body["netAppVolumesNotCopied"] == [] and body["metadata"]["requestId"]
    blobs_after, files_after = _counts(services)
    assert blobs_after == blobs_before and files_after == files_before + 2  # new records, no new bytes
    # one commit in the copy, pointing at the source's tree: same listing, same bytes, same blob keys
    copy_base = f"/v1/projects/{copier.username}/the-copy"
    commits = client.get(f"{copy_base}/commits", headers=h(copier_key)).json()
    assert len(commits) == 1
    src_list = client.get(f"/v1/projects/{principal.username}/{project.name}/files/head//src/deep", headers=h(key))
    cp_list = client.get(f"{copy_base}/files/{commits[0]}//src/deep", headers=h(copier_key))
    assert [(e["path"], e["key"], e["size"]) for e in cp_list.json()["data"]] == [
        (e["path"], e["key"], e["size"]) for e in src_list.json()["data"]
    ]
    got = client.get(f"{API}/{new['id']}/files/{commits[0]}/src/deep/train.py/content", headers=h(copier_key))
    assert got.status_code == 200 and got.content == b"print(1)" * 1000
    goals = client.get(f"{API}/{new['id']}/goals", headers=h(copier_key)).json()["goals"]
    assert [g["title"] for g in goals] == ["goal one"] and goals[0]["creatorId"] == copier.user_id
    repos = client.get(f"{API}/{new['id']}/repositories", headers=h(copier_key)).json()["repositories"]
    assert [x["uri"] for x in repos] == ["https://github.com/acme/lib.git"]
    # the copy lives on its own: a write to it leaves the source alone, deleting the source leaves its bytes
    assert client.put(f"{copy_base}/README.md", content=b"changed", headers=h(copier_key)).status_code == 201
    readme = client.get(f"{API}/{project.id}/files/head/README.md/content", headers=h(key))
    assert readme.content == b"# hi"
    services.projects.delete_project(principal, project.id)
    again = client.get(f"{API}/{new['id']}/files/{commits[0]}/src/deep/train.py/content", headers=h(copier_key))
    assert again.status_code == 200 and again.content == b"print(1)" * 1000


def test_copy_options_and_notices(client, services, admin, source):
    principal, key, project, _ = source
    r = client.post(
        f"{API}/{project.id}/copy-project",
        json={"name": "bare", "copyDatasets": False, "copyFiles": False, "copyImportedRepos": False,
              "visibility": "Private", "billingTag": {"tag": "x"}},
        headers=h(key),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    new = r.json()["project"]
    assert new["collaborators"] == []  # collaborators only when asked
    assert len(r.json()["metadata"]["notices"]) == 1  # the billing tag (visibility is applied)
    assert new["visibility"].lower() == "private"
    assert client.get(f"/v1/projects/{principal.username}/bare/commits", headers=h(key)).json() == []
    assert client.get(f"{API}/{new['id']}/repositories", headers=h(key)).json()["repositories"] == []
    assert client.get(f"{API}/{new['id']}/goals", headers=h(key)).json()["goals"] == []


def test_copy_errors_leave_nothing(client, services, admin, source):
    principal, key, project, _ = source
    url = f"{API}/{project.id}/copy-project"
    with services.db.uow(readonly=True) as s:
        before = s.scalar(select(func.count()).select_from(RegistryProjectRow))
    assert failure(client.post(url, json={"name": "x", "copyDatasets": False}), 401)
    _, skey = stranger(services, admin)
    assert failure(client.post(url, json={"name": "x", "copyDatasets": False}, headers=h(skey)), 404)
    assert failure(client.post(f"{API}/{'c' * 24}/copy-project", json={"name": "x"}, headers=h(key)), 404)
    assert "'name' is required" in failure(client.post(url, json={"copyDatasets": False}, headers=h(key)), 400)
    assert "name" in failure(client.post(url, json={"name": "a/b", "copyDatasets": False}, headers=h(key)), 400)
    assert "already exists" in failure(client.post(url, json={"name": project.name}, headers=h(key)), 400)
    assert "copyGoals" in failure(client.post(url, json={"name": "y", "copyGoals": "yes"}, headers=h(key)), 400)
    assert "visibility" in failure(client.post(url, json={"name": "y", "visibility": "secret"}, headers=h(key)), 400)
    assert "importedGitReposCredentialId" in failure(
        client.post(url, json={"name": "y", "importedGitReposCredentialId": "nope"}, headers=h(key)), 400
    )
    assert failure(client.post(url, json={"name": "y", "importedGitReposCredentialId": "a\x00"}, headers=h(key)), 400)
    other, _ = new_user(services, admin)
    assert failure(client.post(url, json={"name": "y", "ownerId": other.user_id}, headers=h(key)), 403)  # not an admin
    assert "not supported" in failure(
        client.post(url, json={"name": "y", "gitCodeRepoSpec": {"credentialId": "c"}}, headers=h(key)), 501
    )
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(RegistryProjectRow)) == before


def test_v4_fork(client, services, admin, source):
    principal, key, project, _ = source
    forker, forker_key = new_user(services, admin)
    r = client.post(f"/v4/projects/{project.id}/fork", json={"name": "forked"}, headers=h(forker_key))
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["name"] == "forked" and new["ownerId"] == forker.user_id and new["collaborators"] == []
    assert isinstance(new["created"], int) and len(new["id"]) == 24
    files = client.get(f"/v1/projects/{forker.username}/forked/files/head//", headers=h(forker_key)).json()["data"]
    assert [e["path"] for e in files] == ["README.md", "src"]
    assert len(client.get(f"{API}/{new['id']}/repositories", headers=h(forker_key)).json()["repositories"]) == 1
    assert failure(client.post(f"/v4/projects/{project.id}/fork", json={}, headers=h(forker_key)), 400)
    assert failure(client.post(f"/v4/projects/{project.id}/fork", json={"name": "forked"}, headers=h(forker_key)), 400)
    _, skey = stranger(services, admin)
    assert failure(client.post(f"/v4/projects/{project.id}/fork", json={"name": "z"}, headers=h(skey)), 404)
    assert failure(client.post(f"/v4/projects/{project.id}/fork", json={"name": "z"}), 401)


def test_copy_keeps_only_the_callers_own_git_credential(client, services, admin, source):
    principal, key, project, _ = source
    cred = services.git_credentials.add(principal, principal.user_id, name="mine", domain="github.com", token="t")
    services.project_repos.add(principal, project.id, "https://github.com/acme/private.git", credential_id=cred.id)
    own = client.post(f"/v4/projects/{project.id}/fork", json={"name": "own-fork"}, headers=h(key)).json()
    repos = {x["name"]: x for x in client.get(f"{API}/{own['id']}/repositories", headers=h(key)).json()["repositories"]}
    assert repos["private"]["gitCredentialId"] == cred.id
    other, other_key = new_user(services, admin)
    theirs = client.post(f"/v4/projects/{project.id}/fork", json={"name": "their-fork"}, headers=h(other_key)).json()
    got = client.get(f"{API}/{theirs['id']}/repositories", headers=h(other_key)).json()["repositories"]
    assert {x["name"]: x["gitCredentialId"] for x in got} == {"lib": None, "private": None}
