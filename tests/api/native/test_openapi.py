"""The native API's OpenAPI document says what the server answers: its error envelope as a named schema, per
operation the error statuses it can give (no FastAPI 422), the security schemes, typed path parameters — for
routes added later too — and every status a caller without rights gets is one the document declares."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from modelharbor.api.native import create_native_app
from modelharbor.domain.principal import Role
from tests.api.native.seeding import API, BODIES, example, seed, seeded
from tests.factories import member_of_new_org

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
WRITES = {"post", "put", "patch", "delete"}


def document() -> dict:
    return create_native_app(services=None).openapi()


def fill(path: str, op: dict, ids: dict[str, str]) -> str:
    """``path`` naming the seeded objects."""
    for p in op.get("parameters", ()):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", str(seeded(example(path, p["name"], p["schema"]), ids)))
    return path


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_errors_are_the_native_envelope_never_422():
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorOut"]["properties"] == {"error": {"$ref": "#/components/schemas/ErrorBody"}}
    assert schemas["ErrorOut"]["required"] == ["error"]
    assert schemas["ErrorBody"]["required"] == ["code", "message", "details"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    count = 0
    for method, path, op in operations(doc):
        assert "422" not in op["responses"], (method, path)
        assert "401" in op["responses"], (method, path)  # every native route takes a key
        assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == ERROR and response["description"], (method, path, status)
                count += 1
    assert count > 400


def test_the_codes_follow_what_an_operation_takes_and_does():
    paths = document()["paths"]
    assert set(paths["/me"]["get"]["responses"]) == {"200", "401", "500"}
    assert set(paths["/files"]["get"]["responses"]) == {"200", "400", "401", "500"}
    assert set(paths["/files/{file_id}"]["delete"]["responses"]) == {"204", "400", "401", "403", "404", "409", "500"}
    search = paths["/catalogue/models/search"]["post"]["responses"]
    assert set(search) == {"200", "400", "401", "413", "415", "500"}  # a read, with a JSON body
    chunk = paths["/uploads/{upload_id}/chunks/{number}"]["put"]
    assert {"410", "413"} <= set(chunk["responses"])
    content = paths["/files/{file_id}/content"]["get"]
    assert set(content["responses"]) == {"200", "206", "400", "401", "403", "404", "416", "500"}
    assert content["responses"]["416"]["headers"]["Content-Range"]["required"] is True
    keys = {"200", "400", "401", "403", "404", "500"}  # all=true or username= takes an admin; an unknown username
    assert set(paths["/keys"]["get"]["responses"]) == keys
    for path in ("/projects/{project}/deployments/{deployment}/predict", "/catalogue/models/{pk}/data"):
        assert "413" in set(next(iter(paths[path].values()))["responses"]), path


def test_security_schemes_and_typed_path_parameters():
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "http", "scheme": "bearer", "description": schemes["ApiKey"]["description"]}
    assert schemes["ApiKeyToken"]["in"] == "header" and schemes["ApiKeyToken"]["name"] == "Authorization"
    assert schemes["SignedLink"]["in"] == "query" and schemes["SignedLink"]["name"] == "signature"
    assert doc["security"] == [{"ApiKey": []}, {"ApiKeyToken": []}]
    for method in ("get", "head"):
        assert {"SignedLink": []} in doc["paths"]["/files/{file_id}/content"][method]["security"]
    types = {}
    for _, path, op in operations(doc):
        for p in op.get("parameters", ()):
            if p["in"] == "path":
                types[path, p["name"]] = p["schema"]
    assert types["/models/{name}/versions/{version}", "version"]["type"] == "integer"
    assert types["/models/{name}/versions/{version}/files", "version"]["type"] == "integer"
    assert types["/catalogue/models/{pk}", "pk"]["type"] == "integer"
    assert types["/uploads/{upload_id}/chunks/{number}", "number"] == {
        "type": "integer",
        "minimum": 0,
        "title": "Number",
    }
    assert types["/projects/{project}/deployments/{deployment}/versions/{version}", "version"]["type"] == "string"


class RenameIn(BaseModel):
    name: str


def test_routes_added_later_are_described_and_answer_405_with_allow():
    app = create_native_app(services=None)
    router = APIRouter()

    @router.post("/things/{thing}/rename")
    def rename(thing: str, body: RenameIn) -> dict:
        return {}

    app.include_router(router)
    app.openapi_schema = None
    op = app.openapi()["paths"]["/things/{thing}/rename"]["post"]
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "409", "413", "415", "500"}
    assert op["responses"]["404"]["content"] == ERROR
    resp = TestClient(app).get("/things/x/rename")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    assert resp.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@sqlite_only
def test_the_version_of_a_registered_model_is_validated_as_an_integer(client, services):
    seed(client, services)
    auth = {"authorization": f"Bearer {services.settings.admin_key}"}
    bad = client.get(f"{API}/models/m/versions/one", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_INPUT"
    assert client.get(f"{API}/models/m/versions/1", headers=auth).json()["version"] == 1
    for number in ("0", "2147483648"):
        assert client.get(f"{API}/models/m/versions/{number}", headers=auth).status_code == 404


@sqlite_only
@pytest.mark.parametrize("who", ["nobody", "viewer", "outsider"])
def test_callers_without_rights_get_declared_answers(client, services, admin, who):
    """Every operation, with seeded objects and bodies that could succeed, asked by no key, by a viewer of the
    organisation and by a member of another one: every answer's status is one the operation declares."""
    ids = seed(client, services)
    if who == "viewer":
        services.identity.create_user(admin, "viewer", role=Role.VIEWER)
        headers = {
            "authorization": f"Bearer {services.identity.create_key(services.identity.principal_for('viewer'), 'k').secret}"
        }
    elif who == "outsider":
        headers = {"authorization": f"Bearer {services.identity.create_key(member_of_new_org(services), 'k').secret}"}
    else:
        headers = {}
    doc = client.get(f"{API}/openapi.json").json()
    statuses, undeclared, seen = [], [], []
    for method, path, op in operations(doc):
        url = API + fill(path, op, ids)
        content = op.get("requestBody", {}).get("content", {})
        kw = {"params": {p["name"]: "x" for p in op.get("parameters", ()) if p["in"] == "query" and p["required"]}}
        if "application/json" in content:
            kw["json"] = seeded(BODIES.get((method.upper(), path), {}), ids)
        elif content:
            kw["content"], kw["headers"] = b"bytes", {**headers, "content-type": next(iter(content))}
        resp = client.request(method.upper(), url, headers=kw.pop("headers", headers), **kw)
        statuses.append(resp.status_code)
        seen.append((method.upper(), path, resp.status_code, resp.text[:100]))
        if str(resp.status_code) not in op["responses"]:
            undeclared.append((method.upper(), path, resp.status_code, resp.text[:200]))
    assert not undeclared, undeclared
    if who == "nobody":
        assert set(statuses) == {401}, [answer for answer in seen if answer[2] != 401]
    elif who == "viewer":
        assert statuses.count(403) > 30 and 200 in statuses
    else:
        assert statuses.count(404) > len(statuses) / 2
