"""Crash orphans are swept on every blob backend (S3 through a real S3-protocol server), on both databases."""

from __future__ import annotations

import asyncio
import os

import pytest

from modelharbor.core.services import build_services
from modelharbor.storage import BlobStore
from tests.conftest import ADMIN_KEY, make_settings
from tests.core.test_pending import age, crash_before_commit, intents


async def agen(data: bytes, piece: int = 1 << 20):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def test_orphans_of_single_and_chunked_uploads_are_swept(store: BlobStore, tmp_path, db_url, monkeypatch):
    services = build_services(make_settings(tmp_path, db_url), store=store)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    admin = services.identity.authenticate_key(ADMIN_KEY)
    data = os.urandom(9 * 1024 * 1024 + 5)  # crosses the 8 MiB part size

    async def keep():
        kept = await services.files.upload(admin, name="kept.bin", data=agen(data))
        s = services.uploads.start(admin, name="c.bin", total_chunks=2)
        await services.uploads.put_chunk(admin, s.id, agen(b"chunk zero"), number=0)
        await services.uploads.put_chunk(admin, s.id, agen(b"chunk one"), number=1)
        await store.put_stream(f"uploads/{s.id}/crashed", agen(b"a writer died before its commit"))
        done = await services.uploads.complete(admin, s.id)
        return kept, done.file

    kept, chunked = asyncio.run(keep())
    crash_before_commit(services, monkeypatch)
    with pytest.raises(SystemExit):
        asyncio.run(services.files.upload(admin, name="lost.bin", data=agen(os.urandom(1000))))
    monkeypatch.undo()

    everything = set(asyncio.run(store.list("")))
    assert len(everything) == 5  # kept, two chunks, the crashed chunk, the crashed single upload
    assert asyncio.run(services.files.pending.sweep()) == 0  # within the grace
    age(services)
    assert asyncio.run(services.files.pending.sweep()) == 2
    left = set(asyncio.run(store.list("")))
    assert len(left) == 3 and left < everything and intents(services) == {}

    async def read(file_id):
        _, _, stream = await services.files.open(admin, file_id)
        return b"".join([p async for p in stream])

    assert asyncio.run(read(kept.id)) == data
    assert asyncio.run(read(chunked.id)) == b"chunk zerochunk one"
    services.close()
