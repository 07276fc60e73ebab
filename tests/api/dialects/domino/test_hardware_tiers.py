"""Domino's hardware tiers (ops 59-63), the client's project tiers and the compute providers and tiers (ops 16-26)
over HTTP, on SQLite and PostgreSQL: envelopes, the seeded default, admin-only writes, foreign 404s, bad bodies."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.domino.routes.hardware_tiers import to_bytes
from modelharbor.db.tables import MembershipRow
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Role
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.conftest import ADMIN_KEY

BASE = "/api/hardwaretiers/v1/hardwaretiers"
ADMIN = "/api/admin/v1"


def tier_body(tier_id="gpu-free", **over):
    body = {
        "id": tier_id,
        "name": "Medium",
        "nodePool": "default",
        "centsPerMinute": 2.5,
        "flags": {"isVisible": True, "isModelApiTier": True},
        "resources": {
            "cores": 2,
            "coresLimit": 2.5,
            "memory": {"value": 8, "units": "GiB"},
            "memoryLimit": {"value": 10, "units": "GiB"},
            "allowSharedMemoryToExceedDefault": False,
        },
        "tags": ["cpu"],
        "availabilityZones": ["here"],
    }
    body.update(over)
    return body


@pytest.fixture
def admin_h():
    return h(ADMIN_KEY)


def stranger_key(services, admin):
    outsider = services.identity.create_org(admin, "elsewhere")
    user = services.identity.create_user(admin, "stranger", role=Role.OWNER)
    with services.db.uow() as s:
        s.add(MembershipRow(org_id=outsider.id, user_id=user.id, role="owner"))
    stranger = services.identity.principal_by_ids(user.id, outsider.id)
    return services.identity.create_key(stranger, "k").secret


def test_seeded_default_create_get_update_archive(client, admin_h):
    listed = client.get(BASE, headers=admin_h)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [t["id"] for t in body["hardwareTiers"]] == ["small"]
    small = body["hardwareTiers"][0]
    assert small["flags"]["isDefault"] and small["resources"]["cores"] == 1
    assert small["resources"]["memory"] == {"value": 4, "units": "GiB"}
    assert body["metadata"]["totalCount"] == 1 and body["metadata"]["requestId"]

    resp = client.post(BASE, json=tier_body(), headers=admin_h)
    assert resp.status_code == 200, resp.text
    tier = resp.json()["hardwareTier"]
    assert resp.json()["metadata"]["notices"] == []
    assert tier["id"] == "gpu-free" and tier["centsPerMinute"] == 2.5 and tier["tags"] == ["cpu"]
    assert tier["resources"]["memoryLimit"] == {"value": 10, "units": "GiB"}
    assert tier["flags"] == {
        "isArchived": False,
        "isDefault": False,
        "isGlobal": True,
        "isVisible": True,
        "isDataAnalystTier": False,
        "isModelApiTier": True,
        "isDefaultForModelApi": False,
    }
    assert tier["availabilityZones"] == ["here"] and tier["creationTime"].endswith("Z")
    assert client.get(f"{BASE}/gpu-free", headers=admin_h).json()["hardwareTier"] == tier

    # a duplicate id is a 400 (never 409: the client reads that as expired credentials)
    assert "already exists" in failure(client.post(BASE, json=tier_body(), headers=admin_h), 400)

    # PUT to the collection, id in the body; making it the default moves the flag
    resp = client.put(BASE, json={"id": "gpu-free", "name": "Medium+", "flags": {"isDefault": True}}, headers=admin_h)
    assert resp.status_code == 200, resp.text
    updated = resp.json()["hardwareTier"]
    assert updated["name"] == "Medium+" and updated["flags"]["isDefault"] and updated["tags"] == ["cpu"]
    assert updated["resources"]["cores"] == 2
    assert not client.get(f"{BASE}/small", headers=admin_h).json()["hardwareTier"]["flags"]["isDefault"]

    # the default cannot be archived; another tier can, and leaves the list unless asked for
    assert "default" in failure(client.delete(f"{BASE}/gpu-free", headers=admin_h), 400)
    archived = client.delete(f"{BASE}/small", headers=admin_h)
    assert archived.status_code == 200 and archived.json()["hardwareTier"]["flags"]["isArchived"]
    assert [t["id"] for t in client.get(BASE, headers=admin_h).json()["hardwareTiers"]] == ["gpu-free"]
    everything = client.get(BASE, params={"includeArchived": "true"}, headers=admin_h).json()
    assert {t["id"] for t in everything["hardwareTiers"]} == {"gpu-free", "small"}
    assert "archived" in failure(client.put(BASE, json={"id": "small", "name": "x"}, headers=admin_h), 400)


def test_paging(client, admin_h):
    for n in range(3):
        assert client.post(BASE, json=tier_body(f"t{n}", name=f"T{n}"), headers=admin_h).status_code == 200
    page = client.get(BASE, params={"offset": 1, "limit": 2}, headers=admin_h).json()
    assert [t["id"] for t in page["hardwareTiers"]] == ["t0", "t1"]  # the default first, then by name
    assert page["metadata"] | {"requestId": ""} == {
        "requestId": "",
        "notices": [],
        "offset": 1,
        "limit": 2,
        "totalCount": 4,
    }
    failure(client.get(BASE, params={"limit": "x"}, headers=admin_h), 400)
    failure(client.get(BASE, params={"includeArchived": "maybe"}, headers=admin_h), 400)


def test_auth_roles_and_foreign_organisations(client, services, admin, admin_h):
    failure(client.get(BASE), 401)
    failure(client.post(BASE, json=tier_body()), 401)
    failure(client.get(BASE, headers=h("wrong")), 401)
    assert client.get(BASE, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    _, member_key = new_user(services, admin)
    # members read, only admins write (ManageHardwareTiers)
    assert client.get(BASE, headers=h(member_key)).status_code == 200
    assert "admin" in failure(client.post(BASE, json=tier_body(), headers=h(member_key)), 403)
    failure(client.put(BASE, json={"id": "small", "name": "x"}, headers=h(member_key)), 403)
    failure(client.delete(f"{BASE}/small", headers=h(member_key)), 403)
    # hidden tiers are the admins'
    client.post(BASE, json=tier_body("hidden", flags={"isVisible": False}), headers=admin_h)
    assert [t["id"] for t in client.get(BASE, headers=h(member_key)).json()["hardwareTiers"]] == ["small"]
    failure(client.get(f"{BASE}/hidden", headers=h(member_key)), 404)
    # another organisation has its own tiers and never sees these
    skey = stranger_key(services, admin)
    failure(client.get(f"{BASE}/hidden", headers=h(skey)), 404)
    failure(client.delete(f"{BASE}/hidden", headers=h(skey)), 404)
    assert [t["id"] for t in client.get(BASE, headers=h(skey)).json()["hardwareTiers"]] == ["small"]
    failure(client.get(f"{BASE}/nope", headers=admin_h), 404)


@pytest.mark.parametrize(
    ("body", "word"),
    [
        (None, "body"),
        ([1], "object"),
        ({"name": "x"}, "id"),
        (tier_body(id="bad id!"), "id"),
        (tier_body(name=""), "name"),
        (tier_body(resources={"cores": 1}), "memory"),
        (tier_body(resources={"cores": 0, "memory": {"value": 1, "units": "GiB"}}), "cores"),
        (tier_body(resources={"cores": "1", "memory": {"value": 1, "units": "GiB"}}), "cores"),
        (tier_body(resources={"cores": 1, "memory": {"value": 1, "units": "PB"}}), "units"),
        (tier_body(resources={"cores": 1, "memory": {"value": -1, "units": "GB"}}), "value"),
        (tier_body(resources={"cores": 2, "coresLimit": 1, "memory": {"value": 1, "units": "GB"}}), "coresLimit"),
        (
            tier_body(
                resources={
                    "cores": 1,
                    "memory": {"value": 2, "units": "GB"},
                    "memoryLimit": {"value": 1, "units": "GB"},
                }
            ),
            "memoryLimit",
        ),
        (tier_body(resources={"cores": 1, "memory": {"value": 1e308, "units": "GiB"}}), "memory"),
        (tier_body(resources={"cores": 1e308, "memory": {"value": 1, "units": "GiB"}}), "cores"),
        (tier_body(maxSimultaneousExecutions=-1), "maxSimultaneousExecutions"),
        (tier_body(centsPerMinute=-1), "centsPerMinute"),
        (tier_body(centsPerMinute="free"), "centsPerMinute"),
        (tier_body(flags={"isDefault": "yes"}), "isDefault"),
        (tier_body(gpuConfiguration={"gpuKey": "nvidia.com/gpu", "numberOfGpus": 1.5}), "numberOfGpus"),
        (tier_body(tags="cpu"), "tags"),
        (tier_body(nodePool=None), "nodePool"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client, admin_h, body, word):
    resp = client.post(BASE, headers=admin_h) if body is None else client.post(BASE, json=body, headers=admin_h)
    assert word.lower() in failure(resp, 400).lower()


def test_sizes_in_domino_units_become_bytes_at_the_edge():
    assert to_bytes(1.5, "GiB", "resources.memory") == 3 * 2**29
    assert to_bytes(500, "MB", "resources.memory") == 500 * 10**6
    with pytest.raises(InvalidInput, match=r"'resources.memory.units' must be one of MB, MiB, GB, GiB, not 'TB'"):
        to_bytes(1, "TB", "resources.memory")
    for bad in (0, -1, True, "1", float("nan")):
        with pytest.raises(InvalidInput, match="'resources.memory.value' must be a positive number"):
            to_bytes(bad, "GiB", "resources.memory")
    for huge in (1e308, 10**30):
        with pytest.raises(InvalidInput, match="larger than 1024 TiB"):
            to_bytes(huge, "GiB", "resources.memory")


def test_bad_update_bodies(client, admin_h):
    failure(client.put(BASE, json={"name": "x"}, headers=admin_h), 400)
    failure(client.put(BASE, json={"id": "nope", "name": "x"}, headers=admin_h), 404)
    failure(client.put(BASE, json={"id": "small", "flags": {"isDefault": False}}, headers=admin_h), 400)
    failure(client.put(BASE, content=b"{not json", headers=admin_h | {"content-type": "application/json"}), 400)


def test_project_hardware_tiers_as_the_client_reads_them(client, services, admin, admin_h):
    project = services.projects.create_project(admin, "tiers")
    client.post(BASE, json=tier_body("hidden", flags={"isVisible": False}), headers=admin_h)
    resp = client.get(f"/v4/projects/{project.id}/hardwareTiers", headers=admin_h)
    assert resp.status_code == 200, resp.text
    (item,) = resp.json()
    tier = item["hardwareTier"]
    assert (tier["id"], tier["name"], tier["hwtFlags"]["isDefault"]) == ("small", "Small", True)
    assert tier["hwtResources"]["memoryInGiB"] == 4 and "centsPerMinute" in tier
    failure(client.get(f"/v4/projects/{project.id}/hardwareTiers"), 401)
    failure(client.get("/v4/projects/0123456789abcdef01234567/hardwareTiers", headers=admin_h), 404)
    failure(client.get("/v4/projects/not-an-id/hardwareTiers", headers=admin_h), 404)
    failure(client.get(f"/v4/projects/{project.id}/hardwareTiers", headers=h(stranger_key(services, admin))), 404)


def test_compute_providers_and_tiers(client, services, admin, admin_h):
    client.post(
        BASE,
        json=tier_body("gpu", name="GPU", gpuConfiguration={"gpuKey": "nvidia.com/gpu", "numberOfGpus": 1}),
        headers=admin_h,
    )
    client.post(BASE, json=tier_body("hidden", name="Hidden", flags={"isVisible": False}), headers=admin_h)
    types = client.get(f"{ADMIN}/computeProviderTypes", headers=admin_h)
    assert types.status_code == 200 and [t["id"] for t in types.json()] == ["local"]
    (provider,) = client.get(f"{ADMIN}/computeProviders", headers=admin_h).json()
    assert provider["id"] == "local" and provider["computeProviderTypeName"] == "local"
    assert provider["defaultComputeTierId"] == "small" and provider["isArchived"] is False
    # the local executor has no GPUs: the GPU tier is no compute tier of it
    tiers = client.get(f"{ADMIN}/computeTiers", headers=admin_h).json()
    assert {t["id"] for t in tiers["items"]} == {"small", "hidden"} and tiers["metadata"]["totalCount"] == 2
    small = client.get(f"{ADMIN}/computeTiers/small", headers=admin_h).json()
    assert small["computeProviderId"] == "local" and small["configuration"]["memoryMiB"] == 4096
    assert small["isDefault"] is True
    failure(client.get(f"{ADMIN}/computeTiers/gpu", headers=admin_h), 404)
    searched = client.get(f"{ADMIN}/computeTiers", params={"search": "SMA"}, headers=admin_h).json()
    assert [t["id"] for t in searched["items"]] == ["small"]
    failure(client.get(f"{ADMIN}/computeTiers", params={"computeProviderId": "ray"}, headers=admin_h), 404)
    # members pick among the selectable ones (visible); the admin lists are the admins'
    _, member_key = new_user(services, admin)
    sel = client.get(f"{ADMIN}/computeTiers/selectable", headers=h(member_key))
    assert sel.status_code == 200 and [t["id"] for t in sel.json()["items"]] == ["small"]
    for path in ("computeProviderTypes", "computeProviders", "computeTiers", "computeTiers/small"):
        failure(client.get(f"{ADMIN}/{path}", headers=h(member_key)), 403)
    failure(client.post(f"{ADMIN}/computeProviders", json={}, headers=h(member_key)), 403)
    failure(client.get(f"{ADMIN}/computeProviders"), 401)
    # writes: providers are the server's configuration
    for method, path in (
        ("post", "computeProviders"),
        ("patch", "computeProviders/local"),
        ("delete", "computeProviders/local"),
        ("post", "computeTiers"),
        ("patch", "computeTiers/small"),
        ("delete", "computeTiers/small"),
    ):
        assert "not supported" in failure(client.request(method.upper(), f"{ADMIN}/{path}", headers=admin_h), 400)
    failure(client.patch(f"{ADMIN}/computeProviders/nope", headers=admin_h), 404)
    failure(client.delete(f"{ADMIN}/computeTiers/nope", headers=admin_h), 404)
