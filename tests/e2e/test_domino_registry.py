"""One registry, two clients: the real ``mlflow`` client logs a model, Domino's API registers it from the run and
reviews it into Production, and ``mlflow`` then loads ``models:/<name>/Production`` and predicts."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.servers import create_user, running_server

KEY = "mh_e2e_domino_key_0123456789"
mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("domino-e2e")
    with running_server(root, KEY) as url:
        yield url, root


def test_mlflow_run_registered_and_reviewed_through_domino(served, monkeypatch, tmp_path):
    server, server_root = served
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", KEY)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(server)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    mlflow.set_experiment("domino-e2e")
    with mlflow.start_run() as run:
        model = LogisticRegression().fit(X, y)
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        mlflow.sklearn.log_model(model, name="clf")

    admin = httpx.Client(base_url=server, headers={"X-Domino-Api-Key": KEY}, timeout=30)
    assert httpx.get(f"{server}/version").json()["version"] == "6.3.0"
    # a reviewer: a second member of the organisation, with a key of their own
    native = httpx.Client(base_url=server + "/api/v1", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    project = native.post("/projects", json={"name": "churn"}).json()
    resp = admin.post(
        "/api/registeredmodels/v1",
        json={
            "modelName": "churn-clf",
            "experimentRunId": run.info.run_id,
            "discoverable": True,
            "projectId": project["id"],
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["project"]["name"] == "churn" and resp.json()["latestVersion"] == 1
    details = admin.get("/api/registeredmodels/v1/churn-clf/versions/1").json()
    assert details["experimentRunId"] == run.info.run_id
    assert [m["key"] for m in details["versionUiDetails"]["experimentRunInfo"]["metrics"]] == ["accuracy"]

    # a reviewer: a second member of the organisation, made with the admin CLI on the server's database
    rita_key = create_user(server_root, "rita")
    rita_id = httpx.get(f"{server}/api/v1/me", headers={"Authorization": f"Bearer {rita_key}"}).json()["user_id"]
    reviews = "/api/registeredmodels/v1/churn-clf/versions/1/reviews"
    resp = admin.post(reviews, json={"reviewerIds": [rita_id], "targetStage": "Production", "notes": "go?"})
    assert resp.status_code == 201, resp.text
    review = resp.json()
    # until rita approves, MLflow cannot move the version either
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.MlflowClient().transition_model_version_stage("churn-clf", "1", "Staging")
    rita = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {rita_key}"}, timeout=30)
    done = rita.post(f"{reviews}/{review['id']}/responses", json={"decision": "Approved"})
    assert done.status_code == 201 and done.json()["status"] == "Approved"
    assert mlflow.MlflowClient().get_model_version("churn-clf", "1").current_stage == "Production"
    loaded = mlflow.pyfunc.load_model("models:/churn-clf/Production")
    assert (loaded.predict(X) == model.predict(X)).all()
    # rita is not a collaborator of the project: she may read, not change
    assert rita.patch("/api/registeredmodels/v1/churn-clf", json={"description": "x"}).status_code == 403
