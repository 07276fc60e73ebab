"""UbiOps' LogQL subset (api/dialects/ubiops/logql.py): label selectors and line filters, and what it refuses."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.ubiops.logql import parse_logql
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.logs import LogEntry


def entry(text="hello", stream="stdout", deployment="d", version="v1") -> LogEntry:
    return LogEntry(1.0, deployment, version, "i-1", 42, stream, text)


def test_logql_subset():
    q = parse_logql('{deployment_name="d", level!="error"} |= "hel" != "bye" |~ "h.l+o"')
    assert q.wanted("deployment_name") == "d" and q.wanted("deployment_version") is None
    assert q.ok(entry()) and not q.ok(entry(stream="stderr")) and not q.ok(entry(deployment="e"))
    assert not q.ok(entry("hello bye")) and not q.ok(entry("help"))
    q = parse_logql('{deployment_version=~"v[0-9]+", process_id="42"} !~ `^\\s*$`')
    assert q.ok(entry(version="v12")) and not q.ok(entry(version="beta")) and not q.ok(entry("   "))
    assert parse_logql("").ok(entry()) and parse_logql(None).ok(entry()) and parse_logql("{}").ok(entry())
    assert parse_logql('|= "a \\"quoted\\" word"').lines[0].value == 'a "quoted" word'
    for bad, says in [
        ('{colour="red"}', "unknown label 'colour'"),
        ('{deployment_name="d"', "',' or '}'"),
        ("{deployment_name=d}", "a quoted string"),
        ('{level~"x"}', "=, !=, =~ or !~"),
        ("{} | json", "only label selectors"),
        ('rate({level="error"}[5m])', "only label selectors"),
        ('|= "unterminated', "the end of the string"),
        ('|~ "("', "not a valid regular expression"),
        (7, "must be a string"),
        ("|=" + '"x"' * 2000, "longer than"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            parse_logql(bad)
        assert says in exc.value.message, (bad, exc.value.message)


def test_limit_is_parsed_at_the_edge():
    """``limit`` arrives as text: the route makes it a number (the core checks its range, 1 to 5,000)."""
    from modelharbor.api.dialects.ubiops.routes.logs import _limit

    assert [_limit(v) for v in (None, "", "7", " 12 ", "0")] == [None, None, 7, 12, 0]
    for bad in ("x", "1.5", "1e3"):
        with pytest.raises(InvalidInput, match=f"limit must be a whole number, not '{bad}'"):
            _limit(bad)
