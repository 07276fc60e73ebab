"""UbiOps' log query language: the subset of Grafana LogQL the ``logs`` route takes in ``query``, parsed into the
domain's :class:`~modelharbor.domain.logs.LogQuery`.

A label selector ``{deployment_name="d", deployment_version!="v1"}`` (``=``/``!=``/``=~``/``!~``; the labels are
``domain.logs.LABELS``) followed by line filters ``|= "text"``, ``!= "text"``, ``|~ "regex"``, ``!~ "regex"``;
strings in double quotes (with ``\\`` escapes) or backticks. No parsers, formatters or metric queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.logs import LABELS, LabelMatch, LineFilter, LogQuery

MAX_QUERY = 4096


@dataclass
class _Scanner:
    text: str
    pos: int = 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, *options: str) -> str | None:
        self.skip()
        for o in options:
            if self.text.startswith(o, self.pos):
                self.pos += len(o)
                return o
        return None

    def string(self) -> str:
        self.skip()
        if self.pos >= len(self.text) or self.text[self.pos] not in '"`':
            raise self.error("a quoted string")
        quote = self.text[self.pos]
        out, i = [], self.pos + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == quote:
                self.pos = i + 1
                return "".join(out)
            if ch == "\\" and quote == '"' and i + 1 < len(self.text):
                nxt = self.text[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error("the end of the string")

    def name(self) -> str:
        self.skip()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if m is None:
            raise self.error("a label name")
        self.pos = m.end()
        return m.group()

    def error(self, wanted: str) -> InvalidInput:
        return InvalidInput(f"query: expected {wanted} at character {self.pos + 1} of {self.text!r}")


def _regex(value: str) -> re.Pattern:
    try:
        return re.compile(value)
    except re.error as exc:
        raise InvalidInput(f"query: {value!r} is not a valid regular expression ({exc})") from None


def parse_logql(query: Any) -> LogQuery:
    """The label selector and line filters of a LogQL ``query`` (empty or None: everything)."""
    if query is None:
        return LogQuery()
    if not isinstance(query, str):
        raise InvalidInput("query must be a string")
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"query is longer than {MAX_QUERY} characters")
    sc = _Scanner(query)
    labels: list[LabelMatch] = []
    if sc.take("{") and not sc.take("}"):
        while True:
            name = sc.name()
            if name not in LABELS:
                raise InvalidInput(f"query: unknown label {name!r}; labels are {', '.join(LABELS)}")
            op = sc.take("=~", "!~", "!=", "=")
            if op is None:
                raise sc.error("=, !=, =~ or !~")
            value = sc.string()
            labels.append(LabelMatch(name, op, value, _regex(value) if "~" in op else None))
            if sc.take("}"):
                break
            if not sc.take(","):
                raise sc.error("',' or '}'")
    lines: list[LineFilter] = []
    while True:
        sc.skip()
        if sc.pos >= len(query):
            break
        op = sc.take("|=", "!=", "|~", "!~")
        if op is None:
            raise InvalidInput(
                f"query: at character {sc.pos + 1}: only label selectors {{…}} and the line filters |=, !=, |~, !~ "
                "are supported (no parsers, formatters or metric queries)"
            )
        value = sc.string()
        lines.append(LineFilter(op, value, _regex(value) if "~" in op else None))
    return LogQuery(tuple(labels), tuple(lines))
