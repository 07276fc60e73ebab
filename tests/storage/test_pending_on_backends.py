"""Crash orphans are swept on every blob backend (S3 through a real S3-protocol server), on both databases."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from modelharbor.services import build_services
from modelharbor.storage import BlobStore
from modelharbor.storage.base import PART_SIZE
from tests.conftest import ADMIN_KEY, make_settings
from tests.core.test_pending import age, crash_before_commit, intents
from tests.storage.test_unfinished_writes import kill_writer_mid_write


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


@pytest.mark.backends("local", "s3")
def test_killed_writers_unfinished_writes_go_unless_a_live_writer_owns_them(
    store: BlobStore, tmp_path, db_url, request
):
    """Real writer processes SIGKILLed mid-write. One sweep removes the unfinished writes no live writer owns; the
    one whose intent is still refreshed (a writer alive on another replica) and the chunk of an open session stay
    until their owner lets go."""
    services = build_services(make_settings(tmp_path, db_url, pending_object_grace=1), store=store)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    admin = services.identity.authenticate_key(ADMIN_KEY)
    kept = asyncio.run(services.files.upload(admin, name="kept.bin", data=agen(os.urandom(1000))))
    owned, dead = f"objects/{uuid.uuid4()}", f"objects/{uuid.uuid4()}"
    services.files.pending.announce(owned, "file upload")
    session = services.uploads.start(admin, name="c.bin", total_chunks=2)
    chunk = f"uploads/{session.id}/{uuid.uuid4().hex[:16]}"
    for key in (owned, dead, chunk):
        kill_writer_mid_write(store, request, key, PART_SIZE + 1024 * 1024)

    def unfinished() -> set[str]:
        return {w.key for w in asyncio.run(store.unfinished(idle_since=time.time() + 1))}

    assert unfinished() == {owned, dead, chunk}
    time.sleep(1.5)  # every one of them idle for longer than the grace period
    services.files.pending.refresh(owned)  # its writer lives on elsewhere
    asyncio.run(services.files.pending.sweep())
    assert unfinished() == {owned, chunk}

    asyncio.run(services.uploads.abort(admin, session.id))
    time.sleep(1.5)  # the intent is no longer refreshed
    asyncio.run(services.files.pending.sweep())
    assert unfinished() == set()
    assert set(asyncio.run(store.list(""))) == {k for k, _ in _segments(services, kept.sha256)}
    services.close()


def _segments(services, sha256: str) -> list[tuple[str, int]]:
    from modelharbor.db.tables import BlobRow

    with services.db.uow(readonly=True) as s:
        return [tuple(seg) for seg in s.get(BlobRow, sha256).segments]
