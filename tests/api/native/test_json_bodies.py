"""The native API's JSON bodies: taken without a Content-Type, refused with a 415 that names the header when sent
as another type, and a body that is not JSON answered with its line and column — in the native error shape."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the edge, not the database

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def _post(client, body: bytes, content_type: str | None, path: str = "/api/v1/projects"):
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    return client.post(path, content=body, headers=headers)


def _names(client) -> list[str]:
    listed = client.get("/api/v1/projects", headers=AUTH).json()
    return [p["name"] for p in (listed["items"] if isinstance(listed, dict) else listed)]


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "application/json; charset=utf-8", "text/json", "x/y+json"]
)
def test_a_json_body_is_taken_with_a_json_type_or_none(client, content_type):
    answer = _post(client, b'{"name": "p1", "description": "d"}', content_type)
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "p1" and answer.json()["description"] == "d"
    assert client.get(f"/api/v1/projects/{answer.json()['id']}", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_another_type_is_a_415_that_names_the_header(client, content_type):
    answer = _post(client, b'{"name": "p1"}', content_type)
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert set(answer.json()) == {"error"} and error["code"] == "UNSUPPORTED_TYPE"
    assert "Content-Type: application/json" in error["message"] and repr(content_type) in error["message"]
    assert error["details"] == {"content_type": content_type}
    if content_type.startswith("application/x-www-form-urlencoded"):  # what curl -d sends
        assert "curl --json" in error["message"]
    assert _names(client) == []  # nothing was created


def test_a_415_only_for_a_body(client):
    """A route whose body is optional takes an empty one whatever its type says."""
    answer = client.post(
        "/api/v1/keys", content=b"", headers={**AUTH, "content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code in (400, 201), answer.text
    assert answer.status_code != 415


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_invalid_json_names_its_line_and_column(client, content_type):
    body = b'{\n  "name": "p2",\n  "x" 1\n}'
    answer = _post(client, body, content_type)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["message"] == "Invalid JSON at line 3, column 7: Expecting ':' delimiter"
    answer = _post(client, b'{"name": "p2" "description": "d"}', content_type)
    assert answer.json()["error"]["message"] == "Invalid JSON at line 1, column 15: Expecting ',' delimiter"


def test_the_document_declares_the_415_where_a_json_body_is_taken(client):
    doc = client.get("/api/v1/openapi.json").json()
    create = doc["paths"]["/projects"]["post"]["responses"]
    assert "415" in create and "application/json" in create["415"]["description"]
    chunk = doc["paths"]["/uploads/{upload_id}/chunks/{number}"]["put"]["responses"]
    assert "415" not in chunk  # raw bytes: any type
