"""Data sources in the core (core/data_sources.py) on SQLite and PostgreSQL: each type's required fields, sealed
credentials, who sees, updates and deletes, the audit log, and connection tests against the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from modelharbor.core.clock import now
from modelharbor.core.data_sources import (
    AuditQuery,
    Credentials,
    DataSourceUpdate,
    NewDataSource,
    Permissions,
)
from modelharbor.core.teams import TeamRole
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Role
from tests.conftest import _PG_PROBLEM, PG_ADMIN_URL

SECRET = "pl4nted-S3cret-" + uuid.uuid4().hex


def member(services, admin, role=Role.MEMBER):
    user = services.identity.create_user(admin, f"ds-{uuid.uuid4().hex[:8]}", role=role)
    return services.identity.principal_by_ids(user.id, admin.org_id)


def postgres(
    name="pg", *, password=SECRET, everyone=False, grantees=(), credential_type="Shared", description="", **config
):
    pg = urlsplit(PG_ADMIN_URL)
    return NewDataSource(
        name=name,
        data_source_type="PostgreSQLConfig",
        auth_type="Basic",
        credential_type=credential_type,
        config={"host": pg.hostname or "127.0.0.1", "port": str(pg.port or 5432), "database": "postgres"} | config,
        credentials=Credentials({"username": pg.username or "postgres"}, {"password": password}),
        permissions=Permissions(everyone, tuple(grantees)),
        description=description,
    )


def stored_text(services, db_url: str) -> bytes:
    """Everything the database holds of data sources, as bytes: the SQLite files, or PostgreSQL's rows as text."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    tables = ("data_sources", "data_source_credentials", "data_source_grants", "data_source_audit")
    with services.db.engine.connect() as conn:
        return "\n".join(str(r[0]) for t in tables for r in conn.execute(text(f"SELECT t::text FROM {t} t"))).encode()


def test_lifecycle_and_sealed_secret(services, admin, db_url):
    owner = member(services, admin)
    ds = services.data_sources.create(owner, postgres(description="warehouse"))
    assert ds.data_source_type == "PostgreSQLConfig" and ds.credential_type == "Shared" and len(ds.id) == 24
    assert ds.owner_id == owner.user_id and ds.owner_username == owner.username and ds.description == "warehouse"
    assert ds.config["database"] == "postgres" and SECRET not in repr(ds)
    assert services.data_sources.get(owner, ds.id) == ds
    page, total = services.data_sources.list(owner)
    assert total == 1 and [d.id for d in page] == [ds.id]
    services.data_sources.update(owner, ds.id, DataSourceUpdate(config={"schema": "public"}))
    services.data_sources.update(
        owner, ds.id, DataSourceUpdate(credentials=Credentials({"username": "x"}, {"password": SECRET + "2"}))
    )
    stored = stored_text(services, db_url)
    assert b"warehouse" in stored and SECRET.encode() not in stored  # the rest is there, the secret is not
    gone = services.data_sources.delete(owner, ds.id)
    assert gone.id == ds.id
    with pytest.raises(NotFound):
        services.data_sources.get(owner, ds.id)
    kinds = [e.event_kind for e in services.data_sources.audit(admin, AuditQuery(data_source_ids=(ds.id,)))]
    assert kinds == [
        "CreateDataSource",
        "DataSourceChangeOfConfig",
        "DataSourceChangeOfCredentials",
        "DeleteDataSource",
    ]


@pytest.mark.parametrize(
    ("kind", "config", "auth", "visible", "secret", "problem"),
    [
        ("Oracle", {}, "Basic", {}, {}, "dataSourceType"),
        ("S3Config", {}, "AWSIAMBasic", {"accessKeyID": "a"}, {"secretAccessKey": "s"}, "config.bucket"),
        (
            "GenericS3Config",
            {"bucket": "b"},
            "AWSIAMBasic",
            {"accessKeyID": "a"},
            {"secretAccessKey": "s"},
            "config.host",
        ),
        ("s3", {"bucket": "b"}, "AWSIAMBasic", {"accessKeyID": "a"}, {}, "secretCredentials.secretAccessKey"),
        ("s3", {"bucket": "b"}, "Basic", {}, {}, "authType"),
        ("PostgreSQL", {"host": "h"}, "Basic", {"username": "u"}, {"password": "p"}, "config.database"),
        (
            "PostgreSQL",
            {"host": "h", "database": "d", "port": "99999"},
            "Basic",
            {"username": "u"},
            {"password": "p"},
            "config.port",
        ),
        (
            "PostgreSQL",
            {"host": "h", "database": "d", "colour": "x"},
            "Basic",
            {"username": "u"},
            {"password": "p"},
            "config.colour",
        ),
        ("MySQLConfig", {"host": "h", "database": "d"}, "Basic", {}, {"password": "p"}, "visibleCredentials.username"),
        ("MariaDB", {"database": "d"}, "Basic", {"username": "u"}, {"password": "p"}, "config.host"),
        ("SnowflakeConfig", {}, "OAuth", {}, {"token": "t"}, "config.account"),
        ("SnowflakeConfig", {"account": "a"}, "OAuth", {}, {}, "secretCredentials.token"),
        ("GenericJDBCConfig", {}, "Basic", {"username": "u"}, {"password": "p"}, "config.jdbcUrl"),
        ("GenericODBCConfig", {}, "NoAuth", {}, {}, "config.connectionString"),
        ("GenericODBCConfig", {"connectionString": "c"}, "NoAuth", {}, {"password": "p"}, "secretCredentials.password"),
    ],
)
def test_required_fields_per_type(services, admin, kind, config, auth, visible, secret, problem):
    new = NewDataSource("x", kind, auth, "Shared", config, Credentials(visible, secret), Permissions())
    with pytest.raises(InvalidInput) as err:
        services.data_sources.create(admin, new)
    assert problem in err.value.message
    assert services.data_sources.list(admin) == ([], 0)


def test_every_type_is_created(services, admin):
    for i, (kind, config, auth, visible, secret) in enumerate([
        ("S3Config", {"bucket": "b", "region": "eu-west-1"}, "AWSIAMBasic", {"accessKeyID": "a"}, {"secretAccessKey": "s"}),
        ("GenericS3Config", {"bucket": "b", "host": "http://minio:9000"}, "AWSIAMBasic", {"accessKeyID": "a"}, {"secretAccessKey": "s"}),
        ("MySQLConfig", {"host": "h", "database": "d", "port": "3306"}, "Basic", {"username": "u"}, {"password": "p"}),
        ("mariadb", {"host": "h", "database": "d"}, "basic", {"username": "u"}, {"password": "p"}),
        ("SnowflakeConfig", {"account": "acme", "warehouse": "wh"}, "OAuth", {}, {"token": "t"}),
        ("GenericJDBCConfig", {"jdbcUrl": "jdbc:db2://h/d"}, "Basic", {"username": "u"}, {"password": "p"}),
        ("GenericODBCConfig", {"connectionString": "DSN=x"}, "NoAuth", {}, {}),
    ]):  # fmt: skip
        new = NewDataSource(f"s{i}", kind, auth, "Individual", config, Credentials(visible, secret), Permissions())
        assert services.data_sources.create(admin, new).credential_type == "Individual"
    assert services.data_sources.list(admin, limit=100)[1] == 7
    assert [d.name for d in services.data_sources.list(admin, names=["s2", "s5"])[0]] == ["s2", "s5"]
    assert [d.name for d in services.data_sources.list(admin, offset=5, limit=10)[0]] == ["s5", "s6"]


def test_permissions_update_and_delete_rules(services, admin):
    owner, granted, other = member(services, admin), member(services, admin), member(services, admin)
    org_admin = member(services, admin, Role.ADMIN)  # an admin of the organisation, not a superuser
    ds = services.data_sources.create(owner, postgres(grantees=[granted.username]))
    assert ds.grantee_ids == (granted.user_id,)
    assert services.data_sources.get(granted, ds.id).id == ds.id
    with pytest.raises(NotFound):
        services.data_sources.get(other, ds.id)
    assert services.data_sources.list(other) == ([], 0)
    # a grantee uses it but changes neither configuration, permissions nor shared credentials, nor deletes it
    for change in (
        DataSourceUpdate(config={"schema": "s"}),
        DataSourceUpdate(permissions=Permissions(True)),
        DataSourceUpdate(credentials=Credentials({"username": "u"}, {"password": "p"})),
    ):
        with pytest.raises(Forbidden):
            services.data_sources.update(granted, ds.id, change)
    with pytest.raises(Forbidden):
        services.data_sources.delete(granted, ds.id)
    # an admin changes the shared credentials and the permissions; but only the owner deletes
    services.data_sources.update(
        org_admin, ds.id, DataSourceUpdate(credentials=Credentials({"username": "u"}, {"password": "p"}))
    )
    everyone = services.data_sources.update(org_admin, ds.id, DataSourceUpdate(permissions=Permissions(True)))
    assert everyone.is_everyone and everyone.grantee_ids == ()
    assert services.data_sources.get(other, ds.id).id == ds.id
    with pytest.raises(Forbidden):
        services.data_sources.delete(org_admin, ds.id)
    # Individual credentials: every user with access sets their own
    mine = services.data_sources.create(owner, postgres("indiv", credential_type="Individual", everyone=True))
    services.data_sources.update(
        other, mine.id, DataSourceUpdate(credentials=Credentials({"username": "o"}, {"password": "p"}))
    )
    with pytest.raises(InvalidInput, match="userAndOrganizationIds"):
        services.data_sources.update(owner, ds.id, DataSourceUpdate(permissions=Permissions(False, ("ghost",))))
    with pytest.raises(Conflict):
        services.data_sources.create(owner, postgres())
    # a team (Domino's organization) is granted by id: its members see the data source
    team = services.teams.create(owner, f"team-{uuid.uuid4().hex[:6]}", [(other.user_id, TeamRole.MEMBER)])
    teamed = services.data_sources.create(owner, postgres("teamed", grantees=[team.id]))
    assert services.data_sources.get(other, teamed.id).grantee_ids == (team.id,)
    with pytest.raises(NotFound):
        services.data_sources.get(granted, teamed.id)
    kinds = [e.event_kind for e in services.data_sources.audit(admin, AuditQuery(data_source_names=("pg",)))]
    assert kinds == ["CreateDataSource", "DataSourceChangeOfCredentials", "DataSourceChangeOfPermissions"]
    with pytest.raises(Forbidden):
        services.data_sources.audit(owner, AuditQuery())


def test_audit_filters(services, admin):
    a = services.data_sources.create(admin, postgres("a"))
    services.data_sources.create(admin, postgres("b"))
    services.data_sources.update(admin, a.id, DataSourceUpdate(permissions=Permissions(True)))
    audit = services.data_sources.audit
    assert len(audit(admin, AuditQuery())) == 3
    assert [e.data_source_name for e in audit(admin, AuditQuery(event_kinds=("CreateDataSource",)))] == ["a", "b"]
    changed = audit(admin, AuditQuery(event_kinds=("DataSourceChangeOfPermissions",)))
    assert [(e.data_source_id, e.details["isEveryone"], e.performed_by) for e in changed] == [(a.id, "true", "admin")]
    assert audit(admin, AuditQuery(start=now() + timedelta(minutes=1))) == []
    assert len(audit(admin, AuditQuery(end=now() + timedelta(minutes=1)))) == 3
    assert audit(admin, AuditQuery(end=now() - timedelta(minutes=1))) == []
    with pytest.raises(InvalidInput, match="eventKinds"):
        audit(admin, AuditQuery(event_kinds=("Nope",)))


def _mariadb_problem() -> str:
    import pymysql

    try:
        pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database="test", connect_timeout=3
        ).close()
    except Exception as exc:  # noqa: BLE001 - the reason to skip
        return f"{type(exc).__name__}: {exc}"
    return ""


_MARIADB_PROBLEM = _mariadb_problem()


@pytest.fixture
def mariadb_user():
    """A MariaDB account with a password (the machine's root has none, and a Basic source needs one), dropped after."""
    import pymysql

    user, password = f"mh_probe_{uuid.uuid4().hex[:8]}", "probe-" + uuid.uuid4().hex
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with root.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            cur.execute(f"GRANT SELECT ON test.* TO '{user}'@'%'")
        yield user, password
    finally:
        with root.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        root.close()


def mariadb(name, user, password, **config):
    return NewDataSource(
        name=name,
        data_source_type="MariaDBConfig",
        auth_type="Basic",
        credential_type="Shared",
        config={"host": "127.0.0.1", "port": "3306", "database": "test"} | config,
        credentials=Credentials({"username": user}, {"password": password}),
        permissions=Permissions(False, ()),
    )


@pytest.mark.skipif(
    bool(_MARIADB_PROBLEM), reason=f"no MariaDB on 127.0.0.1:3306 (root, database test): {_MARIADB_PROBLEM}"
)
def test_connection_to_mariadb(services, admin, mariadb_user):
    user, password = mariadb_user
    good = services.data_sources.create(admin, mariadb("good", user, password))
    result = services.data_sources.test_connection(admin, good.id)
    assert result.ok and "MariaDB" in result.message, result.message
    bad_db = services.data_sources.create(admin, mariadb("bad-db", user, password, database="no_such_database_here"))
    result = services.data_sources.test_connection(admin, bad_db.id)
    assert not result.ok and "no_such_database_here" in result.message
    wrong = services.data_sources.create(admin, mariadb("wrong-password", user, SECRET))
    result = services.data_sources.test_connection(admin, wrong.id)
    assert not result.ok and "Access denied" in result.message and SECRET not in result.message
    closed = services.data_sources.create(admin, mariadb("closed", user, password, port="1"))
    result = services.data_sources.test_connection(admin, closed.id)
    assert not result.ok and "OperationalError" in result.message


@pytest.mark.skipif(bool(_PG_PROBLEM), reason=f"no PostgreSQL: {_PG_PROBLEM}")
def test_connection_to_postgresql(services, admin):
    good = services.data_sources.create(admin, postgres("good"))
    result = services.data_sources.test_connection(admin, good.id)
    assert result.ok, result.message
    assert "PostgreSQL" in result.message and result.elapsed_ms < 5000
    bad = services.data_sources.create(admin, postgres("bad", database="no_such_database_here"))
    result = services.data_sources.test_connection(admin, bad.id)
    assert not result.ok and "no_such_database_here" in result.message and SECRET not in result.message
    closed = services.data_sources.create(admin, postgres("closed", host="127.0.0.1", port="1"))
    result = services.data_sources.test_connection(admin, closed.id)
    assert not result.ok and "OperationalError" in result.message
    kinds = [
        e.details.get("ok") for e in services.data_sources.audit(admin, AuditQuery(event_kinds=("AccessDataSource",)))
    ]
    assert kinds == ["true", "false", "false"]
