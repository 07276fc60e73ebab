"""Domain queries (:mod:`modelharbor.domain.query`) evaluated: compiled to SQL, or tested in Python.

The dialects parse their filter languages (MLflow's search strings, UFDL's FilterSpec) into a
:class:`~modelharbor.domain.query.Query`; the core decides what a search accepts:

- :func:`compile_query`: the catalogue's whitelisted, typed fields (``str``, ``int``, ``datetime``, ``ref``) with
  ``=``, ``CONTAINS``, ``ISNULL``, ``<``/``>``/``<=``/``>=``, and/or/not and ordering; anything else raises
  :class:`InvalidInput` with code ``INVALID_FILTER`` naming the problem (unknown fields never reach the database).
- :func:`checked_compare`, :func:`tag_condition`, :func:`order_clauses`: the registry's searches (MLflow's
  semantics: ``LIKE`` is case-sensitive on every database, ``tags.k != 'v'`` also matches objects without the tag).
- :func:`compare` and :func:`compare_py`: the tracking server's searches, in SQL and over loaded entities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_

from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import All, AnyOf, Comparison, Condition, Not, Order, Query, Value


@dataclass(frozen=True)
class FilterField:
    column: ColumnElement[Any]  # a SQLAlchemy column expression
    kind: str  # "str" | "int" | "datetime" | "ref" (only isnull/exact by id)


@dataclass(frozen=True)
class CompiledFilter:
    where: list[ColumnElement]
    order_by: list[Any]
    include_inactive: bool


_SQL_OPS = {"<": "__lt__", ">": "__gt__", "<=": "__le__", ">=": "__ge__"}


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="INVALID_FILTER")


def compile_query(query: Query | None, fields: dict[str, FilterField], *, dialect: str) -> CompiledFilter:
    """``query`` (None: everything) against ``fields``, for a database of ``dialect``."""
    query = query or Query()
    compiler = _Compiler(fields, dialect)
    where = [compiler.condition(c) for c in query.where]
    return CompiledFilter(where, [compiler.ordering(o) for o in query.order], query.include_inactive)


class _Compiler:
    def __init__(self, fields: dict[str, FilterField], dialect: str):
        self.fields = fields
        self.dialect = dialect

    def field(self, name: str) -> FilterField:
        if name not in self.fields:
            raise _bad(f"unknown field {name!r}; filterable fields: {', '.join(sorted(self.fields))}")
        return self.fields[name]

    def condition(self, c: Condition) -> ColumnElement:
        if isinstance(c, Not):
            return not_(self.condition(c.part))
        if isinstance(c, (All, AnyOf)):
            parts = [self.condition(p) for p in c.parts]
            return and_(*parts) if isinstance(c, All) else or_(*parts)
        return self.comparison(c)

    def comparison(self, c: Comparison) -> ColumnElement:
        f = self.field(c.name)
        col = f.column
        if c.op == "ISNULL":
            return col.is_(None)
        if f.kind == "ref" and c.op != "=":
            raise _bad(f"field {c.name!r} supports only isnull and exact")
        if c.op == "CONTAINS":
            sub = c.value
            if f.kind != "str":
                raise _bad(f"'contains' needs a text field; {c.name!r} is not one")
            pattern = "%" + sub.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if c.case_insensitive:
                return func.lower(col).like(func.lower(pattern), escape="\\")
            if self.dialect == "sqlite":  # SQLite's LIKE ignores case
                return func.instr(col, sub) > 0
            return col.like(pattern, escape="\\")
        value = self.value(f, c.name, c.value)
        if c.op == "=":
            if c.case_insensitive and isinstance(value, str):
                return func.lower(col) == value.lower()
            return col == value
        if c.op not in _SQL_OPS:
            raise _bad(f"operator must be one of {', '.join(_SQL_OPS)}, not {c.op!r}")
        return getattr(col, _SQL_OPS[c.op])(value)

    def value(self, f: FilterField, name: str, value: Value | list | dict) -> Any:
        """A query value as the column compares it (the query's scalars; a list or object a filter JSON held)."""
        if value is None or isinstance(value, (list, tuple, dict)):
            raise _bad(f"'value' for {name!r} must be a string, number or boolean")
        if f.kind == "int":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdecimal())
            ):
                raise _bad(f"'value' for {name!r} must be an integer")
            return int(value)
        if f.kind == "datetime":
            if not isinstance(value, str):
                raise _bad(f"'value' for {name!r} must be an ISO-8601 date-time string")
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise _bad(f"{value!r} is not an ISO-8601 date-time") from None
        if isinstance(value, bool):
            raise _bad(f"'value' for {name!r} must be a string")
        return str(value)

    def ordering(self, o: Order) -> Any:
        col = self.field(o.name).column
        clause = col.asc() if o.ascending else col.desc()
        if o.nulls_first is True:
            clause = clause.nulls_first()
        elif o.nulls_first is False:
            clause = clause.nulls_last()
        return clause


# --- the registry's searches (MLflow semantics) ---------------------------------------------------


def comparisons(query: Query, what: str) -> tuple[Comparison, ...]:
    """The query's conditions, which must all be plain comparisons (MLflow joins them with AND only)."""
    for c in query.where:
        if not isinstance(c, Comparison):
            raise InvalidInput(f"Invalid filter: {what} take comparisons joined by AND.")
    return query.where  # type: ignore[return-value]


def _like(col, pattern: str, dialect: str):
    if dialect == "sqlite":  # SQLite's LIKE ignores case: GLOB is the case-sensitive equivalent
        glob = "".join({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(c, c) for c in pattern)
        return col.op("GLOB")(glob)
    return col.like(pattern)


def checked_compare(col, c: Comparison, dialect: str, *, kind: str = "str"):
    """``col <op> value`` for a text column (``kind`` ``str``; ``in`` also takes IN / NOT IN) or an integer one."""
    op, value = c.op, c.value
    if kind == "int":
        if op not in ("=", "!=", "<", "<=", ">", ">=") or isinstance(value, str) and not value.lstrip("-").isdecimal():
            raise InvalidInput(f"Invalid filter: {c.name} takes a number and one of =, !=, <, <=, >, >=.")
        value = int(value)
        if not -(2**31) < value < 2**31:
            raise InvalidInput(f"Invalid filter: {c.name} {value} is out of range.")
    elif op in ("IN", "NOT IN"):
        if kind != "in":
            raise InvalidInput(f"Invalid filter: {op} is only supported for run_id, not {c.name!r}.")
        if not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"Invalid filter: {op} needs a parenthesised list of quoted strings.")
    elif not isinstance(value, str):
        raise InvalidInput(f"Invalid filter: {c.name!r} must be compared with a quoted string.")
    elif op not in ("=", "!=", "LIKE", "ILIKE"):
        raise InvalidInput(f"Invalid filter: {c.name!r} supports =, !=, LIKE and ILIKE, not {op}.")
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "LIKE":
        return _like(col, value, dialect)
    if op == "ILIKE":
        return func.lower(col).like(value.lower())
    if op == "IN":
        return col.in_(value)
    if op == "NOT IN":
        return col.not_in(value)
    return {"<": col < value, "<=": col <= value, ">": col > value, ">=": col >= value}[op]


def tag_condition(tag_table, owner_col, owner_pk_col, c: Comparison, dialect: str):
    """``tags.k = 'v'`` (and LIKE/ILIKE): a tag k matches. ``tags.k != 'v'``: no tag k with value v — objects
    without the tag match too, which is what the MLflow client relies on when it appends
    ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every search."""
    if c.op == "!=":
        positive = Comparison(c.key, "=", c.value, c.kind)
        return ~exists().where(
            owner_col == owner_pk_col, tag_table.key == c.key, checked_compare(tag_table.value, positive, dialect)
        )
    return exists().where(
        owner_col == owner_pk_col, tag_table.key == c.key, checked_compare(tag_table.value, c, dialect)
    )


def order_clauses(order: tuple[Order, ...], allowed: dict[str, Any]) -> list:
    """ORDER BY clauses for attribute orderings among ``allowed`` (name → column)."""
    out = []
    for o in order:
        if o.kind != "attributes" or o.key not in allowed:
            raise InvalidInput(f"Invalid order_by attribute {o.name!r}; expected one of {', '.join(sorted(allowed))}.")
        col = allowed[o.key]
        out.append(col.asc() if o.ascending else col.desc())
    return out


# --- the tracking server's searches ---------------------------------------------------------------


def compare(col, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op in ("<", ">", "<=", ">="):
        return {"<": col < value, ">": col > value, "<=": col <= value, ">=": col >= value}[op]
    if op == "LIKE":
        return col.like(str(value))
    if op == "NOT LIKE":
        return ~col.like(str(value))
    if op == "ILIKE":
        return func.lower(col).like(str(value).lower())
    if op == "NOT ILIKE":
        return ~func.lower(col).like(str(value).lower())
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise InvalidInput(f"unsupported operator {op!r}")


def _like_py(pattern: str, text: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.I | re.S if ci else re.S) is not None


def compare_py(actual: Any, op: str, value: Any) -> bool:
    if actual is None:
        return False
    if op in ("<", ">", "<=", ">="):
        try:
            a, v = (float(actual), float(value)) if isinstance(value, (int, float)) else (actual, value)
            return {"<": a < v, ">": a > v, "<=": a <= v, ">=": a >= v}[op]
        except (TypeError, ValueError):
            return False
    if op == "=":
        return str(actual) == str(value)
    if op == "!=":
        return str(actual) != str(value)
    if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        hit = _like_py(str(value), str(actual), "ILIKE" in op)
        return not hit if op.startswith("NOT") else hit
    if op in ("IN", "NOT IN"):
        hit = str(actual) in {str(v) for v in value}
        return not hit if op == "NOT IN" else hit
    return False
