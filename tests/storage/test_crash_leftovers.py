"""Servers killed with SIGKILL mid-upload, then one sweep: nothing is left in the store but the completed files' bytes.

A real ``modelharbor serve`` process (local folder or a real S3-protocol server) takes whole uploads, then a single
upload and a chunk that are cut off half-way by ``kill -9`` — three times over. What the killed writers left (the
local store's ``<key>#1`` staging files, S3's incomplete multipart uploads, an open session's chunks) is on disk /
in the bucket; one sweep (the runner's, ``sweep_once``) removes all of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.services import build_services
from modelharbor.settings import Settings
from modelharbor.storage import BlobStore
from modelharbor.tasks.runner import sweep_once
from tests.servers import start_server
from tests.storage.conftest import S3_BUCKET

KEY = "mh_crash_test_admin_key_0123456789"
MiB = 1024 * 1024
ROUNDS = 3
GRACE, TTL = 2, 4  # seconds: the pending-object grace period and the upload sessions' lifetime
_prefixes = itertools.count()


def _half_send(url: str, method: str, target: str, total: int, sent: int) -> socket.socket:
    """A request announcing ``total`` body bytes of which only ``sent`` go out; the socket stays open."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    )
    sock.sendall(head.encode() + os.urandom(sent))
    return sock


def _unfinished_keys(store: BlobStore) -> list[str]:
    return [w.key for w in asyncio.run(store.unfinished(idle_since=time.time() + 60)) if w.size > 0]


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_one_sweep_after_kills_mid_upload_leaves_only_the_completed_files(backend, tmp_path, request):
    env = {
        "MODELHARBOR_WORKERS": "false",  # the killed servers never sweep: the one sweep below does it all
        "MODELHARBOR_PENDING_OBJECT_GRACE": str(GRACE),
        "MODELHARBOR_UPLOAD_SESSION_TTL": str(TTL),
    }
    if backend == "s3":
        env.update(
            MODELHARBOR_BLOB_URL=f"s3://{S3_BUCKET}/crash-{next(_prefixes)}",
            MODELHARBOR_S3_ENDPOINT_URL=request.getfixturevalue("s3_endpoint"),
            MODELHARBOR_S3_ACCESS_KEY_ID="test",
            MODELHARBOR_S3_SECRET_ACCESS_KEY="test",
            MODELHARBOR_S3_ALLOW_HTTP="true",
        )
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        secret_key="x",
        workers=False,
        **{k.removeprefix("MODELHARBOR_").lower(): v for k, v in env.items() if k != "MODELHARBOR_WORKERS"},
    )
    observer = None
    completed: dict[str, bytes] = {}
    for n in range(ROUNDS):
        proc, url = start_server(tmp_path, KEY, **env)
        sockets: list[socket.socket] = []
        try:
            with httpx.Client(base_url=url + "/api/v1", headers={"authorization": f"Bearer {KEY}"}) as c:
                data = os.urandom(3 * MiB + n)
                r = c.post("/files", params={"name": f"whole-{n}.bin"}, content=data)
                assert r.status_code == 201, r.text
                completed[r.json()["id"]] = data
                parts = [os.urandom(MiB + n), os.urandom(2 * MiB)]
                s = c.post("/uploads", json={"name": f"chunked-{n}.bin", "total_chunks": 2}).json()
                for i, part in enumerate(parts):
                    assert c.put(f"/uploads/{s['id']}/chunks/{i}", content=part).status_code == 200
                done = c.post(f"/uploads/{s['id']}/complete")
                assert done.status_code == 200, done.text
                completed[done.json()["file"]["id"]] = b"".join(parts)
                cut = c.post("/uploads", json={"name": f"cut-{n}.bin", "total_chunks": 2}).json()
                assert c.put(f"/uploads/{cut['id']}/chunks/0", content=os.urandom(MiB)).status_code == 200
            sockets.append(_half_send(url, "POST", f"/api/v1/files?name=cut-{n}.bin", 40 * MiB, 10 * MiB))
            sockets.append(_half_send(url, "PUT", f"/api/v1/uploads/{cut['id']}/chunks/1", 40 * MiB, 10 * MiB))
            observer = observer or build_services(settings)
            deadline = time.monotonic() + 30
            while True:  # both half-sent bodies are being written when the server dies
                keys = _unfinished_keys(observer.store)
                single = sum(k.startswith("objects/") for k in keys)
                chunk = sum(k.startswith(f"uploads/{cut['id']}/") for k in keys)
                if single == n + 1 and chunk == 1:
                    break
                assert time.monotonic() < deadline, f"no unfinished writes of round {n}: {keys}"
                time.sleep(0.05)
        finally:
            proc.kill()  # SIGKILL: no cleanup of any kind runs
            proc.wait()
            for sock in sockets:
                sock.close()

    left = _unfinished_keys(observer.store)
    assert len(left) == 2 * ROUNDS  # what the kills left: invisible to every listing, but bytes in the store
    time.sleep(TTL + 0.5)  # the last sessions expired, every intent is past its grace period
    services = build_services(settings)
    sweep_once(services)

    with services.db.uow(readonly=True) as s:
        segments = dict(seg for blob in s.scalars(select(BlobRow)) for seg in blob.segments)
        files = {f.id: f.sha256 for f in s.scalars(select(FileRow))}
    assert files == {fid: hashlib.sha256(data).hexdigest() for fid, data in completed.items()}
    assert asyncio.run(services.store.unfinished(idle_since=time.time() + 60)) == []
    if backend == "local":
        root = Path(services.store.root)
        on_disk = {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}
        assert on_disk == segments  # not one byte beyond the completed files'
    else:
        assert set(asyncio.run(services.store.list(""))) == set(segments)
    for fid, data in completed.items():
        _, _, stream = asyncio.run(services.files.open(services.identity.authenticate_key(KEY), fid))
        assert b"".join(asyncio.run(_collect(stream))) == data
    services.close()
    observer.close()


async def _collect(stream) -> list[bytes]:
    return [piece async for piece in stream]
