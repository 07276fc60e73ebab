"""UbiOps ``GET /projects/{project_name}/logs`` (the 4.15 client's ``logs_list``): deployment logs as ``LogList``.

``query`` is LogQL's label selector and line filters (core/serving/logs.py says which); ``start`` (inclusive) and
``end`` (exclusive) are ISO 8601 times; ``limit`` 1–5,000 (default 1,000). ``timestamp`` is in nanoseconds since the
epoch (Loki's unit — inferred, the vendor does not say).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep
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


def log_json(e: serving_logs.LogEntry) -> dict[str, Any]:
    t = datetime.fromtimestamp(e.time, tz=UTC)
    return {
        "timestamp": int(round(e.time * 1e9)),
        "timestamp_str": t.isoformat().replace("+00:00", "Z"),
        "log": e.text,
        "metadata": {
            "deployment_name": e.deployment,
            "deployment_version": e.version,
            "instance_id": e.instance,
            "process_id": e.pid,
            "system": e.stream == "system",
            "level": e.level,
        },
    }


@router.get("/projects/{project_name}/logs")
async def list_logs(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    query = serving_logs.parse_logql(q.get("query"))
    start, end = _time(q.get("start"), "start"), _time(q.get("end"), "end")
    entries = await run_in_threadpool(
        serving_logs.deployment_logs,
        services.serving,
        principal,
        project_name,
        query=query,
        start=start,
        end=end,
        limit=q.get("limit"),
    )
    return [log_json(e) for e in entries]
