"""What deployments write while they run: their instances' stdout/stderr and the executor's own notes on them.

Lines come from the executor (compute/base.py ``Executor.logs``), which keeps the recent lines of every version it
runs (the local backend: in memory, about 1 MiB per instance and the last 8 ended instances of a version; gone
when the server restarts). Reading them takes read access to the project. Filters: deployment, version, a time window,
level (``info`` = stdout and the executor's lines, ``error`` = stderr), instance, and text that lines must or must
not contain; at most ``MAX_LIMIT`` lines per call, the newest when there are more.

The label and line filters come as the domain's typed :class:`~modelharbor.domain.logs.LogQuery` (UbiOps' LogQL is
parsed into one by api/dialects/ubiops/logql.py; the native API builds one from its parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.logs import LogEntry, LogQuery
from modelharbor.domain.principal import Principal

if TYPE_CHECKING:  # the service imports this module's callers; only the type is needed here
    from modelharbor.core.serving.service import ServingService

MAX_LIMIT, DEFAULT_LIMIT = 5000, 1000


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def deployment_logs(
    serving: ServingService,
    principal: Principal,
    project: str,
    *,
    query: LogQuery | None = None,
    deployment: str | None = None,
    version: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int | None = None,
) -> list[LogEntry]:
    """The project's deployment log lines matching the filters, oldest first: the newest ``limit`` of them (1 to
    ``MAX_LIMIT``; None: ``DEFAULT_LIMIT``). ``start`` is inclusive, ``end`` exclusive (seconds since the epoch).
    Unknown deployments/versions → NotFound."""
    n = _limit(limit)
    query = query or LogQuery()
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end must be later than start")
    deployment = deployment if deployment is not None else query.wanted("deployment_name")
    version = version if version is not None else query.wanted("deployment_version")
    if deployment is not None:
        names = [serving.get_deployment(principal, project, deployment).name]  # permission + existence
    else:
        names = [d.name for d in serving.list_deployments(principal, project)]  # permission
    out: list[LogEntry] = []
    for name in names:
        if version is not None and deployment is not None:
            versions = [serving.get_version(principal, project, name, version)]
        else:
            versions = [v for v in serving.list_versions(principal, project, name) if version in (None, v.version)]
        for v in versions:
            # start is inclusive, to the microsecond (what an ISO 8601 time given back carries)
            for line in serving.executor.logs(v.id, since=None if start is None else start - 1e-6):
                if end is not None and line.time >= end:
                    continue
                entry = LogEntry(line.time, name, v.version, line.instance, line.pid, line.stream, line.text)
                if query.ok(entry):
                    out.append(entry)
    out.sort(key=lambda e: e.time)
    return out[-n:]
