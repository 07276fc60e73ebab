"""``modelharbor data-sources …`` and ``client.data_sources`` against a real ``modelharbor serve`` process: a
planted secret never comes back — not in answers, not in the server's log, not in clear in its database file."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client, HarborClientError
from tests.conftest import _PG_PROBLEM, PG_ADMIN_URL
from tests.servers import create_user

SECRET = "cl1-secret-" + uuid.uuid4().hex
PG = urlsplit(PG_ADMIN_URL)
PG_CONFIG = {"host": PG.hostname or "127.0.0.1", "port": str(PG.port or 5432), "database": "postgres"}


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0, stdin: str | None = None):
        result = runner.invoke(app, ["data-sources", *args], env=env, input=stdin)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    return run


def stored(harbor) -> bytes:
    return b"".join(p.read_bytes() for p in (harbor.root / "data").rglob("*.db*") if p.is_file())


@pytest.mark.skipif(bool(_PG_PROBLEM), reason=f"no PostgreSQL: {_PG_PROBLEM}")
def test_sdk_data_sources(client, harbor):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    made = client.data_sources.create(
        name, "PostgreSQLConfig", auth_type="Basic", config=PG_CONFIG,
        visible={"username": PG.username or "postgres"}, secret={"password": SECRET},
    )  # fmt: skip
    assert made.name == name and made.credential_type == "Shared" and SECRET not in made.model_dump_json()
    assert client.data_sources.get(made.id) == made
    assert [d.id for d in client.data_sources.list(names=[name])] == [made.id]
    assert client.data_sources.test(made.id).ok
    member_key = create_user(harbor.root, f"u-{uuid.uuid4().hex[:8]}")
    with Client(harbor.url, member_key, timeout=30) as member:
        assert made.id not in [d.id for d in member.data_sources.list()]
        client.data_sources.update(made.id, everyone=True)
        assert made.id in [d.id for d in member.data_sources.list()]
        with pytest.raises(HarborClientError) as caught:
            member.data_sources.delete(made.id)
        assert caught.value.status == 403
    changed = client.data_sources.update(made.id, config={"schema": "public"})
    assert changed.config["schema"] == "public" and changed.is_everyone
    kinds = [e.event_kind for e in client.data_sources.audit(ids=[made.id])]
    assert kinds == [
        "CreateDataSource",
        "AccessDataSource",
        "DataSourceChangeOfPermissions",
        "DataSourceChangeOfConfig",
    ]
    assert client.data_sources.delete(made.id).id == made.id
    assert SECRET.encode() not in stored(harbor) and name.encode() in stored(harbor)
    assert SECRET not in (harbor.root / "server.log").read_text(errors="replace")


@pytest.mark.skipif(bool(_PG_PROBLEM), reason=f"no PostgreSQL: {_PG_PROBLEM}")
def test_cli_data_sources(cli, harbor):
    name = f"c-{uuid.uuid4().hex[:8]}"
    config = [a for k, v in PG_CONFIG.items() for a in ("--config", f"{k}={v}")]
    out = cli("create", name, "--type", "postgresql", "--auth", "Basic", *config, "--visible",
              f"username={PG.username or 'postgres'}", "--secret", "password", stdin=SECRET + "\n")  # fmt: skip
    assert f"({name}): PostgreSQLConfig, Basic, Shared" in out and SECRET not in out
    ds_id = out.split("created data source ")[1].split()[0]
    assert name in cli("list") and SECRET not in cli("list")
    assert json.loads(cli("show", ds_id, "--json"))["config"]["database"] == "postgres"
    assert cli("test", ds_id).startswith("ok")
    bad = f"b-{uuid.uuid4().hex[:8]}"
    out = cli("create", bad, "--type", "PostgreSQLConfig", "--auth", "Basic", "--config", "host=127.0.0.1",
              "--config", "port=1", "--config", "database=d", "--visible", "username=u", "--secret", f"password={SECRET}")  # fmt: skip
    bad_id = out.split("created data source ")[1].split()[0]
    assert cli("test", bad_id, code=1).startswith("failed")
    assert "config.database" in cli("create", "x", "--type", "PostgreSQLConfig", "--auth", "Basic", "--config",
                                     "host=h", "--visible", "username=u", "--secret", "password=p", code=1)  # fmt: skip
    assert f"deleted data source {ds_id}" in cli("delete", ds_id, "--yes")
    cli("delete", bad_id, "--yes")
    assert SECRET not in (harbor.root / "server.log").read_text(errors="replace")
    assert SECRET.encode() not in stored(harbor)
