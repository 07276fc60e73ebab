"""``modelharbor files show|list`` (full SHA-256, what uses a file, internal files only with ``--all``, ``--json``)
and ``modelharbor uploads list|show|abort`` against a real server."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest
from typer.testing import CliRunner

from modelharbor.cli import app

MiB = 1024 * 1024


@pytest.fixture
def cli(harbor, tmp_path):
    runner, env = CliRunner(), harbor.env(tmp_path / "state")

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return run


def test_files_show_list_and_json(cli, client, harbor, tmp_path):
    src = tmp_path / f"weights-{uuid.uuid4().hex[:6]}.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    up = json.loads(cli("upload", str(src), "--chunk-size", "100k", "--json").stdout)
    assert (up["sha256"], up["size"], up["name"]) == (sha, 300_000, src.name)

    shown = cli("files", "show", up["id"]).stdout
    assert f"sha256: {sha}" in shown and "size: 300000 (293.0 KiB)" in shown and f"id: {up['id']}" in shown
    assert "used by:" in shown
    detail = json.loads(cli("files", "show", up["id"], "--json").stdout)
    assert detail["sha256"] == sha and detail["id"] == up["id"]
    table = cli("files", "list", "--limit", "1000").stdout
    assert up["id"] in table and sha in table  # full id, full SHA-256
    assert up["id"] in [f["id"] for f in json.loads(cli("files", "list", "--limit", "1000", "--json").stdout)]

    assert "not found" in cli("files", "show", "0" * 24, code=1).stderr


def test_files_show_says_what_uses_a_file(cli, client, harbor, tmp_path):
    src = tmp_path / "used.bin"
    src.write_bytes(os.urandom(1000))
    name = f"used {uuid.uuid4().hex[:6]}"
    client.models.register(name, src, state_dir=tmp_path / "reg")
    (used,) = client.models.files(name, 1)
    detail = json.loads(cli("files", "show", used.file_id, "--json").stdout)
    assert [u["name"] for u in detail["used_by"]] and name in " ".join(u["name"] for u in detail["used_by"])
    shown = cli("files", "show", used.file_id).stdout
    assert "used by: " in shown and name in shown.split("used by:", 1)[1]


def test_internal_files_are_left_out_unless_all(cli, client, harbor, tmp_path):
    project = f"int-{uuid.uuid4().hex[:6]}"
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "deployment.py").write_text(
        "class Deployment:\n    def __init__(self, b, c): pass\n    def request(self, d): return d\n"
    )
    result = client.deployments.deploy(project, "echo", pkg, plain=True, wait=False)
    package_file = result.revision.file_id
    plain = [f["id"] for f in json.loads(cli("files", "list", "--limit", "1000", "--json").stdout)]
    everything = json.loads(cli("files", "list", "--limit", "1000", "--all", "--json").stdout)
    assert package_file not in plain
    assert package_file in [f["id"] for f in everything]
    assert next(f for f in everything if f["id"] == package_file)["internal"] is True
    assert "internal: yes" in cli("files", "show", package_file).stdout


def test_uploads_list_show_abort(cli, client, tmp_path):
    name = f"left-{uuid.uuid4().hex[:6]}.bin"
    sessions = [client.uploads.start(name, 3, size=3 * MiB) for _ in range(2)]
    listed = cli("uploads", "list", "--name", name).stdout
    assert all(s.id in listed for s in sessions) and "2 open upload(s)" in listed and "0/3" in listed
    as_json = json.loads(cli("uploads", "list", "--json").stdout)
    assert {s.id for s in sessions} <= {u["id"] for u in as_json}
    shown = cli("uploads", "show", sessions[0].id).stdout
    assert "state: open" in shown and "missing: 0, 1, 2" in shown and "chunk size: 1048576" in shown
    assert json.loads(cli("uploads", "show", sessions[0].id, "--json").stdout)["total_chunks"] == 3
    assert f"aborted {sessions[0].id}" in cli("uploads", "abort", sessions[0].id).stdout
    assert [u.id for u in client.uploads.list(name=name)] == [sessions[1].id]
    assert "ID / --all" in cli("uploads", "abort", code=2).stderr
    cli("uploads", "abort", "--all")
    assert client.uploads.list() == []
    assert "state: aborted" in cli("uploads", "show", sessions[0].id).stdout
