"""``client.datasets`` and ``modelharbor datasets …`` against a real ``modelharbor serve`` process: datasets, grants,
snapshots and tags; listings; downloads byte-identical (one file, a nested directory tree, a snapshot by id and by
tag), skipping complete files and resuming a partial one with ``Range``."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from modelharbor.sdk import Client, HarborClientError
from tests.sdk.test_files_cli import cli  # noqa: F401, F811 - the CLI runner fixture
from tests.servers import create_user

MiB = 1024 * 1024


def put(harbor, dataset_id: str, path: str, data: bytes, key: str | None = None) -> None:
    """Write a file of the head (what the dataset upload will do) through the native route."""
    r = httpx.put(
        f"{harbor.url}/api/v1/datasets/{dataset_id}/files",
        params={"path": path},
        content=data,
        headers={"Authorization": f"Bearer {key or harbor.key}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def filled(client, harbor):
    """A dataset with a nested tree of files in its head: (dataset, {path: bytes})."""
    project = client.projects.create(f"ds-{uuid.uuid4().hex[:6]}")
    d = client.datasets.create(project.name, "training", description="images")
    files = {
        "top.bin": os.urandom(3 * MiB + 17),
        "data/a.csv": b"x,y\n1,2\n",
        "data/deep/nested/b.bin": os.urandom(MiB + 3),
        "data/deep/c.txt": b"c" * 1000,
    }
    for path, data in files.items():
        put(harbor, d.id, path, data)
    return d, files


def test_sdk_datasets_grants_snapshots_tags(client, harbor, filled):
    d, files = filled
    assert (d.name, d.description, d.role, d.snapshot_ids) == ("training", "images", "DatasetRwOwner", [])
    assert client.datasets.get(d.id) == d
    assert [x.id for x in client.datasets.list(project=d.project_name).items] == [d.id]
    assert client.datasets.list(project=d.project_id, name="nope").total == 0
    changed = client.datasets.update(d.id, description="photos")
    assert (changed.name, changed.description) == ("training", "photos")
    whole = client.datasets.snapshot(d.id)
    assert whole.size == sum(len(b) for b in files.values())
    part = client.datasets.snapshot(d.id, ["data/deep"])
    assert part.size == len(files["data/deep/nested/b.bin"]) + 1000
    assert client.datasets.get_snapshot(whole.id) == whole
    page = client.datasets.snapshots(d.id)
    assert ([x.id for x in page.items], page.total) == ([part.id, whole.id], 2)
    assert client.datasets.tag(d.id, "v1", whole.id).tags == {"v1": whole.id}
    assert [e.path for e in client.datasets.ls(d.id, snapshot="v1").entries] == ["data", "top.bin"]
    assert [e.path for e in client.datasets.ls(d.id, snapshot=part.id).entries] == ["data"]
    assert [e.name for e in client.datasets.ls(d.id, "data/deep").entries] == ["c.txt", "nested"]
    # grants: a reader reads and downloads, but neither snapshots nor grants
    name = f"r-{uuid.uuid4().hex[:8]}"
    reader_key = create_user(harbor.root, name)
    granted = client.datasets.grant(d.id, name, "datasetrwreader")
    assert {g.role for g in granted} == {"DatasetRwOwner", "DatasetRwReader"}
    assert name in {g.target_name for g in client.datasets.grants(d.id)}
    with Client(harbor.url, reader_key, timeout=30) as reader:
        assert reader.datasets.get(d.id).role == "DatasetRwReader"
        assert [x.id for x in reader.datasets.list().items] == [d.id]
        for call in (
            lambda: reader.datasets.snapshot(d.id),
            lambda: reader.datasets.grant(d.id, name, "DatasetRwOwner"),
        ):
            with pytest.raises(HarborClientError) as refused:
                call()
            assert refused.value.status == 403
        client.datasets.revoke(d.id, name)  # by username; the role looked up
        with pytest.raises(HarborClientError) as gone:
            reader.datasets.get(d.id)
        assert gone.value.status == 404
    assert client.datasets.untag(d.id, "v1").tags == {}
    assert client.datasets.delete(d.id).id == d.id
    with pytest.raises(HarborClientError) as deleted:
        client.datasets.get(d.id)
    assert deleted.value.status == 404


def test_sdk_download_tree_snapshot_and_file(client, harbor, filled, tmp_path):
    d, files = filled
    snap = client.datasets.snapshot(d.id)
    client.datasets.tag(d.id, "frozen", snap.id)
    put(harbor, d.id, "data/a.csv", b"changed\n")  # the head moves on; the snapshot keeps its bytes
    seen: list[tuple[int, int]] = []
    plans: list[tuple[int, int]] = []
    result = client.datasets.download(
        d.id, "", tmp_path / "all", snapshot="frozen", parallel=3,
        progress=lambda done, total: seen.append((done, total)), on_plan=lambda n, b: plans.append((n, b)),
    )  # fmt: skip
    total = sum(len(b) for b in files.values())
    assert tree(tmp_path / "all") == files
    assert (result.files, result.downloaded, result.skipped, result.bytes) == (4, 4, 0, total)
    assert plans == [(4, total)] and seen[-1] == (total, total)
    again = client.datasets.download(d.id, "", tmp_path / "all", snapshot=snap.id)
    assert (again.downloaded, again.skipped) == (0, 4)
    # a directory of the head: its files, paths below it
    head = client.datasets.download(d.id, "./data/", tmp_path / "data")
    expected = {k.removeprefix("data/"): v for k, v in files.items() if k.startswith("data/")} | {"a.csv": b"changed\n"}
    assert tree(tmp_path / "data") == expected and head.root == tmp_path / "data"
    # one file, into a directory or as a named file
    (tmp_path / "one").mkdir()
    single = client.datasets.download(d.id, "data/deep/nested/b.bin", tmp_path / "one")
    assert single.root == tmp_path / "one" / "b.bin" and single.root.read_bytes() == files["data/deep/nested/b.bin"]
    named = client.datasets.download(d.id, "data/a.csv", tmp_path / "old.csv", snapshot="frozen")
    assert named.root.read_text() == "x,y\n1,2\n"
    with pytest.raises(HarborClientError) as missing:
        client.datasets.download(d.id, "no/such", tmp_path / "x")
    assert missing.value.status == 404


def test_sdk_download_resumes_a_partial_file(client, filled, tmp_path):
    d, files = filled
    data = files["top.bin"]
    target = tmp_path / "top.bin"
    (tmp_path / "top.bin.part").write_bytes(data[: 2 * MiB])  # what an interrupted run left
    seen: list[int] = []
    client.datasets.download(d.id, "top.bin", target, progress=lambda done, _total: seen.append(done))
    assert target.read_bytes() == data and not (tmp_path / "top.bin.part").exists()
    assert seen[0] == 0 and min(seen[1:]) == 2 * MiB  # after the plan, never back below what the .part held:
    # the kept bytes were not fetched again, the rest came with Range
    # a .part with wrong bytes fails the SHA-256 and is fetched whole once more
    target.unlink()
    (tmp_path / "top.bin.part").write_bytes(b"\0" * MiB)
    client.datasets.download(d.id, "top.bin", target)
    assert target.read_bytes() == data


def test_cli_datasets(cli, client, harbor, filled, tmp_path):  # noqa: F811
    d, files = filled
    project = d.project_name
    made = json.loads(cli("datasets", "create", project, "second", "-d", "more", "--json").stdout)
    assert (made["name"], made["description"], made["role"]) == ("second", "more", "DatasetRwOwner")
    listed = cli("datasets", "list", "--project", project).stdout
    assert d.id in listed and made["id"] in listed and "2 of 2 dataset(s)" in listed
    assert "dataset " + d.id in cli("datasets", "show", d.id).stdout
    assert "renamed" in json.loads(cli("datasets", "update", made["id"], "--name", "renamed", "--json").stdout)["name"]
    name = f"c-{uuid.uuid4().hex[:8]}"
    create_user(harbor.root, name)
    assert name in cli("datasets", "grant", d.id, name, "DatasetRwEditor").stdout
    assert "DatasetRwEditor" in cli("datasets", "grants", d.id).stdout
    assert name not in cli("datasets", "revoke", d.id, name).stdout
    out = cli("datasets", "snapshot", d.id, "data", "--tag", "v1").stdout
    snap_id = out.split()[1].rstrip(":")
    assert "tagged v1" in out and client.datasets.get(d.id).tags == {"v1": snap_id}
    assert snap_id in cli("datasets", "snapshots", d.id).stdout and "v1" in cli("datasets", "snapshots", d.id).stdout
    assert f"tag v2: {snap_id}" in cli("datasets", "tag", d.id, "v2", snap_id).stdout
    assert "removed tag v2" in cli("datasets", "untag", d.id, "v2").stdout
    ls = cli("datasets", "ls", d.id, "data", "--snapshot", "v1").stdout
    assert "data/a.csv" in ls and "data/deep/" in ls and f"in snapshot {snap_id}" in ls
    entries = json.loads(cli("datasets", "ls", d.id, "--json").stdout)["entries"]
    assert [e["path"] for e in entries] == ["data", "top.bin"]
    got = cli("datasets", "download", d.id, "data", "-o", str(tmp_path / "out"), "--snapshot", "v1").stdout
    assert tree(tmp_path / "out") == {k.removeprefix("data/"): v for k, v in files.items() if k.startswith("data/")}
    assert "3 file(s)" in got and "3 downloaded" in got
    assert "3 already complete" in cli("datasets", "download", d.id, "data", "-o", str(tmp_path / "out")).stdout
    assert "not found" in cli("datasets", "show", "f" * 24, code=1).stderr
    assert "deleted dataset" in cli("datasets", "delete", made["id"], "--yes").stdout
