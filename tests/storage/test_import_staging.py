"""The import's package writer (``Sink``: hashed and written while the zip is read) on each blob backend."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from modelharbor.core.transfer.staging import Sink
from modelharbor.storage import BlobStore, open_blob_store


def test_a_written_package_is_whole_and_an_aborted_one_leaves_nothing(store: BlobStore):
    data = os.urandom(9 * 1024 * 1024 + 5)  # more than one S3 part
    sink = Sink(store, "imports/i/a/1")
    for i in range(0, len(data), 4 << 20):
        sink.write(data[i : i + (4 << 20)])
    assert sink.finish() == (hashlib.sha256(data).hexdigest(), len(data))
    assert asyncio.run(store.size("imports/i/a/1")) == len(data)
    with store.open_reader("imports/i/a/1") as f:
        assert f.read() == data

    half = Sink(store, "imports/i/a/2")
    half.write(data[: 6 << 20])
    half.abort()
    assert not asyncio.run(store.exists("imports/i/a/2"))
    assert asyncio.run(store.list("imports/")) == ["imports/i/a/1"]


def test_a_key_already_written_is_not_overwritten_locally(tmp_path):
    store = open_blob_store(str(tmp_path / "blobs"))
    sink = Sink(store, "imports/i/a/1")
    sink.write(b"x")
    sink.finish()
    with pytest.raises(FileExistsError):
        Sink(store, "imports/i/a/1")
