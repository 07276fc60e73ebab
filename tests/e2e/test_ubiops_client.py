"""The real ``ubiops`` client (4.15) against a running ModelHarbor: projects, deployments, versions, package
uploads and builds, requests (structured, plain, batch), environment variables with secrets, failures; pipeline
requests (direct and batch) kept, read, listed, filtered and deleted."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.servers import create_user, running_server

ubiops = pytest.importorskip("ubiops")
KEY = "mh_e2e_ubiops_key_0123456789"
SECRET = "s3cr3t-planted-value-8c1f"

DOUBLER = (
    """
import hashlib
import os


class Deployment:
    def __init__(self, base_directory, context):
        self.factor = float(os.environ.get("FACTOR", "2"))
        self.context = context
        with open(os.path.join(base_directory, "note.txt")) as f:
            self.note = f.read().strip()

    def request(self, data):
        if data["x"] < 0:
            raise ValueError("x must not be negative")
        seen = hashlib.sha256(os.environ.get("TOKEN", "").encode()).hexdigest() == "HASH"
        return {"y": data["x"] * self.factor, "note": self.note, "secret_seen": seen}
"""
).replace("HASH", hashlib.sha256(SECRET.encode()).hexdigest())  # the package holds the hash, not the secret

ECHO = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return data.upper()
"""


def package(path: Path, files: dict[str, str], top: str = "deployment_package") -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{top}/{name}" if top else name, text)
    path.write_bytes(buf.getvalue())
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ubiops-e2e")
    with running_server(root, KEY) as url:
        yield url, root


@pytest.fixture(scope="module")
def api(served):
    url, _ = served
    config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": KEY})
    client = ubiops.ApiClient(config)
    yield ubiops.CoreApi(client)
    client.close()


def wait_built(api, project, deployment, version, timeout=120):
    ubiops.utils.wait_for_deployment_version(api.api_client, project, deployment, version, timeout=timeout, quiet=True)
    return api.deployment_versions_get(project, deployment, version)


def wait_revision(api, project, deployment, version, revision, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        rev = api.revisions_get(project, deployment, revision, version)
        if rev.status in ("success", "failed") or time.monotonic() > deadline:
            return rev
        time.sleep(0.3)


def test_status_needs_no_key(served):
    url, _ = served
    config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": "wrong"})
    with ubiops.ApiClient(config) as client:
        assert ubiops.CoreApi(client).service_status().status == "ok"


def test_full_flow(api, served, tmp_path):
    _, root = served
    assert api.service_status().status == "ok"
    project = api.projects_create(ubiops.ProjectCreate(name="demo", organization_name="default"))
    assert project.name == "demo" and project.organization_name == "default"
    assert "demo" in [p.name for p in api.projects_list()]
    envs = api.environments_list("demo")
    assert any(e.system for e in envs)
    base = next(e.name for e in envs if e.system)

    api.deployments_create(
        "demo",
        ubiops.DeploymentCreate(
            name="doubler",
            input_type="structured",
            output_type="structured",
            input_fields=[ubiops.DeploymentInputFieldCreate(name="x", data_type="double")],
            output_fields=[
                ubiops.DeploymentOutputFieldCreate(name="y", data_type="double"),
                ubiops.DeploymentOutputFieldCreate(name="note", data_type="string"),
                ubiops.DeploymentOutputFieldCreate(name="secret_seen", data_type="bool"),
            ],
        ),
    )
    version = api.deployment_versions_create(
        "demo", "doubler", ubiops.DeploymentVersionCreate(version="v1", environment=base, maximum_idle_time=60)
    )
    assert version.status == "unavailable" and version.latest_revision is None
    assert api.deployments_get("demo", "doubler").default_version == "v1"

    # environment variables: project level, and a secret at version level
    api.project_environment_variables_create(
        "demo", ubiops.EnvironmentVariableCreate(name="FACTOR", value="3", secret=False)
    )
    secret = api.deployment_version_environment_variables_create(
        "demo", "doubler", "v1", ubiops.EnvironmentVariableCreate(name="TOKEN", value=SECRET, secret=True)
    )
    assert secret.value is None and secret.secret is True
    inherited = api.deployment_version_environment_variables_list("demo", "doubler", "v1")
    assert {(e.name, e.inheritance_type, e.value) for e in inherited} == {
        ("FACTOR", "project", "3"),
        ("TOKEN", None, None),
    }

    upload = api.revisions_file_upload(
        "demo", "doubler", "v1", file=package(tmp_path / "doubler.zip", {"deployment.py": DOUBLER, "note.txt": "hi"})
    )
    assert upload.success and upload.revision
    built = wait_built(api, "demo", "doubler", "v1")
    assert built.latest_revision == upload.revision and built.status == "available"
    assert api.revisions_get("demo", "doubler", upload.revision, "v1").status == "success"

    answer = api.deployment_requests_create("demo", "doubler", data={"x": 2.5})
    assert answer.status == "completed", answer.error_message
    assert answer.result == {"y": 7.5, "note": "hi", "secret_seen": True}
    pinned = api.deployment_version_requests_create("demo", "doubler", "v1", data={"x": 1})
    assert pinned.result["y"] == 3.0
    failed = api.deployment_requests_create("demo", "doubler", data={"x": -1})
    assert failed.status == "failed" and "x must not be negative" in failed.error_message
    assert api.deployment_requests_create("demo", "doubler", data={"x": 1}).status == "completed"  # still serving
    with pytest.raises(ubiops.ApiException) as e:
        api.deployment_requests_create("demo", "doubler", data={"z": 1})
    assert e.value.status == 400 and "'z'" in e.value.body
    with pytest.raises(ubiops.ApiException) as e:
        api.deployment_requests_create("demo", "doubler", data={"x": "two"})
    assert e.value.status == 400 and "'x'" in e.value.body

    # batch requests: answered in the background, polled one by one and all at once (collect)
    queued = api.batch_deployment_requests_create("demo", "doubler", data=[{"x": 1}, {"x": -1}])
    assert [q.status for q in queued] == ["pending", "pending"]
    deadline = time.monotonic() + 60
    while True:
        got = api.deployment_requests_batch_get("demo", "doubler", data=[q.id for q in queued])
        if all(g.status in ("completed", "failed") for g in got) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [g.id for g in got] == [q.id for q in queued]
    assert got[0].status == "completed" and got[0].result["y"] == 3.0
    assert got[1].status == "failed" and "negative" in got[1].error_message
    assert api.deployment_requests_get("demo", "doubler", queued[0].id).result["y"] == 3.0
    listed = api.deployment_requests_list("demo", "doubler")
    assert {q.id for q in queued} <= {r.id for r in listed}
    assert {r.id for r in api.deployment_requests_list("demo", "doubler", status="failed")} >= {queued[1].id}
    assert api.deployment_requests_output_get("demo", "doubler", queued[0].id).json()["y"] == 3.0  # a file
    # finished ones cannot be cancelled; the batch cancel and delete answer counts
    with pytest.raises(ubiops.ApiException) as e:
        api.deployment_requests_update("demo", "doubler", queued[0].id, data={"status": "cancelled"})
    assert e.value.status == 400 and "completed" in e.value.body
    assert api.deployment_requests_batch_cancel("demo", "doubler", data=[q.id for q in queued]) == {
        "success": True,
        "cancelled": 0,
    }
    assert api.deployment_version_requests_batch_delete("demo", "doubler", "v1", data=[queued[1].id])["deleted"] == 1
    with pytest.raises(ubiops.ApiException) as e:
        api.batch_deployment_requests_create("demo", "doubler", data=[{"x": 1}, {"nope": 2}])
    assert e.value.status == 400
    api.deployment_requests_delete("demo", "doubler", queued[0].id)

    # a worker that crashes is replaced: kill the instance's process, the next request still answers
    import psutil

    server_proc = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if f"--port {served[0].rsplit(':', 1)[1]}" in " ".join(p.info["cmdline"] or [])
    )

    def is_worker(c: psutil.Process) -> bool:
        try:
            return "worker_main" in " ".join(c.cmdline())
        except psutil.NoSuchProcess:  # a sandbox's short-lived launcher, already gone
            return False

    workers = [c for c in server_proc.children(recursive=True) if is_worker(c)]
    assert workers, "the deployment should be running in a worker process"
    for w in workers:
        with contextlib.suppress(psutil.NoSuchProcess):  # its sandbox ended with an earlier one's
            w.kill()
    psutil.wait_procs(workers, timeout=10)
    again = api.deployment_requests_create("demo", "doubler", data={"x": 4})
    assert again.status == "completed" and again.result["y"] == 12.0, again.error_message

    # a plain deployment beside it
    api.deployments_create("demo", ubiops.DeploymentCreate(name="echo", input_type="plain", output_type="plain"))
    api.deployment_versions_create("demo", "echo", ubiops.DeploymentVersionCreate(version="v1", environment=base))
    api.revisions_file_upload(
        "demo", "echo", "v1", file=package(tmp_path / "echo.zip", {"deployment.py": ECHO}, top="")
    )
    wait_built(api, "demo", "echo", "v1")
    assert api.deployment_requests_create("demo", "echo", data="hello").result == "HELLO"

    # broken packages fail their build with a reason; the good version keeps serving
    bad = api.revisions_file_upload(
        "demo", "echo", "v1", file=package(tmp_path / "bad.zip", {"deployment.py": "class Deployment(:\n"})
    )
    rev = wait_revision(api, "demo", "echo", "v1", bad.revision)
    assert rev.status == "failed" and "syntax error" in rev.error_message
    nodep = api.revisions_file_upload("demo", "echo", "v1", file=package(tmp_path / "n.zip", {"readme.md": "x"}))
    assert "deployment.py" in wait_revision(api, "demo", "echo", "v1", nodep.revision).error_message
    crash = api.revisions_file_upload(
        "demo",
        "echo",
        "v1",
        file=package(
            tmp_path / "c.zip",
            {
                "deployment.py": "class Deployment:\n    def __init__(self, b, c):\n        raise RuntimeError('boom')\n"
                "    def request(self, d):\n        return d\n"
            },
        ),
    )
    crashed = wait_revision(api, "demo", "echo", "v1", crash.revision)
    assert crashed.status == "failed" and "boom" in crashed.error_message
    assert api.deployment_requests_create("demo", "echo", data="still").result == "STILL"

    # the secret is nowhere in the database file, and never in an answer
    db_bytes = b"".join(p.read_bytes() for p in (root / "data").glob("modelharbor.db*"))
    assert SECRET.encode() not in db_bytes
    assert SECRET not in str(api.deployment_version_environment_variables_get("demo", "doubler", secret.id, "v1"))

    # deletes
    api.deployment_versions_delete("demo", "echo", "v1")
    api.deployments_delete("demo", "echo")
    with pytest.raises(ubiops.ApiException) as e:
        api.deployments_get("demo", "echo")
    assert e.value.status == 404
    api.projects_delete("demo")
    assert "demo" not in [p.name for p in api.projects_list()]


def test_auth_and_unknown_objects(api, served):
    url, _ = served
    config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": "Token nope"})
    with ubiops.ApiClient(config) as client, pytest.raises(ubiops.ApiException) as e:
        ubiops.CoreApi(client).projects_list()
    assert e.value.status == 401
    with pytest.raises(ubiops.ApiException) as e:
        api.deployments_list("no-such-project")
    assert e.value.status == 404
    with pytest.raises(ubiops.ApiException) as e:
        api.projects_create(ubiops.ProjectCreate(name="Bad_Name", organization_name="default"))
    assert e.value.status == 400


INC = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return {"y": data["x"] + 1}
"""

DBL = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data["x"] < 0:
            raise ValueError("cannot double a negative number")
        return {"y": data["x"] * 2}
"""


def poll_pipeline(api, project, pipeline, ids, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        got = [api.pipeline_requests_get(project, pipeline, i) for i in ids]
        if all(g.status in ("completed", "failed") for g in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_pipeline_requests(api, served, tmp_path):
    url, root = served
    api.projects_create(ubiops.ProjectCreate(name="pipes", organization_name="default"))
    base = next(e.name for e in api.environments_list("pipes") if e.system)
    fields = {
        "input_type": "structured",
        "output_type": "structured",
        "input_fields": [ubiops.DeploymentInputFieldCreate(name="x", data_type="double")],
        "output_fields": [ubiops.DeploymentOutputFieldCreate(name="y", data_type="double")],
    }
    for name, code in (("inc", INC), ("dbl", DBL)):
        api.deployments_create("pipes", ubiops.DeploymentCreate(name=name, **fields))
        api.deployment_versions_create(
            "pipes", name, ubiops.DeploymentVersionCreate(version="v1", environment=base, maximum_idle_time=60)
        )
        api.revisions_file_upload("pipes", name, "v1", file=package(tmp_path / f"{name}.zip", {"deployment.py": code}))
    for name in ("inc", "dbl"):
        assert wait_built(api, "pipes", name, "v1").status == "available"

    api.pipelines_create(
        "pipes",
        ubiops.PipelineCreate(
            name="chain",
            input_type="structured",
            input_fields=[ubiops.PipelineInputFieldCreate(name="x", data_type="double")],
            output_type="structured",
            output_fields=[ubiops.PipelineOutputFieldCreate(name="y", data_type="double")],
        ),
    )

    def feed(source, source_field, dest, dest_field):
        mapping = [ubiops.AttachmentFieldsList(source_field_name=source_field, destination_field_name=dest_field)]
        return ubiops.AttachmentsCreate(
            destination_name=dest, sources=[ubiops.AttachmentSourcesList(source_name=source, mapping=mapping)]
        )

    graph = {
        "objects": [
            ubiops.PipelineVersionObjectCreate(name="plus", reference_name="inc"),
            ubiops.PipelineVersionObjectCreate(name="times", reference_name="dbl"),
        ],
        "attachments": [
            feed("pipeline_start", "x", "plus", "x"),
            feed("plus", "y", "times", "x"),
            feed("times", "y", "pipeline_end", "y"),
        ],
    }
    for version, mode in (("v1", "full"), ("meta", "metadata")):
        made = api.pipeline_versions_create(
            "pipes", "chain", ubiops.PipelineVersionCreate(version=version, request_retention_mode=mode, **graph)
        )
        assert made.request_retention_mode == mode

    # a direct request (the default version, retention full): answered, kept with data, result and its steps
    answer = api.pipeline_requests_create("pipes", "chain", data={"x": 1})
    assert (answer.status, answer.result, answer.version) == ("completed", {"y": 4.0}, "v1"), answer.error_message
    assert [d.pipeline_object for d in answer.deployment_requests] == ["plus", "times"]
    kept = api.pipeline_requests_get("pipes", "chain", answer.id)
    assert (kept.status, kept.success, kept.request_data, kept.result) == ("completed", True, {"x": 1}, {"y": 4.0})
    assert kept.time_created and kept.time_completed and kept.pipeline_timeout == 3600
    assert [(d.id, d.deployment, d.status) for d in kept.deployment_requests] == [
        (d.id, d.deployment, "completed") for d in answer.deployment_requests
    ]
    step = api.deployment_requests_get("pipes", "inc", kept.deployment_requests[0].id)  # the step's own request
    assert (step.request_data, step.result) == ({"x": 1}, {"y": 2.0})
    assert api.pipeline_version_requests_get("pipes", "chain", answer.id, "v1").id == answer.id
    assert api.pipeline_requests_get("pipes", "chain", answer.id, metadata_only=True).result is None
    assert json.loads(api.pipeline_requests_input_get("pipes", "chain", answer.id).read()) == {"x": 1}
    assert json.loads(api.pipeline_version_requests_output_get("pipes", "chain", answer.id, "v1").read()) == {"y": 4.0}
    failed = api.pipeline_requests_create("pipes", "chain", data={"x": -5})
    assert failed.status == "failed" and "negative" in failed.error_message

    # batch requests: queued, answered in the background, polled with get
    queued = api.batch_pipeline_requests_create("pipes", "chain", data=[{"x": 2}, {"x": -9}])
    assert [(q.status, q.version) for q in queued] == [("pending", "v1"), ("pending", "v1")]
    got = poll_pipeline(api, "pipes", "chain", [q.id for q in queued])
    assert (got[0].status, got[0].result, got[0].request_data) == ("completed", {"y": 6.0}, {"x": 2})
    assert got[1].status == "failed" and "negative" in got[1].error_message
    assert len(got[0].deployment_requests) == 2
    collected = api.pipeline_requests_batch_get("pipes", "chain", data=[queued[1].id, answer.id])
    assert [c.id for c in collected] == [queued[1].id, answer.id]
    with pytest.raises(ubiops.ApiException) as e:
        api.batch_pipeline_requests_create("pipes", "chain", data=[{"x": 1}, {"nope": 2}])
    assert e.value.status == 400 and "error" in json.loads(e.value.body)

    # retention metadata: kept without data or result
    meta = api.pipeline_version_requests_create("pipes", "chain", "meta", data={"x": 3})
    assert meta.result == {"y": 8.0}
    kept_meta = api.pipeline_version_requests_get("pipes", "chain", meta.id, "meta")
    assert (kept_meta.status, kept_meta.request_data, kept_meta.result) == ("completed", None, None)
    with pytest.raises(ubiops.ApiException) as e:
        api.pipeline_requests_input_get("pipes", "chain", meta.id)
    assert e.value.status == 404

    # lists and their filters
    every = {r.id for r in api.pipeline_requests_list("pipes", "chain")}
    assert every == {answer.id, failed.id, meta.id, *(q.id for q in queued)}
    assert {r.id for r in api.pipeline_requests_list("pipes", "chain", status="failed")} == {failed.id, queued[1].id}
    assert [r.id for r in api.pipeline_version_requests_list("pipes", "chain", "meta")] == [meta.id]
    assert len(api.pipeline_requests_list("pipes", "chain", limit=2)) == 2
    assert api.pipeline_requests_list("pipes", "chain", start_date="2999-01-01T00:00:00Z") == []
    assert len(api.pipeline_requests_list("pipes", "chain", end_date="2999-01-01T00:00:00Z")) == len(every)
    for bad in ({"status": "finished"}, {"start_date": "soon"}, {"limit": 0}):
        with pytest.raises(ubiops.ApiException) as e:
            api.pipeline_requests_list("pipes", "chain", **bad)
        assert e.value.status == 400 and json.loads(e.value.body)["error"]

    # a user without access: a viewer reads, but may not make (or delete) requests
    config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": create_user(root, "vera", "viewer")})
    with ubiops.ApiClient(config) as client:
        viewer = ubiops.CoreApi(client)
        assert viewer.pipeline_requests_get("pipes", "chain", answer.id).id == answer.id
        for call in (
            lambda: viewer.pipeline_requests_create("pipes", "chain", data={"x": 1}),
            lambda: viewer.batch_pipeline_requests_create("pipes", "chain", data=[{"x": 1}]),
            lambda: viewer.pipeline_requests_delete("pipes", "chain", answer.id),
        ):
            with pytest.raises(ubiops.ApiException) as e:
                call()
            assert e.value.status == 403 and json.loads(e.value.body)["error"]

    # deletes: one, several, then the pipeline with what it kept
    api.pipeline_requests_delete("pipes", "chain", failed.id)
    with pytest.raises(ubiops.ApiException) as e:
        api.pipeline_requests_get("pipes", "chain", failed.id)
    assert e.value.status == 404 and json.loads(e.value.body)["error"]
    assert api.pipeline_requests_batch_delete("pipes", "chain", data=[q.id for q in queued])["deleted"] == 2
    assert {r.id for r in api.pipeline_requests_list("pipes", "chain")} == {answer.id, meta.id}
    api.pipeline_version_requests_delete("pipes", "chain", meta.id, "meta")
    api.pipelines_delete("pipes", "chain")
    api.projects_delete("pipes")
