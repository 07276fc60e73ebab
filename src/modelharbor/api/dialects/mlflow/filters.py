"""MLflow's search grammar, parsed into the domain query (:mod:`modelharbor.domain.query`): one parser for the
registry's and the tracking server's searches.

Filters: ``name = 'x' AND tags.`my key` != 'y' AND metrics.acc > 0.5 AND run_id IN ('a', 'b')`` — comparisons
(``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``[NOT] LIKE``, ``[NOT] ILIKE``, ``[NOT] IN``) joined by AND (no OR);
a field is ``attributes.<key>`` (or a bare key), ``tags.<key>``, ``params.<key>`` or ``metrics.<key>``, quoted
with backticks or double quotes when it holds spaces. Order: ``"<field> [ASC|DESC]"`` strings, or the logged-model
search's ``{field_name, ascending, dataset_name, dataset_digest}`` objects. Page tokens are base64 JSON
``{"offset": n}``. Which fields and operators a search accepts is the core's business.
"""

from __future__ import annotations

import re
from typing import Any

from modelharbor.api.paging import decode_token, encode_token
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import Comparison, Dataset, Order, Query

__all__ = [
    "decode_token",
    "encode_token",
    "field_of",
    "max_results",
    "parse_datasets",
    "parse_filter",
    "parse_model_order",
    "parse_order_by",
    "query",
]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
     |(?P<num>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
     |(?P<ident>`[^`]*`|[A-Za-z_][\w]*(?:\.(?:`[^`]*`|"[^"]*"|[\w\-/:.]+))?)
     |(?P<op>!=|<>|<=|>=|==|=|<|>|\(|\)|,)
    )""",
    re.X,
)
_KEYWORDS = {"AND", "LIKE", "ILIKE", "IN", "NOT", "OR"}
_PREFIXES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}


def _unquote(s: str) -> str:
    q = s[0]
    body = s[1:-1]
    if q == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


def field_of(ident: str) -> tuple[str, str]:
    """``(kind, key)`` of ``metrics.acc``, ``tags.`a b```, ``start_time``, ``"run name"``…"""
    ident = ident.strip()
    if ident[:1] in ("`", '"') and ident[-1:] == ident[:1] and len(ident) >= 2:
        return "attributes", ident[1:-1]
    head, dot, rest = ident.partition(".")
    if dot and head.lower() in _PREFIXES:
        if len(rest) >= 2 and rest[0] in '`"' and rest[-1] == rest[0]:
            rest = rest[1:-1]
        return _PREFIXES[head.lower()], rest
    return "attributes", ident


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(f"Invalid filter string {text!r}: cannot parse from position {pos}: {text[pos:]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _number(raw: str) -> int | float:
    return float(raw) if re.search(r"[.eE]", raw) else int(raw)


def parse_filter(text: Any) -> tuple[Comparison, ...]:
    """Parse ``a = 'x' AND tags.k LIKE 'p%' AND run_id IN ('a','b')``: comparisons joined by AND."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return ()
    if not isinstance(text, str):
        raise InvalidInput("Parameter 'filter' must be a string.")
    if "\x00" in text:
        raise InvalidInput("Parameter 'filter' must not contain NUL characters.")
    toks = _tokens(text)
    clauses: list[Comparison] = []
    i = 0

    def bad(why: str):
        return InvalidInput(f"Invalid filter string {text!r}: {why}")

    def peek() -> tuple[str, str] | None:
        return toks[i] if i < len(toks) else None

    while True:
        t = peek()
        quoted_name = t is not None and t[0] == "str" and t[1].startswith('"')
        if t is None or not (quoted_name or (t[0] == "ident" and t[1].upper() not in _KEYWORDS)):
            raise bad(f"expected an attribute such as name or tags.<key>, got {t[1] if t else 'the end'!r}")
        kind, key = field_of(t[1])
        label = key if kind == "attributes" else f"{kind}.{key}"
        i += 1
        t = peek()
        if t is None:
            raise bad(f"expected a comparator after {label!r}")
        word = t[1].upper()
        nxt = toks[i + 1][1].upper() if i + 1 < len(toks) else ""
        if t[0] == "op" and t[1] in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            op = {"==": "=", "<>": "!="}.get(t[1], t[1])
        elif t[0] == "ident" and word in ("LIKE", "ILIKE", "IN"):
            op = word
        elif t[0] == "ident" and word == "NOT" and nxt in ("IN", "LIKE", "ILIKE"):
            op = f"NOT {nxt}"
            i += 1
        else:
            raise bad(f"expected a comparator (=, !=, LIKE, ILIKE, IN) after {label!r}, got {t[1]!r}")
        i += 1
        if op in ("IN", "NOT IN"):
            if peek() != ("op", "("):
                raise bad(f"{op} needs a parenthesised list of quoted strings")
            i += 1
            items: list[Any] = []
            while True:
                t = peek()
                if t is None or t[0] not in ("str", "num"):
                    raise bad(f"{op} needs a parenthesised list of quoted strings")
                items.append(_unquote(t[1]) if t[0] == "str" else _number(t[1]))
                i += 1
                t = peek()
                if t == ("op", ","):
                    i += 1
                    continue
                if t == ("op", ")"):
                    i += 1
                    break
                raise bad(f"unterminated {op} list")
            value: Any = tuple(items)
        else:
            t = peek()
            if t is None or t[0] not in ("str", "num"):
                raise bad(f"expected a quoted string or a number after {label!r} {op}")
            value = _unquote(t[1]) if t[0] == "str" else _number(t[1])
            i += 1
        clauses.append(Comparison(key, op, value, kind))
        t = peek()
        if t is None:
            return tuple(clauses)
        if t[0] == "ident" and t[1].upper() == "AND":
            i += 1
            continue
        if t[0] == "ident" and t[1].upper() == "OR":
            raise bad("OR is not supported; join conditions with AND")
        raise bad(f"expected AND or the end, got {t[1]!r}")


def parse_order_by(items: Any) -> tuple[Order, ...]:
    """``["name DESC", "metrics.acc", "`my attr` ASC"]`` (one string is a list of one)."""
    if items is None or items == "":
        return ()
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise InvalidInput("Parameter 'order_by' must be a list of strings.")
    out = []
    for item in items:
        ident, ascending = item.strip(), True
        words = ident.rsplit(None, 1)
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            ident, ascending = words[0].strip(), words[1].upper() == "ASC"
        if not ident:
            raise InvalidInput(f"Invalid order_by clause {item!r}: expected '<attribute> [ASC|DESC]'.")
        kind, key = field_of(ident)
        out.append(Order(key, ascending, kind))
    return tuple(out)


def _objects(items: Any) -> list[dict[str, Any]]:
    items = [] if items in (None, "") else items if isinstance(items, list) else [items]
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"order_by and datasets hold objects, got {item!r}")
    return items


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def parse_model_order(items: Any) -> tuple[Order, ...]:
    """The logged-model search's ``[{field_name, ascending, dataset_name, dataset_digest}]``."""
    out = []
    for o in _objects(items):
        kind, key = field_of(str(o.get("field_name") or ""))
        ascending = bool(o.get("ascending", True))
        out.append(Order(key, ascending, kind, None, _text(o.get("dataset_name")), _text(o.get("dataset_digest"))))
    return tuple(out)


def parse_datasets(items: Any) -> tuple[Dataset, ...]:
    """``[{dataset_name, dataset_digest?}]``."""
    out = []
    for d in _objects(items):
        if not isinstance(d.get("dataset_name"), str) or not d["dataset_name"]:
            raise InvalidInput(f"a dataset filter needs a dataset_name, got {d!r}")
        out.append(Dataset(d["dataset_name"], _text(d.get("dataset_digest"))))
    return tuple(out)


def query(filter_text: Any, order_by: Any = None) -> Query:
    """A filter string and order_by strings as one query."""
    return Query(parse_filter(filter_text), parse_order_by(order_by))


def max_results(value: Any) -> int | None:
    """The ``max_results`` parameter: None when absent."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Parameter 'max_results' must be an integer, got {value!r}.") from None
