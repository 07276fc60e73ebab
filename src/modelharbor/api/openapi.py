"""OpenAPI documents that say what the server answers: the rules shared by the native API and every dialect.

FastAPI's own document describes each route's success and a 422 that ModelHarbor never sends. :func:`accurate`
starts from it and, for every operation (nothing here lists routes), declares the errors the operation can
answer — the statuses a rule table derives from what the operation takes and does, plus any its route adds with
``responses`` — each with the API's own error schema; FastAPI's 422 goes; the security schemes are declared and
required on every operation whose route does not say ``openapi_extra={"security": []}``.

The native API's table and schemes are in ``api/native/openapi.py``; a dialect's come from its ``Dialect``
(``error_schema``, ``security``, ``statuses``) and :func:`dialect_document` serves them at
``/openapi/<dialect>.json`` (docs/dialects/README.md).

A dialect's routes read their bodies and query strings by hand (``api/params.py``, ``api/multipart.py``: the vendor's
leniencies and messages), so FastAPI sees neither. What each operation takes is declared once, in the dialect's
``schemas.py``: a table ``(method, path) -> Takes`` (``Dialect.inputs``; the path as the document writes it, without
the mount prefix) naming its body per media type — a pydantic model of the wire shape, ``bytes`` for raw bytes,
``str`` for text — and its query parameters (a pydantic model, one parameter per field). :func:`dialect_document`
writes them into the operations; an entry that names no operation, or two different schemas of one name, is an
error. ``tests/api/test_dialect_inputs.py`` checks that every route reading a body has its entry.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

WRITES = frozenset({"post", "put", "patch", "delete"})
READS_MARK = "x-reads"
SIGNED_LINK = "SignedLink"


@dataclass(frozen=True)
class Operation:
    """What the rules look at: one operation of FastAPI's document."""

    method: str
    spec: dict[str, Any]

    @property
    def takes_input(self) -> bool:
        return bool(self.spec.get("parameters")) or "requestBody" in self.spec

    @property
    def authenticated(self) -> bool:
        return self.spec.get("security") != []

    @property
    def changes(self) -> bool:
        return self.method in WRITES and not self.spec.get(READS_MARK)

    @property
    def names_objects(self) -> bool:
        return any(p.get("in") == "path" for p in self.spec.get("parameters", ()))

    @property
    def takes_body(self) -> bool:
        return "requestBody" in self.spec

    @property
    def takes_signed_link(self) -> bool:
        return any(SIGNED_LINK in alternative for alternative in self.spec.get("security", ()))

    @property
    def ranged(self) -> bool:
        return "206" in self.spec.get("responses", {})


@dataclass(frozen=True)
class ErrorAnswer:
    description: str
    when: Callable[[Operation], bool] | None  # None: only where a route declares it (``responses=errors(…)``)
    headers: tuple[tuple[str, str], ...] = ()  # (name, description) of headers the answer always carries


@dataclass(frozen=True)
class Profile:
    """What one API's document declares: its error body, its statuses and when each applies, its credentials."""

    error_name: str
    error_schema: dict[str, Any]
    errors: dict[int, ErrorAnswer]
    security_schemes: dict[str, Any]
    security: list[dict[str, list]]


def accurate(doc: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """FastAPI's document, with the errors and security the server really has."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = copy.deepcopy(profile.error_schema)
    schemas.update(error_schema.pop("$defs", {}))
    schemas[profile.error_name] = error_schema
    if profile.security_schemes:
        components["securitySchemes"] = copy.deepcopy(profile.security_schemes)
        doc["security"] = copy.deepcopy(profile.security)
    ref = {"$ref": f"#/components/schemas/{profile.error_name}"}
    for item in doc.get("paths", {}).values():
        for method, spec in item.items():
            if isinstance(spec, dict) and "responses" in spec:
                _describe(Operation(method, spec), profile, ref)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(doc["paths"]):
            schemas.pop(unused, None)
    return doc


def _describe(op: Operation, profile: Profile, ref: dict[str, str]) -> None:
    responses: dict[str, Any] = op.spec["responses"]
    responses.pop("422", None)  # FastAPI's validation answer: every API here answers 400
    for status, answer in profile.errors.items():
        if answer.when is not None and answer.when(op):
            responses.setdefault(str(status), {"description": answer.description})
    for status, response in responses.items():
        if not status.isdecimal() or int(status) < 400:
            continue
        answer = profile.errors.get(int(status))
        response.setdefault("description", answer.description if answer else "An error.")
        response["content"] = {"application/json": {"schema": dict(ref)}}
        if answer and answer.headers:
            response["headers"] = {
                name: {"description": text, "required": True, "schema": {"type": "string"}}
                for name, text in answer.headers
            }
    op.spec["responses"] = dict(sorted(responses.items(), key=lambda kv: (not kv[0].isdecimal(), kv[0])))
    op.spec.pop(READS_MARK, None)


# The statuses a dialect answers, and when (dialects name their own codes in their docs pages).
DIALECT_ERRORS: dict[int, ErrorAnswer] = {
    400: ErrorAnswer("Invalid input: a parameter, the body or a combination of them.", lambda op: True),
    # open operations too: a login refuses a wrong password, a signed link a bad or expired signature
    401: ErrorAnswer("No credentials, or unknown, revoked or expired ones.", lambda op: True),
    403: ErrorAnswer("The credentials (or the signed link) do not allow this.", lambda op: True),
    404: ErrorAnswer("An object the path or the body names does not exist.", lambda op: True),
    405: ErrorAnswer("The path does not take this method (``Allow`` names those it takes).", None),
    409: ErrorAnswer("The state of an object does not allow this.", lambda op: op.changes),
    410: ErrorAnswer("The object is gone for good.", None),
    413: ErrorAnswer("More bytes than the server takes.", lambda op: op.method in WRITES),
    415: ErrorAnswer("A file type the route does not take.", None),
    416: ErrorAnswer("A malformed ``Range``, or one outside the bytes.", lambda op: op.ranged),
    500: ErrorAnswer("An unexpected failure, logged under the request id the body names.", lambda op: True),
    501: ErrorAnswer("What ModelHarbor does not do (the message says what to do instead).", None),
}


def _declare_path_parameters(path: str, spec: dict[str, Any]) -> None:
    """Every ``{name}`` of the path is a parameter of the operation: a route that reads it from
    ``request.path_params`` rather than its signature gets it declared as a string."""
    params = spec.setdefault("parameters", [])
    declared = {p["name"] for p in params if p.get("in") == "path"}
    for name in re.findall(r"\{([^}:]+)[^}]*\}", path):
        if name not in declared:
            params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if not params:
        del spec["parameters"]


# --- what routes read by hand -----------------------------------------------------------------------
JSON = "application/json"
FORM = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
BYTES = "application/octet-stream"
TEXT = "text/plain"

Shape = Any  # a pydantic model or any type pydantic describes (``FilterSpec | None``), bytes, str, a JSON schema


@dataclass(frozen=True)
class Takes:
    """What one operation reads by hand: ``body`` (media type -> a pydantic model or another type pydantic
    describes, ``bytes`` for raw bytes, ``str`` for text, or a JSON schema; a ``bytes`` field of a form model is a
    file part), whether a body is ``required``, ``query`` (a pydantic model whose fields, by alias, are the query
    parameters) and the error ``statuses`` its input can add (415 for a file type the route refuses, 410 for a
    session gone, 501 for a vendor feature ModelHarbor does not have)."""

    body: Mapping[str, Shape] = field(default_factory=dict)
    required: bool = True
    query: type[BaseModel] | None = None
    statuses: tuple[int, ...] = ()


Inputs = Mapping[tuple[str, str], Takes]  # (METHOD, path without the mount prefix) -> what it takes


def input_key(inputs: Inputs, method: str, prefix: str, path: str) -> tuple[str, str] | None:
    """The key of an operation in ``inputs``: ``(METHOD, prefix + path)`` when the table names its full path (two
    mounts sharing a path inside them, e.g. the root ``/`` of ``/project`` and ``/dataset``), else ``(METHOD,
    path)``; None when it has none."""
    for key in ((method.upper(), prefix + path), (method.upper(), path)):
        if key in inputs:
            return key
    return None


def _put(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name!r}: rename one of the models")


def _schema(shape: Shape, schemas: dict[str, Any]) -> dict[str, Any]:
    if shape is bytes:
        return {"type": "string", "format": "binary"}
    if shape is str:
        return {"type": "string"}
    if isinstance(shape, dict):
        return copy.deepcopy(shape)
    model = isinstance(shape, type) and issubclass(shape, BaseModel)
    schema = TypeAdapter(shape).json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        _put(schemas, name, sub)
    if not model:
        return schema
    _put(schemas, shape.__name__, schema)
    return {"$ref": f"#/components/schemas/{shape.__name__}"}


def _parameter(name: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """A query parameter of a ``Takes.query`` field: absent rather than null, described by its field."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    description = schema.pop("description", None)
    options = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if "anyOf" in schema and len(options) == 1:
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
    elif "anyOf" in schema:
        schema["anyOf"] = options
    if schema.get("default", ...) is None:
        del schema["default"]
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    return {**parameter, "description": description} if description else parameter


def _declare_input(spec: dict[str, Any], takes: Takes, schemas: dict[str, Any]) -> None:
    if takes.body:
        content = {media: {"schema": _schema(shape, schemas)} for media, shape in takes.body.items()}
        spec["requestBody"] = {"required": takes.required, "content": content}
    if takes.query is not None:
        params = spec.setdefault("parameters", [])
        declared = {(p["name"], p["in"]) for p in params}
        model = takes.query.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in model.pop("$defs", {}).items():
            _put(schemas, sub_name, sub)
        required = set(model.get("required", ()))
        for name, schema in model.get("properties", {}).items():
            if (name, "query") not in declared:
                params.append(_parameter(name, schema, name in required))
    for status in takes.statuses:
        spec["responses"].setdefault(str(status), {"description": DIALECT_ERRORS[status].description})


def dialect_profile(dialect: Any) -> Profile:
    """A dialect's profile: the shared table, less the statuses it never answers (``Dialect.statuses``)."""
    errors = {s: a for s, a in DIALECT_ERRORS.items() if s in dialect.statuses}
    security = [{name: []} for name in dialect.security]
    return Profile(f"{dialect.title}Error", dialect.error_schema, errors, dialect.security, security)


def dialect_document(dialect: Any, apps: dict[str, Any]) -> dict[str, Any]:
    """One document for a dialect's sub-applications (``apps``: first mount prefix -> FastAPI app), paths
    prefixed by where each is mounted."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"ModelHarbor: the {dialect.title} dialect",
            "version": "1",
            "description": f"The {dialect.title} API as ModelHarbor serves it; coverage and gaps in {dialect.docs}.",
        },
        "paths": {},
        "components": {"schemas": {}},
    }
    inputs: Inputs = dialect.inputs
    unused = set(inputs)
    schemas = doc["components"]["schemas"]
    for prefix, app in apps.items():
        part = app.openapi()
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            _put(schemas, name, schema)
        for path, item in part.get("paths", {}).items():
            for method, spec in item.items():
                _declare_path_parameters(path, spec)
                key = input_key(inputs, method, prefix, path)
                if key is not None:
                    _declare_input(spec, inputs[key], schemas)
                    unused.discard(key)
            doc["paths"][prefix + path] = item
    if unused:
        raise ValueError(f"{dialect.name}'s inputs name operations it does not have: {sorted(unused)}")
    return accurate(doc, dialect_profile(dialect))
