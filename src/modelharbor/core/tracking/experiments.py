"""Experiments: the organisation's default experiment (created on first use, addressed as ``"0"``), create, read,
search, rename, delete/restore and tags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.filters import compare, comparisons
from modelharbor.core.tracking.metrics import check_key, now_ms
from modelharbor.core.tracking.validation import (
    ACTIVE,
    DEFAULT_EXPERIMENT,
    DEFAULT_ID,
    DELETED,
    MAX_TAG_VALUE,
    AlreadyExists,
    check_max,
    check_name,
    check_value,
    exp_int,
    experiment_artifact_location,
    key_ok,
    stages_of,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables_tracking import ExperimentRow, ExperimentTagRow
from modelharbor.domain.entities import Experiment
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import TagIn, ViewType
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Page, Query


class Experiments:
    """Experiments and their tags; the experiment lookups the runs and logged models use."""

    db: Database

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

    def resolve_experiment_id(self, principal: Principal, experiment_id: str) -> int:
        """``"0"`` means the caller's default experiment; other ids must be integers (existence checked later)."""
        if str(experiment_id) == DEFAULT_ID:
            return self.ensure_default(principal)
        n = exp_int(experiment_id)
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

    def create_experiment(self, principal: Principal, name: str, tags: Sequence[TagIn] = ()) -> Experiment:
        """A new experiment named ``name`` with ``tags`` (a key given twice takes its last value)."""
        require(principal, Action.TRACKING_WRITE, principal.org_id, what="experiment")
        check_name(name)
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
                for k, v in {t.key: t.value for t in tags}.items():
                    s.add(
                        ExperimentTagRow(
                            experiment_id=row.id, key=check_key(k, "tag"), value=check_value(v, "tag", MAX_TAG_VALUE)
                        )
                    )
                s.flush()
                return self._experiment_entity(s, row)
        except IntegrityError:
            raise AlreadyExists(f"an experiment named {name!r} already exists") from None

    def get_experiment(self, principal: Principal, experiment_id: str) -> Experiment:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow(readonly=True) as s:
            return self._experiment_entity(s, self._exp_row(s, principal, exp_id, Action.TRACKING_READ))

    def get_experiment_by_name(self, principal: Principal, name: str) -> Experiment:
        require(principal, Action.TRACKING_READ, principal.org_id, what="experiment")
        check_name(name)
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
        view_type: ViewType | None = None,
        max_results: int | None = None,
        offset: int = 0,
    ) -> Page[Experiment]:
        self.ensure_default(principal)
        limit = check_max(max_results, 1000, 50000)
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
                value = int(c.value) if c.key == "experiment_id" and str(c.value).isdecimal() else c.value
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

    def rename_experiment(self, principal: Principal, experiment_id: str, new_name: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        check_name(new_name)
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

    def set_experiment_lifecycle(self, principal: Principal, experiment_id: str, stage: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            if stage == DELETED and row.is_default:
                raise InvalidInput("the default experiment cannot be deleted")
            if stage == ACTIVE and row.lifecycle_stage == ACTIVE:
                raise InvalidInput(f"experiment {exp_id} is not deleted")
            row.lifecycle_stage, row.last_update_time = stage, now_ms()

    def set_experiment_tag(self, principal: Principal, experiment_id: str, key: str, value: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        key, value = check_key(key, "tag"), check_value(value, "tag", MAX_TAG_VALUE)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            tag = s.get(ExperimentTagRow, (row.id, key))
            if tag is None:
                s.add(ExperimentTagRow(experiment_id=row.id, key=key, value=value))
            else:
                tag.value = value
            row.last_update_time = now_ms()

    def delete_experiment_tag(self, principal: Principal, experiment_id: str, key: str) -> None:
        exp_id = self.resolve_experiment_id(principal, experiment_id)
        with self.db.uow() as s:
            row = self._exp_row(s, principal, exp_id, Action.TRACKING_WRITE)
            tag = s.get(ExperimentTagRow, (row.id, key)) if key_ok(key) else None
            if tag is None:
                raise NotFound(f"experiment {exp_id} has no tag {key!r}")
            s.delete(tag)

    def experiment_org(self, experiment_id: int) -> str | None:
        with self.db.uow(readonly=True) as s:
            return s.scalar(select(ExperimentRow.org_id).where(ExperimentRow.id == experiment_id))
