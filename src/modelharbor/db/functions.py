"""SQL functions the two supported databases spell differently, compiled for each (SQLite, PostgreSQL).

``epoch_ms(column)``: a UTC ``DateTime`` column (stored naive, as every time in ModelHarbor) as whole milliseconds
since the epoch, truncated like ``int(dt.timestamp() * 1000)``: long listings read their times as numbers the
database computed, without a ``datetime`` built, made aware and converted per row (core/project_settings.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class epoch_ms(FunctionElement[int]):  # noqa: N801 - an SQL function, named like one
    type = BigInteger()
    inherit_cache = True
    name = "epoch_ms"


@compiles(epoch_ms, "sqlite")
def _epoch_ms_sqlite(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]': the seconds of its first 19 characters (strftime of the whole value
    # would round .9995 up to the next second), the milliseconds of the text after them (none: 0)
    column = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000 + CAST(substr({column}, 21, 3) AS INTEGER))"
    )


@compiles(epoch_ms, "postgresql")
def _epoch_ms_postgresql(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # a timestamp without time zone: EXTRACT gives its nominal seconds since the epoch (numeric, exact)
    column = compiler.process(element.clauses, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) * 1000) AS BIGINT)"
