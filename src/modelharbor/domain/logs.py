"""Deployment log lines and the typed query that selects them: what the dialects' log grammars (UbiOps' LogQL,
api/dialects/ubiops/logql.py) and the native API's parameters build, and what core/serving/logs.py evaluates.

A :class:`LogQuery` is label matches (:class:`LabelMatch`: ``=``, ``!=``, ``=~``, ``!~`` on one of ``LABELS``) and
line filters (:class:`LineFilter`: ``|=``, ``!=`` a substring, ``|~``, ``!~`` a regular expression); a line is
kept when every match and filter holds. A regex operator carries its compiled pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
