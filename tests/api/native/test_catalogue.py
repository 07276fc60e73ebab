"""Native API /api/v1/catalogue: models (filters, fields, lifecycle), their data (streamed, ranged, from a file
id), reference data, and who may do what."""

from __future__ import annotations

import hashlib
import os

import pytest

from modelharbor.domain.principal import Role
from tests.factories import member_of_new_org

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
API = "/api/v1/catalogue"
MiB = 1024 * 1024
BASE = {"name": "resnet18", "url": "https://example.com/r18", "framework": 1, "domain": "ic", "licence": "MIT"}
MODEL_KEYS = {
    "pk",
    "name",
    "url",
    "description",
    "metadata",
    "framework",
    "domain",
    "licence",
    "data",
    "creator_id",
    "creation_time",
    "deletion_time",
}


@pytest.fixture
def auth(services) -> dict[str, str]:
    return bearer(services.settings.admin_key)


@pytest.fixture
def member(services, admin) -> dict[str, str]:
    """Bearer headers of a plain member of the admin's organisation (may read, not change, the catalogue)."""
    services.identity.create_user(admin, "m", role=Role.MEMBER)
    return bearer(services.identity.create_key(services.identity.principal_for("m"), "k").secret)


@pytest.fixture
def outsider(services) -> dict[str, str]:
    """Bearer headers of the owner of another organisation."""
    return bearer(services.identity.create_key(member_of_new_org(services), "k").secret)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def native_error(resp, status: int, code: str) -> dict:
    """Assert the native error envelope ``{"error": {"code", "message", "details"}}``; return the error."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def stored_objects(services, prefix: str = "") -> list[str]:
    root = services.store.root
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def uploaded(client, auth, data: bytes, name: str) -> dict:
    resp = client.post("/api/v1/files", params={"name": name}, content=data, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def create(client, auth, **fields) -> dict:
    resp = client.post(f"{API}/models", json={**BASE, **fields}, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def names(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [m["name"] for m in resp.json()]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces(data: bytes, size: int = MiB):
    for i in range(0, len(data), size):
        yield data[i : i + size]


# --- models ----------------------------------------------------------------------------------------


def test_create_get_and_list(client, auth, admin):
    made = create(client, auth, description="ResNet-18", metadata='{"top1": 0.69}')
    assert set(made) == MODEL_KEYS
    assert made["name"] == "resnet18" and made["url"] == BASE["url"]
    assert (made["description"], made["metadata"]) == ("ResNet-18", '{"top1": 0.69}')
    assert made["framework"] == {"pk": 1, "name": "tensorflow", "version": "1.14"}
    assert made["domain"] == {"pk": 1, "name": "ic", "description": "Image Classification"}
    assert set(made["licence"]) == {"pk", "name", "url"} and made["licence"]["name"] == "MIT"
    assert made["data"] is None and made["deletion_time"] is None
    assert made["creator_id"] == admin.user_id and made["creation_time"]

    assert client.get(f"{API}/models/{made['pk']}", headers=auth).json() == made
    assert client.get(f"{API}/models", headers=auth).json() == [made]
    assert client.post(f"{API}/models/search", headers=auth).json() == [made]  # no body: everything


def test_list_query_filters(client, auth):
    create(client, auth, name="ResNet18", framework=5, domain="ic")
    create(client, auth, name="resnet50", framework=4, domain="od", licence="Apache 2.0")
    gone = create(client, auth, name="yolo", framework=10, domain="od")
    client.delete(f"{API}/models/{gone['pk']}", headers=auth)

    def listed(**query):
        return names(client.get(f"{API}/models", params=query, headers=auth))

    assert listed() == ["ResNet18", "resnet50"]
    assert listed(include_inactive="true") == ["ResNet18", "resnet50", "yolo"]
    assert listed(name_contains="RESNET") == ["ResNet18", "resnet50"]
    assert listed(name_contains="50") == ["resnet50"]
    assert listed(framework="4") == ["resnet50"]
    assert listed(framework="mmclassification") == ["ResNet18", "resnet50"]
    assert listed(domain="od", include_inactive="true") == ["resnet50", "yolo"]
    assert listed(licence="MIT") == ["ResNet18"]
    assert listed(licence="Apache 2.0", domain="ic") == []
    assert listed(domain="zz") == []


def test_search_with_a_filter_spec(client, auth):
    create(client, auth, name="ResNet18", framework=5)
    create(client, auth, name="resnet50", framework=4, domain="od", licence="Apache 2.0")
    create(client, auth, name="yolo", framework=10, domain="od")

    def search(spec):
        return names(client.post(f"{API}/models/search", json=spec, headers=auth))

    contains = {"type": "contains", "field": "name", "sub_string": "resnet", "case_insensitive": True}
    assert search({"expressions": [contains], "order_by": [{"field": "name", "ascending": False}]}) == [
        "resnet50",
        "ResNet18",
    ]
    assert search(
        {
            "expressions": [
                {
                    "type": "or",
                    "sub_expressions": [
                        {"type": "exact", "field": "licence.name", "value": "Apache 2.0"},
                        {"type": "compare", "field": "framework", "operator": ">=", "value": 10},
                    ],
                }
            ]
        }
    ) == ["resnet50", "yolo"]
    assert search({"expressions": [{"type": "isnull", "field": "data", "invert": True}]}) == []


@sqlite_only
@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"expressions": [{"type": "exact", "field": "nope", "value": 1}]}, "'nope'"),
        ({"order_by": [{"field": "colour"}]}, "'colour'"),
        ({"expressions": [{"type": "exact", "field": "pk", "value": "abc"}]}, "'pk'"),
        ({"expressions": [{"type": "contains", "field": "data", "sub_string": "x"}]}, "'data'"),
        ({"expressions": [{"type": "regex", "field": "name", "value": "x"}]}, "'regex'"),
        ({"include_inactive": "yes"}, "include_inactive"),
        ([], "JSON object"),
    ],
)
def test_bad_filter_is_400_naming_the_problem(client, auth, spec, needle):
    err = native_error(client.post(f"{API}/models/search", json=spec, headers=auth), 400, "INVALID_FILTER")
    assert needle in err["message"]


@sqlite_only
def test_malformed_search_body(client, auth):
    resp = client.post(f"{API}/models/search", content=b"{", headers={**auth, "content-type": "application/json"})
    native_error(resp, 400, "INVALID_INPUT")


@sqlite_only
@pytest.mark.parametrize(
    "change,field,message",
    [
        ({"framework": 999}, "framework", 'Invalid pk "999" - object does not exist.'),
        ({"framework": {"pk": 1}}, "framework", "Incorrect type. Expected pk value, received dict."),
        ({"domain": "zz"}, "domain", "Object with name=zz does not exist."),
        ({"licence": "WTFPL"}, "licence", "Object with name=WTFPL does not exist."),
        ({"name": ""}, "name", "This field may not be blank."),
        ({"url": "u" * 201}, "url", "Ensure this field has no more than 200 characters."),
        ({"metadata": None}, "metadata", "This field may not be null."),
    ],
)
def test_field_errors(client, auth, services, change, field, message):
    resp = client.post(f"{API}/models", json={**BASE, **change}, headers=auth)
    err = native_error(resp, 400, "INVALID_FIELDS")
    assert err["details"]["fields"] == {field: [message]}
    assert services.catalogue.list_models(services.identity.authenticate_key(services.settings.admin_key)) == []


@sqlite_only
def test_field_errors_list_every_field(client, auth):
    err = native_error(client.post(f"{API}/models", json={}, headers=auth), 400, "INVALID_FIELDS")
    assert set(err["details"]["fields"]) == {"name", "url", "framework", "domain", "licence"}
    assert err["details"]["fields"]["name"] == ["This field is required."]
    err = native_error(client.post(f"{API}/models", json=[1], headers=auth), 400, "INVALID_FIELDS")
    assert err["details"]["fields"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    native_error(client.post(f"{API}/models", headers=auth), 400, "INVALID_INPUT")  # no body at all


def test_patch_and_put(client, auth):
    made = create(client, auth, description="d")
    resp = client.patch(f"{API}/models/{made['pk']}", json={"name": "renamed", "domain": "od"}, headers=auth)
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert (patched["name"], patched["domain"]["name"], patched["url"], patched["description"]) == (
        "renamed",
        "od",
        made["url"],
        "d",
    )
    err = native_error(
        client.put(f"{API}/models/{made['pk']}", json={"name": "x"}, headers=auth), 400, "INVALID_FIELDS"
    )
    assert set(err["details"]["fields"]) == {"url", "framework", "domain", "licence"}
    full = {**BASE, "name": "v2", "framework": 3, "licence": "Apache 2.0"}
    resp = client.put(f"{API}/models/{made['pk']}", json=full, headers=auth)
    assert resp.status_code == 200, resp.text
    put = resp.json()
    assert (put["name"], put["framework"]["name"], put["licence"]["name"]) == ("v2", "pytorch", "Apache 2.0")
    assert put["description"] == "d"  # optional fields not sent keep their value
    err = native_error(
        client.patch(f"{API}/models/{made['pk']}", json={"framework": "x"}, headers=auth), 400, "INVALID_FIELDS"
    )
    assert list(err["details"]["fields"]) == ["framework"]
    assert client.get(f"{API}/models/{made['pk']}", headers=auth).json() == put


@sqlite_only
def test_unknown_and_malformed_pk(client, auth, services):
    for method, path, kw in [
        ("GET", "", {}),
        ("PATCH", "", {"json": {"name": "x"}}),
        ("PUT", "", {"json": BASE}),
        ("DELETE", "", {}),
        ("DELETE", "?hard=true", {}),
        ("POST", "/reinstate", {}),
        ("PUT", "/data", {"content": b"bytes"}),
        ("POST", "/data/from-file", {"json": {"file_id": "0" * 24}}),
        ("DELETE", "/data", {}),
        ("GET", "/data", {}),
    ]:
        for pk in ("999", "2147483648", "0"):
            err = native_error(client.request(method, f"{API}/models/{pk}{path}", headers=auth, **kw), 404, "NOT_FOUND")
            assert "not found" in err["message"], (method, path, err)
    assert client.head(f"{API}/models/999/data", headers=auth).status_code == 404
    # a pk is digits ({pk:int}): anything else names no model route, and /models/search takes only POST
    native_error(client.get(f"{API}/models/abc", headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"{API}/models/-1", headers=auth), 404, "NOT_FOUND")
    wrong = client.put(f"{API}/models/search", json=BASE, headers=auth)
    native_error(wrong, 405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "POST"
    assert stored_objects(services) == []


@sqlite_only
def test_needs_a_key(client):
    native_error(client.get(f"{API}/models"), 401, "UNAUTHENTICATED")
    native_error(client.put(f"{API}/models/1/data", content=b"x"), 401, "UNAUTHENTICATED")


# --- lifecycle -------------------------------------------------------------------------------------


def test_soft_delete_reinstate_and_hard_delete(client, auth, services):
    keep, made = create(client, auth, name="keep"), create(client, auth, name="goner")
    pk = made["pk"]
    assert client.put(f"{API}/models/{pk}/data", content=b"weights", headers=auth).status_code == 200

    resp = client.delete(f"{API}/models/{pk}", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["deletion_time"] is not None
    assert names(client.get(f"{API}/models", headers=auth)) == ["keep"]
    assert names(client.get(f"{API}/models?include_inactive=true", headers=auth)) == ["keep", "goner"]
    assert client.get(f"{API}/models/{pk}", headers=auth).json()["deletion_time"] is not None
    assert client.get(f"{API}/models/{pk}/data", headers=auth).content == b"weights"  # the data stays
    again = client.delete(f"{API}/models/{pk}", headers=auth).json()
    assert again["deletion_time"] == resp.json()["deletion_time"]  # deleting twice keeps the first time

    resp = client.post(f"{API}/models/{pk}/reinstate", headers=auth)
    assert resp.status_code == 200 and resp.json()["deletion_time"] is None
    assert names(client.get(f"{API}/models", headers=auth)) == ["keep", "goner"]

    assert len(stored_objects(services, "objects")) == 1
    resp = client.delete(f"{API}/models/{pk}?hard=true", headers=auth)
    assert resp.status_code == 200 and resp.json()["name"] == "goner"
    native_error(client.get(f"{API}/models/{pk}", headers=auth), 404, "NOT_FOUND")
    native_error(client.post(f"{API}/models/{pk}/reinstate", headers=auth), 404, "NOT_FOUND")
    assert names(client.get(f"{API}/models?include_inactive=true", headers=auth)) == ["keep"]
    assert stored_objects(services, "objects") == []  # the data went with it
    assert client.get(f"{API}/models/{keep['pk']}", headers=auth).status_code == 200


# --- data ------------------------------------------------------------------------------------------


def test_data_round_trip_with_ranges(client, auth, services):
    made = create(client, auth)
    pk = made["pk"]
    native_error(client.get(f"{API}/models/{pk}/data", headers=auth), 404, "NO_DATA")
    head = client.head(f"{API}/models/{pk}/data", headers=auth)
    assert head.status_code == 404 and head.content == b""

    data = os.urandom(20 * MiB + 321)
    resp = client.put(f"{API}/models/{pk}/data?filename=resnet18.pth", content=pieces(data), headers=auth)
    assert resp.status_code == 200, resp.text
    model = resp.json()
    assert set(model["data"]) == {"file_id", "size", "sha256"}
    assert (model["data"]["size"], model["data"]["sha256"]) == (len(data), sha(data))
    assert client.get(f"{API}/models/{pk}", headers=auth).json()["data"] == model["data"]

    resp = client.get(f"{API}/models/{pk}/data", headers=auth)
    assert resp.status_code == 200
    assert sha(resp.content) == sha(data)
    assert resp.headers["content-length"] == str(len(data))
    assert resp.headers["x-content-sha256"] == sha(data) and resp.headers["accept-ranges"] == "bytes"
    assert 'filename="resnet18.pth"' in resp.headers["content-disposition"]

    head = client.head(f"{API}/models/{pk}/data", headers=auth)
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(data)))

    start = 7 * MiB + 5
    parts = [client.get(f"{API}/models/{pk}/data", headers={**auth, "range": f"bytes=0-{start - 1}"})]
    parts.append(client.get(f"{API}/models/{pk}/data", headers={**auth, "range": f"bytes={start}-"}))
    assert [p.status_code for p in parts] == [206, 206]
    assert parts[1].headers["content-range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
    assert sha(parts[0].content + parts[1].content) == sha(data)
    tail = client.get(f"{API}/models/{pk}/data", headers={**auth, "range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    head = client.head(f"{API}/models/{pk}/data", headers={**auth, "range": "bytes=10-19"})
    assert (head.status_code, head.headers["content-length"], head.content) == (206, "10", b"")
    resp = client.get(f"{API}/models/{pk}/data", headers={**auth, "range": f"bytes={len(data)}-"})
    native_error(resp, 416, "RANGE_NOT_SATISFIABLE")
    assert resp.headers["content-range"] == f"bytes */{len(data)}"

    # new data replaces the old, whose bytes are removed
    resp = client.put(f"{API}/models/{pk}/data", content=b"v2", headers=auth)
    assert resp.status_code == 200 and resp.json()["data"]["sha256"] == sha(b"v2")
    assert client.get(f"{API}/models/{pk}/data", headers=auth).content == b"v2"
    assert len(stored_objects(services, "objects")) == 1

    resp = client.delete(f"{API}/models/{pk}/data", headers=auth)
    assert resp.status_code == 200 and resp.json()["data"] is None
    native_error(client.get(f"{API}/models/{pk}/data", headers=auth), 404, "NO_DATA")
    assert stored_objects(services, "objects") == []
    assert client.delete(f"{API}/models/{pk}/data", headers=auth).json()["data"] is None  # idempotent


def test_data_from_an_uploaded_file(client, auth, services):
    pk = create(client, auth)["pk"]
    data = os.urandom(100_000)
    f = uploaded(client, auth, data, "weights.safetensors")
    resp = client.post(f"{API}/models/{pk}/data/from-file", json={"file_id": f["id"]}, headers=auth)
    assert resp.status_code == 200, resp.text
    got = resp.json()["data"]
    assert (got["size"], got["sha256"]) == (len(data), f["sha256"]) and got["file_id"] != f["id"]
    assert len(stored_objects(services, "objects")) == 1  # the bytes are shared, not copied

    assert client.delete(f"/api/v1/files/{f['id']}", headers=auth).status_code == 204  # the user's copy goes
    resp = client.get(f"{API}/models/{pk}/data", headers=auth)
    assert resp.content == data
    assert 'filename="weights.safetensors"' in resp.headers["content-disposition"]

    native_error(
        client.post(f"{API}/models/{pk}/data/from-file", json={"file_id": f["id"]}, headers=auth), 404, "NOT_FOUND"
    )
    assert client.get(f"{API}/models/{pk}", headers=auth).json()["data"] == got  # unchanged


@sqlite_only
@pytest.mark.parametrize(
    "body,fields",
    [
        ({}, {"file_id": ["This field is required."]}),
        ({"file_id": 5}, {"file_id": ["Expected the id of an uploaded file."]}),
        ({"file_id": " "}, {"file_id": ["Expected the id of an uploaded file."]}),
        ("abc", {"non_field_errors": ["Invalid data. Expected a dictionary."]}),
    ],
)
def test_data_from_file_field_errors(client, auth, body, fields):
    pk = create(client, auth)["pk"]
    resp = client.post(f"{API}/models/{pk}/data/from-file", json=body, headers=auth)
    assert native_error(resp, 400, "INVALID_FIELDS")["details"]["fields"] == fields


@sqlite_only
def test_data_bad_filename(client, auth, services):
    pk = create(client, auth)["pk"]
    resp = client.put(f"{API}/models/{pk}/data?filename=tab%09here.bin", content=b"x", headers=auth)
    native_error(resp, 400, "INVALID_INPUT")
    assert client.get(f"{API}/models/{pk}", headers=auth).json()["data"] is None
    assert stored_objects(services) == []


# --- reference data --------------------------------------------------------------------------------


def test_reference_data(client, auth):
    frameworks = client.get(f"{API}/frameworks", headers=auth).json()
    assert len(frameworks) == 15 and frameworks[0] == {"pk": 1, "name": "tensorflow", "version": "1.14"}
    assert [d["name"] for d in client.get(f"{API}/domains", headers=auth).json()] == ["ic", "od", "is", "sp", "sc"]
    licences = client.get(f"{API}/licences", headers=auth).json()
    mit = next(lic for lic in licences if lic["name"] == "MIT")
    assert set(mit) == {"pk", "name", "url", "permissions", "conditions", "limitations", "domains"}

    resp = client.post(f"{API}/frameworks", json={"name": "jax", "version": "0.4"}, headers=auth)
    assert resp.status_code == 201, resp.text
    jax = resp.json()
    assert jax["name"] == "jax" and jax in client.get(f"{API}/frameworks", headers=auth).json()
    native_error(
        client.post(f"{API}/frameworks", json={"name": "jax", "version": "0.4"}, headers=auth), 409, "DUPLICATE"
    )
    assert create(client, auth, framework=jax["pk"])["framework"] == jax

    resp = client.post(f"{API}/licences", json={"name": "WTFPL", "url": "http://www.wtfpl.net/"}, headers=auth)
    assert resp.status_code == 201, resp.text
    assert resp.json()["permissions"] == []
    assert create(client, auth, licence="WTFPL")["licence"]["name"] == "WTFPL"
    native_error(
        client.post(f"{API}/licences", json={"name": "MIT", "url": "https://x"}, headers=auth), 409, "DUPLICATE"
    )


@sqlite_only
@pytest.mark.parametrize(
    "path,body,fields",
    [
        ("frameworks", {"name": "jax"}, {"version": ["This field is required."]}),
        ("frameworks", {"name": "", "version": "x" * 33}, None),
        ("licences", {"name": "X", "url": "ftp://x"}, {"url": ["Enter a valid URL."]}),
        ("licences", [], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
def test_reference_field_errors(client, auth, path, body, fields):
    err = native_error(client.post(f"{API}/{path}", json=body, headers=auth), 400, "INVALID_FIELDS")
    if fields is None:
        assert set(err["details"]["fields"]) == {"name", "version"}
    else:
        assert err["details"]["fields"] == fields


# --- permissions -----------------------------------------------------------------------------------


def test_members_read_but_do_not_write(client, auth, member, services):
    made = create(client, auth)
    pk = made["pk"]
    client.put(f"{API}/models/{pk}/data", content=b"weights", headers=auth)
    made = client.get(f"{API}/models/{pk}", headers=auth).json()

    assert client.get(f"{API}/models", headers=member).json() == [made]
    assert client.post(f"{API}/models/search", json={}, headers=member).json() == [made]
    assert client.get(f"{API}/models/{pk}", headers=member).json() == made
    assert client.get(f"{API}/models/{pk}/data", headers=member).content == b"weights"
    for path in ("frameworks", "licences", "domains"):
        assert client.get(f"{API}/{path}", headers=member).status_code == 200
    f = uploaded(client, member, b"mine", "mine.bin")  # members may upload files, but not attach them

    for method, path, kw in [
        ("POST", "/models", {"json": BASE}),
        ("PATCH", f"/models/{pk}", {"json": {"name": "x"}}),
        ("PUT", f"/models/{pk}", {"json": BASE}),
        ("DELETE", f"/models/{pk}", {}),
        ("DELETE", f"/models/{pk}?hard=true", {}),
        ("POST", f"/models/{pk}/reinstate", {}),
        ("PUT", f"/models/{pk}/data", {"content": b"evil"}),
        ("POST", f"/models/{pk}/data/from-file", {"json": {"file_id": f["id"]}}),
        ("DELETE", f"/models/{pk}/data", {}),
        ("POST", "/frameworks", {"json": {"name": "jax", "version": "1"}}),
        ("POST", "/licences", {"json": {"name": "X", "url": "https://x"}}),
    ]:
        err = native_error(client.request(method, API + path, headers=member, **kw), 403, "FORBIDDEN")
        assert "member" in err["message"] or "superuser" in err["message"], (method, path)
    assert client.get(f"{API}/models/{pk}", headers=auth).json() == made  # nothing changed
    assert client.get(f"{API}/models/{pk}/data", headers=auth).content == b"weights"
    assert len(client.get(f"{API}/frameworks", headers=auth).json()) == 15


def test_other_organisations_see_nothing(client, auth, outsider):
    made = create(client, auth)
    pk = made["pk"]
    client.put(f"{API}/models/{pk}/data", content=b"weights", headers=auth)

    assert client.get(f"{API}/models?include_inactive=true", headers=outsider).json() == []
    assert client.post(f"{API}/models/search", json={}, headers=outsider).json() == []
    for method, path, kw in [
        ("GET", "", {}),
        ("GET", "/data", {}),
        ("PATCH", "", {"json": {"name": "x"}}),
        ("PUT", "", {"json": BASE}),
        ("DELETE", "", {}),
        ("DELETE", "?hard=true", {}),
        ("POST", "/reinstate", {}),
        ("PUT", "/data", {"content": b"evil"}),
        ("DELETE", "/data", {}),
    ]:
        native_error(client.request(method, f"{API}/models/{pk}{path}", headers=outsider, **kw), 404, "NOT_FOUND")
    assert client.head(f"{API}/models/{pk}/data", headers=outsider).status_code == 404
    # nor can they attach one of our files to a model of their own
    theirs = create(client, outsider)
    mine = uploaded(client, auth, b"ours", "ours.bin")
    resp = client.post(f"{API}/models/{theirs['pk']}/data/from-file", json={"file_id": mine["id"]}, headers=outsider)
    native_error(resp, 404, "NOT_FOUND")
    assert [m["pk"] for m in client.get(f"{API}/models", headers=auth).json()] == [pk]
    assert client.get(f"{API}/models/{pk}", headers=auth).json()["name"] == made["name"]
    assert client.get(f"{API}/models/{pk}/data", headers=auth).content == b"weights"
