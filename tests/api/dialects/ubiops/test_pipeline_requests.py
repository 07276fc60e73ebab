"""UbiOps pipeline-request routes: every bad input is a 4xx in the dialect's shape ``{"error": …}``, never a 500;
answers carry what the 4.15 client's models require. A pipeline without objects answers its input, so no package
has to build here (the end-to-end test runs real deployments)."""

from __future__ import annotations

import pytest

from modelharbor.api.inputs import pipeline_in, pipeline_version_in
from tests.api.dialects.ubiops import client_model
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Token {ADMIN_KEY}"}
PL = "/v2/projects/pr/pipelines/echo"
ubiops = pytest.importorskip("ubiops")


@pytest.fixture
def pipeline(client, services, admin):
    services.projects.create_project(admin, "pr")
    p = services.pipelines
    p.create_pipeline(
        admin,
        "pr",
        pipeline_in(
            {
                "name": "echo",
                "input_type": "structured",
                "input_fields": [{"name": "x", "data_type": "int"}],
                "output_type": "structured",
                "output_fields": [{"name": "x", "data_type": "int"}],
            }
        ),
    )
    p.create_version(admin, "pr", "echo", pipeline_version_in({"version": "v1"}, creating=True))
    return client


def test_answers_fit_the_client_models(pipeline):
    c = pipeline
    made = c.post(PL + "/requests", json={"x": 3}, headers=AUTH)
    assert made.status_code == 200, made.text
    answer = client_model("PipelineRequestCreateResponse", made.json())
    assert (answer.status, answer.result) == ("completed", {"x": 3})
    rid = made.json()["id"]
    got = client_model("PipelineRequestSingleDetail", c.get(f"{PL}/requests/{rid}", headers=AUTH).json())
    assert (got.id, got.version, got.status) == (rid, "v1", "completed")
    listed = c.get(PL + "/requests", headers=AUTH).json()
    assert [client_model("PipelineRequestList", x).id for x in listed] == [rid]
    queued = c.post(PL + "/versions/v1/requests/batch", json=[{"x": 1}], headers=AUTH)
    assert queued.status_code == 201
    assert client_model("list[PipelineRequestBatchCreateResponse]", queued.json())[0].status == "pending"
    collected = c.post(PL + "/requests/collect", json=[rid, queued.json()[0]["id"]], headers=AUTH).json()
    assert [x.id for x in client_model("list[PipelineRequestDetail]", collected)] == [rid, queued.json()[0]["id"]]
    cancelled = c.patch(f"{PL}/requests/{queued.json()[0]['id']}", json={"status": "cancelled"}, headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    out = c.get(f"{PL}/versions/v1/requests/{rid}/output", headers=AUTH)
    assert out.json() == {"x": 3} and f"{rid}_output.json" in out.headers["content-disposition"]
    assert c.delete(f"{PL}/versions/v1/requests/{rid}", headers=AUTH).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/requests", {"y": 1}, 400),
        ("POST", "/requests?timeout=abc", {"x": 1}, 400),
        ("POST", "/requests?timeout=99999", {"x": 1}, 400),
        ("POST", "/requests/batch", {"x": 1}, 400),
        ("POST", "/requests/batch", [], 400),
        ("POST", "/requests/batch", [{"x": "one"}], 400),
        ("POST", "/requests/collect", {"ids": []}, 400),
        ("POST", "/requests/collect", [1, 2], 400),
        ("POST", "/requests/delete", "nope", 400),
        ("POST", "/requests/cancel?status=completed", ["a"], 400),
        ("GET", "/requests?status=finished", None, 400),
        ("GET", "/requests?limit=x", None, 400),
        ("GET", "/requests?limit=0", None, 400),
        ("GET", "/requests?offset=-3", None, 400),
        ("GET", "/requests?start_date=tomorrow", None, 400),
        ("GET", "/requests?end_date=2024-02-30", None, 400),
        ("GET", "/requests?search_id=" + "z" * 50, None, 400),
        ("GET", "/requests/not-an-id", None, 404),
        ("GET", "/requests/" + "%00" * 3, None, 404),
        ("GET", "/requests/00000000-0000-0000-0000-000000000000?metadata_only=maybe", None, 400),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", {"status": "done"}, 400),
        ("PATCH", "/requests/00000000-0000-0000-0000-000000000000", {"status": "cancelled"}, 404),
        ("DELETE", "/requests/00000000-0000-0000-0000-000000000000", None, 404),
        ("GET", "/requests/00000000-0000-0000-0000-000000000000/input", None, 404),
        ("GET", "/versions/v9/requests", None, 404),
        ("POST", "/versions/v9/requests", {"x": 1}, 404),
        ("GET", "/versions/v1/object-requests/abc", None, 404),
    ],
)
def test_bad_input_is_a_4xx_in_the_error_shape(pipeline, method, path, body, status):
    resp = pipeline.request(method, PL + path, json=body, headers=AUTH)
    assert resp.status_code == status, resp.text
    assert isinstance(resp.json()["error"], str) and resp.json()["error"]
