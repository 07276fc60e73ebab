"""The native API's OpenAPI document, made to say what the server answers.

FastAPI's own document describes each route's success and a 422 the native API never sends. :func:`install`
gives the app an ``openapi()`` that starts from FastAPI's document and, for every operation in it (routes added
later included: nothing here lists routes),

* declares the errors the operation can answer, each with the native envelope (``ErrorOut``): the codes the rule
  table ``ERRORS`` derives from what the operation takes and does, plus any its route adds with
  ``responses=errors(…)``; FastAPI's 422 goes;
* declares the security schemes (an API key as ``Authorization: Bearer <key>`` or ``Token <key>``; a signed
  link's query where a route accepts one) and requires a key on every operation whose route does not say
  ``openapi_extra={"security": []}``.

Path parameters keep the types the routes validate, which FastAPI derives from the signatures (a catalogue
model's ``{pk:int}``, a registered model's ``version: int``). 405 answers name the allowed methods (api/allow.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from modelharbor.api.native.schemas import ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
WRITES = frozenset({"post", "put", "patch", "delete"})
READS_MARK = "x-reads"

API_KEY, API_KEY_TOKEN, SIGNED_LINK = "ApiKey", "ApiKeyToken", "SignedLink"
SECURITY_SCHEMES = {
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (POST /keys, `modelharbor keys create`) as `Authorization: Bearer <key>`.",
    },
    API_KEY_TOKEN: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The same API key as `Authorization: Token <key>`.",
    },
    SIGNED_LINK: {
        "type": "apiKey",
        "in": "query",
        "name": "signature",
        "description": "A signed link (POST /files/{file_id}/links): its `expires`, `nonce` and `signature` query "
        "parameters stand for the key.",
    },
}
KEY = [{API_KEY: []}, {API_KEY_TOKEN: []}]
# openapi_extra of a route that also takes a signed link instead of a key
KEY_OR_SIGNED_LINK = {"security": [*KEY, {SIGNED_LINK: []}]}
# openapi_extra of a route that changes nothing although its method is POST (a search with its filter as the body)
READS = {READS_MARK: True}


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


# Every error status of the native API: what it means, and which operations answer it.
ERRORS: dict[int, ErrorAnswer] = {
    400: ErrorAnswer(
        "Invalid input: a parameter, the body or a combination of them (`INVALID_INPUT`, or a more precise code), "
        "naming the problem.",
        lambda op: op.takes_input,
    ),
    401: ErrorAnswer(
        "No API key, or one that is unknown, revoked or expired (`UNAUTHENTICATED`).",
        lambda op: op.authenticated,
        (("WWW-Authenticate", "Bearer"),),
    ),
    403: ErrorAnswer(
        "The key's role, or its access to the project, does not allow this (`FORBIDDEN`); for a signed link, "
        "a wrong or expired one (`INVALID_SIGNATURE`, `URL_EXPIRED`).",
        lambda op: (op.authenticated and op.changes) or op.takes_signed_link,
    ),
    404: ErrorAnswer(
        "An object the path names does not exist, or belongs to another organisation (`NOT_FOUND`, or a more "
        "precise code).",
        lambda op: op.names_objects,
    ),
    409: ErrorAnswer(
        "The state of an object does not allow this: a name already taken, a file in use, a session completed… "
        "(`CONFLICT`, or a more precise code).",
        lambda op: op.changes,
    ),
    410: ErrorAnswer("The object is gone for good: an upload session aborted or expired (`SESSION_ABORTED`, …).", None),
    413: ErrorAnswer(
        "More bytes than the server takes: a JSON body over 16 MiB, a file over its limit… (`TOO_LARGE`, "
        "`FILE_TOO_LARGE`).",
        lambda op: op.takes_body,
    ),
    416: ErrorAnswer(
        "A malformed `Range`, or one outside the bytes (`RANGE_NOT_SATISFIABLE`).",
        lambda op: op.ranged,
        (("Content-Range", "bytes */<size>"),),
    ),
    500: ErrorAnswer(
        "An unexpected failure (`INTERNAL`); `details.request_id` names the server's log entry.",
        lambda op: True,
        (("X-Request-Id", "The id the failure is logged under."),),
    ),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route that answers these errors besides what the rules derive for it."""
    return {code: {"description": ERRORS[code].description} for code in codes}


def accurate(doc: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document of the native API, with the errors and security the server really has."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorOut"] = error_schema
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    doc["security"] = copy.deepcopy(KEY)
    for item in doc.get("paths", {}).values():
        for method, spec in item.items():
            if isinstance(spec, dict) and "responses" in spec:
                _describe(Operation(method, spec))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(doc["paths"]):
            schemas.pop(unused, None)
    return doc


def _describe(op: Operation) -> None:
    responses: dict[str, Any] = op.spec["responses"]
    responses.pop("422", None)  # FastAPI's validation answer: the native API answers 400
    for status, answer in ERRORS.items():
        if answer.when is not None and answer.when(op):
            responses.setdefault(str(status), {"description": answer.description})
    for status, response in responses.items():
        if not status.isdecimal() or int(status) < 400:
            continue
        answer = ERRORS.get(int(status))
        response.setdefault("description", answer.description if answer else "An error.")
        response["content"] = {"application/json": {"schema": dict(ERROR_REF)}}
        if answer and answer.headers:
            response["headers"] = {
                name: {"description": text, "required": True, "schema": {"type": "string"}}
                for name, text in answer.headers
            }
    op.spec["responses"] = dict(sorted(responses.items(), key=lambda kv: (not kv[0].isdecimal(), kv[0])))
    op.spec.pop(READS_MARK, None)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) answer the accurate document; it is built once, and
    again after ``app.openapi_schema`` is reset."""
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = accurate(fastapi_openapi())  # FastAPI's (which it caches there too), corrected
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
