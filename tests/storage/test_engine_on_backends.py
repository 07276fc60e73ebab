"""The whole upload engine and file service on each blob backend (S3 through a real S3-protocol server)."""

from __future__ import annotations

import asyncio
import hashlib
import os

from modelharbor.api.inputs import deployment_in, version_in
from modelharbor.services import build_services
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


def test_project_export_and_import_on_each_backend(store: BlobStore, tmp_path, sqlite_url):
    """A project export read back by imports: in the same organisation the package's bytes are linked (not stored
    again), in another they are stored again; both revisions hold the package and build."""
    import io
    import zipfile

    from tests.factories import member_of_new_org

    services = build_services(make_settings(tmp_path, sqlite_url), store=store)
    services.identity.ensure_admin("admin", key=ADMIN_KEY)
    owner, stranger = member_of_new_org(services, "owner"), member_of_new_org(services, "owner")
    sv, tr = services.serving, services.transfer
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(
            "deployment.py",
            "class Deployment:\n    def __init__(self, b, c):\n        pass\n\n    def request(self, data):\n        return data\n",
        )
        zf.writestr("weights.bin", os.urandom(3 * 1024 * 1024 + 17))
    package = buf.getvalue()
    services.projects.create_project(owner, "src")
    sv.create_deployment(owner, "src", deployment_in({"name": "d", "input_type": "plain", "output_type": "plain"}))
    sv.create_version(owner, "src", "d", version_in({"version": "v1"}, creating=True))
    asyncio.run(sv.upload_revision(owner, "src", "d", "v1", agen(package, 1 << 18), "p.zip"))
    run_pending(services)
    e = tr.create_export(owner, "src", {}, all_objects=True)
    run_pending(services)
    file_id, _ = tr.export_file(owner, "src", e.id)
    with services.files.open_reader(file_id) as reader:
        data = reader.read()
    objects = len(asyncio.run(store.list("objects/")))

    services.projects.create_project(owner, "dst")
    imp = tr.create_import(owner, "dst", file_id=file_id, skip_confirmation=True)
    run_pending(services)
    assert tr.get_import(owner, "dst", imp.id).status == "completed"
    assert len(asyncio.run(store.list("objects/"))) == objects  # linked: nothing stored

    services.projects.create_project(stranger, "mine")
    record = asyncio.run(services.files.upload(stranger, name="x.zip", data=agen(data)))
    imp = tr.create_import(stranger, "mine", file_id=record.id, skip_confirmation=True)
    run_pending(services)
    assert tr.get_import(stranger, "mine", imp.id).status == "completed"

    for who, project in ((owner, "dst"), (stranger, "mine")):
        v = sv.get_version(who, project, "d", "v1")
        rev = sv.get_revision(who, project, "d", "v1", v.latest_revision)
        assert v.status == "available", rev.error_message
        with services.files.open_reader(rev.file_id) as reader:
            assert reader.read() == package
    services.close()


def test_segmented_reader_reads_into_the_callers_buffer_across_segments(store: BlobStore):
    """``SegmentedReader.readinto`` fills the caller's buffer straight from each segment (no copy in between)."""
    import io

    from modelharbor.core.files import SegmentedReader

    parts = [os.urandom(n) for n in (70_000, 0, 5, 300_001)]
    segments = []
    for i, part in enumerate(parts):
        asyncio.run(store.put_bytes(f"seg/{i}", part))
        segments.append((f"seg/{i}", len(part)))
    data = b"".join(parts)
    raw = SegmentedReader(store, segments)
    buf = bytearray(100_000)
    assert raw.readinto(buf) == 70_000 and bytes(buf[:70_000]) == data[:70_000]  # up to the segment's end
    raw.seek(69_998)
    view = memoryview(bytearray(8)).cast("B")
    n = raw.readinto(view)
    assert n == 2 and bytes(view[:2]) == data[69_998:70_000]
    assert raw.readinto(view) == 5 and bytes(view[:5]) == data[70_000:70_005]  # the empty segment is skipped
    raw.seek(0)
    with io.BufferedReader(raw, buffer_size=1 << 16) as reader:
        assert reader.read(123_456) == data[:123_456]  # across segments
        reader.seek(-10, io.SEEK_END)
        assert reader.read() == data[-10:]
        reader.seek(0)
        assert reader.read() == data
        assert reader.read(1) == b""
