"""MLflow metric routes in MLflow's JSON, on SQLite and PostgreSQL: history rows and logged models' metrics with
``model_id``, identical metrics stored once, MLflow's error codes for bad model ids, limits and malformed entries."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
API = "/api/2.0/mlflow"


@pytest.fixture
def call(client):
    def call(method: str, path: str, expect: int = 200, **kw):
        r = client.request(method, API + path, headers=AUTH, **kw)
        assert r.status_code == expect, (path, r.status_code, r.text)
        return r.json()

    return call


@pytest.fixture
def run_and_model(call):
    exp_id = call("POST", "/experiments/create", json={"name": "routes"})["experiment_id"]
    run_id = call("POST", "/runs/create", json={"experiment_id": exp_id})["run"]["info"]["run_id"]
    model = call("POST", "/logged-models", json={"experiment_id": exp_id, "name": "m", "source_run_id": run_id})
    return exp_id, run_id, model["model"]["info"]["model_id"]


def _metric(key, value, step, ts, **extra):
    return {"key": key, "value": value, "step": step, "timestamp": ts, **extra}


def test_history_and_logged_model_metrics(call, run_and_model):
    exp_id, run_id, model_id = run_and_model
    plain = [_metric("acc", 0.5, 0, 10), _metric("loss", "NaN", 0, 10)]
    call("POST", "/runs/log-batch", json={"run_id": run_id, "metrics": plain + plain})
    with_model = [dict(m, model_id=model_id, run_id=run_id) for m in plain]
    with_model[0] |= {"dataset_name": "val", "dataset_digest": "abc"}
    call("POST", "/runs/log-batch", json={"run_id": run_id, "metrics": with_model})
    call("POST", "/runs/log-metric", json={"run_id": run_id, **_metric("f1", 0.7, 1, 20), "model_id": model_id})

    def history(key):
        return call("GET", "/metrics/get-history", params={"run_id": run_id, "metric_key": key})["metrics"]

    assert history("acc") == [{"key": "acc", "value": 0.5, "timestamp": 10, "step": 0}]
    assert history("loss") == [{"key": "loss", "value": "NaN", "timestamp": 10, "step": 0}]
    assert history("f1") == [{"key": "f1", "value": 0.7, "timestamp": 20, "step": 1, "model_id": model_id}]

    expected = [
        {"key": "acc", "value": 0.5, "timestamp": 10, "step": 0, "model_id": model_id, "run_id": run_id,
         "dataset_name": "val", "dataset_digest": "abc"},
        {"key": "f1", "value": 0.7, "timestamp": 20, "step": 1, "model_id": model_id, "run_id": run_id},
        {"key": "loss", "value": "NaN", "timestamp": 10, "step": 0, "model_id": model_id, "run_id": run_id},
    ]  # fmt: skip
    assert call("GET", f"/logged-models/{model_id}")["model"]["data"]["metrics"] == expected
    found = call("POST", "/logged-models/search", json={"experiment_ids": [exp_id]})["models"]
    assert [m["data"]["metrics"] for m in found] == [expected]
    found = call(
        "POST",
        "/logged-models/search",
        json={"experiment_ids": [exp_id], "datasets": [{"dataset_name": "val", "dataset_digest": "abc"}]},
    )["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]
    found = call(
        "POST", "/logged-models/search", json={"experiment_ids": [exp_id], "datasets": [{"dataset_name": "x"}]}
    )
    assert found == {"models": []}

    run = call("GET", "/runs/get", params={"run_id": run_id})["run"]
    assert run["data"]["metrics"] == [  # the run's latest values, as before: no model_id
        {"key": "acc", "value": 0.5, "timestamp": 10, "step": 0},
        {"key": "f1", "value": 0.7, "timestamp": 20, "step": 1},
        {"key": "loss", "value": "NaN", "timestamp": 10, "step": 0},
    ]


def test_bad_model_ids_limits_and_malformed_metrics(call, run_and_model):
    _, run_id, model_id = run_and_model
    other_exp = call("POST", "/experiments/create", json={"name": "other"})["experiment_id"]
    other = call("POST", "/logged-models", json={"experiment_id": other_exp})["model"]["info"]["model_id"]

    def refused(body, status, code, path="/runs/log-batch"):
        answer = call("POST", path, status, json={"run_id": run_id, **body})
        assert answer["error_code"] == code, answer
        return answer["message"]

    batch = {"params": [{"key": "p", "value": "1"}], "tags": [{"key": "t", "value": "1"}]}
    for bad, status, code in (
        ("m-" + "0" * 32, 404, "RESOURCE_DOES_NOT_EXIST"),
        (other, 400, "INVALID_PARAMETER_VALUE"),
    ):
        refused({**batch, "metrics": [_metric("acc", 1, 0, 1), _metric("acc", 2, 1, 2, model_id=bad)]}, status, code)
        refused({**_metric("acc", 1, 0, 1), "model_id": bad}, status, code, path="/runs/log-metric")
    run = call("GET", "/runs/get", params={"run_id": run_id})["run"]
    assert run["data"] == {
        "metrics": [],
        "params": [],
        "tags": [{"key": "mlflow.runName", "value": run["info"]["run_name"]}],
    }
    assert call("GET", f"/logged-models/{model_id}")["model"]["data"]["metrics"] == []

    message = refused({"metrics": [_metric("k", 1, i, 1) for i in range(1001)]}, 400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("A batch logging request can contain at most 1000 metrics. Got 1001 metrics.")
    refused({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, 400, "INVALID_PARAMETER_VALUE")
    refused({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}, 400, "INVALID_PARAMETER_VALUE")
    for metrics in ("acc", ["acc"], [_metric("acc", "high", 0, 1)], [_metric("acc", 1, 0, -5)]):
        refused({"metrics": metrics}, 400, "INVALID_PARAMETER_VALUE")
    refused({"params": "p"}, 400, "INVALID_PARAMETER_VALUE")
