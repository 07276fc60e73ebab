"""What a dialect's routes read by hand is in its OpenAPI document (issue 14).

Dialect routes read their bodies and query strings themselves (api/params.py, api/multipart.py: the vendor's
leniencies and messages), so FastAPI cannot see them; each dialect declares what its routes take in its
``schemas.INPUTS`` table (``Dialect.inputs``), which api/openapi.py writes into the document. This guard finds, from
each route's code, whether the route reads the request's body — it, a helper it calls or one of its dependencies
calls a body reader (``json_object``, ``request_parts``, ``body_stream``, ``request.stream()``…) — and requires

- every such operation to declare a ``requestBody`` (its table entry names the media types; a GET, whose input is
  its query string, declares its query parameters instead), so a new route that reads a body without declaring it
  fails here;
- no declared body for a route that reads none, and every declared query parameter in the document.
"""

from __future__ import annotations

import dis
import functools
import inspect
from dataclasses import replace
from types import CodeType
from typing import Any

import pytest
from fastapi.routing import APIRoute

from modelharbor.api import common, hot, jsonbody, params
from modelharbor.api.dialect import Dialect, document
from modelharbor.api.dialects import DIALECTS
from modelharbor.api.openapi import JSON, Takes, input_key

READERS = (
    params.json_value,
    params.json_object,
    jsonbody.read_body,
    jsonbody.read_json,
    common.request_parts,
    common.body_stream,
    hot.answer_asgi,  # the hot endpoint reads the body from the ASGI receive
)
READ_METHODS = {"body", "json", "form", "stream"}  # request.body(), .json(), .form(), .stream(); a part's .stream()
BODY_HOLDERS = {"request", "part"}
SAFE = {"GET", "HEAD"}


def _codes(code: CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _ours(target: Any) -> bool:
    return callable(target) and getattr(target, "__module__", "").startswith(("modelharbor.api", __name__))


def reads_body(fn: Any, seen: set[CodeType] | None = None) -> bool:
    """Whether ``fn`` — or a function of ``modelharbor.api`` it calls (a global, a module's attribute, a nested
    function or lambda), at any depth — reads the request's body."""
    seen = set() if seen is None else seen
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = inspect.unwrap(fn)
    if any(fn is reader for reader in READERS):
        return True
    code = getattr(fn, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    for c in _codes(code):
        module = None  # the module a LOAD_GLOBAL just loaded: its attribute is what the next LOAD_ATTR names
        holder = False  # whether the instruction before loaded a request (or a multipart part)
        for ins in dis.get_instructions(c):
            target = None
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                if holder and ins.argval in READ_METHODS:
                    return True
                target = getattr(module, ins.argval, None) if module is not None else None
            elif ins.opname == "LOAD_GLOBAL":
                target = fn.__globals__.get(ins.argval)
            module = target if inspect.ismodule(target) else None
            holder = ins.opname in ("LOAD_FAST", "LOAD_DEREF") and ins.argval in BODY_HOLDERS
            if any(target is reader for reader in READERS) or (_ours(target) and reads_body(target, seen)):
                return True
    return False


def route_reads_body(route: APIRoute) -> bool:
    def dependencies(dependant) -> list[Any]:
        return [d.call for d in dependant.dependencies] + [c for d in dependant.dependencies for c in dependencies(d)]

    return any(reads_body(call) for call in [route.endpoint, *dependencies(route.dependant)] if call is not None)


def operations(dialect: Dialect):
    """(method, path as the document writes it without the mount prefix, mount prefix, route) of each operation."""
    for api in dialect.apis:
        for router in api.routers():
            for route in router.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    for method in sorted(route.methods):
                        yield method, route.path_format, api.prefixes[0], route


async def _reads(request):
    return await params.json_object(request)


async def _streams(request):
    async for _ in request.stream():
        pass


async def _through_a_helper(request):
    async def helper():
        return await _reads(request)

    return await helper()


def _reads_nothing(request, principal):
    return {"q": request.query_params.get("q"), "p": principal, "h": request.headers.get("range")}


def test_the_detection_sees_a_body_read_and_its_absence():
    assert reads_body(_reads) and reads_body(_streams) and reads_body(_through_a_helper)
    assert not reads_body(_reads_nothing)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_route_that_reads_its_body_declares_it(dialect: Dialect):
    doc = document(dialect)
    undeclared, needless = [], []
    for method, path, prefix, route in operations(dialect):
        key = input_key(dialect.inputs, method, prefix, path)
        takes: Takes | None = dialect.inputs[key] if key else None
        spec = doc["paths"][prefix + path][method.lower()]
        if not route_reads_body(route):
            if takes is not None and takes.body:
                needless.append(f"{method} {path}")
        elif method in SAFE:
            if takes is None or takes.query is None:
                undeclared.append(f"{method} {path} (its query parameters)")
        elif takes is None or not takes.body:
            undeclared.append(f"{method} {path}")
        else:
            assert set(spec["requestBody"]["content"]) == set(takes.body), (method, path)
            assert spec["requestBody"]["required"] is takes.required, (method, path)
    assert not undeclared, (
        f"{dialect.name}: routes that read their body but declare none in schemas.INPUTS: {undeclared}"
    )
    assert not needless, f"{dialect.name}: bodies declared for routes that read none: {needless}"


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_declared_query_parameters_are_in_the_document(dialect: Dialect):
    doc = document(dialect)
    full = {input_key(dialect.inputs, m, prefix, path): prefix + path for m, path, prefix, _ in operations(dialect)}
    for (method, path), takes in dialect.inputs.items():
        spec = doc["paths"][full[method, path]][method.lower()]
        declared = {p["name"] for p in spec.get("parameters", ()) if p["in"] == "query"}
        wanted = {f.alias or name for name, f in takes.query.model_fields.items()} if takes.query else set()
        assert wanted <= declared, (dialect.name, method, path, wanted - declared)
        if JSON in takes.body:
            assert "schema" in spec["requestBody"]["content"][JSON], (method, path)


def test_a_table_entry_for_no_operation_is_refused():
    dialect = DIALECTS[0]
    stale = Dialect(**{**vars(dialect), "inputs": {**dialect.inputs, ("POST", "/no/such/route"): Takes()}})
    with pytest.raises(ValueError, match="no/such/route"):
        document(stale)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_table_entry_names_one_operation(dialect: Dialect):
    """INPUTS keys are (method, path inside its mount): a key that two mounts' routes share would declare one input
    for two different operations. A dialect whose mounts come to share a path needs its keys to say which."""
    mounts: dict[tuple[str, str], set[str]] = {}
    for method, path, prefix, _ in operations(dialect):
        key = input_key(dialect.inputs, method, prefix, path)
        if key is not None:
            mounts.setdefault(key, set()).add(prefix)
    shared = {key: sorted(prefixes) for key, prefixes in mounts.items() if len(prefixes) > 1}
    assert not shared, f"{dialect.name}: INPUTS keys that name routes under several mounts: {shared}"


def test_a_key_shared_by_two_mounts_is_caught():
    dialect = next(d for d in DIALECTS if d.name == "domino")
    form = next(api for api in dialect.apis if api.prefixes == ("/project",))  # POST / (the legacy form) is in INPUTS
    twice = Dialect(**{**vars(dialect), "apis": (*dialect.apis, replace(form, prefixes=("/again",)))})
    with pytest.raises(AssertionError, match="several mounts"):
        test_a_table_entry_names_one_operation(twice)
