"""Every route of the app resolves to its own mount, and each mount answers in its own dialect."""

from __future__ import annotations

import re

import pytest
from starlette.routing import BaseRoute, Match, Mount, compile_path

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # routing does not depend on the DB

NATIVE = "/api/v1"
KORE = ("/api/public", "/api/getMediaStream")
UFDL = "/v1"
MLFLOW = ("/api/2.0/mlflow", "/api/2.0/mlflow-artifacts")
# Domino: its registry, the rest of /api (what no longer prefix claims), v4, and the legacy /v1 nouns beside UFDL
DOMINO_LEGACY = ("/v1/projects", "/v1/environments", "/v1/models")  # mounted ahead of their routes (later work)
DOMINO_ROOT = ("/project", "/projectTags", "/dataset")  # the client's project_create form, tag_details, datasets_*
DOMINO = (
    "/api/registeredmodels",
    "/api/hardwaretiers",
    "/api/admin",
    "/api/projects",
    "/api/environments",
    "/api/datasource",
    "/api/datasetrw",
    "/api",
    "/v4",
    *DOMINO_LEGACY,
    *DOMINO_ROOT,
)
UBIOPS = ("/v2", "/v2.1")
DOC_PATHS = {"/openapi.json", "/docs", "/redoc"}


def leaf_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, methods) of every endpoint below ``routes``, following included routers."""
    out: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, Mount):
            out += leaf_routes(route.routes, prefix + route.path)
        elif hasattr(route, "original_router"):  # FastAPI's lazily included router
            out += leaf_routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes"):
            out += leaf_routes(route.routes, prefix)
        else:
            out.append((prefix + route.path, set(getattr(route, "methods", None) or {"GET"})))
    return out


def concrete(path: str) -> str:
    path = re.sub(r"\{[^}:]+:int\}", "1", path)  # UFDL integer pks
    return re.sub(r"\{number\}", "0", re.sub(r"\{(?!number\})[^}]+\}", "x", path))


def resolve(app, path: str, method: str) -> BaseRoute | None:
    scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return route
    return None


def mounts_of(app) -> dict[str, Mount]:
    return {r.path: r for r in app.router.routes if isinstance(r, Mount)}


def is_kore_envelope(body) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("errors"), list)
        and len(body["errors"]) == 1
        and set(body["errors"][0]) == {"msg", "code"}
    )


def is_native_envelope(body) -> bool:
    return isinstance(body, dict) and set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}


def test_mounts_are_the_dialects(client):
    app = client.app
    mounts = mounts_of(app)
    assert set(mounts) == {NATIVE, *KORE, UFDL, *MLFLOW, *DOMINO, *UBIOPS}
    native = mounts[NATIVE].app
    assert native.openapi_url == "/openapi.json" and native.title == "ModelHarbor native API"
    for path in (*KORE, UFDL, *MLFLOW, *DOMINO, *UBIOPS):
        assert mounts[path].app.openapi_url is None
        assert mounts[path].app is not native
    assert mounts[KORE[0]].app is not mounts[KORE[1]].app
    assert mounts[UBIOPS[0]].app is mounts[UBIOPS[1]].app  # one route tree under both versions
    # longest prefix first, and no mount is shadowed by an earlier one
    ordered = [r.path for r in app.router.routes if isinstance(r, Mount)]
    assert ordered == sorted(ordered, key=len, reverse=True)
    for i, earlier in enumerate(ordered):
        for later in ordered[i + 1 :]:
            assert not later.startswith(earlier + "/"), (earlier, later)


def test_every_route_resolves_to_its_own_mount(client):
    app = client.app
    checked = 0
    for mount in mounts_of(app).values():
        leaves = leaf_routes(mount.routes, mount.path)
        assert leaves or mount.path in DOMINO_LEGACY, mount.path
        for path, methods in leaves:
            for method in methods:
                route = resolve(app, concrete(path), method)
                assert route is mount, (method, path, route)
                checked += 1
    assert checked >= 20
    assert resolve(app, "/healthz", "GET").path == "/healthz"
    assert resolve(app, "/version", "GET").path == "/version"
    assert resolve(app, "/status", "GET").path == "/status"


def test_every_route_answers_in_its_dialect(client):
    """Unauthenticated calls to every endpoint: the mount's own envelope, never a "no such route"."""
    for mount in mounts_of(client.app).values():
        for path, methods in leaf_routes(mount.routes, mount.path):
            if path[len(mount.path) :] in DOC_PATHS:
                continue
            for method in methods - {"HEAD"}:
                resp = client.request(method, concrete(path))
                body = resp.json()
                if mount.path == NATIVE:
                    assert is_native_envelope(body), (method, path, body)
                    assert resp.status_code in (400, 401), (method, path, body)
                    assert not body["error"]["message"].startswith("no such route"), (method, path)
                elif mount.path in MLFLOW:
                    assert isinstance(body, dict) and set(body) == {"error_code", "message"}, (method, path, body)
                    if "/mpu/part/" in path:  # authenticated by its signed URL, not by a header
                        assert resp.status_code in (400, 403), (method, path, body)
                    else:
                        assert resp.status_code == 401 and body["error_code"] == "UNAUTHENTICATED", (method, path, body)
                elif mount.path in UBIOPS:
                    assert isinstance(body, dict) and set(body) <= {"error", "status", "reason"}, (path, body)
                    if path.endswith("/status"):
                        assert resp.status_code == 200 and body["status"] == "ok", (path, body)
                    else:
                        assert resp.status_code == 401, (method, path, body)
                elif mount.path in DOMINO:
                    assert set(body) == {"errors", "requestId"} and isinstance(body["errors"][0], str), (path, body)
                    assert resp.status_code == 401, (method, path, body)
                elif mount.path == UFDL:
                    assert (
                        isinstance(body, dict)
                        and "detail" in body
                        or set(body) <= {"username", "password", "refresh", "token"}
                    ), body
                    expected = (400, 401) if path.startswith("/v1/auth/") else (401,)
                    assert resp.status_code in expected, (method, path, body)
                else:
                    assert is_kore_envelope(body), (method, path, body)
                    assert resp.status_code in (401, 403), (method, path, body)


def test_native_openapi(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["info"]["title"] == "ModelHarbor native API"
    assert doc["servers"] == [{"url": "/api/v1"}]
    routes = leaf_routes(mounts_of(client.app)[NATIVE].routes)
    untyped = {re.sub(r"\{(\w+):\w+\}", r"{\1}", p) for p, _ in routes if p not in DOC_PATHS}  # {pk:int} → {pk}
    assert set(doc["paths"]) == untyped
    assert {"/files", "/files/{file_id}/content", "/uploads/{upload_id}/chunks/{number}", "/keys", "/me"} <= set(
        doc["paths"]
    )
    assert not any(p.startswith(("/api/public", "/api/getMediaStream")) for p in doc["paths"])
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID")
def test_native_openapi_operation_ids_are_unique(client):
    doc = client.get("/api/v1/openapi.json").json()
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/api/public/x", "kore"),
        ("/api/public/files/session", "kore"),
        ("/api/public/openapi.json", "kore"),
        ("/api/public/docs", "kore"),
        ("/api/getMediaStream/x", "kore"),
        ("/api/getMediaStream/orgFiles", "kore"),
        ("/api/v1/x", "native"),
        ("/api/v1/files/x/y/z", "native"),
        ("/api/v1/uploads/x/chunks", "native"),
        ("/api/v1x/files", "domino"),  # every /api path no other API claims is Domino's
        ("/api/registeredmodels/v3", "domino"),
        ("/api/registeredmodels", "domino"),
        ("/api/registeredmodelsx", "domino"),
        ("/api/projects/v1/projects", "domino"),
        ("/api", "domino"),
        ("/v4", "domino"),
        ("/v4/gateway/nothing", "domino"),
        ("/v1/projects/o", "domino"),  # (deeper paths match the file upload PUT: 405 with Allow)
        ("/v1/environments/x/nothing", "domino"),
        ("/v1/projects", "domino"),
        ("/v1/environments/x", "domino"),
        ("/v1/modelsx", "ufdl"),
        ("/v1/nothing", "ufdl"),
        ("/v2/nothing-here", "ubiops"),
        ("/v2.1/projects/x/nothing", "ubiops"),
        ("/api/publicity", "domino"),
        ("/api/getMediaStreamX/orgFiles/f-x.wav", "domino"),
        ("/v4x", "app"),
        ("/openapi.json", "app"),
        ("/docs", "app"),
        ("/nope", "app"),
    ],
)
def test_unknown_paths_answer_in_the_right_dialect(client, path, dialect):
    resp = client.get(path, headers={"x-api-key": "k", "authorization": "Bearer k"})
    assert resp.status_code == 404, resp.text
    body = resp.json()
    if dialect == "kore":
        assert body == {"errors": [{"msg": "no such Kore.ai API route", "code": "NOT_FOUND"}]}
    elif dialect == "ubiops":
        assert body == {"error": "no such UbiOps API route in ModelHarbor; see docs/dialects/ubiops.md"}
    elif dialect == "domino":
        assert set(body) == {"errors", "requestId"} and "docs/dialects/domino.md" in body["errors"][0]
    elif dialect == "ufdl":
        assert body == {"detail": "Not Found"} or set(body) == {"detail"}, body
    elif dialect == "native":
        assert is_native_envelope(body) and body["error"]["code"] == "NOT_FOUND"
        assert body["error"]["message"] == "no such route in the native API; see /api/v1/openapi.json"
    else:
        assert body == {"detail": "Not Found"}


def test_wrong_method_answers_in_the_right_dialect(client):
    resp = client.get("/api/public/files/session/start")
    assert resp.status_code == 405
    assert resp.json() == {"errors": [{"msg": "method not allowed on this route", "code": "METHOD_NOT_ALLOWED"}]}
    resp = client.delete("/api/getMediaStream/orgFiles/f-x.wav")
    assert resp.status_code == 405 and is_kore_envelope(resp.json())
    resp = client.patch("/api/v1/files")
    assert resp.status_code == 405
    assert resp.json() == {
        "error": {"code": "METHOD_NOT_ALLOWED", "message": "method not allowed on this route", "details": {}}
    }
    assert resp.headers["allow"] == "GET, POST"  # both routes of the path, not only the first one
    resp = client.post("/api/v1/me")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert resp.headers["allow"] == "GET"


def test_every_405_names_the_methods_the_path_takes(client):
    """Every path of every mount (and the root's own), asked with a method it does not take: 405 with ``Allow``
    listing exactly the methods of the routes matching that path."""
    leaves = [(p, m) for mount in mounts_of(client.app).values() for p, m in leaf_routes(mount.routes, mount.path)]
    leaves += [(r.path, set(r.methods)) for r in client.app.router.routes if not isinstance(r, Mount)]
    patterns = [(compile_path(p)[0], methods) for p, methods in leaves]
    checked = 0
    for path in sorted({concrete(p) for p, _ in leaves}):
        allowed = set().union(*(methods for regex, methods in patterns if regex.match(path)))
        method = next((m for m in ("PATCH", "PUT", "DELETE", "POST", "GET") if m not in allowed), None)
        if method is None:
            continue
        resp = client.request(method, path)
        assert resp.status_code == 405, (method, path, resp.status_code, resp.text)
        assert set(resp.headers["allow"].split(", ")) == allowed, (method, path, resp.headers["allow"], allowed)
        checked += 1
    assert checked > 300


def test_auth_errors_per_dialect(client):
    kore = client.post("/api/public/files/session/start", json={})
    assert kore.status_code == 401 and kore.json()["errors"][0]["code"] == "UNAUTHENTICATED"
    native = client.post("/api/v1/uploads", json={})
    assert native.status_code == 401 and native.json()["error"]["code"] == "UNAUTHENTICATED"
    assert native.headers["www-authenticate"] == "Bearer"


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok" and resp.json()["version"]


def test_domino_legacy_v1_beside_ufdl(client):
    """UFDL owns /v1; Domino's legacy /v1/projects, /v1/environments and /v1/models (bare too) reach Domino, and
    neither shadows the other: the more specific prefix wins (api/dialect.py PrefixMount, longest first)."""
    app = client.app
    ufdl = mounts_of(app)[UFDL]
    for path, method in (("/v1/auth/obtain", "POST"), ("/v1/pretrained-models/list", "POST"), ("/v1/x", "GET")):
        assert resolve(app, path, method) is ufdl, path
    for noun in ("/v1/projects", "/v1/environments", "/v1/models"):
        for path in (noun, noun + "/", noun + "/a/b"):
            assert resolve(app, path, "GET") is mounts_of(app)[noun], path
    key = {"X-Domino-Api-Key": "mh_test_admin_key_0123456789"}
    for path in ("/v1/environments", "/v1/environments/"):  # the client's environments_list
        resp = client.get(path, headers=key)
        assert resp.status_code == 200 and isinstance(resp.json()["data"], list), (path, resp.text)
    for path in (
        "/v1/environments/x",
        "/v1/models",
        "/v1/models/m/versions",
        "/v1/projects/o",  # (deeper /v1/projects paths match the file routes: their PUT answers other methods 405)
    ):
        for method in ("GET", "POST"):
            resp = client.request(method, path, headers=key)
            assert resp.status_code == 404, (method, path, resp.text)
            assert set(resp.json()) == {"errors", "requestId"} and "domino.md" in resp.json()["errors"][0]
    # UFDL's own routes still answer, in UFDL's shape
    resp = client.post("/v1/pretrained-models/list", json={})
    assert resp.status_code == 401 and "detail" in resp.json()
    resp = client.get("/v1/frameworks/1")
    assert resp.status_code == 401 and "detail" in resp.json()


def test_domino_legacy_collaborators_at_the_root_shadow_nothing(client):
    """Domino's legacy ``GET /{owner}/{project}/collaborators`` is a root route, yet every path a mount takes stays
    the mount's (its ``matches`` yields to them): only owners that are no mount's first segment reach it."""
    from modelharbor.api.dialects.domino.routes.collaborators import LegacyCollaborators

    app = client.app

    def owner_of(path: str) -> BaseRoute | None:
        scope = {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": [], "app": app}
        for route in app.router.routes:
            if route.matches(scope)[0] != Match.NONE:
                return route
        return None

    assert isinstance(owner_of("/alice/demo/collaborators"), LegacyCollaborators)
    mounts = mounts_of(app)
    for prefix in (NATIVE, *KORE, UFDL, *MLFLOW, *DOMINO, *UBIOPS):
        head = "/" + prefix.strip("/").split("/")[0]  # a 3-segment path under the mount's first segment
        path = f"{head}/x/collaborators" if prefix.count("/") == 1 else f"{prefix}/collaborators"
        owner = owner_of(path)
        assert isinstance(owner, Mount) and owner in mounts.values(), (path, owner)
    assert owner_of("/version").path == "/version" and owner_of("/status").path == "/status"
    assert owner_of("/healthz").path == "/healthz"
    # over HTTP: each answers in its own shape
    key = {"X-Domino-Api-Key": "mh_test_admin_key_0123456789"}
    assert "detail" in client.get("/v1/x/collaborators", headers=key).json()  # UFDL
    assert is_native_envelope(client.get("/api/v1/collaborators", headers=key).json())
    v4 = client.get("/v4/projects/collaborators", headers=key)  # GET /v4/projects/{id}: Domino's 404
    assert v4.status_code == 404 and "not found" in v4.json()["errors"][0]
    assert client.get("/version").json()["version"]
    legacy = client.get("/admin/none/collaborators", headers=key)
    assert legacy.status_code == 404 and "not found" in legacy.json()["errors"][0]
