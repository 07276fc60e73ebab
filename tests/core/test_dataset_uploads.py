"""Resumable dataset uploads in the core (core/dataset_uploads.py): chunks in any order with their MD5 checked, ending
lands every file at once with the collision setting, the test of an earlier unfinished batch's chunks (adoption),
cancelling, bad input, permissions — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
from sqlalchemy import func, select

from modelharbor.core.dataset_access import READER
from modelharbor.db.tables import FileRow, UploadChunkRow
from modelharbor.db.tables_datasets import DatasetUploadRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow
from modelharbor.domain.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from tests.core.test_datasets import read, write
from tests.factories import in_same_org, member_of_new_org

CHUNK = 1024


async def agen(data: bytes):
    yield data


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def pieces(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]


def send(services, principal, ds, key, path, data, numbers=None, *, checksum=None):
    """Send chunks (numbers from 0) of ``data`` as the file ``path``; the identifier is the client's."""
    parts = pieces(data)
    for n in numbers if numbers is not None else range(len(parts)):
        asyncio.run(
            services.dataset_uploads.put_chunk(
                principal, ds, key, agen(parts[n]), path=path, identifier=f"{len(data)}-{path.rsplit('/', 1)[-1]}",
                size=len(data), total_chunks=len(parts), chunk_size=CHUNK, number=n, md5=checksum or md5(parts[n]),
            )
        )  # fmt: skip


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def dataset(services, owner):
    project = services.projects.create_project(owner, f"up-{uuid.uuid4().hex[:6]}")
    return services.datasets.create(owner, project.id, "training").id


def start(services, principal, ds, collision="Ignore"):
    return services.dataset_uploads.start(principal, ds, collision).key


def end(services, principal, ds, key, target=""):
    return asyncio.run(services.dataset_uploads.end(principal, ds, key, target))


def test_chunks_in_any_order_land_together_and_snapshots_keep_what_was(services, owner, dataset):
    up = services.dataset_uploads
    big = bytes(range(256)) * 13  # 3,328 bytes: 4 chunks
    key = start(services, owner, dataset)
    send(services, owner, dataset, key, "data/big.bin", big, [3, 1, 0, 2])
    send(services, owner, dataset, key, "data/sub/empty.txt", b"")
    send(services, owner, dataset, key, "top.csv", b"a,b\n1,2\n")
    status = up.get(owner, dataset, key)
    assert [(f.path, f.received) for f in status.files] == [
        ("data/big.bin", (0, 1, 2, 3)), ("data/sub/empty.txt", (0,)), ("top.csv", (0,))]  # fmt: skip
    assert services.datasets.list_files(owner, dataset, "") == []  # nothing lands before the end
    landed = end(services, owner, dataset, key)
    assert [e.path for e in landed.written] == ["data/big.bin", "data/sub/empty.txt", "top.csv"]
    assert read(services, owner, dataset, "data/big.bin")[1] == big
    assert read(services, owner, dataset, "data/sub/empty.txt")[1] == b""
    snap = services.datasets.create_snapshot(owner, dataset)
    assert end(services, owner, dataset, key) == landed  # ending again answers the same
    with pytest.raises(Conflict):
        send(services, owner, dataset, key, "late.txt", b"x")
    key2 = start(services, owner, dataset, "Overwrite")
    send(services, owner, dataset, key2, "top.csv", b"new")
    end(services, owner, dataset, key2, "")
    assert read(services, owner, dataset, "top.csv")[1] == b"new"
    assert read(services, owner, dataset, "top.csv", snapshot_id=snap.id)[1] == b"a,b\n1,2\n"


def test_collision_settings_and_target(services, owner, dataset):
    write(services, owner, dataset, "in/a.txt", b"old")
    write(services, owner, dataset, "in/b.txt/x", b"a directory named like the file")
    results = {}
    for setting in ("Ignore", "Rename"):
        key = start(services, owner, dataset, setting)
        send(services, owner, dataset, key, "a.txt", b"new " + setting.encode())
        send(services, owner, dataset, key, "b.txt", b"file over dir")
        results[setting] = end(services, owner, dataset, key, "in")
    assert results["Ignore"].skipped == ["a.txt", "b.txt"] and results["Ignore"].written == []
    assert results["Rename"].renamed == {"a.txt": "in/a_1.txt", "b.txt": "in/b_1.txt"}
    assert read(services, owner, dataset, "in/a.txt")[1] == b"old"
    assert read(services, owner, dataset, "in/a_1.txt")[1] == b"new Rename"
    key = start(services, owner, dataset, "Overwrite")
    send(services, owner, dataset, key, "b.txt", b"file over dir")
    with pytest.raises(Conflict, match="directory"):
        end(services, owner, dataset, key, "in")  # nothing lands, the batch stays open
    asyncio.run(services.dataset_uploads.cancel(owner, dataset, key))
    asyncio.run(services.dataset_uploads.cancel(owner, dataset, key))  # twice: no error
    with pytest.raises(Gone):
        end(services, owner, dataset, key)
    assert [e.name for e in services.datasets.list_files(owner, dataset, "in")] == ["a.txt", "a_1.txt", "b.txt",
                                                                                    "b_1.txt"]  # fmt: skip


def test_a_bad_checksum_keeps_nothing_and_missing_chunks_are_named(services, owner, dataset):
    key = start(services, owner, dataset)
    data = b"x" * (CHUNK * 2 + 5)
    with pytest.raises(InvalidInput, match="MD5") as exc:
        send(services, owner, dataset, key, "f.bin", data, [0], checksum="0" * 32)
    assert exc.value.code == "CHECKSUM_MISMATCH"
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(UploadChunkRow)) == 0
    send(services, owner, dataset, key, "f.bin", data, [0, 2])
    with pytest.raises(InvalidInput, match=r"f.bin \(2 of 3 chunks\)"):
        end(services, owner, dataset, key)
    send(services, owner, dataset, key, "f.bin", data, [1])
    assert read(services, owner, dataset, *[e.path for e in end(services, owner, dataset, key).written])[1] == data
    for bad, problem in (("../x", "'..'"), ("/etc/passwd", "relative"), ("a\x00b", "NUL")):
        with pytest.raises(InvalidInput, match=problem):
            send(services, owner, dataset, start(services, owner, dataset), bad, b"1")
    with pytest.raises(InvalidInput, match="unknown upload key"):
        send(services, owner, dataset, uuid.uuid4().hex, "a", b"1")
    with pytest.raises(InvalidInput, match="fileCollisionSetting"):
        services.dataset_uploads.start(owner, dataset, "Merge")
    with pytest.raises(InvalidInput, match="checksum"):
        services.dataset_uploads.has_chunk(owner, dataset, key, "1-a", 0, "nope")


def test_a_reader_cannot_upload_and_another_user_cannot_use_the_key(services, owner, dataset):
    reader = in_same_org(services, owner, "member")
    services.datasets.add_grant(owner, dataset, reader.user_id, READER)
    with pytest.raises(Forbidden):
        services.dataset_uploads.start(reader, dataset)
    key = start(services, owner, dataset)
    with pytest.raises(InvalidInput, match="unknown upload key"):
        send(services, reader, dataset, key, "a", b"1")
    stranger = member_of_new_org(services, "member")
    with pytest.raises(InvalidInput, match="unknown upload key"):
        services.dataset_uploads.get(stranger, dataset, key)


def test_an_unfinished_batch_is_taken_over_by_the_next_one(services, owner, dataset):
    """The client's re-run after it was killed: a new key; its tests find the chunks of the earlier batch (by
    identifier, number and MD5) and skip them; files sharing an identifier each keep their own chunks."""
    up = services.dataset_uploads
    data = b"0123456789" * 400  # 4,000 bytes: 4 chunks
    twin = b"0123456789" * 400  # same size, name and content, another directory
    old = start(services, owner, dataset)
    send(services, owner, dataset, old, "a/f.bin", data, [0, 1])
    send(services, owner, dataset, old, "b/f.bin", twin, [0])
    new = start(services, owner, dataset)
    parts = pieces(data)
    ident = f"{len(data)}-f.bin"
    asked = [(n, up.has_chunk(owner, dataset, new, ident, n, md5(parts[n]))) for n in range(4) for _ in (0, 1)]
    # chunk 0 is held twice (a/ and b/), chunk 1 once, chunks 2 and 3 not at all
    assert asked == [(0, True), (0, True), (1, True), (1, False), (2, False), (2, False), (3, False), (3, False)]
    assert up.has_chunk(owner, dataset, new, ident, 0, md5(parts[0])) is False  # both confirmed already
    assert up.has_chunk(owner, dataset, new, "4000-other.bin", 0, md5(parts[0])) is False
    send(services, owner, dataset, new, "a/f.bin", data, [2, 3])
    send(services, owner, dataset, new, "b/f.bin", twin, [1, 2, 3])
    assert {f.path: f.adopted for f in up.get(owner, dataset, new).files} == {"a/f.bin": True, "b/f.bin": True}
    assert up.get(owner, dataset, old).files == ()
    with services.db.uow(readonly=True) as s:  # the count each batch keeps (its file limit) followed the files
        assert (s.get(DatasetUploadRow, old).files, s.get(DatasetUploadRow, new).files) == (0, 2)
    end(services, owner, dataset, new)
    assert read(services, owner, dataset, "a/f.bin")[1] == data and read(services, owner, dataset, "b/f.bin")[1] == twin
    with services.db.uow(readonly=True) as s:  # one content, one record: the twin's record was dropped
        assert s.scalar(select(func.count()).select_from(ProjectFileBlobRow)) == 1
        assert (
            s.scalar(
                select(func.count()).select_from(FileRow).where(FileRow.sha256 == hashlib.sha256(data).hexdigest())
            )
            == 1
        )  # noqa: E501


def test_many_files_land_in_one_transaction(services, owner, dataset):
    key = start(services, owner, dataset)
    for i in range(60):
        send(services, owner, dataset, key, f"d{i % 3}/e{i % 2}/f{i}.txt", f"file {i}".encode())
    landed = end(services, owner, dataset, key)
    assert len(landed.written) == 60
    assert sorted(e.name for e in services.datasets.list_files(owner, dataset, "d1/e0")) == sorted(
        f"f{i}.txt" for i in range(60) if i % 3 == 1 and i % 2 == 0
    )
    assert read(services, owner, dataset, "d2/e1/f59.txt")[1] == b"file 59"


def test_dataset_content_is_not_read_through_the_project_files_blob_route(services, owner, dataset):
    """A Public project's members without a dataset role read the project's files, not its datasets' bytes, even
    knowing a blob key; once the project's files hold the same content, its key reads through them."""
    secret = b"only in the dataset " * 100
    key = start(services, owner, dataset)
    send(services, owner, dataset, key, "s.bin", secret)
    (entry,) = end(services, owner, dataset, key).written
    write(services, owner, dataset, "w.bin", b"written one file at a time")
    member = in_same_org(services, owner, "member")
    project_id = services.datasets.get(owner, dataset).project_id
    pf = services.project_files

    def blob(principal, k):
        async def go():
            o = await pf.open_blob(principal, project_id, k)
            return b"".join([p async for p in o.stream])

        return asyncio.run(go())

    other = services.datasets.list_files(owner, dataset, "w.bin")[0].key
    for k in (entry.key, other):
        for who in (member, owner):  # the blob route is the project files' own: not even the owner reads it there
            with pytest.raises(NotFound):
                blob(who, k)
    with pytest.raises(NotFound):
        services.datasets.list_files(member, dataset, "")  # no role on the dataset
    asyncio.run(pf.write(owner, project_id, "copy.bin", agen(secret)))
    assert blob(member, entry.key) == secret  # the project's files hold it now


def test_a_role_taken_away_mid_upload_stops_the_landing(services, owner, dataset):
    """The role is checked when the batch opens and when it lands: an editor whose grant goes away meanwhile sends
    chunks into their own batch, but nothing lands."""
    from modelharbor.core.dataset_access import EDITOR

    editor = in_same_org(services, owner, "member")
    services.datasets.add_grant(owner, dataset, editor.user_id, EDITOR)
    key = start(services, editor, dataset)
    send(services, editor, dataset, key, "a.txt", b"half")
    services.datasets.remove_grant(owner, dataset, editor.user_id, EDITOR)
    send(services, editor, dataset, key, "b.txt", b"more")  # their own batch
    with pytest.raises(NotFound):  # no role: the dataset reads as missing
        end(services, editor, dataset, key)
    assert services.datasets.list_files(owner, dataset, "") == []
