"""``client.project_files`` and ``modelharbor project-files upload|download|ls|log`` against a real server."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from modelharbor.sdk.errors import HarborClientError
from tests.sdk.test_files_cli import cli  # noqa: F401, F811 - the CLI runner fixture


@pytest.fixture
def project(client):
    return client.projects.create(f"pf-{uuid.uuid4().hex[:6]}").name


def test_sdk_upload_ls_log_download(client, project, tmp_path):
    src = tmp_path / "weights.bin"
    data = os.urandom(3 * 1024 * 1024 + 5)
    src.write_bytes(data)
    seen: list[tuple[int, int]] = []
    c1 = client.project_files.upload(project, src, "models/weights.bin", progress=lambda d, t: seen.append((d, t)))
    assert len(c1.id) == 40 and c1.path == "models/weights.bin"
    assert seen[-1] == (len(data), len(data))
    (tmp_path / "v2.bin").write_bytes(b"second")
    c2 = client.project_files.upload(project, tmp_path / "v2.bin", "models/weights.bin")
    assert [c.id for c in client.project_files.log(project)] == [c2.id, c1.id]
    listing = client.project_files.ls(project, "models")
    assert [(e.path, e.size) for e in listing.entries] == [("models/weights.bin", 6)]
    assert [e.name for e in client.project_files.ls(project).entries] == ["models"]
    old = client.project_files.download(project, "models/weights.bin", tmp_path / "old.bin", commit=c1.id)
    assert old.read_bytes() == data
    new = client.project_files.download(project, "models/weights.bin", tmp_path / "new.bin")
    assert new.read_bytes() == b"second"
    with pytest.raises(HarborClientError) as bad:
        client.project_files.upload(project, src, "../escape")
    assert bad.value.status == 400 and ".." in str(bad.value)


def test_cli_upload_ls_log_download(cli, project, tmp_path):  # noqa: F811
    src = tmp_path / "train.py"
    src.write_text("print('hello')\n")
    up = json.loads(cli("project-files", "upload", project, str(src), "--path", "src/train.py", "--json").stdout)
    assert up["path"] == "src/train.py"
    assert "src/" in cli("project-files", "ls", project).stdout
    listed = json.loads(cli("project-files", "ls", project, "src", "--json").stdout)
    assert [e["path"] for e in listed["entries"]] == ["src/train.py"]
    assert up["id"] in cli("project-files", "log", project).stdout
    out = tmp_path / "out"
    out.mkdir()
    got = cli("project-files", "download", project, "src/train.py", "-o", str(out)).stdout.strip()
    assert (out / "train.py").read_text() == "print('hello')\n" and got.endswith("train.py")
    assert "empty commit" in cli("project-files", "upload", project, str(src), "--path", "src/train.py", code=1).stderr
    assert "not found" in cli("project-files", "ls", "no-such-project", code=1).stderr
