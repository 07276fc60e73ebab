"""The real ``ubiops`` client (4.15) exporting a project and importing it elsewhere on a running ModelHarbor:
exports_create → wait_for_export → exports_download → imports_create → wait_for_import (confirmation) →
imports_update (a secret given again) → completed → the imported deployment answers; imports from an export id
with skip_confirmation; downloads, lists, deletes and refusals."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path

import pytest

from tests.servers import running_server

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

ubiops = pytest.importorskip("ubiops")
KEY = "mh_e2e_ubiops_transfer_key_012345"
SECRET = "s3cr3t-transfer-planted-7d41"

MULTIPLIER = (
    """
import hashlib
import os


class Deployment:
    def __init__(self, base_directory, context):
        self.factor = float(os.environ.get("FACTOR", "1"))

    def request(self, data):
        seen = hashlib.sha256(os.environ.get("TOKEN", "").encode()).hexdigest() == "HASH"
        return {"y": data["x"] * self.factor, "secret_seen": seen}
"""
).replace("HASH", hashlib.sha256(SECRET.encode()).hexdigest())

ECHO = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return data.upper()
"""


def package(path: Path, source: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("deployment_package/deployment.py", source)
    path.write_bytes(buf.getvalue())
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ubiops-transfer-e2e")
    with running_server(root, KEY) as url:
        yield url, root


@pytest.fixture(scope="module")
def api(served, tmp_path_factory):
    url, _ = served
    config = ubiops.Configuration(host=f"{url}/v2", api_key={"Authorization": KEY})
    config.temp_folder_path = str(tmp_path_factory.mktemp("downloads"))
    client = ubiops.ApiClient(config)
    yield ubiops.CoreApi(client)
    client.close()


def wait_built(api, project, deployment, version="v1"):
    ubiops.utils.wait_for_deployment_version(api.api_client, project, deployment, version, timeout=120, quiet=True)


def wait_status(api, project, import_id, wanted, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        imp = api.imports_get(project, import_id)
        if imp.status in (wanted, "failed") or time.monotonic() > deadline:
            return imp
        time.sleep(0.3)


def test_export_then_import_with_confirmation_and_skip(api, served, tmp_path):
    _, root = served
    _project(api, "exp-src")
    _project(api, "exp-dst")
    base = next(e.name for e in api.environments_list("exp-src") if e.system)
    api.deployments_create(
        "exp-src",
        ubiops.DeploymentCreate(
            name="multiplier",
            input_type="structured",
            output_type="structured",
            input_fields=[ubiops.DeploymentInputFieldCreate(name="x", data_type="double")],
            output_fields=[
                ubiops.DeploymentOutputFieldCreate(name="y", data_type="double"),
                ubiops.DeploymentOutputFieldCreate(name="secret_seen", data_type="bool"),
            ],
        ),
    )
    api.deployment_versions_create(
        "exp-src", "multiplier", ubiops.DeploymentVersionCreate(version="v1", environment=base, maximum_idle_time=60)
    )
    api.deployment_environment_variables_create(
        "exp-src", "multiplier", ubiops.EnvironmentVariableCreate(name="FACTOR", value="3", secret=False)
    )
    api.deployment_version_environment_variables_create(
        "exp-src", "multiplier", "v1", ubiops.EnvironmentVariableCreate(name="TOKEN", value=SECRET, secret=True)
    )
    api.revisions_file_upload("exp-src", "multiplier", "v1", file=package(tmp_path / "m.zip", MULTIPLIER))
    api.deployments_create("exp-src", ubiops.DeploymentCreate(name="echo", input_type="plain", output_type="plain"))
    api.deployment_versions_create("exp-src", "echo", ubiops.DeploymentVersionCreate(version="v1", environment=base))
    api.revisions_file_upload("exp-src", "echo", "v1", file=package(tmp_path / "e.zip", ECHO))
    wait_built(api, "exp-src", "multiplier")
    wait_built(api, "exp-src", "echo")

    # --- export everything, download it ----------------------------------------------------------
    export = api.exports_create("exp-src", ubiops.ExportCreate(description="all of it"), all=True, packages=True)
    assert export.status == "pending" and export.size is None
    ubiops.utils.wait_for_export(api.api_client, "exp-src", export.id, quiet=True)
    detail = api.exports_get("exp-src", export.id)
    assert detail.status == "completed" and detail.size > 0 and detail.description == "all of it"
    assert set(detail.deployments) == {"multiplier", "echo"} and detail.services == {}
    assert [e.id for e in api.exports_list("exp-src", status="completed")] == [export.id]
    path = api.exports_download("exp-src", export.id, _preload_content=True)
    assert Path(path).name == f"export_exp-src_{export.id[:8]}.zip"
    data = Path(path).read_bytes()
    assert len(data) == detail.size and SECRET.encode() not in data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert all(SECRET.encode() not in zf.read(n) for n in names)
    assert any(
        n.endswith("deployments/deployment_multiplier/versions/deployment_multiplier_version_v1.zip") for n in names
    )
    with api.exports_download("exp-src", export.id) as response:
        assert response.headers["Content-Type"] == "application/zip"
        assert int(response.headers["Content-Length"]) == len(data)
        assert response.getfilename() == Path(path).name and response.read() == data

    # --- import the downloaded file into another project, confirming it --------------------------
    imp = api.imports_create("exp-dst", file=path)
    assert imp.status == "pending" and imp.size == len(data)
    ubiops.utils.wait_for_import(api.api_client, "exp-dst", imp.id, quiet=True)  # stops at confirmation
    found = api.imports_get("exp-dst", imp.id)
    assert found.status == "confirmation", found.error_message
    version = found.deployments["multiplier"]["versions"]["v1"]
    assert version["environment_variables"]["TOKEN"] == {"value": None, "secret": True}
    assert version["zip"] == "deployments/deployment_multiplier/versions/deployment_multiplier_version_v1.zip"
    with pytest.raises(ubiops.ApiException) as e:  # the secret must be given again
        api.imports_update("exp-dst", imp.id, ubiops.ImportUpdate(deployments=found.deployments))
    assert e.value.status == 400 and "TOKEN" in e.value.body
    version["environment_variables"]["TOKEN"]["value"] = SECRET
    updated = api.imports_update(
        "exp-dst",
        imp.id,
        ubiops.ImportUpdate(
            deployments=found.deployments,
            pipelines=found.pipelines,
            environment_variables=found.environment_variables,
            environments=found.environments,
        ),
    )
    assert updated.status in ("confirmation_pending", "processing", "completed")
    assert updated.deployments["multiplier"]["versions"]["v1"]["environment_variables"]["TOKEN"]["value"] is None
    ubiops.utils.wait_for_import(api.api_client, "exp-dst", imp.id, quiet=True)
    done = wait_status(api, "exp-dst", imp.id, "completed")
    assert done.status == "completed", done.error_message
    assert sorted(d.name for d in api.deployments_list("exp-dst")) == ["echo", "multiplier"]
    wait_built(api, "exp-dst", "multiplier")
    answer = api.deployment_requests_create("exp-dst", "multiplier", data={"x": 2})
    assert answer.status == "completed", answer.error_message
    assert answer.result == {"y": 6.0, "secret_seen": True}
    assert [i.id for i in api.imports_list("exp-dst", status="completed")] == [imp.id]
    with api.imports_download("exp-dst", imp.id) as response:
        assert response.getfilename().endswith(".zip") and response.read() == data

    # --- from an export id, without confirmation ---------------------------------------------------
    echo_export = api.exports_create(
        "exp-src", ubiops.ExportCreate(deployments={"echo": {"versions": {"v1": {}}}}), packages=True
    )
    ubiops.utils.wait_for_export(api.api_client, "exp-src", echo_export.id, quiet=True)
    api.deployments_delete("exp-src", "echo")
    again = api.imports_create("exp-src", export_id=echo_export.id, skip_confirmation=True)
    ubiops.utils.wait_for_import(api.api_client, "exp-src", again.id, quiet=True)
    assert api.imports_get("exp-src", again.id).status == "completed"
    wait_built(api, "exp-src", "echo")
    assert api.deployment_requests_create("exp-src", "echo", data="hello").result == "HELLO"
    clash = api.imports_create("exp-src", export_id=echo_export.id, skip_confirmation=True)
    with pytest.raises(ubiops.utils.exceptions.StatusError, match="Already in project"):
        ubiops.utils.wait_for_import(api.api_client, "exp-src", clash.id, quiet=True)

    # the secret is nowhere in the database file
    db_bytes = b"".join(p.read_bytes() for p in (root / "data").glob("modelharbor.db*"))
    assert SECRET.encode() not in db_bytes

    # --- deletes --------------------------------------------------------------------------------
    api.imports_delete("exp-src", clash.id)
    api.exports_delete("exp-src", echo_export.id)
    for call in (lambda: api.imports_get("exp-src", clash.id), lambda: api.exports_get("exp-src", echo_export.id)):
        with pytest.raises(ubiops.ApiException) as e:
            call()
        assert e.value.status == 404
    assert api.imports_get("exp-src", again.id).status == "completed"  # its zip is its own


def _project(api, name: str) -> str:
    api.projects_create(ubiops.ProjectCreate(name=name, organization_name="default"))
    return name


def test_refusals(api, tmp_path):
    _project(api, "exp-refusals")
    with pytest.raises(ubiops.ApiException) as e:
        api.exports_create("exp-refusals", ubiops.ExportCreate(deployments={"nope": {}}))
    assert e.value.status == 400 and "nope" in e.value.body
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_create("exp-refusals")
    assert e.value.status == 400
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_create("exp-refusals", import_link="http://example.org/x.zip")
    assert e.value.status == 400 and "https" in e.value.body
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_create("exp-refusals", import_link="https://127.0.0.1/x.zip")
    assert e.value.status == 400 and "loopback" in e.value.body
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_create("exp-refusals", export_id="no-such-export")
    assert e.value.status == 404
    with pytest.raises(ubiops.ApiException) as e:
        api.exports_list("exp-refusals", status="done")
    assert e.value.status == 400
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not a zip at all" * 10)
    imp = api.imports_create("exp-refusals", file=str(bogus), skip_confirmation=False)
    with pytest.raises(ubiops.utils.exceptions.StatusError, match="not a zip"):
        ubiops.utils.wait_for_import(api.api_client, "exp-refusals", imp.id, quiet=True)
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_update("exp-refusals", imp.id, ubiops.ImportUpdate(deployments={"x": {}}))
    assert e.value.status == 400
    with pytest.raises(ubiops.ApiException) as e:
        api.imports_get("no-such-project", imp.id)
    assert e.value.status == 404


USES_APPDIRS = """
import appdirs


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        return {"y": data["x"] * 2, "appdirs": appdirs.__version__}
"""


def test_environment_tags_travel_with_their_packages(api, tmp_path):
    """A version on a custom environment's built tag: exported with the tag's environment package, imported into
    another project, where the tag is built again from it and the version runs on it."""
    _project(api, "tags-src")
    _project(api, "tags-dst")
    base = next(e.name for e in api.environments_list("tags-src") if e.system)
    api.environments_create("tags-src", ubiops.EnvironmentCreate(name="science", description="with appdirs"))
    api.environment_tags_create("tags-src", "science", ubiops.EnvironmentTagCreate(name="gpu-v2"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("environment_package/requirements.txt", "appdirs==1.4.4\n")
    env_package = tmp_path / "science.zip"
    env_package.write_bytes(buf.getvalue())
    api.environment_tags_build("tags-src", "science", "gpu-v2", file=str(env_package), base_environment_name=base)
    ubiops.utils.wait_for_environment(api.api_client, "tags-src", "science", "gpu-v2", timeout=180, quiet=True)
    api.deployments_create(
        "tags-src",
        ubiops.DeploymentCreate(
            name="doubler",
            input_type="structured",
            output_type="structured",
            input_fields=[ubiops.DeploymentInputFieldCreate(name="x", data_type="int")],
            output_fields=[
                ubiops.DeploymentOutputFieldCreate(name="y", data_type="int"),
                ubiops.DeploymentOutputFieldCreate(name="appdirs", data_type="string"),
            ],
        ),
    )
    api.deployment_versions_create(
        "tags-src",
        "doubler",
        ubiops.DeploymentVersionCreate(
            version="v1", environment_name="science", environment_tag="gpu-v2", maximum_idle_time=60
        ),
    )
    api.revisions_file_upload("tags-src", "doubler", "v1", file=package(tmp_path / "d.zip", USES_APPDIRS))
    wait_built(api, "tags-src", "doubler")

    export = api.exports_create("tags-src", ubiops.ExportCreate(), all=True)
    ubiops.utils.wait_for_export(api.api_client, "tags-src", export.id, quiet=True)
    path = api.exports_download("tags-src", export.id, _preload_content=True)
    with zipfile.ZipFile(path) as zf:
        tag_zip = next(
            n
            for n in zf.namelist()
            if n.endswith("environments/environment_science/tags/environment_science_tag_gpu-v2.zip")
        )
        assert zf.read(tag_zip) == env_package.read_bytes()

    imp = api.imports_create("tags-dst", file=path)
    assert wait_status(api, "tags-dst", imp.id, "confirmation").status == "confirmation"
    found = api.imports_get("tags-dst", imp.id)
    assert found.environments["science"]["tags"]["gpu-v2"]["zip"].endswith("environment_science_tag_gpu-v2.zip")
    assert found.deployments["doubler"]["versions"]["v1"]["environment_tag"] == "gpu-v2"
    api.imports_update(
        "tags-dst", imp.id, ubiops.ImportUpdate(deployments=found.deployments, environments={"science": {}})
    )
    done = wait_status(api, "tags-dst", imp.id, "completed")
    assert done.status == "completed", done.error_message
    assert [t.name for t in api.environment_tags_list("tags-dst", "science")] == ["latest", "gpu-v2"]
    ubiops.utils.wait_for_environment(api.api_client, "tags-dst", "science", "gpu-v2", timeout=180, quiet=True)
    tag = api.environment_tags_get("tags-dst", "science", "gpu-v2")
    assert (tag.status, tag.built, tag.base_environment_name) == ("success", True, base)
    version = api.deployment_versions_get("tags-dst", "doubler", "v1")
    assert (version.environment_name, version.environment_tag) == ("science", "gpu-v2")
    wait_built(api, "tags-dst", "doubler")
    answer = api.deployment_requests_create("tags-dst", "doubler", data={"x": 21})
    assert answer.status == "completed", answer.error_message
    assert answer.result == {"y": 42, "appdirs": "1.4.4"}
