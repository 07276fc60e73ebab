"""Project exports and imports: the zip layout, secrets never exported, selections, round trips with and without
confirmation, name clashes and undo (nothing partly imported), hostile zips, and import links."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import stat
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from sqlalchemy import func, select

from modelharbor.api.inputs import deployment_in, env_var_in, pipeline_in, pipeline_version_in, version_in
from modelharbor.core.transfer import Rejected, staging
from modelharbor.db.tables import FileRow
from modelharbor.db.tables_serving import DeploymentRow, EnvironmentRow, EnvVarRow, PipelineRow
from modelharbor.db.tables_transfer import ProjectExportRow, ProjectImportRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.tasks.runner import run_pending
from tests.factories import in_same_org, member_of_new_org

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

SECRET = "planted-secret-value-5b9e27"
HIDDEN = "hidden-but-not-secret-41c2"
MiB = 1 << 20
GOOD = """
import os

class Deployment:
    def __init__(self, base_directory, context):
        self.offset = int(os.environ.get("OFFSET", "0"))

    def request(self, data):
        return {"m": data["n"] + self.offset}
"""
NASTY_ENV = "my env/../x"
PACKAGE = "deployments/deployment_adder/versions/deployment_adder_version_v1.zip"


def zip_of(files: dict[str, str | bytes], top: str = "pkg") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buf.getvalue()


async def chunks(data: bytes):
    yield data


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def tr(services):
    return services.transfer


@pytest.fixture
def source(services, owner):
    """Project ``src``: a built deployment with variables at every level (one secret), a pipeline using it, a
    custom environment with an awkward name; and an empty project ``dst``."""
    sv = services.serving
    services.projects.create_project(owner, "src")
    services.projects.create_project(owner, "dst")
    sv.create_environment(owner, "src", name=NASTY_ENV, description="odd name")
    sv.create_deployment(
        owner,
        "src",
        deployment_in(
            {
                "name": "adder",
                "description": "adds",
                "labels": {"team": "a"},
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_fields": [{"name": "m", "data_type": "int"}],
            }
        ),
    )
    sv.create_version(
        owner,
        "src",
        "adder",
        version_in({"version": "v1", "maximum_idle_time": 30, "environment": NASTY_ENV}, creating=True),
    )
    sv.create_env_var(owner, "src", env_var_in({"name": "A", "value": "project-value", "secret": False}, creating=True))
    sv.create_env_var(
        owner, "src", env_var_in({"name": "OFFSET", "value": "5", "secret": False}, creating=True), deployment="adder"
    )
    sv.create_env_var(
        owner,
        "src",
        env_var_in({"name": "TOKEN", "value": SECRET, "secret": True}, creating=True),
        deployment="adder",
        version="v1",
    )
    sv.create_env_var(
        owner,
        "src",
        env_var_in({"name": "HIDDEN", "value": HIDDEN, "secret": False}, creating=True),
        deployment="adder",
        version="v1",
    )
    asyncio.run(sv.upload_revision(owner, "src", "adder", "v1", chunks(zip_of({"deployment.py": GOOD})), "p.zip"))
    run_pending(services)
    assert sv.get_version(owner, "src", "adder", "v1").status == "available"
    services.pipelines.create_pipeline(
        owner,
        "src",
        pipeline_in(
            {
                "name": "pipe",
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_fields": [{"name": "m", "data_type": "int"}],
            }
        ),
    )
    services.pipelines.create_version(
        owner,
        "src",
        "pipe",
        pipeline_version_in(
            {
                "version": "v1",
                "objects": [{"name": "o", "reference_name": "adder", "version": "v1"}],
                "attachments": [
                    {
                        "destination_name": "o",
                        "sources": [
                            {
                                "source_name": "pipeline_start",
                                "mapping": [{"source_field_name": "n", "destination_field_name": "n"}],
                            }
                        ],
                    },
                    {
                        "destination_name": "pipeline_end",
                        "sources": [
                            {"source_name": "o", "mapping": [{"source_field_name": "m", "destination_field_name": "m"}]}
                        ],
                    },
                ],
            },
            creating=True,
        ),
    )
    return owner


def export_zip(services, owner, project="src", body=None, **kw) -> tuple[str, bytes]:
    e = services.transfer.create_export(owner, project, body or {}, **kw)
    assert e.status == "pending" and e.size is None
    run_pending(services)
    e = services.transfer.get_export(owner, project, e.id)
    assert e.status == "completed", e.error_message
    file_id, name = services.transfer.export_file(owner, project, e.id)
    reader = services.files.open_reader(file_id)
    data = reader.read()
    reader.close()
    assert len(data) == e.size and " " not in name and name.endswith(".zip")
    return e.id, data


def import_bytes(services, owner, project, data: bytes, *, skip=False, run=True):
    record = asyncio.run(services.transfer.store_import_file(owner, chunks(data), "upload.zip"))
    imp = services.transfer.create_import(owner, project, file=record, skip_confirmation=skip)
    assert imp.status == "pending" and imp.size == len(data)
    if run:
        run_pending(services)
    return services.transfer.get_import(owner, project, imp.id)


def counts(services, project: str) -> tuple[int, int, int, int]:
    """(deployments, pipelines, custom environments, variables) of a project."""
    with services.db.uow(readonly=True) as s:
        from modelharbor.db.tables_registry import RegistryProjectRow

        pid = s.scalar(select(RegistryProjectRow.id).where(RegistryProjectRow.name == project))
        return tuple(
            s.scalar(select(func.count()).select_from(model).where(model.project_id == pid))
            for model in (DeploymentRow, PipelineRow, EnvironmentRow, EnvVarRow)
        )


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


# --- exports ----------------------------------------------------------------------------------------
def test_export_layout_and_secrets_are_never_exported(services, source, tr):
    export_id, data = export_zip(services, source, all_objects=True)
    files = members(data)
    root = f"export_src_{export_id[:8]}/"
    dep = root + "deployments/deployment_adder/"
    expected = {
        root + "info.yaml",
        dep + "deployment_adder.yaml",
        dep + "versions/deployment_adder_version_v1.yaml",
        dep + "versions/deployment_adder_version_v1.zip",
        root + "pipelines/pipeline_pipe/pipeline_pipe.yaml",
        root + "pipelines/pipeline_pipe/versions/pipeline_pipe_version_v1.yaml",
        root + "project_environment_variables.yaml",
    }
    assert expected <= set(files)
    envs = [n for n in files if n.startswith(root + "environments/")]
    assert len(envs) == 1 and ".." not in envs[0].split("/") and " " not in envs[0]
    assert yaml.safe_load(files[root + "info.yaml"])["format_spec"] == "v1.0"
    d = yaml.safe_load(files[dep + "deployment_adder.yaml"])
    assert (d["deployment_name"], d["input_type"], d["default_version"]) == ("adder", "structured", "v1")
    assert d["input_fields"] == [{"name": "n", "data_type": "int"}] and d["deployment_labels"] == {"team": "a"}
    assert d["deployment_environment_variables"] == [{"name": "OFFSET", "value": "5", "secret": False}]
    v = yaml.safe_load(files[dep + "versions/deployment_adder_version_v1.yaml"])
    assert v["version_name"] == "v1" and v["environment"] == NASTY_ENV and v["maximum_idle_time"] == 30
    assert {e["name"]: (e["value"], e["secret"]) for e in v["version_environment_variables"]} == {
        "TOKEN": (None, True),  # all=True means include_value, but never for a secret
        "HIDDEN": (HIDDEN, False),
    }
    assert zipfile.ZipFile(io.BytesIO(files[dep + "versions/deployment_adder_version_v1.zip"])).namelist() == [
        "pkg/deployment.py"
    ]
    pv = yaml.safe_load(files[root + "pipelines/pipeline_pipe/versions/pipeline_pipe_version_v1.yaml"])
    assert pv["objects"] == [
        {"name": "o", "reference_name": "adder", "reference_type": "deployment", "reference_version": "v1"}
    ]
    assert yaml.safe_load(files[envs[0]])["environment_name"] == NASTY_ENV
    assert yaml.safe_load(files[root + "project_environment_variables.yaml"]) == {
        "project_environment_variables": [{"name": "A", "value": "project-value", "secret": False}]
    }
    # the planted secret is nowhere: not in the zip's bytes, not in any entry, not in the detail
    assert SECRET.encode() not in data
    assert all(SECRET.encode() not in body for body in files.values())
    detail = tr.get_export(source, "src", export_id)
    assert detail.selection["deployments"]["adder"]["versions"]["v1"]["environment_variables"]["TOKEN"] == {
        "include_value": True
    }
    assert SECRET not in json.dumps(detail.selection)
    assert [e.id for e in tr.list_exports(source, "src", status="completed")] == [export_id]
    assert tr.list_exports(source, "src", status="failed") == []


def test_selection_include_value_packages_and_unknown_names(services, source, tr):
    body = {
        "deployments": {
            "adder": {
                "versions": {
                    "v1": {
                        "environment_variables": {"HIDDEN": {"include_value": False}, "TOKEN": {"include_value": True}}
                    }
                },
                "environment_variables": {"OFFSET": {"include_value": True}},
            }
        },
        "environment_variables": {"A": {"include_value": False}},
    }
    export_id, data = export_zip(services, source, body=body, packages=False)
    files = members(data)
    assert HIDDEN.encode() not in data and b"project-value" not in data and SECRET.encode() not in data
    assert not any(n.endswith(".zip") for n in files)
    assert not any("/pipelines/" in n or "/environments/" in n for n in files)
    (vfile,) = [n for n in files if n.endswith("version_v1.yaml")]
    assert {e["name"]: e["value"] for e in yaml.safe_load(files[vfile])["version_environment_variables"]} == {
        "HIDDEN": None,
        "TOKEN": None,
    }
    assert tr.get_export(source, "src", export_id).selection["pipelines"] == {}
    bad_bodies = [
        {"deployments": {"nope": {}}},
        {"deployments": {"adder": {"versions": {"v9": {}}}}},
        {"deployments": {"adder": {"environment_variables": {"NOPE": {"include_value": True}}}}},
        {"deployments": {"adder": {"versions": {"v1": {"environment_variables": {"OFFSET": {}}}}}}},  # wrong level
        {"pipelines": {"nope": {}}},
        {"pipelines": {"pipe": {"versions": {"v2": {}}}}},
        {"environment_variables": {"NOPE": {}}},
        {"environments": {"nope": {}}},
        {"environments": {services.serving.system_environments()[0]: {}}},
        {"deployments": ["adder"]},
        {"environment_variables": {"A": {"include_value": "yes"}}},
        {"services": {"s": {}}},
    ]
    for bad in bad_bodies:
        with pytest.raises(InvalidInput):
            tr.create_export(source, "src", bad)
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ProjectExportRow)) == 1
    viewer = in_same_org(services, source, "viewer")
    assert [e.id for e in tr.list_exports(viewer, "src")] == [export_id]
    with pytest.raises(Forbidden):
        tr.create_export(viewer, "src", {})
    with pytest.raises(NotFound):
        tr.list_exports(member_of_new_org(services), "src")
    with pytest.raises(InvalidInput):
        tr.list_exports(source, "src", status="done")


def test_pending_export_cannot_be_downloaded_and_delete_removes_the_zip(services, source, tr):
    e = tr.create_export(source, "src", {"deployments": {"adder": {}}})
    with pytest.raises(InvalidInput, match="pending"):
        tr.export_file(source, "src", e.id)
    run_pending(services)
    file_id, _ = tr.export_file(source, "src", e.id)
    tr.delete_export(source, "src", e.id)
    with pytest.raises(NotFound):
        tr.get_export(source, "src", e.id)
    with services.db.uow(readonly=True) as s:
        assert s.get(FileRow, file_id) is None
    for bad in ("nope", "x" * 300, None, "\x00"):
        with pytest.raises(NotFound):
            tr.get_export(source, "src", bad)
    # the files API cannot delete an export's or an import's zip behind them
    other = tr.create_export(source, "src", {"deployments": {"adder": {}}})
    run_pending(services)
    file_id, _ = tr.export_file(source, "src", other.id)
    imp = tr.create_import(source, "src", export_id=other.id)
    with pytest.raises(Conflict, match="project export"):
        asyncio.run(services.files.delete(source, file_id))
    with services.db.uow(readonly=True) as s:
        clone = s.get(ProjectImportRow, imp.id).file_id
    with pytest.raises(Conflict, match="project import"):
        asyncio.run(services.files.delete(source, clone))
    assert tr.export_file(source, "src", other.id)[0] == file_id


# --- round trips ------------------------------------------------------------------------------------
def test_round_trip_with_confirmation(services, source, tr):
    _, data = export_zip(services, source, all_objects=True)
    imp = import_bytes(services, source, "dst", data)
    assert imp.status == "confirmation", imp.error_message
    adder = imp.content["deployments"]["adder"]
    assert adder["versions"]["v1"]["zip"] == PACKAGE
    assert adder["versions"]["v1"]["environment_variables"]["TOKEN"] == {"value": None, "secret": True}
    assert adder["environment_variables"] == {"OFFSET": {"value": "5", "secret": False}}
    assert imp.content["environments"][NASTY_ENV]["description"] == "odd name"
    assert imp.content["pipelines"]["pipe"]["versions"]["v1"]["objects"][0]["reference_version"] == "v1"
    assert counts(services, "dst") == (0, 0, 0, 0)

    body = json.loads(json.dumps(imp.content))
    with pytest.raises(InvalidInput, match="TOKEN"):  # the secret must be given again
        tr.confirm_import(source, "dst", imp.id, body)
    with pytest.raises(InvalidInput, match="package"):  # only packages the zip holds
        tr.confirm_import(
            source, "dst", imp.id, {"deployments": {"adder": {"versions": {"v1": {"zip": "../../etc/passwd"}}}}}
        )
    with pytest.raises(InvalidInput, match="nothing"):
        tr.confirm_import(source, "dst", imp.id, {})
    assert tr.get_import(source, "dst", imp.id).status == "confirmation"
    body["deployments"]["adder"]["versions"]["v1"]["environment_variables"]["TOKEN"]["value"] = SECRET
    confirmed = tr.confirm_import(source, "dst", imp.id, body)
    assert confirmed.status == "confirmation_pending"
    assert (
        confirmed.content["deployments"]["adder"]["versions"]["v1"]["environment_variables"]["TOKEN"]["value"] is None
    )
    with services.db.uow(readonly=True) as s:
        row = s.get(ProjectImportRow, imp.id)
        assert SECRET.encode() not in row.confirmed and SECRET not in json.dumps(row.content)
    with pytest.raises(InvalidInput, match="confirmation_pending"):
        tr.confirm_import(source, "dst", imp.id, body)

    run_pending(services)  # creates the objects, then builds the package
    done = tr.get_import(source, "dst", imp.id)
    assert done.status == "completed", done.error_message
    assert counts(services, "dst") == (1, 1, 1, 4)
    sv = services.serving
    v = sv.get_version(source, "dst", "adder", "v1")
    assert v.status == "available" and v.environment == NASTY_ENV and v.maximum_idle_time == 30
    assert asyncio.run(sv.request(source, "dst", "adder", {"n": 1})).result == {"m": 6}
    assert asyncio.run(services.pipelines.request(source, "dst", "pipe", {"n": 2})).result == {"m": 7}
    with services.db.uow(readonly=True) as s:
        d = sv.get_deployment(source, "dst", "adder")
        effective = sv._effective_env(s, s.get(DeploymentRow, d.id).project_id, d.id, v.id)
        row = s.get(ProjectImportRow, imp.id)
        assert row.confirmed is None and row.created == []
    assert effective == {"A": "project-value", "OFFSET": "5", "TOKEN": SECRET, "HIDDEN": HIDDEN}
    assert {e.name: e.value for e in sv.list_env_vars(source, "dst", "adder", "v1")}["TOKEN"] is None
    assert SECRET not in json.dumps(done.content)
    # the import's zip is the uploaded file; deleting the import keeps what it created
    file_id, name = tr.import_file(source, "dst", imp.id)
    reader = services.files.open_reader(file_id)
    assert reader.read() == data and name.endswith(".zip")
    reader.close()
    tr.delete_import(source, "dst", imp.id)
    with pytest.raises(NotFound):
        tr.get_import(source, "dst", imp.id)
    assert counts(services, "dst") == (1, 1, 1, 4)


def test_confirmation_can_rename_and_leave_out(services, source, tr):
    _, data = export_zip(services, source, all_objects=True)
    imp = import_bytes(services, source, "src", data)  # into the same project: everything clashes…
    assert imp.status == "confirmation"
    tr.confirm_import(  # …unless renamed; fields left out come from the zip, omitted objects are skipped
        source,
        "src",
        imp.id,
        {
            "deployments": {
                "adder-copy": {
                    "input_type": "structured",
                    "output_type": "structured",
                    "input_fields": [{"name": "n", "data_type": "int"}],
                    "output_fields": [{"name": "m", "data_type": "int"}],
                    "environment_variables": {"OFFSET": {"value": "10"}},
                    "versions": {"v2": {"zip": PACKAGE}},
                },
                "adder": {"versions": {"v1": {"environment_variables": {}}}},  # the zip's adder…
            },
            "environment_variables": {"B": {"value": "new"}},
        },
    )
    run_pending(services)
    done = tr.get_import(source, "src", imp.id)
    assert done.status == "failed" and "deployment 'adder'" in done.error_message  # …clashes
    assert "Nothing was imported" in done.error_message and len(done.error_message) <= 1024
    assert counts(services, "src") == (1, 1, 1, 4)

    imp = import_bytes(services, source, "src", data)
    tr.confirm_import(
        source,
        "src",
        imp.id,
        {
            "deployments": {
                "adder-copy": {
                    "input_fields": [{"name": "n", "data_type": "int"}],
                    "output_fields": [{"name": "m", "data_type": "int"}],
                    "environment_variables": {"OFFSET": {"value": "10"}},
                    "versions": {"v2": {"zip": PACKAGE, "environment": None}},
                }
            },
            "environment_variables": {"B": {"value": "new"}},
        },
    )
    run_pending(services)
    assert tr.get_import(source, "src", imp.id).status == "completed"
    assert counts(services, "src") == (2, 1, 1, 6)
    assert asyncio.run(services.serving.request(source, "src", "adder-copy", {"n": 1})).result == {"m": 11}


def test_skip_confirmation_from_an_export_of_the_same_project(services, source, tr):
    body = {
        "deployments": {"adder": {"versions": {"v1": {}}, "environment_variables": {"OFFSET": {"include_value": True}}}}
    }
    e = tr.create_export(source, "src", body)
    with pytest.raises(InvalidInput, match="completed"):
        tr.create_import(source, "src", export_id=e.id)
    run_pending(services)
    with pytest.raises(NotFound):  # an export of another project
        tr.create_import(source, "dst", export_id=e.id)
    with pytest.raises(InvalidInput):
        tr.create_import(source, "src", export_id=e.id, import_link="https://example.org/x.zip")
    with pytest.raises(InvalidInput):
        tr.create_import(source, "src")
    clash = tr.create_import(source, "src", export_id=e.id, skip_confirmation=True)
    run_pending(services)
    clash = tr.get_import(source, "src", clash.id)
    assert clash.status == "failed" and "Already in project 'src': deployment 'adder'" in clash.error_message
    assert counts(services, "src") == (1, 1, 1, 4)

    services.pipelines.delete_pipeline(source, "src", "pipe")
    services.serving.delete_deployment(source, "src", "adder")
    imp = tr.create_import(source, "src", export_id=e.id, skip_confirmation=True)
    assert imp.source == "export" and imp.size == tr.get_export(source, "src", e.id).size
    run_pending(services)
    imp = tr.get_import(source, "src", imp.id)
    assert imp.status == "completed", imp.error_message
    assert services.serving.get_version(source, "src", "adder", "v1").status == "available"
    assert asyncio.run(services.serving.request(source, "src", "adder", {"n": 0})).result == {"m": 5}
    # into another project (which lacks the custom environment: it comes along), without confirmation
    _, data = export_zip(services, source, body={**body, "environments": {NASTY_ENV: {}}})
    other = import_bytes(services, source, "dst", data, skip=True)
    assert other.status == "completed", other.error_message
    assert asyncio.run(services.serving.request(source, "dst", "adder", {"n": 1})).result == {"m": 6}
    assert counts(services, "dst") == (1, 0, 1, 1)
    # deleting the export keeps the import's zip (its own record over the same bytes)
    tr.delete_export(source, "src", e.id)
    file_id, _ = tr.import_file(source, "src", imp.id)
    reader = services.files.open_reader(file_id)
    assert zipfile.ZipFile(io.BytesIO(reader.read())).testzip() is None
    reader.close()


def test_skip_confirmation_with_a_secret_fails_and_creates_nothing(services, source, tr):
    _, data = export_zip(services, source, all_objects=True)
    imp = import_bytes(services, source, "dst", data, skip=True)
    assert imp.status == "failed" and "TOKEN" in imp.error_message and "skip_confirmation" in imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)


def test_failure_half_way_undoes_what_was_created(services, source, tr):
    _, data = export_zip(services, source, all_objects=True)
    imp = import_bytes(services, source, "dst", data)
    body = json.loads(json.dumps(imp.content))
    body["deployments"]["adder"]["versions"]["v1"]["environment_variables"]["TOKEN"]["value"] = SECRET
    # passes the checks before creation, fails in the pipeline's own validation (after everything else exists)
    body["pipelines"]["pipe"]["versions"]["v1"]["attachments"][1]["sources"][0]["mapping"][0]["source_field_name"] = (
        "zz"
    )
    tr.confirm_import(source, "dst", imp.id, body)
    run_pending(services)
    done = tr.get_import(source, "dst", imp.id)
    assert done.status == "failed" and "zz" in done.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)
    with services.db.uow(readonly=True) as s:
        assert s.get(ProjectImportRow, imp.id).created == []


def test_project_deletion_takes_exports_and_imports(services, source, tr):
    _, data = export_zip(services, source, body={"deployments": {"adder": {}}})
    imp = import_bytes(services, source, "src", data)
    with services.db.uow(readonly=True) as s:
        files = [s.get(ProjectImportRow, imp.id).file_id, s.scalar(select(ProjectExportRow.file_id))]
    services.serving.delete_project(source, "src")
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ProjectExportRow)) == 0
        assert s.scalar(select(func.count()).select_from(ProjectImportRow)) == 0
        assert all(s.get(FileRow, f) is None for f in files)


# --- packages the organisation already holds ----------------------------------------------------------
def package_sha(services, principal, project: str, deployment="adder", version="v1") -> str:
    v = services.serving.get_version(principal, project, deployment, version)
    rev = services.serving.get_revision(principal, project, deployment, version, v.latest_revision)
    return services.files.get(principal, rev.file_id).sha256


@pytest.fixture
def puts(services, monkeypatch):
    """The sizes of the objects written to the store (every put_stream, and every package an import writes
    straight to a local store), in order."""
    written: list[int] = []
    original = services.files.store.put_stream
    original_entry = staging.Stager.store_entry

    async def counting(key, data):
        n = await original(key, data)
        written.append(n)
        return n

    def entry(self, name, sink):
        original_entry(self, name, sink)
        if self.store.kind == "local":  # (other stores write through put_stream, counted above)
            written.append(sink.size)

    monkeypatch.setattr(services.files.store, "put_stream", counting)
    monkeypatch.setattr(staging.Stager, "store_entry", entry)
    return written


@pytest.mark.parametrize("skip", [True, False])
def test_packages_the_organisation_holds_are_linked_not_stored_again(services, source, tr, puts, skip, monkeypatch):
    body = {
        "deployments": {
            "adder": {"versions": {"v1": {}}, "environment_variables": {"OFFSET": {"include_value": True}}}
        },
        "environments": {NASTY_ENV: {}},
    }
    _, data = export_zip(services, source, body=body)
    package = members(data)[next(n for n in members(data) if n.endswith(PACKAGE))]
    held = package_sha(services, source, "src")
    with services.db.uow(readonly=True) as s:
        blobs_before = s.scalar(select(func.count()).select_from(FileRow.__table__.metadata.tables["blobs"]))
    imp = import_bytes(services, source, "dst", data, skip=skip, run=False)
    written_before = len(puts)
    if skip:  # hashed while scanning: not read again

        def read_again(*args):
            raise AssertionError("the package was read a second time")

        monkeypatch.setattr(tr, "_hash_member", read_again)
        monkeypatch.setattr(tr, "_stage_member", read_again)
    run_pending(services)
    if not skip:  # hashed before storing, after the confirmation
        imp = tr.get_import(source, "dst", imp.id)
        assert imp.status == "confirmation", imp.error_message
        tr.confirm_import(source, "dst", imp.id, json.loads(json.dumps(imp.content)))
        run_pending(services)
    imp = tr.get_import(source, "dst", imp.id)
    assert imp.status == "completed", imp.error_message
    assert puts[written_before:] == []  # the package was neither written nor copied
    assert package_sha(services, source, "dst") == held == hashlib.sha256(package).hexdigest()
    with services.db.uow(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(FileRow.__table__.metadata.tables["blobs"])) == blobs_before
    assert services.serving.get_version(source, "dst", "adder", "v1").status == "available"  # it built
    assert asyncio.run(services.serving.request(source, "dst", "adder", {"n": 1})).result == {"m": 6}
    # the new revision's file is a record of its own: deleting the source keeps the bytes
    services.pipelines.delete_pipeline(source, "src", "pipe")
    services.serving.delete_deployment(source, "src", "adder")
    v = services.serving.get_version(source, "dst", "adder", "v1")
    rev = services.serving.get_revision(source, "dst", "adder", "v1", v.latest_revision)
    reader = services.files.open_reader(rev.file_id)
    assert reader.read() == package
    reader.close()


def test_held_content_of_another_organisation_is_stored_again(services, source, tr, puts):
    """Whether another organisation holds some bytes must not show (e.g. in how fast an import runs)."""
    body = {
        "deployments": {
            "adder": {"versions": {"v1": {}}, "environment_variables": {"OFFSET": {"include_value": True}}}
        },
        "environments": {NASTY_ENV: {}},
    }
    _, data = export_zip(services, source, body=body)
    package = members(data)[next(n for n in members(data) if n.endswith(PACKAGE))]
    stranger = member_of_new_org(services, "owner")
    services.projects.create_project(stranger, "mine")
    written_before = len(puts)
    imp = import_bytes(services, stranger, "mine", data, skip=True)
    assert imp.status == "completed", imp.error_message
    assert len(package) in puts[written_before + 1 :]  # after the zip itself: the package, written again
    assert package_sha(services, stranger, "mine") == hashlib.sha256(package).hexdigest()
    assert services.serving.get_version(stranger, "mine", "adder", "v1").status == "available"


@pytest.mark.parametrize("skip", [True, False])
def test_a_package_of_a_held_size_but_other_bytes_is_stored(services, owner, tr, puts, skip):
    """Same size as a file of the organisation, other content: hashed, not found, stored like any package."""
    services.projects.create_project(owner, "dst")
    package = zip_of({"deployment.py": GOOD})
    decoy = asyncio.run(services.files.upload(owner, name="decoy.bin", data=chunks(b"\0" * len(package))))
    data = crafted(
        [
            ("exp/info.yaml", INFO),
            ("exp/deployments/deployment_d1/deployment_d1.yaml", DEPLOYMENT),
            ("exp/deployments/deployment_d1/versions/deployment_d1_version_v1.yaml", "version_name: v1\n"),
            ("exp/deployments/deployment_d1/versions/deployment_d1_version_v1.zip", package),
        ]
    )
    imp = import_bytes(services, owner, "dst", data, skip=skip)
    if not skip:
        assert imp.status == "confirmation", imp.error_message
        tr.confirm_import(owner, "dst", imp.id, json.loads(json.dumps(imp.content)))
        run_pending(services)
        imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "completed", imp.error_message
    assert len(package) in puts
    assert package_sha(services, owner, "dst", "d1", "v1") == hashlib.sha256(package).hexdigest() != decoy.sha256
    assert services.serving.get_version(owner, "dst", "d1", "v1").status == "available"


def test_a_damaged_package_of_a_held_size_fails_the_scan(services, owner, tr):
    services.projects.create_project(owner, "dst")
    noise = random.Random(7).randbytes(50_000)
    asyncio.run(services.files.upload(owner, name="same-size.bin", data=chunks(noise)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # stored: changing the bytes breaks the CRC, not the directory
        zf.writestr("exp/info.yaml", INFO)
        zf.writestr("exp/deployments/deployment_d1/deployment_d1.yaml", DEPLOYMENT)
        zf.writestr("exp/deployments/deployment_d1/versions/deployment_d1_version_v1.yaml", "version_name: v1\n")
        zf.writestr("exp/deployments/deployment_d1/versions/deployment_d1_version_v1.zip", noise)
    data = bytearray(buf.getvalue())
    at = data.find(noise[:64]) + 20_000
    data[at : at + 100] = b"\xff" * 100
    imp = import_bytes(services, owner, "dst", bytes(data), skip=True)
    assert imp.status == "failed" and "damaged" in imp.error_message, imp.error_message
    assert counts(services, "dst") == (0, 0, 0, 0)


def test_link_held_needs_the_organisations_own_matching_content(services, owner):
    files = services.files
    rec = asyncio.run(files.upload(owner, name="a.bin", data=chunks(b"held bytes")))
    linked = files.link_held(owner, sha256=rec.sha256, size=rec.size, name="b.zip", context="deployment-package")
    assert linked is not None and linked.id != rec.id and (linked.sha256, linked.size) == (rec.sha256, rec.size)
    assert linked.name == "b.zip" and linked.extension == "zip" and linked.context == "deployment-package"
    assert files.link_held(owner, sha256=rec.sha256, size=rec.size + 1, name="c.zip", context="x") is None
    assert files.link_held(owner, sha256="0" * 64, size=rec.size, name="c.zip", context="x") is None
    stranger = member_of_new_org(services, "owner")
    assert files.link_held(stranger, sha256=rec.sha256, size=rec.size, name="c.zip", context="x") is None
    viewer = in_same_org(services, owner, "viewer")
    with pytest.raises(Forbidden):
        files.link_held(viewer, sha256=rec.sha256, size=rec.size, name="c.zip", context="x")
    assert files.held_sizes(owner.org_id, {rec.size, rec.size + 1}) == {rec.size}
    assert files.held_sizes(stranger.org_id, {rec.size}) == set()
    # the blob stays while either record uses it
    asyncio.run(files.delete(owner, rec.id))
    reader = files.open_reader(linked.id)
    assert reader.read() == b"held bytes"
    reader.close()


# --- hostile and broken zips ------------------------------------------------------------------------
INFO = "format_spec: v1.0\n"
DEPLOYMENT = "deployment_name: d1\ninput_type: plain\noutput_type: plain\n"


def crafted(entries: list[tuple[zipfile.ZipInfo | str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, body in entries:
            zf.writestr(info, body)
    return buf.getvalue()


def link_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("exp/deployments/deployment_d1/link.yaml")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def damaged() -> bytes:
    noise = random.Random(5).randbytes(50_000)  # stored as is: changing it breaks the CRC, not the directory
    data = bytearray(crafted([("exp/info.yaml", INFO), ("exp/noise.bin", noise)]))
    start = data.find(b"noise.bin") + 20_000
    data[start : start + 200] = b"\xff" * 200
    return bytes(data)


BILLION_LAUGHS = "format_spec: v1.0\n" + "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
)

ATTACKS = {
    "dotdot": ([("exp/info.yaml", INFO), ("exp/../../evil.txt", "x")], "unsafe path"),
    "absolute": ([("/etc/cron.d/evil", "x"), ("info.yaml", INFO)], "unsafe path"),
    "drive": ([("C:/evil.txt", "x"), ("info.yaml", INFO)], "unsafe path"),
    "symlink": ([("exp/info.yaml", INFO), (link_entry(), "/etc/passwd")], "symbolic link"),
    "too_many": ([("exp/info.yaml", INFO)] + [(f"exp/f{i}.txt", "x") for i in range(60)], "entries"),
    "bomb": ([("exp/info.yaml", INFO), ("exp/zeros.bin", b"\0" * (8 * MiB))], "unpacks to more than"),
    "big_yaml": ([("exp/info.yaml", INFO + "# " + "x" * (MiB + 10) + "\n")], "at most 1 MiB"),
    "no_info": ([("exp/deployments/deployment_d1/deployment_d1.yaml", DEPLOYMENT)], "no info.yaml"),
    "two_infos": ([("a/info.yaml", INFO), ("b/info.yaml", INFO)], "several info.yaml"),
    "format": ([("exp/info.yaml", "format_spec: v7\n")], "format"),
    "bad_yaml": ([("exp/info.yaml", INFO), ("exp/deployments/deployment_d1/deployment_d1.yaml", "a: [b\n")], "YAML"),
    "yaml_bomb": ([("exp/info.yaml", BILLION_LAUGHS)], "too large"),
    "bad_name": (
        [("exp/info.yaml", INFO), ("exp/deployments/x/x.yaml", "deployment_name: Bad Name\n")],
        "cannot create",
    ),
    "orphan_version": (
        [("exp/info.yaml", INFO), ("exp/deployments/x/versions/v.yaml", "version_name: v1\n")],
        "no deployment file",
    ),
    "duplicate": (
        [("exp/info.yaml", INFO), ("exp/deployments/x/x.yaml", DEPLOYMENT), ("exp/deployments/y/y.yaml", DEPLOYMENT)],
        "twice",
    ),
}


@pytest.mark.parametrize("case", [*ATTACKS, "not_a_zip", "damaged", "truncated", "empty"])
def test_hostile_zips_fail_with_a_reason_and_import_nothing(services, owner, tr, case):
    services.projects.create_project(owner, "dst")
    tr.limits = replace(tr.limits, max_entries=50, max_unpacked=2 * MiB)
    if case in ATTACKS:
        data, reason = crafted(ATTACKS[case][0]), ATTACKS[case][1]
    elif case == "not_a_zip":
        data, reason = b"this is not a zip file at all " * 10, "not a zip"
    elif case == "damaged":
        data, reason = damaged(), "damaged"
    elif case == "truncated":
        data, reason = crafted([("exp/info.yaml", INFO)])[:-10], "not a zip"
    else:
        data, reason = b"", "not a zip"
    imp = import_bytes(services, owner, "dst", data)
    assert imp.status == "failed", (case, imp)
    assert reason in imp.error_message and 0 < len(imp.error_message) <= 1024, (case, imp.error_message)
    assert counts(services, "dst") == (0, 0, 0, 0)
    with pytest.raises(InvalidInput):
        tr.confirm_import(owner, "dst", imp.id, {"deployments": {"d1": {}}})


def test_an_entry_count_lie_is_caught_before_reading_the_directory(services, owner, tr):
    services.projects.create_project(owner, "dst")
    tr.limits = replace(tr.limits, max_entries=5)
    data = bytearray(crafted([("exp/info.yaml", INFO)]))
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = (60000).to_bytes(2, "little") * 2  # claims 60,000 entries
    imp = import_bytes(services, owner, "dst", bytes(data))
    assert imp.status == "failed" and "60000 entries" in imp.error_message


def test_a_minimal_vendor_style_zip_at_the_root(services, owner, tr):
    """Files at the zip's root, older keys (language), a secret whose value the zip (wrongly) holds."""
    services.projects.create_project(owner, "dst")
    base = services.serving.system_environments()[-1]
    language = base.replace("-", ".")
    data = crafted(
        [
            ("info.yaml", INFO),
            (
                "deployments/deployment_d1/deployment_d1.yaml",
                DEPLOYMENT + "deployment_environment_variables:\n- {name: S, value: leaked, secret: true}\n",
            ),
            (
                "deployments/deployment_d1/versions/deployment_d1_version_v1.yaml",
                f"version_name: v1\nlanguage: {language}\n",
            ),
        ]
    )
    imp = import_bytes(services, owner, "dst", data)
    assert imp.status == "confirmation", imp.error_message
    d1 = imp.content["deployments"]["d1"]
    assert d1["environment_variables"] == {"S": {"value": None, "secret": True}}  # a zip's secret value is not kept
    assert d1["versions"]["v1"]["environment"] == base and d1["versions"]["v1"]["zip"] is None
    d1["environment_variables"]["S"]["value"] = "given"
    tr.confirm_import(owner, "dst", imp.id, {"deployments": {"d1": d1}})
    run_pending(services)
    assert tr.get_import(owner, "dst", imp.id).status == "completed"
    assert services.serving.get_version(owner, "dst", "d1", "v1").status == "unavailable"  # no package


# --- import links -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("http://example.org/x.zip", "https"),
        ("ftp://example.org/x.zip", "https"),
        ("https://127.0.0.1/x.zip", "loopback"),
        ("https://[::1]/x.zip", "loopback"),
        ("https://[::ffff:127.0.0.1]/x.zip", "loopback"),
        ("https://10.1.2.3/x.zip", "private"),
        ("https://192.168.0.1/x.zip", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://224.0.0.1/x.zip", "multicast"),
        ("https://0.0.0.0/x.zip", "unspecified"),
        ("https://100.64.0.1/x.zip", "non-public"),
        ("https://user:pw@example.org/x.zip", "credentials"),
        ("https:///x.zip", "no host"),
        ("https://example.org/a b.zip", "without spaces"),
    ],
)
def test_import_links_refused_at_once(services, owner, tr, link, reason):
    services.projects.create_project(owner, "dst")
    with pytest.raises(InvalidInput, match=reason):
        tr.create_import(owner, "dst", import_link=link)
    assert issubclass(Rejected, InvalidInput)  # refused addresses answer 400 like any bad input


def test_import_link_to_a_name_of_a_loopback_address_fails_when_fetched(services, owner, tr):
    services.projects.create_project(owner, "dst")
    imp = tr.create_import(owner, "dst", import_link="https://localhost:9/x.zip")
    assert imp.size is None
    run_pending(services)
    imp = tr.get_import(owner, "dst", imp.id)
    assert imp.status == "failed" and "loopback" in imp.error_message
    with pytest.raises(InvalidInput, match="has no zip"):
        tr.import_file(owner, "dst", imp.id)


@pytest.fixture
def web():
    """A local http server: /export.zip (set .data), /redirect → /export.zip, anything else 404."""

    class Handler(BaseHTTPRequestHandler):
        data = b""

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/export.zip")
                self.end_headers()
            elif self.path == "/export.zip":
                self.send_response(200)
                self.send_header("Content-Length", str(len(Handler.data)))
                self.end_headers()
                self.wfile.write(Handler.data)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    server.shutdown()
    server.server_close()


def test_import_link_fetched_when_allowed(services, source, tr, web):
    base, handler = web
    _, handler.data = export_zip(services, source, body={"deployments": {"adder": {"versions": {"v1": {}}}}})
    with pytest.raises(InvalidInput, match="https"):  # private allowed does not allow http
        tr.limits = replace(tr.limits, allow_private_links=True)
        tr.create_import(source, "dst", import_link=base + "/export.zip")
    tr.limits = replace(tr.limits, allow_http_links=True, allow_private_links=False)
    with pytest.raises(InvalidInput, match="loopback"):
        tr.create_import(source, "dst", import_link=base + "/export.zip")
    refused = tr.create_import(source, "dst", import_link=base.replace("127.0.0.1", "localhost") + "/export.zip")
    run_pending(services)
    assert "loopback" in tr.get_import(source, "dst", refused.id).error_message
    tr.limits = replace(tr.limits, allow_private_links=True)
    for path in ("/export.zip", "/redirect"):
        imp = tr.create_import(source, "dst", import_link=base + path)
        run_pending(services)
        imp = tr.get_import(source, "dst", imp.id)
        assert imp.status == "confirmation", imp.error_message
        assert imp.size == len(handler.data) and list(imp.content["deployments"]) == ["adder"]
        file_id, _ = tr.import_file(source, "dst", imp.id)
        reader = services.files.open_reader(file_id)
        assert reader.read() == handler.data
        reader.close()
    missing = tr.create_import(source, "dst", import_link=base + "/nothing.zip")
    tr.limits = replace(tr.limits, max_import_size=100)
    small = tr.create_import(source, "dst", import_link=base + "/export.zip")
    run_pending(services)
    assert "HTTP 404" in tr.get_import(source, "dst", missing.id).error_message
    assert "larger than 100 bytes" in tr.get_import(source, "dst", small.id).error_message
    assert counts(services, "dst") == (0, 0, 0, 0)
