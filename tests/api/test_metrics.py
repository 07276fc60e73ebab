"""``GET /metrics`` in-process: labels are dialects and route templates, the task backlog is read from the
database, the route can be turned off or put behind a token; and the HTTP protocol counts the requests it answers
itself (api/http.py, driven byte by byte as in test_http_protocol.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from modelharbor.api.metrics import Metrics
from modelharbor.app import create_app
from tests.api.test_http_protocol import App, connect, post, settle
from tests.conftest import ADMIN_KEY, make_settings

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # counting does not depend on the DB

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def count(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@sqlite_only
def test_requests_are_counted_by_dialect_and_route_template(client):
    client.get("/api/v1/files/aaaaaaaaaaaaaaaaaaaaaaaa", headers=AUTH)
    client.get("/api/v1/files/bbbbbbbbbbbbbbbbbbbbbbbb", headers=AUTH)
    client.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"}, headers=AUTH)  # an exact hot route
    client.post("/v2.1/projects/p/deployments/d/requests", json={}, headers={"authorization": f"Token {ADMIN_KEY}"})
    client.get("/v2/projects", headers={"authorization": f"Token {ADMIN_KEY}"})
    client.get("/status")  # UbiOps' route outside its mount
    client.get("/openapi/kore.json")
    client.get("/api/v1/docs/assets/favicon.png")
    client.get("/healthz")
    client.get("/nowhere/at/all")
    client.request("BREW", "/api/v1/files", headers=AUTH)
    found = samples(client.get("/metrics").text)  # open: no token is set
    total = "modelharbor_http_requests_total"
    assert count(found, total, dialect="native", route="/api/v1/files/{file_id}", method="GET", status="404") == 2
    mlflow = {"dialect": "mlflow", "route": "/api/2.0/mlflow/registered-models/create", "method": "POST"}
    assert count(found, total, **mlflow, status="200") == 1
    hot = "/v2.1/projects/{project}/deployments/{deployment}/requests"
    assert count(found, total, dialect="ubiops", route=hot, method="POST", status="404") == 1
    assert count(found, total, dialect="ubiops", route="/v2/projects", method="GET", status="200") == 1
    assert count(found, total, dialect="ubiops", route="/status", method="GET", status="200") == 1
    assert count(found, total, dialect="kore", route="/openapi/kore.json", method="GET", status="200") == 1
    assert count(found, total, dialect="native", route="/api/v1/docs/assets/{path}", method="GET", status="200") == 1
    assert count(found, total, dialect="server", route="/healthz", method="GET", status="200") == 1
    assert count(found, total, dialect="server", route="unmatched", method="GET", status="404") == 1
    assert count(found, total, dialect="native", route="/api/v1/files", method="other", status="405") == 1
    routes = {dict(labels).get("route") for name, labels in found if name == total}
    assert not any("aaaa" in r or "/p/" in r for r in routes if r), routes  # templates, never raw paths


@sqlite_only
def test_the_task_backlog_is_read_from_the_database(client, services):
    with services.db.uow() as s:  # the in-process app runs no task runner: they stay queued
        for _ in range(3):
            services.tasks.enqueue_in(s, "demo_kind", {}, org_id=None)
    found = samples(client.get("/metrics").text)
    assert count(found, "modelharbor_tasks", kind="demo_kind", status="queued") == 3
    assert 0 <= count(found, "modelharbor_task_oldest_age_seconds", kind="demo_kind", status="queued") < 60
    assert count(found, "modelharbor_instances", state="ready") == 0  # no deployment ever ran: no executor started
    assert services.serving._executor is None


@sqlite_only
def test_predictions_are_counted_by_outcome(client, services):
    for hook in list(services.serving.on_prediction):
        hook("completed", 0.003)
        hook("failed", 0.2)
        hook("completed", 0.004)
    found = samples(client.get("/metrics").text)
    assert count(found, "modelharbor_predictions_total", outcome="completed") == 2
    assert count(found, "modelharbor_predictions_total", outcome="failed") == 1
    assert count(found, "modelharbor_prediction_duration_seconds_bucket", outcome="completed", le="0.005") == 2


@sqlite_only
def test_metrics_can_be_turned_off_or_need_a_token(services, tmp_path, db_url):
    off = create_app(make_settings(tmp_path, db_url, metrics=False), services, run_workers=False)
    with TestClient(off) as c:
        assert off.metrics is None and c.get("/metrics").status_code == 404
    guarded = create_app(make_settings(tmp_path, db_url, metrics_token="s3cret"), services, run_workers=False)
    with TestClient(guarded) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
        assert c.get("/metrics", headers=AUTH).status_code == 401  # an API key is not the token
        answer = c.get("/metrics", headers={"authorization": "Bearer s3cret"})
        assert answer.status_code == 200 and "modelharbor_http_requests_total" in answer.text
    assert guarded.metrics.predictions not in services.serving.on_prediction  # the stopped app stopped listening


def test_the_protocol_counts_the_requests_it_answers_itself():
    services = SimpleNamespace(
        serving=SimpleNamespace(on_prediction=[], workload=list), tasks=SimpleNamespace(backlog=list)
    )

    async def main():
        app = App()
        app.metrics = Metrics(services)
        app.metrics.name_hot(app.front.plain[0], "echoes")
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/a"))
        await settle(proto)
        proto.data_received(post("/v2/echo/b", b'{"x":22}'))
        await settle(proto)
        proto.data_received(post("/v2/echo/denied"))
        await settle(proto)
        assert app.front.calls == ["fast:a", "fast:b", "fast:denied"]  # the protocol's own path
        return app.metrics, t

    metrics, transport = asyncio.run(main())
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for family in metrics.http.collect() for s in family.samples
    }
    labels = {"dialect": "echoes", "route": "/v2/echo/{n}", "method": "POST"}
    assert count(found, "modelharbor_http_requests_total", **labels, status="200") == 2
    assert count(found, "modelharbor_http_requests_total", **labels, status="401") == 1
    assert count(found, "modelharbor_http_received_bytes_total", **labels) == len(b'{"x":1}') * 2 + len(b'{"x":22}')
    sent = sum(len(body) for _, _, body in transport.answers())
    assert count(found, "modelharbor_http_sent_bytes_total", **labels) == sent
    assert count(found, "modelharbor_http_request_duration_seconds_count", **labels) == 3
