"""The whole upload engine and file service on each blob backend (S3 through a real S3-protocol server)."""

from __future__ import annotations

import asyncio
import hashlib
import os

from modelharbor.core.services import build_services
from modelharbor.storage import BlobStore
from modelharbor.tasks.runner import run_pending
from tests.conftest import ADMIN_KEY, make_settings


async def agen(data: bytes, piece: int = 1 << 20):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def test_chunked_upload_dedup_range_delete_and_import(store: BlobStore, tmp_path, sqlite_url):
    services = build_services(make_settings(tmp_path, sqlite_url), store=store)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    admin = services.identity.authenticate_key(ADMIN_KEY)
    data = os.urandom(9 * 1024 * 1024 + 123)  # crosses the 8 MiB part size

    async def scenario():
        s = services.uploads.start(admin, name="w.bin", total_chunks=3, size=len(data))
        step = -(-len(data) // 3)
        await asyncio.gather(
            *(
                services.uploads.put_chunk(admin, s.id, agen(data[n * step : (n + 1) * step]), number=n)
                for n in (2, 0, 1)
            )
        )
        done = await services.uploads.complete(admin, s.id)
        assert done.file.sha256 == hashlib.sha256(data).hexdigest()
        rec, rng, stream = await services.files.open(admin, done.file.id, "bytes=3000000-7000000")
        assert b"".join([p async for p in stream]) == data[3_000_000:7_000_001]
        twin = await services.files.upload(admin, name="twin.bin", data=agen(data))
        assert twin.sha256 == done.file.sha256
        assert len(await store.list("objects/")) == 0  # the single upload's copy was dropped: stored once
        await services.files.delete(admin, done.file.id)
        _, _, stream = await services.files.open(admin, twin.id)
        assert hashlib.sha256(b"".join([p async for p in stream])).hexdigest() == twin.sha256
        await services.files.delete(admin, twin.id)
        assert await store.list("") == []

    asyncio.run(scenario())

    # a model import reads the archive back through the backend's seekable reader
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("weights.bin")
        info.size = 3_000_000
        tf.addfile(info, io.BytesIO(os.urandom(3_000_000)))
    archive = buf.getvalue()
    session, model = services.imports.start(
        admin, name="m.tar.gz", total_chunks=2, size=len(archive), extension="tar.gz"
    )
    half = len(archive) // 2
    asyncio.run(services.uploads.put_chunk(admin, session.id, agen(archive[:half]), number=0))
    asyncio.run(services.uploads.put_chunk(admin, session.id, agen(archive[half:]), number=1))
    asyncio.run(services.uploads.complete(admin, session.id))
    run_pending(services)
    assert services.imports.get(admin, model.id).status == "ready"
    services.close()
