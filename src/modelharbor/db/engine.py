"""Engine and unit of work. A core service method runs inside exactly one ``uow()`` block.

SQLite runs in WAL mode with a busy timeout, and write transactions start with ``BEGIN IMMEDIATE``
so concurrent writers queue instead of failing on lock upgrades.

:meth:`Database.try_without_waiting` runs a service call's units of work right here when that cannot make it
wait — SQLite, where readers never wait in WAL mode and a writer takes the write lock at once or not at all — and
otherwise gives the call back. The API's ``run_db`` (:mod:`modelharbor.api.dbcalls`) uses it to run short calls on
the event loop and the others in a worker thread: handing a short call to a thread and back costs more than the call
itself.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
# set by Database.try_without_waiting around a call: its first write transaction must not wait for the lock
_NO_WAIT: ContextVar[bool] = ContextVar("modelharbor_sqlite_no_wait", default=False)


class WouldWait(Exception):
    """The write lock is taken: the call must run where it may wait (raised before anything was done)."""


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
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # read-only units of work take a deferred (shared) transaction, writers an immediate one; sent straight
            # to sqlite3 (exec_driver_sql's bookkeeping costs several times the statement, on every unit of work)
            raw = conn.connection.driver_connection
            if conn.get_execution_options().get("mh_readonly"):
                raw.execute("BEGIN")  # WAL: a reader never waits
            elif _NO_WAIT.get():
                # on the event loop: take the write lock now or give the call back; later transactions of the same
                # call (rare: none of the calls run this way has two writes) wait as usual
                _NO_WAIT.set(False)
                raw.execute("PRAGMA busy_timeout=0")
                try:
                    raw.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        raise WouldWait from None
                    raise
                finally:
                    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            else:
                raw.execute("BEGIN IMMEDIATE")

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
        # SQLite has one writer at a time; a writer that finds the lock taken sleeps in SQLite's busy handler (1, 2,
        # 5, 10 … 100 ms steps, not woken when the lock frees). Writers of this process queue here instead, woken as
        # soon as the one before them commits; the busy handler is left to other processes (a CLI, a migration).
        self._writers = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def try_without_waiting(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> tuple[bool, T | None]:
        """``(True, fn(*args, **kwargs))`` when the call's units of work cannot make it wait (SQLite); ``(False,
        None)`` when it must run where it may wait: the write lock is taken (the refused attempt did nothing) or
        this is not SQLite."""
        if not self.is_sqlite:
            return False, None
        token = _NO_WAIT.set(True)
        try:
            return True, fn(*args, **kwargs)
        except WouldWait:
            return False, None
        finally:
            _NO_WAIT.reset(token)

    @contextmanager
    def uow(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception. On SQLite a writing one first takes this
        process's writer lock (:attr:`_writers`): at once or not at all on the event loop (``try_without_waiting``)."""
        if readonly or self._writers is None:
            maker = self._read_sessions if readonly else self._sessions
            with maker() as session, session.begin():
                yield session
            return
        if _NO_WAIT.get():
            if not self._writers.acquire(blocking=False):
                raise WouldWait
        else:
            self._writers.acquire()
        try:
            with self._sessions() as session, session.begin():
                yield session
        finally:
            self._writers.release()

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
