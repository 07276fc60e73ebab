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
