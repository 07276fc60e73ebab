"""The native API's OpenAPI document, made to say what the server answers.

FastAPI's own document describes each route's success and a 422 the native API never sends. :func:`install`
gives the app an ``openapi()`` that starts from FastAPI's document and, with the rules of ``api/openapi.py``, for
every operation in it (routes added later included: nothing here lists routes),

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

from typing import Any

from fastapi import FastAPI

from modelharbor.api.native.schemas import ErrorOut
from modelharbor.api.openapi import READS_MARK, SIGNED_LINK, ErrorAnswer, Profile, accurate

API_KEY, API_KEY_TOKEN = "ApiKey", "ApiKeyToken"
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
    415: ErrorAnswer(
        "A body sent with a `Content-Type` that is not JSON (`UNSUPPORTED_TYPE`): send `Content-Type: "
        "application/json`, or no `Content-Type`.",
        lambda op: set(op.spec.get("requestBody", {}).get("content", {})) == {"application/json"},
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


def profile() -> Profile:
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    return Profile("ErrorOut", error_schema, ERRORS, SECURITY_SCHEMES, KEY)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) answer the accurate document; it is built once, and
    again after ``app.openapi_schema`` is reset."""
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = accurate(
                fastapi_openapi(), profile()
            )  # FastAPI's (which it caches there too), corrected
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
