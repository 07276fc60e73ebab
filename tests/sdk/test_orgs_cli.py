"""``modelharbor orgs …`` and ``client.orgs`` against a real ``modelharbor serve`` process."""

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

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["orgs", *args], env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    return run


def test_sdk_organisations_and_moving_a_user(harbor):
    name, user = f"sdk-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    user_key = create_user(harbor.root, user)
    with Client(harbor.url, harbor.key, timeout=30) as admin, Client(harbor.url, user_key, timeout=30) as them:
        home = them.me().org_id
        org = admin.orgs.create(name)
        assert (org.name, org.members) == (name, 1)
        assert name in [o.name for o in admin.orgs.list()]
        assert admin.orgs.get(org.id) == org
        renamed = admin.orgs.rename(name, name + " two")
        assert renamed.model_dump() == org.model_dump() | {"name": name + " two"}

        moved = admin.orgs.move_user(user, name + " two", role="admin")
        assert (moved.username, moved.org_id, moved.role) == (user, org.id, "admin")
        assert [m.username for m in admin.orgs.members(org.id)] == sorted(["admin", user])
        me = them.me()  # the server forgot the key at once: the same key acts in the new organisation
        assert (me.org_id, me.role) == (org.id, "admin")

        with pytest.raises(HarborClientError) as refused:
            them.orgs.list()  # an organisation's admin is no superuser
        assert (refused.value.status, refused.value.code) == (403, "FORBIDDEN")
        with pytest.raises(HarborClientError) as taken:
            admin.orgs.create(name + " two")
        assert taken.value.status == 409
        admin.orgs.move_user(user, home)  # back: a member again
        assert (them.me().org_id, them.me().role) == (home, "member")


def test_cli_organisations(harbor, cli):
    name, user = f"cli-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    create_user(harbor.root, user)
    made = cli("create", name)
    assert made.startswith(f"created {name}  id: ") and "members: 1" in made
    org_id = made.split("id: ")[1].split()[0]
    listed = cli("list")
    assert name in listed and org_id in listed and "organisation(s)" in listed
    assert cli("rename", org_id, name + "-x").startswith(f"renamed {name}-x  id: {org_id}")
    assert cli("move", user, name + "-x", "--role", "viewer") == (
        f"moved {user} to {name}-x as viewer (their API keys act there now)\n"
    )
    members = cli("members", name + "-x")
    assert user in members and "viewer" in members and "2 member(s)" in members
    as_json = json.loads(cli("members", name + "-x", "--json"))
    assert {m["username"]: m["role"] for m in as_json}[user] == "viewer"
    assert org_id in [o["id"] for o in json.loads(cli("list", "--json"))]
    failed = cli("create", name + "-x", code=1)
    assert failed.startswith("error:") and "already exists" in failed and "Traceback" not in failed
    assert "not found" in cli("move", "nobody-at-all", name + "-x", code=1)
    assert "default" in cli("rename", "default", "anything", code=1)
