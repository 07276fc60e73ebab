"""A UbiOps deployment version runs on a hardware tier (issue 16, item 6): ``instance_type_group_name`` (or the
deprecated ``instance_type``) names one by id or name, none means the organisation's default; unknown and archived
tiers are refused with a 400 naming the field; the instances get the tier's limits, which the real sandbox
enforces (a request past a small tier's memory is ended saying so). ``GET /projects/{name}/instance-type-groups``
lists the tiers as UbiOps' instance type groups. A real worker process, on SQLite."""

from __future__ import annotations

import io
import zipfile

import pytest

from modelharbor.compute.base import Limits
from modelharbor.core.hardware_tiers import TierChanges
from modelharbor.tasks.runner import run_pending
from tests.api.dialects.ubiops import client_model
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Token {ADMIN_KEY}"}
MIB, GIB = 2**20, 2**30
P = "/v2.1/projects/hw"
D = f"{P}/deployments/d"
PKG = """
class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        if data == "memory":
            block = bytearray(400 * 1024 * 1024)  # past the tiny tier's 128 MiB
            return str(len(block))
        return "ok"
"""
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def package() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("deployment.py", PKG)
    return buf.getvalue()


@pytest.fixture
def hw(client, services, admin):
    services.projects.create_project(admin, "hw")
    tiers = services.hardware_tiers
    tiers.create_tier(admin, "tiny", TierChanges(name="Tiny 128 MiB", cores=0.5, memory=128 * MIB))
    tiers.create_tier(admin, "old", TierChanges(name="Old", cores=1, memory=GIB))
    tiers.archive_tier(admin, "old")
    r = client.post(f"{P}/deployments", json={"name": "d", "input_type": "plain", "output_type": "plain"}, headers=AUTH)
    assert r.status_code == 201, r.text
    yield client, services
    services.serving.shutdown()


def versions(client) -> list[str]:
    return [v["version"] for v in client.get(f"{D}/versions", headers=AUTH).json()]


@sqlite_only
def test_a_version_names_its_tier_by_id_or_name_and_bad_tiers_are_refused(hw):
    client, _services = hw
    r = client.post(f"{D}/versions", json={"version": "v1", "instance_type_group_name": "tiny 128 mib"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["instance_type_group_name"] == "tiny 128 mib", r.text
    r = client.post(f"{D}/versions", json={"version": "v2", "instance_type": "tiny"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["instance_type"] == "tiny", r.text

    r = client.post(f"{D}/versions", json={"version": "v3", "instance_type_group_name": "huge"}, headers=AUTH)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error.startswith("'instance_type_group_name': no hardware tier 'huge'"), error
    assert "'small' (Small)" in error and "'tiny' (Tiny 128 MiB)" in error and "'old'" not in error, error
    r = client.post(f"{D}/versions", json={"version": "v3", "instance_type_group_name": "old"}, headers=AUTH)
    assert (r.status_code, r.json()) == (
        400,
        {"error": "'instance_type_group_name': hardware tier 'old' is archived: pick another one"},
    )
    r = client.post(f"{D}/versions", json={"version": "v3", "instance_type": "nope"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"].startswith("'instance_type': no hardware tier 'nope'")
    r = client.patch(f"{D}/versions/v1", json={"instance_type_group_name": "old"}, headers=AUTH)
    assert r.status_code == 400 and "archived" in r.json()["error"]
    assert versions(client) == ["v1", "v2"]  # nothing stored for the refused ones
    assert client.get(f"{D}/versions/v1", headers=AUTH).json()["instance_type_group_name"] == "tiny 128 mib"


@sqlite_only
def test_the_instance_type_groups_are_the_hardware_tiers(hw):
    client, _services = hw
    r = client.get(f"{P}/instance-type-groups", headers=AUTH)
    assert r.status_code == 200, r.text
    page = client_model("InstanceTypeGroupListPaginated", r.json())
    assert [(g.id, g.name) for g in page.results] == [("small", "Small"), ("tiny", "Tiny 128 MiB")]
    tiny = page.results[1].instance_types[0]
    assert (tiny.name, tiny.cpu, tiny.memory, tiny.accelerator) == ("tiny", 0.5, 128, 0)
    r = client.get(f"{P}/instance-type-groups/tiny", headers=AUTH)
    assert r.status_code == 200 and client_model("InstanceTypeGroupList", r.json()).name == "Tiny 128 MiB"
    assert client.get(f"{P}/instance-type-groups/old", headers=AUTH).status_code == 404
    assert client.get("/v2.1/projects/nope/instance-type-groups", headers=AUTH).status_code == 404


@sqlite_only
def test_a_version_runs_with_its_tiers_limits(hw, admin):
    client, services = hw
    for version, tier in (("small-mem", {"instance_type_group_name": "tiny"}), ("default", {})):
        r = client.post(f"{D}/versions", json={"version": version, **tier}, headers=AUTH)
        assert r.status_code == 201, r.text
        r = client.post(
            f"{D}/versions/{version}/revisions", files={"file": ("p.zip", package(), "application/zip")}, headers=AUTH
        )
        assert r.status_code == 200, r.text
    run_pending(services)

    def ask(version: str, data: str):
        r = client.post(f"{D}/versions/{version}/requests", json=data, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()

    assert ask("small-mem", "hello")["result"] == "ok"
    assert ask("default", "hello")["result"] == "ok"
    spec = {v.version: services.serving._deployed[v.id] for v in services.serving.list_versions(admin, "hw", "d")}
    assert spec["small-mem"].limits == Limits(memory=128 * MIB, cpus=0.5)
    assert spec["default"].limits == Limits(memory=4 * GIB, cpus=1.0)  # the seeded default tier

    if services.sandbox.isolated and services.sandbox.cgroups is not None:  # the kernel enforces it
        answer = ask("small-mem", "memory")
        assert answer["status"] == "failed" and "memory limit of 128 MiB" in answer["error_message"], answer
        assert ask("small-mem", "hello")["result"] == "ok"  # a new instance answers
    # moving the version to another tier redeploys it with that tier's limits
    r = client.patch(f"{D}/versions/small-mem", json={"instance_type_group_name": "small"}, headers=AUTH)
    assert r.status_code == 200, r.text
    services.serving._changed()  # the route cache, as its TTL would
    assert ask("small-mem", "hello")["result"] == "ok"
    vid = next(v.id for v in services.serving.list_versions(admin, "hw", "d") if v.version == "small-mem")
    assert services.serving._deployed[vid].limits == Limits(memory=4 * GIB, cpus=1.0)


@sqlite_only
def test_an_import_naming_a_tier_this_organisation_cannot_give_imports_nothing(hw, admin):
    from tests.core.test_transfer import counts, export_zip, import_bytes

    client, services = hw
    r = client.post(f"{D}/versions", json={"version": "v1", "instance_type_group_name": "tiny"}, headers=AUTH)
    assert r.status_code == 201, r.text
    _, data = export_zip(services, admin, "hw", all_objects=True)
    for project in ("dst", "dst2"):
        services.projects.create_project(admin, project)
    done = import_bytes(services, admin, "dst", data, skip=True)
    assert done.status == "completed", done.error_message
    assert services.serving.get_version(admin, "dst", "d", "v1").instance_type_group_name == "tiny"

    services.hardware_tiers.archive_tier(admin, "tiny")
    done = import_bytes(services, admin, "dst2", data, skip=True)
    assert done.status == "failed" and "Nothing was imported" in done.error_message, done.error_message
    assert "version 'v1' of 'd': 'instance_type_group_name': hardware tier 'tiny' is archived" in done.error_message
    assert counts(services, "dst2") == (0, 0, 0, 0)
