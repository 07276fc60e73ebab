"""Engine and unit of work. A core service method runs inside exactly one ``uow()`` block.

SQLite runs in WAL mode with a busy timeout, and write transactions start with ``BEGIN IMMEDIATE``
so concurrent writers queue instead of failing on lock upgrades.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # read-only units of work take a deferred (shared) transaction, writers an immediate one; sent straight
            # to sqlite3 (exec_driver_sql's bookkeeping costs several times the statement, on every unit of work)
            sql = "BEGIN" if conn.get_execution_options().get("mh_readonly") else "BEGIN IMMEDIATE"
            conn.connection.driver_connection.execute(sql)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(mh_readonly=True), expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def uow(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception."""
        maker = self._read_sessions if readonly else self._sessions
        with maker() as session, session.begin():
            yield session

    def ping(self) -> bool:
        from sqlalchemy import text

        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
