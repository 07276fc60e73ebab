"""Domino data sources (ops 47–52) and ModelHarbor's connection test over HTTP, on SQLite and PostgreSQL: shapes,
401, foreign 404s, bad bodies as 400 naming the field, permissions, a planted secret that never comes back (in
answers, the server's log or the database), and connection tests against the real PostgreSQL and an S3 server."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

import boto3
import pytest

from modelharbor.domain.principal import Role
from tests.api.dialects.domino.test_registered_models import failure, h, new_user
from tests.api.dialects.domino.test_users_orgs import stranger
from tests.conftest import _PG_PROBLEM, ADMIN_KEY, PG_ADMIN_URL
from tests.core.test_data_sources import stored_text
from tests.storage.conftest import s3_endpoint  # noqa: F401 - the session's moto S3 server

API = "/api/datasource/v1/datasources"
SECRET = "pl4nted-" + uuid.uuid4().hex


def pg_body(name="warehouse", *, password=SECRET, everyone=False, ids=(), **config):
    pg = urlsplit(PG_ADMIN_URL)
    return {
        "name": name,
        "dataSourceType": "PostgreSQLConfig",
        "authType": "Basic",
        "credentialType": "Shared",
        "config": {"host": pg.hostname or "127.0.0.1", "port": str(pg.port or 5432), "database": "postgres"} | config,
        "credentials": {"visibleCredentials": {"username": pg.username or "postgres"}, "secretCredentials": {"password": password}},
        "permissions": {"isEveryone": everyone, "userAndOrganizationIds": list(ids)},
        "description": "the warehouse",
    }  # fmt: skip


def created(client, key, body) -> dict:
    r = client.post(API, json=body, headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()


def test_lifecycle_and_listing(client, services, admin):
    owner, key = new_user(services, admin)
    ds = created(client, key, pg_body())
    assert set(ds) == {
        "id", "name", "displayName", "description", "dataSourceType", "authType", "credentialType", "config",
        "ownerId", "ownerUsername", "permissions", "lastUpdated",
    }  # fmt: skip
    assert ds["dataSourceType"] == "PostgreSQLConfig" and ds["ownerId"] == owner.user_id and len(ds["id"]) == 24
    assert (
        ds["ownerUsername"] == owner.username and ds["lastUpdated"].endswith("Z") and ds["displayName"] == "warehouse"
    )
    assert ds["permissions"] == {"isEveryone": False, "userAndOrganizationIds": []}
    assert client.get(f"{API}/{ds['id']}", headers=h(key)).json() == ds
    for i in range(3):
        created(client, key, pg_body(f"more-{i}"))
    listed = client.get(API, headers=h(key)).json()
    assert [d["name"] for d in listed["dataSources"]] == ["more-0", "more-1", "more-2", "warehouse"]
    assert (
        listed["metadata"]["totalCount"] == 4
        and listed["metadata"]["offset"] == 0
        and listed["metadata"]["limit"] == 10
    )
    page = client.get(API, params={"offset": 1, "limit": 2}, headers=h(key)).json()
    assert [d["name"] for d in page["dataSources"]] == ["more-1", "more-2"] and page["metadata"]["totalCount"] == 4
    named = client.get(API, params=[("dataSourceNames", "warehouse"), ("dataSourceNames", "more-2")], headers=h(key))
    assert [d["name"] for d in named.json()["dataSources"]] == ["more-2", "warehouse"]
    r = client.patch(f"{API}/{ds['id']}", json={"config": {"schema": "public"}}, headers=h(key))
    assert r.status_code == 200 and r.json()["config"]["schema"] == "public"
    gone = client.delete(f"{API}/{ds['id']}", headers=h(key))
    assert gone.status_code == 200 and gone.json()["id"] == ds["id"]
    assert failure(client.get(f"{API}/{ds['id']}", headers=h(key)), 404)
    # the audit log: admins only, filtered as op 47 says
    audit = client.get("/api/datasource/v1/audit", params={"dataSourceIds": ds["id"]}, headers=h(ADMIN_KEY))
    assert audit.status_code == 200, audit.text
    events = audit.json()
    assert [e["eventKind"] for e in events] == ["CreateDataSource", "DataSourceChangeOfConfig", "DeleteDataSource"]
    assert events[0]["performedBy"] == owner.username and events[0]["timestamp"].endswith("Z")
    assert events[0]["dataSourceName"] == "warehouse" and events[0]["dataSourceType"] == "PostgreSQLConfig"
    q = [("eventKinds", "CreateDataSource"), ("dataSourceNames", "more-0"), ("dataSourceNames", "more-1")]
    assert [e["dataSourceName"] for e in client.get("/api/datasource/v1/audit", params=q, headers=h(ADMIN_KEY)).json()] == [
        "more-0", "more-1"]  # fmt: skip
    later = client.get("/api/datasource/v1/audit", params={"startTime": "2999-01-01T00:00:00Z"}, headers=h(ADMIN_KEY))
    assert later.json() == []
    early = client.get("/api/datasource/v1/audit", params={"endTime": "2000-01-01T00:00:00Z"}, headers=h(ADMIN_KEY))
    assert early.json() == []
    assert "startTime" in failure(client.get("/api/datasource/v1/audit?startTime=yesterday", headers=h(ADMIN_KEY)), 400)
    assert "endTime" in failure(client.get("/api/datasource/v1/audit?endTime=", headers=h(ADMIN_KEY)), 400)
    assert "eventKinds" in failure(client.get("/api/datasource/v1/audit?eventKinds=Nope", headers=h(ADMIN_KEY)), 400)
    assert failure(client.get("/api/datasource/v1/audit", headers=h(key)), 403)


def test_errors_and_permissions(client, services, admin):
    owner, key = new_user(services, admin)
    reader, reader_key = new_user(services, admin)
    other, other_key = new_user(services, admin)
    org_admin, org_admin_key = new_user(services, admin, Role.ADMIN)
    ds = created(client, key, pg_body(ids=[reader.user_id]))
    url = f"{API}/{ds['id']}"
    assert failure(client.get(API), 401) and failure(client.get(url), 401)
    assert failure(client.post(API, json=pg_body("x")), 401)
    assert failure(client.get("/api/datasource/v1/audit"), 401)
    _, skey = stranger(services, admin)
    for call in (client.get, client.delete):
        assert failure(call(url, headers=h(skey)), 404)
    assert failure(client.patch(url, json={"config": {}}, headers=h(skey)), 404)
    assert failure(client.post(url + "/test", headers=h(skey)), 404)
    assert client.get(API, headers=h(skey)).json()["dataSources"] == []
    assert failure(client.get(url, headers=h(other_key)), 404)  # not granted: hidden
    assert client.get(url, headers=h(reader_key)).status_code == 200
    assert failure(client.patch(url, json={"config": {"schema": "x"}}, headers=h(reader_key)), 403)
    assert failure(client.delete(url, headers=h(reader_key)), 403)
    assert failure(client.delete(url, headers=h(org_admin_key)), 403)  # only the owner deletes
    shared = {"credentials": {"visibleCredentials": {"username": "u"}, "secretCredentials": {"password": "p"}}}
    assert failure(client.patch(url, json=shared, headers=h(reader_key)), 403)
    assert client.patch(url, json=shared, headers=h(org_admin_key)).status_code == 200
    r = client.patch(
        url, json={"permissions": {"isEveryone": True, "userAndOrganizationIds": []}}, headers=h(org_admin_key)
    )
    assert r.status_code == 200 and r.json()["permissions"]["isEveryone"] is True
    assert client.get(url, headers=h(other_key)).status_code == 200
    assert failure(client.get(f"{API}/{'a' * 24}", headers=h(key)), 404)
    assert failure(client.get(f"{API}/%00abc", headers=h(key)), 404)
    # bad bodies: 400 naming the field
    for body, problem in [
        ({k: v for k, v in pg_body("n").items() if k != "name"}, "'name'"),
        ({k: v for k, v in pg_body("n").items() if k != "credentials"}, "'credentials'"),
        ({k: v for k, v in pg_body("n").items() if k != "permissions"}, "'permissions'"),
        (pg_body("n") | {"dataSourceType": "Cassandra"}, "dataSourceType"),
        (pg_body("n") | {"authType": "Kerberos"}, "authType"),
        (pg_body("n") | {"credentialType": "Both"}, "credentialType"),
        (pg_body("n") | {"config": {"host": "h"}}, "config.database"),
        (pg_body("n") | {"config": {"host": "h", "database": "d", "port": 5432}}, "config.port"),
        (pg_body("n") | {"config": "host=h"}, "'config'"),
        (pg_body("n") | {"credentials": {"visibleCredentials": {"username": "u"}, "secretCredentials": {}}},
         "secretCredentials.password"),
        (pg_body("n", ids=["ghost"]), "userAndOrganizationIds"),
        (pg_body("n") | {"permissions": {"isEveryone": "yes", "userAndOrganizationIds": []}}, "isEveryone"),
        ({"name": "s3", "dataSourceType": "S3Config", "authType": "AWSIAMBasic", "credentialType": "Shared", "config": {},
          "credentials": {"visibleCredentials": {"accessKeyID": "a"}, "secretCredentials": {"secretAccessKey": "s"}},
          "permissions": {"isEveryone": True, "userAndOrganizationIds": []}}, "config.bucket"),
    ]:  # fmt: skip
        assert problem in failure(client.post(API, json=body, headers=h(key)), 400), problem
    assert failure(client.post(API, content=b"[]", headers=h(key)), 400)
    assert failure(client.post(API, json=pg_body(), headers=h(key)), 400)  # a duplicate name: 400, never 409
    assert "config.colour" in failure(client.patch(url, json={"config": {"colour": "red"}}, headers=h(key)), 400)
    assert failure(client.get(API, params={"limit": 0}, headers=h(key)), 400)
    assert client.get(API, params={"dataSourceNames": "a\x00b"}, headers=h(key)).json()["dataSources"] == []  # no 500
    nul = {"dataSourceNames": "a\x00b", "dataSourceIds": "\x00"}
    assert client.get("/api/datasource/v1/audit", params=nul, headers=h(ADMIN_KEY)).json() == []
    assert client.get(API, headers=h(key)).json()["metadata"]["totalCount"] == 1  # nothing else stored


def test_planted_secret_never_shown(client, services, admin, db_url, caplog):
    caplog.set_level(logging.DEBUG)
    owner, key = new_user(services, admin)
    answers = []
    ds = created(client, key, pg_body())
    url = f"{API}/{ds['id']}"
    answers += [client.get(url, headers=h(key)), client.get(API, headers=h(key))]
    answers.append(client.patch(url, json={"credentials": {"visibleCredentials": {"username": "postgres"},
                                                           "secretCredentials": {"password": SECRET + "x"}}}, headers=h(key)))  # fmt: skip
    answers.append(client.post(url + "/test", headers=h(key)))
    answers.append(client.get("/api/datasource/v1/audit", headers=h(ADMIN_KEY)))
    answers.append(client.post(API, json=pg_body() | {"authType": "nope"}, headers=h(key)))
    answers.append(client.get("/openapi.json"))
    assert all(SECRET not in r.text for r in answers)
    assert SECRET not in caplog.text
    assert SECRET.encode() not in stored_text(services, db_url)
    assert b"the warehouse" in stored_text(services, db_url)  # the check reads what was stored


@pytest.mark.skipif(bool(_PG_PROBLEM), reason=f"no PostgreSQL: {_PG_PROBLEM}")
def test_connection_test_postgresql(client, services, admin):
    _, key = new_user(services, admin)
    good = created(client, key, pg_body("good"))
    r = client.post(f"{API}/{good['id']}/test", headers=h(key))
    assert r.status_code == 200, r.text
    assert (
        r.json()["ok"] is True
        and "PostgreSQL" in r.json()["message"]
        and r.json()["dataSourceType"] == "PostgreSQLConfig"
    )
    wrong = pg_body("wrong-user")
    wrong["credentials"]["visibleCredentials"]["username"] = "no_such_role_here"
    bad = created(client, key, wrong)
    r = client.post(f"{API}/{bad['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is False and "no_such_role_here" in r.json()["message"]
    refused = created(client, key, pg_body("refused", port="1"))
    r = client.post(f"{API}/{refused['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["elapsedMs"] < 6000


def test_connection_test_s3_and_mysql(client, services, admin, s3_endpoint):  # noqa: F811
    _, key = new_user(services, admin)
    bucket = f"ds-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=bucket)  # fmt: skip

    def s3(name, bucket_name):
        return {
            "name": name, "dataSourceType": "GenericS3Config", "authType": "AWSIAMBasic", "credentialType": "Shared",
            "config": {"bucket": bucket_name, "host": s3_endpoint},
            "credentials": {"visibleCredentials": {"accessKeyID": "test"}, "secretCredentials": {"secretAccessKey": SECRET}},
            "permissions": {"isEveryone": False, "userAndOrganizationIds": []},
        }  # fmt: skip

    good = created(client, key, s3("s3-good", bucket))
    r = client.post(f"{API}/{good['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    missing = created(client, key, s3("s3-missing", "no-such-bucket-" + bucket))
    r = client.post(f"{API}/{missing['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is False and "404" in r.json()["message"] and SECRET not in r.text
    mysql = {
        "name": "mysql", "dataSourceType": "MySQLConfig", "authType": "Basic", "credentialType": "Individual",
        "config": {"host": "127.0.0.1", "database": "d", "port": "1"},
        "credentials": {"visibleCredentials": {"username": "u"}, "secretCredentials": {"password": SECRET}},
        "permissions": {"isEveryone": False, "userAndOrganizationIds": []},
    }  # fmt: skip
    r = client.post(f"{API}/{created(client, key, mysql)['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is False and SECRET not in r.text  # no driver, or refused
    snow = {**mysql, "name": "snow", "dataSourceType": "SnowflakeConfig", "config": {"account": "acme"}}
    r = client.post(f"{API}/{created(client, key, snow)['id']}/test", headers=h(key))
    assert r.status_code == 200 and r.json()["ok"] is False and "cannot test" in r.json()["message"]
