"""The real ``ubiops`` client (4.15) with environment packages on a running ModelHarbor: environments_create →
environment_tags_create → environment_tags_build (a zip whose requirements.txt installs a small wheel from the
machine's package index) → wait_for_environment → a version on that tag whose deployment.py imports it →
predictions; failing builds with their reason and log; rebuilds of tags and revisions; refusals in the error
shape. One environment is built once for the module."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.servers import running_server

ubiops = pytest.importorskip("ubiops")
KEY = "mh_e2e_ubiops_environments_key_0123"
PROJECT = "envs"

USES_APPDIRS = """
import sys
import appdirs


class Deployment:
    def __init__(self, base_directory, context):
        self.version = appdirs.__version__

    def request(self, data):
        return {"y": data["x"] * 2, "appdirs": self.version, "prefix": sys.prefix}
"""


def zipped(path: Path, files: dict[str, str], top: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{top}/{name}" if top else name, text)
    path.write_bytes(buf.getvalue())
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ubiops-environments-e2e")
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


@pytest.fixture(scope="module")
def raw(served):
    url, _ = served
    with httpx.Client(base_url=f"{url}/v2/projects/{PROJECT}", headers={"Authorization": f"Token {KEY}"}) as c:
        yield c


def wait_tag(api, env, tag, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        got = api.environment_tags_get(PROJECT, env, tag)
        if got.status in ("success", "failed") or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def wait_revision(api, deployment, version, revision, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        rev = api.revisions_get(PROJECT, deployment, revision, version)
        if rev.status in ("success", "failed") or time.monotonic() > deadline:
            return rev
        time.sleep(0.3)


@pytest.fixture(scope="module")
def science(api, tmp_path_factory):
    """Project ``envs`` with environment ``science`` whose tag ``v1`` built appdirs (once for the module)."""
    api.projects_create(ubiops.ProjectCreate(name=PROJECT, organization_name="default"))
    base = next(e.name for e in api.environments_list(PROJECT) if e.system)
    env = api.environments_create(PROJECT, ubiops.EnvironmentCreate(name="science", description="with appdirs"))
    assert env.name == "science" and not env.system
    tag = api.environment_tags_create(PROJECT, "science", ubiops.EnvironmentTagCreate(name="v1"))
    assert (tag.name, tag.environment, tag.status, tag.built) == ("v1", "science", "success", False)
    path = zipped(
        tmp_path_factory.mktemp("packages") / "science.zip",
        {"requirements.txt": "appdirs==1.4.4\n", "ubiops.yaml": "apt:\n  packages: []\n"},
        top="environment_package",
    )
    done = api.environment_tags_build(
        PROJECT, "science", "v1", file=path, base_environment_name=base, base_environment_tag="latest"
    )
    assert done.success is True
    ubiops.utils.wait_for_environment(api.api_client, PROJECT, "science", "v1", timeout=180, quiet=True)
    return {"base": base, "package": path}


def test_tags_as_the_client_sees_them(api, science, raw):
    tags = api.environment_tags_list(PROJECT, "science")
    assert [t.name for t in tags] == ["latest", "v1"]
    latest, v1 = tags
    assert (latest.status, latest.built, latest.base_environment_name) == ("success", False, science["base"])
    assert (v1.status, v1.built, v1.base_environment_name, v1.base_environment_tag) == (
        "success",
        True,
        science["base"],
        "latest",
    )
    assert v1.size > 0 and v1.error_message is None
    detail = raw.get("/environments/science/tags/v1").json()
    assert "appdirs" in detail["build_log"]  # a ModelHarbor addition of the detail
    files = {f.name: f.content for f in api.environment_tag_dependencies_list(PROJECT, "science", "v1")}
    assert files["requirements.txt"] == "appdirs==1.4.4\n" and "apt" in files["ubiops.yaml"]
    with api.environment_tags_download(PROJECT, "science", "v1") as response:
        assert response.getfilename() == "science_v1.zip"
        assert response.read() == Path(science["package"]).read_bytes()

    unnamed = api.environment_tags_create(
        PROJECT, "science", ubiops.EnvironmentTagCreate(supports_request_format=False)
    )
    assert (unnamed.name, unnamed.supports_request_format) == ("v2", False)
    assert [t.name for t in api.environment_tags_list(PROJECT, "science", supports_request_format=False)] == ["v2"]
    changed = api.environment_tags_update(
        PROJECT, "science", "v2", ubiops.EnvironmentTagUpdate(supports_request_format=True)
    )
    assert changed.supports_request_format is True
    api.environment_tags_delete(PROJECT, "science", "v2")
    with pytest.raises(ubiops.ApiException) as e:
        api.environment_tags_get(PROJECT, "science", "v2")
    assert e.value.status == 404

    system = api.environment_tags_list(PROJECT, science["base"])
    assert [(t.name, t.status) for t in system] == [("latest", "success")]
    assert api.environments_get(PROJECT, science["base"]).system is True


def test_a_version_runs_in_the_built_tag(api, science, tmp_path, served):
    api.deployments_create(
        PROJECT,
        ubiops.DeploymentCreate(
            name="doubler",
            input_type="structured",
            output_type="structured",
            input_fields=[ubiops.DeploymentInputFieldCreate(name="x", data_type="int")],
            output_fields=[
                ubiops.DeploymentOutputFieldCreate(name="y", data_type="int"),
                ubiops.DeploymentOutputFieldCreate(name="appdirs", data_type="string"),
                ubiops.DeploymentOutputFieldCreate(name="prefix", data_type="string"),
            ],
        ),
    )
    version = api.deployment_versions_create(
        PROJECT,
        "doubler",
        ubiops.DeploymentVersionCreate(
            version="v1", environment_name="science", environment_tag="v1", maximum_idle_time=60
        ),
    )
    assert (version.environment_name, version.environment_tag) == ("science", "v1")
    upload = api.revisions_file_upload(
        PROJECT, "doubler", "v1", file=zipped(tmp_path / "doubler.zip", {"deployment.py": USES_APPDIRS}, "pkg")
    )
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "doubler", "v1", timeout=180, quiet=True)
    assert api.deployment_versions_get(PROJECT, "doubler", "v1").status == "available"
    answer = api.deployment_requests_create(PROJECT, "doubler", data={"x": 21})
    assert answer.status == "completed", answer.error_message
    assert answer.result["y"] == 42 and answer.result["appdirs"] == "1.4.4"
    assert answer.result["prefix"].startswith(str(served[1] / "data" / "environments"))  # the tag's venv
    usage = api.environment_tags_usage(PROJECT, "science", "v1")
    assert [(u.deployment, u.version, u.environment_tag) for u in usage] == [("doubler", "v1", "v1")]
    with pytest.raises(ubiops.ApiException) as e:  # in use
        api.environment_tags_delete(PROJECT, "science", "v1")
    assert e.value.status == 400 and "doubler/v1" in e.value.body

    # a revision rebuilds: back to queued, then success, serving all along
    rebuilt = api.revisions_rebuild(PROJECT, "doubler", upload.revision, "v1", data={})
    assert (rebuilt.id, rebuilt.status) == (upload.revision, "queued")
    assert api.deployment_requests_create(PROJECT, "doubler", data={"x": 1}).status == "completed"
    assert wait_revision(api, "doubler", "v1", upload.revision).status == "success"
    with pytest.raises(ubiops.ApiException) as e:
        api.revisions_rebuild(PROJECT, "doubler", "no-such-revision", "v1", data={})
    assert e.value.status == 404

    # rebuilding the tag rebuilds the version on it
    assert api.environment_tags_rebuild(PROJECT, "science", "v1", data={}).success is True
    assert wait_tag(api, "science", "v1").status == "success"
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "doubler", "v1", timeout=180, quiet=True)
    assert api.deployment_requests_create(PROJECT, "doubler", data={"x": 2}).result["y"] == 4


def test_failing_builds_say_why(api, science, tmp_path, raw):
    api.environments_create(PROJECT, ubiops.EnvironmentCreate(name="broken"))
    bad = zipped(tmp_path / "bad.zip", {"requirements.txt": "appdirs==0.0.0.999\n"}, top="")
    assert api.environment_tags_build(PROJECT, "broken", "latest", file=bad).success
    with pytest.raises(ubiops.utils.exceptions.StatusError) as e:
        ubiops.utils.wait_for_environment(api.api_client, PROJECT, "broken", "latest", timeout=180, quiet=True)
    assert "appdirs==0.0.0.999" in str(e.value)
    failed = api.environment_tags_get(PROJECT, "broken", "latest")
    assert failed.status == "failed" and len(failed.error_message) <= 1024
    assert "build failed" in raw.get("/environments/broken/tags/latest").json()["build_log"]

    apt = zipped(tmp_path / "apt.zip", {"requirements.txt": "", "ubiops.yaml": "apt:\n  packages: [ffmpeg]\n"}, top="")
    api.environment_tags_build(PROJECT, "broken", "latest", file=apt)
    failed = wait_tag(api, "broken", "latest")
    assert failed.status == "failed" and "apt packages (ffmpeg)" in failed.error_message

    # a source tag's package, copied (no bytes sent)
    api.environment_tags_create(PROJECT, "broken", ubiops.EnvironmentTagCreate(name="copy"))
    api.environment_tags_build(PROJECT, "broken", "copy", source_environment="science", source_tag="v1")
    copied = wait_tag(api, "broken", "copy")
    assert copied.status == "success" and copied.base_environment_name == science["base"]


def test_refusals_are_4xx_in_the_error_shape(api, science, raw, tmp_path):
    env_zip = Path(science["package"]).read_bytes()

    def refused(response, status):
        assert response.status_code == status, response.text
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        return body["error"]

    form = {"file": ("env.zip", env_zip, "application/zip")}
    assert "multipart" in refused(raw.post("/environments/science/tags/v1/build", json={}), 400)
    assert "'file'" in refused(
        raw.post("/environments/science/tags/v1/build", files={"source_environment": (None, "science")}), 400
    )
    both = {**form, "source_environment": (None, "science"), "source_tag": (None, "v1")}
    assert "not both" in refused(raw.post("/environments/science/tags/v1/build", files=both), 400)
    assert "base environment" in refused(
        raw.post("/environments/science/tags/v1/build?base_environment_name=python0-1", files=form), 400
    )
    assert "'latest'" in refused(
        raw.post("/environments/science/tags/v1/build?base_environment_tag=gpu", files=form), 400
    )
    refused(raw.post("/environments/science/tags/nope/build", files=form), 404)
    refused(raw.post(f"/environments/{science['base']}/tags/latest/build", files=form), 400)
    refused(raw.post("/environments/science/tags/v1/build", files={"file": ("env.tar", b"x")}), 400)
    refused(raw.post("/environments/science/tags", json={"name": "bad name"}), 400)
    refused(raw.post("/environments/science/tags", json={"name": "v1"}), 409)
    refused(raw.post("/environments/science/tags", content=b"{", headers={"content-type": "application/json"}), 400)
    refused(raw.post(f"/environments/{science['base']}/tags", json={"name": "x"}), 400)
    refused(raw.patch("/environments/science/tags/v1", json={"status": "failed"}), 400)
    refused(raw.get("/environments/science/tags/" + "x" * 300), 404)
    refused(raw.get("/environments/nope/tags"), 404)
    refused(raw.get("/environments/science/tags/latest/download"), 404)  # never built: no package
    refused(raw.post("/environments/science/tags/latest/rebuild", json={}), 400)
    refused(raw.post("/deployments/nope/versions/v1/revisions/x/rebuild", json={}), 404)
    api.deployments_create(PROJECT, ubiops.DeploymentCreate(name="refusals", input_type="plain", output_type="plain"))
    api.deployment_versions_create(PROJECT, "refusals", ubiops.DeploymentVersionCreate(version="v1"))
    refused(raw.post("/deployments/refusals/versions/v1/revisions/x/rebuild", json=[]), 400)
    refused(raw.post("/deployments/refusals/versions/v1/revisions/x/rebuild", json={}), 404)
    moved = {"environment_name": "science", "environment_tag": "nope"}
    assert "no tag 'nope'" in refused(raw.patch("/deployments/refusals/versions/v1", json=moved), 404)
    on_base = {"environment_name": science["base"], "environment_tag": "v1"}
    refused(raw.patch("/deployments/refusals/versions/v1", json=on_base), 400)
    # the same tree answers under /v2.1
    url = str(raw.base_url).rstrip("/").replace("/v2/", "/v2.1/")
    assert httpx.get(url + "/environments/science/tags", headers=raw.headers).status_code == 200
    nobody = httpx.get(url + "/environments/science/tags", headers={"Authorization": "Token wrong"})
    assert nobody.status_code == 401 and nobody.json()["error"]


def test_environment_revisions_of_older_clients(api, science, served, tmp_path):
    """API v2.1 (clients <= 4.12): ``POST …/environments/{e}/revisions`` and the builds under a revision, in the
    shapes of the 4.12 models (EnvironmentRevisionCreate, EnvironmentRevisionDetail, EnvironmentBuildList)."""
    url, _ = served
    with httpx.Client(base_url=f"{url}/v2.1/projects/{PROJECT}", headers={"Authorization": f"Token {KEY}"}) as old:
        created = old.post("/environments", json={"name": "legacy", "base_environment": science["base"]})
        assert created.status_code == 201
        assert created.json()["latest_revision"] is None and created.json()["latest_build"] is None
        package = Path(science["package"]).read_bytes()
        up = old.post("/environments/legacy/revisions", files={"file": ("legacy.zip", package, "application/zip")})
        assert up.status_code == 201, up.text
        made = up.json()
        assert made["success"] is True and made["revision"] == made["build"]
        env = old.get("/environments/legacy").json()
        assert (env["latest_revision"], env["latest_build"]) == (made["revision"], made["build"])
        build_url = f"/environments/legacy/revisions/{made['revision']}/builds/{made['build']}"
        deadline = time.monotonic() + 120
        while (got := old.get(build_url).json())["status"] not in ("success", "failed"):
            assert time.monotonic() < deadline, got
            time.sleep(0.3)
        assert got["status"] == "success" and got["revision"] == made["revision"] and got["error_message"] is None
        assert old.get("/environments/legacy").json()["active_build"] == made["build"]
        revisions = old.get("/environments/legacy/revisions").json()
        assert [(r["id"], r["environment"], r["expired"]) for r in revisions] == [(made["revision"], "legacy", False)]
        assert old.get(f"/environments/legacy/revisions/{made['revision']}").json()["id"] == made["revision"]
        deps = old.get(build_url + "/dependency-files").json()
        assert {d["name"] for d in deps} == {"requirements.txt", "ubiops.yaml"}
        download = old.get(f"/environments/legacy/revisions/{made['revision']}/download")
        assert download.status_code == 200 and download.content == package
        assert "filename=" in download.headers["content-disposition"]

        rebuilt = old.post(f"/environments/legacy/revisions/{made['revision']}/rebuild", json={}).json()
        assert (rebuilt["revision"], rebuilt["status"], rebuilt["trigger"]) == (made["revision"], "queued", "rebuild")
        builds = old.get(f"/environments/legacy/revisions/{made['revision']}/builds").json()
        assert [b["id"] for b in builds] == [made["build"], rebuilt["id"]]

        copied = old.post("/environments/science/revisions", files={"source_environment": (None, "legacy")})
        assert copied.status_code == 201 and copied.json()["revision"]
        assert api.environment_tags_get(PROJECT, "science", "latest").built is True  # v2 sees the same build

        for response, status in (
            (old.post("/environments/legacy/revisions", files={"other": (None, "x")}), 400),
            (
                old.post(
                    "/environments/legacy/revisions",
                    files={"file": ("a.zip", package), "source_environment": (None, "science")},
                ),
                400,
            ),
            (old.post(f"/environments/{science['base']}/revisions", files={"file": ("a.zip", package)}), 400),
            (old.get(f"/environments/{science['base']}/revisions/x"), 404),
            (old.get("/environments/legacy/revisions/nope/builds"), 404),
            (old.get(f"/environments/legacy/revisions/{made['revision']}/builds/nope"), 404),
            (old.post("/environments/legacy/revisions/nope/rebuild", json={}), 404),
        ):
            assert response.status_code == status, response.text
            assert response.json()["error"]
        assert old.get(f"/environments/{science['base']}/revisions").json() == []
