"""The real ``dominodatalab`` 2.2.0 client's dataset calls against a running server: ``datasets_create``, ``_list``,
``_details``, ``_update_details``, ``_upload_files`` of a folder with nested paths (its resumable protocol: 8 MiB
chunks or smaller, MD5 per chunk, parallel threads), a re-run after the client was killed mid-upload (it skips what
the server acknowledged), a re-run after the *server* was killed (kill -9) mid-upload, ``datasets_remove``."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.domino_client import DominoClient
from tests.servers import running_server, start_server

KEY = "mh_e2e_domino_datasets_key_0123456789"

SETUP = """
import os, io
r = requests.post(host + '/api/v1/projects', headers={'Authorization': 'Bearer ' + api_key}, json={'name': 'demo'})
assert r.status_code in (201, 409), r.text
"""

# counts (and records) the chunks the client sends, and can die like a killed process after ``die_after`` of them
SPY = """
import threading
from domino import datasets as _ds
_sent, _lock = [], threading.Lock()
_orig = _ds.Uploader._upload_chunk_retry
def _spy(self, checksum, chunk, data):
    _orig(self, checksum, chunk, data)
    with _lock:
        _sent.append([chunk.relative_path, chunk.chunk_number])
        if ACK:
            with open(ACK, 'a') as f:
                f.write(json.dumps([chunk.relative_path, chunk.chunk_number]) + '\\n')
        if DIE_AFTER and len(_sent) >= DIE_AFTER:
            os._exit(9)
_ds.Uploader._upload_chunk_retry = _spy
"""


def tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def upload(dataset_id: str, folder: Path, *, chunk: int, workers: int = 4, die_after: int = 0, ack: str = "") -> str:
    return (
        f"ACK, DIE_AFTER = {ack!r}, {die_after}\n" + SPY + f"os.chdir({str(folder.parent)!r})\n"
        f"d.datasets_upload_files({dataset_id!r}, {folder.name!r}, max_workers={workers}, target_chunk_size={chunk})\n"
        "emit({'sent': _sent})\n"
    )


def content(url: str, dataset_id: str, path: str) -> bytes:
    r = httpx.get(
        f"{url}/api/v1/datasets/{dataset_id}/files/content",
        params={"path": path},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert r.status_code == 200, (path, r.text)
    return r.content


def noise(n: int, seed: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("domino-datasets-client")
    with running_server(root, KEY) as url:
        yield url, root


def test_the_client_creates_uploads_and_removes_a_dataset(served, domino_python, tmp_path):
    url, _ = served
    client = DominoClient(domino_python, url, KEY, project="admin/demo")
    folder = tmp_path / "survey"
    files = {
        "a.csv": b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20_000)),
        "nested/deeper/b.bin": noise(3 * 2**20 + 17, 1),
        "nested/empty.txt": b"",
    }
    tree(folder, files)
    out = client.run(
        SETUP
        + "made = d.datasets_create('survey', 'first cut')\n"
        + "ds = made['datasetId']\n"
        + "listed = d.datasets_list(d.project_id)\n"
        + "updated = d.datasets_update_details(ds, dataset_description='second cut')\n"
        + "details = d.datasets_details(ds)\n"
        + upload("DS", folder, chunk=2**20).replace("'DS'", "ds")
        + "emit({'made': made, 'listed': listed, 'updated': updated, 'details': details, 'sent': _sent})\n"
    )
    ds = out["made"]["datasetId"]
    assert out["made"]["datasetName"] == "survey"
    assert [x["datasetName"] for x in out["listed"]] == ["survey"]
    assert out["updated"]["datasetDescription"] == "second cut" == out["details"]["datasetDescription"]
    assert len(out["sent"]) == sum(max(1, -(-len(b) // 2**20)) for b in files.values()) == 6  # 1 + 4 + 1 (empty)
    for rel, data in files.items():
        assert content(url, ds, f"survey/{rel}") == data
    # a second upload of the same folder: Ignore (the default) keeps what is there
    again = client.run(SETUP + upload(ds, folder, chunk=2**20))
    assert len(again["sent"]) == 6 and content(url, ds, "survey/a.csv") == files["a.csv"]
    removed = client.run(SETUP + f"r = d.datasets_remove([{ds!r}])\nemit([x.status_code for x in r])")
    assert removed == [200]
    assert client.run(SETUP + "emit(d.datasets_list(d.project_id))") == []


def test_a_killed_client_re_run_skips_what_the_server_acknowledged(served, domino_python, tmp_path):
    url, _ = served
    client = DominoClient(domino_python, url, KEY, project="admin/demo")
    folder = tmp_path / "images"
    files = {f"part-{i}/img-{j}.raw": noise(300_000 + 1000 * i + j, 10 * i + j) for i in range(3) for j in range(3)}
    tree(folder, files)  # 9 files of 3 chunks (128 KiB): 27 chunks
    ds = client.run(SETUP + "emit(d.datasets_create('images', '')['datasetId'])")
    ack = tmp_path / "acknowledged.jsonl"
    killed = client.run_raw(SETUP + upload(ds, folder, chunk=2**17, workers=2, die_after=11, ack=str(ack)))
    assert killed.returncode == 9, killed.stderr
    acknowledged = {tuple(json.loads(line)) for line in ack.read_text().splitlines()}
    out = client.run(SETUP + upload(ds, folder, chunk=2**17, workers=3))
    resent = {tuple(x) for x in out["sent"]}
    assert len(acknowledged) == 11 and not resent & acknowledged  # the acknowledged chunks were skipped
    assert 27 - 11 - 1 <= len(resent) <= 27 - 11  # (the other thread's chunk may have landed as the client died)
    for rel, data in files.items():
        assert content(url, ds, f"images/{rel}") == data


def test_a_server_killed_mid_upload_loses_nothing_acknowledged(domino_python, tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    folder = tmp_path / "logs"
    files = {f"day-{i}.log": noise(2**20 + i, 100 + i) for i in range(12)}  # 12 files of 8 or 9 chunks of 128 KiB
    tree(folder, files)
    ack = tmp_path / "acknowledged.jsonl"
    proc, url = start_server(root, KEY)
    try:
        client = DominoClient(domino_python, url, KEY, project="admin/demo")
        ds = client.run(SETUP + "emit(d.datasets_create('logs', '')['datasetId'])")
        running = client.popen(SETUP + upload(ds, folder, chunk=2**17, workers=2, ack=str(ack)))
        deadline = time.monotonic() + 60
        while not (ack.exists() and len(ack.read_text().splitlines()) >= 20):
            assert running.poll() is None and time.monotonic() < deadline, running.communicate()
            time.sleep(0.02)
        proc.kill()  # kill -9 mid-upload
        proc.wait()
        acknowledged = {tuple(json.loads(line)) for line in ack.read_text().splitlines()}
        running.kill()  # the client would retry for minutes; the user re-runs it instead
        running.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc, url = start_server(root, KEY)
    try:
        client = DominoClient(domino_python, url, KEY, project="admin/demo")
        out = client.run(SETUP + upload(ds, folder, chunk=2**17, workers=2))
        resent = {tuple(x) for x in out["sent"]}
        assert not resent & acknowledged  # nothing acknowledged is sent again
        total = sum(-(-len(b) // 2**17) for b in files.values())
        assert 0 < len(resent) <= total - len(acknowledged)  # (a chunk stored as the server died is skipped too)
        for rel, data in files.items():
            assert content(url, ds, f"logs/{rel}") == data
    finally:
        proc.terminate()
        proc.wait(10)
