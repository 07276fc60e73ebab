"""Native project routes: create, list, read, collaborators by id or username, stage lists; errors never 500."""

from __future__ import annotations

from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_project_routes(client, services, admin):
    resp = client.post("/api/v1/projects", json={"name": "vision", "description": "cv"}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    p = resp.json()
    assert (p["name"], p["description"], p["owner_username"], p["default_stages"]) == ("vision", "cv", "admin", True)
    assert p["stages"] == ["None", "Staging", "Production", "Archived"] and len(p["id"]) == 24
    assert client.post("/api/v1/projects", json={"name": "vision"}, headers=AUTH).status_code == 409
    assert client.post("/api/v1/projects", json={"name": "a b"}, headers=AUTH).status_code == 400
    assert client.post("/api/v1/projects", json={"name": "x", "colour": "red"}, headers=AUTH).status_code == 400
    assert [x["name"] for x in client.get("/api/v1/projects", headers=AUTH).json()] == ["vision"]
    assert client.get(f"/api/v1/projects/{p['id']}", headers=AUTH).json()["id"] == p["id"]
    assert client.get("/api/v1/projects/" + "0" * 24, headers=AUTH).status_code == 404
    assert client.get("/api/v1/projects/%00", headers=AUTH).status_code == 404

    user = services.identity.create_user(admin, "carol", role=Role.MEMBER)
    url = f"/api/v1/projects/{p['id']}/collaborators"
    got = client.put(f"{url}/carol", json={"role": "contributor"}, headers=AUTH)
    assert got.status_code == 200 and got.json()["collaborators"] == [
        {"user_id": user.id, "username": "carol", "role": "Contributor"}
    ]
    assert (
        client.put(f"{url}/{user.id}", json={"role": "ResultsConsumer"}, headers=AUTH).json()["collaborators"][0][
            "role"
        ]
        == "ResultsConsumer"
    )
    assert client.put(f"{url}/carol", json={"role": "King"}, headers=AUTH).status_code == 400
    assert client.put(f"{url}/nobody", json={"role": "Contributor"}, headers=AUTH).status_code == 400
    assert client.delete(f"{url}/carol", headers=AUTH).status_code == 204
    assert client.delete(f"{url}/carol", headers=AUTH).status_code == 404

    st = client.put(f"/api/v1/projects/{p['id']}/stages", json={"stages": ["None", "Dev", "Prod"]}, headers=AUTH)
    assert st.status_code == 200 and st.json()["stages"] == ["None", "Dev", "Prod"] and not st.json()["default_stages"]
    bad = client.put(f"/api/v1/projects/{p['id']}/stages", json={"stages": ["Dev"]}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_INPUT"
    assert client.put(f"/api/v1/projects/{p['id']}/stages", json={}, headers=AUTH).status_code == 400
    assert client.get("/api/v1/projects").status_code == 401


def test_members_cannot_change_others_projects(client, services, admin):
    p = services.projects.create_project(admin, "owned")
    user = services.identity.create_user(admin, "dave", role=Role.MEMBER)
    key = services.identity.create_key(services.identity.principal_by_ids(user.id, admin.org_id), "k").secret
    h = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/v1/projects/{p.id}", headers=h).status_code == 200
    assert client.put(f"/api/v1/projects/{p.id}/stages", json={"stages": ["None"]}, headers=h).status_code == 403
    assert (
        client.put(f"/api/v1/projects/{p.id}/collaborators/dave", json={"role": "Owner"}, headers=h).status_code == 403
    )
    mine = client.post("/api/v1/projects", json={"name": "daves"}, headers=h)
    assert mine.status_code == 201 and mine.json()["owner_username"] == "dave"
    other = client.post("/api/v1/projects", json={"name": "forsomeone", "owner_id": admin.user_id}, headers=h)
    assert other.status_code == 403
    # delete: the owner or an admin; a member's 403 leaves the project whole; what is gone answers 404
    assert client.delete(f"/api/v1/projects/{p.id}", headers=h).status_code == 403
    assert client.get(f"/api/v1/projects/{p.id}", headers=h).status_code == 200
    assert client.delete(f"/api/v1/projects/{mine.json()['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/projects/{mine.json()['id']}", headers=h).status_code == 404
    assert client.delete(f"/api/v1/projects/{p.id}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/v1/projects/{p.id}", headers=AUTH).status_code == 404
    assert client.delete("/api/v1/projects/%00", headers=AUTH).status_code == 404
