"""The SDK's dataset upload (``client.datasets.upload``, sdk/dataset_uploads.py) and ``modelharbor datasets upload``
against a real ``modelharbor serve``: a nested folder sent in parallel chunks lands byte-identical; an interrupted
upload resumes (only the missing chunks go), a changed file is not mixed with its old chunks; verification catches a
landed hash that is not the local one; the CLI's upload, collision settings and download round trip."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import httpx
import pytest

from modelharbor.sdk import HarborClientError
from modelharbor.sdk import dataset_uploads as du
from tests.sdk.test_datasets_cli import tree
from tests.sdk.test_files_cli import cli  # noqa: F401 - the CLI runner fixture

CHUNK = 64 * 1024


def noise(n: int, seed: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:n])


@pytest.fixture
def dataset(client):
    project = client.projects.create(f"du-{uuid.uuid4().hex[:6]}")
    return client.datasets.create(project.name, "d").id


def content(harbor, ds, path) -> bytes:
    r = httpx.get(
        f"{harbor.url}/api/v1/datasets/{ds}/files/content",
        params={"path": path},
        headers={"Authorization": f"Bearer {harbor.key}"},
    )
    assert r.status_code == 200, (path, r.text)
    return r.content


def make(folder, files):
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def test_a_folder_lands_byte_identical(client, harbor, dataset, tmp_path):
    files = {"a.csv": b"x,y\n" * 5000, "deep/er/b.bin": noise(300_000, 1), "deep/empty": b""}
    make(tmp_path / "src", files)
    seen = []
    landed = client.datasets.upload(
        dataset, tmp_path / "src", target="raw", chunk_size=CHUNK, parallel=3, progress=lambda d, t: seen.append((d, t))
    )
    assert sorted(e.path for e in landed.written) == sorted(f"raw/{p}" for p in files)
    assert seen[-1] == (sum(map(len, files.values())),) * 2
    for rel, data in files.items():
        assert content(harbor, dataset, f"raw/{rel}") == data
    single = du.DatasetUploader(client._transport).upload(dataset, tmp_path / "src" / "a.csv", collision="Rename")
    assert [e.path for e in single.written] == ["a.csv"]


def test_an_interrupted_upload_resumes_and_a_changed_file_starts_afresh(client, harbor, dataset, tmp_path):
    files = {f"part-{i}.bin": noise(200_000 + i, i) for i in range(4)}  # 4 chunks each
    make(tmp_path / "src", files)
    up = du.DatasetUploader(client._transport)

    def stop_after(limit):
        def progress(done, total):
            if done >= limit:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        up.upload(dataset, tmp_path / "src", chunk_size=CHUNK, parallel=1, progress=stop_after(300_000))
    [held] = up.open_uploads(dataset)
    sent_before = sum(len(f.received) for f in held.files)
    assert 3 <= sent_before < 16
    first = []
    landed = up.upload(dataset, tmp_path / "src", chunk_size=CHUNK, parallel=2, progress=lambda d, t: first.append(d))
    assert landed.key == held.key  # resumed, not restarted
    assert first[0] >= sent_before * CHUNK - CHUNK  # what the server held counted as done at once
    for rel, data in files.items():
        assert content(harbor, dataset, rel) == data
    # interrupted again, then a file changes: that upload is not continued
    with pytest.raises(KeyboardInterrupt):
        up.upload(dataset, tmp_path / "src", collision="Overwrite", chunk_size=CHUNK, progress=stop_after(100_000))
    [stale] = up.open_uploads(dataset)
    (tmp_path / "src" / "part-0.bin").write_bytes(b"changed" + files["part-0.bin"][7:])
    again = up.upload(dataset, tmp_path / "src", collision="Overwrite", chunk_size=CHUNK)
    assert again.key != stale.key
    assert content(harbor, dataset, "part-0.bin")[:7] == b"changed"
    up.cancel(dataset, stale.key)
    assert up.open_uploads(dataset) == []


def test_verification_catches_a_hash_that_is_not_the_local_one(client, dataset, tmp_path, monkeypatch):
    make(tmp_path / "src", {"f.txt": b"hello"})
    monkeypatch.setattr(du, "sha256_of", lambda path, stop=None: "0" * 64)
    with pytest.raises(HarborClientError, match="changed while it was sent") as exc:
        du.DatasetUploader(client._transport).upload(dataset, tmp_path / "src")
    assert exc.value.code == "CHECKSUM_MISMATCH"
    with pytest.raises(HarborClientError, match="collision"):
        du.DatasetUploader(client._transport).upload(dataset, tmp_path / "src", collision="Merge")


def test_hashing_that_outlasts_the_chunks_still_verifies(client, dataset, tmp_path, monkeypatch):
    """The local SHA-256s may finish after the last chunk went (a fast server, a slow disk): they are waited for, not
    cancelled with the chunks' threads (which made the CLI fail with a bare ``Cancelled``)."""
    files = {"a.bin": noise(200_000, 2), "b.bin": noise(100_000, 3)}
    make(tmp_path / "src", files)
    real = du.sha256_of

    def slow(path, stop=None):
        time.sleep(0.5)  # longer than sending 300 kB to a local server
        return real(path, stop)

    monkeypatch.setattr(du, "sha256_of", slow)
    landed = du.DatasetUploader(client._transport).upload(dataset, tmp_path / "src", chunk_size=CHUNK, parallel=4)
    assert sorted(e.path for e in landed.written) == sorted(files)
    assert all(hashlib.sha256(files[e.path]).hexdigest().startswith(e.key) for e in landed.written)


def test_cli_upload_collisions_and_round_trip(cli, client, dataset, tmp_path):  # noqa: F811
    files = {"a.csv": b"x,y\n1,2\n", "deep/b.bin": noise(200_000, 7), "deep/er/c.txt": b"c" * 10}
    make(tmp_path / "src", files)
    out = cli("datasets", "upload", dataset, str(tmp_path / "src"), "--to", "raw", "--chunk-mib", "1").stdout
    assert "3 file(s)" in out and "written" in out
    cli("datasets", "download", dataset, "raw", "-o", str(tmp_path / "back"))
    assert tree(tmp_path / "back") == files
    (tmp_path / "src" / "a.csv").write_bytes(b"new")
    skipped = cli("datasets", "upload", dataset, str(tmp_path / "src"), "--to", "raw").stdout
    assert "0 file(s)" in skipped and "3 skipped" in skipped
    renamed = json.loads(
        cli(
            "datasets",
            "upload",
            dataset,
            str(tmp_path / "src" / "a.csv"),
            "--to",
            "raw",
            "--collision",
            "Rename",
            "--json",
        ).stdout  # fmt: skip
    )
    assert renamed["renamed"] == {"a.csv": "raw/a_1.csv"}
    assert client.datasets.ls(dataset, "raw").entries[:2][1].path == "raw/a_1.csv"
    assert (
        "collision" in cli("datasets", "upload", dataset, str(tmp_path / "src"), "--collision", "Merge", code=1).stderr
    )
    assert "neither a file nor a folder" in cli("datasets", "upload", dataset, str(tmp_path / "nope"), code=1).stderr
