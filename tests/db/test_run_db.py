"""run_db: a short database call runs on the event loop when it cannot wait (SQLite), else in a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from sqlalchemy import text

from modelharbor.api.dbcalls import run_db
from modelharbor.db.engine import Database


def _insert(db: Database, name: str) -> int:
    with db.uow() as s:
        s.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": name})
    return threading.get_ident()


def _read(db: Database) -> tuple[int, int]:
    with db.uow(readonly=True) as s:
        return s.execute(text("SELECT count(*) FROM t")).scalar(), threading.get_ident()


def _db(db_url: str) -> Database:
    db = Database(db_url)
    with db.uow() as s:
        s.execute(text("DROP TABLE IF EXISTS t"))
        s.execute(text("CREATE TABLE t (name VARCHAR(50) NOT NULL)"))
    return db


def test_a_free_sqlite_write_and_a_read_run_on_the_event_loop(sqlite_url):
    db = _db(sqlite_url)

    async def go():
        loop_thread = threading.get_ident()
        assert await run_db(db, _insert, db, "a") == loop_thread
        count, thread = await run_db(db, _read, db)
        assert (count, thread) == (1, loop_thread)

    asyncio.run(go())
    db.dispose()


def test_a_locked_sqlite_write_waits_in_a_thread_and_runs_once(sqlite_url):
    db = _db(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    holder.execute("INSERT INTO t (name) VALUES ('held')")

    async def go():
        loop_thread = threading.get_ident()
        ticks = 0

        async def ticker():  # the event loop stays free while the call waits
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        asyncio.get_running_loop().call_later(0.3, holder.commit)
        started = time.monotonic()
        thread = await run_db(db, _insert, db, "b")
        waited = time.monotonic() - started
        t.cancel()
        assert thread != loop_thread  # it went to a worker thread
        assert waited >= 0.25  # and waited for the lock there
        assert ticks >= 10
        # a read never waits: on the loop
        count, thread = await run_db(db, _read, db)
        assert thread == loop_thread
        return count

    assert asyncio.run(go()) == 2  # 'held' + 'b' once: the refused attempt did nothing
    holder.close()
    # the refused attempts returned their connections to the pool, and the busy timeout is back
    assert db.engine.pool.checkedout() == 0
    with db.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()


def test_many_refused_attempts_leak_no_connections(sqlite_url):
    db = _db(sqlite_url)
    holder = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def go():
        tasks = [asyncio.create_task(run_db(db, _insert, db, f"n{i}")) for i in range(30)]
        await asyncio.sleep(0.2)
        holder.commit()
        return await asyncio.gather(*tasks)

    assert len(asyncio.run(go())) == 30
    holder.close()
    assert db.engine.pool.checkedout() == 0
    with db.uow(readonly=True) as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 30
    db.dispose()


def test_postgresql_calls_always_run_in_a_thread(db_url):
    db = _db(db_url)

    async def go():
        thread = await run_db(db, _insert, db, "a")
        return thread != threading.get_ident()

    try:
        assert asyncio.run(go()) is (not db.is_sqlite)
    finally:  # the worker's PostgreSQL database outlives the test: a stray table fails test_migrations after it
        with db.uow() as s:
            s.execute(text("DROP TABLE t"))
        db.dispose()
