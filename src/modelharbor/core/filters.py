"""A small filter language over whitelisted fields, compiled to SQL: ``exact``, ``contains``, ``isnull``,
``compare``, ``and``, ``or`` (each invertible), ``order_by`` and ``include_inactive``.

This is UFDL's FilterSpec, kept as plain data so every edge can use it. Anything malformed raises
:class:`InvalidInput` naming the problem; unknown fields are refused (never passed to the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_

from modelharbor.domain.errors import InvalidInput


@dataclass(frozen=True)
class FilterField:
    column: Any  # a SQLAlchemy column expression
    kind: str  # "str" | "int" | "datetime" | "ref" (only isnull/exact by id)


@dataclass(frozen=True)
class CompiledFilter:
    where: list[ColumnElement]
    order_by: list[Any]
    include_inactive: bool


FIELD_TYPES = {"exact", "contains", "isnull", "is_null", "compare"}
KEYS = {
    "exact": ({"type", "field", "value"}, {"case_insensitive", "invert"}),
    "contains": ({"type", "field", "sub_string"}, {"case_insensitive", "invert"}),
    "isnull": ({"type", "field"}, {"invert"}),
    "is_null": ({"type", "field"}, {"invert"}),
    "compare": ({"type", "field", "operator", "value"}, {"invert"}),
    "and": ({"type", "sub_expressions"}, {"invert"}),
    "or": ({"type", "sub_expressions"}, {"invert"}),
}
OPERATORS = {"<": "__lt__", ">": "__gt__", "<=": "__le__", ">=": "__ge__"}
MAX_EXPRESSIONS = 100


def compile_filter(spec: Any, fields: dict[str, FilterField], *, dialect: str) -> CompiledFilter:
    """Validate ``spec`` (None or a dict) and compile it against ``fields``."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise InvalidInput("the filter must be a JSON object", code="INVALID_FILTER")
    unknown = set(spec) - {"expressions", "order_by", "include_inactive"}
    if unknown:
        raise InvalidInput(f"unknown filter key(s): {', '.join(sorted(unknown))}", code="INVALID_FILTER")
    compiler = _Compiler(fields, dialect)
    expressions = spec.get("expressions", [])
    if not isinstance(expressions, list):
        raise InvalidInput("'expressions' must be a list", code="INVALID_FILTER")
    if len(expressions) > MAX_EXPRESSIONS:
        raise InvalidInput(f"at most {MAX_EXPRESSIONS} expressions", code="INVALID_FILTER")
    where = [compiler.expression(e, depth="top") for e in expressions]
    order = spec.get("order_by", [])
    if not isinstance(order, list):
        raise InvalidInput("'order_by' must be a list", code="INVALID_FILTER")
    order_by = [compiler.ordering(o) for o in order]
    inactive = spec.get("include_inactive", False)
    if not isinstance(inactive, bool):
        raise InvalidInput("'include_inactive' must be true or false", code="INVALID_FILTER")
    return CompiledFilter(where, order_by, inactive)


class _Compiler:
    def __init__(self, fields: dict[str, FilterField], dialect: str):
        self.fields = fields
        self.dialect = dialect

    def field(self, name: Any) -> FilterField:
        if not isinstance(name, str) or not name:
            raise InvalidInput("'field' must be a non-empty string", code="INVALID_FILTER")
        if name not in self.fields:
            raise InvalidInput(
                f"unknown field {name!r}; filterable fields: {', '.join(sorted(self.fields))}", code="INVALID_FILTER"
            )
        return self.fields[name]

    def expression(self, e: Any, *, depth: str) -> ColumnElement:
        if not isinstance(e, dict):
            raise InvalidInput("each expression must be a JSON object", code="INVALID_FILTER")
        kind = e.get("type")
        if kind not in KEYS:
            raise InvalidInput(
                f"unknown expression type {kind!r}; use one of: {', '.join(sorted(KEYS))}", code="INVALID_FILTER"
            )
        required, optional = KEYS[kind]
        missing, extra = required - set(e), set(e) - required - optional
        if missing:
            raise InvalidInput(f"{kind} expression lacks: {', '.join(sorted(missing))}", code="INVALID_FILTER")
        if extra:
            raise InvalidInput(
                f"{kind} expression has unknown key(s): {', '.join(sorted(extra))}", code="INVALID_FILTER"
            )
        for flag in ("invert", "case_insensitive"):
            if flag in e and not isinstance(e[flag], bool):
                raise InvalidInput(f"'{flag}' must be true or false", code="INVALID_FILTER")
        clause = self.logical(kind, e["sub_expressions"], depth) if kind in ("and", "or") else self.comparison(kind, e)
        return not_(clause) if e.get("invert") else clause

    def logical(self, kind: str, subs: Any, depth: str) -> ColumnElement:
        if not isinstance(subs, list) or len(subs) < 2:
            raise InvalidInput(f"'{kind}' needs at least two sub_expressions", code="INVALID_FILTER")
        allowed = FIELD_TYPES if kind == "and" else FIELD_TYPES | {"and"}
        for sub in subs:
            if isinstance(sub, dict) and sub.get("type") not in allowed:
                raise InvalidInput(
                    f"'{kind}' may not contain a nested '{sub.get('type')}' expression", code="INVALID_FILTER"
                )
        parts = [self.expression(sub, depth=kind) for sub in subs]
        return and_(*parts) if kind == "and" else or_(*parts)

    def comparison(self, kind: str, e: dict) -> ColumnElement:
        f = self.field(e["field"])
        col = f.column
        if kind in ("isnull", "is_null"):
            return col.is_(None)
        if f.kind == "ref" and kind != "exact":
            raise InvalidInput(f"field {e['field']!r} supports only isnull and exact", code="INVALID_FILTER")
        if kind == "contains":
            sub = e["sub_string"]
            if not isinstance(sub, str) or not sub:
                raise InvalidInput("'sub_string' must be a non-empty string", code="INVALID_FILTER")
            if f.kind != "str":
                raise InvalidInput(f"'contains' needs a text field; {e['field']!r} is not one", code="INVALID_FILTER")
            pattern = "%" + sub.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if e.get("case_insensitive"):
                return func.lower(col).like(func.lower(pattern), escape="\\")
            if self.dialect == "sqlite":  # SQLite's LIKE ignores case
                return func.instr(col, sub) > 0
            return col.like(pattern, escape="\\")
        value = self.value(f, e["field"], e["value"])
        if kind == "exact":
            if e.get("case_insensitive") and isinstance(value, str):
                return func.lower(col) == value.lower()
            return col == value
        op = e["operator"]
        if op not in OPERATORS:
            raise InvalidInput(f"operator must be one of {', '.join(OPERATORS)}, not {op!r}", code="INVALID_FILTER")
        return getattr(col, OPERATORS[op])(value)

    def value(self, f: FilterField, name: str, value: Any) -> Any:
        if value is None or isinstance(value, (list, dict)):
            raise InvalidInput(f"'value' for {name!r} must be a string, number or boolean", code="INVALID_FILTER")
        if f.kind == "int":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdecimal())
            ):
                raise InvalidInput(f"'value' for {name!r} must be an integer", code="INVALID_FILTER")
            return int(value)
        if f.kind == "datetime":
            if not isinstance(value, str):
                raise InvalidInput(f"'value' for {name!r} must be an ISO-8601 date-time string", code="INVALID_FILTER")
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(f"{value!r} is not an ISO-8601 date-time", code="INVALID_FILTER") from None
        if isinstance(value, bool):
            raise InvalidInput(f"'value' for {name!r} must be a string", code="INVALID_FILTER")
        return str(value)

    def ordering(self, o: Any) -> Any:
        if not isinstance(o, dict):
            raise InvalidInput("each order_by entry must be a JSON object", code="INVALID_FILTER")
        extra = set(o) - {"field", "ascending", "nulls_first"}
        if extra:
            raise InvalidInput(f"order_by has unknown key(s): {', '.join(sorted(extra))}", code="INVALID_FILTER")
        col = self.field(o.get("field")).column
        ascending = o.get("ascending", True)
        nulls_first = o.get("nulls_first")
        if not isinstance(ascending, bool) or (nulls_first is not None and not isinstance(nulls_first, bool)):
            raise InvalidInput("'ascending' and 'nulls_first' must be true or false", code="INVALID_FILTER")
        clause = col.asc() if ascending else col.desc()
        if nulls_first is True:
            clause = clause.nulls_first()
        elif nulls_first is False:
            clause = clause.nulls_last()
        return clause
