"""The task runner: claims queued tasks and calls their handler; also sweeps expired uploads and unreferenced bytes.

Runs as a thread inside ``modelharbor serve`` (the embedded default) or alone as ``modelharbor worker``;
any number of runners can share one database. Tests call :func:`run_pending` to drain synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from modelharbor.core.catalogue import ArchiveRejected
from modelharbor.core.catalogue.model_imports import TASK_KIND as MODEL_IMPORT
from modelharbor.core.catalogue.model_jobs import KINDS as MODEL_JOBS
from modelharbor.core.serving import BATCH_TASK as SERVING_BATCH
from modelharbor.core.serving import BUILD_TASK as SERVING_BUILD
from modelharbor.core.serving.environment_tags import ENV_BUILD_TASK as SERVING_ENVIRONMENT_BUILD
from modelharbor.core.serving.pipeline_requests import BATCH_TASK as PIPELINE_BATCH
from modelharbor.core.transfer import EXPORT_TASK, IMPORT_TASK
from modelharbor.domain.entities import Task
from modelharbor.domain.errors import HarborError
from modelharbor.services import Services

log = logging.getLogger("modelharbor.tasks")

Handler = Callable[[Services, Task, Callable[[int], None]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    MODEL_IMPORT: lambda services, task, progress: services.imports.process(task, progress),
    **{kind: lambda services, task, progress: services.model_jobs.process(task, progress) for kind in MODEL_JOBS},
    SERVING_BATCH: lambda services, task, progress: services.serving.process_batch(
        task.payload["request_ids"], progress
    ),
    PIPELINE_BATCH: lambda services, task, progress: services.pipelines.process_batch(
        task.payload["request_ids"], task.payload["user_id"], task.org_id, progress
    ),
    SERVING_BUILD: lambda services, task, progress: services.serving.build_revision(
        task.payload["revision_id"], progress, build_id=task.payload.get("build_id")
    ),
    SERVING_ENVIRONMENT_BUILD: lambda services, task, progress: services.serving.environment_tags.run_build(
        task.payload["build_id"], progress
    ),
    EXPORT_TASK: lambda services, task, progress: services.transfer.build_export(task.payload["export_id"], progress),
    IMPORT_TASK: lambda services, task, progress: services.transfer.run_import(
        task.payload, progress, services.pipelines
    ),
}

EXPECTED_FAILURES = (ArchiveRejected, HarborError)


def run_one(services: Services) -> Task | None:
    """Claim and run one task; None when the queue is empty."""
    task = services.tasks.claim()
    if task is None:
        return None
    if task.status != "running":  # claim() gave up on it after too many attempts
        return task
    handler = HANDLERS.get(task.kind)
    if handler is None:
        services.tasks.fail(task.id, f"no handler for task kind {task.kind!r}")
        return task
    try:
        result = handler(services, task, lambda pct: services.tasks.progress(task.id, pct))
    except EXPECTED_FAILURES as exc:
        services.tasks.fail(task.id, str(exc))
    except Exception as exc:  # a bug: keep the runner alive, record it on the task
        log.exception("task %s (%s) crashed", task.id, task.kind)
        services.tasks.fail(task.id, f"internal error: {type(exc).__name__}: {exc}")
    else:
        services.tasks.finish(task.id, result)
    return task


def sweep_once(services: Services) -> None:
    """One sweep: expired dataset uploads and upload sessions, then the bytes crashed writers left (orphaned objects, closed prefixes,
    released keys, then unfinished writes: staging files and incomplete multipart uploads), then kept requests and
    the packages of interrupted imports."""
    swept = asyncio.run(services.dataset_uploads.sweep()) + asyncio.run(services.uploads.sweep())
    orphans = asyncio.run(services.files.pending.sweep())
    services.serving.sweep_requests()  # deployment and pipeline requests
    services.transfer.sweep_staged()  # packages interrupted imports wrote
    if swept:
        log.info("swept %d expired upload sessions", swept)
    if orphans:
        log.info("swept %d pending objects", orphans)


def run_pending(services: Services, limit: int = 1000) -> int:
    """Drain the queue synchronously (tests, CLI). Returns how many tasks ran."""
    n = 0
    while n < limit and run_one(services) is not None:
        n += 1
    return n


class Runner:
    """A background thread that polls for tasks and sweeps expired upload sessions."""

    def __init__(self, services: Services, *, poll: float = 0.5):
        self.services = services
        self.poll = poll
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        services.tasks.listen(self.wake)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="modelharbor-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _loop(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    sweep_once(self.services)
                    next_sweep = time.monotonic() + self.services.settings.sweep_interval
                while not self._stop.is_set() and run_one(self.services) is not None:
                    pass
            except Exception:
                log.exception("task runner loop failed; retrying")
            self._wake.wait(self.poll)
            self._wake.clear()
