"""UbiOps dialect: projects, environments and their tags, deployments, versions, package revisions, requests,
pipelines, environment variables, exports/imports and logs as the ``ubiops`` client (4.15; API v2, also v2.1)
calls them. One API mounted at ``/v2`` and ``/v2.1``; ``GET /status`` is open at the root too. The prediction
(``POST …/deployments/{d}[/versions/{v}]/requests``) is a hot route (api/hot.py), answered ahead of FastAPI by the
same function its FastAPI route calls. See docs/dialects/ubiops.md for coverage and gaps.

Credentials: ``Authorization: Token <key>`` (what the client sends for a bare key; ``Bearer`` works too), a
ModelHarbor API key. Errors: ``{"error": "..."}`` (mapping.py), 401s with ``WWW-Authenticate: Token``.
"""

from __future__ import annotations

from fastapi import Request
from starlette.routing import Route

from modelharbor.api.common import principal_of_key, services_of, token_of
from modelharbor.api.dialect import Api, Dialect, principal_dep
from modelharbor.api.dialects.ubiops import schemas
from modelharbor.api.dialects.ubiops.mapping import internal_error, render
from modelharbor.api.hot import PlainRoute
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal


async def principal_of(services, authorization: str) -> Principal:
    """The principal of an ``Authorization`` header value (the hot route reads the header from bytes)."""
    token = token_of(authorization)
    if not token:
        raise Unauthenticated("credentials required: send 'Authorization: Token <ModelHarbor API key>'")
    return await principal_of_key(services, token)  # on the event loop when the key was verified a moment ago


async def authenticate(request: Request) -> Principal:
    return await principal_of(services_of(request), request.headers.get("authorization", ""))


PrincipalDep = principal_dep(authenticate)


def _routers():
    from modelharbor.api.dialects.ubiops.routes import (
        deployments,
        env_vars,
        environment_revisions,
        environments,
        logs,
        pipeline_requests,
        pipelines,
        projects,
        requests,
        status,
        transfer,
    )

    return [
        status.router,
        projects.router,
        environments.router,
        environment_revisions.router,
        env_vars.router,
        deployments.router,
        requests.router,
        pipelines.router,
        pipeline_requests.router,
        transfer.router,
        logs.router,
    ]


def _root_routes():
    from modelharbor.api.dialects.ubiops.routes.status import status

    return [Route("/status", status, methods=["GET"])]


def _hot():
    from modelharbor.api.dialects.ubiops.routes.requests import PREDICT, predict

    return [PlainRoute("POST", PREDICT, predict, b"POST /v2")]


DIALECT = Dialect(
    name="ubiops",
    title="UbiOps",
    apis=(Api(("/v2", "/v2.1"), _routers),),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    root_routes=_root_routes,
    hot=_hot,
    security=schemas.SECURITY,
    error_schema=schemas.Error.model_json_schema(),
    inputs=schemas.INPUTS,
)

__all__ = ["DIALECT", "PrincipalDep"]
