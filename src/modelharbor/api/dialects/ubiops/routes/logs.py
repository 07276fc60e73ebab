"""UbiOps ``GET /projects/{project_name}/logs`` (the 4.15 client's ``logs_list``): deployment logs as ``LogList``.

``query`` is LogQL's label selector and line filters (api/dialects/ubiops/logql.py says which); ``start`` (inclusive) and
``end`` (exclusive) are ISO 8601 times; ``limit`` 1–5,000 (default 1,000).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.logql import parse_logql
from modelharbor.api.dialects.ubiops.mapping import log_json
from modelharbor.api.dialects.ubiops.routes import P
from modelharbor.core.serving import logs as serving_logs
from modelharbor.domain.errors import InvalidInput

router = APIRouter()


def _time(value: str | None, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be an ISO 8601 date and time, not {value[:64]!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _limit(value: str | None) -> int | None:
    """``limit``: a whole number (the core checks its range); None when absent."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"limit must be a whole number, not {value!r}") from None


@router.get(P + "/logs")
def list_logs(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    query = parse_logql(q.get("query"))
    start, end, limit = _time(q.get("start"), "start"), _time(q.get("end"), "end"), _limit(q.get("limit"))
    entries = serving_logs.deployment_logs(
        services.serving, principal, project_name, query=query, start=start, end=end, limit=limit
    )
    return [log_json(e) for e in entries]
