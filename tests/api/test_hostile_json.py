"""Hostile JSON (issue 12, finding 3) against every route the app serves, over one real keep-alive connection.

A uvicorn server with the server's own HTTP protocol (api/http.py) runs the app in a thread; the routes are the
mounted applications' own (their OpenAPI, as tests/api/test_no_500.py walks them), which include the prediction
hot path's and api/hot.py's exact table's. Each hostile body goes once to each route: never a 5xx, every 4xx in the
dialect's envelope, the connection still open — and wherever the shared reader (core/jsontext.py) saw the body,
a 400 naming the problem. Then the size limits at their boundary, an unexpected exception on every route (the
dialect's 500 with a request id the log repeats), the protocol's plain path, and a check that nothing under
api/ parses JSON around the reader.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import json
import logging
import re
import shutil
import socket
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.routing import Mount

from modelharbor.api.http import HarborHttpProtocol
from modelharbor.app import create_app
from modelharbor.core import jsontext
from modelharbor.services import build_services
from tests.api.test_http_protocol import connect, post, settle
from tests.conftest import ADMIN_KEY, make_settings
from tests.servers import free_port

DEEP = "nests deeper than 100 levels"
BODIES = {  # name: (body, what the answer names)
    "arrays 1,000 deep": (b"[" * 1000 + b"]" * 1000, DEEP),
    "arrays 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, DEEP),
    "objects 1,000 deep": (b'{"a":' * 1000 + b"1" + b"}" * 1000, DEEP),
    "objects 100,000 deep": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, DEEP),
    "arrays 101 deep": (b"[" * 101 + b"]" * 101, DEEP),
    "lone surrogate in a value": (b'{"name": "\\ud800", "description": "x"}', "lone surrogate \\ud800 at $.name"),
    "lone surrogate in a key": (b'{"name": "m", "\\udc00": 1}', "lone surrogate \\udc00 in a key"),
    "integer -2**63-1": (b'{"name": "m", "size": -9223372036854775809}', "outside the 64-bit range"),
    "integer 2**63": (b'{"name": "m", "n": [9223372036854775808]}', "outside the 64-bit range"),
    "integer 10**400": (b'{"name": "m", "n": 1' + b"0" * 400 + b"}", "outside the 64-bit range"),
    "number 1e999": (b'{"name": "m", "n": 1e999}', "is out of range"),
    "NaN": (b'{"name": "m", "n": NaN}', "holds NaN"),
}
NAN_PASS = {"number 1e999", "NaN"}  # prediction inputs take NaN and infinities (Python clients write them)
AUTH = {"authorization": f"Bearer {ADMIN_KEY}", "x-api-key": ADMIN_KEY, "x-domino-api-key": ADMIN_KEY}
HEX_ID = re.compile(r"[0-9a-f]{32}")


# --- the dialects' error envelopes ----------------------------------------------------------------------


def _native(b) -> bool:
    return set(b) == {"error"} and {"code", "message"} <= set(b["error"])


def _kore(b) -> bool:
    return isinstance(b.get("errors"), list) and all({"msg", "code"} <= set(e) for e in b["errors"])


def _ufdl(b) -> bool:  # DRF: {"detail": …} (with code/messages for a bad token), or field → [messages]
    return bool(b) and ("detail" in b or all(isinstance(v, list) for v in b.values()))


def _mlflow(b) -> bool:
    return set(b) == {"error_code", "message"}


def _domino(b) -> bool:
    return set(b) == {"errors", "requestId"} and isinstance(b["errors"], list)


def _ubiops(b) -> bool:
    return set(b) == {"error"} and isinstance(b["error"], str)


SHAPES = {
    "/api/v1": _native,
    "/api/public": _kore,
    "/api/getMediaStream": _kore,
    "/v1": _ufdl,
    "/api/2.0/mlflow": _mlflow,
    "/api/2.0/mlflow-artifacts": _mlflow,
    "/api/registeredmodels": _domino,
    "/api/hardwaretiers": _domino,
    "/api/admin": _domino,
    "/api": _domino,
    "/v4": _domino,
    "/api/projects": _domino,
    "/api/environments": _domino,
    "/api/datasource": _domino,
    "/project": _domino,  # POST /project (a form: its hostile bodies are forms)
    "/projectTags": _domino,
    "/api/datasetrw": _domino,
    "/dataset": _domino,  # the client's legacy datasets_* routes
    "/v1/projects": _domino,
    "/v1/environments": _domino,  # (the legacy /v1/models holds no routes yet)
    "/v2": _ubiops,
    "/v2.1": _ubiops,
}


# --- a real server and a raw keep-alive connection ------------------------------------------------------


class Server:
    def __init__(self, app, services, port: int):
        self.app, self.services, self.port = app, services, port


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template):
    root = tmp_path_factory.mktemp("hostile-json")
    shutil.copy(sqlite_template, root / "modelharbor.db")
    settings = make_settings(root, f"sqlite:///{root / 'modelharbor.db'}")
    services = build_services(settings)
    app = create_app(settings, services, run_workers=False)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=HarborHttpProtocol, log_config=None, access_log=False
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield Server(app, services, port)
    uv.should_exit = True
    thread.join(15)
    services.close()


class Connection:
    """One HTTP/1.1 connection, kept open: a server that closes it fails the next request."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _read(self, n: int = 65536) -> None:
        data = self.sock.recv(n)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._read()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._read()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None, *, send: bool = True):
        """(status, headers, body); ``send=False`` announces the body's length but sends none of it."""
        head = [f"{method} {path} HTTP/1.1", "host: test", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + (body if send else b""))
        status = int(self._line().split()[1])
        fields: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        if method == "HEAD":
            payload = b""
        elif fields.get("transfer-encoding") == "chunked":
            payload = b""
            while size := int(self._line().split(b";")[0], 16):
                payload += self._take(size)
                self._take(2)
            self._take(2)
        else:
            payload = self._take(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            raise ConnectionError(f"{method} {path} answered {status} with connection: close")
        return status, fields, payload


# --- the routes, from the app --------------------------------------------------------------------------


def _routes(app) -> list[tuple[str, str, str]]:
    """(mount, METHOD, path template) of every route of every mounted API."""
    out = set()
    for r in app.routes:
        if isinstance(r, Mount) and hasattr(r.app, "openapi"):
            r.app.openapi_schema = None
            for path, ops in r.app.openapi()["paths"].items():
                out |= {(r.path, method.upper(), r.path + path) for method in ops}
    return sorted(out)


def _fill(path: str) -> str:
    # a value each dialect's own id check lets through to the body: a number for integer parameters, and a
    # string that also has Kore.ai's model-id prefix
    path = re.sub(r"\{(pk|version|part_number)\}", "1", path)
    return re.sub(r"\{[^}]+\}", "cm-1", path)


def _text(value) -> str:
    """Every string of a decoded answer, joined (messages quote the body's escapes, which json.dumps doubles)."""
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return value if isinstance(value, str) else ""


@contextmanager
def _reader_spy():
    """A list that grows by one whenever the shared reader (core/jsontext.loads) looks at a body."""
    reads: list[int] = []
    real = jsontext.long_numbers
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsontext, "long_numbers", lambda raw: reads.append(1) or real(raw))
        yield reads


def _shape_of(mount: str, payload: bytes):
    body = json.loads(payload)
    assert isinstance(body, dict) and SHAPES[mount](body), body
    return body


@pytest.fixture(scope="module")
def routes(server):
    found = _routes(server.app)
    mounts = {m for m, _, _ in found}
    assert mounts == set(SHAPES), mounts
    # the hot paths' routes are among them: the prediction's plain route and those api/hot.py's exact table answers
    assert any(server.app.front.match("POST", _fill(p)) for _, m, p in found if m == "POST")
    exact = server.app.front.exact  # api/hot.py's table
    assert exact and set(exact) <= {(m, p) for _, m, p in found}
    return found


@pytest.fixture(scope="module")
def json_routes(server, routes):
    """The routes that read a JSON body: those whose answer to ``{`` went through the shared reader."""
    found = set()
    conn = Connection(server.port)
    try:
        with _reader_spy() as reads:
            for route in routes:
                before = len(reads)
                conn.request(route[1], _fill(route[2]), b"{", AUTH | {"content-type": "application/json"})
                if len(reads) > before:
                    found.add(route)
    finally:
        conn.close()
    assert len(found) >= 150, len(found)  # the hostile-input run found 217 requests failing
    assert {SHAPES[m] for m, _, _ in found} == set(SHAPES.values())  # every API has routes that read JSON
    return found


def test_every_route_answers_hostile_json_with_a_400_in_its_dialects_shape(server, routes, json_routes):
    conn = Connection(server.port)
    failures, named, read_by = [], Counter(), {}
    try:
        with _reader_spy() as reads:
            for (mount, method, path), (name, (body, problem)) in itertools.product(routes, BODIES.items()):
                before = len(reads)
                h = AUTH | {"content-type": "application/json"}
                try:
                    status, _, payload = conn.request(method, _fill(path), body, h)
                except (ConnectionError, OSError) as exc:
                    failures.append((name, method, path, f"connection lost: {exc}"))
                    conn = Connection(server.port)
                    continue
                read = len(reads) > before
                if read or status == 413:  # (a body over the route's size limit is refused before it is read)
                    read_by.setdefault(name, set()).add((mount, method, path))
                if status >= 500:
                    failures.append((name, method, path, status, payload[:120]))
                    continue
                said = ""
                if status >= 400 and method != "HEAD":
                    try:
                        said = _text(_shape_of(mount, payload))
                    except (AssertionError, ValueError) as exc:
                        failures.append((name, method, path, status, f"not the dialect's shape: {exc}"))
                        continue
                if problem in said:
                    named[name] += 1
                    if status != 400:
                        failures.append((name, method, path, status, "named the problem, but not with 400"))
                elif read and name not in NAN_PASS and status <= 400:
                    # the reader refused it: a 400 must say why (an earlier 401/403/404 may win, as in DRF)
                    failures.append((name, method, path, status, f"read the body but did not name {problem!r}"))
        assert not failures, f"{len(failures)} failures, e.g. {failures[:8]}"
        assert conn.request("GET", "/healthz")[0] == 200  # the same connection, after every hostile body
    finally:
        conn.close()
    for name in BODIES:  # each body reached the reader on every route that reads JSON
        assert read_by.get(name, set()) == json_routes, (name, sorted(json_routes ^ read_by.get(name, set()))[:5])
        assert named[name] >= (len(json_routes) // 2 if name not in NAN_PASS else 10), (name, named[name])


def test_size_limits_answer_413_in_the_dialects_shape_and_allow_a_body_at_the_limit(server, json_routes):
    """Each JSON route's limit, learnt from the 413 it answers to a ``content-length`` just over any limit
    (before any body byte), then checked at the boundary: exactly the limit passes the reader, one byte more
    is 413 in the dialect's envelope, on one connection."""
    limits: dict[int, tuple[str, str, str]] = {}
    over = 64 * 1024 * 1024 + 1
    for mount, method, path in sorted(json_routes):
        probe = Connection(server.port)
        try:
            status, _, payload = probe.request(
                method, _fill(path), b" " * over, AUTH | {"content-type": "application/json"}, send=False
            )
        finally:
            probe.close()
        message = _text(_shape_of(mount, payload))
        if status != 413:  # a UFDL detail route looks its pk up first (DRF: 404 before a bad body)
            assert status == 404, (method, path, status, payload[:200])
            continue
        limit = int(re.search(r"larger than (\d+) bytes", message).group(1))
        limits.setdefault(limit, (mount, method, path))
    assert {2_621_440, 65_536, 16 * 1024 * 1024, 64 * 1024 * 1024} <= set(limits), sorted(limits)
    conn = Connection(server.port)
    try:
        for limit, (mount, method, path) in sorted(limits.items()):
            h = AUTH | {"content-type": "application/json"}
            status, _, payload = conn.request(method, _fill(path), b"{}" + b" " * (limit - 2), h)
            assert status < 500 and status != 413, (limit, method, path, status, payload[:200])
            status, _, payload = conn.request(method, _fill(path), b"{}" + b" " * (limit - 1), h)
            assert status == 413, (limit, method, path, status, payload[:200])
            _shape_of(mount, payload)
    finally:
        conn.close()


def test_an_unexpected_exception_answers_the_dialects_500_with_a_logged_request_id(server, routes, monkeypatch, caplog):
    def boom(*_a, **_k):
        raise RuntimeError("boom: the identity service failed")

    monkeypatch.setattr(server.services.identity, "authenticate_key", boom)
    monkeypatch.setattr(server.services.identity, "cached_key", boom)
    monkeypatch.setattr(server.services.db, "ping", boom)
    caplog.set_level(logging.ERROR, logger="modelharbor")
    conn = Connection(server.port)
    answered: dict[str, str] = {}  # request id → mount
    failures = []
    try:
        for mount, method, path in [("/api/v1", "GET", "/healthz"), *routes]:
            status, headers, payload = conn.request(
                method, _fill(path), b"{}", AUTH | {"content-type": "application/json"}
            )
            if status < 500 or method == "HEAD":
                continue  # routes that ask for no credentials; HEAD answers carry no body
            try:
                body = _shape_of(mount, payload)
            except (AssertionError, ValueError) as exc:
                failures.append((method, path, status, f"not the dialect's shape: {exc}"))
                continue
            ids = set(HEX_ID.findall(_text(body)))
            if status != 500 or len(ids) != 1 or headers.get("x-request-id", ids and next(iter(ids))) not in ids:
                failures.append((method, path, status, headers.get("x-request-id"), body))
                continue
            answered[ids.pop()] = mount
        assert conn.request("GET", "/version")[0] == 200  # the same connection
    finally:
        conn.close()
    assert not failures, failures[:8]
    assert {SHAPES[m] for m in answered.values()} == set(SHAPES.values())  # every API answered some
    logged = {}
    for record in caplog.records:
        for rid in HEX_ID.findall(record.getMessage()):
            logged[rid] = record
    for rid in answered:
        assert rid in logged, rid
        assert logged[rid].exc_info and "boom: the identity service failed" in str(logged[rid].exc_info[1])


def test_the_protocols_plain_path_refuses_hostile_json_and_keeps_the_connection(server):
    """Prediction requests that arrive whole are answered by api/http.py without ASGI: the same checks."""

    async def main():
        proto, transport = connect(server.app)
        path = "/v2.1/projects/p/deployments/d/requests"
        headers = f"Authorization: Token {ADMIN_KEY}\r\n"
        for name, (body, problem) in BODIES.items():
            if len(body) > 1 << 20:
                continue
            proto.data_received(post(path, body, headers))
            await settle(proto)
            status, _, payload = transport.answers()[-1]
            if name in NAN_PASS:
                assert status == 404, (name, payload)  # read and accepted; no such project
            else:
                assert status == 400 and problem in json.loads(payload)["error"], (name, payload)
        proto.data_received(post(path, b'{"x": 1}', headers))
        await settle(proto)
        assert transport.answers()[-1][0] == 404 and not transport.closed
        assert len(transport.answers()) == len(transport.writes)  # each answered in one write: the plain path

    asyncio.run(main())


def test_nothing_under_api_parses_json_around_the_reader():
    """Every JSON text from a request goes through core/jsontext.py (via api/jsonbody.py): no json.loads, no
    request.json() and no json.JSONDecoder anywhere else in the API code."""
    root = Path(__file__).resolve().parents[2] / "src" / "modelharbor" / "api"
    found = []
    for path in set(root.rglob("*.py")) - {root / "jsonbody.py"}:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (
                (node.attr in ("loads", "load", "JSONDecoder") and getattr(node.value, "id", None) == "json")
                or (node.attr == "json" and getattr(node.value, "id", None) == "request")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, found
