"""Shared fixtures: real SQLite and PostgreSQL databases, the real local blob store, an in-process app.

PostgreSQL runs when a server answers at MODELHARBOR_TEST_PG (default postgresql://postgres@127.0.0.1:5432);
otherwise those runs are skipped with a message saying so.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from modelharbor.app import create_app
from modelharbor.db.engine import Database
from modelharbor.db.migrate import upgrade
from modelharbor.db.tables import Base
from modelharbor.services import Services, build_services
from modelharbor.settings import Settings

PG_ADMIN_URL = os.environ.get("MODELHARBOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
ADMIN_KEY = "mh_test_admin_key_0123456789"


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL + "/postgres", connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


_PG_PROBLEM = _pg_available()
if _PG_PROBLEM:
    print(f"\n*** PostgreSQL tests SKIPPED: no server at {PG_ADMIN_URL} ({_PG_PROBLEM}) ***")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database():
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_PROBLEM}")
    import psycopg

    name = f"modelharbor_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL}/{name}"
    upgrade(url)
    db = Database(url)
    with db.engine.connect() as conn:  # rows the migrations seed, restored after every truncate
        _SEEDED[url] = {
            t: [dict(r._mapping) for r in conn.execute(Base.metadata.tables[t].select())] for t in SEEDED_TABLES
        }
    db.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SEEDED_TABLES = ("domains", "frameworks", "licences")
_SEEDED: dict[str, dict[str, list[dict]]] = {}


def _truncate(url: str) -> None:
    """Empty every table, then put back what the migrations seed (reference data)."""
    db = Database(url)
    names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        for table, rows in _SEEDED[url].items():
            if rows:
                conn.execute(Base.metadata.tables[table].insert(), rows)
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), {len(rows)})"))
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template) -> str:
    if request.param == "sqlite":
        path = tmp_path / "modelharbor.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "modelharbor.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def make_settings(tmp_path: Path, db_url: str, **extra) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=db_url,
        blob_url=str(tmp_path / "blobs"),
        secret_key="test-secret-key",
        admin_user="admin",
        admin_key=ADMIN_KEY,
        workers=False,
        **extra,
    )


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def services(settings) -> Services:
    svc = build_services(settings)
    svc.identity.ensure_admin("admin", key=ADMIN_KEY)
    yield svc
    svc.close()


@pytest.fixture
def admin(services):
    return services.identity.authenticate_key(ADMIN_KEY)


@pytest.fixture
def client(services) -> TestClient:
    app = create_app(services.settings, services, run_workers=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def pytest_collection_modifyitems(config, items) -> None:
    """Modules marked ``slow`` (the whole module: ``pytestmark = pytest.mark.slow``) run first, the rest keep their
    order. ``make test`` gives each worker whole modules in this order (``--dist loadscope --no-loadscope-reorder``),
    so the longest modules start at once and the short ones fill in behind them, instead of one long module
    ending the run on one worker while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
