"""One object of each kind in a fresh database, made through the native API, and where its operations name them:
the path parameters' values and request bodies that can succeed (test_schemathesis.py, test_openapi.py)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY

API = "/api/v1"
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
SEEDED = "seeded-"  # "seeded-<key>" in a value stands for ids[key], an id the seeding generated

# The seeded objects the path parameters may name (by name, or by a "seeded-" placeholder).
NAMED = {"pk": 1, "number": 0, "name": "m", "alias": "a", "user": "bob", "project": "proj", "deployment": "dep"}
NAMED |= {"pipeline": "pipe", "project_id": "seeded-project_id", "file_id": "seeded-file_id"}
NAMED |= {"upload_id": "seeded-upload_id", "key_id": "seeded-key_id", "revision_id": "seeded-revision_id"}
NAMED |= {"export_id": "seeded-export_id", "import_id": "seeded-import_id"}
NAMED |= {"dataset_id": "seeded-dataset_id", "snapshot_id": "seeded-snapshot_id", "tag": "t", "target_id": "bob"}
PLAIN = {"input_type": "plain", "output_type": "plain"}
MODEL = {"name": "r18", "url": "https://example.com/r18", "framework": 1, "domain": "ic", "licence": "MIT"}
PIPELINE_VERSION = {
    "objects": [{"name": "o", "reference_name": "dep"}],
    "attachments": [
        {"destination_name": "o", "sources": [{"source_name": "pipeline_start"}]},
        {"destination_name": "pipeline_end", "sources": [{"source_name": "o"}]},
    ],
}
D, V, PL = "/projects/{project}/deployments/{deployment}", "/versions/{version}", "/projects/{project}/pipelines"
VAR = "/environment-variables"
# Request bodies that can succeed, as examples (random bodies rarely name real objects or pass every rule).
BODIES = {
    ("POST", "/files/{file_id}/links"): {"expires_in": 60},
    ("POST", "/uploads"): {"name": "x.bin", "total_chunks": 1},
    ("POST", "/keys"): {"name": "k"},
    ("POST", "/users"): {"username": "carol", "password": "correct horse battery"},
    ("PUT", "/users/{user}/password"): {"password": "correct horse battery"},
    ("POST", "/catalogue/frameworks"): {"name": "fw", "version": "1"},
    ("POST", "/catalogue/licences"): {"name": "Licence X", "url": "https://example.com/l"},
    ("POST", "/catalogue/models"): MODEL,
    ("POST", "/catalogue/models/search"): {"expressions": [], "include_inactive": True},
    ("PUT", "/catalogue/models/{pk}"): MODEL,
    ("PATCH", "/catalogue/models/{pk}"): {"description": "d"},
    ("POST", "/catalogue/models/{pk}/data/from-file"): {"file_id": "seeded-file_id"},
    ("POST", "/models"): {"name": "m2"},
    ("PATCH", "/models/{name}"): {"description": "d"},
    ("POST", "/models/{name}/versions"): {"files": [{"path": "data.bin", "file_id": "seeded-spare_file_id"}]},
    ("PATCH", "/models/{name}/versions/{version}"): {"description": "d"},
    ("POST", "/models/{name}/versions/{version}/stage"): {"stage": "Staging"},
    ("PUT", "/models/{name}/aliases/{alias}"): {"version": 1},
    ("POST", "/projects"): {"name": "proj2"},
    ("PUT", "/projects/{project_id}/collaborators/{user}"): {"role": "Contributor"},
    ("PUT", "/projects/{project_id}/stages"): {"stages": ["None", "Staging", "Production", "Archived", "QA"]},
    ("POST", "/projects/{project}/deployments"): {"name": "dep2", **PLAIN},
    ("PATCH", D): {"description": "d"},
    ("POST", D + "/versions"): {"version": "v2"},
    ("PATCH", D + V): {"description": "d"},
    ("POST", "/projects/{project}" + VAR): {"name": "B", "value": "2"},
    ("POST", D + VAR): {"name": "B", "value": "2"},
    ("POST", D + V + VAR): {"name": "B", "value": "2"},
    ("PATCH", "/projects/{project}" + VAR + "/{var_id}"): {"value": "3"},
    ("PATCH", D + VAR + "/{var_id}"): {"value": "3"},
    ("PATCH", D + V + VAR + "/{var_id}"): {"value": "3"},
    ("POST", PL): {"name": "pipe2", **PLAIN},
    ("POST", PL + "/{pipeline}/versions"): {"version": "v2", **PIPELINE_VERSION},
    ("POST", "/projects/{project}/exports"): {"all": True},
    ("POST", "/projects/{project}/imports"): {"file_id": "seeded-file_id"},
    ("POST", "/datasets"): {"project_id": "seeded-project_id", "name": "ds2"},
    ("PATCH", "/datasets/{dataset_id}"): {"description": "d"},
    ("POST", "/datasets/{dataset_id}/grants"): {"target_id": "bob", "role": "DatasetRwReader"},
    ("POST", "/datasets/{dataset_id}/snapshots"): {"paths": []},
    ("PUT", "/datasets/{dataset_id}/tags/{tag}"): {"snapshot_id": "seeded-snapshot_id"},
}


def example(path: str, name: str, schema: dict[str, Any]) -> Any:
    """The seeded object a path parameter of ``path`` may name (None: nothing is seeded for it)."""
    if name == "version":  # a registered model's number, or the name of a deployment's or pipeline's version
        return 1 if schema.get("type") == "integer" else "v1"
    if name == "var_id":  # a variable of the project, of the deployment or of its version
        return f"seeded-{'version_var_id' if V in path else 'dep_var_id' if D in path else 'var_id'}"
    return NAMED.get(name)


def seeded(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with its "seeded-" placeholders replaced by the ids they stand for."""
    if isinstance(value, str) and value.startswith(SEEDED) and value[len(SEEDED) :] in ids:
        return ids[value[len(SEEDED) :]]
    if isinstance(value, dict):
        return {k: seeded(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [seeded(v, ids) for v in value]
    return value


def seed(client: TestClient, services) -> dict[str, str]:
    """One object of each kind (the names ``NAMED`` gives), made through the API; the ids they were given."""

    def ok(resp) -> dict[str, Any]:
        assert resp.status_code in (200, 201, 202), (resp.request.url, resp.status_code, resp.text)
        return resp.json()

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return ok(client.post(API + path, json=body, headers=AUTH))

    def upload(name: str, data: bytes) -> dict[str, Any]:
        return ok(client.post(f"{API}/files", params={"name": name}, content=data, headers=AUTH))

    file, spare, mlmodel = upload("seed.bin", b"0123456789"), upload("spare.bin", b"x"), upload("MLmodel", b"{}\n")
    session = post("/uploads", {"name": "one.bin", "total_chunks": 1})
    ok(client.put(f"{API}/uploads/{session['id']}/chunks/0", content=b"one", headers=AUTH))
    key = post("/keys", {"name": "seed"})
    assert post("/catalogue/models", MODEL)["pk"] == NAMED["pk"]
    ok(client.put(f"{API}/catalogue/models/1/data", content=b"weights", headers=AUTH))
    files = [{"path": "MLmodel", "file_id": mlmodel["id"]}]
    assert post("/models/m/versions", {"files": files, "create_model": True, "aliases": ["a"]})["version"] == 1
    services.identity.create_user(services.identity.authenticate_key(ADMIN_KEY), "bob", role="member")
    project = post("/projects", {"name": "proj"})
    post("/projects/proj/deployments", {"name": "dep", **PLAIN})
    post("/projects/proj/deployments/dep/versions", {"version": "v1"})
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("deployment.py", "class Deployment:\n    def request(self, data):\n        return data\n")
    revision = ok(
        client.put(f"{API}/projects/proj/deployments/dep/versions/v1/package", content=package.getvalue(), headers=AUTH)
    )
    var = post("/projects/proj/environment-variables", {"name": "A", "value": "1"})
    dep_var = post("/projects/proj/deployments/dep/environment-variables", {"name": "A", "value": "1"})
    version_var = post("/projects/proj/deployments/dep/versions/v1/environment-variables", {"name": "A", "value": "1"})
    post("/projects/proj/pipelines", {"name": "pipe", **PLAIN})
    post("/projects/proj/pipelines/pipe/versions", {"version": "v1", **PIPELINE_VERSION})
    export = post("/projects/proj/exports", {"all": True})
    imported = post("/projects/proj/imports", {"file_id": file["id"]})
    dataset = post("/datasets", {"project_id": project["id"], "name": "ds"})
    ok(client.put(f"{API}/datasets/{dataset['id']}/files", params={"path": "a.txt"}, content=b"a", headers=AUTH))
    snapshot = post(f"/datasets/{dataset['id']}/snapshots", {})
    ok(client.put(f"{API}/datasets/{dataset['id']}/tags/t", json={"snapshot_id": snapshot["id"]}, headers=AUTH))
    post(f"/datasets/{dataset['id']}/grants", {"target_id": "bob", "role": "DatasetRwReader"})
    return {
        "file_id": file["id"],
        "spare_file_id": spare["id"],
        "upload_id": session["id"],
        "key_id": key["id"],
        "project_id": project["id"],
        "var_id": var["id"],
        "dep_var_id": dep_var["id"],
        "version_var_id": version_var["id"],
        "export_id": export["id"],
        "import_id": imported["id"],
        "revision_id": revision["id"],
        "dataset_id": dataset["id"],
        "snapshot_id": snapshot["id"],
    }
