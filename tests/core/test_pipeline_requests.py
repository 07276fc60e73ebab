"""Pipeline requests kept as the version's retention mode says, batch (asynchronous) pipeline requests answered
by the task runner, reading, filtering, cancelling and deleting them, the retention sweep, cascades and
permissions — with the real local executor, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from modelharbor.api.inputs import env_var_in, pipeline_in, pipeline_version_in, request_ids
from modelharbor.core.clock import now
from modelharbor.db.tables_serving import PipelineRequestRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from modelharbor.tasks.runner import run_pending
from tests.core.test_serving import GOOD, make_deployment, upload, zip_bytes
from tests.factories import in_same_org, member_of_new_org, two_step_attachments

TWO_STEPS = {
    "objects": [{"name": "first", "reference_name": "adder"}, {"name": "second", "reference_name": "adder"}],
    "attachments": two_step_attachments(),
}


@pytest.fixture
def owner(services):
    return member_of_new_org(services, "member")


@pytest.fixture
def pipes(services, owner):
    """Project 'serve': deployment 'adder' (n + 1) and pipeline 'twice' (adder twice: n + 2) with versions
    'full' (the default), 'meta' (retention metadata) and 'none' (retention none)."""
    services.projects.create_project(owner, "serve")
    sv = services.serving
    make_deployment(sv, owner)
    sv.create_env_var(owner, "serve", env_var_in({"name": "OFFSET", "value": "1", "secret": False}, creating=True))
    assert upload(services, owner, zip_bytes({"deployment.py": GOOD})).status == "success"
    p = services.pipelines
    p.create_pipeline(
        owner,
        "serve",
        pipeline_in(
            {
                "name": "twice",
                "input_type": "structured",
                "input_fields": [{"name": "n", "data_type": "int"}],
                "output_type": "structured",
                "output_fields": [{"name": "m", "data_type": "int"}],
            }
        ),
    )
    p.create_version(owner, "serve", "twice", pipeline_version_in({"version": "full", **TWO_STEPS}, creating=True))
    p.create_version(
        owner,
        "serve",
        "twice",
        pipeline_version_in({"version": "meta", "request_retention_mode": "metadata", **TWO_STEPS}, creating=True),
    )
    p.create_version(
        owner,
        "serve",
        "twice",
        pipeline_version_in({"version": "none", "request_retention_mode": "none", **TWO_STEPS}, creating=True),
    )
    yield p
    sv.shutdown()


def ask(p, principal, data, **kw):
    return asyncio.run(p.request(principal, "serve", "twice", data, **kw))


def kept_rows(services) -> int:
    with services.db.uow(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(PipelineRequestRow))


def test_direct_requests_kept_by_retention_mode(pipes, services, owner):
    ok = ask(pipes, owner, {"n": 1})  # the default version: 'full'
    assert (ok.status, ok.result, ok.version) == ("completed", {"m": 3}, "full"), ok.error_message
    kept = pipes.get_request(owner, "serve", "twice", ok.id)
    assert (kept.status, kept.request_data, kept.result, kept.error_message) == ("completed", {"n": 1}, {"m": 3}, None)
    assert kept.created_at and kept.started_at and kept.finished_at >= kept.started_at
    assert kept.created_by == owner.user_id and kept.timeout == 3600
    assert [(s.object_name, s.deployment, s.version, s.status) for s in kept.steps] == [
        ("first", "adder", "v1", "completed"),
        ("second", "adder", "v1", "completed"),
    ]
    assert [s.id for s in kept.steps] == [s.id for s in ok.steps]
    # each step is a real deployment request, kept under the deployment (its version keeps 'full')
    first = services.serving.get_request(owner, "serve", "adder", kept.steps[0].id)
    assert (first.request_data, first.result) == ({"n": 1}, {"m": 2})
    assert pipes.request_io(owner, "serve", "twice", ok.id, "input") == ({"n": 1}, "structured")
    assert pipes.request_io(owner, "serve", "twice", ok.id, "output") == ({"m": 3}, "structured")
    assert pipes.get_request(owner, "serve", "twice", ok.id, version="full").id == ok.id
    with pytest.raises(NotFound):  # it went to 'full', not 'meta'
        pipes.get_request(owner, "serve", "twice", ok.id, version="meta")

    failed = ask(pipes, owner, {"n": 13})
    assert failed.status == "failed" and "unlucky" in failed.error_message
    kept_failed = pipes.get_request(owner, "serve", "twice", failed.id)
    assert kept_failed.status == "failed" and "first" in kept_failed.error_message
    assert [s.status for s in kept_failed.steps] == ["failed"]
    with pytest.raises(NotFound):  # no output to read
        pipes.request_io(owner, "serve", "twice", failed.id, "output")

    meta = ask(pipes, owner, {"n": 5}, version="meta")
    assert meta.result == {"m": 7}  # answered in full …
    kept_meta = pipes.get_request(owner, "serve", "twice", meta.id)
    assert (kept_meta.status, kept_meta.request_data, kept_meta.result) == ("completed", None, None)  # … kept without
    assert len(kept_meta.steps) == 2
    with pytest.raises(NotFound):
        pipes.request_io(owner, "serve", "twice", meta.id, "input")

    gone = ask(pipes, owner, {"n": 5}, version="none")
    assert gone.result == {"m": 7}
    with pytest.raises(NotFound):
        pipes.get_request(owner, "serve", "twice", gone.id)
    assert kept_rows(services) == 3

    # a pipeline timeout beyond a deployment request's maximum: each object gets what remains, capped
    long = ask(pipes, owner, {"n": 2}, timeout=5000)
    assert (long.status, long.timeout) == ("completed", 5000), long.error_message
    with pytest.raises(InvalidInput):
        ask(pipes, owner, {"n": 2}, timeout=9999)
    with pytest.raises(InvalidInput):
        ask(pipes, owner, {"x": 2})


def test_list_filters(pipes, services, owner):
    ok = ask(pipes, owner, {"n": 1})
    failed = ask(pipes, owner, {"n": 13})
    meta = ask(pipes, owner, {"n": 2}, version="meta")

    def ids(**kw):
        return [r.id for r in pipes.list_requests(owner, "serve", "twice", **kw)]

    assert ids() == [meta.id, failed.id, ok.id]  # newest first
    assert ids(status="failed") == [failed.id]
    assert ids(status="completed,failed") == [meta.id, failed.id, ok.id]
    assert ids(status="pending") == []
    assert ids(version="full") == [failed.id, ok.id]
    assert ids(version="meta", status="completed") == [meta.id]
    assert ids(limit=1) == [meta.id] and ids(limit=1, offset=1) == [failed.id]
    assert ids(search_id=ok.id[9:20]) == [ok.id]
    later = (now() + timedelta(minutes=5)).isoformat()
    earlier = (now() - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert ids(start_date=later) == [] and ids(end_date=earlier) == []
    assert ids(start_date=earlier, end_date=later) == [meta.id, failed.id, ok.id]
    assert ids(start_date=now().date().isoformat()) == [meta.id, failed.id, ok.id]  # a bare date: its midnight
    for bad in (
        {"status": "done"},
        {"status": "completed,nope"},
        {"limit": 0},
        {"limit": 5000},
        {"offset": -1},
        {"start_date": "yesterday"},
        {"end_date": "2024-13-01"},
        {"start_date": later, "end_date": earlier},
        {"search_id": "x" * 40},
    ):
        with pytest.raises(InvalidInput):
            pipes.list_requests(owner, "serve", "twice", **bad)
    with pytest.raises(NotFound):
        pipes.list_requests(owner, "serve", "twice", version="v9")
    with pytest.raises(NotFound):
        pipes.list_requests(owner, "serve", "nope")


def test_batch_requests_answered_in_background(pipes, services, owner):
    queued = pipes.submit_batch(owner, "serve", "twice", [{"n": 1}, {"n": 13}])
    assert [(q.status, q.version) for q in queued] == [("pending", "full"), ("pending", "full")]
    assert pipes.get_request(owner, "serve", "twice", queued[0].id).request_data == {"n": 1}
    meta = pipes.submit_batch(owner, "serve", "twice", [{"n": 4}], version="meta")
    doomed = pipes.submit_batch(owner, "serve", "twice", [{"n": 2}, {"n": 3}])
    cancelled = pipes.cancel_request(owner, "serve", "twice", doomed[0].id)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    assert pipes.cancel_requests(owner, "serve", "twice", [doomed[1].id, queued[0].id], status="pending") == 2
    run_pending(services)
    ok, bad = pipes.get_requests(owner, "serve", "twice", [queued[0].id, queued[1].id, "no-such-id"])
    assert ok.status == "cancelled"  # cancelled by the batch cancel above, before the runner got to it
    assert bad.status == "failed" and "unlucky" in bad.error_message and bad.finished_at
    assert [s.status for s in bad.steps] == ["failed"]
    assert {r.status for r in pipes.get_requests(owner, "serve", "twice", [d.id for d in doomed])} == {"cancelled"}
    again = pipes.submit_batch(owner, "serve", "twice", [{"n": 1}])
    run_pending(services)
    done = pipes.get_request(owner, "serve", "twice", again[0].id)
    assert (done.status, done.result, done.request_data) == ("completed", {"m": 3}, {"n": 1})
    assert [s.object_name for s in done.steps] == ["first", "second"]
    with pytest.raises(InvalidInput):  # finished: nothing to cancel
        pipes.update_request(owner, "serve", "twice", again[0].id, "cancelled")
    with pytest.raises(InvalidInput):
        pipes.update_request(owner, "serve", "twice", again[0].id, "completed")
    kept_meta = pipes.get_request(owner, "serve", "twice", meta[0].id)
    assert (kept_meta.status, kept_meta.result, kept_meta.request_data) == ("completed", {"m": 6}, None)

    for bad_items in ([], {"n": 1}, [{"n": 1}, {"x": 1}], [{"n": 1}] * 251, [[{"n": 1}]]):
        with pytest.raises(InvalidInput):
            pipes.submit_batch(owner, "serve", "twice", bad_items)
    with pytest.raises(InvalidInput):
        pipes.submit_batch(owner, "serve", "twice", [{"n": 1}], timeout=5)
    with pytest.raises(InvalidInput):
        pipes.get_requests(owner, "serve", "twice", request_ids("not-a-list"))
    with pytest.raises(InvalidInput):
        pipes.cancel_requests(owner, "serve", "twice", [again[0].id], status="completed")


def test_delete_sweep_and_cascades(pipes, services, owner):
    a, b, c = (ask(pipes, owner, {"n": i}) for i in (1, 2, 3))
    m = ask(pipes, owner, {"n": 1}, version="meta")
    pipes.delete_request(owner, "serve", "twice", a.id)
    with pytest.raises(NotFound):
        pipes.get_request(owner, "serve", "twice", a.id)
    with pytest.raises(NotFound):
        pipes.delete_request(owner, "serve", "twice", a.id)
    with pytest.raises(NotFound):
        pipes.delete_request(owner, "serve", "twice", b.id, version="meta")
    assert pipes.delete_requests(owner, "serve", "twice", [b.id, "nope"], version="full") == 1
    assert kept_rows(services) == 2

    # the serving sweep takes finished pipeline requests older than their version's retention time
    pending = pipes.submit_batch(owner, "serve", "twice", [{"n": 1}])
    pipes.update_version(
        owner, "serve", "twice", "full", pipeline_version_in({"request_retention_time": 3600}, creating=False)
    )
    with services.db.uow() as s:
        s.execute(
            update(PipelineRequestRow)
            .where(PipelineRequestRow.id.in_([c.id, pending[0].id]))
            .values(created_at=now() - timedelta(hours=2))
        )
    assert services.serving.sweep_requests() == 1
    with pytest.raises(NotFound):
        pipes.get_request(owner, "serve", "twice", c.id)
    assert pipes.get_request(owner, "serve", "twice", pending[0].id).status == "pending"  # not finished: stays
    assert pipes.get_request(owner, "serve", "twice", m.id).status == "completed"  # 'meta' keeps a week

    # deleting a version, the pipeline, the project takes their requests along
    pipes.delete_version(owner, "serve", "twice", "meta")
    assert kept_rows(services) == 1
    pipes.delete_pipeline(owner, "serve", "twice")
    assert kept_rows(services) == 0
    run_pending(services)  # the queued batch finds its request gone: nothing breaks


def test_project_delete_takes_pipeline_requests(pipes, services, owner):
    ask(pipes, owner, {"n": 1})
    pipes.submit_batch(owner, "serve", "twice", [{"n": 1}])
    assert kept_rows(services) == 2
    services.serving.delete_project(owner, "serve")
    assert kept_rows(services) == 0


def test_permissions(pipes, services, owner):
    ok = ask(pipes, owner, {"n": 1})
    viewer = in_same_org(services, owner, "viewer")
    stranger = member_of_new_org(services, "owner")
    assert pipes.get_request(viewer, "serve", "twice", ok.id).id == ok.id  # reading takes serving.read
    assert [r.id for r in pipes.list_requests(viewer, "serve", "twice")] == [ok.id]
    with pytest.raises(Forbidden):
        ask(pipes, viewer, {"n": 1})
    for call in (
        lambda who: pipes.submit_batch(who, "serve", "twice", [{"n": 1}]),
        lambda who: pipes.delete_request(who, "serve", "twice", ok.id),
        lambda who: pipes.delete_requests(who, "serve", "twice", [ok.id]),
        lambda who: pipes.cancel_requests(who, "serve", "twice", [ok.id]),
        lambda who: pipes.update_request(who, "serve", "twice", ok.id, "cancelled"),
    ):
        with pytest.raises(Forbidden):
            call(viewer)
        with pytest.raises(NotFound):  # another organisation's project does not exist for them
            call(stranger)
    with pytest.raises(NotFound):
        ask(pipes, stranger, {"n": 1})
    with pytest.raises(NotFound):
        pipes.get_request(stranger, "serve", "twice", ok.id)
    assert pipes.get_request(owner, "serve", "twice", ok.id).status == "completed"  # still there
