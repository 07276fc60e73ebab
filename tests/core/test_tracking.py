"""Tracking core rules on SQLite and PostgreSQL: organisations, the default experiment, params, search, artifacts."""

from __future__ import annotations

import asyncio
import math

import pytest

from modelharbor.api.dialects.mlflow.filters import parse_filter, query
from modelharbor.core.tracking import AlreadyExists, clean_path, now_ms
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from modelharbor.domain.inputs import MetricIn, TagIn, ViewType
from modelharbor.domain.principal import Principal, Role


@pytest.fixture
def tracking(services):
    return services.tracking


def _other_org(services, role=Role.MEMBER) -> Principal:
    org = services.identity.ensure_org("other-org")
    return Principal(user_id="u-other", username="other", org_id=org.id, role=role)


def test_experiments_are_per_organisation(services, tracking, admin):
    exp = tracking.create_experiment(admin, "e1", [TagIn("k", "v")])
    with pytest.raises(AlreadyExists):
        tracking.create_experiment(admin, "e1")
    other = _other_org(services)
    with pytest.raises(NotFound):
        tracking.get_experiment(other, exp.id)
    assert [e.name for e in tracking.search_experiments(other).items] == ["Default"]
    default = tracking.get_experiment(admin, "0")
    assert default.is_default and default.name == "Default"
    assert tracking.get_experiment(other, "0").id != default.id
    with pytest.raises(InvalidInput):
        tracking.set_experiment_lifecycle(admin, "0", "deleted")


def test_viewer_cannot_write(services, tracking):
    viewer = _other_org(services, Role.VIEWER)
    with pytest.raises(Forbidden):
        tracking.create_experiment(viewer, "nope")


def test_runs_params_metrics_search(tracking, admin):
    exp = tracking.create_experiment(admin, "runs")
    r1 = tracking.create_run(admin, exp.id, run_name="a", start_time=1)
    r2 = tracking.create_run(admin, exp.id, run_name="b", start_time=2)
    tracking.log_batch(
        admin,
        r1.id,
        metrics=[MetricIn("acc", 0.5, 1, 0), MetricIn("acc", 0.7, now_ms(), 1)],
        params=[TagIn("lr", "0.1")],
        tags=[TagIn("t", "x")],
    )
    tracking.log_param(admin, r1.id, "lr", "0.1")  # same value: fine
    with pytest.raises(InvalidInput):
        tracking.log_param(admin, r1.id, "lr", "0.2")
    tracking.log_metric(admin, r2.id, "acc", math.nan, 5, 0)
    got = tracking.get_run(admin, r1.id)
    assert got.params == {"lr": "0.1"} and got.tags["mlflow.runName"] == "a"
    assert [(m.key, m.value, m.step) for m in got.metrics] == [("acc", 0.7, 1)]
    assert [m.value for m in tracking.metric_history(admin, r1.id, "acc").items] == [0.5, 0.7]

    def names(f=None, order_by=None, **kw):
        return [r.name for r in tracking.search_runs(admin, [exp.id], query(f, order_by), **kw).items]

    assert names() == ["b", "a"]
    assert names("metrics.acc >= 0.6") == ["a"]
    assert names("params.lr = '0.1' AND tags.t != 'y'") == ["a"]
    assert names("attributes.run_name LIKE 'b%'") == ["b"]
    assert names(order_by=["attributes.start_time ASC"]) == ["a", "b"]
    page = tracking.search_runs(admin, [exp.id], max_results=1)
    assert len(page.items) == 1 and page.next_offset == 1
    rest = tracking.search_runs(admin, [exp.id], max_results=1, offset=page.next_offset)
    assert [r.name for r in rest.items] == ["a"] and rest.next_offset is None
    tracking.set_run_lifecycle(admin, r2.id, "deleted")
    assert names() == ["a"] and names(run_view_type=ViewType.DELETED_ONLY) == ["b"]
    with pytest.raises(InvalidInput):
        tracking.log_param(admin, r2.id, "x", "1")
    with pytest.raises(NotFound):
        tracking.get_run(admin, "f" * 32)


def test_logged_models(tracking, admin):
    exp = tracking.create_experiment(admin, "models")
    run = tracking.create_run(admin, exp.id)
    m = tracking.create_logged_model(admin, exp.id, name="model", source_run_id=run.id, params=[TagIn("p", "1")])
    assert m.id.startswith("m-") and m.status == "PENDING"
    assert m.artifact_uri == f"mlflow-artifacts:/{exp.id}/models/{m.id}/artifacts"
    assert tracking.finalize_logged_model(admin, m.id, "READY").status == "READY"
    found = tracking.search_logged_models(admin, [exp.id], query("name = 'model'")).items
    assert [x.id for x in found] == [m.id]
    tracking.delete_logged_model(admin, m.id)
    with pytest.raises(NotFound):
        tracking.get_logged_model(admin, m.id)


def test_artifacts_stream_and_permissions(services, tracking, admin):
    exp = tracking.create_experiment(admin, "arts")

    async def body(*parts):
        for p in parts:
            yield p

    async def scenario():
        arts = services.artifacts
        await arts.put(admin, f"{exp.id}/r/artifacts/d/a.txt", body(b"hello ", b"world"))
        await arts.put(admin, f"{exp.id}/r/artifacts/b.txt", body(b"x"))
        await arts.put(admin, f"{exp.id}/r/artifacts/b.txt", body(b"yy"))  # replaced
        listed = arts.list(admin, f"{exp.id}/r/artifacts")
        assert [(e.path, e.is_dir, e.file_size) for e in listed] == [("b.txt", False, 2), ("d", True, None)]
        _, _, stream = await arts.open(admin, f"{exp.id}/r/artifacts/d/a.txt", "bytes=6-")
        assert b"".join([c async for c in stream]) == b"world"
        with pytest.raises(NotFound):
            await arts.open(_other_org(services), f"{exp.id}/r/artifacts/d/a.txt")
        await arts.delete(admin, f"{exp.id}/r/artifacts/d")
        assert [e.path for e in arts.list(admin, f"{exp.id}/r/artifacts")] == ["b.txt"]

    asyncio.run(scenario())


@pytest.mark.parametrize("bad", ["/etc/passwd", "1/../x", "1/./x", "1//x", "c:/x", "1\\x"])
def test_clean_path_refuses(bad):
    with pytest.raises(InvalidInput):
        clean_path(bad)


def test_parse_filter():  # the MLflow dialect's grammar, which the tracking searches take
    got = parse_filter("metrics.acc > 0.9 and tags.`a b` ILIKE '%x%' AND attributes.status IN ('A', 'B')")
    assert [(c.kind, c.key, c.op, c.value) for c in got] == [
        ("metrics", "acc", ">", 0.9),
        ("tags", "a b", "ILIKE", "%x%"),
        ("attributes", "status", "IN", ("A", "B")),
    ]
    with pytest.raises(InvalidInput):
        parse_filter("metrics.acc ~ 1")
