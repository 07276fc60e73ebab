"""Serving core: deployments, versions, env vars (secrets encrypted), package checks, builds and requests with
the real local executor, pipelines."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import time
import zipfile

import pytest
from sqlalchemy import select

from modelharbor.api.inputs import (
    deployment_in,
    deployment_patch,
    env_var_in,
    pipeline_in,
    pipeline_version_in,
    version_in,
)
from modelharbor.core.serving import PackageRejected, check_fields, inspect_deployment, unpack_package
from modelharbor.db.tables_serving import DeploymentRequestRow, EnvVarRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.tasks.runner import run_pending
from tests.factories import in_same_org, member_of_new_org, two_step_attachments

GOOD = """
import os

class Deployment:
    def __init__(self, base_directory, context):
        self.offset = int(os.environ.get("OFFSET", "0"))

    def request(self, data):
        if data["n"] == 13:
            raise ValueError("unlucky")
        if data["n"] == 7:
            return {"wrong": 1}
        return {"m": data["n"] + self.offset}
"""


def zip_bytes(files: dict[str, str | bytes], top: str = "pkg") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return buf.getvalue()


async def chunks(data: bytes):
    yield data


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def project(services, owner):
    return services.projects.create_project(owner, "serve")


@pytest.fixture
def sv(services):
    return services.serving


def make_deployment(sv, owner, name="adder", **extra):
    body = {
        "name": name,
        "input_type": "structured",
        "output_type": "structured",
        "input_fields": [{"name": "n", "data_type": "int"}],
        "output_fields": [{"name": "m", "data_type": "int"}],
        **extra,
    }
    sv.create_deployment(owner, "serve", deployment_in(body))
    return sv.create_version(
        owner, "serve", name, version_in({"version": "v1", "maximum_idle_time": 30}, creating=True)
    )


def upload(services, owner, data: bytes, name="adder", version="v1"):
    rev = asyncio.run(services.serving.upload_revision(owner, "serve", name, version, chunks(data), "pkg.zip"))
    run_pending(services)
    return services.serving.get_revision(owner, "serve", name, version, rev.id)


def test_deployment_and_version_rules(sv, owner, project, services):
    v = make_deployment(sv, owner)
    assert (v.version, v.status, v.is_default, v.active_revision) == ("v1", "unavailable", True, None)
    assert sv.get_deployment(owner, "serve", "adder").default_version == "v1"
    with pytest.raises(Conflict):
        sv.create_deployment(owner, "serve", deployment_in({"name": "adder"}))
    for bad in (
        {"name": "Bad"},
        {"name": "x", "input_type": "weird"},
        {"name": "x", "input_fields": [{"name": "a", "data_type": "complex"}]},
        {"name": "x", "input_fields": [{"name": "a", "data_type": "int"}, {"name": "a", "data_type": "int"}]},
        {"name": "x", "input_type": "plain", "input_fields": [{"name": "a", "data_type": "int"}]},
        {"name": "x", "labels": ["a"]},
    ):
        with pytest.raises(InvalidInput):
            sv.create_deployment(owner, "serve", deployment_in(bad))
    for bad in (
        {"version": ""},
        {"version": "v2", "minimum_instances": 3, "maximum_instances": 1},
        {"version": "v2", "environment": "python0-1"},
        {"version": "v2", "request_retention_mode": "all"},
    ):
        with pytest.raises((InvalidInput, NotFound)):
            sv.create_version(owner, "serve", "adder", version_in(bad, creating=True))
    sv.create_version(owner, "serve", "adder", version_in({"version": "v2"}, creating=True))
    with pytest.raises(InvalidInput):  # the default cannot go while others exist
        sv.delete_version(owner, "serve", "adder", "v1")
    sv.update_deployment(owner, "serve", "adder", deployment_patch({"default_version": "v2"}))
    sv.delete_version(owner, "serve", "adder", "v1")
    assert [x.version for x in sv.list_versions(owner, "serve", "adder")] == ["v2"]
    with pytest.raises(NotFound):
        sv.get_deployment(member_of_new_org(services), "serve", "adder")
    viewer = in_same_org(services, owner, "viewer")
    assert sv.get_deployment(viewer, "serve", "adder").name == "adder"
    with pytest.raises(Forbidden):
        sv.create_deployment(viewer, "serve", deployment_in({"name": "nope"}))
    colleague = in_same_org(services, owner, "member")  # a member, but not the project's owner or collaborator
    with pytest.raises(Forbidden):
        sv.update_deployment(colleague, "serve", "adder", deployment_patch({"description": "x"}))


def test_env_vars_inherit_and_secrets_are_sealed(sv, owner, project, services):
    make_deployment(sv, owner)
    sv.create_env_var(owner, "serve", env_var_in({"name": "A", "value": "project", "secret": False}, creating=True))
    sv.create_env_var(
        owner, "serve", env_var_in({"name": "B", "value": "dep", "secret": False}, creating=True), deployment="adder"
    )
    secret = sv.create_env_var(
        owner,
        "serve",
        env_var_in({"name": "A", "value": "hush-42", "secret": True}, creating=True),
        deployment="adder",
        version="v1",
    )
    assert secret.value is None
    listed = sv.list_env_vars(owner, "serve", "adder", "v1")
    assert [(e.name, e.inheritance_type, e.value) for e in listed] == [
        ("A", "project", "project"),
        ("B", "deployment", "dep"),
        ("A", None, None),
    ]
    with services.db.uow(readonly=True) as s:
        stored = s.scalars(select(EnvVarRow.value)).all()
        effective = sv._effective_env(
            s,
            project.id,
            sv.get_deployment(owner, "serve", "adder").id,
            sv.get_version(owner, "serve", "adder", "v1").id,
        )
    assert all(b"hush-42" not in v and b"project" not in v for v in stored)
    assert effective == {"A": "hush-42", "B": "dep"}  # the narrowest level wins
    with pytest.raises(Conflict):
        sv.create_env_var(owner, "serve", env_var_in({"name": "A", "value": "again", "secret": False}, creating=True))
    for bad in (
        {"name": "1A", "value": "x"},
        {"name": "A_", "value": "x"},
        {"name": "OK"},
        {"name": "OK", "value": 3},
        {"name": "OK", "value": "x", "secret": "yes"},
    ):
        with pytest.raises(InvalidInput):
            sv.create_env_var(owner, "serve", env_var_in(bad, creating=True))
    with pytest.raises(InvalidInput):  # revealing a secret needs its value again
        sv.update_env_var(
            owner, "serve", secret.id, env_var_in({"secret": False}, creating=False), deployment="adder", version="v1"
        )
    assert (
        sv.update_env_var(
            owner,
            "serve",
            secret.id,
            env_var_in({"secret": False, "value": "open"}, creating=False),
            deployment="adder",
            version="v1",
        ).value
        == "open"
    )
    with pytest.raises(NotFound):  # ids belong to their level
        sv.get_env_var(owner, "serve", secret.id)
    sv.create_deployment(owner, "serve", deployment_in({"name": "other"}))
    copied = sv.copy_env_vars(owner, "serve", "adder", None, "other")
    assert [(e.name, e.value) for e in copied if e.inheritance_type is None] == [("B", "dep")]


def test_unpack_refuses_hostile_zips(tmp_path):
    def attempt(files, top="pkg", raw=None):
        path = tmp_path / "p.zip"
        path.write_bytes(raw if raw is not None else zip_bytes(files, top))
        return unpack_package(path, tmp_path / "out")

    assert (attempt({"deployment.py": GOOD}) / "deployment.py").is_file()
    assert (attempt({"deployment.py": GOOD}, top="") / "deployment.py").is_file()
    for files, top, why in (
        ({"../evil.py": "x", "deployment.py": GOOD}, "", "unsafe path"),
        ({"/etc/x": "x"}, "", "unsafe path"),
        ({"readme": "x"}, "pkg", "no deployment.py"),
    ):
        with pytest.raises(PackageRejected) as e:
            attempt(files, top)
        assert why in e.value.message
    with pytest.raises(PackageRejected):
        attempt({}, raw=b"not a zip")
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("pkg/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
        zf.writestr("pkg/deployment.py", GOOD)
    with pytest.raises(PackageRejected) as e:
        attempt({}, raw=link.getvalue())
    assert "symbolic link" in e.value.message
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_inspect_reads_without_running(tmp_path):
    (tmp_path / "deployment.py").write_text(
        "import sys; sys.exit(1)\nclass Deployment:\n    def request(self, d): pass\n"
    )
    assert inspect_deployment(tmp_path) == (True, False)
    (tmp_path / "deployment.py").write_text("class Nope: pass\n")
    with pytest.raises(PackageRejected):
        inspect_deployment(tmp_path)
    (tmp_path / "deployment.py").write_text("def f(:\n")
    with pytest.raises(PackageRejected) as e:
        inspect_deployment(tmp_path)
    assert "syntax error on line 1" in e.value.message


def test_field_checks():
    from modelharbor.core.serving import Field

    fields = (Field("a", "int"), Field("b", "array_double"), Field("c", "bool"))
    check_fields(fields, {"a": 1, "b": [1, 2.5], "c": True}, what="input")
    for bad, name in (
        ({"a": 1.5, "b": [], "c": True}, "'a'"),
        ({"a": 1, "b": ["x"], "c": True}, "'b'"),
        ({"a": 1, "b": [], "c": 1}, "'c'"),
        ({"a": 1, "b": []}, "'c'"),
        ({"a": 1, "b": [], "c": True, "d": 0}, "'d'"),
    ):
        with pytest.raises(InvalidInput) as e:
            check_fields(fields, bad, what="input")
        assert name in e.value.message


def test_build_and_requests(sv, owner, project, services):
    make_deployment(sv, owner)
    sv.create_env_var(owner, "serve", env_var_in({"name": "OFFSET", "value": "100", "secret": True}, creating=True))
    rev = upload(services, owner, zip_bytes({"deployment.py": GOOD}))
    assert rev.status == "success", rev.error_message
    v = sv.get_version(owner, "serve", "adder", "v1")
    assert (v.status, v.active_revision, v.has_request_method) == ("available", rev.id, True)

    async def ask(data, **kw):
        return await sv.request(owner, "serve", "adder", data, **kw)

    async def scenario():
        ok = await ask({"n": 1})
        boom = await ask({"n": 13})
        wrong = await ask({"n": 7})
        many = await asyncio.gather(*(ask({"n": i}) for i in range(20)))
        return ok, boom, wrong, many

    try:
        ok, boom, wrong, many = asyncio.run(scenario())
        assert (ok.status, ok.result) == ("completed", {"m": 101})
        assert boom.status == "failed" and "unlucky" in boom.error_message
        assert wrong.status == "failed" and "output" in wrong.error_message
        assert [r.result["m"] for r in many if r.status == "completed"] == [
            100 + i for i in range(20) if i not in (7, 13)
        ]
        kept = sv.get_request(owner, "serve", "adder", ok.id)  # retention 'full' by default
        assert kept.result == {"m": 101}
        with pytest.raises(InvalidInput):
            asyncio.run(ask({"n": "x"}))
        with pytest.raises(InvalidInput):
            asyncio.run(ask({"n": 1}, timeout=99999))

        bad = upload(
            services,
            owner,
            zip_bytes(
                {
                    "deployment.py": "class Deployment:\n    def __init__(self, b, c):\n"
                    "        raise RuntimeError('no model file')\n"
                    "    def request(self, d):\n        return d\n"
                }
            ),
        )
        assert bad.status == "failed" and "no model file" in bad.error_message
        assert sv.get_version(owner, "serve", "adder", "v1").active_revision == rev.id  # still the good one
        assert asyncio.run(ask({"n": 2})).result == {"m": 102}
    finally:
        sv.shutdown()


def test_pipeline_chains_deployments(sv, owner, project, services):
    make_deployment(sv, owner)
    sv.create_env_var(owner, "serve", env_var_in({"name": "OFFSET", "value": "1", "secret": False}, creating=True))
    assert upload(services, owner, zip_bytes({"deployment.py": GOOD})).status == "success"
    pipes = services.pipelines
    pipes.create_pipeline(
        owner,
        "serve",
        pipeline_in(
            {
                "name": "twice",
                "input_type": "structured",
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_type": "structured",
                "output_fields": [{"name": "m", "data_type": "int"}],
            }
        ),
    )
    objects = [{"name": "first", "reference_name": "adder"}, {"name": "second", "reference_name": "adder"}]
    attachments = two_step_attachments()
    v = pipes.create_version(
        owner,
        "serve",
        "twice",
        pipeline_version_in({"version": "v1", "objects": objects, "attachments": attachments}, creating=True),
    )
    assert all(o["id"] for o in v.objects) and all(a["id"] for a in v.attachments)
    for bad in (
        {"objects": [{"name": "x", "reference_name": "nope"}], "attachments": []},
        {"objects": objects, "attachments": attachments[:2]},  # nothing feeds pipeline_end
        {
            "objects": objects,
            "attachments": [
                attachments[0],
                {
                    "destination_name": "second",
                    "sources": [
                        {
                            "source_name": "first",
                            "mapping": [{"source_field_name": "zz", "destination_field_name": "n"}],
                        }
                    ],
                },
                attachments[2],
            ],
        },
        {"objects": objects[:1] + [{"name": "first", "reference_name": "adder"}], "attachments": attachments},
    ):
        with pytest.raises(InvalidInput):
            pipes.create_version(owner, "serve", "twice", pipeline_version_in({"version": "v2", **bad}, creating=True))
    cyclic = [
        {
            "destination_name": "first",
            "sources": [
                {"source_name": "second", "mapping": [{"source_field_name": "m", "destination_field_name": "n"}]}
            ],
        },
        attachments[1],
        attachments[2],
    ]
    with pytest.raises(InvalidInput) as e:
        pipes.create_version(
            owner,
            "serve",
            "twice",
            pipeline_version_in({"version": "v2", "objects": objects, "attachments": cyclic}, creating=True),
        )
    assert "cycle" in e.value.message
    try:
        result = asyncio.run(pipes.request(owner, "serve", "twice", {"n": 1}))
        assert (result.status, result.result) == ("completed", {"m": 3}), result.error_message
        assert [s.object_name for s in result.steps] == ["first", "second"]
        failed = asyncio.run(pipes.request(owner, "serve", "twice", {"n": 13}))
        assert failed.status == "failed" and "first" in failed.error_message and "unlucky" in failed.error_message
    finally:
        sv.shutdown()
    with pytest.raises(InvalidInput):  # a deployment a pipeline uses cannot be deleted
        sv.delete_deployment(owner, "serve", "adder")
    pipes.delete_pipeline(owner, "serve", "twice")
    sv.delete_deployment(owner, "serve", "adder")


def test_project_delete_takes_its_deployments(sv, owner, project, services):
    make_deployment(sv, owner)
    rev = upload(services, owner, zip_bytes({"deployment.py": GOOD}))
    services.serving.delete_project(owner, "serve")
    with pytest.raises(NotFound):
        sv.list_deployments(owner, "serve")
    with pytest.raises(NotFound):
        services.files.get(owner, rev.file_id)


def test_no_worker_processes_left(services):
    import psutil

    services.serving.shutdown()
    assert [
        c for c in psutil.Process(os.getpid()).children(recursive=True) if "worker_main" in " ".join(c.cmdline())
    ] == []


def test_custom_environments(sv, owner, project):
    base = sv.list_environments(owner, "serve", system=True)[0].name
    env = sv.create_environment(owner, "serve", name="science", description="numpy and friends", base_environment=base)
    assert (env.system, env.base_environment) == (False, base)
    with pytest.raises(Conflict):
        sv.create_environment(owner, "serve", name="science")
    with pytest.raises(Conflict):  # base names are taken
        sv.create_environment(owner, "serve", name=base)
    with pytest.raises(InvalidInput):
        sv.create_environment(owner, "serve", name="x", base_environment="python0-1")
    assert sv.update_environment(owner, "serve", "science", labels={"team": "a"}).labels == {"team": "a"}
    with pytest.raises(InvalidInput):
        sv.update_environment(owner, "serve", base, description="no")
    make_deployment(sv, owner)
    sv.create_version(owner, "serve", "adder", version_in({"version": "v2", "environment": "science"}, creating=True))
    with pytest.raises(InvalidInput) as e:  # in use
        sv.delete_environment(owner, "serve", "science")
    assert "adder/v2" in e.value.message
    sv.delete_version(owner, "serve", "adder", "v2")
    sv.delete_environment(owner, "serve", "science")
    assert [x.name for x in sv.list_environments(owner, "serve", system=False)] == []


def keep_cached(sv, cached: dict) -> None:
    """Put the routes cached before a delete back, fresh however long the delete took (stopping an instance can
    outlast the cache's 2 s on a loaded machine, and an expired route is looked up anew, which is not the case)."""
    sv._routes.update({k: dataclasses.replace(r, expires=time.monotonic() + 60) for k, r in cached.items()})


def test_a_batch_for_a_version_deleted_under_a_cached_route_is_404_and_stores_nothing(sv, owner, project, services):
    make_deployment(sv, owner)
    first = sv.submit_batch(owner, "serve", "adder", [{"n": 1}], version="v1")
    cached = dict(sv._routes)  # the route as another server process (or a request racing the delete) still has it
    assert cached
    sv.delete_version(owner, "serve", "adder", "v1")
    keep_cached(sv, cached)
    with pytest.raises(NotFound, match="v1"):
        sv.submit_batch(owner, "serve", "adder", [{"n": 2}, {"n": 3}], version="v1")
    with services.db.uow(readonly=True) as s:
        assert s.scalars(select(DeploymentRequestRow.id)).all() == []  # the first went with its version
    assert first[0].status == "pending"


def test_a_request_kept_for_a_version_deleted_meanwhile_is_answered_and_not_stored(sv, owner, project, services):
    make_deployment(sv, owner)
    assert upload(services, owner, zip_bytes({"deployment.py": GOOD})).status == "success"
    try:
        assert asyncio.run(sv.request(owner, "serve", "adder", {"n": 1})).status == "completed"
        cached = dict(sv._routes)
        sv.delete_version(owner, "serve", "adder", "v1")
        keep_cached(sv, cached)  # a route cached before the delete (another process, or a request in flight)
        with pytest.raises(NotFound, match="deleted"):  # not a 500: the instance went with the version
            asyncio.run(sv.request(owner, "serve", "adder", {"n": 2}))
        with services.db.uow(readonly=True) as s:
            assert s.scalars(select(DeploymentRequestRow.id)).all() == []
    finally:
        sv.shutdown()


SLOW = "import time\nclass Deployment:\n    def __init__(self, b, c):\n        pass\n    def request(self, d):\n        time.sleep(0.6)\n        return {'m': d['n']}\n"


def test_a_version_deleted_while_its_request_runs_answers_it_and_keeps_nothing(sv, owner, project, services):
    make_deployment(sv, owner)  # retention 'full' by default: the answer would be stored
    assert upload(services, owner, zip_bytes({"deployment.py": SLOW})).status == "success"

    async def scenario():
        running = asyncio.ensure_future(sv.request(owner, "serve", "adder", {"n": 5}))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(sv.delete_version, owner, "serve", "adder", "v1")
        return await running

    try:
        late = asyncio.run(scenario())
        assert late.status in ("completed", "failed")  # answered (or failed with its instance), never a 500
        with services.db.uow(readonly=True) as s:
            assert s.scalars(select(DeploymentRequestRow.id)).all() == []
    finally:
        sv.shutdown()
