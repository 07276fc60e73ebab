"""Every single-request upload of every API honours MAX_SINGLE_UPLOAD_SIZE (``FileService.upload``, the one place
it is enforced): one byte over is a 413 in the dialect's own error shape and nothing of it is kept; exactly the
limit is accepted.

The paths: native files, catalogue model data and deployment packages; UFDL model data; MLflow artifacts; Kore.ai's
single upload; UbiOps deployment revisions, environment revisions, environment tag builds and project imports.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from modelharbor.db.tables import FileRow
from tests.api.dialects.kore.test_routes import multipart
from tests.conftest import ADMIN_KEY, make_settings

LIMIT = 64 * 1024 + 3  # odd on purpose: never a multiple of any buffer size
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
CATALOGUE = {"name": "resnet18", "url": "https://example.com/r18", "framework": 1, "domain": "ic", "licence": "MIT"}

Send = Callable[[bytes], httpx.Response]


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(tmp_path, db_url, max_single_upload_size=LIMIT)


def _ok(resp: httpx.Response) -> dict:
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def _form(client, url: str, data: bytes, filename: str = "package.zip", **fields: str) -> httpx.Response:
    body, ctype = multipart(*[(k, v, None) for k, v in fields.items()], ("file", data, filename))
    return client.post(url, content=body, headers=AUTH | {"content-type": ctype})


def _serving(client) -> str:
    """A project with a deployment and a version (through the native API); the version's native URL."""
    _ok(client.post("/api/v1/projects", json={"name": "lim"}, headers=AUTH))
    body = {"name": "d", "input_type": "plain", "output_type": "plain"}
    _ok(client.post("/api/v1/projects/lim/deployments", json=body, headers=AUTH))
    _ok(client.post("/api/v1/projects/lim/deployments/d/versions", json={"version": "v1"}, headers=AUTH))
    return "/api/v1/projects/lim/deployments/d/versions/v1"


def _environment(client) -> str:
    _serving(client)
    _ok(client.post("/v2.1/projects/lim/environments", json={"name": "env"}, headers=AUTH))
    return "/v2.1/projects/lim/environments/env"


def native_files(client) -> Send:
    return lambda data: client.post("/api/v1/files", params={"name": "a.bin"}, content=data, headers=AUTH)


def native_catalogue_data(client) -> Send:
    pk = _ok(client.post("/api/v1/catalogue/models", json=CATALOGUE, headers=AUTH))["pk"]
    return lambda data: client.put(f"/api/v1/catalogue/models/{pk}/data", content=data, headers=AUTH)


def native_package(client) -> Send:
    url = _serving(client) + "/package"
    return lambda data: client.put(url, content=data, headers=AUTH | {"content-type": "application/zip"})


def ufdl_data(client) -> Send:
    pk = _ok(client.post("/v1/pretrained-models/create", json=CATALOGUE, headers=AUTH))["pk"]
    upload = {"content-type": "application/data", "content-disposition": "attachment; filename=data"}
    return lambda data: client.post(f"/v1/pretrained-models/{pk}/data", content=data, headers=AUTH | upload)


def mlflow_artifact(client) -> Send:
    exp = _ok(client.post("/api/2.0/mlflow/experiments/create", json={"name": "lim"}, headers=AUTH))["experiment_id"]
    url = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/lim/a.bin"
    return lambda data: client.put(url, content=data, headers=AUTH)


def kore_single(client) -> Send:
    def send(data: bytes) -> httpx.Response:
        body, ctype = multipart(("fileContext", "bulkImport", None), ("file", data, "sample.wav"))
        return client.post("/api/public/files", content=body, headers={"x-api-key": ADMIN_KEY, "content-type": ctype})

    return send


def ubiops_revision(client) -> Send:
    _serving(client)
    return lambda data: _form(client, "/v2.1/projects/lim/deployments/d/versions/v1/revisions", data)


def ubiops_environment_revision(client) -> Send:
    url = _environment(client) + "/revisions"
    return lambda data: _form(client, url, data)


def ubiops_tag_build(client) -> Send:
    url = _environment(client)
    _ok(client.post(url + "/tags", json={"name": "t1"}, headers=AUTH))
    return lambda data: _form(client, url + "/tags/t1/build", data)


def ubiops_import(client) -> Send:
    _serving(client)
    return lambda data: _form(client, "/v2.1/projects/lim/imports", data, "import.zip")


def _native(resp) -> None:
    assert resp.json()["error"]["code"] == "FILE_TOO_LARGE"


def _ufdl(resp) -> None:
    assert set(resp.json()) == {"detail"}


def _mlflow(resp) -> None:
    assert {"error_code", "message"} <= set(resp.json())


def _kore(resp) -> None:
    assert resp.json()["errors"][0]["msg"]


def _ubiops(resp) -> None:
    assert set(resp.json()) == {"error"} and str(LIMIT) in resp.json()["error"]


PATHS = [
    (native_files, _native),
    (native_catalogue_data, _native),
    (native_package, _native),
    (ufdl_data, _ufdl),
    (mlflow_artifact, _mlflow),
    (kore_single, _kore),
    (ubiops_revision, _ubiops),
    (ubiops_environment_revision, _ubiops),
    (ubiops_tag_build, _ubiops),
    (ubiops_import, _ubiops),
]


def _kept(services) -> tuple[int, set[str]]:
    """Files recorded and every file in the store's folder (unfinished writes included)."""
    with services.db.uow(readonly=True) as s:
        files = s.scalar(select(func.count()).select_from(FileRow))
    root = services.store.root
    return files, {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("path", "shape"), PATHS, ids=[p.__name__ for p, _ in PATHS])
def test_one_byte_over_the_limit_is_refused_and_kept_nowhere_the_limit_itself_is_accepted(
    client, services, path, shape
):
    send = path(client)
    before = _kept(services)
    over = send(os.urandom(LIMIT + 1))
    assert over.status_code == 413, over.text
    shape(over)
    assert _kept(services) == before  # neither a file row nor a byte (nor a staging file) of it
    assert asyncio.run(services.store.unfinished(idle_since=1e12)) == []

    exact = send(os.urandom(LIMIT))
    assert exact.status_code in (200, 201, 202), exact.text
    files, stored = _kept(services)
    assert files == before[0] + 1 and len(stored) == len(before[1]) + 1
    assert services.files.single_upload_limit() == LIMIT
    assert services.files.single_upload_limit(10) == 10 and services.files.single_upload_limit(LIMIT * 9) == LIMIT
