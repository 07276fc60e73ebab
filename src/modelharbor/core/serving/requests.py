"""Requests to a deployment: direct (validated, answered by the executor, checked, kept as the version's retention
mode says) and batch (queued, task ``serving_batch``, answered by the background workers); the sweep of old kept
requests. The operations on kept requests are core/serving/request_history.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.compute.base import WorkerSpec
from modelharbor.core.bridges import run_sync
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving import request_history as kept
from modelharbor.core.serving.entities import Deployment, RequestResult
from modelharbor.core.serving.lookup import Route, held_if_present
from modelharbor.core.serving.request_history import bounded_int
from modelharbor.core.serving.validation import (
    BATCH_TASK,
    DEFAULT_TIMEOUT,
    MAX_BATCH,
    MAX_TIMEOUT,
    check_fields,
    hardware_tier_of,
    truncate,
)
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import DeploymentRequestRow, DeploymentRow, DeploymentVersionRow
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require


class Requests:
    """Direct and batch requests (mixed into ServingService)."""

    async def request(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
    ) -> RequestResult:
        """One direct request: validated, answered, checked, and kept as the version's retention mode says."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="deployment")
        timeout = bounded_int(timeout, "timeout", DEFAULT_TIMEOUT, 10, MAX_TIMEOUT)
        if (
            not isinstance(project, str)
            or not isinstance(deployment, str)
            or (version is not None and not isinstance(version, str))
        ):
            raise NotFound("Deployment not found")
        route = self._routes.get((principal.org_id, project, deployment, version))
        if route is None or route.expires <= time.monotonic():
            route = await asyncio.to_thread(self._route, principal, project, deployment, version)
        d, v = route.deployment, route.version
        self._check_input(d, data)
        if route.revision_id is None:
            raise InvalidInput(
                f"Version {v.version!r} of {d.name!r} is not available: "
                + (
                    "its package is still building; retry shortly."
                    if v.status == "processing"
                    else "upload a deployment package first."
                )
            )
        started = now()
        status, value, error = await self._answer(route, data, timeout)
        request_id = new_uuid()
        if v.request_retention_mode != "none":
            keep = v.request_retention_mode == "full"
            await asyncio.to_thread(
                self._keep,
                request_id,
                d.id,
                v.id,
                principal.user_id,
                status,
                data if keep else None,
                value if keep else None,
                error,
                timeout,
                started,
            )
        return RequestResult(request_id, d.name, v.version, status, value, error, timeout, started)

    async def _answer(self, route: Route, data: Any, timeout: int) -> tuple[str, Any, str | None]:
        """(status, result, error) of one request — a list is a batch answered item by item — with the output
        checked against the deployment's output fields; the ``on_prediction`` hooks hear its outcome."""
        started = time.perf_counter()
        outcome = "error"  # refused before user code ran (its environment or package unavailable)
        try:
            answer = await self._execute(route, data, timeout)
            outcome = answer[0]
            return answer
        finally:
            if self.on_prediction:
                seconds = time.perf_counter() - started
                for hook in self.on_prediction:
                    hook(outcome, seconds)

    async def _execute(self, route: Route, data: Any, timeout: int) -> tuple[str, Any, str | None]:
        await self._ensure_deployed(route)
        d = route.deployment
        result = await self.executor.request(route.version.id, data, timeout=timeout)
        if not result.ok:
            return "failed", None, truncate(result.error)
        values = result.value if isinstance(data, list) else [result.value]
        if isinstance(data, list) and (not isinstance(values, list) or len(values) != len(data)):
            return "failed", None, "The deployment answered a batch with a different number of results."
        for value in values:
            if d.output_type == "structured":
                try:
                    check_fields(d.output_fields, value, what="output")
                except InvalidInput as exc:
                    return "failed", None, truncate(f"The deployment answered a wrong output: {exc.message}")
            elif not isinstance(value, str):
                return "failed", None, "The deployment is plain: request() must return a string."
        return "completed", result.value, None

    def _check_input(self, d: Deployment, data: Any) -> None:
        if d.input_type == "plain":
            if not isinstance(data, str):
                raise InvalidInput(f"Deployment {d.name!r} takes plain text input, not JSON.")
        elif isinstance(data, list):
            if not data:
                raise InvalidInput("A batch of requests must not be empty.")
            for item in data:
                check_fields(d.input_fields, item, what="input")
        else:
            check_fields(d.input_fields, data, what="input")

    async def _ensure_deployed(self, route: Route) -> None:
        vid = route.version.id
        current = self._deployed.get(vid)
        tier = hardware_tier_of(route.version.instance_type_group_name, route.version.settings)
        if (
            current is not None
            and current.revision == route.revision_id
            and self._deployed_env.get(vid) == (route.environment, tier)
            and current.env_vars == route.env_vars
            and (current.minimum_instances, current.maximum_instances, current.maximum_idle_time)
            == (
                route.version.minimum_instances,
                route.version.maximum_instances,
                float(route.version.maximum_idle_time),
            )
        ):
            return
        spec = await asyncio.to_thread(self._spec_for, route)
        with self._lock:
            self._deployed[vid] = spec
            self._deployed_env[vid] = (route.environment, tier)
        await asyncio.to_thread(self.executor.deploy, spec)

    def _spec_for(self, route: Route) -> WorkerSpec:
        spec, _, _, _ = self._prepare(route.revision_id, lambda _line: None)
        return replace(spec, env_vars=route.env_vars)

    def _keep(
        self, request_id, deployment_id, version_id, user_id, status, data, result, error, timeout, started
    ) -> None:
        with self.db.uow() as s:
            if not held_if_present(s, DeploymentVersionRow, version_id):
                return  # deleted while the request ran: its requests went with it
            s.add(
                DeploymentRequestRow(
                    id=request_id,
                    deployment_id=deployment_id,
                    version_id=version_id,
                    status=status,
                    request_data=data,
                    result=result,
                    error_message=error,
                    timeout=timeout,
                    created_by=user_id,
                    created_at=started,
                    started_at=started,
                    finished_at=now(),
                )
            )

    # --- batch (asynchronous) requests -----------------------------------------------------------
    def submit_batch(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        items: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
    ) -> list[RequestResult]:
        """Queue up to MAX_BATCH requests (each item one request) to be answered in the background; poll each with
        :meth:`get_request`. Their data and results are kept until read or the retention time passes."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="deployment")
        timeout = bounded_int(timeout, "timeout", DEFAULT_TIMEOUT, 10, MAX_TIMEOUT)
        if not isinstance(items, list) or not items:
            raise InvalidInput("A batch request is a non-empty JSON array: one element per request.")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"A batch may hold at most {MAX_BATCH} requests, not {len(items)}.")
        route = self._route(principal, project, deployment, version)
        for item in items:
            if isinstance(item, list):
                raise InvalidInput("Each element of a batch is one request (an object, or text for plain input).")
            self._check_input(route.deployment, item)
        t = now()
        ids = [new_uuid() for _ in items]
        with self.db.uow() as s:
            if not held_if_present(s, DeploymentVersionRow, route.version.id):
                raise NotFound(f"Version {route.version.version!r} of deployment {route.deployment.name!r} not found")
            for rid, item in zip(ids, items, strict=True):
                s.add(
                    DeploymentRequestRow(
                        id=rid,
                        deployment_id=route.deployment.id,
                        version_id=route.version.id,
                        status="pending",
                        request_data=item,
                        result=None,
                        error_message=None,
                        timeout=timeout,
                        created_by=principal.user_id,
                        created_at=t,
                        started_at=None,
                        finished_at=None,
                    )
                )
            self.tasks.enqueue_in(
                s, BATCH_TASK, {"request_ids": ids, "user_id": principal.user_id}, org_id=principal.org_id
            )
        return [
            RequestResult(rid, route.deployment.name, route.version.version, "pending", None, None, timeout, t)
            for rid in ids
        ]

    def process_batch(self, request_ids: list[str], progress: Callable[[int], None]) -> dict[str, Any]:
        """Answer queued batch requests (a background task): each pending one becomes completed or failed (one
        cancelled meanwhile stays cancelled)."""
        done = failed = 0
        for n, rid in enumerate(request_ids):
            with self.db.uow() as s:
                row = kept.claim(s, DeploymentRequestRow, rid)
                if row is None:
                    continue
                v = s.get(DeploymentVersionRow, row.version_id)
                d = s.get(DeploymentRow, v.deployment_id)
                p = s.get(RegistryProjectRow, d.project_id)
                route = Route(
                    expires=0.0,
                    org_id=p.org_id,
                    project=p.name,
                    deployment=self._deployment_entity(s, p.name, d),
                    version=self.version_entity(s, p.name, d, v),
                    revision_id=v.active_revision_id,
                    environment=self._built_in(s, v),
                    env_vars=self._effective_env(s, p.id, d.id, v.id),
                )
                data, timeout, mode = row.request_data, row.timeout, v.request_retention_mode
            if route.revision_id is None:
                status, value, error = "failed", None, "The version has no built package to answer with."
            else:
                try:
                    status, value, error = run_sync(self._answer(route, data, timeout))
                except HarborError as exc:
                    status, value, error = "failed", None, truncate(exc.message)
            with self.db.uow() as s:
                kept.settle(s, DeploymentRequestRow, rid, status, value, error, mode)  # not if cancelled meanwhile
            done += status == "completed"
            failed += status == "failed"
            progress(min(99, (n + 1) * 100 // len(request_ids)))
        return {"completed": done, "failed": failed}

    def _kept_owner(self, s: Session, principal: Principal, project: str, deployment: str) -> DeploymentRow:
        return self._deployment_row(s, self.project_row(s, principal, project), deployment)

    def sweep_requests(self) -> int:
        """Delete kept requests older than their version's retention time (with those of the services in
        ``on_sweep_requests``: pipeline requests); returns how many."""
        removed = 0
        with self.db.uow() as s:
            for v in s.scalars(select(DeploymentVersionRow)):
                cutoff = now() - timedelta(seconds=v.request_retention_time)
                removed += (
                    s.execute(
                        delete(DeploymentRequestRow).where(
                            DeploymentRequestRow.version_id == v.id,
                            DeploymentRequestRow.created_at < cutoff,
                            DeploymentRequestRow.status.in_(kept.FINISHED),
                        )
                    ).rowcount
                    or 0
                )
            for hook in self.on_sweep_requests:
                removed += hook(s)
        return removed

    @staticmethod
    def _request_entity(d: DeploymentRow, version: str, row: DeploymentRequestRow) -> RequestResult:
        return RequestResult(
            row.id,
            d.name,
            version,
            row.status,
            row.result,
            row.error_message,
            row.timeout,
            aware(row.created_at),
            request_data=row.request_data,
            started_at=aware(row.started_at) if row.started_at else None,
            finished_at=aware(row.finished_at) if row.finished_at else None,
        )
