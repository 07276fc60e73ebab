"""Experiment tracking (the MLflow model): experiments, runs with metrics/params/tags, and MLflow 3 logged models.

Experiments belong to an organisation (names unique within it); each organisation has one default experiment
("Default"), which callers may address as id ``"0"``. Runs and logged models live in an experiment and follow its
organisation. Artifacts are kept by :mod:`modelharbor.core.artifacts` under ``<experiment_id>/...``.

Times are integer milliseconds since the epoch, as MLflow carries them. Params are immutable once logged.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core import tracking_metrics
from modelharbor.core.clock import new_hex
from modelharbor.core.filters import compare, compare_py, comparisons
from modelharbor.core.ids import well_formed
from modelharbor.core.tracking_metrics import MAX_KEY, Metric, now_ms
from modelharbor.core.tracking_metrics import check_key as _check_key
from modelharbor.core.tracking_metrics import to_int as _to_int
from modelharbor.db.engine import Database
from modelharbor.db.tables_tracking import (
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    LoggedModelRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Dataset, Order, Page, Query

DEFAULT_EXPERIMENT = "Default"
DEFAULT_ID = "0"
ACTIVE, DELETED = "active", "deleted"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MODEL_STATUSES = ("PENDING", "READY", "FAILED")
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


class AlreadyExists(HarborError):
    code = "RESOURCE_ALREADY_EXISTS"
    status = 400


def experiment_artifact_location(experiment_id: int | str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: int | str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def model_artifact_uri(experiment_id: int | str, model_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"


# --- entities ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    id: str
    org_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str]
    is_default: bool = False


@dataclass(frozen=True)
class Run:
    id: str
    experiment_id: str
    name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    metrics: tuple[Metric, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedModel:
    id: str
    experiment_id: str
    name: str
    artifact_uri: str
    status: str
    status_message: str | None
    model_type: str | None
    source_run_id: str | None
    creator_id: str | None
    lifecycle_stage: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: tuple[Metric, ...] = ()


VIEW_TYPES = {"ACTIVE_ONLY": (ACTIVE,), "DELETED_ONLY": (DELETED,), "ALL": (ACTIVE, DELETED), "": (ACTIVE,)}


def stages_of(view_type: str | int | None) -> tuple[str, ...]:
    if view_type is None:
        return (ACTIVE,)
    if isinstance(view_type, int) or str(view_type).isdigit():
        view_type = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}.get(int(view_type), "?")
    if str(view_type).upper() not in VIEW_TYPES:
        raise InvalidInput(f"unknown view type {view_type!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return VIEW_TYPES[str(view_type).upper()]


def _check_max(max_results: int | None, default: int, limit: int) -> int:
    if max_results is None or max_results == 0:
        return default
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be from 1 to {limit}, got {max_results!r}")
    return max_results


def _check_value(value: Any, what: str, limit: int) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limit:
        raise InvalidInput(f"{what} value is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"{what} value contains a NUL character")
    return value


def _entry(item: Any, what: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"a {what} must be an object with key and value, got {item!r}")
    return item


def _insert(s: Session):
    """The dialect's INSERT (for ON CONFLICT)."""
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def _key_ok(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= MAX_KEY and "\x00" not in key


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("an experiment name is required")
    if len(name) > 500 or "\x00" in name:
        raise InvalidInput("the experiment name must be at most 500 characters, without NUL")
    return name


def _exp_int(experiment_id: Any) -> int | None:
    s = str(experiment_id) if experiment_id is not None else ""
    return int(s) if s.isdigit() and len(s) < 12 else None


def new_run_name() -> str:
    adjectives = ("bright", "calm", "eager", "gentle", "brave", "quick", "merry", "bold", "wise", "keen")
    nouns = ("otter", "harbor", "falcon", "maple", "comet", "lynx", "reef", "willow", "heron", "orca")
    h = uuid.uuid4().int
    return f"{adjectives[h % 10]}-{nouns[(h >> 8) % 10]}-{h % 1000}"


# --- service -----------------------------------------------------------------------------------


class TrackingService:
    def __init__(self, db: Database):
        self.db = db

    # ---- experiments ---------------------------------------------------------------------
    def _experiment_entity(self, s: Session, row: ExperimentRow) -> Experiment:
        tags = {
            t.key: t.value for t in s.scalars(select(ExperimentTagRow).where(ExperimentTagRow.experiment_id == row.id))
        }
        return Experiment(
            id=str(row.id),
            org_id=row.org_id,
            name=row.name,
            artifact_location=experiment_artifact_location(row.id),
            lifecycle_stage=row.lifecycle_stage,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags=tags,
            is_default=row.is_default,
        )

    def ensure_default(self, principal: Principal) -> int:
        """The id of the organisation's default experiment, created on first use."""
        require(principal, Action.TRACKING_READ, principal.org_id, what="experiment")
        org = principal.org_id
        with self.db.uow(readonly=True) as s:
            found = s.scalar(select(ExperimentRow.id).where(ExperimentRow.org_id == org, ExperimentRow.is_default))
        if found is not None:
            return found
        try:
            with self.db.uow() as s:
                t = now_ms()
                row = ExperimentRow(
                    org_id=org, name=DEFAULT_EXPERIMENT, is_default=True, lifecycle_stage=ACTIVE,
                    creation_time=t, last_update_time=t,
                )  # fmt: skip
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:  # a concurrent call created it (or "Default" is taken by a plain experiment)
            with self.db.uow(readonly=True) as s:
                found = s.scalar(
                    select(ExperimentRow.id).where(
                        ExperimentRow.org_id == org, ExperimentRow.name == DEFAULT_EXPERIMENT
                    )
                )
            if found is None:  # pragma: no cover
                raise
            return found

    def resolve_experiment_id(self, principal: Principal, experiment_id: Any) -> int:
        """``"0"`` means the caller's default experiment; other ids must be integers (existence checked later)."""
        if str(experiment_id) == DEFAULT_ID:
            return self.ensure_default(principal)
        n = _exp_int(experiment_id)
        if n is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        return n

    @staticmethod
    def _exp_row(s: Session, principal: Principal, exp_id: int, action: Action) -> ExperimentRow:
        row = s.get(ExperimentRow, exp_id)
        if row is None:
            raise NotFound(f"experiment {exp_id} does not exist")
        require(principal, action, row.org_id, what=f"experiment {exp_id}")
        return row

    def create_experiment(self, principal: Principal, name: str, tags: dict[str, str] | None = None) -> Experiment:
        require(principal, Action.TRACKING_WRITE, principal.org_id, what="experiment")
        _check_name(name)
        self.ensure_default(principal)
        try:
            with self.db.uow() as s:
                if s.scalar(
                    select(ExperimentRow.id).where(ExperimentRow.org_id == principal.org_id, ExperimentRow.name == name)
                ):
                    raise AlreadyExists(f"an experiment named {name!r} already exists")
                t = now_ms()
                row = ExperimentRow(
                    org_id=principal.org_id, name=name, is_default=False, lifecycle_stage=ACTIVE,
                    creation_time=t, last_update_time=t,
                )  # fmt: skip
                s.add(row)
                s.flush()
                for k, v in (tags or {}).items():
                    s.add(
                        ExperimentTagRow(
                            experiment_id=row.id, key=_check_key(k, "tag"), value=_check_value(v, "tag", MAX_TAG_VALUE)
                        )
                    )
                s.flush()
                return self._experiment_entity(s, row)
        except IntegrityError:
            raise AlreadyExists(f"an experiment named {name!r} already exists") from None

    def get_experiment(self, principal: Principal, experiment_id: Any) -> Experiment:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow(readonly=True) as s:
            return self._experiment_entity(s, self._exp_row(s, principal, exp_id, Action.TRACKING_READ))

    def get_experiment_by_name(self, principal: Principal, name: str) -> Experiment:
        require(principal, Action.TRACKING_READ, principal.org_id, what="experiment")
        _check_name(name)
        if name == DEFAULT_EXPERIMENT:
            self.ensure_default(principal)
        with self.db.uow(readonly=True) as s:
            row = s.scalar(
                select(ExperimentRow).where(ExperimentRow.org_id == principal.org_id, ExperimentRow.name == name)
            )
            if row is None:
                raise NotFound(f"experiment {name!r} does not exist")
            return self._experiment_entity(s, row)

    def search_experiments(
        self,
        principal: Principal,
        query: Query = Query(),
        *,
        view_type: Any = None,
        max_results: int | None = None,
        offset: int = 0,
    ) -> Page[Experiment]:
        self.ensure_default(principal)
        limit = _check_max(max_results, 1000, 50000)
        q = select(ExperimentRow).where(
            ExperimentRow.org_id == principal.org_id, ExperimentRow.lifecycle_stage.in_(stages_of(view_type))
        )
        attrs = {
            "name": ExperimentRow.name,
            "experiment_id": ExperimentRow.id,
            "creation_time": ExperimentRow.creation_time,
            "last_update_time": ExperimentRow.last_update_time,
            "lifecycle_stage": ExperimentRow.lifecycle_stage,
        }
        for c in comparisons(query, "experiment searches"):
            if c.kind == "tags":
                q = q.where(
                    exists().where(
                        ExperimentTagRow.experiment_id == ExperimentRow.id,
                        ExperimentTagRow.key == c.key,
                        compare(ExperimentTagRow.value, c.op, c.value),
                    )
                )
            elif c.kind == "attributes" and c.key in attrs:
                value = int(c.value) if c.key == "experiment_id" and str(c.value).isdigit() else c.value
                q = q.where(compare(attrs[c.key], c.op, value))
            else:
                raise InvalidInput(f"cannot filter experiments on {c.kind}.{c.key}")
        orders = []
        for o in query.order:
            if o.kind != "attributes" or o.key not in attrs:
                raise InvalidInput(f"cannot order experiments by {o.key!r}")
            orders.append(attrs[o.key].asc() if o.ascending else attrs[o.key].desc())
        q = q.order_by(*orders, ExperimentRow.creation_time.desc(), ExperimentRow.id.desc())
        with self.db.uow(readonly=True) as s:
            rows = list(s.scalars(q.offset(offset).limit(limit + 1)))
            items = [self._experiment_entity(s, r) for r in rows[:limit]]
        return Page(tuple(items), offset + limit if len(rows) > limit else None)

    def rename_experiment(self, principal: Principal, experiment_id: Any, new_name: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        _check_name(new_name)
        try:
            with self.db.uow() as s:
                row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
                if row.lifecycle_stage != ACTIVE:
                    raise InvalidInput("cannot rename a deleted experiment; restore it first")
                other = s.scalar(
                    select(ExperimentRow.id).where(ExperimentRow.org_id == row.org_id, ExperimentRow.name == new_name)
                )
                if other is not None and other != row.id:
                    raise AlreadyExists(f"an experiment named {new_name!r} already exists")
                row.name, row.last_update_time = new_name, now_ms()
        except IntegrityError:
            raise AlreadyExists(f"an experiment named {new_name!r} already exists") from None

    def set_experiment_lifecycle(self, principal: Principal, experiment_id: Any, stage: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            if stage == DELETED and row.is_default:
                raise InvalidInput("the default experiment cannot be deleted")
            if stage == ACTIVE and row.lifecycle_stage == ACTIVE:
                raise InvalidInput(f"experiment {exp_id} is not deleted")
            row.lifecycle_stage, row.last_update_time = stage, now_ms()

    def set_experiment_tag(self, principal: Principal, experiment_id: Any, key: str, value: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        key, value = _check_key(key, "tag"), _check_value(value, "tag", MAX_TAG_VALUE)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            tag = s.get(ExperimentTagRow, (row.id, key))
            if tag is None:
                s.add(ExperimentTagRow(experiment_id=row.id, key=key, value=value))
            else:
                tag.value = value
            row.last_update_time = now_ms()

    def delete_experiment_tag(self, principal: Principal, experiment_id: Any, key: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            tag = s.get(ExperimentTagRow, (row.id, key)) if _key_ok(key) else None
            if tag is None:
                raise NotFound(f"experiment {exp_id} has no tag {key!r}")
            s.delete(tag)

    def experiment_org(self, experiment_id: int) -> str | None:
        with self.db.uow(readonly=True) as s:
            return s.scalar(select(ExperimentRow.org_id).where(ExperimentRow.id == experiment_id))

    # ---- runs ----------------------------------------------------------------------------
    @staticmethod
    def _run_row(s: Session, principal: Principal, run_id: Any, action: Action) -> tuple[RunRow, ExperimentRow]:
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
        experiment_id: Any,
        *,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
    ) -> Run:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        tags = {_check_key(k, "tag"): _check_value(v, "tag", MAX_TAG_VALUE) for k, v in (tags or {}).items()}
        name = run_name or tags.get(RUN_NAME_TAG) or new_run_name()
        if run_name and tags.get(RUN_NAME_TAG) and tags[RUN_NAME_TAG] != run_name:
            raise InvalidInput(f"run_name {run_name!r} and tag {RUN_NAME_TAG}={tags[RUN_NAME_TAG]!r} disagree")
        tags[RUN_NAME_TAG] = name
        with self.db.uow() as s:
            exp = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            if exp.lifecycle_stage != ACTIVE:
                raise InvalidInput(f"experiment {exp_id} is deleted; restore it to create runs in it")
            row = RunRow(
                id=uuid.uuid4().hex,
                experiment_id=exp.id,
                name=name[:250],
                user_id=(user_id or tags.get(USER_TAG) or principal.username)[:256],
                status="RUNNING",
                start_time=_to_int(start_time, "start_time", now_ms()),
                end_time=None,
                lifecycle_stage=ACTIVE,
                inputs={},
                outputs={},
            )
            s.add(row)
            s.flush()
            for k, v in tags.items():
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
            if end_time is not None and end_time != "":
                row.end_time = _to_int(end_time, "end_time")
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
        TrackingService._set_tags(s, run_id, {key: value})

    @staticmethod
    def _set_tags(s: Session, run_id: str, tags: dict[str, str]) -> None:
        """Insert or replace (one upsert: concurrent writers of a new tag do not collide)."""
        if not tags:
            return
        stmt = _insert(s)(RunTagRow).values([{"run_id": run_id, "key": k, "value": v} for k, v in sorted(tags.items())])
        s.execute(stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}))

    @staticmethod
    def _log_params(s: Session, run_id: str, params: dict[str, str]) -> None:
        """Insert the new ones (ON CONFLICT DO NOTHING, so concurrent identical ones do not collide), then refuse any
        logged before with another value."""
        if not params:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(params.items())]
        s.execute(_insert(s)(RunParamRow).values(rows).on_conflict_do_nothing(index_elements=["run_id", "key"]))
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
        metrics: list[dict[str, Any]] | None = None,
        params: list[dict[str, Any]] | None = None,
        tags: list[dict[str, Any]] | None = None,
    ) -> None:
        """Params, metrics and tags of a run in one transaction: all of them or, on any error, nothing.

        Metrics as MLflow keeps them (``core/tracking_metrics.py``): an identical one is stored once, one with
        ``model_id`` is also that logged model's (it must exist, in the run's experiment)."""
        metrics, params, tags = metrics or [], params or [], tags or []
        tracking_metrics.check_batch_limits(len(metrics), len(params), len(tags))
        checked_params: dict[str, str] = {}
        for p in params:
            p = _entry(p, "param")
            key, value = _check_key(p.get("key"), "param"), _check_value(p.get("value"), "param", MAX_PARAM_VALUE)
            if key in checked_params and checked_params[key] != value:
                raise InvalidInput(f"param {key!r} appears twice in the batch with different values")
            checked_params[key] = value
        checked_metrics = [tracking_metrics.check_metric(m) for m in metrics]
        checked_tags: dict[str, str] = {}
        for t in tags:
            t = _entry(t, "tag")
            checked_tags[_check_key(t.get("key"), "tag")] = _check_value(t.get("value"), "tag", MAX_TAG_VALUE)
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
        value: Any,
        timestamp: Any,
        step: Any,
        *,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> None:
        metric = {"key": key, "value": value, "timestamp": timestamp, "step": step, "model_id": model_id}
        metric |= {"dataset_name": dataset_name, "dataset_digest": dataset_digest}
        self.log_batch(principal, run_id, metrics=[metric])

    def log_param(self, principal: Principal, run_id: str, key: str, value: Any) -> None:
        self.log_batch(principal, run_id, params=[{"key": key, "value": value}])

    def set_tag(self, principal: Principal, run_id: str, key: str, value: Any) -> None:
        self.log_batch(principal, run_id, tags=[{"key": key, "value": value}])

    def delete_tag(self, principal: Principal, run_id: str, key: str) -> None:
        with self.db.uow() as s:
            row, _ = self._run_row(s, principal, run_id, Action.TRACKING_WRITE)
            self._active_run(row)
            tag = s.get(RunTagRow, (row.id, key)) if _key_ok(key) else None
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
        limit = _check_max(max_results, 25000, 25000)
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
        experiment_ids: list[int | str],
        query: Query = Query(),
        *,
        run_view_type: Any = None,
        max_results: int | None = None,
        offset: int = 0,
    ) -> Page[Run]:
        require(principal, Action.TRACKING_READ, principal.org_id, what="run")
        limit = _check_max(max_results, 1000, 50000)
        ids = [
            self.resolve_experiment_id(principal, e) if str(e) == DEFAULT_ID else _exp_int(e) for e in experiment_ids
        ]
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
                    value = _exp_int(value)
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

    # ---- logged models -------------------------------------------------------------------
    @staticmethod
    def _model_entity(row: LoggedModelRow, metrics: tuple[Metric, ...] = ()) -> LoggedModel:
        return LoggedModel(
            id=row.id,
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_uri=model_artifact_uri(row.experiment_id, row.id),
            status=row.status,
            status_message=row.status_message,
            model_type=row.model_type,
            source_run_id=row.source_run_id,
            creator_id=row.creator_id,
            lifecycle_stage=row.lifecycle_stage,
            creation_timestamp_ms=row.creation_timestamp_ms,
            last_updated_timestamp_ms=row.last_updated_timestamp_ms,
            params=dict(row.params or {}),
            tags=dict(row.tags or {}),
            metrics=metrics,
        )

    @staticmethod
    def _model_with_metrics(s: Session, row: LoggedModelRow) -> LoggedModel:
        return TrackingService._model_entity(row, tracking_metrics.model_metrics(s, [row.id])[row.id])

    @staticmethod
    def _model_row(
        s: Session, principal: Principal, model_id: Any, action: Action, *, allow_deleted: bool = False
    ) -> LoggedModelRow:
        row = s.get(LoggedModelRow, model_id) if well_formed(model_id) and len(model_id) <= 40 else None
        exp = s.get(ExperimentRow, row.experiment_id) if row is not None else None
        if (
            row is None
            or exp is None
            or (exp.org_id != principal.org_id and not principal.is_superuser)
            or (row.lifecycle_stage != ACTIVE and not allow_deleted)
        ):
            raise NotFound(f"logged model {model_id!r} not found")
        require(principal, action, exp.org_id, what=f"logged model {model_id!r}")
        return row

    def create_logged_model(
        self,
        principal: Principal,
        experiment_id: Any,
        *,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> LoggedModel:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        params = {_check_key(k, "param"): _check_value(v, "param", MAX_PARAM_VALUE) for k, v in (params or {}).items()}
        tags = {_check_key(k, "tag"): _check_value(v, "tag", MAX_TAG_VALUE) for k, v in (tags or {}).items()}
        with self.db.uow() as s:
            exp = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            if exp.lifecycle_stage != ACTIVE:
                raise InvalidInput(f"experiment {exp_id} is deleted")
            if source_run_id:
                run, _ = self._run_row(s, principal, source_run_id, Action.TRACKING_READ)
            t = now_ms()
            row = LoggedModelRow(
                id=f"m-{new_hex(16)}",
                experiment_id=exp.id,
                name=(name or new_run_name())[:500],
                model_type=model_type or None,
                source_run_id=source_run_id or None,
                creator_id=principal.user_id,
                status="PENDING",
                status_message=None,
                lifecycle_stage=ACTIVE,
                params=params,
                tags=tags,
                creation_timestamp_ms=t,
                last_updated_timestamp_ms=t,
            )
            s.add(row)
            s.flush()
            return self._model_entity(row)

    def get_logged_model(self, principal: Principal, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        with self.db.uow(readonly=True) as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_READ, allow_deleted=allow_deleted)
            return self._model_with_metrics(s, row)

    def finalize_logged_model(self, principal: Principal, model_id: str, status: str) -> LoggedModel:
        if status not in ("READY", "FAILED"):
            raise InvalidInput(f"a logged model is finalised as READY or FAILED, not {status!r}")
        with self.db.uow() as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
            row.status, row.last_updated_timestamp_ms = status, now_ms()
            s.flush()
            return self._model_with_metrics(s, row)

    def delete_logged_model(self, principal: Principal, model_id: str) -> None:
        with self.db.uow() as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
            row.lifecycle_stage, row.last_updated_timestamp_ms = DELETED, now_ms()

    def set_logged_model_tags(self, principal: Principal, model_id: str, tags: dict[str, str]) -> None:
        checked = {_check_key(k, "tag"): _check_value(v, "tag", MAX_TAG_VALUE) for k, v in tags.items()}
        with self.db.uow() as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
            row.tags = {**(row.tags or {}), **checked}
            row.last_updated_timestamp_ms = now_ms()

    def delete_logged_model_tag(self, principal: Principal, model_id: str, key: str) -> None:
        with self.db.uow() as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
            if key not in (row.tags or {}):
                raise NotFound(f"logged model {model_id} has no tag {key!r}")
            row.tags = {k: v for k, v in row.tags.items() if k != key}
            row.last_updated_timestamp_ms = now_ms()

    def log_logged_model_params(self, principal: Principal, model_id: str, params: dict[str, str]) -> None:
        checked = {_check_key(k, "param"): _check_value(v, "param", MAX_PARAM_VALUE) for k, v in params.items()}
        with self.db.uow() as s:
            row = self._model_row(s, principal, model_id, Action.TRACKING_WRITE)
            for k, v in checked.items():
                if k in (row.params or {}) and row.params[k] != v:
                    raise InvalidInput(f"param {k!r} of logged model {model_id} was already logged with another value")
            row.params = {**(row.params or {}), **checked}
            row.last_updated_timestamp_ms = now_ms()

    def search_logged_models(
        self,
        principal: Principal,
        experiment_ids: list[int | str],
        query: Query = Query(),
        *,
        max_results: int | None = None,
        offset: int = 0,
        datasets: tuple[Dataset, ...] = (),
    ) -> Page[LoggedModel]:
        """MLflow's search: attributes, params, tags and metrics (any value of the key; on ``datasets`` if given);
        ordered by attributes or metrics (the latest value), missing values last."""
        require(principal, Action.TRACKING_READ, principal.org_id, what="logged model")
        limit = _check_max(max_results, 100, 50000)
        ids = [
            self.resolve_experiment_id(principal, e) if str(e) == DEFAULT_ID else _exp_int(e) for e in experiment_ids
        ]
        clauses = comparisons(query, "logged model searches")
        on_metrics = (
            bool(datasets) or any(c.kind == "metrics" for c in clauses) or any(o.kind == "metrics" for o in query.order)
        )
        with self.db.uow(readonly=True) as s:
            rows = list(
                s.scalars(
                    select(LoggedModelRow)
                    .join(ExperimentRow, ExperimentRow.id == LoggedModelRow.experiment_id)
                    .where(
                        and_(
                            ExperimentRow.org_id == principal.org_id,
                            LoggedModelRow.experiment_id.in_([i for i in ids if i is not None]),
                            LoggedModelRow.lifecycle_stage == ACTIVE,
                        )
                    )
                )
            )
            metrics = tracking_metrics.model_metrics(s, [r.id for r in rows]) if on_metrics else {}
            models = [self._model_entity(r, metrics.get(r.id, ())) for r in rows]
            for c in clauses:
                if c.kind == "attributes" and c.key in _MODEL_ATTRS:
                    models = [m for m in models if compare_py(getattr(m, _MODEL_ATTRS[c.key]), c.op, c.value)]
                elif c.kind in ("params", "tags"):
                    models = [m for m in models if compare_py(getattr(m, c.kind).get(c.key), c.op, c.value)]
                elif c.kind == "metrics":
                    test = tracking_metrics.metric_test(c.key, c.op, c.value, datasets)
                    models = [m for m in models if test(m.metrics)]
                else:
                    raise InvalidInput(f"cannot filter logged models on {c.kind}.{c.key}")
            if datasets and not any(c.kind == "metrics" for c in clauses):
                models = [m for m in models if any(tracking_metrics.on_datasets(x, datasets) for x in m.metrics)]
            models.sort(key=lambda m: (-m.creation_timestamp_ms, m.id))
            for o in reversed(query.order):
                if not (o.kind == "metrics" or (o.kind == "attributes" and o.key in _MODEL_ATTRS)):
                    raise InvalidInput(f"cannot order logged models by {o.name!r}")
                values = {m.id: _model_order_value(m, o) for m in models}
                present = sorted(
                    (m for m in models if values[m.id] is not None), key=lambda m: values[m.id], reverse=not o.ascending
                )
                models = present + [m for m in models if values[m.id] is None]  # missing values last, as MLflow
            page = models[offset : offset + limit]
            if not on_metrics:
                found = tracking_metrics.model_metrics(s, [m.id for m in page])
                page = [dataclasses.replace(m, metrics=found[m.id]) for m in page]
        return Page(tuple(page), offset + limit if len(models) > offset + limit else None)


_MODEL_ATTRS = {
    "name": "name",
    "model_id": "id",
    "source_run_id": "source_run_id",
    "status": "status",
    "model_type": "model_type",
    "creation_timestamp": "creation_timestamp_ms",
    "creation_time": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
    "experiment_id": "experiment_id",
}


def _model_order_value(m: LoggedModel, o: Order) -> Any:
    if o.kind == "metrics":
        return tracking_metrics.latest_value(m.metrics, o.key, o.dataset_name, o.dataset_digest)
    return getattr(m, _MODEL_ATTRS[o.key])
