"""Kept requests of deployments and of pipelines: one set of operations over either table.

Both tables (``serving_requests``, ``serving_pipeline_requests``) hold the same columns — id, version_id, status,
request_data, result, error_message, timeout, created_by, created_at, started_at, finished_at — under an owner
column (``deployment_id`` / ``pipeline_id``). ``KeptRequests`` (mixed into ServingService and PipelineService)
holds the operations — get, collect, list with filters, input/output, cancel, delete — once; each service only
says how to find its deployment or pipeline. The batch workers' ``claim``/``settle`` and the validation of the
callers' values are here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, now
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

REQUEST_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")
CANCELLABLE = ("pending", "processing")
MAX_IDS = 250  # ids in one collect / delete / cancel (as many as a batch holds)


def bounded_int(value: Any, what: str, default: int, low: int, high: int) -> int:
    """``value`` if an integer in [low, high], ``default`` if None; else InvalidInput (the serving layer's check: the
    core's methods take ``int | None``; the edges and the imports call this on JSON values too)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"'{what}' must be an integer from {low} to {high}.")
    return value


def lookup_key(value: str | None, limit: int = 256) -> bool:
    """Whether ``value`` could name a row at all: a printable string without NUL of at most ``limit``
    characters. Anything else is simply "not found" (PostgreSQL refuses NUL bytes with an error)."""
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def request_ids_fault() -> InvalidInput:
    """The fault of a collect / delete / cancel body that is no JSON array of 1..MAX_IDS request ids."""
    return InvalidInput(f"Send a JSON array of 1 to {MAX_IDS} request ids.")


def request_ids_of(ids: Sequence[str]) -> list[str]:
    """The ids of a collect / delete / cancel (1..MAX_IDS; the edges check they are strings); ones that cannot be
    request ids are dropped (they match nothing)."""
    if not ids or len(ids) > MAX_IDS:
        raise request_ids_fault()
    return [i for i in ids if lookup_key(i, 36)]


def _date(value: str | datetime | None, what: str) -> datetime | None:
    """An ISO 8601 date or time (a bare date is its midnight; no zone is UTC) → aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return aware(value)
    try:
        parsed = datetime.fromisoformat(value) if len(value) <= 64 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidInput(f"'{what}' must be an ISO 8601 date or time, like 2024-01-31T12:00:00Z, not {value!r}.")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """A validated list query: ``status`` one or more (comma-separated) of REQUEST_STATUSES; dates ISO 8601 on the
    creation time (inclusive); ``search_id`` part of the id; ``limit`` 1–1000 (50); ``offset`` ≥ 0."""

    statuses: tuple[str, ...] | None
    start: datetime | None
    end: datetime | None
    search_id: str | None
    limit: int
    offset: int

    @classmethod
    def of(
        cls,
        *,
        status: str | None = None,
        start_date: str | datetime | None = None,
        end_date: str | datetime | None = None,
        search_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Filters:
        statuses = None
        if status is not None:
            statuses = tuple(x.strip() for x in status.split(","))
            if not statuses or any(x not in REQUEST_STATUSES for x in statuses):
                raise InvalidInput(f"'status' must be one or more (comma-separated) of {', '.join(REQUEST_STATUSES)}.")
        start, end = _date(start_date, "start_date"), _date(end_date, "end_date")
        if start is not None and end is not None and start > end:
            raise InvalidInput("'start_date' is after 'end_date'.")
        if search_id is not None and not lookup_key(search_id, 36):
            raise InvalidInput("'search_id' must be (part of) a request id: at most 36 characters.")
        return cls(
            statuses,
            start,
            end,
            search_id or None,
            bounded_int(limit, "limit", 50, 1, 1000),
            bounded_int(offset, "offset", 0, 0, 10**9),
        )

    def apply(self, q: Select, table: Any) -> Select:
        """``q`` (selecting from ``table``) filtered, newest first, one page."""
        if self.statuses is not None:
            q = q.where(table.status.in_(self.statuses))
        if self.start is not None:
            q = q.where(table.created_at >= self.start)
        if self.end is not None:
            q = q.where(table.created_at <= self.end)
        if self.search_id:
            q = q.where(table.id.contains(self.search_id, autoescape=True))
        return q.order_by(table.created_at.desc(), table.id.desc()).offset(self.offset).limit(self.limit)


def one(s: Session, table: Any, owner: Any, request_id: str, version_id: str | None, *, lock: bool = False) -> Any:
    """The row of ``request_id`` under ``owner`` (a column == id condition), in that version if given; None."""
    if not lookup_key(request_id, 36):
        return None
    q = select(table).where(table.id == request_id, owner)
    if version_id is not None:
        q = q.where(table.version_id == version_id)
    return s.scalar(q.with_for_update() if lock else q)


def many(s: Session, table: Any, owner: Any, ids: list[str], version_id: str | None, *, statuses=None, lock=False):
    """The rows of ``ids`` under ``owner`` (and version, and statuses, if given), in no particular order."""
    q = select(table).where(owner, table.id.in_(ids))
    if version_id is not None:
        q = q.where(table.version_id == version_id)
    if statuses is not None:
        q = q.where(table.status.in_(statuses))
    return list(s.scalars(q.with_for_update() if lock else q))


def in_order(rows: list[Any], ids: list[str]) -> list[Any]:
    """``rows`` in the order their ids were asked for (each once)."""
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def delete_many(s: Session, table: Any, owner: Any, ids: list[str], version_id: str | None) -> int:
    q = delete(table).where(owner, table.id.in_(ids))
    if version_id is not None:
        q = q.where(table.version_id == version_id)
    return s.execute(q).rowcount or 0


def claim(s: Session, table: Any, request_id: str) -> Any:
    """A batch worker takes a pending request: it becomes processing (locked until commit); None when it is gone
    or no longer pending (cancelled, or taken already)."""
    row = s.scalar(select(table).where(table.id == request_id).with_for_update())
    if row is None or row.status != "pending":
        return None
    row.status, row.started_at = "processing", now()
    return row


def settle(s: Session, table: Any, request_id: str, status: str, value: Any, error: str | None, mode: str) -> Any:
    """A batch worker's answer to a request it claimed; None (nothing written) when the request was cancelled or
    deleted meanwhile. The input stays only with retention mode ``full``."""
    row = s.scalar(select(table).where(table.id == request_id).with_for_update())
    if row is None or row.status != "processing":
        return None
    row.status, row.result, row.error_message, row.finished_at = status, value, error, now()
    if mode != "full":
        row.request_data = None
    return row


def cancel_status(status: str | None) -> tuple[str, ...]:
    """Which statuses a batch cancel takes (its ``status`` filter, if any)."""
    if status is not None and status not in CANCELLABLE:
        raise InvalidInput("'status' must be pending or processing: only those requests can be cancelled.")
    return (status,) if status else CANCELLABLE


def check_cancellable(row: Any) -> None:
    if row.status not in CANCELLABLE:
        raise InvalidInput(f"Request {row.id!r} is {row.status}: only pending or processing ones can be cancelled.")


def cancel(row: Any, retention_mode: str) -> None:
    """A pending or processing request becomes cancelled (a running one finishes; its answer is dropped)."""
    row.status, row.finished_at = "cancelled", now()
    if retention_mode != "full":
        row.request_data = None


def request_update_fault() -> InvalidInput:
    return InvalidInput("A request can only be changed to {'status': 'cancelled'} (to cancel it).")


def check_update(status: str) -> None:
    """The vendor's PATCH of a request: only to status ``cancelled`` (cancel it; the edges refuse other fields)."""
    if status != "cancelled":
        raise request_update_fault()


def io_of(row: Any, which: str, input_type: str, output_type: str) -> tuple[Any, str]:
    """A kept request's input (``which='input'``) or output: (value, 'structured' | 'plain'). Not kept (retention
    ``metadata``/``none``, or no output yet) → not found."""
    if which == "input":
        if row.request_data is None:
            raise NotFound(f"Request {row.id!r} has no kept input (kept only with retention mode 'full').")
        return row.request_data, input_type
    if row.status != "completed" or row.result is None:
        raise NotFound(f"Request {row.id!r} has no kept output (status {row.status!r}).")
    return row.result, output_type


class KeptRequests:
    """The kept-request operations of a service (mixed into ServingService and PipelineService).

    The service names its ``kept_table`` (the request rows), ``kept_versions`` (their versions' table),
    ``kept_owner_column`` (``deployment_id`` / ``pipeline_id``) and ``kept_what``, and gives
    ``_kept_owner(s, principal, project, name)`` (the deployment or pipeline row, read access checked),
    ``_version_row(s, owner, version)`` and ``_request_entity(owner, version_name, row)``. Changing requests takes
    the right to make them (``SERVING_REQUEST``)."""

    kept_table: Any
    kept_versions: Any
    kept_owner_column: str
    kept_what: str
    db: Any

    def _kept_where(self, s: Session, principal, project, name, version, *, write: bool = False):
        """(owner row, its filter on the table, version id or None) of the requests asked for."""
        owner = self._kept_owner(s, principal, project, name)
        if write:
            require(principal, Action.SERVING_REQUEST, principal.org_id, what=self.kept_what)
        vid = self._version_row(s, owner, version).id if version is not None else None
        return owner, getattr(self.kept_table, self.kept_owner_column) == owner.id, vid

    def _kept_row(self, s: Session, owner: Any, where: Any, request_id: str, vid, version, *, lock=False) -> Any:
        row = one(s, self.kept_table, where, request_id, vid, lock=lock)
        if row is None:
            of = f"{self.kept_what} {owner.name!r}"
            raise NotFound(
                f"Request {request_id!r} not found in {f'version {version!r} of ' if version is not None else ''}{of}"
            )
        return row

    def _kept_entity(self, s: Session, owner: Any, row: Any) -> Any:
        return self._request_entity(owner, s.get(self.kept_versions, row.version_id).version, row)

    def _kept_cancel(self, s: Session, row: Any) -> None:
        cancel(row, s.get(self.kept_versions, row.version_id).request_retention_mode)

    def get_request(
        self, principal: Principal, project: str, name: str, request_id: str, *, version: str | None = None
    ):
        with self.db.uow(readonly=True) as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version)
            return self._kept_entity(s, owner, self._kept_row(s, owner, where, request_id, vid, version))

    def get_requests(
        self, principal: Principal, project: str, name: str, request_ids: Sequence[str], *, version: str | None = None
    ) -> list:
        """Several kept requests at once, in the order asked (ids of no request here are left out)."""
        ids = request_ids_of(request_ids)
        with self.db.uow(readonly=True) as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version)
            return [self._kept_entity(s, owner, r) for r in in_order(many(s, self.kept_table, where, ids, vid), ids)]

    def list_requests(
        self,
        principal: Principal,
        project: str,
        name: str,
        *,
        version: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        start_date: str | datetime | None = None,
        end_date: str | datetime | None = None,
        search_id: str | None = None,
    ) -> list:
        """Kept requests, newest first, filtered as ``Filters`` says."""
        filters = Filters.of(
            status=status, start_date=start_date, end_date=end_date, search_id=search_id, limit=limit, offset=offset
        )
        table, versions = self.kept_table, self.kept_versions
        with self.db.uow(readonly=True) as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version)
            q = select(table, versions.version).join(versions, versions.id == table.version_id).where(where)
            if vid is not None:
                q = q.where(table.version_id == vid)
            return [self._request_entity(owner, vname, r) for r, vname in s.execute(filters.apply(q, table)).all()]

    def request_io(
        self, principal: Principal, project: str, name: str, request_id: str, which: str, *, version: str | None = None
    ) -> tuple[Any, str]:
        """A kept request's input or output: (value, 'structured' | 'plain'); see ``io_of``."""
        with self.db.uow(readonly=True) as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version)
            row = self._kept_row(s, owner, where, request_id, vid, version)
            return io_of(row, which, owner.input_type, owner.output_type)

    def cancel_request(
        self, principal: Principal, project: str, name: str, request_id: str, *, version: str | None = None
    ):
        """Cancel a batch request that is pending or processing (a running one finishes; its answer is dropped)."""
        with self.db.uow() as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version, write=True)
            row = self._kept_row(s, owner, where, request_id, vid, version, lock=True)
            check_cancellable(row)
            self._kept_cancel(s, row)
            return self._kept_entity(s, owner, row)

    def cancel_requests(
        self,
        principal: Principal,
        project: str,
        name: str,
        request_ids: Sequence[str],
        *,
        version: str | None = None,
        status: str | None = None,
    ) -> int:
        """Cancel those of the requests that are pending or processing (only ``status`` ones, if given)."""
        ids, wanted = request_ids_of(request_ids), cancel_status(status)
        with self.db.uow() as s:
            _, where, vid = self._kept_where(s, principal, project, name, version, write=True)
            rows = many(s, self.kept_table, where, ids, vid, statuses=wanted, lock=True)
            for row in rows:
                self._kept_cancel(s, row)
            return len(rows)

    def update_request(
        self, principal: Principal, project: str, name: str, request_id: str, status: str, *, version: str | None = None
    ):
        """The vendor's PATCH of a request: only to status ``cancelled`` (cancel it)."""
        check_update(status)
        return self.cancel_request(principal, project, name, request_id, version=version)

    def delete_request(
        self, principal: Principal, project: str, name: str, request_id: str, *, version: str | None = None
    ) -> None:
        with self.db.uow() as s:
            owner, where, vid = self._kept_where(s, principal, project, name, version, write=True)
            s.delete(self._kept_row(s, owner, where, request_id, vid, version))

    def delete_requests(
        self, principal: Principal, project: str, name: str, request_ids: Sequence[str], *, version: str | None = None
    ) -> int:
        """Delete several kept requests (ids of no request here are ignored); returns how many went."""
        ids = request_ids_of(request_ids)
        with self.db.uow() as s:
            _, where, vid = self._kept_where(s, principal, project, name, version, write=True)
            return delete_many(s, self.kept_table, where, ids, vid)
