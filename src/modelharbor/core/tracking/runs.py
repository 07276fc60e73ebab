"""Runs: create, read, update, delete/restore, search; params, metrics and tags (one transaction per batch; metrics
as :mod:`modelharbor.core.tracking.metrics` keeps them), metric history, and the run's inputs and outputs; the
summaries of many runs that read models carry (``run_summaries``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from modelharbor.core.filters import compare, comparisons
from modelharbor.core.ids import well_formed
from modelharbor.core.tracking import metrics as tracking_metrics
from modelharbor.core.tracking.metrics import check_int64, check_key, now_ms
from modelharbor.core.tracking.validation import (
    ACTIVE,
    DEFAULT_ID,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    RUN_NAME_TAG,
    RUN_STATUSES,
    USER_TAG,
    check_max,
    check_value,
    dialect_insert,
    exp_int,
    key_ok,
    new_run_name,
    run_artifact_uri,
    stages_of,
)
from modelharbor.db.tables_tracking import ExperimentRow, LatestMetricRow, RunParamRow, RunRow, RunTagRow
from modelharbor.domain.cards import RunSummary
from modelharbor.domain.entities import Metric, Run
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import MetricIn, TagIn, ViewType
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Page, Query


def run_summaries(
    s: Session, principal: Principal, run_ids: Iterable[str | None], *, params: bool = True
) -> dict[str, RunSummary]:
    """The runs among ``run_ids`` the caller may read (those :meth:`Runs.get_run` finds; the others are left out),
    each with its latest metrics (by key) and, with ``params``, its params: for a page of read models (the
    registry's cards), in three queries however many runs there are."""
    ids = sorted({r for r in run_ids if well_formed(r) and len(r) <= 32})
    if not ids:
        return {}
    found = s.execute(
        select(RunRow.id, ExperimentRow.org_id)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .where(RunRow.id.in_(ids))
    )
    visible = sorted(run_id for run_id, org_id in found if principal.can(Action.TRACKING_READ, org_id))
    if not visible:
        return {}
    metrics = tracking_metrics.latest_of(s, visible)
    values: dict[str, dict[str, str]] = {}
    if params:
        rows = s.execute(
            select(RunParamRow.run_id, RunParamRow.key, RunParamRow.value).where(RunParamRow.run_id.in_(visible))
        )
        for run_id, key, value in rows:
            values.setdefault(run_id, {})[key] = value
    return {r: RunSummary(r, metrics.get(r, ()), dict(sorted(values.get(r, {}).items()))) for r in visible}


class Runs:
    """Runs, their params, metrics, tags, inputs and outputs."""

    @staticmethod
    def _run_row(s: Session, principal: Principal, run_id: str, action: Action) -> tuple[RunRow, ExperimentRow]:
        row = s.get(RunRow, run_id) if well_formed(run_id) and len(run_id) <= 32 else None
        if row is None:
            raise NotFound(f"run {run_id!r} not found")
        exp = s.get(ExperimentRow, row.experiment_id)
        if exp is None or (exp.org_id != principal.org_id and not principal.is_superuser):
            raise NotFound(f"run {run_id!r} not found")
        require(principal, action, exp.org_id, what=f"run {run_id!r}")
        return row, exp

    @staticmethod
    def _active_run(row: RunRow) -> None:
        if row.lifecycle_stage != ACTIVE:
            raise InvalidInput(f"run {row.id} is deleted; restore it before changing it")

    @staticmethod
    def _run_entity(s: Session, row: RunRow) -> Run:
        metrics = tracking_metrics.latest(s, row.id)
        params = {p.key: p.value for p in s.scalars(select(RunParamRow).where(RunParamRow.run_id == row.id))}
        tags = {t.key: t.value for t in s.scalars(select(RunTagRow).where(RunTagRow.run_id == row.id))}
        return Run(
            id=row.id,
            experiment_id=str(row.experiment_id),
            name=row.name,
            user_id=row.user_id,
            status=row.status,
            start_time=row.start_time,
            end_time=row.end_time,
            lifecycle_stage=row.lifecycle_stage,
            artifact_uri=run_artifact_uri(row.experiment_id, row.id),
            metrics=metrics,
            params=params,
            tags=tags,
            inputs=dict(row.inputs or {}),
            outputs=dict(row.outputs or {}),
        )

    def create_run(
        self,
        principal: Principal,
        experiment_id: str,
        *,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[TagIn] = (),
        run_name: str | None = None,
    ) -> Run:
        """A new run in the experiment (``"0"``: the caller's default) with ``tags`` (a key given twice takes its last
        value); its name is ``run_name``, else its ``mlflow.runName`` tag, else a made-up one."""
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        given = {t.key: t.value for t in tags}
        checked = {check_key(k, "tag"): check_value(v, "tag", MAX_TAG_VALUE) for k, v in given.items()}
        name = run_name or checked.get(RUN_NAME_TAG) or new_run_name()
        if run_name and checked.get(RUN_NAME_TAG) and checked[RUN_NAME_TAG] != run_name:
            raise InvalidInput(f"run_name {run_name!r} and tag {RUN_NAME_TAG}={checked[RUN_NAME_TAG]!r} disagree")
        checked[RUN_NAME_TAG] = name
        with self.db.uow() as s:
            exp = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            if exp.lifecycle_stage != ACTIVE:
                raise InvalidInput(f"experiment {exp_id} is deleted; restore it to create runs in it")
            row = RunRow(
                id=uuid.uuid4().hex,
                experiment_id=exp.id,
                name=name[:250],
                user_id=(user_id or checked.get(USER_TAG) or principal.username)[:256],
                status="RUNNING",
                start_time=now_ms() if start_time is None else check_int64(start_time, "start_time"),
                end_time=None,
                lifecycle_stage=ACTIVE,
                inputs={},
                outputs={},
            )
            s.add(row)
            s.flush()
            for k, v in checked.items():
                s.add(RunTagRow(run_id=row.id, key=k, value=v))
            s.flush()
            return self._run_entity(s, row)

    def get_run(self, principal: Principal, run_id: str) -> Run:
        with self.db.uow(readonly=True) as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_READ)
            return self._run_entity(s, row)

    def update_run(
        self,
        principal: Principal,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> Run:
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInput(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            if status:
                row.status = status
            if end_time is not None:
                row.end_time = check_int64(end_time, "end_time")
            if run_name:
                row.name = run_name[:250]
                self._set_tag(s, row.id, RUN_NAME_TAG, run_name)
            s.flush()
            return self._run_entity(s, row)

    def set_run_lifecycle(self, principal: Principal, run_id: str, stage: str) -> None:
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            row.lifecycle_stage = stage

    @staticmethod
    def _set_tag(s: Session, run_id: str, key: str, value: str) -> None:
        Runs._set_tags(s, run_id, {key: value})

    @staticmethod
    def _set_tags(s: Session, run_id: str, tags: dict[str, str]) -> None:
        """Insert or replace (one upsert: concurrent writers of a new tag do not collide)."""
        if not tags:
            return
        stmt = dialect_insert(s)(RunTagRow).values(
            [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(tags.items())]
        )
        s.execute(stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}))

    @staticmethod
    def _log_params(s: Session, run_id: str, params: dict[str, str]) -> None:
        """Insert the new ones (ON CONFLICT DO NOTHING, so concurrent identical ones do not collide), then refuse any
        logged before with another value."""
        if not params:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(params.items())]
        s.execute(dialect_insert(s)(RunParamRow).values(rows).on_conflict_do_nothing(index_elements=["run_id", "key"]))
        stored = s.execute(
            select(RunParamRow.key, RunParamRow.value).where(
                RunParamRow.run_id == run_id, RunParamRow.key.in_(list(params))
            )
        )
        for key, old in stored:
            if old != params[key]:
                raise InvalidInput(
                    f"param {key!r} of run {run_id} was already logged with value {old!r}; params cannot change "
                    f"(new value {params[key]!r})"
                )

    def log_batch(
        self,
        principal: Principal,
        run_id: str,
        *,
        metrics: Sequence[MetricIn] = (),
        params: Sequence[TagIn] = (),
        tags: Sequence[TagIn] = (),
    ) -> None:
        """Params, metrics and tags of a run in one transaction: all of them or, on any error, nothing.

        Metrics as MLflow keeps them (``core/tracking_metrics.py``): an identical one is stored once, one with
        ``model_id`` is also that logged model's (it must exist, in the run's experiment)."""
        tracking_metrics.check_batch_limits(len(metrics), len(params), len(tags))
        checked_params: dict[str, str] = {}
        for p in params:
            key, value = check_key(p.key, "param"), check_value(p.value, "param", MAX_PARAM_VALUE)
            if key in checked_params and checked_params[key] != value:
                raise InvalidInput(f"param {key!r} appears twice in the batch with different values")
            checked_params[key] = value
        checked_metrics = [tracking_metrics.check_metric(m) for m in metrics]
        checked_tags: dict[str, str] = {}
        for t in tags:
            checked_tags[check_key(t.key, "tag")] = check_value(t.value, "tag", MAX_TAG_VALUE)
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            for model_id in sorted({m.model_id for m in checked_metrics if m.model_id}):
                model = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
                if model.experiment_id != row.experiment_id:
                    raise InvalidInput(
                        f"logged model {model_id} belongs to experiment {model.experiment_id}, "
                        f"not to experiment {row.experiment_id} of run {row.id}"
                    )
            self._log_params(s, row.id, checked_params)
            tracking_metrics.write_metrics(s, row.id, checked_metrics)
            self._set_tags(s, row.id, checked_tags)
            if RUN_NAME_TAG in checked_tags:
                row.name = checked_tags[RUN_NAME_TAG][:250]

    def log_metric(
        self,
        principal: Principal,
        run_id: str,
        key: str,
        value: float,
        timestamp: int,
        step: int = 0,
        *,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> None:
        metric = MetricIn(key, value, timestamp, step, model_id, dataset_name, dataset_digest)
        self.log_batch(principal, run_id, metrics=[metric])

    def log_param(self, principal: Principal, run_id: str, key: str, value: str) -> None:
        self.log_batch(principal, run_id, params=[TagIn(key, value)])

    def set_tag(self, principal: Principal, run_id: str, key: str, value: str) -> None:
        self.log_batch(principal, run_id, tags=[TagIn(key, value)])

    def delete_tag(self, principal: Principal, run_id: str, key: str) -> None:
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            tag = s.get(RunTagRow, (row.id, key)) if key_ok(key) else None
            if tag is None:
                raise NotFound(f"run {run_id} has no tag {key!r}")
            s.delete(tag)

    def metric_history(
        self,
        principal: Principal,
        run_id: str,
        key: str,
        *,
        max_results: int | None = None,
        offset: int = 0,
    ) -> Page[Metric]:
        limit = check_max(max_results, 25000, 25000)
        with self.db.uow(readonly=True) as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_READ)
            rows = tracking_metrics.history(s, row.id, key, offset, limit + 1)
        return Page(tuple(rows[:limit]), offset + limit if len(rows) > limit else None)

    def log_inputs(self, principal: Principal, run_id: str, datasets: list | None, models: list | None) -> None:
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            inputs = dict(row.inputs or {})
            if datasets:
                have = inputs.get("dataset_inputs", [])
                inputs["dataset_inputs"] = have + [d for d in datasets if d not in have]
            if models:
                have = inputs.get("model_inputs", [])
                inputs["model_inputs"] = have + [m for m in models if m not in have]
            row.inputs = inputs

    def log_outputs(self, principal: Principal, run_id: str, models: list | None) -> None:
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            outputs = dict(row.outputs or {})
            have = outputs.get("model_outputs", [])
            outputs["model_outputs"] = have + [m for m in models or [] if m not in have]
            row.outputs = outputs

    def search_runs(
        self,
        principal: Principal,
        experiment_ids: Sequence[str],
        query: Query = Query(),
        *,
        run_view_type: ViewType | None = None,
        max_results: int | None = None,
        offset: int = 0,
    ) -> Page[Run]:
        require(principal, Action.TRACKING_READ, principal.org_id, what="run")
        limit = check_max(max_results, 1000, 50000)
        ids = [self.resolve_experiment_id(principal, e) if e == DEFAULT_ID else exp_int(e) for e in experiment_ids]
        ids = [i for i in ids if i is not None]
        attrs = {
            "run_id": RunRow.id,
            "run_uuid": RunRow.id,
            "id": RunRow.id,
            "run_name": RunRow.name,
            "name": RunRow.name,
            "status": RunRow.status,
            "user_id": RunRow.user_id,
            "start_time": RunRow.start_time,
            "created": RunRow.start_time,
            "end_time": RunRow.end_time,
            "lifecycle_stage": RunRow.lifecycle_stage,
            "experiment_id": RunRow.experiment_id,
        }
        q = (
            select(RunRow)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(
                ExperimentRow.org_id == principal.org_id,
                RunRow.experiment_id.in_(ids),
                RunRow.lifecycle_stage.in_(stages_of(run_view_type)),
            )
        )
        for c in comparisons(query, "run searches"):
            if c.kind == "metrics":
                if not isinstance(c.value, (int, float)) and c.op not in ("IN", "NOT IN"):
                    raise InvalidInput(f"metrics.{c.key} compares with a number, got {c.value!r}")
                q = q.where(
                    exists().where(
                        LatestMetricRow.run_id == RunRow.id,
                        LatestMetricRow.key == c.key,
                        compare(LatestMetricRow.value, c.op, c.value),
                    )
                )
            elif c.kind in ("params", "tags"):
                table = RunParamRow if c.kind == "params" else RunTagRow
                value = c.value if isinstance(c.value, tuple) else str(c.value)
                q = q.where(
                    exists().where(table.run_id == RunRow.id, table.key == c.key, compare(table.value, c.op, value))
                )
            elif c.kind == "attributes" and c.key in attrs:
                value = c.value
                if c.key == "experiment_id":
                    value = exp_int(str(value))
                q = q.where(compare(attrs[c.key], c.op, value))
            else:
                raise InvalidInput(f"cannot filter runs on {c.kind}.{c.key}")
        orders = []
        for o in query.order:
            kind, key, asc = o.kind, o.key, o.ascending
            if kind == "metrics":
                col = (
                    select(LatestMetricRow.value)
                    .where(LatestMetricRow.run_id == RunRow.id, LatestMetricRow.key == key)
                    .scalar_subquery()
                )
            elif kind in ("params", "tags"):
                table = RunParamRow if kind == "params" else RunTagRow
                col = select(table.value).where(table.run_id == RunRow.id, table.key == key).scalar_subquery()
            elif kind == "attributes" and key in attrs:
                col = attrs[key]
            else:
                raise InvalidInput(f"cannot order runs by {kind}.{key}")
            orders += [col.is_(None), col.asc() if asc else col.desc()]  # missing values last
        q = q.order_by(*orders, RunRow.start_time.desc(), RunRow.id)
        with self.db.uow(readonly=True) as s:
            rows = list(s.scalars(q.offset(offset).limit(limit + 1)))
            items = [self._run_entity(s, r) for r in rows[:limit]]
        return Page(tuple(items), offset + limit if len(rows) > limit else None)
