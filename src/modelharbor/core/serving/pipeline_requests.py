"""Requests to a pipeline: direct (run object by object, each object's call a deployment request of its own, kept as
the version's retention mode says) and batch (queued, task ``pipeline_batch``); the kept-request hooks (owner,
entity, sweep). What a pipeline is: core/serving/pipelines.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import run_sync
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving import request_history as kept
from modelharbor.core.serving.entities import Pipeline, PipelineResult, PipelineVersion, StepResult
from modelharbor.core.serving.lookup import held_if_present
from modelharbor.core.serving.pipeline_graph import END, START
from modelharbor.core.serving.request_history import bounded_int
from modelharbor.core.serving.validation import MAX_BATCH, MAX_TIMEOUT, check_fields, truncate
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import PipelineRequestRow, PipelineRow, PipelineVersionRow
from modelharbor.domain.errors import HarborError, InvalidInput
from modelharbor.domain.principal import Action, Principal, require

BATCH_TASK = "pipeline_batch"
DEFAULT_PIPELINE_TIMEOUT = MAX_TIMEOUT  # seconds for the whole pipeline; each object gets what remains
MAX_PIPELINE_TIMEOUT = 2 * MAX_TIMEOUT
REQUEST_STATUSES, FINISHED = kept.REQUEST_STATUSES, kept.FINISHED


class PipelineRequests:
    """Direct and batch requests of pipelines (mixed into PipelineService)."""

    # --- requests -------------------------------------------------------------------------------
    async def request(
        self,
        principal: Principal,
        project: str,
        pipeline: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
    ) -> PipelineResult:
        """One direct request: validated, run object by object, and kept as the version's retention mode says."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="pipeline")
        timeout = bounded_int(timeout, "timeout", DEFAULT_PIPELINE_TIMEOUT, 10, MAX_PIPELINE_TIMEOUT)
        pl, v = await asyncio.to_thread(self._for_request, principal, project, pipeline, version)
        self._check_input(pl, data)
        started = now()
        status, result, error, steps = await self._execute(principal, pl, v, data, timeout)
        finished = now()
        request_id = new_uuid()
        if v.request_retention_mode != "none":
            full = v.request_retention_mode == "full"
            row = PipelineRequestRow(
                id=request_id,
                pipeline_id=pl.id,
                version_id=v.id,
                status=status,
                request_data=data if full else None,
                result=result if full else None,
                error_message=error,
                timeout=timeout,
                deployment_requests=[step.to_json() for step in steps],
                created_by=principal.user_id,
                created_at=started,
                started_at=started,
                finished_at=finished,
            )
            await asyncio.to_thread(self._keep, row)
        return PipelineResult(
            request_id,
            pl.name,
            v.version,
            status,
            result,
            error,
            steps,
            timeout,
            started,
            started,
            finished,
            data,
            principal.user_id,
        )

    def _keep(self, row: PipelineRequestRow) -> None:
        with self.db.uow() as s:
            # the version may have gone while the request ran: then there is nothing to keep it under
            if held_if_present(s, PipelineVersionRow, row.version_id):
                s.add(row)

    @staticmethod
    def _check_input(pl: Pipeline, data: Any) -> None:
        if pl.input_type == "plain":
            if not isinstance(data, str):
                raise InvalidInput(f"Pipeline {pl.name!r} takes plain text input.")
        else:
            check_fields(pl.input_fields, data, what="input")

    async def _execute(
        self, principal: Principal, pl: Pipeline, v: PipelineVersion, data: Any, timeout: int
    ) -> tuple[str, Any, str | None, tuple[StepResult, ...]]:
        """Run the version's objects in dependency order: (status, result, error, steps). Each object's request
        gets the time the pipeline has left (at most a deployment request's maximum)."""
        objects = {o["name"]: o for o in v.objects}
        fed = {a["destination_name"]: a["sources"] for a in v.attachments}
        if END not in fed:  # an empty pipeline answers its input
            return "completed", data, None, ()
        outputs: dict[str, Any] = {START: data}
        steps: list[StepResult] = []
        done: dict[str, asyncio.Future] = {}
        failure: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def gather_input(dest: str) -> Any:
            sources = fed[dest]
            if len(sources) == 1 and not sources[0]["mapping"]:
                return outputs[sources[0]["source_name"]]
            value: dict[str, Any] = {}
            for src in sources:
                for m in src["mapping"]:
                    value[m["destination_field_name"]] = outputs[src["source_name"]][m["source_field_name"]]
            return value

        async def run(name: str) -> None:
            for src in fed[name]:
                if src["source_name"] != START:
                    await done[src["source_name"]]
            if failure:
                return
            obj = objects[name]
            started = now()
            left = max(10, min(MAX_TIMEOUT, int(deadline - loop.time())))
            try:
                answer = await self.serving.request(
                    principal,
                    pl.project,
                    obj["reference_name"],
                    gather_input(name),
                    version=obj.get("version"),
                    timeout=left,
                )
            except Exception as exc:  # noqa: BLE001 - any failure of a step fails the pipeline, reported
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                failure.append(f"Object {name!r} ({obj['reference_name']}): {message}")
                steps.append(
                    StepResult(
                        new_uuid(),
                        name,
                        obj["reference_name"],
                        obj.get("version") or "",
                        "failed",
                        truncate(message),
                        started,
                        now(),
                    )
                )
                return
            steps.append(
                StepResult(
                    answer.id,
                    name,
                    answer.deployment,
                    answer.version,
                    answer.status,
                    answer.error_message,
                    started,
                    now(),
                )
            )
            if answer.status != "completed":
                failure.append(f"Object {name!r} ({answer.deployment}): {answer.error_message}")
                return
            outputs[name] = answer.result

        for name in objects:
            done[name] = loop.create_future()

        async def run_and_mark(name: str) -> None:
            try:
                await run(name)
            finally:
                done[name].set_result(None)

        try:
            await asyncio.wait_for(asyncio.gather(*(run_and_mark(n) for n in objects)), timeout=timeout)
        except TimeoutError:
            failure.append(f"The pipeline took longer than {timeout} s.")
        if failure:
            return "failed", None, truncate(failure[0]), tuple(steps)
        result = gather_input(END)
        if pl.output_type == "structured":
            try:
                check_fields(pl.output_fields, result, what="output")
            except InvalidInput as exc:
                return "failed", None, truncate(exc.message), tuple(steps)
        return "completed", result, None, tuple(steps)

    def _for_request(self, principal: Principal, project: str, pipeline: str, version: str | None):
        with self.db.uow(readonly=True) as s:
            p, pl, row = self._resolve(s, principal, project, pipeline, version)
            return self._pipeline_entity(s, p.name, pl), self._version_entity(p.name, pl, row)

    def _resolve(self, s: Session, principal: Principal, project: str, pipeline: str, version: str | None):
        p = self.serving.project_row(s, principal, project)
        pl = self._pipeline_row(s, p, pipeline)
        if version is None:
            if pl.default_version_id is None:
                raise InvalidInput(f"Pipeline {pl.name!r} has no versions yet.")
            row = s.get(PipelineVersionRow, pl.default_version_id)
        else:
            row = self._version_row(s, pl, version)
        return p, pl, row

    # --- batch (asynchronous) requests -----------------------------------------------------------
    def submit_batch(
        self,
        principal: Principal,
        project: str,
        pipeline: str,
        items: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
    ) -> list[PipelineResult]:
        """Queue up to MAX_BATCH pipeline requests (each item one request), answered in the background; poll each
        with :meth:`get_request`."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="pipeline")
        timeout = bounded_int(timeout, "timeout", DEFAULT_PIPELINE_TIMEOUT, 10, MAX_PIPELINE_TIMEOUT)
        if not isinstance(items, list) or not items:
            raise InvalidInput("A batch request is a non-empty JSON array: one element per request.")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"A batch may hold at most {MAX_BATCH} requests, not {len(items)}.")
        t = now()
        ids = [new_uuid() for _ in items]
        with self.db.uow() as s:
            p, plrow, vrow = self._resolve(s, principal, project, pipeline, version)
            pl = self._pipeline_entity(s, p.name, plrow)
            for item in items:
                self._check_input(pl, item)
            for rid, item in zip(ids, items, strict=True):
                s.add(
                    PipelineRequestRow(
                        id=rid,
                        pipeline_id=plrow.id,
                        version_id=vrow.id,
                        status="pending",
                        request_data=item,
                        result=None,
                        error_message=None,
                        timeout=timeout,
                        deployment_requests=[],
                        created_by=principal.user_id,
                        created_at=t,
                        started_at=None,
                        finished_at=None,
                    )
                )
            self.serving.tasks.enqueue_in(
                s, BATCH_TASK, {"request_ids": ids, "user_id": principal.user_id}, org_id=principal.org_id
            )
            version_name = vrow.version
        return [PipelineResult(rid, pl.name, version_name, "pending", None, None, (), timeout, t) for rid in ids]

    def process_batch(
        self, request_ids: list[str], user_id: str, org_id: str, progress: Callable[[int], None]
    ) -> dict[str, Any]:
        """Answer queued batch requests (a background task) as their creator: each pending one becomes completed
        or failed (one cancelled meanwhile stays cancelled)."""
        done = failed = 0
        for n, rid in enumerate(request_ids):
            with self.db.uow() as s:
                row = kept.claim(s, PipelineRequestRow, rid)
                if row is None:
                    continue
                vrow = s.get(PipelineVersionRow, row.version_id)
                plrow = s.get(PipelineRow, row.pipeline_id)
                p = s.get(RegistryProjectRow, plrow.project_id)
                pl, v = self._pipeline_entity(s, p.name, plrow), self._version_entity(p.name, plrow, vrow)
                data, timeout, mode = row.request_data, row.timeout, vrow.request_retention_mode
            try:
                if self.identity is None:
                    raise InvalidInput("This server cannot answer batch pipeline requests (no identity service).")
                principal = self.identity.principal_by_ids(user_id, org_id)
                status, value, error, steps = run_sync(self._execute(principal, pl, v, data, timeout))
            except HarborError as exc:
                status, value, error, steps = "failed", None, truncate(exc.message), ()
            with self.db.uow() as s:
                row = kept.settle(s, PipelineRequestRow, rid, status, value, error, mode)
                if row is not None:
                    row.deployment_requests = [step.to_json() for step in steps]
            done += status == "completed"
            failed += status == "failed"
            progress(min(99, (n + 1) * 100 // len(request_ids)))
        return {"completed": done, "failed": failed}

    # --- kept requests ---------------------------------------------------------------------------
    def _kept_owner(self, s: Session, principal: Principal, project: str, pipeline: str) -> PipelineRow:
        return self._pipeline_row(s, self.serving.project_row(s, principal, project), pipeline)

    @staticmethod
    def _sweep_requests(s: Session) -> int:
        """Part of the serving sweep: delete finished pipeline requests older than their version's retention."""
        removed = 0
        for vid, seconds in s.execute(select(PipelineVersionRow.id, PipelineVersionRow.request_retention_time)):
            removed += (
                s.execute(
                    delete(PipelineRequestRow).where(
                        PipelineRequestRow.version_id == vid,
                        PipelineRequestRow.created_at < now() - timedelta(seconds=seconds),
                        PipelineRequestRow.status.in_(FINISHED),
                    )
                ).rowcount
                or 0
            )
        return removed

    @staticmethod
    def _request_entity(pl: PipelineRow, version: str, row: PipelineRequestRow) -> PipelineResult:
        return PipelineResult(
            row.id,
            pl.name,
            version,
            row.status,
            row.result,
            row.error_message,
            tuple(StepResult.of_json(x) for x in row.deployment_requests or ()),
            row.timeout,
            aware(row.created_at),
            aware(row.started_at) if row.started_at else None,
            aware(row.finished_at) if row.finished_at else None,
            row.request_data,
            row.created_by,
        )
