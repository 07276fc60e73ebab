"""Run metrics as MLflow keeps them (used by the runs and logged models of :mod:`modelharbor.core.tracking`, inside
their units of work).

- **History** (``tracking_metrics``): one row per run, key, step, timestamp and value. An identical metric is not
  inserted again, within a batch or across calls: the rows go in with ``INSERT … ON CONFLICT DO NOTHING`` against a
  unique index, so two writers racing on the same row cannot both insert it (PostgreSQL makes the second wait for
  the first, then skips; SQLite writers are serialised). NaN is stored as value 0 with ``is_nan`` set, so NaN is
  one value there (NULLs are all distinct in a unique index). A row keeps the ``model_id`` its first insert named.
- **Metrics of logged models** (``tracking_logged_model_metrics``): a metric logged with ``model_id`` is also the
  model's (MLflow's ``LoggedModel.metrics``), with its run and dataset, once per model, run, key, step, timestamp
  and value. The client re-sends a run's metrics of a step with ``model_id`` after ``log_model``: the run's history
  is unchanged by that, the model gains the copies.
- **Latest values** (``tracking_latest_metrics``, NaN as NULL): MLflow's rule, the highest step, then the latest
  timestamp, then the larger value (NaN compared as 0, as MLflow compares its stored NaN). One upsert per key whose
  ``WHERE`` applies the rule, so concurrent writers cannot lose an update.

Rows are written in one sorted order, so concurrent batches wait on each other's rows in the same order (no
deadlock on PostgreSQL).
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelharbor.db.tables_tracking import LatestMetricRow, LoggedModelMetricRow, MetricRow
from modelharbor.domain.entities import Metric
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import MetricIn
from modelharbor.domain.query import Dataset, Value

MAX_KEY = 250
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DATASET_NAME = 500
MAX_DATASET_DIGEST = 36
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CHUNK = 500  # rows per INSERT (well under SQLite's and PostgreSQL's bound-parameter limits)
HISTORY_IDENTITY = ["run_id", "key", "step", "timestamp", "value", "is_nan"]  # uq_tracking_metrics_identity
MODEL_IDENTITY = ["model_id", *HISTORY_IDENTITY]  # uq_tracking_logged_model_metrics_identity


def finite(value: float) -> float | str:
    """A float for JSON: NaN and infinities as the strings protobuf's JSON form uses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


# --- checks (shared with params and tags) -------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def check_key(key: str, what: str) -> str:
    if not key or len(key) > MAX_KEY:
        raise InvalidInput(f"{what} key must be a non-empty string of at most {MAX_KEY} characters, got {key!r}")
    if ".." in key.split("/") or key.startswith("/") or "\x00" in key:
        raise InvalidInput(f"invalid {what} key {key!r}")
    return key


def check_batch_limits(metrics: int, params: int, tags: int) -> None:
    """MLflow's limits of one ``log-batch`` call, with its message (INVALID_PARAMETER_VALUE)."""
    for what, limit, count in (
        ("metrics", MAX_METRICS_PER_BATCH, metrics),
        ("params", MAX_PARAMS_TAGS_PER_BATCH, params),
        ("tags", MAX_PARAMS_TAGS_PER_BATCH, tags),
        ("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags),
    ):
        if count > limit:
            raise InvalidInput(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                f"Please split up {what} across multiple requests and try again."
            )


def check_text(value: str | None, name: str, limit: int) -> str | None:
    """A metric's optional ``dataset_name`` or ``dataset_digest``: None when empty."""
    if not value:
        return None
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"metric {name} must be a string of at most {limit} characters, got {value!r}")
    return value


def check_int64(value: int, what: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{what} must be a 64-bit integer, got {value!r}")
    return value


def check_metric(m: MetricIn) -> Metric:
    """One metric to log, checked as MLflow checks it."""
    key = check_key(m.key, "metric")
    timestamp = check_int64(m.timestamp, "timestamp")
    if timestamp < 0:
        raise InvalidInput(f"metric {key!r}: timestamp must be a nonnegative long (64-bit integer), got {timestamp}")
    dataset_name = check_text(m.dataset_name, "dataset_name", MAX_DATASET_NAME)
    dataset_digest = check_text(m.dataset_digest, "dataset_digest", MAX_DATASET_DIGEST)
    if (dataset_name is None) != (dataset_digest is None):
        raise InvalidInput(f"metric {key!r}: both dataset_name and dataset_digest must be given if one is")
    return Metric(
        key=key,
        value=m.value,
        timestamp=timestamp,
        step=check_int64(m.step, "step"),
        model_id=m.model_id or None,
        dataset_name=dataset_name,
        dataset_digest=dataset_digest,
    )


# --- writes ------------------------------------------------------------------------------------


def _insert(s: Session, table: Table):
    ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    return ins(table)


def _stored(value: float) -> tuple[float, bool]:
    """(value, is_nan) as the history keeps it."""
    return (0.0, True) if math.isnan(value) else (value, False)


def _rank(step: int, timestamp: int, value: float | None) -> tuple[int, int, float]:
    """MLflow's order of a key's values: step, then timestamp, then value (NaN as 0)."""
    return step, timestamp, 0.0 if value is None or math.isnan(value) else value


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def write_metrics(s: Session, run_id: str, metrics: Sequence[Metric]) -> None:
    """Within the caller's transaction: ``metrics`` (checked; their logged models checked by the caller) into the
    run's history, their logged models' metrics and the latest values."""
    if not metrics:
        return
    history: dict[tuple, Metric] = {}
    copies: dict[tuple, Metric] = {}
    best: dict[str, Metric] = {}
    for m in metrics:
        value, is_nan = _stored(m.value)
        history.setdefault((m.key, m.step, m.timestamp, value, is_nan), m)  # the first one's model_id stays
        if m.model_id:
            copies.setdefault((m.model_id, m.key, m.step, m.timestamp, value, is_nan), m)
        have = best.get(m.key)
        if have is None or _rank(m.step, m.timestamp, m.value) > _rank(have.step, have.timestamp, have.value):
            best[m.key] = m

    table = MetricRow.__table__
    rows = [
        dict(run_id=run_id, key=k, step=step, timestamp=ts, value=v, is_nan=nan, model_id=m.model_id)
        for (k, step, ts, v, nan), m in sorted(history.items(), key=operator.itemgetter(0))
    ]
    for chunk in _chunks(rows):
        s.execute(_insert(s, table).values(chunk).on_conflict_do_nothing(index_elements=HISTORY_IDENTITY))

    if copies:
        table = LoggedModelMetricRow.__table__
        rows = [
            dict(
                model_id=model_id,
                run_id=run_id,
                key=k,
                step=step,
                timestamp=ts,
                value=v,
                is_nan=nan,
                dataset_name=m.dataset_name,
                dataset_digest=m.dataset_digest,
            )
            for (model_id, k, step, ts, v, nan), m in sorted(copies.items(), key=operator.itemgetter(0))
        ]
        for chunk in _chunks(rows):
            s.execute(_insert(s, table).values(chunk).on_conflict_do_nothing(index_elements=MODEL_IDENTITY))

    table = LatestMetricRow.__table__
    rows = [
        dict(run_id=run_id, key=k, value=None if math.isnan(m.value) else m.value, timestamp=m.timestamp, step=m.step)
        for k, m in sorted(best.items())
    ]
    for chunk in _chunks(rows):
        stmt = _insert(s, table).values(chunk)
        new, old = stmt.excluded, table.c
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=[old.run_id, old.key],
                set_={"value": new.value, "timestamp": new.timestamp, "step": new.step},
                where=tuple_(new.step, new.timestamp, func.coalesce(new.value, 0.0))
                > tuple_(old.step, old.timestamp, func.coalesce(old.value, 0.0)),
            )
        )


# --- reads -------------------------------------------------------------------------------------


def _value(row: MetricRow | LoggedModelMetricRow) -> float:
    return math.nan if row.is_nan else row.value


def latest(s: Session, run_id: str) -> tuple[Metric, ...]:
    """A run's latest value of each metric, by key (what MLflow shows as the run's metrics)."""
    rows = s.scalars(select(LatestMetricRow).where(LatestMetricRow.run_id == run_id).order_by(LatestMetricRow.key))
    return tuple(Metric(r.key, math.nan if r.value is None else r.value, r.timestamp, r.step) for r in rows)


def latest_of(s: Session, run_ids: Sequence[str]) -> dict[str, tuple[Metric, ...]]:
    """:func:`latest` of several runs in one query (runs without metrics are left out)."""
    found: dict[str, list[Metric]] = {}
    rows = s.scalars(
        select(LatestMetricRow)
        .where(LatestMetricRow.run_id.in_(list(run_ids)))
        .order_by(LatestMetricRow.run_id, LatestMetricRow.key)
    )
    for r in rows:
        found.setdefault(r.run_id, []).append(
            Metric(r.key, math.nan if r.value is None else r.value, r.timestamp, r.step)
        )
    return {run_id: tuple(metrics) for run_id, metrics in found.items()}


def history(s: Session, run_id: str, key: str, offset: int, limit: int) -> list[Metric]:
    """Up to ``limit`` history rows of one metric from ``offset``, by step, then timestamp, then the order logged."""
    rows = s.scalars(
        select(MetricRow)
        .where(MetricRow.run_id == run_id, MetricRow.key == key)
        .order_by(MetricRow.step, MetricRow.timestamp, MetricRow.id)
        .offset(offset)
        .limit(limit)
    )
    return [Metric(r.key, _value(r), r.timestamp, r.step, model_id=r.model_id) for r in rows]


def model_metrics(s: Session, model_ids: Sequence[str]) -> dict[str, tuple[Metric, ...]]:
    """The metrics of each logged model, by key, step, timestamp and run."""
    found: dict[str, list[Metric]] = {}
    ids = list(dict.fromkeys(model_ids))
    for i in range(0, len(ids), CHUNK):
        rows = s.scalars(
            select(LoggedModelMetricRow)
            .where(LoggedModelMetricRow.model_id.in_(ids[i : i + CHUNK]))
            .order_by(
                LoggedModelMetricRow.model_id,
                LoggedModelMetricRow.key,
                LoggedModelMetricRow.step,
                LoggedModelMetricRow.timestamp,
                LoggedModelMetricRow.run_id,
                LoggedModelMetricRow.id,
            )
        )
        for r in rows:
            found.setdefault(r.model_id, []).append(
                Metric(
                    r.key,
                    _value(r),
                    r.timestamp,
                    r.step,
                    model_id=r.model_id,
                    run_id=r.run_id,
                    dataset_name=r.dataset_name,
                    dataset_digest=r.dataset_digest,
                )
            )
    return {model_id: tuple(found.get(model_id, ())) for model_id in ids}


# --- logged-model search on metrics ---------------------------------------------------------------

_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def on_datasets(m: Metric, datasets: Sequence[Dataset] | None) -> bool:
    """Whether ``m`` was logged on one of ``datasets`` (a digest, if given, must match too); none: any metric."""
    if not datasets:
        return True
    return any(m.dataset_name == d.name and d.digest in (None, "", m.dataset_digest) for d in datasets)


def metric_test(
    key: str, op: str, value: Value, datasets: Sequence[Dataset] | None = None
) -> Callable[[Iterable[Metric]], bool]:
    """MLflow's ``metrics.<key> <op> <number>`` on a logged model: true when any of its values of that key (on the
    datasets, if given) compares so. Checked here, before any model is looked at."""
    if op not in _COMPARE or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"metrics.{key} compares with =, !=, <, >, <= or >= and a number, got {op} {value!r}")
    compare = _COMPARE[op]

    def test(metrics: Iterable[Metric]) -> bool:
        return any(
            m.key == key and not math.isnan(m.value) and compare(m.value, value) and on_datasets(m, datasets)
            for m in metrics
        )

    return test


def latest_value(metrics: Iterable[Metric], key: str, dataset_name=None, dataset_digest=None) -> float | None:
    """A logged model's value of ``key`` to order by: MLflow takes the latest timestamp, then the highest step, then
    the first run id; None when it has none or it is NaN (sorted last)."""
    candidates = [
        m
        for m in metrics
        if m.key == key
        and (not dataset_name or m.dataset_name == dataset_name)
        and (not dataset_digest or m.dataset_digest == dataset_digest)
    ]
    if not candidates:
        return None
    candidates.sort(key=lambda m: m.run_id or "")
    candidates.sort(key=lambda m: (m.timestamp, m.step), reverse=True)
    value = candidates[0].value
    return None if math.isnan(value) else value
