"""``modelharbor keys``, ``users`` and ``projects`` through a real server's native API (no database file): full ids
in the tables, ``--json`` parsed back, keys revoked by a prefix, deletes that ask first."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0, input: str | None = None):
        result = runner.invoke(app, list(args), env=env, input=input)
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return run


def test_keys(cli, harbor, tmp_path):
    made = cli("keys", "create", "laptop", "--expires-in-days", "30")
    key_id, secret = made.stdout.split("id: ")[1].split()[0], made.stdout.split("key: ")[1].split()[0]
    assert secret.startswith("mh_") and "never shown again" in made.stderr
    as_json = json.loads(cli("keys", "create", "ci", "--json").stdout)
    assert as_json["key"].startswith("mh_") and as_json["name"] == "ci"

    table = cli("keys", "list").stdout
    assert key_id in table and as_json["id"] in table and "laptop" in table and "key(s)" in table  # full ids
    assert secret not in table and as_json["key"] not in table
    listed = {k["id"]: k for k in json.loads(cli("keys", "list", "--json").stdout)}
    assert listed[key_id]["key"] is None and listed[key_id]["expires_at"] is not None
    assert {k["id"] for k in json.loads(cli("keys", "list", "--all", "--json").stdout)} >= set(listed)

    with Client(harbor.url, secret) as them:
        assert them.me().username == "admin"
    assert f"revoked {key_id} (laptop)" in cli("keys", "revoke", key_id[:6]).stdout  # a start of the id
    assert f"revoked {as_json['id']}" in cli("keys", "revoke", as_json["prefix"]).stdout  # the prefix shown
    states = {k["id"]: k["revoked_at"] for k in json.loads(cli("keys", "list", "--json").stdout)}
    assert states[key_id] and states[as_json["id"]]
    assert "revoked" in cli("keys", "list").stdout
    assert "not found" in cli("keys", "revoke", "ffffffffffff", code=1).stderr


def test_users(cli, harbor, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    made = cli("users", "create", name, "--role", "viewer")
    assert f"user: {name}" in made.stdout and "role: viewer" in made.stdout
    key = made.stdout.split("key: ")[1].split()[0]
    with Client(harbor.url, key) as them:
        assert (them.me().username, them.me().role) == (name, "viewer")
    listed = {u["username"]: u for u in json.loads(cli("users", "list", "--json").stdout)}
    assert listed[name]["role"] == "viewer" and listed[name]["has_password"] is False
    assert listed[name]["id"] in cli("users", "list").stdout
    assert json.loads(cli("users", "show", name, "--json").stdout)["id"] == listed[name]["id"]

    cli("users", "set-password", name, "--no-current", input="a long passphrase 1\n")
    assert json.loads(cli("users", "show", name, "--json").stdout)["has_password"] is True
    # their own password, with their own key: the current one is asked first
    own = CliRunner().invoke(
        app,
        ["users", "set-password", "--key", key],
        env=harbor.env(tmp_path / "own"),
        input="a long passphrase 1\nanother passphrase 2\n",
    )
    assert own.exit_code == 0 and f"password of {name} set" in own.stdout, (own.stdout, own.stderr)
    wrong = CliRunner().invoke(
        app, ["users", "set-password", "--key", key], env=harbor.env(tmp_path / "own"), input="nope\na third one 3\n"
    )
    assert wrong.exit_code == 1 and "error: that is not the current password" in wrong.stderr
    assert "--yes" in cli("users", "delete", name, code=2).stderr
    assert f"deleted user {name}" in cli("users", "delete", name, "--yes").stdout
    assert "not found" in cli("users", "show", name, code=1).stderr
    assert "unknown role" in cli("users", "create", "x", "--role", "king", code=1).stderr


def test_projects(cli, harbor):
    name = f"p-{uuid.uuid4().hex[:6]}"
    made = cli("projects", "create", name, "--description", "for the CLI")
    project_id = made.stdout.split("id: ")[1].split()[0]
    assert made.stdout.startswith(f"created project {name}")
    listed = cli("projects", "list").stdout
    assert name in listed and project_id in listed and "project(s)" in listed
    assert project_id in [p["id"] for p in json.loads(cli("projects", "list", "--json").stdout)]
    shown = cli("projects", "show", name).stdout
    assert f"id: {project_id}" in shown and "description: for the CLI" in shown and "deployments: none" in shown
    assert json.loads(cli("projects", "show", project_id, "--json").stdout)["name"] == name
    assert "already exists" in cli("projects", "create", name, code=1).stderr
    assert "invalid project name" in cli("projects", "create", "no spaces", code=1).stderr
    assert "`modelharbor projects create nowhere`" in cli("projects", "show", "nowhere", code=1).stderr
    assert "--yes" in cli("projects", "delete", name, code=2).stderr  # no terminal: no silent delete
    assert f"deleted project {name}" in cli("projects", "delete", name, "--yes").stdout
    assert "not found" in cli("projects", "show", name, code=1).stderr
