"""Native API files: internal files left out of the list unless asked for, and what uses a file (``used_by``), over
one object of each kind (the schemathesis seeding) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from modelharbor.core.files import INTERNAL_CONTEXTS, FileUse, in_use_by, used_by
from modelharbor.tasks.runner import run_pending
from tests.api.native.seeding import API, AUTH, seed


def listed(client, **params) -> list[dict]:
    resp = client.get(f"{API}/files", params={"limit": 1000, **params}, headers=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == len(body["items"])
    return body["items"]


def detail(client, file_id: str) -> dict:
    resp = client.get(f"{API}/files/{file_id}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def chunks(data: bytes):
    yield data


@pytest.fixture
def seeded(client, services, admin):
    ids = seed(client, services)
    run_pending(services)  # the export's zip is made by a task
    sv = services.serving  # and an environment tag with a package (its build queued, never run here)
    sv.create_environment(admin, "proj", name="science", base_environment=sv.list_environments(admin, "proj")[-1].name)
    sv.environment_tags.create_tag(admin, "proj", "science", "v1")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("environment_package/requirements.txt", "")
    tags = sv.environment_tags
    file_id = asyncio.run(tags.store_package(admin, "proj", "science", "v1", chunks(package.getvalue()), "env.zip"))
    asyncio.run(tags.build_package(admin, "proj", "science", "v1", file_id))
    project_id = services.projects.get_by_name(admin, "proj").id  # and a versioned project file
    asyncio.run(services.project_files.write(admin, project_id, "notes/readme.txt", chunks(b"project file")))
    return ids


def test_internal_files_are_listed_only_when_asked(client, seeded):
    every = listed(client, all="true")
    internal = {f["context"] for f in every if f["internal"]}
    assert internal == set(INTERNAL_CONTEXTS)  # one of each kind was made
    assert all(f["internal"] == (f["context"] in INTERNAL_CONTEXTS) for f in every)
    mine = listed(client)
    assert mine and not any(f["internal"] for f in mine)
    assert {f["id"] for f in mine} == {f["id"] for f in every if not f["internal"]}
    packages = listed(client, context="deployment-package")  # naming an internal context lists them
    assert packages and all(f["internal"] for f in packages)


def test_used_by_names_every_kind_of_user(client, services, seeded):
    uses = {}
    for f in listed(client, all="true"):
        for use in detail(client, f["id"])["used_by"]:
            uses.setdefault(use["kind"], []).append((use["id"], use["name"], f))
    assert [(i, n) for i, n, _ in uses["catalogue_model"]] == [("1", "r18")]
    assert [(i, n) for i, n, _ in uses["model_version"]] == [("m/1", "m")]
    (artifact,) = uses["artifact"]
    assert artifact[2]["id"] == uses["model_version"][0][2]["id"]  # the version's file is a logged model's artifact
    assert artifact[0].endswith("/artifacts/MLmodel")
    assert [n for _, n, _ in uses["deployment_version"]] == ["proj/dep/v1"]
    assert [n for _, n, _ in uses["environment_tag"]] == ["proj/science:v1"]
    assert [n for _, n, _ in uses["export"]] == ["proj"] and uses["export"][0][0] == seeded["export_id"]
    assert [n for _, n, _ in uses["import"]] == ["proj"] and uses["import"][0][0] == seeded["import_id"]
    assert uses["export"][0][2]["internal"] and uses["deployment_version"][0][2]["internal"]
    spare = detail(client, seeded["spare_file_id"])
    assert spare["used_by"] == [] and set(spare) == {*listed(client)[0], "used_by"}


def test_the_refusal_to_delete_names_the_first_user(client, services, seeded):
    for f in listed(client, all="true"):
        with services.db.uow(readonly=True) as s:
            uses, first = used_by(s, f["id"]), in_use_by(s, f["id"])
        assert (first is None) == (uses == [])
        if uses:
            resp = client.delete(f"{API}/files/{f['id']}", headers=AUTH)
            assert resp.status_code == 409 and resp.json()["error"]["code"] == "FILE_IN_USE"
            assert uses[0].describe() in resp.json()["error"]["message"]


def test_describe_reads_well():
    assert FileUse("model_version", "my model/3", "my model").describe() == "version 3 of registered model 'my model'"
    assert "UbiOps" in FileUse("export", "e1", "proj").describe()
