"""db/functions.py on both databases: epoch_ms of a stored UTC time agrees with Python's, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select, text

from modelharbor.db.engine import Database
from modelharbor.db.functions import epoch_ms

TIMES = [
    datetime(2026, 12, 8, 2, 50, 33, 52682),
    datetime(2026, 12, 8, 2, 50, 33, 999999),  # truncated, never rounded up to the next second
    datetime(2026, 12, 8, 2, 50, 33, 999),  # under a millisecond: 0
    datetime(2026, 12, 8, 2, 50, 33),  # no fraction stored
    datetime(1999, 12, 31, 23, 59, 59, 500000),
    datetime(2038, 1, 19, 3, 14, 8, 1000),  # past 32 bits of seconds
]


@pytest.fixture
def table(db_url):
    db = Database(db_url)
    meta = MetaData()
    t = Table("epoch_probe", meta, Column("id", Integer, primary_key=True), Column("at", DateTime))
    meta.drop_all(db.engine)
    meta.create_all(db.engine)
    yield db, t
    meta.drop_all(db.engine)
    db.engine.dispose()


def test_epoch_ms_is_pythons_truncated_milliseconds(table):
    db, t = table
    with db.uow() as s:
        s.execute(insert(t), [{"id": i, "at": at} for i, at in enumerate(TIMES)])
    with db.uow(readonly=True) as s:
        got = dict(s.execute(select(t.c.id, epoch_ms(t.c.at))).all())
    assert got == {i: int(at.replace(tzinfo=UTC).timestamp() * 1000) for i, at in enumerate(TIMES)}


def test_epoch_ms_of_a_time_the_database_wrote(table):
    """A time a database default wrote (SQLite's CURRENT_TIMESTAMP has no fraction) reads as whole seconds."""
    db, t = table
    with db.uow() as s:
        s.execute(text("INSERT INTO epoch_probe (id, at) VALUES (1, CURRENT_TIMESTAMP)"))
    with db.uow(readonly=True) as s:
        ms, at = s.execute(select(epoch_ms(t.c.at), t.c.at)).one()
    assert ms == int(at.replace(tzinfo=at.tzinfo or UTC).timestamp() * 1000)
    assert abs(ms / 1000 - datetime.now(UTC).timestamp()) < 3600
