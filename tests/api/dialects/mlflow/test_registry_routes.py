"""The MLflow model-registry API, driven by the real ``mlflow.MlflowClient`` against a real server process."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.servers import running_server

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

KEY = "mh_registry_test_admin_key_0123456789"
SOURCE = "mlflow-artifacts:/0/abc/artifacts/model"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-harbor")
    with running_server(root, KEY, MODELHARBOR_LOG_LEVEL="info") as url:
        yield url


@pytest.fixture
def client(server, monkeypatch) -> MlflowClient:
    for k in list(os.environ):
        if k.startswith("MLFLOW_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", KEY)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return MlflowClient(tracking_uri=server, registry_uri=server)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


def error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.error_code


def test_registered_model_lifecycle(client):
    name = unique("iris")
    rm = client.create_registered_model(name, tags={"team": "ml"}, description="first")
    assert (rm.name, rm.description, rm.tags) == (name, "first", {"team": "ml"})
    assert rm.creation_timestamp > 1_600_000_000_000 and rm.latest_versions == []
    assert client.get_registered_model(name).tags == {"team": "ml"}
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"
    assert client.update_registered_model(name, description="second").description == "second"
    client.rename_registered_model(name, name + "-x")  # the client returns None
    assert client.get_registered_model(name + "-x").description == "second"
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    client.set_registered_model_tag(name + "-x", "stage", "beta")
    client.delete_registered_model_tag(name + "-x", "team")
    assert client.get_registered_model(name + "-x").tags == {"stage": "beta"}
    client.delete_registered_model(name + "-x")
    with pytest.raises(MlflowException) as e:
        client.delete_registered_model(name + "-x")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_invalid_names_and_unknown_models(client, server):
    for bad in ("a/b", "x" * 300):
        with pytest.raises(MlflowException) as e:
            client.create_registered_model(bad)
        assert error_code(e) == "INVALID_PARAMETER_VALUE"
    r = httpx.post(
        server + "/api/2.0/mlflow/registered-models/create",
        json={"name": ""},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.create_model_version("does-not-exist", SOURCE)  # no auto-create
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    r = httpx.get(server + "/api/2.0/mlflow/registered-models/get", params={"name": "nope"})
    assert r.status_code == 401


def test_search_registered_models_filter_and_paging(client):
    prefix = unique("p")
    for i in range(5):
        client.create_registered_model(f"{prefix}-{i}", tags={"i": str(i)})
    client.create_registered_model(unique("q"))
    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", max_results=2)
    names = [m.name for m in found]
    token = found.token
    while token:
        page = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", max_results=2, page_token=token)
        names += [m.name for m in page]
        token = page.token
    assert names == [f"{prefix}-{i}" for i in range(5)]
    desc = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [m.name for m in desc][0] == f"{prefix}-4"
    tagged = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}%' AND tags.i = '3'")
    assert [m.name for m in tagged] == [f"{prefix}-3"]
    for bad in ("name LIKE", "name = 'a' OR name = 'b'", "colour = 'red'"):
        with pytest.raises(MlflowException) as e:
            client.search_registered_models(filter_string=bad)
        assert error_code(e) == "INVALID_PARAMETER_VALUE"


def test_versions_stages_aliases(client):
    name = unique("model")
    client.create_registered_model(name)
    v1 = client.create_model_version(name, source=SOURCE, run_id=None, tags={"k": "v"}, description="d1")
    assert (v1.version, v1.status, v1.current_stage, v1.source, v1.tags) == ("1", "READY", "None", SOURCE, {"k": "v"})
    v2 = client.create_model_version(name, source=SOURCE, run_id="0123456789abcdef0123456789abcdef")
    v3 = client.create_model_version(name, source=SOURCE + "3")
    assert (v2.version, v3.version) == ("2", "3")
    assert client.get_model_version(name, "2").run_id == "0123456789abcdef0123456789abcdef"
    assert client.get_model_version_download_uri(name, "3") == SOURCE + "3"
    assert client.update_model_version(name, "1", description="new").description == "new"

    assert client.transition_model_version_stage(name, "1", "production").current_stage == "Production"
    client.transition_model_version_stage(name, "2", "Staging")
    mv = client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "2", "Retired")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["3"]
    assert sorted(v.version for v in client.get_latest_versions(name)) == ["1", "2", "3"]
    assert sorted(v.current_stage for v in client.get_registered_model(name).latest_versions) == [
        "Archived",
        "Production",
        "Staging",
    ]

    client.set_registered_model_alias(name, "champion", "2")
    champ = client.get_model_version_by_alias(name, "champion")
    assert champ.version == "2" and champ.aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "champion")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"

    client.set_model_version_tag(name, "1", "a", "b")
    client.delete_model_version_tag(name, "1", "k")
    assert client.get_model_version(name, "1").tags == {"a": "b"}

    found = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in found) == ["1", "2", "3"]
    by_run = client.search_model_versions("run_id = '0123456789abcdef0123456789abcdef'")
    assert [(v.name, v.version) for v in by_run] == [(name, "2")]
    paged = client.search_model_versions(f"name = '{name}'", max_results=2, order_by=["version_number ASC"])
    assert [v.version for v in paged] == ["1", "2"] and paged.token
    with pytest.raises(MlflowException) as e:
        client.search_model_versions("name = ")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    client.delete_model_version(name, "2")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "2")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version(name, source=SOURCE).version == "4"


def test_raw_error_shapes(server):
    h = {"Authorization": f"Bearer {KEY}"}
    api = server + "/api/2.0/mlflow"
    r = httpx.get(api + "/model-versions/get", params={"name": "x", "version": "abc"}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = httpx.post(api + "/registered-models/create", content=b"[1]", headers=h)
    assert r.status_code == 400
    r = httpx.get(api + "/registered-models/search", params={"max_results": "x"}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = httpx.get(api + "/registered-models/search", params={"page_token": "!!"}, headers=h)
    assert r.status_code == 400
    r = httpx.post(api + "/registered-models/create", json={"name": "t", "tags": "nope"}, headers=h)
    assert r.status_code == 400 and "tags" in r.json()["message"]
    r = httpx.get(api + "/registered-models/get", params={"name": "t"}, headers=h)
    assert r.status_code == 404  # nothing half-written


def test_registry_calls_take_the_exact_path_dispatch_and_answer_like_fastapi(server):
    """Every registry route (and no other) is answered by api/hot.py's exact table; errors keep MLflow's shapes there
    and past it."""
    from fastapi.routing import APIRoute

    from modelharbor.api.dialect import mount
    from modelharbor.api.dialects.mlflow import DIALECT
    from modelharbor.api.dialects.mlflow.routes import registry
    from modelharbor.api.hot import HotTable

    routes = [r for r in registry.router.routes if isinstance(r, APIRoute)]
    table = HotTable(None, None)
    for entry in mount(DIALECT, None).hot:
        table.add(entry)
    assert len(routes) == 21 and set(table.exact) == {
        (m, f"/api/2.0/mlflow{r.path}") for r in routes for m in r.methods
    }

    base = f"{server}/api/2.0/mlflow"
    auth = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/registered-models/create", json={"name": unique("exact")})  # no credentials
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
        r = c.post("/registered-models/create", json={"name": ""}, headers=auth)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        r = c.post("/registered-models/create", content=b"{not json", headers=auth)
        assert r.status_code == 400 and r.json()["error_code"] == "MALFORMED_REQUEST"
        r = c.get("/registered-models/get", params={"name": unique("absent")}, headers=auth)
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        # a method the route does not take falls through to FastAPI: 405 in MLflow's shape
        r = c.put("/registered-models/create", json={}, headers=auth)
        assert r.status_code == 405 and r.json()["error_code"] == "BAD_REQUEST"
        # tracking routes are FastAPI's as before
        r = c.get("/experiments/get-by-name", params={"experiment_name": "Default"}, headers=auth)
        assert r.status_code == 200 and r.json()["experiment"]["name"] == "Default"
