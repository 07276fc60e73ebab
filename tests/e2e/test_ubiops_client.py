"""The real ``ubiops`` client (4.15) against a running ModelHarbor: projects, deployments, versions, package
uploads and builds, requests (structured, plain, batch), environment variables with secrets, failures."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path

import pytest

from tests.servers import running_server

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

    # batch requests: answered in the background, polled one by one
    queued = api.batch_deployment_requests_create("demo", "doubler", data=[{"x": 1}, {"x": -1}])
    assert [q.status for q in queued] == ["pending", "pending"]
    deadline = time.monotonic() + 60
    while True:
        got = [api.deployment_requests_get("demo", "doubler", q.id) for q in queued]
        if all(g.status in ("completed", "failed") for g in got) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert got[0].status == "completed" and got[0].result["y"] == 3.0
    assert got[1].status == "failed" and "negative" in got[1].error_message
    listed = api.deployment_requests_list("demo", "doubler")
    assert {q.id for q in queued} <= {r.id for r in listed}
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
    workers = [c for c in server_proc.children(recursive=True) if "worker_main" in " ".join(c.cmdline())]
    assert workers, "the deployment should be running in a worker process"
    for w in workers:
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
