"""Resuming whatever the chunk size, fingerprints, declared SHA-256s and deduplication at start (core/files/resume.py),
against real SQLite/PostgreSQL and the real local store."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from modelharbor.core.files import resume
from modelharbor.domain.errors import InvalidInput, TooLarge
from modelharbor.tasks.runner import run_pending
from tests.core.test_uploads import complete, put
from tests.factories import in_same_org, member_of_new_org

MiB = 1 << 20


def fingerprint(data: bytes) -> str:
    return resume.fingerprint(len(data), data[:MiB], data[-MiB:] if data else b"")


def cut(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, max(len(data), 1), chunk_size)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the fingerprint -------------------------------------------------------------------------------------------


def test_the_fingerprint_is_size_newline_first_and_last_mib():
    data = os.urandom(3 * MiB + 5)
    want = hashlib.sha256(str(len(data)).encode() + b"\n" + data[:MiB] + data[-MiB:]).hexdigest()
    assert fingerprint(data) == want
    small = b"hello"  # shorter than a MiB: both pieces are the whole file
    assert fingerprint(small) == hashlib.sha256(b"5\nhellohello").hexdigest()
    changed = data[:MiB] + b"x" + data[MiB + 1 :]  # a byte between the two pieces: the same fingerprint
    assert fingerprint(changed) == fingerprint(data)
    assert fingerprint(data[:-1] + b"\0") != fingerprint(data)


# --- resume whatever the chunk size ----------------------------------------------------------------------------


def test_a_resume_finds_the_session_by_fingerprint_and_uses_its_chunk_size(services, admin):
    """The first client cut the file in 300 000-byte chunks and died after two; a second client, whose own default
    is another size, finds the session by name, size and fingerprint and cuts by the session's chunk size."""
    data = os.urandom(1_000_003)
    fp = fingerprint(data)
    first = services.uploads.start(
        admin, name="w.bin", total_chunks=4, size=len(data), chunk_size=300_000, fingerprint=fp
    )
    parts = cut(data, 300_000)
    put(services, admin, first.id, 0, parts[0])
    put(services, admin, first.id, 2, parts[2])

    (found,) = services.uploads.list_open(admin, name="w.bin", size=len(data), fingerprint=fp.upper())
    assert (found.id, found.chunk_size, found.fingerprint) == (first.id, 300_000, fp)
    assert found.missing_chunks == [1, 3]
    mine = cut(data, found.chunk_size)  # not the client's own 64 KiB (or any other) default
    for n in found.missing_chunks:
        put(services, admin, found.id, n, mine[n])
    done = complete(services, admin, found.id)
    assert done.file.sha256 == sha(data) and done.file.size == len(data)


def test_without_a_declared_chunk_size_the_first_full_chunk_records_it(services, admin):
    data = os.urandom(250_000)
    s = services.uploads.start(admin, name="a.bin", total_chunks=3, size=len(data), fingerprint=fingerprint(data))
    assert s.chunk_size is None
    parts = cut(data, 100_000)
    put(services, admin, s.id, 2, parts[2])  # the last chunk says nothing
    assert services.uploads.status(admin, s.id).chunk_size is None
    put(services, admin, s.id, 1, parts[1])
    (found,) = services.uploads.list_open(admin, name="a.bin", size=len(data), fingerprint=fingerprint(data))
    assert found.chunk_size == 100_000
    put(services, admin, s.id, 0, cut(data, found.chunk_size)[0])
    assert complete(services, admin, s.id).file.sha256 == sha(data)


def test_chunks_that_disagree_leave_the_chunk_size_unknown(services, admin):
    """Dialects may send chunks of any sizes (no chunk size declared): still accepted, but the session cannot be
    resumed by chunk size any more, even once a later chunk agrees again."""
    data = os.urandom(1000)
    s = services.uploads.start(admin, name="k.bin", total_chunks=3, size=1000)
    put(services, admin, s.id, 0, data[:400])
    assert services.uploads.status(admin, s.id).chunk_size == 400
    put(services, admin, s.id, 1, data[400:700])  # not 400: irregular
    assert services.uploads.status(admin, s.id).chunk_size is None
    put(services, admin, s.id, 1, data[400:800])
    put(services, admin, s.id, 2, data[800:])
    assert services.uploads.status(admin, s.id).chunk_size is None
    assert complete(services, admin, s.id).file.sha256 == sha(data)


def test_a_last_chunk_larger_than_the_others_makes_it_irregular(services, admin):
    s = services.uploads.start(admin, name="l.bin", total_chunks=2)
    put(services, admin, s.id, 1, b"x" * 50)
    put(services, admin, s.id, 0, b"y" * 10)
    assert services.uploads.status(admin, s.id).chunk_size is None


def test_a_declared_chunk_size_holds_every_chunk(services, admin):
    s = services.uploads.start(admin, name="d.bin", total_chunks=3, size=25, chunk_size=10)
    with pytest.raises(InvalidInput) as short:
        put(services, admin, s.id, 0, b"x" * 9)
    assert short.value.code == "CHUNK_SIZE_MISMATCH" and short.value.details["expected_size"] == 10
    with pytest.raises(TooLarge):
        put(services, admin, s.id, 0, b"x" * 11)  # refused as it arrives
    with pytest.raises(InvalidInput) as last:
        put(services, admin, s.id, 2, b"z" * 4)  # 25 - 2×10 = 5
    assert last.value.details["expected_size"] == 5
    assert services.uploads.status(admin, s.id).chunks == ()  # nothing refused was kept
    assert asyncio.run(services.store.list(f"uploads/{s.id}/")) == []
    for n, piece in enumerate((b"a" * 10, b"b" * 10, b"c" * 5)):
        put(services, admin, s.id, n, piece)
    assert complete(services, admin, s.id).file.size == 25


def test_a_declared_chunk_size_must_fit_the_size_and_count(services, admin):
    for chunk_size, total in ((10, 2), (0, 3), (10**12, 1)):
        with pytest.raises(InvalidInput):
            services.uploads.start(admin, name="x.bin", total_chunks=total, size=25, chunk_size=chunk_size)
    assert services.uploads.start(admin, name="e.bin", total_chunks=1, size=0, chunk_size=10).chunk_size == 10


def test_a_file_whose_bytes_changed_does_not_find_the_old_session(services, admin):
    old = os.urandom(5 * MiB)
    new = old[:-1] + bytes([old[-1] ^ 1])  # the same name and size, its last byte changed
    services.uploads.start(admin, name="m.bin", total_chunks=5, size=len(old), fingerprint=fingerprint(old))
    services.uploads.start(admin, name="m.bin", total_chunks=5, size=len(old))  # no fingerprint: never matched
    assert services.uploads.list_open(admin, name="m.bin", size=len(new), fingerprint=fingerprint(new)) == []
    assert len(services.uploads.list_open(admin, name="m.bin", size=len(old), fingerprint=fingerprint(old))) == 1
    with pytest.raises(InvalidInput):
        services.uploads.list_open(admin, fingerprint="not-hex")


def test_only_the_callers_own_sessions_are_found(services, admin):
    data = b"shared bytes"
    fp = fingerprint(data)
    services.uploads.start(admin, name="s.bin", total_chunks=1, size=len(data), fingerprint=fp)
    colleague = in_same_org(services, admin, "admin")
    assert services.uploads.list_open(colleague, name="s.bin", size=len(data), fingerprint=fp) == []


# --- a declared SHA-256 ----------------------------------------------------------------------------------------


def test_completing_refuses_bytes_whose_sha256_differs_and_keeps_the_session(services, admin):
    data = os.urandom(4000)
    s = services.uploads.start(admin, name="h.bin", total_chunks=2, size=4000, sha256=sha(data).upper())
    put(services, admin, s.id, 0, data[:2000])
    put(services, admin, s.id, 1, os.urandom(2000))  # the wrong bytes
    with pytest.raises(InvalidInput) as refused:
        complete(services, admin, s.id)
    assert refused.value.code == "SHA256_MISMATCH"
    assert refused.value.details["expected_sha256"] == sha(data)
    status = services.uploads.status(admin, s.id)
    assert status.state == "open" and len(status.chunks) == 2  # the client may re-send
    put(services, admin, s.id, 1, data[2000:])
    assert complete(services, admin, s.id).file.sha256 == sha(data)


def test_a_malformed_sha256_is_refused(services, admin):
    with pytest.raises(InvalidInput):
        services.uploads.start(admin, name="x", total_chunks=1, size=1, sha256="abc")


# --- deduplication at start ------------------------------------------------------------------------------------


def test_content_the_organisation_holds_completes_at_once(services, admin):
    data = os.urandom(70_000)
    first = services.uploads.start(admin, name="one.bin", total_chunks=1, size=len(data))
    put(services, admin, first.id, 0, data)
    held = complete(services, admin, first.id).file

    again = services.uploads.start(admin, name="two.bin", total_chunks=7, size=len(data), sha256=sha(data))
    assert (again.state, again.deduplicated) == ("completed", True)
    assert again.file_id and again.file_id != held.id
    twin = services.files.get(admin, again.file_id)
    assert (twin.name, twin.sha256, twin.size) == ("two.bin", held.sha256, held.size)
    assert asyncio.run(services.store.list(f"uploads/{again.id}/")) == []
    done = complete(services, admin, again.id)  # a client that completes anyway gets the same file
    assert done.file.id == again.file_id and done.session.deduplicated


def test_dedup_needs_the_size_and_the_right_size(services, admin):
    data = b"0123456789"
    s = services.uploads.start(admin, name="a", total_chunks=1, size=10)
    put(services, admin, s.id, 0, data)
    complete(services, admin, s.id)
    assert services.uploads.start(admin, name="b", total_chunks=1, sha256=sha(data)).state == "open"
    assert services.uploads.start(admin, name="c", total_chunks=1, size=11, sha256=sha(data)).state == "open"


def test_dedup_never_reaches_another_organisations_content(services, admin):
    """An organisation learns nothing of what others hold: the same declared hash opens a normal session there,
    exactly as for content nobody holds, and completing it stores the bytes (shared underneath, as always)."""
    data = os.urandom(50_000)
    s = services.uploads.start(admin, name="mine.bin", total_chunks=1, size=len(data))
    put(services, admin, s.id, 0, data)
    complete(services, admin, s.id)

    other = member_of_new_org(services, role="member")
    theirs = services.uploads.start(other, name="t.bin", total_chunks=1, size=len(data), sha256=sha(data))
    nobody = services.uploads.start(other, name="n.bin", total_chunks=1, size=len(data), sha256="ab" * 32)
    assert (theirs.state, theirs.deduplicated) == (nobody.state, nobody.deduplicated) == ("open", False)
    put(services, other, theirs.id, 0, data)
    assert complete(services, other, theirs.id).file.sha256 == sha(data)
    # now the other organisation holds it too
    assert services.uploads.start(other, name="u.bin", total_chunks=1, size=len(data), sha256=sha(data)).deduplicated


def test_a_purpose_completion_hook_runs_on_a_deduplicated_file(services, admin):
    """A model import opened for content already held: the model is reserved and its import enqueued at once."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("config.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"{}"))
    data = buf.getvalue()
    plain = services.uploads.start(admin, name="upload.tar", total_chunks=1, size=len(data))
    put(services, admin, plain.id, 0, data)
    complete(services, admin, plain.id)

    opened = services.uploads.open(
        admin, name="m.tar", total_chunks=1, size=len(data), context="model", sha256=sha(data)
    )
    assert opened.session.deduplicated and opened.session.state == "completed"
    result = services.uploads.status(admin, opened.session.id).meta["result"]
    assert result["model_id"] == opened.result["model_id"] and result["task_id"]
    model = services.imports.get(admin, opened.result["model_id"])
    assert model.file_id == opened.session.file_id
    run_pending(services)
    assert services.imports.get(admin, model.id).status == "ready"
    uses = services.files.detail(admin, model.file_id).used_by
    assert [(u.kind, u.id, u.name) for u in uses] == [
        ("imported_model", model.id, "m.tar"),
        ("model_version", "m.tar/1", "m.tar"),
    ]
