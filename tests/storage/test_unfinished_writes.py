"""Contract: a writer killed mid-write leaves an unfinished write (the local store's ``<key>#<n>`` staging file, an
incomplete S3 multipart upload) that no listing shows; ``unfinished`` finds it once idle, ``discard`` removes it.

The writer is a real process, killed with SIGKILL half-way through its ``put_stream``; S3 is a real S3-protocol
server (moto).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelharbor.storage.base import PART_SIZE, BlobStore, Unfinished

MiB = 1024 * 1024
WRITER = """
import asyncio, json, sys
from modelharbor.storage import open_blob_store

store = open_blob_store(**json.loads(sys.argv[1]))

async def body():
    yield b"x" * int(sys.argv[3])
    print("sent", flush=True)
    await asyncio.sleep(3600)  # the rest never comes: the process is killed here

asyncio.run(store.put_stream(sys.argv[2], body()))
"""


def _reopen(store: BlobStore, request: pytest.FixtureRequest) -> dict:
    """How another process opens the same store."""
    if store.kind == "local":
        return {"url": str(store.root)}
    return {
        "url": store.description,
        "s3_endpoint_url": request.getfixturevalue("s3_endpoint"),
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
        "s3_allow_http": True,
    }


def _unfinished(store: BlobStore, idle_since: float) -> list[Unfinished]:
    return asyncio.run(store.unfinished(idle_since=idle_since))


def kill_writer_mid_write(store: BlobStore, request: pytest.FixtureRequest, key: str, sent: int) -> None:
    """Start a process that writes ``key``, let ``sent`` bytes reach the store, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, json.dumps(_reopen(store, request)), key, str(sent)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "sent"
        deadline = time.monotonic() + 30
        while not any(w.key == key and w.size > 0 for w in _unfinished(store, time.time() + 60)):
            assert time.monotonic() < deadline, "the writer's bytes never reached the store"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def _files_on_disk(store: BlobStore) -> dict[str, int]:
    assert store.root is not None
    return {p.relative_to(store.root).as_posix(): p.stat().st_size for p in store.root.rglob("*") if p.is_file()}


@pytest.mark.backends("local", "s3")
def test_a_killed_writers_unfinished_write_is_found_once_idle_and_discarded(store: BlobStore, request):
    kept = os.urandom(3 * MiB + 1)
    asyncio.run(store.put_bytes("objects/kept", kept))
    kill_writer_mid_write(store, request, "objects/killed", PART_SIZE + MiB)  # at least one S3 part went out

    assert asyncio.run(store.list("")) == ["objects/kept"]  # invisible to listings and reads
    assert not asyncio.run(store.exists("objects/killed"))
    assert _unfinished(store, time.time() - 3600) == []  # written to within the last hour: not idle that long
    (write,) = _unfinished(store, time.time() + 1)
    assert write.key == "objects/killed" and write.size >= (PART_SIZE if store.kind == "s3" else 2 * MiB)
    assert write.active_at <= time.time()
    if store.kind == "local":
        assert write.ref == "objects/killed#1" and _files_on_disk(store)["objects/killed#1"] == write.size

    assert asyncio.run(store.discard([write], idle_since=time.time() + 1)) == 1
    assert _unfinished(store, time.time() + 1) == []
    assert asyncio.run(store.discard([write], idle_since=time.time() + 1)) == 0  # already gone: harmless
    assert asyncio.run(store.list("")) == ["objects/kept"]
    assert b"".join(asyncio.run(_collect(store, "objects/kept"))) == kept
    if store.kind == "local":
        assert _files_on_disk(store) == {"objects/kept": len(kept)}  # not one byte more on disk


async def _collect(store: BlobStore, key: str) -> list[bytes]:
    return [piece async for piece in store.get_stream(key)]


@pytest.mark.backends("local")
def test_a_staging_file_written_to_since_it_was_listed_is_not_discarded(store: BlobStore, request):
    """Between the listing and the removal its writer may have come back: the local store checks again."""
    kill_writer_mid_write(store, request, "uploads/s/chunk", 3 * MiB)
    (write,) = _unfinished(store, time.time() + 1)
    path = store.root / write.ref
    os.utime(path, (time.time() + 5, time.time() + 5))  # written to after the cutoff below
    assert asyncio.run(store.discard([write], idle_since=time.time() + 1)) == 0
    assert path.exists()
    with pytest.raises(ValueError):  # only staging files are ever removed this way
        asyncio.run(store.discard([Unfinished("objects/x", "objects/x", 0.0, 0)], idle_since=time.time()))


@pytest.mark.backends("memory")
def test_the_memory_store_has_no_unfinished_writes(store: BlobStore):
    """Nothing of a memory store outlives its process; a failed write leaves nothing there either."""

    async def dies():
        yield b"x" * MiB
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError):
        asyncio.run(store.put_stream("objects/killed", dies()))
    assert _unfinished(store, time.time() + 1) == [] and asyncio.run(store.list("")) == []
