"""The upload engine against real SQLite/PostgreSQL and the real local store."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from modelharbor.core.clock import now
from modelharbor.db.tables import BlobRow, UploadChunkRow, UploadSessionRow
from modelharbor.domain.errors import Conflict, Gone, InvalidInput, NotFound, TooLarge
from tests.factories import member_of_new_org


async def agen(data: bytes, piece: int = 65536):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def put(services, principal, sid, n, data):
    return asyncio.run(services.uploads.put_chunk(principal, sid, agen(data), number=n))


def complete(services, principal, sid):
    return asyncio.run(services.uploads.complete(principal, sid))


def read_file(services, principal, file_id) -> bytes:
    async def go():
        _, _, stream = await services.files.open(principal, file_id)
        return b"".join([p async for p in stream])

    return asyncio.run(go())


def chunks_of(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i * size : (i + 1) * size] for i in range(n)]


def test_out_of_order_chunks_assemble_in_numeric_order(services, admin):
    data = os.urandom(300_001)
    parts = chunks_of(data, 5)
    s = services.uploads.start(admin, name="model.bin", total_chunks=5, size=len(data))
    for n in (3, 0, 4, 1, 2):
        put(services, admin, s.id, n, parts[n])
    done = complete(services, admin, s.id)
    assert done.file.size == len(data)
    assert done.file.sha256 == hashlib.sha256(data).hexdigest()
    assert read_file(services, admin, done.file.id) == data


def test_parallel_chunks(services, admin):
    data = os.urandom(2_000_000)
    parts = chunks_of(data, 16)
    s = services.uploads.start(admin, name="p.bin", total_chunks=16, size=len(data))

    async def all_at_once():
        await asyncio.gather(*(services.uploads.put_chunk(admin, s.id, agen(p), number=i) for i, p in enumerate(parts)))

    asyncio.run(all_at_once())
    status = services.uploads.status(admin, s.id)
    assert [c.number for c in status.chunks] == list(range(16))
    assert status.received_bytes == len(data)
    assert read_file(services, admin, complete(services, admin, s.id).file.id) == data


def test_resent_chunk_replaces_and_old_object_is_deleted(services, admin):
    s = services.uploads.start(admin, name="r.bin", total_chunks=2, size=6)
    put(services, admin, s.id, 0, b"xxx")
    put(services, admin, s.id, 0, b"abc")
    put(services, admin, s.id, 1, b"def")
    objects = asyncio.run(services.store.list(f"uploads/{s.id}/"))
    assert len(objects) == 2  # the replaced chunk's object is gone
    assert read_file(services, admin, complete(services, admin, s.id).file.id) == b"abcdef"


def test_missing_chunks_are_listed_and_session_stays_open(services, admin):
    s = services.uploads.start(admin, name="m.bin", total_chunks=4, size=4)
    put(services, admin, s.id, 0, b"a")
    put(services, admin, s.id, 2, b"c")
    with pytest.raises(InvalidInput) as err:
        complete(services, admin, s.id)
    assert err.value.code == "MISSING_CHUNKS"
    assert err.value.details["missing_chunks"] == [1, 3]
    assert err.value.details["received_chunks"] == [0, 2]
    assert services.uploads.status(admin, s.id).state == "open"
    put(services, admin, s.id, 1, b"b")
    put(services, admin, s.id, 3, b"d")
    assert read_file(services, admin, complete(services, admin, s.id).file.id) == b"abcd"


def test_size_mismatch_refused(services, admin):
    s = services.uploads.start(admin, name="s.bin", total_chunks=2, size=10)
    put(services, admin, s.id, 0, b"abc")
    put(services, admin, s.id, 1, b"de")
    with pytest.raises(InvalidInput) as err:
        complete(services, admin, s.id)
    assert err.value.code == "SIZE_MISMATCH"
    assert err.value.details == {"expected_size": 10, "received_size": 5}


def test_chunks_beyond_declared_size_refused_and_nothing_kept(services, admin):
    s = services.uploads.start(admin, name="big.bin", total_chunks=2, size=4)
    with pytest.raises(TooLarge):
        put(services, admin, s.id, 0, b"12345")
    put(services, admin, s.id, 0, b"123")
    with pytest.raises(InvalidInput) as err:
        put(services, admin, s.id, 1, b"45")
    assert err.value.code == "SIZE_MISMATCH"
    assert asyncio.run(services.store.list(f"uploads/{s.id}/")) == [
        k for k in asyncio.run(services.store.list(f"uploads/{s.id}/"))
    ]
    assert len(asyncio.run(services.store.list(f"uploads/{s.id}/"))) == 1
    assert [c.number for c in services.uploads.status(admin, s.id).chunks] == [0]


def test_chunk_number_out_of_range(services, admin):
    s = services.uploads.start(admin, name="x.bin", total_chunks=2)
    for bad in (-1, 2, 99):
        with pytest.raises(InvalidInput) as err:
            put(services, admin, s.id, bad, b"a")
        assert err.value.code == "INVALID_CHUNK_NUMBER"
    assert asyncio.run(services.store.list(f"uploads/{s.id}/")) == []


def test_start_validation(services, admin):
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="", total_chunks=1)
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="a", total_chunks=0)
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="a", total_chunks=services.settings.max_chunks + 1)
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="a", total_chunks=1, size=-1)
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="a", total_chunks=5, size=2)
    with pytest.raises(TooLarge):
        services.uploads.start(admin, name="a", total_chunks=1, size=services.settings.max_upload_size + 1)


def test_complete_is_idempotent(services, admin):
    s = services.uploads.start(admin, name="i.bin", total_chunks=1, size=3)
    put(services, admin, s.id, 0, b"abc")
    first = complete(services, admin, s.id)
    second = complete(services, admin, s.id)
    assert first.file.id == second.file.id
    assert second.session.state == "completed"
    with pytest.raises(Conflict) as err:
        put(services, admin, s.id, 0, b"zzz")
    assert err.value.code == "SESSION_COMPLETED"


def test_concurrent_completes_make_one_file(services, admin):
    s = services.uploads.start(admin, name="c.bin", total_chunks=2, size=4)
    put(services, admin, s.id, 0, b"ab")
    put(services, admin, s.id, 1, b"cd")

    async def both():
        return await asyncio.gather(services.uploads.complete(admin, s.id), services.uploads.complete(admin, s.id))

    a, b = asyncio.run(both())
    assert a.file.id == b.file.id
    assert services.files.list(admin).total == 1


def test_identical_content_is_stored_once(services, admin):
    data = os.urandom(100_000)
    ids = []
    for _ in range(2):
        s = services.uploads.start(admin, name="d.bin", total_chunks=2, size=len(data))
        for n, p in enumerate(chunks_of(data, 2)):
            put(services, admin, s.id, n, p)
        ids.append(complete(services, admin, s.id).file.id)
    single = asyncio.run(services.files.upload(admin, name="d2.bin", data=agen(data)))
    assert len({*ids, single.id}) == 3
    with services.db.uow(readonly=True) as db:
        assert db.scalar(select(BlobRow).where(BlobRow.sha256 == single.sha256)) is not None
        assert len(list(db.scalars(select(BlobRow)))) == 1
    # only the first upload's two chunk objects remain
    assert len([p for p in services.store.root.rglob("*") if p.is_file()]) == 2
    asyncio.run(services.files.delete(admin, ids[0]))
    assert read_file(services, admin, single.id) == data
    asyncio.run(services.files.delete(admin, ids[1]))
    asyncio.run(services.files.delete(admin, single.id))
    assert [p for p in services.store.root.rglob("*") if p.is_file()] == []


def _expire(services, sid):
    with services.db.uow() as db:
        db.execute(update(UploadSessionRow).where(UploadSessionRow.id == sid).values(expires_at=now() - timedelta(1)))


def test_expired_session_refuses_and_is_swept(services, admin):
    s = services.uploads.start(admin, name="e.bin", total_chunks=2, size=2)
    put(services, admin, s.id, 0, b"a")
    _expire(services, s.id)
    with pytest.raises(Gone) as err:
        put(services, admin, s.id, 1, b"b")
    assert err.value.code == "SESSION_EXPIRED"
    with pytest.raises(Gone):
        complete(services, admin, s.id)
    assert asyncio.run(services.uploads.sweep()) == 1
    assert asyncio.run(services.store.list(f"uploads/{s.id}/")) == []
    assert services.uploads.status(admin, s.id).state == "aborted"
    with services.db.uow(readonly=True) as db:
        assert list(db.scalars(select(UploadChunkRow))) == []
    assert asyncio.run(services.uploads.sweep()) == 0


def test_sweep_keeps_live_and_completed_sessions(services, admin):
    live = services.uploads.start(admin, name="l.bin", total_chunks=2)
    put(services, admin, live.id, 0, b"a")
    done = services.uploads.start(admin, name="d.bin", total_chunks=1)
    put(services, admin, done.id, 0, b"z")
    f = complete(services, admin, done.id).file
    _expire(services, done.id)
    assert asyncio.run(services.uploads.sweep()) == 0
    assert read_file(services, admin, f.id) == b"z"
    assert len(asyncio.run(services.store.list(f"uploads/{live.id}/"))) == 1


def test_crash_between_chunk_write_and_commit_leaves_nothing_visible(services, admin, monkeypatch):
    s = services.uploads.start(admin, name="k.bin", total_chunks=2, size=4)
    put(services, admin, s.id, 0, b"ab")
    real = services.uploads._commit_chunk

    def crash(*a, **kw):
        raise SystemExit("process died before the commit")

    monkeypatch.setattr(services.uploads, "_commit_chunk", crash)
    with pytest.raises(SystemExit):
        put(services, admin, s.id, 1, b"XX")
    monkeypatch.setattr(services.uploads, "_commit_chunk", real)
    status = services.uploads.status(admin, s.id)
    assert [c.number for c in status.chunks] == [0]
    put(services, admin, s.id, 1, b"cd")
    assert read_file(services, admin, complete(services, admin, s.id).file.id) == b"abcd"


def test_orphan_object_from_a_crash_is_removed_on_abort(services, admin):
    s = services.uploads.start(admin, name="o.bin", total_chunks=1)
    asyncio.run(services.store.put_bytes(f"uploads/{s.id}/orphan", b"left behind by a crash"))
    asyncio.run(services.uploads.abort(admin, s.id))
    assert asyncio.run(services.store.list(f"uploads/{s.id}/")) == []
    with pytest.raises(Gone):
        put(services, admin, s.id, 0, b"a")


def test_chunk_replaced_during_complete_is_rehashed(services, admin, monkeypatch):
    s = services.uploads.start(admin, name="h.bin", total_chunks=1, size=3)
    put(services, admin, s.id, 0, b"old")
    from modelharbor.core.files import blobs

    real_hash = blobs.hash_segments
    calls = []

    async def hash_then_replace(store, segments):
        calls.append(1)
        if len(calls) == 1:
            await services.uploads.put_chunk(admin, s.id, agen(b"new"), number=0)
        return await real_hash(store, segments)

    monkeypatch.setattr(blobs, "hash_segments", hash_then_replace)
    services.uploads._hashers.clear()  # no background prefix: complete hashes everything itself
    done = complete(services, admin, s.id)
    assert calls  # the first hash raced a replacement; the retry (prefix or full) saw the new chunk
    assert done.file.sha256 == hashlib.sha256(b"new").hexdigest()
    assert read_file(services, admin, done.file.id) == b"new"


def test_other_org_cannot_see_or_touch_sessions(services, admin):
    other_org = services.identity.create_org(admin, "other")
    assert other_org.name == "other"
    s = services.uploads.start(admin, name="secret.bin", total_chunks=1)
    outsider = member_of_new_org(services)
    with pytest.raises(NotFound):
        services.uploads.status(outsider, s.id)
    with pytest.raises(NotFound):
        put(services, outsider, s.id, 0, b"a")
    with pytest.raises(NotFound):
        complete(services, outsider, s.id)


def test_viewer_cannot_upload(services, admin):
    from modelharbor.domain.errors import Forbidden
    from modelharbor.domain.principal import Role

    services.identity.create_user(admin, "viewer", role=Role.VIEWER)
    viewer = services.identity.principal_for("viewer")
    with pytest.raises(Forbidden):
        services.uploads.start(viewer, name="a", total_chunks=1)


def test_empty_file(services, admin):
    s = services.uploads.start(admin, name="empty.bin", total_chunks=1, size=0)
    put(services, admin, s.id, 0, b"")
    done = complete(services, admin, s.id)
    assert done.file.size == 0
    assert done.file.sha256 == hashlib.sha256(b"").hexdigest()
    assert read_file(services, admin, done.file.id) == b""


def test_sessions_are_private_to_their_owner_within_an_org(services, admin):
    from modelharbor.domain.principal import Role

    services.identity.create_user(admin, "carol", role=Role.MEMBER)
    services.identity.create_user(admin, "dave", role=Role.MEMBER)
    carol, dave = services.identity.principal_for("carol"), services.identity.principal_for("dave")
    s = services.uploads.start(carol, name="c.bin", total_chunks=2)
    put(services, carol, s.id, 0, b"a")
    for call in (
        lambda: services.uploads.status(dave, s.id),
        lambda: put(services, dave, s.id, 1, b"b"),
        lambda: complete(services, dave, s.id),
        lambda: asyncio.run(services.uploads.abort(dave, s.id)),
    ):
        with pytest.raises(NotFound):
            call()
    assert services.uploads.list_open(dave) == []
    assert services.uploads.status(admin, s.id).received_bytes == 1  # an org admin may look
    listed = services.uploads.list_open(carol, name="c.bin")
    assert [(u.id, u.received_bytes, u.missing_chunks) for u in listed] == [(s.id, 1, [1])]


def test_prefix_hashed_in_background_is_reused_and_survives_replacement(services, admin, monkeypatch):
    from modelharbor.core.files import blobs

    parts = [os.urandom(50_000) for _ in range(4)]
    fed = []
    real = blobs.update_hash

    async def counting(store, h, segments):
        fed.extend(k for k, _ in segments)
        await real(store, h, segments)

    monkeypatch.setattr(blobs, "update_hash", counting)

    async def scenario(replace_first: bool):
        fed.clear()
        s = services.uploads.start(admin, name="bg.bin", total_chunks=4, size=200_000)
        for n in (1, 0, 2, 3):  # out of order: 1 waits until 0 arrives
            await services.uploads.put_chunk(admin, s.id, agen(parts[n]), number=n)
        await services.uploads._hashers[s.id].task
        assert len(fed) == 4  # all four hashed as they arrived
        if replace_first:  # a re-sent chunk 0 invalidates the prefix
            await services.uploads.put_chunk(admin, s.id, agen(parts[0]), number=0)
        fed.clear()
        done = await services.uploads.complete(admin, s.id)
        assert done.file.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
        return len(fed)

    assert asyncio.run(scenario(False)) == 0  # complete had nothing left to hash
    assert services.uploads._hashers == {}
    assert asyncio.run(scenario(True)) == 4  # fell back to hashing every chunk
