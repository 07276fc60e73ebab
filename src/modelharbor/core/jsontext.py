"""JSON text from outside the server, parsed with the limits every reader of it shares.

Python's ``json`` takes what no API should: nesting deep enough to exhaust the interpreter's recursion
(``RecursionError``), lone UTF-16 surrogates (``"\\ud800"``, which no UTF-8 encoder — the database's, a
response's — accepts), integers of any size (SQLite and PostgreSQL columns hold 64 bits), numbers that overflow
to infinity, and the words ``NaN`` and ``Infinity`` (no JSON answer can carry them). :func:`loads` refuses each
with a :class:`JsonRejected` (an ``InvalidInput``) that names the problem, so every edge answers a 400 in its
own envelope. The HTTP side (reading bodies within a size limit, FastAPI's body models) is ``api/jsonbody.py``.

Ordinary bodies pay next to nothing: each check runs only when a C-speed look at the bytes finds what it is
about — more brackets than the depth limit, a ``\\u`` escape of a surrogate, a run of 19 digits or a
three-digit exponent. Nesting beyond the interpreter's recursion stops the parser itself (a RecursionError
caught here, after about a thousand levels, whatever the body's length); nesting between the limit and that is
found by walking the parsed value's containers.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from modelharbor.domain.errors import InvalidInput

MAX_DEPTH = 100  # nesting levels of arrays and objects; the outermost is level 1
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
DEFAULT_WHAT = "the JSON body"  # what loads() calls the text in its messages unless told

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE = re.compile("[\ud800-\udfff]")
# digits → "0", exponent letters → "e", signs → "+": a long number shows as 19 zeros or a 3-digit exponent
_NUMBER_SHAPE = bytes.maketrans(b"123456789E-", b"000000000e+")
_NOT_PLAIN_UTF8 = b"\x00\xef\xfe\xff"  # first bytes of a BOM or of UTF-16/32 text (RFC 8259 §8.1; json.detect_encoding)


class JsonRejected(InvalidInput):
    """JSON text :func:`loads` refused. ``problem`` says which check: ``syntax``, ``encoding``, ``depth``,
    ``surrogate``, ``integer`` or ``number``; ``reason`` is the message without the leading ``<what> is not valid
    JSON:`` of syntax errors (UFDL quotes Python's own wording)."""

    def __init__(self, message: str, *, problem: str, reason: str | None = None, code: str | None = None):
        super().__init__(message, code=code, problem=problem)
        self.problem = problem
        self.reason = reason or message


class _Refused(Exception):
    """Raised inside the decoder's hooks; :func:`loads` turns it into a JsonRejected naming its text."""

    def __init__(self, problem: str, text: str):
        super().__init__(text)
        self.problem = problem
        self.text = text


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"


def _int(text: str) -> int:
    if len(text) >= 19 and (len(text) > 20 or not INT_MIN <= int(text) <= INT_MAX):
        raise _Refused("integer", text)
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused("number", text)
    return value


def _constant(text: str) -> float:
    raise _Refused("constant", text)


# Decoders made once (``json.loads`` with hooks builds a new one per call): plain, and with the number checks.
_PLAIN = json.JSONDecoder(parse_constant=_constant)
_NUMBERS = json.JSONDecoder(parse_constant=_constant, parse_int=_int, parse_float=_float)
_PLAIN_NAN = json.JSONDecoder()
_NUMBERS_NAN = json.JSONDecoder(parse_int=_int)


def long_numbers(raw: bytes) -> bool:
    """Whether UTF-8 JSON ``raw`` may hold a number outside 64 bits or the float range (or merely text that
    looks like one): a run of 19 digits, or a digit, ``e`` and a three-digit exponent."""
    shape = raw.translate(_NUMBER_SHAPE)
    return b"0000000000000000000" in shape or b"0e000" in shape or b"0e+000" in shape


def deeper(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a decoded JSON ``value`` nests arrays and objects more than ``limit`` levels deep."""
    if type(value) is not list and type(value) is not dict:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for item in node.values() if type(node) is dict else node:
            if type(item) is list or type(item) is dict:
                stack.append((item, depth + 1))
    return False


def _has_lone(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            if not node.isascii() and _LONE.search(node):
                return True
        elif kind is dict:
            for key, item in node.items():
                if not key.isascii() and _LONE.search(key):
                    return True
                stack.append(item)
        elif kind is list:
            stack.extend(node)
    return False


def _where(path: tuple[Any, ...]) -> str:
    out = "$"
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step.isidentifier() and len(step) <= 40:
            out += f".{step}"
        else:
            out += f"[{json.dumps(_short(step))}]"
        if len(out) > 200:
            return out[:200] + "…"
    return out


def lone_surrogate(value: Any) -> str | None:
    """Where in a decoded JSON ``value`` the first string or key holding a lone surrogate is (as a message tail:
    ``\\ud800 at $.a[2]``), or None. A pair written as two escapes decodes to one character, so any surrogate
    left in a string stands alone."""
    if not _has_lone(value):
        return None
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            found = _LONE.search(node)
            if found:
                return f"\\u{ord(found.group()):04x} at {_where(path)}"
        elif isinstance(node, dict):
            for key, item in node.items():
                found = _LONE.search(key)
                if found:
                    return f"\\u{ord(found.group()):04x} in a key of {_where(path)}"
                stack.append((item, (*path, key)))
        elif isinstance(node, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(node))
    return None


def loads(data: bytes | bytearray | str, *, what: str = DEFAULT_WHAT, code: str | None = None, nan: bool = False):
    """The JSON value of ``data`` (bytes in UTF-8, -16 or -32 as RFC 8259 allows, or text), checked: at most
    ``MAX_DEPTH`` levels, no lone surrogate, integers within 64 bits, finite numbers, and ``NaN``/``Infinity``
    only when ``nan`` (prediction inputs, which Python clients write them in). Anything else raises
    :class:`JsonRejected` with a message about ``what`` (and ``code``, when the edge wants its own)."""
    if isinstance(data, str):
        text = data
        if not text.isascii() and _LONE.search(text):
            raise JsonRejected(f"{what} holds a lone surrogate", problem="surrogate", code=code)
        raw = text.encode()
    else:
        raw = data if type(data) is bytes else bytes(data)
        plain = raw[:1] not in _NOT_PLAIN_UTF8 and raw[1:2] != b"\x00"  # (b"" is in every bytes: empty → detect)
        encoding = "utf-8" if plain else json.detect_encoding(raw)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            reason = f"it is not {encoding.upper().removesuffix('-SIG')} text (byte {exc.start})"
            raise JsonRejected(
                f"{what} is not valid JSON: {reason}", problem="encoding", reason=reason, code=code
            ) from None
        if not plain:
            raw = text.encode()  # the checks below look at UTF-8
    numbers = long_numbers(raw)
    decoder = (_NUMBERS_NAN if numbers else _PLAIN_NAN) if nan else (_NUMBERS if numbers else _PLAIN)
    try:
        value = decoder.decode(text)
    except _Refused as exc:
        raise JsonRejected(_refusal(exc, what), problem=_PROBLEMS[exc.problem], code=code) from None
    except RecursionError:  # the parser recursed as deep as the interpreter allows
        raise JsonRejected(f"{what} nests deeper than {MAX_DEPTH} levels", problem="depth", code=code) from None
    except json.JSONDecodeError as exc:
        raise JsonRejected(_syntax(exc, what), problem="syntax", reason=str(exc), code=code) from None
    except ValueError as exc:  # a number the interpreter will not convert
        raise JsonRejected(f"{what} is not valid JSON: {exc}", problem="syntax", reason=str(exc), code=code) from None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and deeper(value):
        raise JsonRejected(f"{what} nests deeper than {MAX_DEPTH} levels", problem="depth", code=code)
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):
        where = lone_surrogate(value)
        if where:
            raise JsonRejected(f"{what} holds a lone surrogate {where}", problem="surrogate", code=code)
    return value


_PROBLEMS = {"integer": "integer", "number": "number", "constant": "number"}


def _syntax(exc: json.JSONDecodeError, what: str) -> str:
    """``Invalid JSON at line 3, column 7: Expecting ',' delimiter`` (``… in <what> at …`` for other texts)."""
    where = "" if what == DEFAULT_WHAT else f" in {what}"
    return f"Invalid JSON{where} at line {exc.lineno}, column {exc.colno}: {exc.msg}"


def _refusal(exc: _Refused, what: str) -> str:
    if exc.problem == "integer":
        return f"the integer {_short(exc.text)} in {what} is outside the 64-bit range"
    if exc.problem == "number":
        return f"the number {_short(exc.text)} in {what} is out of range (JSON numbers here are finite)"
    return f"{what} holds {exc.text}, which is not JSON"


def token_offset(token: str) -> int:
    """The offset an opaque page token (base64url of ``{"offset": n}``, MLflow's form) names; ValueError for
    anything no token of ours could be — also one that decodes to hostile JSON or an offset outside 0..2⁶³-1."""
    try:
        value = loads(base64.urlsafe_b64decode(token.encode()), what="the page token")["offset"]
    except (InvalidInput, KeyError, TypeError) as exc:
        raise ValueError(f"not a page token: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT_MAX:
        raise ValueError("not a page token: its offset is not a whole number in range")
    return value
