"""Deployment logs: what real worker processes print, filtered by label, level, text, time."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelharbor.api.dialects.ubiops.logql import parse_logql
from modelharbor.core.serving.logs import deployment_logs
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
