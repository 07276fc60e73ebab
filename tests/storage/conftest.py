"""Fixtures for the BlobStore contract suite: one ``store`` fixture over local, memory and a real S3 server."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelharbor.storage.base import BlobStore, open_blob_store

S3_BUCKET = "contract-tests"
_prefix_counter = itertools.count()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server process-thread on 127.0.0.1 with one bucket, for the whole session."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        client.create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> BlobStore:
    """A fresh, empty BlobStore per test (own folder, own MemoryStore, or own S3 prefix)."""
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"))
    if request.param == "memory":
        return open_blob_store("memory://")
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = f"t{next(_prefix_counter)}-{request.node.name}".replace("[", "-").replace("]", "")
    return open_blob_store(
        f"s3://{S3_BUCKET}/{prefix}",
        s3_endpoint_url=endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_allow_http=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*kinds): run a store-parametrized test only on these backends")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``store`` parametrizations excluded by a ``backends(...)`` marker."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("store") if callspec else None
        if marker is not None and kind is not None and kind not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
