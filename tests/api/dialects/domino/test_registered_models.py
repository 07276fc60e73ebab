"""Domino's registered-model API over HTTP: envelopes, errors, runs → models, stages, reviews, permissions."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from modelharbor.domain.inputs import MetricIn, TagIn
from modelharbor.domain.principal import Role
from tests.conftest import ADMIN_KEY

BASE = "/api/registeredmodels"


def h(key: str) -> dict[str, str]:
    return {"X-Domino-Api-Key": key}


@pytest.fixture
def admin_h():
    return h(ADMIN_KEY)


def new_user(services, admin, role=Role.MEMBER):
    user = services.identity.create_user(admin, f"user-{uuid.uuid4().hex[:8]}", role=role)
    principal = services.identity.principal_by_ids(user.id, admin.org_id)
    return principal, services.identity.create_key(principal, "k").secret


def logged_run(services, principal, *, models=("model",), metrics=True):
    """A run with metrics/params and MLflow 3 logged models named ``models``."""
    tr = services.tracking
    run = tr.create_run(principal, "0", run_name="train")
    if metrics:
        tr.log_batch(
            principal,
            run.id,
            metrics=[MetricIn("acc", 0.93, 1_700_000_000_000, 0)],
            params=[TagIn("C", "1.0")],
        )
    ids = [tr.create_logged_model(principal, "0", name=n, source_run_id=run.id).id for n in models]
    return run.id, ids


def failure(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"errors", "requestId"} and isinstance(body["errors"][0], str), body
    return body["errors"][0]


def test_version_is_public_and_parses(client):
    resp = client.get("/version")
    assert resp.status_code == 200
    from packaging.version import Version

    assert Version(resp.json()["version"]) >= Version("4.1.0")


def test_auth_headers(client, admin_h):
    assert failure(client.get(f"{BASE}/v1"), 401)
    assert failure(client.get(f"{BASE}/v1", headers=h("wrong")), 401)
    assert client.get(f"{BASE}/v1", headers=admin_h).status_code == 200
    assert client.get(f"{BASE}/v1", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_create_from_run_get_list_update(client, services, admin, admin_h):
    run_id, (lm_id,) = logged_run(services, admin)
    body = {
        "modelName": "churn",
        "experimentRunId": run_id,
        "description": "d",
        "discoverable": True,
        "tags": {"team": "ml"},
    }
    resp = client.post(f"{BASE}/v1", json=body, headers=admin_h)
    assert resp.status_code == 200, resp.text
    m = resp.json()
    assert (m["name"], m["description"], m["discoverable"], m["latestVersion"], m["tags"]) == (
        "churn",
        "d",
        True,
        1,
        {"team": "ml"},
    )
    assert m["ownerUsername"] == "admin" and m["project"] is None
    assert m["requestingUserAccess"]["canEditModel"] is True
    assert m["createdAt"].endswith("Z") and "metadata" not in m
    # duplicates are 400 (Domino's client treats 409 as a login problem)
    assert "already exists" in failure(client.post(f"{BASE}/v1", json=body, headers=admin_h), 400)
    v = client.get(f"{BASE}/v1/churn/versions/1", headers=admin_h).json()
    assert v["experimentRunId"] == run_id and v["stage"] == "None" and v["modelVersion"] == 1
    info = v["versionUiDetails"]["experimentRunInfo"]
    assert info["params"] == [{"key": "C", "value": "1.0"}]
    assert info["metrics"][0]["key"] == "acc" and info["metrics"][0]["value"] == 0.93
    assert run_id in info["runUrl"]
    # the MLflow API sees the same model, with the logged model as its source
    mv = client.get(
        "/api/2.0/mlflow/model-versions/get",
        params={"name": "churn", "version": "1"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()["model_version"]
    assert mv["source"] == f"models:/{lm_id}" and mv["run_id"] == run_id

    listing = client.get(f"{BASE}/v1", headers=admin_h).json()
    assert [x["name"] for x in listing["items"]] == ["churn"]
    assert set(listing["metadata"]) == {"requestId", "notices", "nextPageToken"}
    assert client.get(f"{BASE}/v1/churn", headers=admin_h).json()["latestVersion"] == 1
    patched = client.patch(f"{BASE}/v1/churn", json={"description": "new", "discoverable": False}, headers=admin_h)
    assert (patched.json()["description"], patched.json()["discoverable"]) == ("new", False)
    assert failure(client.patch(f"{BASE}/v1/churn", json={}, headers=admin_h), 400)
    assert failure(client.patch(f"{BASE}/v1/churn", json={"discoverable": "yes"}, headers=admin_h), 400)
    assert failure(client.get(f"{BASE}/v1/nope", headers=admin_h), 404)
    ui = client.get(f"{BASE}/v1/ui", headers=admin_h).json()["items"][0]
    assert ui["modelApiCount"] == 0 and ui["latestVersionExperimentMetrics"] == {"acc": 0.93}
    names = client.get(f"{BASE}/v1/names", params={"search": "CHU"}, headers=admin_h).json()
    assert names["items"] == ["churn"] and names["metadata"]["limit"] == 10
    assert client.get(f"{BASE}/v1/names", params={"modelCategory": "genai"}, headers=admin_h).json()["items"] == []
    apis = client.get(f"{BASE}/v1/churn/modelapis", headers=admin_h).json()
    assert apis["items"] == [] and apis["metadata"]["totalCount"] == 0
    assert client.get(f"{BASE}/v1/churn/versions/1/modelapis", headers=admin_h).json()["items"] == []
    assert failure(client.get(f"{BASE}/v1/churn/versions/9/modelapis", headers=admin_h), 404)


def test_versions_from_runs(client, services, admin, admin_h):
    run1, _ = logged_run(services, admin)
    client.post(
        f"{BASE}/v1", json={"modelName": "m", "experimentRunId": run1, "discoverable": False}, headers=admin_h
    ).raise_for_status()
    run2, (lm_a, lm_b) = logged_run(services, admin, models=("a", "b"))
    bad = {"experimentRunId": run2, "description": "x"}
    assert "artifact" in failure(client.post(f"{BASE}/v1/m/versions", json=bad, headers=admin_h), 400)
    resp = client.post(f"{BASE}/v1/m/versions", json={**bad, "artifact": "b"}, headers=admin_h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["modelVersion"] == 2 and resp.json()["modelVersionDescription"] == "x"
    assert "no model" in failure(
        client.post(f"{BASE}/v1/m/versions", json={**bad, "artifact": "zzz"}, headers=admin_h), 400
    )
    assert failure(
        client.post(
            f"{BASE}/v1/m/versions", json={**bad, "experimentRunId": "f" * 32, "artifact": "a"}, headers=admin_h
        ),
        404,
    )
    assert failure(client.post(f"{BASE}/v1/nomodel/versions", json={**bad, "artifact": "a"}, headers=admin_h), 404)
    # an MLflow-2-style run: the model is a directory of run artifacts holding an MLmodel file
    run3 = services.tracking.create_run(admin, "0").id
    exp = services.tracking.get_run(admin, run3).experiment_id

    async def put():
        async def data():
            yield b"flavors: {}\n"

        await services.artifacts.put(admin, f"{exp}/{run3}/artifacts/clf/MLmodel", data())

    asyncio.run(put())
    resp = client.post(
        f"{BASE}/v1/m/versions", json={"experimentRunId": run3, "description": "", "artifact": "clf"}, headers=admin_h
    )
    assert resp.status_code == 200, resp.text
    mv = services.registry.get_version(admin, "m", 3)
    assert mv.source == f"runs:/{run3}/clf"
    listing = client.get(f"{BASE}/v1/m/versions", params={"limit": 2}, headers=admin_h).json()
    assert [x["modelVersion"] for x in listing["items"]] == [3, 2]
    assert listing["metadata"]["totalCount"] == 3 and listing["metadata"]["limit"] == 2
    # v2: explicit logged model, new model and new version
    v2 = {
        "create": True,
        "modelName": "m2",
        "modelSource": {"sourceType": "mlflow", "mlflowSource": {"experimentRunId": run2, "loggedModelId": lm_a}},
    }
    resp = client.post(f"{BASE}/v2", json=v2, headers=admin_h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["registeredModel"]["name"] == "m2" and resp.json()["modelVersion"]["modelVersion"] == 1
    v2["create"] = False
    assert client.post(f"{BASE}/v2", json=v2, headers=admin_h).json()["modelVersion"]["modelVersion"] == 2
    assert len(client.get(f"{BASE}/v2/m2/versions", headers=admin_h).json()["items"]) == 2
    assert client.get(f"{BASE}/v2/m2/versions/2", headers=admin_h).json()["modelVersion"] == 2
    v2["modelSource"]["mlflowSource"]["loggedModelId"] = "m-" + "0" * 32
    assert failure(client.post(f"{BASE}/v2", json=v2, headers=admin_h), 404)
    hf = {
        "create": True,
        "modelName": "hf",
        "modelSource": {"sourceType": "huggingface", "huggingFaceSource": {"modelId": "gpt2"}},
    }
    assert "not supported" in failure(client.post(f"{BASE}/v2", json=hf, headers=admin_h), 501)
    assert failure(client.get(f"{BASE}/v1/hf", headers=admin_h), 404)  # nothing half-written


def test_failed_create_leaves_nothing(client, services, admin, admin_h):
    run_id, _ = logged_run(services, admin, models=("a", "b"))  # ambiguous: the version cannot be made
    body = {"modelName": "half", "experimentRunId": run_id, "discoverable": False}
    assert failure(client.post(f"{BASE}/v1", json=body, headers=admin_h), 400)
    assert failure(client.get(f"{BASE}/v1/half", headers=admin_h), 404)
    for bad in (
        {},
        {"modelName": "x"},
        {"modelName": "x", "experimentRunId": run_id},
        {"modelName": 3, "experimentRunId": run_id, "discoverable": False},
        {"modelName": "a/b", "experimentRunId": run_id, "discoverable": False, "artifact": "a"},
    ):
        failure(client.post(f"{BASE}/v1", json=bad, headers=admin_h), 400)
    failure(client.post(f"{BASE}/v1", content=b"{not json", headers=admin_h), 400)
    failure(client.post(f"{BASE}/v1", content=b"[1]", headers=admin_h), 400)
    assert client.get(f"{BASE}/v1", headers=admin_h).json()["items"] == []


def test_project_stages_and_transitions(client, services, admin, admin_h):
    project = services.projects.create_project(admin, "proj")
    run_id, _ = logged_run(services, admin)
    services.tracking.set_tag(admin, run_id, "mlflow.domino.project_id", project.id)
    resp = client.post(
        f"{BASE}/v1", json={"modelName": "pm", "experimentRunId": run_id, "discoverable": False}, headers=admin_h
    )
    assert resp.json()["project"] == {
        "id": project.id,
        "name": "proj",
        "ownerUsername": "admin",
        "isGitBasedProject": False,
    }
    assert (
        client.get(f"{BASE}/v1", params={"projectId": project.id}, headers=admin_h).json()["items"][0]["name"] == "pm"
    )
    assert failure(client.get(f"{BASE}/v1", params={"projectId": "0" * 24}, headers=admin_h), 404)
    assert client.get(f"{BASE}/v1/stages", headers=admin_h).json() == {
        "stages": ["None", "Staging", "Production", "Archived"]
    }
    url = f"{BASE}/v1/stages/projects/{project.id}"
    assert client.get(url, headers=admin_h).json() == {
        "stages": ["None", "Staging", "Production", "Archived"],
        "projectId": project.id,
        "isDefault": True,
    }
    assert client.get(url, params={"includeDefaults": "false"}, headers=admin_h).json()["stages"] == []
    put = client.put(url, json={"stages": ["None", "Dev", "QA", "Prod"]}, headers=admin_h)
    assert put.json() == {"stages": ["None", "Dev", "QA", "Prod"], "projectId": project.id, "isDefault": False}
    failure(client.put(url, json={"stages": ["Dev"]}, headers=admin_h), 400)
    failure(client.put(url, json={"stages": "None"}, headers=admin_h), 400)
    failure(client.put(f"{BASE}/v1/stages/projects/nope", json={"stages": ["None"]}, headers=admin_h), 404)

    validate = f"{BASE}/v1/pm/versions/1/stages/validate"
    assert client.post(validate, json={"targetStage": "QA"}, headers=admin_h).json() == {"isValid": True, "reasons": []}
    res = client.post(validate, json={"targetStage": "Production"}, headers=admin_h).json()
    assert res["isValid"] is False and "not one of" in res["reasons"][0]
    assert client.post(validate, json={"targetStage": "None"}, headers=admin_h).json()["isValid"] is False
    failure(client.post(validate, json={}, headers=admin_h), 400)
    v = client.patch(
        f"{BASE}/v1/pm/versions/1",
        json={"stage": "qa", "modelVersionDescription": "qa'd", "tags": {"k": "v"}},
        headers=admin_h,
    ).json()
    assert (v["stage"], v["modelVersionDescription"], v["tags"]) == ("QA", "qa'd", {"k": "v"})
    assert "Invalid Model Version stage" in failure(
        client.patch(f"{BASE}/v1/pm/versions/1", json={"stage": "Production"}, headers=admin_h), 400
    )
    failure(client.patch(f"{BASE}/v1/pm/versions/1", json={}, headers=admin_h), 400)
    failure(client.patch(f"{BASE}/v1/pm/versions/x", json={"stage": "QA"}, headers=admin_h), 400)
    failure(client.patch(f"{BASE}/v1/pm/versions/7", json={"stage": "QA"}, headers=admin_h), 404)
    # MLflow's transition follows the project's list too
    mlflow = client.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": "pm", "version": "1", "stage": "Production"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert mlflow.status_code == 400 and mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_reviews_flow(client, services, admin, admin_h):
    alice, alice_key = new_user(services, admin)
    bob, bob_key = new_user(services, admin, Role.VIEWER)
    run_id, _ = logged_run(services, admin)
    client.post(
        f"{BASE}/v1", json={"modelName": "rm", "experimentRunId": run_id, "discoverable": False}, headers=admin_h
    ).raise_for_status()
    base = f"{BASE}/v1/rm/versions/1/reviews"
    assert client.get(f"{base}/stages", headers=admin_h).json() == {"stages": ["Staging", "Production", "Archived"]}
    resp = client.post(
        base,
        json={"reviewerIds": [alice.user_id, bob.user_id], "targetStage": "Production", "notes": "ship it?"},
        headers=admin_h,
    )
    assert resp.status_code == 201, resp.text
    review = resp.json()
    assert review["status"] == "Open" and review["requestedBy"]["userName"] == "admin"
    assert {r["userId"] for r in review["reviewers"]} == {alice.user_id, bob.user_id}
    assert client.get(f"{base}/stages", headers=admin_h).json() == {"stages": []}
    failure(client.post(base, json={"reviewerIds": [alice.user_id], "targetStage": "Staging"}, headers=admin_h), 400)
    rid = review["id"]
    assert "only a reviewer" in failure(
        client.post(f"{base}/{rid}/responses", json={"decision": "Approved"}, headers=admin_h), 403
    )
    failure(client.post(f"{base}/{rid}/responses", json={"decision": "Sure"}, headers=h(alice_key)), 400)
    r1 = client.post(f"{base}/{rid}/responses", json={"decision": "Approved", "notes": "ok"}, headers=h(alice_key))
    assert r1.status_code == 201 and r1.json()["status"] == "Open"
    assert failure(client.patch(f"{base}/{rid}", json={"notes": "mine"}, headers=h(alice_key)), 403)
    assert client.patch(f"{base}/{rid}", json={"notes": "edited"}, headers=admin_h).status_code == 204
    failure(
        client.patch(
            f"{base}/{rid}", json={"status": "Canceled", "reviewerIdsToAdd": [alice.user_id]}, headers=admin_h
        ),
        400,
    )
    r2 = client.post(f"{base}/{rid}/responses", json={"decision": "Approved"}, headers=h(bob_key))
    assert r2.json()["status"] == "Approved" and r2.json()["notes"] == "edited"
    assert client.get("/api/registeredmodels/v1/rm/versions/1", headers=admin_h).json()["stage"] == "Production"
    assert client.get(f"{base}/{rid}", headers=admin_h).json()["status"] == "Approved"
    assert [x["id"] for x in client.get(base, headers=admin_h).json()["items"]] == [rid]
    failure(client.get(f"{base}/{'0' * 24}", headers=admin_h), 404)
    # a second review, cancelled by its requester
    r3 = client.post(base, json={"reviewerIds": [alice.user_id], "targetStage": "Archived"}, headers=admin_h).json()
    assert client.patch(f"{base}/{r3['id']}", json={"status": "Canceled"}, headers=admin_h).status_code == 204
    failure(client.post(f"{base}/{r3['id']}/responses", json={"decision": "Approved"}, headers=h(alice_key)), 400)
    failure(
        client.post(
            f"{BASE}/v1/rm/versions/5/reviews",
            json={"reviewerIds": [alice.user_id], "targetStage": "Staging"},
            headers=admin_h,
        ),
        404,
    )


def test_permissions_per_operation(client, services, admin, admin_h):
    viewer, viewer_key = new_user(services, admin, Role.VIEWER)
    member, member_key = new_user(services, admin, Role.MEMBER)
    project = services.projects.create_project(admin, "locked")
    run_id, _ = logged_run(services, admin)
    client.post(
        f"{BASE}/v1",
        json={"modelName": "pm", "experimentRunId": run_id, "discoverable": False, "projectId": project.id},
        headers=admin_h,
    ).raise_for_status()
    seen = client.get(f"{BASE}/v1/pm", headers=h(viewer_key)).json()
    assert seen["requestingUserAccess"]["canEditModel"] is False
    failure(client.patch(f"{BASE}/v1/pm", json={"description": "x"}, headers=h(viewer_key)), 403)
    member_view = client.get(f"{BASE}/v1/pm", headers=h(member_key)).json()
    assert member_view["requestingUserAccess"]["canEditModel"] is False  # not a collaborator of the project
    failure(client.patch(f"{BASE}/v1/pm", json={"description": "x"}, headers=h(member_key)), 403)
    failure(
        client.put(f"{BASE}/v1/stages/projects/{project.id}", json={"stages": ["None"]}, headers=h(member_key)), 403
    )
    services.projects.set_collaborator(admin, project.id, member.user_id, "Contributor")
    assert client.patch(f"{BASE}/v1/pm", json={"description": "x"}, headers=h(member_key)).status_code == 200
    assert client.get(f"{BASE}/v1/pm", headers=h(member_key)).json()["requestingUserAccess"]["canEditModel"]
    # another organisation sees nothing, and cannot use this organisation's runs
    outsider = services.identity.create_org(admin, "elsewhere")
    stranger_user = services.identity.create_user(admin, "stranger", role=Role.OWNER)
    from modelharbor.db.tables import MembershipRow

    with services.db.uow() as s:
        s.add(MembershipRow(org_id=outsider.id, user_id=stranger_user.id, role="owner"))
    stranger = services.identity.principal_by_ids(stranger_user.id, outsider.id)
    skey = services.identity.create_key(stranger, "k").secret
    failure(client.get(f"{BASE}/v1/pm", headers=h(skey)), 404)
    assert client.get(f"{BASE}/v1", headers=h(skey)).json()["items"] == []
    failure(client.get(f"{BASE}/v1/stages/projects/{project.id}", headers=h(skey)), 404)
    failure(
        client.post(
            f"{BASE}/v1", json={"modelName": "steal", "experimentRunId": run_id, "discoverable": False}, headers=h(skey)
        ),
        404,
    )
    failure(client.post(f"{BASE}/v1/access/{project.id}", headers=h(skey)), 404)  # op 136: tests/…/test_collaborators


def test_paging_search_and_order(client, services, admin, admin_h):
    for name in ("beta", "alpha", "Gamma_1", "gamma%2"):
        services.registry.create_model(admin, name)
    got = client.get(f"{BASE}/v1", params={"orderBy": "name", "maxResults": 2}, headers=admin_h).json()
    assert [x["name"] for x in got["items"]] == ["Gamma_1", "alpha"]
    token = got["metadata"]["nextPageToken"]
    rest = client.get(
        f"{BASE}/v1", params={"orderBy": "name", "maxResults": 2, "pageToken": token}, headers=admin_h
    ).json()
    assert [x["name"] for x in rest["items"]] == ["beta", "gamma%2"] and rest["metadata"]["nextPageToken"] is None
    assert [
        x["name"] for x in client.get(f"{BASE}/v1", params={"searchPattern": "%"}, headers=admin_h).json()["items"]
    ] == ["gamma%2"]
    desc = client.get(f"{BASE}/v1", params={"orderBy": "-name"}, headers=admin_h).json()["items"]
    assert desc[0]["name"] == "gamma%2"
    for params in (
        {"orderBy": "colour"},
        {"maxResults": "0"},
        {"maxResults": "x"},
        {"pageToken": "!!"},
        {"orderBy": "name:sideways"},
    ):
        failure(client.get(f"{BASE}/v1", params=params, headers=admin_h), 400)
    failure(client.get(f"{BASE}/v1/names", params={"limit": "-1"}, headers=admin_h), 400)
    failure(client.get(f"{BASE}/v1/names", params={"modelCategory": "llm"}, headers=admin_h), 400)


def test_a_version_in_superscript_digits_is_a_400(client, admin_h):
    for path in ("/v1/pm/versions/³", "/v1/pm/versions/³/stages/validate"):
        method = client.post if path.endswith("validate") else client.patch
        assert "positive integer" in failure(method(f"{BASE}{path}", json={"targetStage": "x"}, headers=admin_h), 400)
