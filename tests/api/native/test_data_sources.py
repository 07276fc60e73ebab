"""Native data-source routes (``/api/v1/data-sources``) on SQLite and PostgreSQL: create, list, get, update, delete,
the connection test and the audit log; bad bodies in the native envelope; a secret that never comes back."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY, PG_ADMIN_URL

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
URL = "/api/v1/data-sources"
SECRET = "n4tive-" + uuid.uuid4().hex


def body(name="pg", **extra):
    pg = urlsplit(PG_ADMIN_URL)
    return {
        "name": name,
        "data_source_type": "postgresql",
        "auth_type": "Basic",
        "config": {"host": pg.hostname or "127.0.0.1", "port": str(pg.port or 5432), "database": "postgres"},
        "credentials": {"visible": {"username": pg.username or "postgres"}, "secret": {"password": SECRET}},
    } | extra


def test_data_source_routes(client, services, admin):
    r = client.post(URL, json=body(description="warehouse"), headers=AUTH)
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["data_source_type"] == "PostgreSQLConfig" and ds["credential_type"] == "Shared" and SECRET not in r.text
    assert ds["is_everyone"] is False and ds["grantee_ids"] == [] and ds["owner_username"] == "admin"
    assert client.get(f"{URL}/{ds['id']}", headers=AUTH).json() == ds
    client.post(URL, json=body("other"), headers=AUTH)
    assert [d["name"] for d in client.get(URL, headers=AUTH).json()] == ["other", "pg"]
    assert [d["name"] for d in client.get(URL, params={"name": "pg"}, headers=AUTH).json()] == ["pg"]
    changed = client.patch(f"{URL}/{ds['id']}", json={"permissions": {"is_everyone": True}}, headers=AUTH).json()
    assert changed["is_everyone"] is True
    tested = client.post(f"{URL}/{ds['id']}/test", headers=AUTH)
    assert tested.status_code == 200 and set(tested.json()) == {"ok", "message", "data_source_type", "elapsed_ms"}
    assert SECRET not in tested.text
    events = client.get("/api/v1/data-source-audit", params={"data_source_id": ds["id"]}, headers=AUTH).json()
    assert [e["event_kind"] for e in events] == [
        "CreateDataSource",
        "DataSourceChangeOfPermissions",
        "AccessDataSource",
    ]
    assert client.delete(f"{URL}/{ds['id']}", headers=AUTH).json()["id"] == ds["id"]
    assert client.get(f"{URL}/{ds['id']}", headers=AUTH).status_code == 404


def test_errors_and_roles(client, services, admin):
    for bad, problem in (
        (body(data_source_type="Cassandra"), "dataSourceType"),
        (body(config={"host": "h"}), "config.database"),
        (body(colour="red"), "colour"),
        (body(credentials={"visible": {"username": "u"}, "secret": {}}), "password"),
        (body(auth_type=1), "auth_type"),
    ):
        resp = client.post(URL, json=bad, headers=AUTH)
        assert resp.status_code == 400 and set(resp.json()) == {"error"}, (bad, resp.text)
        assert problem in resp.text, (problem, resp.text)
    assert client.post(URL, json=body(), headers=AUTH).status_code == 201
    assert client.post(URL, json=body(), headers=AUTH).status_code == 409  # the native API says conflict
    assert client.get(URL).status_code == 401
    user = services.identity.create_user(admin, f"m-{uuid.uuid4().hex[:6]}", role=Role.MEMBER)
    key = services.identity.create_key(services.identity.principal_by_ids(user.id, admin.org_id), "k").secret
    member = {"Authorization": f"Bearer {key}"}
    assert client.get(URL, headers=member).json() == []  # not granted: not listed
    ds = client.get(URL, headers=AUTH).json()[0]
    assert client.get(f"{URL}/{ds['id']}", headers=member).status_code == 404
    assert client.get("/api/v1/data-source-audit", headers=member).status_code == 403
    for bad in ("", "yesterday"):  # the document says date-time: an empty value is not "no bound"
        resp = client.get("/api/v1/data-source-audit", params={"start": bad}, headers=AUTH)
        assert resp.status_code == 400 and "'start'" in resp.text, (bad, resp.text)
