"""Wire values of the wrong JSON type (lists, objects, non-ASCII digits) in MLflow bodies and ids: a 4xx in MLflow's shape, never
a 500 (the dialect fuzz found these once)."""

import pytest

from tests.conftest import ADMIN_KEY

H = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.mark.parametrize(
    "body",
    [
        {"experiment_id": "0", "run_name": [1]},
        {"experiment_id": "0", "user_id": {"a": 1}},
        {"experiment_id": "³"},
        {"experiment_id": "0", "tags": [{"key": "k", "value": [1]}]},
    ],
)
def test_runs_create(client, body):
    r = client.post("/api/2.0/mlflow/runs/create", json=body, headers=H)
    assert r.status_code in (400, 404, 405), r.text


@pytest.mark.parametrize(
    "body",
    [
        {"experiment_id": "0", "name": [1]},
        {"experiment_id": "0", "model_type": [1]},
        {"experiment_id": "0", "source_run_id": {"a": 1}},
    ],
)
def test_logged_models(client, body):
    r = client.post("/api/2.0/mlflow/logged-models", json=body, headers=H)
    assert r.status_code in (400, 404, 405), r.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/experiments/get?experiment_id=%C2%B3",
        "/api/2.0/mlflow-artifacts/artifacts/%C2%B3/x",
    ],
)
def test_gets(client, path):
    r = client.get(path, headers=H)
    assert r.status_code in (400, 404, 405), r.text
