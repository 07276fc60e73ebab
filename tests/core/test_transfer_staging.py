"""Imports write packages before they commit (the scan of an import without confirmation writes them while it reads
the zip): whatever fails, is left out or crashes leaves no bytes behind, and nothing shows before the commit."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from modelharbor.api.inputs import deployment_in
from modelharbor.core.clock import now
from modelharbor.core.transfer import staging
from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.db.tables_transfer import ProjectImportRow
from modelharbor.domain.errors import InvalidInput
from tests.core.test_transfer import DEPLOYMENT, GOOD, INFO, chunks, counts, zip_of
from tests.factories import member_of_new_org

ROOT = "exp/deployments/deployment_d1/versions/"


@pytest.fixture
def owner(services):
    who = member_of_new_org(services, "member")
    services.projects.create_project(who, "dst")
    return who


@pytest.fixture
def tr(services):
    return services.transfer


def package(seed: int) -> bytes:
    return zip_of({"deployment.py": GOOD, "weights.bin": random.Random(seed).randbytes(300_000)})


def two_versions(p1: bytes, p2: bytes, *, extra: bytes | None = None, stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("exp/info.yaml", INFO)
        zf.writestr("exp/deployments/deployment_d1/deployment_d1.yaml", DEPLOYMENT)
        zf.writestr(ROOT + "deployment_d1_version_v1.yaml", "version_name: v1\n")
        zf.writestr(ROOT + "deployment_d1_version_v1.zip", p1)
        zf.writestr(ROOT + "deployment_d1_version_v2.yaml", "version_name: v2\n")
        zf.writestr(ROOT + "deployment_d1_version_v2.zip", p2)
        if extra is not None:  # a package no version names
            zf.writestr(ROOT + "deployment_d1_version_v9.zip", extra)
    return buf.getvalue()


def start(services, owner, data: bytes, *, skip=True):
    record = asyncio.run(services.transfer.store_import_file(owner, chunks(data), "upload.zip"))
    return services.transfer.create_import(owner, "dst", file=record, skip_confirmation=skip)


def run(services, imp, stage="scan"):
    return services.transfer.run_import({"import_id": imp.id, "stage": stage}, lambda p: None, services.pipelines)


def objects(services) -> dict[str, str]:
    """Every object in the store → the SHA-256 of its bytes."""
    store = services.files.store
    out = {}
    for key in asyncio.run(store.list()):
        with store.open_reader(key) as f:
            out[key] = hashlib.sha256(f.read()).hexdigest()
    return out


def assert_no_orphans(services) -> None:
    """Every object in the store is a segment of a blob some file points at; no staged prefix is left named."""
    with services.db.uow(readonly=True) as s:
        used = {k for segs in s.scalars(select(BlobRow.segments)) for k, _ in segs}
        shas = set(s.scalars(select(BlobRow.sha256)))
        assert shas == set(s.scalars(select(FileRow.sha256)))
        for created in s.scalars(select(ProjectImportRow.created)):
            assert staging.staged_prefixes(created) == []
    assert set(asyncio.run(services.files.store.list())) == used


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_scan_writes_each_package_once_and_the_import_keeps_only_what_it_imported(services, owner, tr):
    p1, p2, extra = package(1), package(2), package(3)
    imp = start(services, owner, two_versions(p1, p2, extra=extra, stored=True))
    reads = []
    original = tr._stage_member
    tr._stage_member = lambda *a: reads.append(a) or original(*a)  # a second read of a package would go here
    out = run(services, imp)
    assert out["status"] == "completed", out
    assert reads == []
    stored = set(objects(services).values())
    assert {sha(p1), sha(p2)} <= stored and sha(extra) not in stored  # the unnamed package was written, then went
    assert any(k.startswith(staging.STAGE_ROOT) for k in objects(services))  # files point at staged keys
    for v, p in (("v1", p1), ("v2", p2)):
        ver = services.serving.get_version(owner, "dst", "d1", v)
        rev = services.serving.get_revision(owner, "dst", "d1", v, ver.latest_revision)
        with services.files.open_reader(rev.file_id) as r:
            assert r.read() == p
    assert_no_orphans(services)
    # deleting the import keeps what it created; deleting the deployment takes the bytes along
    tr.delete_import(owner, "dst", imp.id)
    assert_no_orphans(services)
    services.serving.delete_deployment(owner, "dst", "d1")
    assert not {sha(p1), sha(p2)} & set(objects(services).values())
    assert_no_orphans(services)


def test_nothing_shows_before_the_commit(services, owner, tr, monkeypatch):
    """While the scan writes packages no file row, revision or deployment of them exists."""
    imp = start(services, owner, two_versions(package(1), package(2)))
    with services.db.uow(readonly=True) as s:
        files_before = len(list(s.scalars(select(FileRow.id))))
    seen = []
    original = tr._process

    def process(*a, **k):
        with services.db.uow(readonly=True) as s:
            seen.append((len(list(s.scalars(select(FileRow.id)))), counts(services, "dst")))
        staged = k["stager"]
        assert len(staged.entries) == 2 and all(
            services.files.store.local_path(key).exists() for key, *_ in staged.entries.values()
        )
        return original(*a, **k)

    monkeypatch.setattr(tr, "_process", process)
    assert run(services, imp)["status"] == "completed"
    assert seen == [(files_before, (0, 0, 0, 0))]


def test_a_damaged_package_after_a_written_one_leaves_no_bytes(services, owner, tr):
    p1, noise = package(1), random.Random(9).randbytes(200_000)
    data = bytearray(two_versions(p1, noise, stored=True))
    at = data.find(noise[:64]) + 50_000
    data[at : at + 100] = b"\xff" * 100  # breaks the second package's CRC
    before = objects(services)
    imp = start(services, owner, bytes(data))
    out = run(services, imp)
    assert out["status"] == "failed" and "damaged" in out["error"], out
    after = objects(services)
    assert sha(p1) not in after.values() and len(after) == len(before) + 1  # only the import's zip
    assert_no_orphans(services)


def test_a_processing_that_fails_after_the_scan_wrote_leaves_no_bytes(services, owner, tr):
    services.serving.create_deployment(owner, "dst", deployment_in({"name": "d1"}))  # a clash: nothing is imported
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    out = run(services, imp)
    assert out["status"] == "failed" and "Already in project" in out["error"], out
    assert not {sha(p1), sha(p2)} & set(objects(services).values())
    assert_no_orphans(services)


def test_a_revision_that_fails_after_a_committed_package_undoes_everything(services, owner, tr, monkeypatch):
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    original, calls = services.serving.new_revision_from_file, []

    def flaky(*a, **k):
        calls.append(a)
        if len(calls) == 2:
            raise InvalidInput("no second revision")
        return original(*a, **k)

    monkeypatch.setattr(services.serving, "new_revision_from_file", flaky)
    out = run(services, imp)
    assert out["status"] == "failed" and "no second revision" in out["error"], out
    assert counts(services, "dst") == (0, 0, 0, 0)
    assert not {sha(p1), sha(p2)} & set(objects(services).values())
    assert_no_orphans(services)


def test_a_package_left_out_at_confirmation_is_never_stored(services, owner, tr):
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2), skip=False)
    assert run(services, imp)["status"] == "confirmation"
    assert not {sha(p1), sha(p2)} & set(objects(services).values())  # the scan of a confirmed import writes none
    content = json.loads(json.dumps(tr.get_import(owner, "dst", imp.id).content))
    content["deployments"]["d1"]["versions"].pop("v2")
    tr.confirm_import(owner, "dst", imp.id, content)
    assert run(services, imp, "process")["status"] == "completed"
    stored = set(objects(services).values())
    assert sha(p1) in stored and sha(p2) not in stored
    assert_no_orphans(services)


class Crash(BaseException):
    """The worker dies (nothing of the import's own clean-up runs)."""


def crash_after_scan(tr, monkeypatch):
    def die(*a, **k):
        raise Crash

    monkeypatch.setattr(tr, "_process", die)


def make_stale(services, imp) -> None:
    with services.db.uow() as s:
        s.get(ProjectImportRow, imp.id).updated_at = now() - timedelta(seconds=2 * staging.STALE)


def staged_keys(services) -> list[str]:
    return asyncio.run(services.files.store.list(staging.STAGE_ROOT))


def test_a_crash_between_writing_and_committing_is_swept(services, owner, tr, monkeypatch):
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    crash_after_scan(tr, monkeypatch)
    with pytest.raises(Crash):
        run(services, imp)
    assert len(staged_keys(services)) == 2  # written, fsync'd, named in the import's row; no file points at them
    assert counts(services, "dst") == (0, 0, 0, 0)
    assert tr.sweep_staged() == 0  # the import may still be running: left alone
    assert len(staged_keys(services)) == 2
    make_stale(services, imp)
    assert tr.sweep_staged() == 1
    assert staged_keys(services) == []
    assert_no_orphans(services)
    assert tr.sweep_staged() == 0


def test_a_crashed_import_retried_by_its_task_cleans_the_first_attempt(services, owner, tr, monkeypatch):
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    crash_after_scan(tr, monkeypatch)
    with pytest.raises(Crash):
        run(services, imp)
    monkeypatch.undo()
    assert run(services, imp)["status"] == "completed"  # the lease expired: the task runs again
    assert len(staged_keys(services)) == 2  # the second attempt's, which the files point at
    assert_no_orphans(services)


def test_a_crash_while_committing_is_undone_on_resume(services, owner, tr, monkeypatch):
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    original, calls = tr._commit_staged, []

    def commit(*a, **k):
        calls.append(a)
        if len(calls) == 2:
            raise Crash
        return original(*a, **k)

    monkeypatch.setattr(tr, "_commit_staged", commit)
    monkeypatch.setattr(tr, "_undo", lambda *a, **k: None)  # a killed worker undoes nothing
    with pytest.raises(Crash):
        run(services, imp)
    assert counts(services, "dst")[0] == 1  # half-way: a deployment with one committed package
    monkeypatch.undo()
    assert run(services, imp)["status"] == "completed"  # resumed: undone, then imported again
    assert_no_orphans(services)
    assert len(staged_keys(services)) == 2


def test_deleting_a_crashed_import_removes_what_it_wrote(services, owner, tr, monkeypatch):
    imp = start(services, owner, two_versions(package(1), package(2)))
    crash_after_scan(tr, monkeypatch)
    with pytest.raises(Crash):
        run(services, imp)
    make_stale(services, imp)
    tr.delete_import(owner, "dst", imp.id)
    assert staged_keys(services) == []
    assert_no_orphans(services)


def test_deleting_the_project_of_a_crashed_import_removes_what_it_wrote(services, owner, tr, monkeypatch):
    imp = start(services, owner, two_versions(package(1), package(2)))
    crash_after_scan(tr, monkeypatch)
    with pytest.raises(Crash):
        run(services, imp)
    services.serving.delete_project(owner, "dst")
    assert staged_keys(services) == []
    assert_no_orphans(services)


def test_an_import_deleted_while_it_writes_commits_nothing(services, owner, tr, monkeypatch):
    """The commit checks, under the import row's lock, that the row still names the prefix: a deletion (or a
    clean-up that retired the prefix) in between makes the worker stop and remove its bytes."""
    p1, p2 = package(1), package(2)
    imp = start(services, owner, two_versions(p1, p2))
    original = tr._commit_staged

    def commit(*a, **k):
        with services.db.uow() as s:
            s.delete(s.get(ProjectImportRow, imp.id))
        return original(*a, **k)

    monkeypatch.setattr(tr, "_commit_staged", commit)
    run(services, imp)
    assert not {sha(p1), sha(p2)} & set(objects(services).values())
    assert_no_orphans(services)
