"""Native hardware-tier routes (``/api/v1/hardware-tiers``) on SQLite and PostgreSQL: the seeded default, create,
update, archive, admin-only writes, bad bodies in the native envelope."""

from __future__ import annotations

import uuid

from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
URL = "/api/v1/hardware-tiers"
GIB = 2**30


def test_hardware_tier_routes(client, services, admin):
    (small,) = client.get(URL, headers=AUTH).json()
    assert (small["id"], small["cores"], small["memory"], small["is_default"]) == ("small", 1.0, 4 * GIB, True)
    resp = client.post(
        URL,
        json={
            "id": "big",
            "name": "Big",
            "cores": 2,
            "memory": 8 * GIB,
            "memory_limit": 10 * GIB,
            "cents_per_minute": 3,
        },
        headers=AUTH,
    )
    assert resp.status_code == 201, resp.text
    big = resp.json()
    assert (big["memory_limit"], big["cents_per_minute"], big["is_default"], big["gpus"]) == (10 * GIB, 3.0, False, 0)
    assert client.get(f"{URL}/big", headers=AUTH).json() == big
    assert client.post(URL, json={"id": "big", "name": "B", "cores": 1, "memory": GIB}, headers=AUTH).status_code == 409
    changed = client.patch(f"{URL}/big", json={"is_default": True, "cores_limit": 3.5}, headers=AUTH).json()
    assert changed["is_default"] and changed["cores_limit"] == 3.5 and changed["name"] == "Big"
    archived = client.post(f"{URL}/small/archive", headers=AUTH)
    assert archived.status_code == 200 and archived.json()["is_archived"]
    assert [t["id"] for t in client.get(URL, headers=AUTH).json()] == ["big"]
    assert {t["id"] for t in client.get(URL, params={"include_archived": "true"}, headers=AUTH).json()} == {
        "big",
        "small",
    }
    assert services.hardware_tiers.limits(admin).cpus == 3.5


def test_errors_and_roles(client, services, admin):
    for body in (
        {"id": "x", "name": "x", "cores": 0, "memory": GIB},
        {"id": "x", "name": "x", "cores": 1},
        {"id": "x y", "name": "x", "cores": 1, "memory": GIB},
        {"id": "x", "name": "x", "cores": 1, "memory": GIB, "colour": "red"},
        {"id": "x", "name": "x", "cores": "1", "memory": GIB},
        {"id": "x", "name": "x", "cores": 2, "cores_limit": 1, "memory": GIB},
    ):
        resp = client.post(URL, json=body, headers=AUTH)
        assert resp.status_code == 400 and set(resp.json()) == {"error"}, (body, resp.text)
    assert client.patch(f"{URL}/small", json={"is_default": False}, headers=AUTH).status_code == 400
    assert client.post(f"{URL}/small/archive", headers=AUTH).status_code == 400  # the default
    assert client.get(f"{URL}/nope", headers=AUTH).status_code == 404
    assert client.get(URL).status_code == 401
    user = services.identity.create_user(admin, f"m-{uuid.uuid4().hex[:6]}", role=Role.MEMBER)
    key = services.identity.create_key(services.identity.principal_by_ids(user.id, admin.org_id), "k").secret
    member = {"Authorization": f"Bearer {key}"}
    assert client.get(URL, headers=member).status_code == 200
    assert client.post(URL, json={"id": "m", "name": "m", "cores": 1, "memory": GIB}, headers=member).status_code == 403
    assert client.patch(f"{URL}/small", json={"name": "x"}, headers=member).status_code == 403
    assert client.post(f"{URL}/small/archive", headers=member).status_code == 403
