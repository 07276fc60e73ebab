"""Versioned project files in the core: commits, listings, reads, shared structure, path rules, cut-off writes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from modelharbor.core.project_files import normalise
from modelharbor.db.tables import BlobRow, FileRow, PendingObjectRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow, ProjectFileCommitRow, ProjectFileTreeRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from tests.factories import in_same_org, member_of_new_org


async def agen(data: bytes, piece: int = 5):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


async def cut_off(data: bytes):
    yield data
    raise ConnectionResetError("client went away")


def write(services, principal, ref, path, data: bytes, **kw):
    return asyncio.run(services.project_files.write(principal, ref, path, agen(data), **kw))


def read(services, principal, ref, commit, path, rng=None):
    async def go():
        opened = await services.project_files.open(principal, ref, commit, path, rng)
        return opened, b"".join([p async for p in opened.stream])

    return asyncio.run(go())


def counts(services) -> dict[str, int]:
    with services.db.uow(readonly=True) as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (ProjectFileCommitRow, ProjectFileTreeRow, ProjectFileBlobRow, FileRow, BlobRow)
        }


def store_keys(services) -> list[str]:
    root = services.settings.data_dir
    return [p for p in root.rglob("*") if p.is_file() and "objects" in p.parts]


@pytest.fixture
def project(services, admin):
    return services.projects.create_project(admin, f"p-{uuid.uuid4().hex[:6]}")


def test_commits_listing_reads_and_sharing(services, admin, project):
    pf = services.project_files
    assert pf.commits(admin, project.id) == []
    assert pf.list(admin, project.id).entries == []
    c1 = write(services, admin, project.id, "README.md", b"hello")
    c2 = write(services, admin, project.id, "src/a/train.py", b"print(1)")
    c3 = write(services, admin, project.id, "src/a/train.py", b"print(2)")
    assert [c.id for c in pf.commits(admin, project.id)] == [c3.id, c2.id, c1.id]
    assert all(len(c.id) == 40 and int(c.id, 16) >= 0 for c in (c1, c2, c3))
    assert (c3.number, c3.parent_id, c3.path, c3.author) == (3, c2.id, "src/a/train.py", "admin")
    root = pf.list(admin, project.id, c3.id, "/")
    assert [(e.name, e.is_dir) for e in root.entries] == [("README.md", False), ("src", True)]
    assert pf.list(admin, project.id, c1.id, "").entries[0].path == "README.md"
    listing = pf.list(admin, project.id, None, "src//a/")
    assert [(e.path, e.size) for e in listing.entries] == [("src/a/train.py", 8)]
    assert listing.commit.id == c3.id
    assert read(services, admin, project.id, c2.id, "src/a/train.py")[1] == b"print(1)"
    assert read(services, admin, project.id, None, "/src/a/train.py")[1] == b"print(2)"
    opened, part = read(services, admin, project.id, c3.id, "src/a/train.py", "bytes=6-")
    assert part == b"2)" and opened.range.start == 6
    # a file listed by its own path; its key fetches the blob
    (entry,) = pf.list(admin, project.id, c3.id, "README.md").entries
    assert len(entry.key) == 40

    async def blob():
        o = await pf.open_blob(admin, project.id, entry.key)
        return b"".join([p async for p in o.stream])

    assert asyncio.run(blob()) == b"hello"
    # owner/name addressing
    assert pf.commits(admin, ("admin", project.name))[0].id == c3.id
    # the old commit still shows the old tree (structural sharing keeps it intact)
    assert pf.list(admin, project.id, c1.id).entries[0].name == "README.md"
    with pytest.raises(NotFound):
        pf.list(admin, project.id, c1.id, "src")


def test_one_changed_file_writes_few_rows(services, admin, project):
    for d in range(5):
        for f in range(20):
            write(services, admin, project.id, f"d{d}/f{f}.txt", f"{d}-{f}".encode())
    before = counts(services)
    write(services, admin, project.id, "d3/f7.txt", b"changed")
    after = counts(services)
    diff = {k: after[k] - before[k] for k in after}
    assert diff == {
        "project_file_commits": 1,
        "project_file_trees": 2,  # the root and d3: the other directories are shared
        "project_file_blobs": 1,
        "files": 1,
        "blobs": 1,
    }
    # the same content again elsewhere: no new bytes, no new blob
    write(services, admin, project.id, "copy.txt", b"changed")
    again = counts(services)
    assert (again["files"], again["blobs"], again["project_file_blobs"]) == (
        after["files"],
        after["blobs"],
        after["project_file_blobs"],
    )


def test_empty_commit_and_path_conflicts_refused(services, admin, project):
    write(services, admin, project.id, "a/b.txt", b"x")
    before, keys = counts(services), store_keys(services)
    with pytest.raises(InvalidInput, match="empty commit"):
        write(services, admin, project.id, "a/b.txt", b"x")
    with pytest.raises(InvalidInput, match="is a directory"):
        write(services, admin, project.id, "a", b"y")
    with pytest.raises(InvalidInput, match="is a file"):
        write(services, admin, project.id, "a/b.txt/c", b"y")
    assert counts(services) == before and store_keys(services) == keys


@pytest.mark.parametrize(
    "path,message",
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "relative"),
        ("a\x00b", "NUL"),
        ("a\\b", "'/'"),
        ("", "must name a file"),
        ("./", "must name a file"),
        ("a\nb", "control"),
        ("x" * 300, "at most"),
    ],
)
def test_bad_paths_refused_before_any_byte(services, admin, project, path, message):
    before = counts(services)
    with pytest.raises(InvalidInput, match=message):
        write(services, admin, project.id, path, b"data")
    assert counts(services) == before


def test_normalise():
    assert normalise("a//b/./c/") == "a/b/c"
    assert normalise("/", absolute_ok=True) == ""
    assert normalise("//x", absolute_ok=True) == "x"


def test_cut_off_upload_leaves_nothing(services, admin, project):
    write(services, admin, project.id, "keep.txt", b"k")
    before, keys = counts(services), store_keys(services)

    async def go():
        await services.project_files.write(admin, project.id, "big.bin", cut_off(b"partial" * 1000))

    with pytest.raises(ConnectionResetError):
        asyncio.run(go())
    assert counts(services) == before and store_keys(services) == keys
    assert len(services.project_files.commits(admin, project.id)) == 1


def test_permissions_and_foreign_projects(services, admin, project):
    write(services, admin, project.id, "a.txt", b"a")
    vp = in_same_org(services, admin, "member")
    assert [e.name for e in services.project_files.list(vp, project.id).entries] == ["a.txt"]
    with pytest.raises(Forbidden):
        write(services, vp, project.id, "b.txt", b"b")
    services.projects.set_collaborator(admin, project.id, vp.user_id, "Contributor")
    assert write(services, vp, project.id, "b.txt", b"b").author == vp.username
    xp = member_of_new_org(services)
    with pytest.raises(NotFound):
        services.project_files.commits(xp, project.id)
    with pytest.raises(NotFound):
        write(services, xp, project.id, "c.txt", b"c")
    with pytest.raises(NotFound):
        services.project_files.list(admin, project.id, "f" * 40)
    with pytest.raises(InvalidInput):
        services.project_files.list(admin, project.id, "nope")


def test_a_refused_write_reads_no_byte_and_leaves_no_intent(services, admin, project):
    """The permission check runs in the transaction of the fresh object's intent, before the body is read."""
    vp = in_same_org(services, admin, "member")
    xp = member_of_new_org(services)
    pulled: list[bytes] = []

    async def body():
        pulled.append(b"x")
        yield b"x"

    def intents() -> int:
        with services.db.uow(readonly=True) as s:
            return s.scalar(select(func.count()).select_from(PendingObjectRow))

    before, keys, pending = counts(services), store_keys(services), intents()
    for who, fault in ((vp, Forbidden), (xp, NotFound)):
        with pytest.raises(fault):
            asyncio.run(services.project_files.write(who, project.id, "x.txt", body()))
    assert pulled == [] and intents() == pending
    assert counts(services) == before and store_keys(services) == keys


def test_deleting_the_project_deletes_its_files(services, admin, project):
    before, keys = counts(services), store_keys(services)
    write(services, admin, project.id, "a/b.bin", b"bytes of b")
    assert counts(services) != before
    asyncio.run(_delete(services, admin, project.id))
    assert counts(services) == before and store_keys(services) == keys


async def _delete(services, admin, project_id):
    stale = await asyncio.to_thread(services.projects.delete_project, admin, project_id)
    await services.store.delete(stale)
