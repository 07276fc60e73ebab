"""Domino datasets in the core: create/get/update/list, grants (users and teams, project defaults), snapshots that
copy no byte and stay as they were when the head changes, tags, file listings and ranged reads, bad input."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import func, select

from modelharbor.core.dataset_access import EDITOR, OWNER, READER
from modelharbor.core.teams import TeamRole
from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.db.tables_datasets import DatasetSnapshotRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow, ProjectFileTreeRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from tests.factories import in_same_org, member_of_new_org


async def agen(data: bytes):
    yield data


def write(services, principal, dataset_id, path, data: bytes):
    return asyncio.run(services.datasets.write(principal, dataset_id, path, agen(data)))


def read(services, principal, dataset_id, path, *, snapshot_id=None, rng=None):
    async def go():
        opened = await services.datasets.open(principal, dataset_id, path, snapshot_id=snapshot_id, range_header=rng)
        return opened, b"".join([p async for p in opened.stream])

    return asyncio.run(go())


def counts(services) -> dict[str, int]:
    with services.db.uow(readonly=True) as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (ProjectFileTreeRow, ProjectFileBlobRow, FileRow, BlobRow)
        }


def store_objects(services) -> int:
    return sum(1 for p in services.settings.data_dir.rglob("*") if p.is_file() and "objects" in p.parts)


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def project(services, owner):
    return services.projects.create_project(owner, f"ds-{uuid.uuid4().hex[:6]}")


def test_create_get_update_list_delete(services, owner, project):
    ds = services.datasets
    d = ds.create(owner, project.id, " sales ", description="monthly")
    assert (d.name, d.description, d.project_id, d.role, d.snapshot_ids, d.tags) == (
        "sales", "monthly", project.id, OWNER, [], {},
    )  # fmt: skip
    assert len(d.id) == 24 and d.project_name == project.name and d.project_owner == owner.username
    assert ds.get(owner, d.id) == d
    with pytest.raises(InvalidInput, match="already exists"):
        ds.create(owner, project.id, "sales")
    other = ds.create(owner, project.id, "other")
    assert ds.update(owner, d.id, name="sales-2", description="").name == "sales-2"
    with pytest.raises(InvalidInput, match="already exists"):
        ds.update(owner, d.id, name="other")
    found, total = ds.list(owner, project_id=project.id)
    assert total == 2 and {x.id for x in found} == {d.id, other.id}
    assert ds.list(owner, project_id=project.id, limit=1)[0][0].id == other.id  # newest first
    assert ds.list(owner, exclude=[project.id]) == ([], 0)
    assert [x.id for x in ds.list(owner, name="sales-2")[0]] == [d.id]
    assert ds.list(owner, project_id=project.id, name="sales") == ([], 0)
    assert ds.delete(owner, other.id).id == other.id
    with pytest.raises(NotFound):
        ds.get(owner, other.id)
    for bad in ("nope", "a" * 24, "\x00" * 24):
        with pytest.raises(NotFound):
            ds.get(owner, bad)
    for bad in ("", "  ", "x" * 300, "a\x00b"):
        with pytest.raises(InvalidInput, match="name"):
            ds.create(owner, project.id, bad)


def test_roles_defaults_and_grants(services, owner, project):
    ds = services.datasets
    d = ds.create(owner, project.id, "shared")
    contributor = in_same_org(services, owner, "member")
    consumer = in_same_org(services, owner, "member")
    outsider = in_same_org(services, owner, "member")
    foreign = member_of_new_org(services, "owner")
    services.projects.set_collaborator(owner, project.id, contributor.user_id, "Contributor")
    services.projects.set_collaborator(owner, project.id, consumer.user_id, "ResultsConsumer")
    assert ds.get(contributor, d.id).role == EDITOR and ds.get(consumer, d.id).role == READER
    for nobody in (outsider, foreign):
        with pytest.raises(NotFound):
            ds.get(nobody, d.id)
        assert ds.list(nobody) == ([], 0)
    # a reader cannot write, an editor cannot grant
    with pytest.raises(Forbidden):
        ds.update(consumer, d.id, description="x")
    with pytest.raises(Forbidden):
        ds.create_snapshot(consumer, d.id)
    with pytest.raises(Forbidden):
        ds.add_grant(contributor, d.id, outsider.user_id, READER)
    with pytest.raises(Forbidden):
        ds.delete(contributor, d.id)
    # grants to a user (by id or username) and to a team
    grants = ds.add_grant(owner, d.id, outsider.username, "datasetrwreader")
    assert (outsider.user_id, READER, False) in {(g.target_id, g.role, g.is_team) for g in grants}
    assert ds.get(outsider, d.id).role == READER
    assert [x.id for x in ds.list(outsider)[0]] == [d.id]
    assert ds.list(outsider, minimum=EDITOR) == ([], 0)
    team = services.teams.create(owner, f"t-{uuid.uuid4().hex[:6]}", [(outsider.user_id, TeamRole.MEMBER)])
    ds.add_grant(owner, d.id, team.id, EDITOR)
    assert ds.get(outsider, d.id).role == EDITOR  # the highest of its own and its team's
    named = {g.target_id: (g.target_name, g.is_team) for g in ds.grants(outsider, d.id)}
    assert named[team.id] == (team.name, True) and named[owner.user_id] == (owner.username, False)
    with pytest.raises(NotFound):
        ds.remove_grant(owner, d.id, team.id, READER)  # not the role it has
    ds.remove_grant(owner, d.id, team.id, EDITOR)
    assert outsider.user_id in {g.target_id for g in ds.add_grant(owner, d.id, outsider.username, READER)}
    remaining = ds.remove_grant(owner, d.id, outsider.username, READER)  # by username, as grants are given
    assert [g.target_name for g in remaining] == [owner.username]
    with pytest.raises(NotFound):
        ds.get(outsider, d.id)
    with pytest.raises(InvalidInput, match="targetRole"):
        ds.add_grant(owner, d.id, outsider.user_id, "Admin")
    with pytest.raises(NotFound, match="targetId"):
        ds.add_grant(owner, d.id, foreign.user_id, READER)  # not a member of the organisation
    with pytest.raises(NotFound, match="targetId"):
        ds.add_grant(owner, d.id, "ghost", READER)
    with pytest.raises(Forbidden):  # creating takes project write
        ds.create(consumer, project.id, "mine")


def test_snapshots_copy_nothing_and_stay(services, owner, project):
    ds = services.datasets
    d = ds.create(owner, project.id, "frozen")
    write(services, owner, d.id, "a.txt", b"alpha")
    write(services, owner, d.id, "dir/b.txt", b"0123456789")
    before, objects = counts(services), store_objects(services)
    snap = ds.create_snapshot(owner, d.id)
    assert counts(services) == before and store_objects(services) == objects  # one row; no byte, no node
    assert snap.size == 15 and snap.status == "active" and snap.dataset_id == d.id
    # the head changes; the snapshot does not
    write(services, owner, d.id, "a.txt", b"ALPHA!")
    write(services, owner, d.id, "new.txt", b"n")
    assert read(services, owner, d.id, "a.txt")[1] == b"ALPHA!"
    assert read(services, owner, d.id, "a.txt", snapshot_id=snap.id)[1] == b"alpha"
    assert [e.name for e in ds.list_files(owner, d.id, snapshot_id=snap.id)] == ["a.txt", "dir"]
    assert [e.name for e in ds.list_files(owner, d.id)] == ["a.txt", "dir", "new.txt"]
    assert [(e.path, e.size) for e in ds.list_files(owner, d.id, "dir")] == [("dir/b.txt", 10)]
    opened, body = read(services, owner, d.id, "/dir/b.txt", snapshot_id=snap.id, rng="bytes=2-4")
    assert body == b"234" and opened.range is not None
    # a snapshot of some paths
    part = ds.create_snapshot(owner, d.id, ["dir", "new.txt"])
    assert [e.name for e in ds.list_files(owner, d.id, snapshot_id=part.id)] == ["dir", "new.txt"]
    assert part.size == 11
    with pytest.raises(NotFound):
        ds.create_snapshot(owner, d.id, ["missing.txt"])
    page, total = ds.snapshots(owner, d.id, limit=1)
    assert total == 2 and [s.id for s in page] == [part.id]
    assert ds.snapshot(owner, snap.id) == snap
    assert ds.get(owner, d.id).snapshot_ids == [part.id, snap.id]
    # tags name snapshots
    assert ds.add_tag(owner, d.id, "v1", snap.id).tags == {"v1": snap.id}
    assert ds.add_tag(owner, d.id, "v1", part.id).tags == {"v1": part.id}
    other = ds.create(owner, project.id, "other")
    with pytest.raises(NotFound):
        ds.add_tag(owner, other.id, "x", snap.id)  # a snapshot of another dataset
    assert ds.remove_tag(owner, d.id, "v1").tags == {}
    with pytest.raises(NotFound):
        ds.remove_tag(owner, d.id, "v1")
    with pytest.raises(NotFound):
        ds.list_files(owner, other.id, snapshot_id=snap.id)
    # a dataset started from a snapshot shares its files
    copy = ds.create(owner, project.id, "from-snap", snapshot_id=snap.id)
    assert read(services, owner, copy.id, "a.txt")[1] == b"alpha"
    # paths: relative, no '..', no NUL
    for bad in ("../x", "/etc/passwd", "a\x00b"):
        with pytest.raises(InvalidInput, match="path"):
            write(services, owner, d.id, bad, b"x")
    with pytest.raises(InvalidInput, match="relativeFilePaths"):
        ds.create_snapshot(owner, d.id, ["../up"])
    with pytest.raises(InvalidInput, match="path"):
        ds.list_files(owner, d.id, "a/../../b")


def test_snapshot_of_many_files_is_one_row(services, owner, project):
    """A head of 10,000 files (nodes written straight, as the upload would) freezes in one row, well under a
    second."""
    from modelharbor.core.project_files import trees
    from modelharbor.db.tables_datasets import DatasetRow

    d = services.datasets.create(owner, project.id, "big")
    with services.db.uow() as s:
        dirs = []
        for i in range(100):
            node = trees.store(s, project.id, [[f"f{j:03}", trees.FILE, f"{i:020}{j:020}", 1, 0] for j in range(100)])
            dirs.append([f"d{i:03}", trees.DIR, node, 100, 0])
        s.get(DatasetRow, d.id).head_tree = trees.store(s, project.id, dirs)
    before = counts(services)
    started = time.perf_counter()
    snap = services.datasets.create_snapshot(owner, d.id)
    assert time.perf_counter() - started < 1.0
    assert counts(services) == before and snap.size == 10_000
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(DatasetSnapshotRow)) >= 1
    assert len(services.datasets.list_files(owner, d.id, "d042", snapshot_id=snap.id)) == 100


def test_archived_project_is_read_only(services, owner, project):
    ds = services.datasets
    d = ds.create(owner, project.id, "arch")
    services.project_settings.archive(owner, project.id)
    assert ds.get(owner, d.id).project_archived is True
    with pytest.raises(Forbidden):
        ds.update(owner, d.id, description="x")
    with pytest.raises(Forbidden):
        write(services, owner, d.id, "a.txt", b"x")
    assert ds.list(owner, archived=False) == ([], 0)


def test_project_delete_takes_its_datasets(services, owner, project):
    d = services.datasets.create(owner, project.id, "gone")
    services.projects.delete_project(owner, project.id)
    with pytest.raises(NotFound):
        services.datasets.get(owner, d.id)


def test_shared_datasets(services, owner, project):
    ds = services.datasets
    d = ds.create(owner, project.id, "source")
    colleague = in_same_org(services, owner, "member")
    theirs = services.projects.create_project(colleague, f"use-{uuid.uuid4().hex[:6]}")
    with pytest.raises(NotFound):  # the colleague has no role on the dataset: it is not there for them
        ds.link(colleague, theirs.id, d.id)
    ds.add_grant(owner, d.id, colleague.user_id, READER)
    assert ds.link(colleague, theirs.id, d.id) == [d.id]
    assert ds.link(colleague, theirs.id, d.id) == [d.id]  # linking again changes nothing
    with pytest.raises(InvalidInput, match="datasetId"):
        ds.link(owner, project.id, d.id)  # its own project
    # read access follows the grants: a member of the using project without a role on the dataset does not see it
    services.projects.set_collaborator(colleague, theirs.id, owner.user_id, "Contributor")
    other = in_same_org(services, owner, "member")
    services.projects.set_collaborator(colleague, theirs.id, other.user_id, "ResultsConsumer")
    assert ds.shared(owner, theirs.id) == [d.id] and ds.shared(other, theirs.id) == []
    ds.add_grant(owner, d.id, other.user_id, READER)
    assert ds.shared(other, theirs.id) == [d.id]
    with pytest.raises(Forbidden):  # linking takes project write on the using project
        ds.unlink(other, theirs.id, d.id)
    ds.remove_grant(owner, d.id, colleague.user_id, READER)
    assert ds.shared(colleague, theirs.id) == []
    ds.unlink(colleague, theirs.id, d.id)
    with pytest.raises(NotFound):
        ds.unlink(colleague, theirs.id, d.id)
    ds.add_grant(owner, d.id, colleague.user_id, READER)
    ds.link(colleague, theirs.id, d.id)
    ds.delete(owner, d.id)  # deleting the dataset takes its links
    assert ds.shared(colleague, theirs.id) == []
