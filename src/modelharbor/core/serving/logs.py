"""What deployments write while they run: their instances' stdout/stderr and the executor's own notes on them.

Lines come from the executor (compute/base.py ``Executor.logs``), which keeps the recent lines of every version it
runs (the local backend: in memory, about 1 MiB per instance and the last 8 ended instances of a version; gone
when the server restarts). Reading them takes read access to the project. Filters: deployment, version, a time window,
level (``info`` = stdout and the executor's lines, ``error`` = stderr), instance, and text that lines must or must
not contain; at most ``MAX_LIMIT`` lines per call, the newest when there are more.

:func:`parse_logql` reads the subset of Grafana LogQL the UbiOps API takes in ``query``: a label selector
``{deployment_name="d", deployment_version!="v1"}`` (``=``/``!=``/``=~``/``!~``) followed by line filters
``|= "text"``, ``!= "text"``, ``|~ "regex"``, ``!~ "regex"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Principal

MAX_LIMIT, DEFAULT_LIMIT = 5000, 1000
MAX_QUERY = 4096
LABELS = ("deployment_name", "deployment_version", "instance_id", "process_id", "level", "stream", "system")


@dataclass(frozen=True)
class LogEntry:
    time: float  # seconds since the epoch
    deployment: str
    version: str
    instance: str
    pid: int | None
    stream: str  # stdout | stderr | system
    text: str

    @property
    def level(self) -> str:
        return "error" if self.stream == "stderr" else "info"

    def label(self, name: str) -> str:
        return {
            "deployment_name": self.deployment,
            "deployment_version": self.version,
            "instance_id": self.instance,
            "process_id": "" if self.pid is None else str(self.pid),
            "level": self.level,
            "stream": self.stream,
            "system": "true" if self.stream == "system" else "false",
        }[name]


@dataclass(frozen=True)
class LabelMatch:
    name: str
    op: str  # = != =~ !~
    value: str
    regex: re.Pattern | None = None

    def ok(self, entry: LogEntry) -> bool:
        got = entry.label(self.name)
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = self.regex.fullmatch(got) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class LineFilter:
    op: str  # |= != |~ !~
    value: str
    regex: re.Pattern | None = None

    def ok(self, text: str) -> bool:
        hit = self.value in text if self.op in ("|=", "!=") else self.regex.search(text) is not None
        return hit if self.op in ("|=", "|~") else not hit


@dataclass(frozen=True)
class LogQuery:
    labels: tuple[LabelMatch, ...] = ()
    lines: tuple[LineFilter, ...] = ()

    def wanted(self, name: str) -> str | None:
        """The value label ``name`` must equal, when the selector says so (narrows what is read)."""
        for m in self.labels:
            if m.name == name and m.op == "=":
                return m.value
        return None

    def ok(self, entry: LogEntry) -> bool:
        return all(m.ok(entry) for m in self.labels) and all(f.ok(entry.text) for f in self.lines)


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


def _limit(limit: Any) -> int:
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    try:
        n = int(limit)
    except (TypeError, ValueError):
        raise InvalidInput(f"limit must be a whole number, not {limit!r}") from None
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return n


def deployment_logs(
    serving: Any,
    principal: Principal,
    project: Any,
    *,
    query: LogQuery | None = None,
    deployment: Any = None,
    version: Any = None,
    start: float | None = None,
    end: float | None = None,
    limit: Any = None,
) -> list[LogEntry]:
    """The project's deployment log lines matching the filters, oldest first: the newest ``limit`` of them.
    ``start`` is inclusive, ``end`` exclusive (seconds since the epoch). Unknown deployments/versions → NotFound."""
    n = _limit(limit)
    query = query or LogQuery()
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end must be later than start")
    deployment = deployment if deployment is not None else query.wanted("deployment_name")
    version = version if version is not None else query.wanted("deployment_version")
    if deployment is not None:
        names = [serving.get_deployment(principal, project, deployment).name]  # permission + existence
    else:
        names = [d.name for d in serving.list_deployments(principal, project)]  # permission
    out: list[LogEntry] = []
    for name in names:
        if version is not None and deployment is not None:
            versions = [serving.get_version(principal, project, name, version)]
        else:
            versions = [v for v in serving.list_versions(principal, project, name) if version in (None, v.version)]
        for v in versions:
            # start is inclusive, to the microsecond (what an ISO 8601 time given back carries)
            for line in serving.executor.logs(v.id, since=None if start is None else start - 1e-6):
                if end is not None and line.time >= end:
                    continue
                entry = LogEntry(line.time, name, v.version, line.instance, line.pid, line.stream, line.text)
                if query.ok(entry):
                    out.append(entry)
    out.sort(key=lambda e: e.time)
    return out[-n:]
