"""Core rules of the project satellites: which git URLs an imported repository may have, and what a copy writes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from modelharbor.core.project_copy import CopyOptions
from modelharbor.core.project_repos import check_git_uri, default_name, provider_of
from modelharbor.db.tables import BlobRow
from modelharbor.db.tables_project_files import ProjectFileTreeRow
from modelharbor.domain.errors import InvalidInput


@pytest.mark.parametrize(
    "uri,host",
    [
        ("https://github.com/a/b.git", "github.com"),
        ("https://GitLab.example.org:8443/group/sub/proj", "gitlab.example.org"),
        ("ssh://git@host.example:2222/x/y.git", "host.example"),
        ("ssh://[2001:db8::1]/r.git", "2001:db8::1"),
        ("git@github.com:acme/lib.git", "github.com"),
        ("deploy_bot@10.0.0.5:/srv/git/r.git", "10.0.0.5"),
    ],
)
def test_accepted_git_uris(uri, host):
    assert check_git_uri(uri) == (uri, host)


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "http://github.com/a/b",
        "git://github.com/a/b",
        "file:///srv/r.git",
        "ext::ssh",
        "/srv/r.git",
        "../r.git",
        "r.git",
        "-oProxyCommand=touch%20x",
        "git@host:-oProxyCommand=x",
        "https://github.com/",
        "https://:443/a/b",
        "https://h.example:99999/a",
        "https://u:p@h.example/a",
        "https://h.example/a\nb",
        "https://h.example/a b",
        "https://h_bad.example/a",
        "ssh://host.example",
        "https://" + "a" * 2100 + ".com/x",
    ],
)
def test_refused_git_uris(uri):
    with pytest.raises(InvalidInput) as caught:
        check_git_uri(uri)
    assert caught.value.details.get("field") == "uri" and "'uri'" in caught.value.message


def test_names_and_providers():
    assert default_name("https://github.com/a/churn.git") == "churn"
    assert default_name("git@h:team/lib") == "lib"
    assert provider_of(None, "gitlab.com") == "GitLab" and provider_of("", "example.org") == "Unknown"
    assert provider_of("GITHUBENTERPRISE", "x") == "GithubEnterprise"
    with pytest.raises(InvalidInput):
        provider_of("svn", "x")


async def _chunks(data: bytes):
    yield data


def test_a_copy_writes_directory_rows_not_bytes(services, admin):
    """A copy of a project of 30 files in 3 directories: one tree row per directory node, no new blob."""
    p = services.projects.create_project(admin, f"big-{uuid.uuid4().hex[:6]}")
    for d in range(3):
        for f in range(10):
            asyncio.run(services.project_files.write(admin, p.id, f"d{d}/f{f}.txt", _chunks(f"{d}-{f}".encode())))
    with services.db.uow(readonly=True) as s:
        blobs = s.scalar(select(func.count()).select_from(BlobRow))
    copied = services.project_copy.copy(admin, p.id, f"copy-{uuid.uuid4().hex[:6]}", options=CopyOptions())
    assert copied.files == 30 and copied.commit_id
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(BlobRow)) == blobs
        rows = s.scalar(
            select(func.count())
            .select_from(ProjectFileTreeRow)
            .where(ProjectFileTreeRow.project_id == copied.project.id)
        )
    assert rows == 4  # the root and its three directories (the source keeps every older node besides)
    listing = services.project_files.list(admin, copied.project.id, None, "d2")
    assert [e.name for e in listing.entries] == [f"f{f}.txt" for f in range(10)]


def test_team_admins_see_requests_on_their_teams_projects(services, admin):
    """A team-owned project's access requests reach the team's admins (list_mine), not its plain members."""
    from modelharbor.core.teams import TeamRole
    from tests.api.dialects.domino.test_registered_models import new_user

    lead, _ = new_user(services, admin)
    member, _ = new_user(services, admin)
    asker, _ = new_user(services, admin)
    team = services.teams.create(
        admin, f"team-{uuid.uuid4().hex[:6]}", [(lead.user_id, TeamRole.ADMIN), (member.user_id, TeamRole.MEMBER)]
    )
    project = services.projects.create_project(admin, f"teamed-{uuid.uuid4().hex[:6]}", owner_id=team.id)
    asked = services.access_requests.request(asker, project.id, role="Contributor")
    assert [r.id for r in services.access_requests.list_mine(lead)] == [asked.id]
    assert services.access_requests.list_mine(member) == []
    decided = services.access_requests.decide(lead, project.id, asked.id, approve=True)
    assert decided.status == "Approved"


def test_the_owner_is_no_collaborator(services, admin):
    project = services.projects.create_project(admin, f"own-{uuid.uuid4().hex[:6]}")
    with pytest.raises(InvalidInput, match="owners are not collaborators"):
        services.projects.set_collaborator(admin, project.id, admin.user_id, "Contributor")
    assert services.projects.get_project(admin, project.id).collaborators == ()
