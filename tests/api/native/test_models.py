"""Native API /api/v1/models: registered models, versions (registered from uploaded files), aliases, stages,
version files downloaded through the files API, and who may see and do what."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest

from modelharbor.core.registry import MAX_VERSION_FILES
from modelharbor.domain.principal import Role
from tests.factories import member_of_new_org

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
API = "/api/v1/models"
MODEL_KEYS = {
    "name",
    "description",
    "tags",
    "aliases",
    "latest_versions",
    "project_id",
    "creator_id",
    "creation_time",
    "last_updated_time",
}
VERSION_KEYS = {
    "name",
    "version",
    "description",
    "source",
    "run_id",
    "run_link",
    "model_id",
    "current_stage",
    "status",
    "tags",
    "aliases",
    "creator_id",
    "creation_time",
    "last_updated_time",
}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def auth(services) -> dict[str, str]:
    return bearer(services.settings.admin_key)


@pytest.fixture
def viewer(services, admin) -> dict[str, str]:
    services.identity.create_user(admin, "v", role=Role.VIEWER)
    return bearer(services.identity.create_key(services.identity.principal_for("v"), "k").secret)


@pytest.fixture
def outsider(services) -> dict[str, str]:
    return bearer(services.identity.create_key(member_of_new_org(services), "k").secret)


def native_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def url(name: str, rest: str = "") -> str:
    return f"{API}/{quote(name, safe='')}{rest}"


def uploaded(client, auth, data: bytes, name: str) -> dict:
    resp = client.post("/api/v1/files", params={"name": name}, content=data, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def register(client, auth, name: str, files: dict[str, bytes], **body) -> dict:
    ids = [{"path": p, "file_id": uploaded(client, auth, data, p)["id"]} for p, data in files.items()]
    resp = client.post(url(name, "/versions"), json={"files": ids, "create_model": True, **body}, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- registered models ------------------------------------------------------------------------------
def test_create_get_update_list_delete(client, auth, admin):
    made = ok(client.post(API, json={"name": "iris lr", "description": "d", "tags": {"team": "ml"}}, headers=auth), 201)
    assert set(made) == MODEL_KEYS
    assert (made["name"], made["description"], made["tags"], made["aliases"]) == ("iris lr", "d", {"team": "ml"}, {})
    assert made["latest_versions"] == [] and made["creator_id"] == admin.user_id
    assert ok(client.get(url("iris lr"), headers=auth)) == made
    native_error(client.post(API, json={"name": "iris lr"}, headers=auth), 409, "CONFLICT")

    patched = ok(client.patch(url("iris lr"), json={"description": "new"}, headers=auth))
    assert patched["description"] == "new"
    listed = ok(client.get(API, headers=auth))
    assert [m["name"] for m in listed["models"]] == ["iris lr"] and listed["next_page_token"] is None

    assert client.delete(url("iris lr"), headers=auth).status_code == 204
    native_error(client.get(url("iris lr"), headers=auth), 404, "NOT_FOUND")
    native_error(client.delete(url("iris lr"), headers=auth), 404, "NOT_FOUND")


def test_names_with_any_character_mlflow_allows(client, auth):
    names = ["a b", "100% model", "q?x#y&z=1", "ünïcødé", "tab-less_[x]", "a+b", "dots.in.name", "x'y\"z", "a\\b"]
    for name in names:
        ok(client.post(API, json={"name": name}, headers=auth), 201)
        assert ok(client.get(url(name), headers=auth))["name"] == name
        v = register(client, auth, name, {"MLmodel": name.encode()})
        assert v["name"] == name
        files = ok(client.get(url(name, "/versions/1/files"), headers=auth))
        assert [f["path"] for f in files] == ["MLmodel"]
        assert ok(client.get(url(name, "/versions"), headers=auth))["versions"][0]["version"] == 1
    assert sorted(m["name"] for m in ok(client.get(API, headers=auth))["models"]) == sorted(names)
    for bad in ["a:b", "x" * 300, " ", "..", "a\nb"]:
        native_error(client.post(API, json={"name": bad}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.post(API, json={}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.post(API, json={"name": "x", "colour": 1}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.post(API, content=b"{", headers=auth), 400, "INVALID_INPUT")
    # a '/' in a name can never reach a model route
    assert client.get(f"{API}/a%2Fb", headers=auth).status_code == 404


def test_list_filters_and_pages(client, auth):
    for name, tags in [
        ("resnet_18", {"task": "ic"}),
        ("resnetX18", {"task": "od"}),
        ("ResNet-50", {"task": "ic", "team": "vision"}),
        ("bert", {"team": "nlp"}),
        ("50% off", {}),
        ("back\\slash", {}),
    ]:
        ok(client.post(API, json={"name": name, "tags": tags}, headers=auth), 201)

    def names(**params) -> list[str]:
        return [m["name"] for m in ok(client.get(API, params=params, headers=auth))["models"]]

    assert names() == ["50% off", "ResNet-50", "back\\slash", "bert", "resnetX18", "resnet_18"]
    assert names(name_contains="k\\s") == names(name_prefix="back\\") == ["back\\slash"]
    assert names(name_contains="RESNET") == ["ResNet-50", "resnetX18", "resnet_18"]
    assert names(name_contains="t_1") == ["resnet_18"]  # '_' is a character, not a wildcard
    assert names(name_contains="%") == ["50% off"]
    assert names(name_prefix="resnet") == ["resnetX18", "resnet_18"]  # exact case
    assert names(name_prefix="resnet_") == ["resnet_18"]
    assert names(tag="task=ic") == ["ResNet-50", "resnet_18"]
    assert names(tag=["task=ic", "team=vision"]) == ["ResNet-50"]
    assert names(tag="team") == ["ResNet-50", "bert"]  # has the tag, any value
    assert names(tag="team=") == []
    assert names(tag="task=ic", name_contains="50") == ["ResNet-50"]

    seen, token = [], None
    while True:
        params = {"max_results": 2, **({"page_token": token} if token else {})}
        page = ok(client.get(API, params=params, headers=auth))
        assert len(page["models"]) <= 2
        seen += [m["name"] for m in page["models"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == names()
    native_error(client.get(API, params={"page_token": "garbage"}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.get(API, params={"max_results": 0}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.get(API, params={"max_results": 1001}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.get(API, params={"tag": "=x"}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.get(API, params={"tag": "`k`=x"}, headers=auth), 400, "INVALID_INPUT")


# --- versions from files ----------------------------------------------------------------------------
def test_register_files_and_download_them_through_the_files_api(client, auth, services, admin):
    content = {"MLmodel": b"flavors: {}\n", "data/model.pkl": b"p" * 5000, "data/extra dir/ü.txt": b"u"}
    v = register(
        client,
        auth,
        "clf",
        content,
        description="first",
        tags={"team": "ml"},
        aliases=["champion"],
        model_description="a classifier",
    )
    assert set(v) == VERSION_KEYS
    assert (v["version"], v["description"], v["tags"], v["aliases"]) == (1, "first", {"team": "ml"}, ["champion"])
    assert v["source"] == f"models:/{v['model_id']}" and v["current_stage"] == "None" and v["status"] == "READY"
    model = ok(client.get(url("clf"), headers=auth))
    assert model["description"] == "a classifier" and model["aliases"] == {"champion": 1}
    assert [x["version"] for x in model["latest_versions"]] == [1]

    files = ok(client.get(url("clf", "/versions/1/files"), headers=auth))
    assert [f["path"] for f in files] == sorted(content)
    for f in files:
        data = content[f["path"]]
        assert set(f) == {"path", "size", "sha256", "file_id"}
        assert (f["size"], f["sha256"]) == (len(data), sha(data))
        got = client.get(f"/api/v1/files/{f['file_id']}/content", headers=auth)
        assert got.content == data and got.headers["x-content-sha256"] == f["sha256"]
        assert ok(client.get(f"/api/v1/files/{f['file_id']}", headers=auth))["context"] == "mlflow-artifact"
    pkl = next(f for f in files if f["path"] == "data/model.pkl")
    part = client.get(f"/api/v1/files/{pkl['file_id']}/content", headers={**auth, "range": "bytes=4000-"})
    assert part.status_code == 206 and part.content == b"p" * 1000
    link = ok(client.post(f"/api/v1/files/{pkl['file_id']}/links", json={}, headers=auth))
    assert client.get(link["url"]).content == b"p" * 5000  # no key: the signed link is enough

    # the same files are the logged model's artifacts in the MLflow dialect
    lm = ok(client.get(f"/api/2.0/mlflow/logged-models/{v['model_id']}", headers=auth))["model"]
    listed = ok(client.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": _artifact_dir(lm)}, headers=auth))
    assert sorted(e["path"] for e in listed["files"]) == ["MLmodel", "data"]
    mv = ok(client.get("/api/2.0/mlflow/model-versions/get", params={"name": "clf", "version": "1"}, headers=auth))
    assert mv["model_version"]["source"] == v["source"]

    # an alias moves with a new version registered under it
    v2 = register(client, auth, "clf", {"MLmodel": b"v2"}, aliases=["champion"], create_model=False)
    assert v2["version"] == 2 and ok(client.get(url("clf", "/aliases/champion"), headers=auth))["version"] == 2
    assert ok(client.get(url("clf", "/versions/1"), headers=auth))["aliases"] == []


def _artifact_dir(logged_model: dict) -> str:
    uri = logged_model["info"]["artifact_uri"]
    return uri.split("mlflow-artifacts:/", 1)[1]


def test_register_refuses_bad_files_and_writes_nothing(client, auth, outsider, services):
    good = uploaded(client, auth, b"good", "good.bin")
    theirs = uploaded(client, outsider, b"theirs", "theirs.bin")
    cases = [
        ([{"path": "../etc/passwd", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "/abs", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "a/../../b", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "a\\..\\b", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "a//b", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": ".", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "x" * 1100, "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "a", "file_id": "f" * 24}], 400, "INVALID_INPUT"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "b", "file_id": good["id"]}], 400, "INVALID_INPUT"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "a/b", "file_id": "f" * 24}], 400, "INVALID_INPUT"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "b", "file_id": theirs["id"]}], 404, "NOT_FOUND"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "b", "file_id": "0" * 24}], 404, "NOT_FOUND"),
        ([{"path": "a", "file_id": good["id"]}, {"path": "b", "file_id": "%00\x00"}], 404, "NOT_FOUND"),
        ([], 400, "INVALID_INPUT"),
        ([{"path": f"f{i}", "file_id": f"{i:024x}"} for i in range(MAX_VERSION_FILES + 1)], 400, "TOO_MANY_FILES"),
        ([{"path": "a"}], 400, "INVALID_INPUT"),
        ("files", 400, "INVALID_INPUT"),
    ]
    for files, status, code in cases:
        resp = client.post(url("m", "/versions"), json={"files": files, "create_model": True}, headers=auth)
        native_error(resp, status, code)
    for body, status, code in [
        ({"files": [{"path": "a", "file_id": good["id"]}]}, 404, "NOT_FOUND"),  # no such model, not asked to create
        ({"create_model": True}, 400, "INVALID_INPUT"),  # neither files nor source
        ({"files": [{"path": "a", "file_id": good["id"]}], "source": "models:/m-1"}, 400, "INVALID_INPUT"),
        ({"source": "s3://bucket/model", "create_model": True}, 400, "UNSUPPORTED_SOURCE"),
        ({"files": [{"path": "a", "file_id": good["id"]}], "aliases": ["latest"], "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "aliases": ["bad alias"], "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "tags": {"a\x00": "b"}, "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "run_id": "0" * 32, "create_model": True}, 404, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "create_model": "maybe"}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "aliases": "champion", "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "tags": "x", "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"]}], "description": 5, "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": 5}], "create_model": True}, 400, None),
        ({"files": [{"path": "a", "file_id": good["id"], "extra": 1}], "create_model": True}, 400, None),
    ]:
        resp = client.post(url("m", "/versions"), json=body, headers=auth)
        native_error(resp, status, code or ("NOT_FOUND" if status == 404 else "INVALID_INPUT"))
    bad_name = client.post(
        url("a:b", "/versions"), json={"files": [{"path": "a", "file_id": good["id"]}]}, headers=auth
    )
    native_error(bad_name, 400, "INVALID_INPUT")
    native_error(client.post(url("m", "/versions"), content=b"not json", headers=auth), 400, "INVALID_INPUT")

    assert ok(client.get(API, headers=auth))["models"] == []
    assert ok(client.get(f"/api/v1/files/{good['id']}", headers=auth))["context"] == ""
    assert ok(client.get(f"/api/v1/files/{theirs['id']}", headers=outsider))["context"] == ""
    logged = ok(client.post("/api/2.0/mlflow/logged-models/search", json={"experiment_ids": ["0"]}, headers=auth))
    assert logged.get("models", []) == []


def test_attached_files_are_in_use(client, auth):
    v = register(client, auth, "m", {"w.bin": b"weights"})
    fid = ok(client.get(url("m", "/versions/1/files"), headers=auth))[0]["file_id"]
    again = client.post(url("m", "/versions"), json={"files": [{"path": "x", "file_id": fid}]}, headers=auth)
    assert native_error(again, 409, "FILE_IN_USE")["details"]["file_id"] == fid
    assert v["version"] == 1 and ok(client.get(url("m", "/versions"), headers=auth))["versions"][0]["version"] == 1


def test_the_files_api_cannot_delete_attached_files(client, auth):
    register(client, auth, "m", {"w.bin": b"weights"})
    fid = ok(client.get(url("m", "/versions/1/files"), headers=auth))[0]["file_id"]
    native_error(client.delete(f"/api/v1/files/{fid}", headers=auth), 409, "FILE_IN_USE")


def test_versions_routes(client, auth, services, admin):
    for i in range(3):
        register(client, auth, "m", {"MLmodel": bytes([i])})
    listed = ok(client.get(url("m", "/versions"), headers=auth))
    assert [v["version"] for v in listed["versions"]] == [3, 2, 1] and listed["next_page_token"] is None
    page = ok(client.get(url("m", "/versions"), params={"max_results": 2}, headers=auth))
    assert [v["version"] for v in page["versions"]] == [3, 2]
    rest = ok(client.get(url("m", "/versions"), params={"page_token": page["next_page_token"]}, headers=auth))
    assert [v["version"] for v in rest["versions"]] == [1]

    assert ok(client.get(url("m", "/versions/2"), headers=auth))["version"] == 2
    assert ok(client.patch(url("m", "/versions/2"), json={"description": "two"}, headers=auth))["description"] == "two"
    native_error(client.patch(url("m", "/versions/2"), json={}, headers=auth), 400, "INVALID_INPUT")

    files = ok(client.get(url("m", "/versions/2/files"), headers=auth))
    assert client.delete(url("m", "/versions/2"), headers=auth).status_code == 204
    native_error(client.get(url("m", "/versions/2"), headers=auth), 404, "NOT_FOUND")
    native_error(client.get(url("m", "/versions/2/files"), headers=auth), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/files/{files[0]['file_id']}", headers=auth), 404, "NOT_FOUND")  # released
    assert register(client, auth, "m", {"MLmodel": b"new"})["version"] == 4  # numbers are never reused

    for bad, status in (("abc", 400), ("1.5", 400), ("0", 404), ("-1", 404), ("99", 404), ("99999999999", 404)):
        for method, path, kw in [
            ("GET", "", {}),
            ("PATCH", "", {"json": {"description": "x"}}),
            ("DELETE", "", {}),
            ("GET", "/files", {}),
            ("POST", "/stage", {"json": {"stage": "Staging"}}),
        ]:
            resp = client.request(method, url("m", f"/versions/{bad}{path}"), headers=auth, **kw)
            native_error(resp, status, "INVALID_INPUT" if status == 400 else "NOT_FOUND")
    for method, path, kw in [
        ("GET", "", {}),
        ("PATCH", "", {"json": {"description": "x"}}),
        ("DELETE", "", {}),
        ("GET", "/versions", {}),
        ("POST", "/versions", {"json": {"files": [{"path": "a", "file_id": "0" * 24}]}}),
        ("GET", "/versions/1", {}),
        ("GET", "/versions/1/files", {}),
        ("PATCH", "/versions/1", {"json": {"description": "x"}}),
        ("DELETE", "/versions/1", {}),
        ("POST", "/versions/1/stage", {"json": {"stage": "Staging"}}),
        ("GET", "/aliases/a", {}),
        ("PUT", "/aliases/a", {"json": {"version": 1}}),
        ("DELETE", "/aliases/a", {}),
    ]:
        native_error(client.request(method, url("nope", path), headers=auth, **kw), 404, "NOT_FOUND")
        for odd in ("a\x00b", "x" * 2000):  # never a database error
            assert client.request(method, url(odd, path), headers=auth, **kw).status_code in (400, 404)


def test_aliases_and_stages(client, auth):
    for _ in range(3):
        register(client, auth, "m", {"MLmodel": b"x"})
    assert ok(client.put(url("m", "/aliases/champion"), json={"version": 1}, headers=auth))["version"] == 1
    assert ok(client.put(url("m", "/aliases/champion"), json={"version": 2}, headers=auth))["aliases"] == ["champion"]
    assert ok(client.get(url("m", "/aliases/champion"), headers=auth))["version"] == 2
    assert ok(client.get(url("m"), headers=auth))["aliases"] == {"champion": 2}
    assert client.delete(url("m", "/aliases/champion"), headers=auth).status_code == 204
    native_error(client.get(url("m", "/aliases/champion"), headers=auth), 404, "NOT_FOUND")
    native_error(client.put(url("m", "/aliases/champion"), json={"version": 9}, headers=auth), 404, "NOT_FOUND")
    for bad in ("latest", "v1", "bad%20alias", "x" * 300):
        native_error(client.put(url("m", f"/aliases/{bad}"), json={"version": 1}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.put(url("m", "/aliases/a"), json={}, headers=auth), 400, "INVALID_INPUT")
    native_error(client.put(url("m", "/aliases/a"), json={"version": "two"}, headers=auth), 400, "INVALID_INPUT")

    stage = url("m", "/versions/{}/stage")
    assert ok(client.post(stage.format(1), json={"stage": "production"}, headers=auth))["current_stage"] == "Production"
    moved = ok(
        client.post(stage.format(2), json={"stage": "Production", "archive_existing_versions": True}, headers=auth)
    )
    assert moved["current_stage"] == "Production"
    assert ok(client.get(url("m", "/versions/1"), headers=auth))["current_stage"] == "Archived"
    latest = {v["current_stage"]: v["version"] for v in ok(client.get(url("m"), headers=auth))["latest_versions"]}
    assert latest == {"Archived": 1, "Production": 2, "None": 3}
    native_error(client.post(stage.format(3), json={"stage": "Bogus"}, headers=auth), 400, "INVALID_INPUT")
    native_error(
        client.post(stage.format(3), json={"stage": "None", "archive_existing_versions": True}, headers=auth),
        400,
        "INVALID_INPUT",
    )
    native_error(client.post(stage.format(3), json={}, headers=auth), 400, "INVALID_INPUT")


def test_version_sources_the_server_does_not_hold(client, auth, services, admin):
    services.registry.create_model(admin, "elsewhere")
    services.registry.create_version(admin, "elsewhere", "s3://bucket/model")
    services.registry.create_version(admin, "elsewhere", "runs:/" + "0" * 32 + "/model")
    record = uploaded(client, auth, b"kore archive", "bot.zip")
    services.registry.create_version(admin, "elsewhere", f"modelharbor:/files/{record['id']}")
    err = native_error(client.get(url("elsewhere", "/versions/1/files"), headers=auth), 409, "UNSUPPORTED_SOURCE")
    assert "s3://bucket/model" in err["message"]
    native_error(client.get(url("elsewhere", "/versions/2/files"), headers=auth), 404, "SOURCE_NOT_FOUND")
    files = ok(client.get(url("elsewhere", "/versions/3/files"), headers=auth))
    assert files == [{"path": "bot.zip", "size": 12, "sha256": sha(b"kore archive"), "file_id": record["id"]}]


def test_other_organisations_see_nothing(client, auth, outsider):
    register(client, auth, "mine", {"MLmodel": b"secret"}, aliases=["champion"])
    fid = ok(client.get(url("mine", "/versions/1/files"), headers=auth))[0]["file_id"]
    assert ok(client.get(API, headers=outsider))["models"] == []
    for method, path, kw in [
        ("GET", "", {}),
        ("PATCH", "", {"json": {"description": "x"}}),
        ("DELETE", "", {}),
        ("GET", "/versions", {}),
        ("GET", "/versions/1", {}),
        ("GET", "/versions/1/files", {}),
        ("PATCH", "/versions/1", {"json": {"description": "x"}}),
        ("DELETE", "/versions/1", {}),
        ("POST", "/versions/1/stage", {"json": {"stage": "Staging"}}),
        ("GET", "/aliases/champion", {}),
        ("PUT", "/aliases/champion", {"json": {"version": 1}}),
        ("DELETE", "/aliases/champion", {}),
    ]:
        native_error(client.request(method, url("mine", path), headers=outsider, **kw), 404, "NOT_FOUND")
    native_error(client.get(f"/api/v1/files/{fid}/content", headers=outsider), 404, "NOT_FOUND")
    # the same name is free in their organisation, but our files are not theirs to register
    resp = client.post(
        url("mine", "/versions"),
        json={"files": [{"path": "a", "file_id": fid}], "create_model": True},
        headers=outsider,
    )
    native_error(resp, 404, "NOT_FOUND")
    ok(client.post(API, json={"name": "mine"}, headers=outsider), 201)
    assert ok(client.get(url("mine"), headers=auth))["aliases"] == {"champion": 1}


def test_viewers_read_but_do_not_write(client, auth, viewer):
    register(client, auth, "m", {"MLmodel": b"x"})
    assert [m["name"] for m in ok(client.get(API, headers=viewer))["models"]] == ["m"]
    for path in ("", "/versions", "/versions/1", "/versions/1/files"):
        ok(client.get(url("m", path), headers=viewer))
    fid = ok(client.get(url("m", "/versions/1/files"), headers=viewer))[0]["file_id"]
    assert client.get(f"/api/v1/files/{fid}/content", headers=viewer).content == b"x"
    for method, path, kw in [
        ("POST", "", {"json": {"name": "x"}}),
        ("PATCH", "/m", {"json": {"description": "x"}}),
        ("DELETE", "/m", {}),
        ("POST", "/m/versions", {"json": {"files": [{"path": "a", "file_id": fid}]}}),
        ("PATCH", "/m/versions/1", {"json": {"description": "x"}}),
        ("DELETE", "/m/versions/1", {}),
        ("POST", "/m/versions/1/stage", {"json": {"stage": "Staging"}}),
        ("PUT", "/m/aliases/a", {"json": {"version": 1}}),
        ("DELETE", "/m/aliases/a", {}),
    ]:
        native_error(client.request(method, API + path, headers=viewer, **kw), 403, "FORBIDDEN")
    assert ok(client.get(url("m", "/versions/1"), headers=auth))["current_stage"] == "None"


@sqlite_only
def test_needs_a_key(client):
    native_error(client.get(API), 401, "UNAUTHENTICATED")
    native_error(client.delete(f"{API}/m/versions/1"), 401, "UNAUTHENTICATED")
    native_error(client.get(f"{API}/m/versions/1/files"), 401, "UNAUTHENTICATED")


@sqlite_only
def test_openapi_describes_the_routes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/models",
        "/models/{name}",
        "/models/{name}/versions",
        "/models/{name}/versions/{version}",
        "/models/{name}/versions/{version}/stage",
        "/models/{name}/versions/{version}/files",
        "/models/{name}/aliases/{alias}",
    ):
        assert path in paths, path
    body = paths["/models/{name}/versions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("ModelVersionIn")
