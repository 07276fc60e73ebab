"""The real ``mlflow`` client against a running ModelHarbor: log, register, alias, stage, load and predict.

One registry under everything: what the client registers here is the registry the other edges show.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from tests.servers import running_server

KEY = "mh_e2e_mlflow_key_0123456789"
mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-e2e")
    with running_server(root, KEY) as url:
        yield url, root


@pytest.fixture
def client_env(tracking, monkeypatch, tmp_path):
    url, _ = tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", KEY)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(url)
    yield url
    if mlflow.active_run():
        mlflow.end_run()


def _data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_log_register_alias_stage_load_and_predict(client_env, tmp_path):
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    mlflow.set_experiment("iris-like")
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=200).fit(X, y)
        mlflow.log_param("max_iter", 200)
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        big = tmp_path / "weights.bin"
        big.write_bytes(os.urandom(21 * 1024 * 1024))
        mlflow.log_artifact(str(big), artifact_path="extra")
        mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-lr")

    client = MlflowClient()
    versions = client.search_model_versions("name='iris-lr'")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id
    client.set_registered_model_alias("iris-lr", "champion", "1")
    assert client.get_model_version_by_alias("iris-lr", "champion").version == "1"
    client.transition_model_version_stage("iris-lr", "1", "Staging")
    assert client.get_model_version("iris-lr", "1").current_stage == "Staging"

    loaded = mlflow.pyfunc.load_model("models:/iris-lr@champion")
    np.testing.assert_array_equal(loaded.predict(X[:10]), model.predict(X[:10]))

    fetched = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="extra/weights.bin", dst_path=str(tmp_path / "dl")
    )
    assert hashlib.sha256(Path(fetched).read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()

    data = client.get_run(run.info.run_id).data
    assert data.params == {"max_iter": "200"} and "accuracy" in data.metrics


def test_second_version_and_errors(client_env):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    mlflow.set_experiment("iris-like")
    with mlflow.start_run():
        mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit(X, y), name="model", registered_model_name="iris-lr2")
    with mlflow.start_run():
        mlflow.sklearn.log_model(LogisticRegression(C=2.0).fit(X, y), name="model", registered_model_name="iris-lr2")
    client = MlflowClient()
    assert sorted(v.version for v in client.search_model_versions("name='iris-lr2'")) == ["1", "2"]
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("iris-lr2")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_model_version("iris-lr2", "99")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.transition_model_version_stage("iris-lr2", "1", "Bogus")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_credentials_are_required(tracking, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    url, _ = tracking
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowException) as err:
        MlflowClient(tracking_uri=url).search_registered_models()
    assert "401" in str(err.value) or err.value.error_code == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", KEY)  # an API key works as the Basic password
    MlflowClient(tracking_uri=url).search_registered_models()


def test_log_model_leaves_the_metric_history_alone(client_env):
    """Issue 13: after log_model the client re-sends the step's metrics with model_id (log_model_metrics_for_step);
    the run's history keeps one row per value, the logged model gets the copies."""
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    client = MlflowClient()
    mlflow.set_experiment("history-once")
    with mlflow.start_run() as run:
        for step, value in enumerate((0.8, 0.81, 0.82)):
            mlflow.log_metric("acc", value, step=step)
        model = LogisticRegression(max_iter=200).fit(X, y)
        infos = [mlflow.sklearn.log_model(model, name="model", registered_model_name="history-once")]
        history = client.get_metric_history(run.info.run_id, "acc")
        assert [m.step for m in history] == [0, 1, 2]
        for _ in range(2):
            infos.append(mlflow.sklearn.log_model(model, name="model", registered_model_name="history-once"))
    history = client.get_metric_history(run.info.run_id, "acc")
    assert [(m.step, m.value) for m in history] == [(0, 0.8), (1, 0.81), (2, 0.82)]
    assert all(m.model_id is None for m in history)

    for info in infos:
        metrics = client.get_logged_model(info.model_id).metrics
        assert [(m.key, m.value, m.step, m.run_id, m.model_id) for m in metrics] == [
            ("acc", 0.8, 0, run.info.run_id, info.model_id)
        ]
        assert metrics[0].timestamp == history[0].timestamp
    found = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string="metrics.acc >= 0.8", output_format="list"
    )
    assert sorted(m.model_id for m in found) == sorted(info.model_id for info in infos)
    assert all(len(m.metrics) == 1 for m in found)

    # the run as before: its latest value, found by search
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"acc": 0.82}
    hits = mlflow.search_runs([run.info.experiment_id], "metrics.acc > 0.815", output_format="list")
    assert [r.info.run_id for r in hits] == [run.info.run_id] and hits[0].data.metrics == {"acc": 0.82}


def test_identical_metrics_once_and_model_ids_checked(client_env):
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    exp_id = mlflow.set_experiment("metrics-once").experiment_id
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.25, timestamp=1_700_000_000_000, step=3)
    client.log_metric(run_id, "loss", 0.25, timestamp=1_700_000_000_000, step=3)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(3, 0.25)]

    model = client.create_logged_model(exp_id, name="direct", source_run_id=run_id)
    client.log_metric(run_id, "f1", 0.5, step=1, model_id=model.model_id, dataset_name="val", dataset_digest="d1")
    (row,) = client.get_metric_history(run_id, "f1")
    assert row.model_id == model.model_id
    (kept,) = client.get_logged_model(model.model_id).metrics
    assert (kept.key, kept.value, kept.dataset_name, kept.dataset_digest) == ("f1", 0.5, "val", "d1")

    with pytest.raises(MlflowException) as err:
        client.log_batch(run_id, metrics=[Metric("f1", 0.9, 1, 2, model_id="m-" + "0" * 32)])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    elsewhere = client.create_logged_model(client.create_experiment("metrics-elsewhere"), name="other")
    with pytest.raises(MlflowException) as err:
        client.log_batch(run_id, metrics=[Metric("f1", 0.9, 1, 2, model_id=elsewhere.model_id)])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert [m.value for m in client.get_metric_history(run_id, "f1")] == [0.5]  # nothing of either batch
    client.set_terminated(run_id)
