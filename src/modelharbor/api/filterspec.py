"""UFDL's FilterSpec (JSON) parsed into the domain query (:mod:`modelharbor.domain.query`).

Two edges take it — the UFDL dialect's listings and the native catalogue search — so it lives beside them in
``api/``, not inside either (dialects import no other dialect).

``{"expressions": [...], "order_by": [...], "include_inactive": bool}``: expressions ``exact``, ``contains``,
``isnull``, ``compare``, ``and``, ``or`` (each invertible; ``and`` holds comparisons, ``or`` comparisons and
``and``\\ s), ``order_by`` entries ``{field, ascending?, nulls_first?}``. Anything malformed raises
:class:`InvalidInput` (code ``INVALID_FILTER``) naming the problem; which fields exist and what values they take is
checked by the core (:mod:`modelharbor.core.filters`).
"""

from __future__ import annotations

from typing import Any

from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import All, AnyOf, Comparison, Condition, Not, Order, Query

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
OPERATORS = ("<", ">", "<=", ">=")
MAX_EXPRESSIONS = 100


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="INVALID_FILTER")


def parse_filter_spec(spec: Any) -> Query:
    """Validate ``spec`` (None or a JSON object) and return it as a query."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise _bad("the filter must be a JSON object")
    unknown = set(spec) - {"expressions", "order_by", "include_inactive"}
    if unknown:
        raise _bad(f"unknown filter key(s): {', '.join(sorted(unknown))}")
    expressions = spec.get("expressions", [])
    if not isinstance(expressions, list):
        raise _bad("'expressions' must be a list")
    if len(expressions) > MAX_EXPRESSIONS:
        raise _bad(f"at most {MAX_EXPRESSIONS} expressions")
    where = tuple(_expression(e) for e in expressions)
    order = spec.get("order_by", [])
    if not isinstance(order, list):
        raise _bad("'order_by' must be a list")
    order_by = tuple(_ordering(o) for o in order)
    inactive = spec.get("include_inactive", False)
    if not isinstance(inactive, bool):
        raise _bad("'include_inactive' must be true or false")
    return Query(where, order_by, inactive)


def _field(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise _bad("'field' must be a non-empty string")
    return name


def _expression(e: Any) -> Condition:
    if not isinstance(e, dict):
        raise _bad("each expression must be a JSON object")
    kind = e.get("type")
    if not isinstance(kind, str) or kind not in KEYS:
        raise _bad(f"unknown expression type {kind!r}; use one of: {', '.join(sorted(KEYS))}")
    required, optional = KEYS[kind]
    missing, extra = required - set(e), set(e) - required - optional
    if missing:
        raise _bad(f"{kind} expression lacks: {', '.join(sorted(missing))}")
    if extra:
        raise _bad(f"{kind} expression has unknown key(s): {', '.join(sorted(extra))}")
    for flag in ("invert", "case_insensitive"):
        if flag in e and not isinstance(e[flag], bool):
            raise _bad(f"'{flag}' must be true or false")
    clause = _logical(kind, e["sub_expressions"]) if kind in ("and", "or") else _comparison(kind, e)
    return Not(clause) if e.get("invert") else clause


def _logical(kind: str, subs: Any) -> Condition:
    if not isinstance(subs, list) or len(subs) < 2:
        raise _bad(f"'{kind}' needs at least two sub_expressions")
    allowed = FIELD_TYPES if kind == "and" else FIELD_TYPES | {"and"}
    for sub in subs:
        if isinstance(sub, dict) and isinstance(sub.get("type"), str) and sub["type"] not in allowed:
            raise _bad(f"'{kind}' may not contain a nested '{sub.get('type')}' expression")
    parts = tuple(_expression(sub) for sub in subs)
    return All(parts) if kind == "and" else AnyOf(parts)


def _comparison(kind: str, e: dict) -> Comparison:
    field = _field(e["field"])
    if kind in ("isnull", "is_null"):
        return Comparison(field, "ISNULL")
    if kind == "contains":
        sub = e["sub_string"]
        if not isinstance(sub, str) or not sub:
            raise _bad("'sub_string' must be a non-empty string")
        return Comparison(field, "CONTAINS", sub, case_insensitive=bool(e.get("case_insensitive")))
    value = e["value"]
    if value is None or isinstance(value, (list, dict)):
        raise _bad(f"'value' for {field!r} must be a string, number or boolean")
    if kind == "exact":
        return Comparison(field, "=", value, case_insensitive=bool(e.get("case_insensitive")))
    op = e["operator"]
    if op not in OPERATORS:
        raise _bad(f"operator must be one of {', '.join(OPERATORS)}, not {op!r}")
    return Comparison(field, op, value)


def _ordering(o: Any) -> Order:
    if not isinstance(o, dict):
        raise _bad("each order_by entry must be a JSON object")
    extra = set(o) - {"field", "ascending", "nulls_first"}
    if extra:
        raise _bad(f"order_by has unknown key(s): {', '.join(sorted(extra))}")
    field = _field(o.get("field"))
    ascending = o.get("ascending", True)
    nulls_first = o.get("nulls_first")
    if not isinstance(ascending, bool) or (nulls_first is not None and not isinstance(nulls_first, bool)):
        raise _bad("'ascending' and 'nulls_first' must be true or false")
    return Order(field, ascending, nulls_first=nulls_first)
