"""The task queue: leases, retries after a dead runner, failure recording."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from modelharbor.core.clock import now
from modelharbor.db.tables import TaskRow
from modelharbor.tasks import runner


def enqueue(services, admin, kind="noop"):
    with services.db.uow() as s:
        return services.tasks.enqueue_in(s, kind, {"x": 1}, org_id=admin.org_id).id


def test_claim_leases_one_task_at_a_time(services, admin):
    a, b = enqueue(services, admin), enqueue(services, admin)
    first, second = services.tasks.claim(), services.tasks.claim()
    assert {first.id, second.id} == {a, b}
    assert services.tasks.claim() is None


def test_expired_lease_is_retried_then_given_up(services, admin):
    tid = enqueue(services, admin)
    for attempt in range(1, 4):
        task = services.tasks.claim()
        assert task.id == tid and task.status == "running", attempt
        with services.db.uow() as s:  # the runner died: its lease runs out
            s.execute(update(TaskRow).where(TaskRow.id == tid).values(lease_until=now() - timedelta(seconds=1)))
    assert services.tasks.claim().status == "failed"
    assert "gave up" in services.tasks.get(admin, tid).error


def test_unknown_kind_and_crashing_handler_fail_the_task(services, admin, monkeypatch):
    t1 = enqueue(services, admin, "no-such-kind")

    def boom(services, task, progress):
        progress(40)
        raise RuntimeError("handler bug")

    monkeypatch.setitem(runner.HANDLERS, "boom", boom)
    t2 = enqueue(services, admin, "boom")
    assert runner.run_pending(services) == 2
    assert "no handler" in services.tasks.get(admin, t1).error
    got = services.tasks.get(admin, t2)
    assert got.status == "failed" and "RuntimeError: handler bug" in got.error and got.percent == 40


def test_runner_thread_drains_queue(services, admin, monkeypatch):
    import threading

    done = threading.Event()
    monkeypatch.setitem(runner.HANDLERS, "ping", lambda s, t, p: done.set() or {"pong": True})
    r = runner.Runner(services, poll=0.05)
    r.start()
    try:
        tid = enqueue(services, admin, "ping")
        assert done.wait(10)
    finally:
        r.stop()
    assert services.tasks.get(admin, tid).result == {"pong": True}
