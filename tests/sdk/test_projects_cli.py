"""``client.projects`` (visibility, tags, archive) and ``modelharbor projects create|set|archive|unarchive`` against a
real server."""

from __future__ import annotations

import json
import uuid

import pytest

from modelharbor.sdk.errors import HarborClientError
from tests.sdk.test_files_cli import cli  # noqa: F401, F811 - the CLI runner fixture


def test_sdk_visibility_tags_archive(client, tmp_path):
    name = f"pv-{uuid.uuid4().hex[:6]}"
    p = client.projects.create(name, visibility="private", tags=["cv", "cv", "prod"], description="d")
    assert (p.visibility, p.tags, p.archived, p.status) == ("Private", ["cv", "prod"], False, "active")
    changed = client.projects.update(name, visibility="Searchable", description="new")
    assert (changed.visibility, changed.description) == ("Searchable", "new")
    assert client.projects.update(name, archived=True).archived is True
    (tmp_path / "a.txt").write_bytes(b"x")
    with pytest.raises(HarborClientError) as refused:
        client.project_files.upload(name, tmp_path / "a.txt", "a.txt")
    assert refused.value.status == 403 and "archived" in str(refused.value)
    with pytest.raises(HarborClientError) as bad:
        client.projects.update(name, visibility="Everyone")
    assert bad.value.status == 400
    assert client.projects.update(name, archived=False).archived is False
    assert client.project_files.upload(name, tmp_path / "a.txt", "a.txt").path == "a.txt"


def test_cli_create_set_archive(cli, client):  # noqa: F811
    name = f"pc-{uuid.uuid4().hex[:6]}"
    made = json.loads(cli("projects", "create", name, "--visibility", "Searchable", "--tag", "nlp", "--json").stdout)
    assert made["visibility"] == "Searchable" and made["tags"] == ["nlp"]
    shown = cli("projects", "show", name).stdout
    assert "visibility: Searchable" in shown and "tags: nlp" in shown
    assert "visibility: Private" in cli("projects", "set", name, "--visibility", "private").stdout
    assert "read-only" in cli("projects", "archive", name).stdout
    assert "(archived" in cli("projects", "show", name).stdout
    assert f"{name} (archived)" in cli("projects", "list").stdout
    cli("projects", "set", name, "--description", "x", code=1)  # archived: refused
    cli("projects", "unarchive", name)
    assert client.projects.get(name).archived is False
