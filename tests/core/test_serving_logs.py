"""Deployment logs: the LogQL subset, and what real worker processes print, filtered by label, level, text, time."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelharbor.core.serving.logs import LogEntry, deployment_logs, parse_logql
from modelharbor.domain.errors import InvalidInput, NotFound
from tests.core.test_serving import make_deployment, upload, zip_bytes
from tests.factories import member_of_new_org

CHATTY = """
import sys


class Deployment:
    def __init__(self, base_directory, context):
        print("model loaded", flush=True)

    def request(self, data):
        print(f"asked for {data['n']}", flush=True)
        if data["n"] < 0:
            print(f"negative input {data['n']}", file=sys.stderr, flush=True)
        return {"m": data["n"]}
"""


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


def test_what_deployments_print_is_read_back_filtered(services):
    sv = services.serving
    owner = member_of_new_org(services, "member")
    services.projects.create_project(owner, "serve")
    make_deployment(sv, owner, name="chatty")
    rev = upload(services, owner, zip_bytes({"deployment.py": CHATTY}), name="chatty")
    assert rev.status == "success", rev.error_message
    make_deployment(sv, owner, name="quiet")
    try:
        t0 = time.time()

        async def ask():
            for n in (1, -2, 3):
                r = await sv.request(owner, "serve", "chatty", {"n": n})
                assert r.status == "completed"

        asyncio.run(ask())

        def texts(want=0, **kw):
            deadline = time.monotonic() + 10  # the executor reads the pipes in the background
            while True:
                got = [e.text for e in deployment_logs(sv, owner, "serve", **kw)]
                if len(got) >= want or time.monotonic() > deadline:
                    return got

        everything = texts(want=5)
        assert [t for t in everything if t.startswith(("model", "asked"))] == [
            "model loaded",
            "asked for 1",
            "asked for -2",
            "asked for 3",
        ]
        assert "negative input -2" in everything
        errors = deployment_logs(sv, owner, "serve", query=parse_logql('{level="error"}'))
        assert [(e.text, e.stream, e.deployment, e.version) for e in errors] == [
            ("negative input -2", "stderr", "chatty", "v1")
        ]
        assert texts(query=parse_logql('{deployment_name="chatty"} |= "asked" != "-2"')) == [
            "asked for 1",
            "asked for 3",
        ]
        assert texts(deployment="quiet") == []
        assert texts(limit=2) == everything[-2:]  # the newest
        assert texts(start=time.time() + 60) == [] and texts(end=t0 - 60) == []
        assert len(texts(start=t0 - 60, end=time.time() + 60)) == len(everything)
        # bad input and permissions
        with pytest.raises(InvalidInput):
            deployment_logs(sv, owner, "serve", limit=0)
        with pytest.raises(InvalidInput):
            deployment_logs(sv, owner, "serve", limit=5001)
        with pytest.raises(InvalidInput):
            deployment_logs(sv, owner, "serve", start=10.0, end=5.0)
        with pytest.raises(NotFound):
            deployment_logs(sv, owner, "serve", deployment="nope")
        with pytest.raises(NotFound):
            deployment_logs(sv, owner, "serve", deployment="chatty", version="v9")
        stranger = member_of_new_org(services, "owner")
        with pytest.raises(NotFound):
            deployment_logs(sv, stranger, "serve")
    finally:
        sv.shutdown()
