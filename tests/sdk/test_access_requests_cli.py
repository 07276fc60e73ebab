"""``modelharbor access-requests …`` and ``client.access_requests`` against a real ``modelharbor serve`` process."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client, HarborClientError
from tests.servers import create_user


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0, key: str | None = None):
        result = runner.invoke(app, ["access-requests", *args], env=env | ({"MODELHARBOR_API_KEY": key} if key else {}))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    return run


def test_sdk_ask_list_approve_decline(client, harbor):
    project = client.projects.create(f"ar-{uuid.uuid4().hex[:8]}")
    asker = f"u-{uuid.uuid4().hex[:8]}"
    asker_key = create_user(harbor.root, asker)
    with Client(harbor.url, asker_key, timeout=30) as member:
        made = member.access_requests.ask(project.name, message="let me in")
        assert (made.status, made.role, made.username, made.message) == ("Pending", "Contributor", asker, "let me in")
        assert [a.id for a in member.access_requests.list()] == [made.id]  # one's own
        with pytest.raises(HarborClientError) as caught:
            member.access_requests.list(project.name)  # not the owner
        assert caught.value.status == 403
    assert [a.id for a in client.access_requests.list(project.name)] == [made.id]
    done = client.access_requests.approve(project.name, made.id, role="ResultsConsumer")
    assert done.status == "Approved" and done.role == "ResultsConsumer"
    roles = {c.username: c.role for c in client.projects.get(project.id).collaborators}
    assert roles == {asker: "ResultsConsumer"}
    with pytest.raises(HarborClientError) as caught:
        client.access_requests.decline(project.name, made.id)
    assert caught.value.status == 400
    assert client.access_requests.list(project.name) == []
    assert [a.status for a in client.access_requests.list(project.name, status="all")] == ["Approved"]


def test_cli_access_requests(cli, client, harbor):
    project = client.projects.create(f"arc-{uuid.uuid4().hex[:8]}")
    asker = f"u-{uuid.uuid4().hex[:8]}"
    asker_key = create_user(harbor.root, asker)
    out = cli("ask", project.name, "--role", "launcheruser", key=asker_key)
    assert f"pending: {asker} as LauncherUser on {project.name}" in out
    listed = cli("list", "--project", project.name)
    assert asker in listed and "LauncherUser" in listed and "1 request(s)" in listed
    rid = json.loads(cli("list", "--project", project.name, "--json"))[0]["id"]
    assert f"declined: {asker}" in cli("decline", project.name, rid)
    assert "0 request(s)" in cli("list", "--project", project.name)
    cli("ask", project.name, key=asker_key)
    rid = next(a["id"] for a in json.loads(cli("list", "--json")) if a["project_id"] == project.id)
    assert f"approved: {asker} as Contributor" in cli("approve", project.name, rid)
    assert "role" in cli("ask", project.name, "--role", "emperor", key=asker_key, code=1)
