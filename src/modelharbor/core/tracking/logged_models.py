"""MLflow 3 logged models: create, read, finalise, delete, tags and params, and MLflow's search of them (attributes,
params, tags and metrics, on datasets if given)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_hex
from modelharbor.core.filters import compare_py, comparisons
from modelharbor.core.ids import well_formed
from modelharbor.core.tracking import metrics as tracking_metrics
from modelharbor.core.tracking.metrics import check_key, now_ms
from modelharbor.core.tracking.validation import (
    ACTIVE,
    DEFAULT_ID,
    DELETED,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    check_max,
    check_value,
    exp_int,
    model_artifact_uri,
    new_run_name,
)
from modelharbor.db.tables_tracking import ExperimentRow, LoggedModelRow
from modelharbor.domain.entities import LoggedModel, Metric
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import TagIn
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Dataset, Order, Page, Query


class LoggedModels:
    """Logged models, their tags, params and metrics."""

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
        return LoggedModels._model_entity(row, tracking_metrics.model_metrics(s, [row.id])[row.id])

    @staticmethod
    def _model_row(
        s: Session, principal: Principal, model_id: str, action: Action, *, allow_deleted: bool = False
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
        experiment_id: str,
        *,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: Sequence[TagIn] = (),
        tags: Sequence[TagIn] = (),
    ) -> LoggedModel:
        """A new logged model (PENDING until finalised) in the experiment (``"0"``: the caller's default), with
        ``params`` and ``tags`` (a key given twice takes its last value)."""
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        checked_params = _checked(params, "param", MAX_PARAM_VALUE)
        checked_tags = _checked(tags, "tag", MAX_TAG_VALUE)
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
                params=checked_params,
                tags=checked_tags,
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

    def set_logged_model_tags(self, principal: Principal, model_id: str, tags: Sequence[TagIn]) -> None:
        checked = _checked(tags, "tag", MAX_TAG_VALUE)
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

    def log_logged_model_params(self, principal: Principal, model_id: str, params: Sequence[TagIn]) -> None:
        checked = _checked(params, "param", MAX_PARAM_VALUE)
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
        experiment_ids: Sequence[str],
        query: Query = Query(),
        *,
        max_results: int | None = None,
        offset: int = 0,
        datasets: tuple[Dataset, ...] = (),
    ) -> Page[LoggedModel]:
        """MLflow's search: attributes, params, tags and metrics (any value of the key; on ``datasets`` if given);
        ordered by attributes or metrics (the latest value), missing values last."""
        require(principal, Action.TRACKING_READ, principal.org_id, what="logged model")
        limit = check_max(max_results, 100, 50000)
        ids = [self.resolve_experiment_id(principal, e) if e == DEFAULT_ID else exp_int(e) for e in experiment_ids]
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


def _checked(pairs: Sequence[TagIn], what: str, limit: int) -> dict[str, str]:
    """Params or tags by key (a key given twice takes its last value), each checked."""
    return {check_key(k, what): check_value(v, what, limit) for k, v in {p.key: p.value for p in pairs}.items()}


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


def _model_order_value(m: LoggedModel, o: Order) -> float | int | str | None:
    if o.kind == "metrics":
        return tracking_metrics.latest_value(m.metrics, o.key, o.dataset_name, o.dataset_digest)
    return getattr(m, _MODEL_ATTRS[o.key])
