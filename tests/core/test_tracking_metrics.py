"""Run metrics as MLflow keeps them, on SQLite and PostgreSQL: once per (run, key, step, timestamp, value), copies
with ``model_id`` kept as the logged model's metrics, MLflow's latest-value rule, bad input and concurrent writers."""

from __future__ import annotations

import math
import threading

import pytest
from sqlalchemy import func, select

from modelharbor.api.dialects.mlflow.filters import parse_datasets, parse_model_order, query
from modelharbor.api.dialects.mlflow.inputs import batch_in, metric_in
from modelharbor.db.tables_tracking import LoggedModelMetricRow, MetricRow, RunParamRow, RunTagRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import TagIn
from modelharbor.domain.principal import Principal, Role
from modelharbor.domain.query import Query


@pytest.fixture
def tracking(services):
    return services.tracking


def _member(services, org_name: str) -> Principal:
    org = services.identity.ensure_org(org_name)
    return Principal(user_id=f"u-{org_name}", username=org_name, org_id=org.id, role=Role.MEMBER)


def _count(services, table, **where) -> int:
    with services.db.uow(readonly=True) as s:
        q = select(func.count()).select_from(table)
        for name, value in where.items():
            q = q.where(getattr(table, name) == value)
        return s.scalar(q)


def _history(tracking, who, run_id, key):
    return [(m.step, m.timestamp, m.value, m.model_id) for m in tracking.metric_history(who, run_id, key).items]


def _raw(key, value, step, ts, **extra):
    return {"key": key, "value": value, "step": step, "timestamp": ts, **extra}


def _m(key, value, step, ts, **extra):
    return metric_in(_raw(key, value, step, ts, **extra))


def _run_and_model(tracking, who, name="exp"):
    exp = tracking.create_experiment(who, name)
    run = tracking.create_run(who, exp.id)
    model = tracking.create_logged_model(who, exp.id, name="model", source_run_id=run.id)
    return exp, run, model


def test_an_identical_metric_is_stored_once(services, tracking, admin):
    exp = tracking.create_experiment(admin, "once")
    run = tracking.create_run(admin, exp.id)
    tracking.log_metric(admin, run.id, "acc", 0.5, 10, 0)
    tracking.log_metric(admin, run.id, "acc", 0.5, 10, 0)  # across calls
    tracking.log_batch(admin, run.id, metrics=[_m("acc", 0.5, 0, 10), _m("acc", 0.5, 0, 10), _m("acc", 0.5, 1, 11)])
    tracking.log_batch(admin, run.id, metrics=[_m("loss", "NaN", 0, 10), _m("loss", math.nan, 0, 10)])  # NaN: one
    tracking.log_metric(admin, run.id, "loss", math.nan, 10, 0)
    tracking.log_metric(admin, run.id, "loss", 0.0, 10, 0)  # 0 is not NaN
    tracking.log_metric(admin, run.id, "loss", 0.25, 10, 0)  # another value at the same step and time: kept
    assert _history(tracking, admin, run.id, "acc") == [(0, 10, 0.5, None), (1, 11, 0.5, None)]
    loss = _history(tracking, admin, run.id, "loss")
    assert len(loss) == 3 and math.isnan(loss[0][2]) and [x[2] for x in loss[1:]] == [0.0, 0.25]
    assert _count(services, MetricRow, run_id=run.id) == 5


def test_latest_value_follows_mlflow_rule(tracking, admin):
    exp = tracking.create_experiment(admin, "latest")
    run = tracking.create_run(admin, exp.id)

    def latest():
        return {m.key: (m.step, m.timestamp, m.value) for m in tracking.get_run(admin, run.id).metrics}

    tracking.log_metric(admin, run.id, "a", 1.0, 100, 5)
    tracking.log_metric(admin, run.id, "a", 9.0, 900, 4)  # a lower step never wins, however late
    assert latest()["a"] == (5, 100, 1.0)
    tracking.log_metric(admin, run.id, "a", 0.5, 200, 5)  # same step, later timestamp
    assert latest()["a"] == (5, 200, 0.5)
    tracking.log_metric(admin, run.id, "a", 0.7, 200, 5)  # same step and timestamp: the larger value
    tracking.log_metric(admin, run.id, "a", 0.6, 200, 5)
    assert latest()["a"] == (5, 200, 0.7)
    tracking.log_metric(admin, run.id, "a", math.nan, 200, 5)  # NaN counts as 0: smaller than 0.7
    assert latest()["a"] == (5, 200, 0.7)
    # within one batch, the same rule, whatever the order
    tracking.log_batch(admin, run.id, metrics=[_m("b", 3.0, 2, 50), _m("b", 2.0, 2, 50), _m("b", 8.0, 1, 99)])
    assert latest()["b"] == (2, 50, 3.0)
    tracking.log_batch(admin, run.id, metrics=[_m("c", "NaN", 0, 1), _m("c", -1.0, 0, 1)])
    assert latest()["c"][:2] == (0, 1) and math.isnan(latest()["c"][2])  # NaN (0) > -1
    tracking.log_metric(admin, run.id, "c", 2.0, 1, 0)
    assert latest()["c"] == (0, 1, 2.0)
    assert [r.id for r in tracking.search_runs(admin, [exp.id], query("metrics.a = 0.7")).items] == [run.id]


def test_metrics_with_model_id_are_the_models(services, tracking, admin):
    _, run, model = _run_and_model(tracking, admin)
    other = tracking.create_logged_model(admin, tracking.get_run(admin, run.id).experiment_id, name="m2")
    for step in (0, 1, 2):
        tracking.log_metric(admin, run.id, "acc", 0.5 + step / 10, 1000 + step, step)
    tracking.log_metric(admin, run.id, "f1", 0.4, 1000, 0)
    # what the client sends after log_model: the step's history rows again, with model_id; three times over
    for target in (model, other, model):
        step0 = [m for key in ("acc", "f1") for m in tracking.metric_history(admin, run.id, key).items if m.step == 0]
        tracking.log_batch(
            admin,
            run.id,
            metrics=[_m(m.key, m.value, m.step, m.timestamp, model_id=target.id) for m in step0],
        )
    assert [x[0] for x in _history(tracking, admin, run.id, "acc")] == [0, 1, 2]
    assert _count(services, MetricRow, run_id=run.id) == 4

    got = tracking.get_logged_model(admin, model.id).metrics
    assert [(m.key, m.value, m.step, m.timestamp, m.run_id, m.model_id) for m in got] == [
        ("acc", 0.5, 0, 1000, run.id, model.id),
        ("f1", 0.4, 0, 1000, run.id, model.id),
    ]
    assert [m.key for m in tracking.get_logged_model(admin, other.id).metrics] == ["acc", "f1"]
    assert _count(services, LoggedModelMetricRow) == 4

    # a metric first logged with model_id: its history row names the model; the dataset goes with the model's copy
    tracking.log_metric(admin, run.id, "auc", 0.9, 2000, 3, model_id=model.id, dataset_name="d", dataset_digest="x1")
    assert _history(tracking, admin, run.id, "auc") == [(3, 2000, 0.9, model.id)]
    auc = [m for m in tracking.get_logged_model(admin, model.id).metrics if m.key == "auc"]
    assert [(m.dataset_name, m.dataset_digest) for m in auc] == [("d", "x1")]
    assert {m.key for m in tracking.get_run(admin, run.id).metrics} == {"acc", "f1", "auc"}

    exp_id = tracking.get_run(admin, run.id).experiment_id
    found = tracking.search_logged_models(admin, [exp_id], query("metrics.acc >= 0.5 AND metrics.f1 < 0.5")).items
    assert {m.id for m in found} == {model.id, other.id}
    assert [m.id for m in tracking.search_logged_models(admin, [exp_id], query("metrics.auc > 0.8")).items] == [
        model.id
    ]
    assert [
        m.id
        for m in tracking.search_logged_models(admin, [exp_id], datasets=parse_datasets([{"dataset_name": "d"}])).items
    ] == [model.id]
    ordered = tracking.search_logged_models(
        admin, [exp_id], Query(order=parse_model_order([{"field_name": "metrics.auc", "ascending": False}]))
    )
    assert [m.id for m in ordered.items] == [model.id, other.id]  # a model without the metric comes last
    assert all(m.metrics for m in ordered.items)
    empty = tracking.create_experiment(admin, "no-models").id
    for bad in ("metrics.acc = 'high'", "metrics.acc LIKE '0.%'"):
        with pytest.raises(InvalidInput):
            tracking.search_logged_models(admin, [empty], query(bad))  # refused even with no model to look at


def test_bad_model_ids_write_nothing(services, tracking):
    alice, bob = _member(services, "org-a"), _member(services, "org-b")
    exp, run, model = _run_and_model(tracking, alice)
    other_exp = tracking.create_experiment(alice, "elsewhere")
    elsewhere = tracking.create_logged_model(alice, other_exp.id, name="elsewhere")
    _, _, foreign = _run_and_model(tracking, bob)

    def batch(model_id):
        tracking.log_batch(
            alice,
            run.id,
            metrics=[_m("acc", 1.0, 0, 1), _m("acc", 2.0, 1, 2, model_id=model_id)],
            params=[TagIn("p", "1")],
            tags=[TagIn("t", "1")],
        )

    for bad in ("m-" + "0" * 32, "nonsense id", foreign.id):
        with pytest.raises(NotFound):
            batch(bad)
    with pytest.raises(InvalidInput):
        batch(elsewhere.id)
    tracking.delete_logged_model(alice, model.id)
    with pytest.raises(NotFound):
        batch(model.id)
    for table in (MetricRow, LoggedModelMetricRow, RunParamRow):
        assert _count(services, table, run_id=run.id) == 0
    assert _count(services, RunTagRow, run_id=run.id, key="t") == 0


def test_batch_limits_and_malformed_entries(tracking, admin):
    exp = tracking.create_experiment(admin, "limits")
    run = tracking.create_run(admin, exp.id)

    def metrics(n):
        return [_m("k", float(i), i, 1) for i in range(n)]

    def items(n):
        return [TagIn(f"k{i}", "v") for i in range(n)]

    for kw, what in (
        ({"metrics": metrics(1001)}, "at most 1000 metrics"),
        ({"params": items(101)}, "at most 100 params"),
        ({"tags": items(101)}, "at most 100 tags"),
        ({"metrics": metrics(900), "params": items(100), "tags": items(1)}, "at most 1000 metrics, params, and tags"),
    ):
        with pytest.raises(InvalidInput, match=what):
            tracking.log_batch(admin, run.id, **kw)
    tracking.log_batch(admin, run.id, metrics=metrics(900), params=items(50), tags=items(50))  # 1000 in all: fine
    assert len(tracking.metric_history(admin, run.id, "k").items) == 900
    for bad in (
        ["acc"],
        [_raw("acc", 1.0, 0, -1)],
        [_raw("acc", 1.0, 2**63, 1)],
        [_raw("acc", None, 0, 1)],
        [_raw("acc", 1.0, 0, 1, model_id=7)],
        [_raw("acc", 1.0, 0, 1, dataset_name="d")],
    ):
        with pytest.raises(InvalidInput):
            tracking.log_batch(admin, run.id, metrics=batch_in(bad, [], [])[0])
    with pytest.raises(InvalidInput):
        tracking.log_batch(admin, run.id, params=batch_in([], ["p"], [])[1])


def test_concurrent_identical_batches(services, tracking, admin):
    _, run, model = _run_and_model(tracking, admin, "race")
    errors: list[BaseException] = []

    def batch(round_: int):
        return {
            "metrics": [_m(f"k{i}", i / 10, round_, 1000 + round_, model_id=model.id) for i in range(20)]
            + [_m("nan", "NaN", round_, 1000 + round_)],
            "params": [TagIn(f"p{round_}", "same")],
            "tags": [TagIn(f"t{round_}", "same")],
        }

    for round_ in range(5):
        barrier = threading.Barrier(2)

        def worker(r=round_, b=barrier):
            try:
                b.wait()
                tracking.log_batch(admin, run.id, **batch(r))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert _count(services, MetricRow, run_id=run.id) == 5 * 21
    assert _count(services, LoggedModelMetricRow, model_id=model.id) == 5 * 20
    assert [x[0] for x in _history(tracking, admin, run.id, "k3")] == [0, 1, 2, 3, 4]
    assert {m.key: m.step for m in tracking.get_run(admin, run.id).metrics}["k3"] == 4
