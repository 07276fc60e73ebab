"""MLflow dialect: the tracking, model-registry and proxied-artifact REST APIs the ``mlflow`` client calls.

Mounted at ``/api/2.0/mlflow`` (tracking + registry; the registry's routes are hot: ``api/hot.py`` answers them
by one ``(method, path)`` lookup) and ``/api/2.0/mlflow-artifacts`` (artifacts). See docs/dialects/mlflow.md for
coverage.

Credentials: ``Authorization: Bearer <API key>`` (``MLFLOW_TRACKING_TOKEN``) or HTTP Basic
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``: a user's password, or an API key as the password).
Errors: ``{"error_code", "message"}`` (mapping.py). Search filters: MLflow's grammar, parsed here (filters.py).
"""

from __future__ import annotations

import base64

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import bearer_token, principal_of_key, services_of
from modelharbor.api.dialect import Api, Dialect, principal_dep
from modelharbor.api.dialects.mlflow import schemas
from modelharbor.api.dialects.mlflow.mapping import internal_error, render
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal


# Async: FastAPI runs a plain ``def`` dependency in a worker thread, and on a busy box handing a request to a thread
# and back costs more than a key verified a moment ago (bench/registry.py); the database is read in a thread.
async def authenticate(request: Request) -> Principal:
    services = services_of(request)
    token = bearer_token(request)
    if token:
        return await principal_of_key(services, token)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        return await run_in_threadpool(services.identity.authenticate_basic, username, password)
    raise Unauthenticated(
        "credentials required: set MLFLOW_TRACKING_TOKEN to a ModelHarbor API key "
        "(or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
    )


PrincipalDep = principal_dep(authenticate)


def _tracking_routers():
    from modelharbor.api.dialects.mlflow.routes import registry, tracking

    return [registry.router, tracking.router]  # the registry's first: its routes are the hot ones


def _artifact_routers():
    from modelharbor.api.dialects.mlflow.routes import artifacts

    return [artifacts.router]


DIALECT = Dialect(
    name="mlflow",
    title="MLflow",
    apis=(
        Api(("/api/2.0/mlflow",), _tracking_routers, redirect_slashes=True, hot_exact=True),
        Api(("/api/2.0/mlflow-artifacts",), _artifact_routers, redirect_slashes=True),
    ),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    security=schemas.SECURITY,
    error_schema=schemas.ErrorBody.model_json_schema(),
    inputs=schemas.INPUTS,
)

__all__ = ["DIALECT", "PrincipalDep", "authenticate"]
