"""Background tasks: a DB-leased queue that any number of server replicas or workers share.

Services enqueue a task inside their own transaction (so it exists iff their change committed). A runner
claims a task by setting a lease; a runner that dies leaves a lease that expires and another runner retries.
Clients poll a task's status and percent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.ids import find
from modelharbor.db.engine import Database
from modelharbor.db.tables import TaskRow
from modelharbor.domain.entities import Task, TaskBacklog
from modelharbor.domain.errors import NotFound
from modelharbor.domain.principal import Action, Principal, require

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=5)
MAX_ERROR = 1024


def _task(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        org_id=row.org_id,
        kind=row.kind,
        status=row.status,
        percent=row.percent,
        payload=dict(row.payload or {}),
        result=dict(row.result or {}),
        error=row.error,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


class TaskService:
    def __init__(self, db: Database):
        self.db = db
        self._listeners: list = []

    def listen(self, callback) -> None:
        """Call ``callback()`` whenever a task is enqueued (runners use it to wake up early)."""
        self._listeners.append(callback)

    def enqueue_in(self, s: Session, kind: str, payload: dict[str, Any], *, org_id: str | None) -> TaskRow:
        t = now()
        row = TaskRow(
            id=new_uuid(),
            org_id=org_id,
            kind=kind,
            status=QUEUED,
            percent=0,
            payload=payload,
            result={},
            error=None,
            attempts=0,
            run_after=t,
            lease_until=None,
            created_at=t,
            updated_at=t,
        )
        s.add(row)
        s.flush()
        for callback in self._listeners:
            callback()
        return row

    def get(self, principal: Principal, task_id: str) -> Task:
        with self.db.uow(readonly=True) as s:
            row = find(s, TaskRow, task_id)
            if row is None or row.org_id is None:
                raise NotFound(f"task {task_id!r} not found")
            require(principal, Action.TASK_READ, row.org_id, what=f"task {task_id!r}")
            return _task(row)

    # --- runner side (no principal: the runner acts for the system) ------------------------------
    def claim(self) -> Task | None:
        """Lease the oldest runnable task (queued, or running with an expired lease)."""
        with self.db.uow() as s:
            t = now()
            row = s.scalar(
                select(TaskRow)
                .where(
                    or_(
                        (TaskRow.status == QUEUED) & (TaskRow.run_after <= t),
                        (TaskRow.status == RUNNING) & (TaskRow.lease_until < t),
                    )
                )
                .order_by(TaskRow.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            row.attempts += 1
            if row.attempts > MAX_ATTEMPTS:
                row.status, row.error, row.updated_at = FAILED, "gave up after repeated worker failures", t
                return _task(row)
            row.status, row.lease_until, row.updated_at = RUNNING, t + LEASE, t
            return _task(row)

    def progress(self, task_id: str, percent: int) -> None:
        with self.db.uow() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(percent=max(0, min(100, int(percent))), lease_until=now() + LEASE, updated_at=now())
            )

    def finish(self, task_id: str, result: dict[str, Any] | None = None) -> None:
        with self.db.uow() as s:
            row = s.get(TaskRow, task_id)
            if row is not None:
                row.status, row.percent, row.result, row.lease_until, row.updated_at = (
                    SUCCEEDED,
                    100,
                    result or {},
                    None,
                    now(),
                )

    def fail(self, task_id: str, error: str) -> None:
        with self.db.uow() as s:
            row = s.get(TaskRow, task_id)
            if row is not None:
                row.status, row.error, row.lease_until, row.updated_at = FAILED, error[:MAX_ERROR], None, now()

    def backlog(self) -> list[TaskBacklog]:
        """The tasks not finished yet, by kind and status (queued, running), with the oldest one's creation time:
        what the server's metrics report as the task backlog. No principal: it names no organisation's objects."""
        with self.db.uow(readonly=True) as s:
            rows = s.execute(
                select(TaskRow.kind, TaskRow.status, func.count(), func.min(TaskRow.created_at))
                .where(TaskRow.status.in_((QUEUED, RUNNING)))
                .group_by(TaskRow.kind, TaskRow.status)
            ).all()
        return [TaskBacklog(kind, status, count, aware(oldest)) for kind, status, count, oldest in rows]
