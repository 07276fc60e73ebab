"""Intents (``pending_objects``): bytes a crashed writer left are swept after the grace period, nothing else is."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from modelharbor.core.clock import now
from modelharbor.db.tables import BlobRow, PendingObjectRow
from modelharbor.domain.errors import Conflict, TooLarge
from modelharbor.services import build_services
from tests.conftest import ADMIN_KEY, make_settings


async def agen(data: bytes, piece: int = 7):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def intents(services) -> dict[str, PendingObjectRow]:
    with services.db.uow(readonly=True) as s:
        return {r.key: r for r in s.scalars(select(PendingObjectRow))}


def age(services, seconds: float | None = None) -> None:
    """Make every unclaimed intent older than the grace period (as if that much time had passed)."""
    seconds = seconds if seconds is not None else services.files.pending.grace + 1
    with services.db.uow() as s:
        for row in s.scalars(select(PendingObjectRow).where(PendingObjectRow.claimed_at.is_(None))):
            row.created_at = row.created_at - timedelta(seconds=seconds)


def stored(services) -> set[str]:
    return set(asyncio.run(services.store.list("")))


def sweep(services) -> int:
    return asyncio.run(services.files.pending.sweep())


def crash_before_commit(services, monkeypatch) -> None:
    """Make the next upload die between writing its object and committing its row: no cleanup runs."""

    def dies(*a, **kw):
        raise SystemExit("killed")

    async def nothing(*a, **kw):
        return None

    monkeypatch.setattr(services.files, "_commit_fresh", dies)
    monkeypatch.setattr(services.store, "delete", nothing)
    monkeypatch.setattr(services.files.pending, "forget", nothing)


def test_crash_between_write_and_commit_is_swept_after_the_grace(services, admin, monkeypatch):
    kept = asyncio.run(services.files.upload(admin, name="kept.bin", data=agen(b"kept bytes")))
    assert intents(services) == {}  # the commit settled its intent
    before = stored(services)

    crash_before_commit(services, monkeypatch)
    with pytest.raises(SystemExit):
        asyncio.run(services.files.upload(admin, name="lost.bin", data=agen(b"orphaned bytes")))
    monkeypatch.undo()
    (orphan,) = stored(services) - before
    assert orphan.startswith("objects/") and set(intents(services)) == {orphan}
    assert services.files.list(admin).total == 1

    assert sweep(services) == 0  # within the grace period: maybe a live upload, left alone
    assert orphan in stored(services)

    age(services)
    assert sweep(services) == 1
    assert stored(services) == before  # the orphan went, every referenced object stayed
    assert intents(services) == {}
    _, _, stream = asyncio.run(services.files.open(admin, kept.id))
    assert b"".join(asyncio.run(_collect(stream))) == b"kept bytes"


async def _collect(stream):
    return [p async for p in stream]


def test_the_sweep_never_deletes_a_referenced_key(services, admin):
    """Belt and braces: an old intent whose key a blob references (cannot happen by the protocol) keeps its bytes."""
    rec = asyncio.run(services.files.upload(admin, name="a.bin", data=agen(b"abc")))
    with services.db.uow(readonly=True) as s:
        key = s.get(BlobRow, rec.sha256).segments[0][0]
    services.files.pending.announce(key, "test")
    age(services)
    assert sweep(services) == 1
    assert key in stored(services) and intents(services) == {}


def test_dedup_drops_the_fresh_object_and_its_intent(services, admin):
    a = asyncio.run(services.files.upload(admin, name="a.bin", data=agen(b"same content")))
    b = asyncio.run(services.files.upload(admin, name="b.bin", data=agen(b"same content")))
    assert a.sha256 == b.sha256
    assert len(stored(services)) == 1
    assert intents(services) == {}


def test_a_failed_upload_leaves_neither_bytes_nor_intent(services, admin):
    with pytest.raises(TooLarge):
        asyncio.run(services.files.upload(admin, name="big.bin", data=agen(b"x" * 11), max_size=10))
    assert stored(services) == set() and intents(services) == {}


@pytest.fixture
def short_grace(tmp_path, db_url):
    svc = build_services(make_settings(tmp_path, db_url, pending_object_grace=1))
    svc.identity.ensure_admin("admin", key=ADMIN_KEY)
    yield svc, svc.identity.authenticate_key(ADMIN_KEY)
    svc.close()


def test_a_live_upload_longer_than_the_grace_is_not_swept(short_grace):
    """A writer refreshes its intent every third of the grace period, however long it takes."""
    services, admin = short_grace
    data = b"slow but alive " * 100

    async def slow():
        for i in range(0, len(data), 300):
            yield data[i : i + 300]
            await asyncio.sleep(0.5)  # ~2.5 s in all: more than twice the grace period

    async def scenario():
        upload = asyncio.create_task(services.files.upload(admin, name="slow.bin", data=slow()))
        swept, idle = 0, 0
        while not upload.done():
            swept += await services.files.pending.sweep()  # another server's sweep, all the while
            # its staging file sat unwritten for longer than the grace period: only its refreshed intent keeps it
            idle += len(await services.store.unfinished(idle_since=time.time() - services.files.pending.grace))
            await asyncio.sleep(0.1)
        return await upload, swept, idle

    rec, swept, idle = asyncio.run(scenario())
    assert swept == 0 and idle > 0
    assert rec.sha256 == hashlib.sha256(data).hexdigest()
    _, _, stream = asyncio.run(services.files.open(admin, rec.id))
    assert b"".join(asyncio.run(_collect(stream))) == data
    assert intents(services) == {}


def test_an_upload_whose_intent_was_swept_fails_and_keeps_nothing(short_grace, monkeypatch):
    """If a writer could not refresh its intent (database unreachable for longer than the grace), the sweep claims
    it; the upload's commit then fails instead of recording a file whose bytes may be gone."""
    services, admin = short_grace
    monkeypatch.setattr(services.files.pending, "refresh", lambda key: False)

    async def slow():
        yield b"first"
        await asyncio.sleep(1.5)
        yield b"second"

    async def scenario():
        upload = asyncio.create_task(services.files.upload(admin, name="late.bin", data=slow()))
        await asyncio.sleep(1.2)
        claimed = await services.files.pending.sweep()
        with pytest.raises(Conflict):
            await upload
        return claimed

    assert asyncio.run(scenario()) == 1
    assert services.files.list(admin).total == 0
    assert stored(services) == set() and intents(services) == {}


def test_bytes_a_deletion_did_not_remove_are_swept(services, admin, monkeypatch):
    rec = asyncio.run(services.files.upload(admin, name="a.bin", data=agen(b"to delete")))

    async def dies(keys):
        return None  # the process died right after the commit

    monkeypatch.setattr(services.store, "delete", dies)
    asyncio.run(services.files.delete(admin, rec.id))
    monkeypatch.undo()
    assert len(stored(services)) == 1 and len(intents(services)) == 1
    assert sweep(services) == 1  # released keys need no grace: no writer can reference them again
    assert stored(services) == set() and intents(services) == {}


def test_a_completed_session_keeps_its_chunks_and_loses_what_a_crashed_writer_left(services, admin):
    data = b"0123456789" * 3
    s = services.uploads.start(admin, name="c.bin", total_chunks=3, size=len(data))

    async def scenario():
        for n in range(3):
            await services.uploads.put_chunk(admin, s.id, agen(data[n * 10 : (n + 1) * 10]), number=n)
        # a re-sent chunk whose writer died between the write and the commit
        await services.store.put_stream(f"uploads/{s.id}/deadbeef", agen(b"orphan"))
        return await services.uploads.complete(admin, s.id)

    done = asyncio.run(scenario())
    assert f"uploads/{s.id}/deadbeef" in stored(services)
    assert set(intents(services)) == {f"uploads/{s.id}/"}
    assert sweep(services) == 0  # chunk writes may still be in flight during the grace period
    age(services)
    assert sweep(services) == 1
    assert f"uploads/{s.id}/deadbeef" not in stored(services)
    assert len(stored(services)) == 3 and intents(services) == {}
    _, _, stream = asyncio.run(services.files.open(admin, done.file.id))
    assert b"".join(asyncio.run(_collect(stream))) == data


def test_a_deduplicated_session_and_an_aborted_one_leave_nothing(services, admin):
    asyncio.run(services.files.upload(admin, name="held.bin", data=agen(b"held")))
    held = stored(services)
    s = services.uploads.start(admin, name="again.bin", total_chunks=1)
    t = services.uploads.start(admin, name="aborted.bin", total_chunks=2)

    async def scenario():
        await services.uploads.put_chunk(admin, s.id, agen(b"held"), number=0)
        await services.uploads.complete(admin, s.id)
        await services.uploads.put_chunk(admin, t.id, agen(b"part"), number=0)
        await services.uploads.abort(admin, t.id)
        await services.store.put_stream(f"uploads/{t.id}/late", agen(b"a chunk that arrived after the abort"))

    asyncio.run(scenario())
    assert stored(services) == held | {f"uploads/{t.id}/late"}
    age(services)
    assert sweep(services) == 2
    assert stored(services) == held and intents(services) == {}


def test_expired_sessions_prefixes_are_swept_again_after_the_grace(services, admin):
    s = services.uploads.start(admin, name="x.bin", total_chunks=2)
    asyncio.run(services.uploads.put_chunk(admin, s.id, agen(b"part"), number=0))
    with services.db.uow() as tx:
        from modelharbor.db.tables import UploadSessionRow

        tx.execute(update(UploadSessionRow).values(expires_at=now() - timedelta(seconds=1)))
    assert asyncio.run(services.uploads.sweep()) == 1
    assert stored(services) == set() and set(intents(services)) == {f"uploads/{s.id}/"}
    age(services)
    assert sweep(services) == 1 and intents(services) == {}


# --- unfinished writes (the local store's ``<key>#<n>`` staging files) ----------------------------------------------
def staging(services, key: str, data: bytes = b"half a write", *, age: float | None = None) -> Path:
    """A staging file of ``key`` as the local store writes it (``<key>#1``), last written ``age`` seconds ago
    (default: longer ago than the grace period)."""
    path = services.store.root / f"{key}#1"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - (services.files.pending.grace + 60 if age is None else age)
    os.utime(path, (when, when))
    return path


def on_disk(services) -> set[str]:
    """Every file under the store's folder (staging files included), as keys."""
    root = services.store.root
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_unfinished_writes_no_live_writer_owns_are_swept_and_owned_ones_stay(services, admin):
    """A staging file goes only when it was idle for longer than the grace period and nothing live owns its key: a
    fresh intent (a writer on this or another replica refreshing it), an open upload session, a running import."""
    kept = asyncio.run(services.files.upload(admin, name="kept.bin", data=agen(b"kept bytes")))
    live_key, dead_key, claimed_key, young_key = (f"objects/{uuid.uuid4()}" for _ in range(4))
    services.files.pending.announce(live_key, "file upload")  # a live writer's intent, refreshed just now
    live = staging(services, live_key)
    dead = staging(services, dead_key)  # its writer was killed; its intent was swept long ago
    services.files.pending.announce(claimed_key, "file upload")
    age(services)  # this writer died too: its intent lapsed (now older than the grace period)
    services.files.pending.refresh(live_key)
    claimed = staging(services, claimed_key)
    young = staging(services, young_key, age=1)  # no owner, but written to a moment ago

    open_session = services.uploads.start(admin, name="open.bin", total_chunks=2)
    closed_session = services.uploads.start(admin, name="closed.bin", total_chunks=2)
    asyncio.run(services.uploads.abort(admin, closed_session.id))
    chunk_live = staging(services, f"uploads/{open_session.id}/{uuid.uuid4().hex[:16]}")
    chunk_dead = staging(services, f"uploads/{closed_session.id}/{uuid.uuid4().hex[:16]}")

    services.projects.create_project(admin, "p")
    zipped = asyncio.run(services.files.upload(admin, name="i.zip", data=agen(b"PK\x05\x06" + b"\0" * 18)))
    running = services.transfer.create_import(admin, "p", file_id=zipped.id, skip_confirmation=True)
    stager = services.transfer._begin_staging(running.id)  # the import's worker writes under this prefix
    package_live = staging(services, f"{stager.prefix}1")
    retired = services.transfer.create_import(admin, "p", file_id=zipped.id, skip_confirmation=True)
    gone = services.transfer._begin_staging(retired.id)
    services.transfer._clean_staged(retired.id)  # a failed attempt: its prefix is no longer named
    package_dead = staging(services, f"{gone.prefix}1")

    assert {p.exists() for p in (live, dead, claimed, young, chunk_live, chunk_dead, package_live, package_dead)} == {
        True
    }
    before = on_disk(services)
    asyncio.run(services.files.pending.sweep())  # the sweep any replica runs
    assert not dead.exists() and not claimed.exists() and not chunk_dead.exists() and not package_dead.exists()
    assert live.exists() and young.exists() and chunk_live.exists() and package_live.exists()
    root = services.store.root
    gone_keys = {p.relative_to(root).as_posix() for p in (dead, claimed, chunk_dead, package_dead)}
    assert on_disk(services) == before - gone_keys
    assert not (root / f"uploads/{closed_session.id}").exists()  # emptied folders go too
    _, _, stream = asyncio.run(services.files.open(admin, kept.id))
    assert b"".join(asyncio.run(_collect(stream))) == b"kept bytes"

    # once the session is closed and the intent lapsed, their staging files are no one's either
    asyncio.run(services.uploads.abort(admin, open_session.id))
    age(services)
    asyncio.run(services.files.pending.sweep())
    assert not live.exists() and not chunk_live.exists() and young.exists()


def test_a_failing_listing_of_unfinished_writes_does_not_stop_the_sweep(services, admin, monkeypatch, caplog):
    """E.g. S3 credentials that may not list multipart uploads: the intents are still swept, and a warning says so."""
    crash_before_commit(services, monkeypatch)
    with pytest.raises(SystemExit):
        asyncio.run(services.files.upload(admin, name="lost.bin", data=agen(b"orphaned bytes")))
    monkeypatch.undo()

    async def denied(*, idle_since):
        raise PermissionError("AccessDenied: ListMultipartUploads")

    monkeypatch.setattr(services.store, "unfinished", denied)
    age(services)
    with caplog.at_level("WARNING", logger="modelharbor.pending"):
        assert sweep(services) == 1
    assert stored(services) == set() and intents(services) == {}
    assert "could not sweep unfinished writes" in caplog.text and "AccessDenied" in caplog.text
