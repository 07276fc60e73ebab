"""``modelharbor hardware-tiers …`` and ``client.hardware_tiers`` against a real ``modelharbor serve`` process."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app
from modelharbor.sdk import Client, HarborClientError
from tests.servers import create_user

GIB = 2**30


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0, key: str | None = None):
        result = runner.invoke(app, ["hardware-tiers", *args], env=env | ({"MODELHARBOR_API_KEY": key} if key else {}))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    return run


def test_sdk_hardware_tiers(client, harbor):
    tier = f"t-{uuid.uuid4().hex[:8]}"
    assert "small" in [t.id for t in client.hardware_tiers.list()]
    made = client.hardware_tiers.create(tier, "SDK", cores=0.5, memory=GIB, cents_per_minute=1.5)
    assert (made.id, made.cores, made.memory, made.is_default) == (tier, 0.5, GIB, False)
    assert client.hardware_tiers.get(tier) == made
    changed = client.hardware_tiers.update(tier, memory_limit=2 * GIB, is_visible=False)
    assert changed.memory_limit == 2 * GIB and not changed.is_visible and changed.cores == 0.5
    with pytest.raises(TypeError, match="colour"):
        client.hardware_tiers.update(tier, colour="red")
    with pytest.raises(HarborClientError) as caught:
        client.hardware_tiers.create(tier, "again", cores=1, memory=GIB)
    assert caught.value.status == 409
    assert client.hardware_tiers.archive(tier).is_archived
    assert tier not in [t.id for t in client.hardware_tiers.list()]
    assert tier in [t.id for t in client.hardware_tiers.list(include_archived=True)]
    member_key = create_user(harbor.root, f"u-{uuid.uuid4().hex[:8]}")
    with Client(harbor.url, member_key, timeout=30) as member:
        assert "small" in [t.id for t in member.hardware_tiers.list()]
        with pytest.raises(HarborClientError) as caught:
            member.hardware_tiers.create(f"{tier}-m", "no", cores=1, memory=GIB)
        assert caught.value.status == 403


def test_cli_hardware_tiers(cli, harbor):
    tier = f"c-{uuid.uuid4().hex[:8]}"
    out = cli("create", tier, "--name", "CLI", "--cores", "2", "--memory", "4GiB", "--memory-limit", "6GiB")
    assert f"created hardware tier {tier} (CLI): 2 cores, 6 GiB" in out
    listed = cli("list")
    assert tier in listed and "small" in listed and "default" in listed
    as_json = json.loads(cli("list", "--json"))
    (mine,) = [t for t in as_json if t["id"] == tier]
    assert (mine["memory"], mine["memory_limit"], mine["cores"]) == (4 * GIB, 6 * GIB, 2.0)
    updated = json.loads(cli("update", tier, "--cores-limit", "3", "--cents-per-minute", "4", "--json"))
    assert (updated["cores_limit"], updated["cents_per_minute"]) == (3.0, 4.0)
    assert "archived hardware tier" in cli("archive", tier)
    assert tier not in cli("list") and tier in cli("list", "--archived")
    assert "default" in cli("archive", "small", code=1)  # the default stays
    assert "not a size" in cli("create", "x", "--name", "x", "--cores", "1", "--memory", "lots", code=2)
    member_key = create_user(harbor.root, f"u-{uuid.uuid4().hex[:8]}")
    assert "admin" in cli("create", "y", "--name", "y", "--cores", "1", "--memory", "1GiB", code=1, key=member_key)
