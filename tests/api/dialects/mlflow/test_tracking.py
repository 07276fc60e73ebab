"""The real ``mlflow`` client against a real ``modelharbor serve`` process: tracking, artifacts, logged models."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.servers import running_server

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

KEY = "mh_mlflow_test_admin_key_0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-harbor")
    with running_server(root, KEY, MODELHARBOR_LOG_LEVEL="info") as url:
        yield url, root


@pytest.fixture
def tracking(server, monkeypatch):
    url, _ = server
    for k in list(os.environ):
        if k.startswith("MLFLOW_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", KEY)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    mlflow.set_tracking_uri(url)
    yield url
    while mlflow.active_run():
        mlflow.end_run()


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_experiments(tracking):
    client = MlflowClient()
    exp_id = client.create_experiment("exp-a", tags={"team": "vision"})
    exp = client.get_experiment(exp_id)
    assert exp.name == "exp-a" and exp.tags["team"] == "vision"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert client.get_experiment_by_name("exp-a").experiment_id == exp_id
    assert client.get_experiment_by_name("nope") is None

    with pytest.raises(MlflowException) as e:
        client.create_experiment("exp-a")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"stage": "dev"}
    client.rename_experiment(exp_id, "exp-b")
    assert client.get_experiment(exp_id).name == "exp-b"

    names = {e.name for e in client.search_experiments(filter_string="name LIKE 'exp-%'")}
    assert names == {"exp-b"}
    assert [e.name for e in client.search_experiments(filter_string="tags.stage = 'dev'")] == ["exp-b"]
    assert "Default" in {e.name for e in client.search_experiments()}

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert "exp-b" not in {e.name for e in client.search_experiments()}
    assert "exp-b" in {e.name for e in client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)}
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"

    for i in range(5):
        client.create_experiment(f"page-{i}")
    page1 = client.search_experiments(max_results=3, filter_string="name LIKE 'page-%'")
    page2 = client.search_experiments(max_results=3, filter_string="name LIKE 'page-%'", page_token=page1.token)
    assert len(page1) == 3 and len(page2) == 2 and page2.token is None
    assert {e.name for e in page1} | {e.name for e in page2} == {f"page-{i}" for i in range(5)}

    # the default experiment answers to "0"
    assert client.get_experiment("0").name == "Default"


def test_runs_metrics_params_artifacts(tracking, tmp_path):
    mlflow.set_experiment("runs-exp")
    with mlflow.start_run(run_name="first") as run:
        run_id = run.info.run_id
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "opt": "adam"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=1)
        mlflow.set_tag("kind", "baseline")
        mlflow.set_tags({"a": "1", "b": "2"})
        MlflowClient().delete_tag(run_id, "b")
        with pytest.raises(MlflowException) as e:
            mlflow.log_param("lr", 0.2)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"

        big = tmp_path / "big.bin"
        with open(big, "wb") as f:
            for i in range(21):
                f.write(hashlib.sha256(str(i).encode()).digest() * (1 << 15))  # 1 MiB per step
        small = tmp_path / "notes.txt"
        small.write_text("hello")
        mlflow.log_artifact(str(big), artifact_path="data")
        mlflow.log_artifact(str(small))
        artifact_uri = run.info.artifact_uri

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time
    assert got.info.run_name == "first"
    assert got.data.params == {"lr": "0.1", "depth": "3", "opt": "adam"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8}
    assert got.data.tags["kind"] == "baseline" and got.data.tags["a"] == "1" and "b" not in got.data.tags
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]

    assert artifact_uri.endswith(f"/{run_id}/artifacts")
    listed = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert listed == {("data", True), ("notes.txt", False)}
    inner = client.list_artifacts(run_id, "data")
    assert [(f.path, f.file_size) for f in inner] == [("data/big.bin", big.stat().st_size)]
    out = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/big.bin", dst_path=tmp_path / "dl")
    )
    assert _sha(out) == _sha(big)
    whole = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=tmp_path / "all"))
    assert (whole / "notes.txt").read_text() == "hello"

    # search
    with mlflow.start_run(run_name="second"):
        mlflow.log_param("lr", 0.01)
        mlflow.log_metric("acc", 0.95)
    exp_id = got.info.experiment_id
    runs = mlflow.search_runs([exp_id], output_format="list")
    assert {r.info.run_name for r in runs} == {"first", "second"}
    assert [r.info.run_name for r in mlflow.search_runs([exp_id], "metrics.acc > 0.92", output_format="list")] == [
        "second"
    ]
    hits = mlflow.search_runs([exp_id], "params.lr = '0.1' and tags.kind = 'baseline'", output_format="list")
    assert [r.info.run_id for r in hits] == [run_id]
    hits = mlflow.search_runs([exp_id], "attributes.run_name != 'first'", output_format="list")
    assert [r.info.run_name for r in hits] == ["second"]
    ordered = mlflow.search_runs([exp_id], order_by=["metrics.acc DESC"], output_format="list")
    assert [r.info.run_name for r in ordered] == ["second", "first"]
    frame = mlflow.search_runs([exp_id])
    assert len(frame) == 2

    client.delete_run(run_id)
    assert [r.info.run_name for r in mlflow.search_runs([exp_id], output_format="list")] == ["second"]
    client.restore_run(run_id)
    assert len(mlflow.search_runs([exp_id], output_format="list")) == 2


def test_default_experiment_run(tracking):
    client = MlflowClient()
    run = client.create_run("0")
    assert client.get_experiment(run.info.experiment_id).name == "Default"
    client.set_terminated(run.info.run_id)


def test_multipart_artifact_upload(tracking, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1 << 20))
    data = tmp_path / "parts.bin"
    data.write_bytes(os.urandom(3 * (1 << 20) + 123))
    mlflow.set_experiment("mpu")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(data))
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="parts.bin", dst_path=tmp_path / "o"
    )
    assert _sha(Path(out)) == _sha(data)


def test_sklearn_model_round_trip(tracking):
    from sklearn.linear_model import LogisticRegression

    X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.1, 0.2], [0.9, 0.8]]
    y = [0, 0, 1, 1, 0, 1]
    model = LogisticRegression().fit(X, y)
    mlflow.set_experiment("models")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model")
    assert info.model_id.startswith("m-")
    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2  # READY
    assert logged.source_run_id == run.info.run_id

    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert list(loaded.predict([[0.0, 0.0], [1.0, 1.0]])) == list(model.predict([[0.0, 0.0], [1.0, 1.0]]))
    by_id = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    assert list(by_id.predict([[1.0, 0.9]])) == [1]

    client = MlflowClient()
    client.set_logged_model_tags(info.model_id, {"quality": "good"})
    assert client.get_logged_model(info.model_id).tags["quality"] == "good"
    client.delete_logged_model_tag(info.model_id, "quality")
    found = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string="name = 'model'", output_format="list"
    )
    assert [m.model_id for m in found] == [info.model_id]


def test_errors(tracking):
    client = MlflowClient()
    with pytest.raises(MlflowException) as e:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert e.value.get_http_status_code() == 404

    r = httpx.get(tracking + "/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    r = httpx.get(tracking + "/api/2.0/mlflow-artifacts/artifacts", params={"path": "0"})
    assert r.status_code == 401

    headers = {"authorization": f"Bearer {KEY}"}
    exp_id = client.create_experiment("paths")
    for bad in (f"{exp_id}/%2E%2E/x", f"{exp_id}/a/%2E/b", f"{exp_id}/a%2F%2Fb"):
        r = httpx.put(tracking + f"/api/2.0/mlflow-artifacts/artifacts/{bad}", content=b"x", headers=headers)
        assert r.status_code == 400, (bad, r.status_code)
    r = httpx.put(tracking + "/api/2.0/mlflow-artifacts/artifacts//etc/passwd", content=b"x", headers=headers)
    assert r.status_code == 400
    r = httpx.put(tracking + "/api/2.0/mlflow-artifacts/artifacts/999999/x", content=b"x", headers=headers)
    assert r.status_code == 404
