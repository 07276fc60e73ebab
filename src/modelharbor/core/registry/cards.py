"""Read models of the registry: cards (:mod:`modelharbor.domain.cards`) — a model or version with what a page shows
next to it (its project's summary, its creator's username, the caller's rights, its run) — answered in one call.

A page of cards costs a fixed number of queries, whatever its size: the page itself, then one query each for the
projects (with the caller's collaborator role, core/projects.py ``project_summaries``), the usernames and, when
asked for, the runs' metrics and params (core/tracking ``run_summaries``). Lookups never fail a card: an unknown
user, a project the caller cannot see or a run the caller cannot read is ``None``. The rights follow the write
rule of core/projects.py: registry write in the organisation and, for a model in a project the caller sees, write
access to that project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.projects import project_summaries
from modelharbor.core.registry.validation import UNSET, Unset, validate_version
from modelharbor.core.tracking import run_summaries
from modelharbor.db.tables import UserRow
from modelharbor.domain.cards import ModelCard, ProjectSummary, RunSummary, VersionCard
from modelharbor.domain.entities import ModelVersion, RegisteredModel
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Page


@dataclass(frozen=True)
class _Found:
    """What the cards of one answer show besides their entities, looked up once for all of them."""

    projects: dict[str, tuple[ProjectSummary, bool]]  # id -> (summary, the caller may write), visible ones only
    usernames: dict[str, str]
    runs: dict[str, RunSummary]


def _find(
    s: Session,
    principal: Principal,
    *,
    projects: Iterable[str | None],
    users: Iterable[str | None],
    runs: Iterable[str | None] = (),
    params: bool = False,
) -> _Found:
    ids = {u for u in users if u}
    names = dict(s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))).all()) if ids else {}
    return _Found(project_summaries(s, principal, projects), names, run_summaries(s, principal, runs, params=params))


def _newest(model: RegisteredModel) -> ModelVersion | None:
    return max(model.latest_versions, key=lambda v: v.version, default=None)


def _model_card(
    principal: Principal, found: _Found, model: RegisteredModel, latest: ModelVersion | None, metrics: bool
) -> ModelCard:
    project = found.projects.get(model.project_id) if model.project_id else None
    run = found.runs.get(latest.run_id) if metrics and latest and latest.run_id else None
    return ModelCard(
        model=model,
        latest=latest,
        creator_username=found.usernames.get(model.creator_id) if model.creator_id else None,
        project=project[0] if project else None,
        # a model in no project (or in one the caller cannot see) takes registry write only
        can_edit=principal.can(Action.REGISTRY_WRITE, principal.org_id) and (project[1] if project else True),
        can_view_runs=principal.can(Action.TRACKING_READ, principal.org_id),
        latest_metrics=run.metrics if run else (),
    )


def _version_card(found: _Found, project_id: str | None, version: ModelVersion, runs: bool) -> VersionCard:
    project = found.projects.get(project_id) if project_id else None
    return VersionCard(
        version=version,
        creator_username=found.usernames.get(version.creator_id) if version.creator_id else None,
        project=project[0] if project else None,
        run=found.runs.get(version.run_id) if runs and version.run_id else None,
    )


class Cards:
    """Model and version cards: one page, one model, one version, and the cards a change or a registration answers."""

    def model_cards(
        self,
        principal: Principal,
        *,
        project_id: str | None = None,
        name_contains: str | None = None,
        discoverable: bool | None = None,
        order: tuple[str, bool] | None = None,
        max_results: int | None = None,
        offset: int = 0,
        metrics: bool = False,
    ) -> Page[ModelCard]:
        """A page of :meth:`list_models` as cards; ``metrics``: with the latest metrics of each model's newest
        version's run."""
        with self.db.uow(readonly=True) as s:
            rows, next_offset = self._listing(
                s,
                principal,
                project_id=project_id,
                name_contains=name_contains,
                discoverable=discoverable,
                order=order,
                max_results=max_results,
                offset=offset,
            )
            return Page(tuple(self._model_cards(s, principal, self._models(s, rows), metrics=metrics)), next_offset)

    def model_card(self, principal: Principal, name: str) -> ModelCard:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        with self.db.uow(readonly=True) as s:
            model = self._models(s, [self.model_row(s, principal, name, core=True)])[0]
            return self._model_cards(s, principal, [model])[0]

    def update_model_card(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None | Unset = UNSET,
        discoverable: bool | Unset = UNSET,
    ) -> ModelCard:
        """:meth:`update_model`, answered as the changed model's card."""
        model = self.update_model(principal, name, description=description, discoverable=discoverable)
        with self.db.uow(readonly=True) as s:
            return self._model_cards(s, principal, [model])[0]

    def version_card(self, principal: Principal, name: str, number: int) -> VersionCard:
        """One version's card, with its run."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(number)
        with self.db.uow(readonly=True) as s:
            row = self.model_row(s, principal, name, core=True)
            version = self._versions(s, [(row.name, self.version_row(s, row, number))])[0]
            return self._version_cards(s, principal, row.project_id, [version], runs=True)[0]

    def version_cards(
        self, principal: Principal, name: str, *, offset: int = 0, limit: int = 20, runs: bool = False
    ) -> tuple[list[VersionCard], int]:
        """A page of one model's versions, newest first, as cards (``runs``: with their runs), and how many versions
        the model has."""
        with self.db.uow(readonly=True) as s:
            row, versions, total = self._version_page(s, principal, name, offset, limit, True)
            return self._version_cards(s, principal, row.project_id, versions, runs=runs), total

    def update_version_card(
        self,
        principal: Principal,
        name: str,
        number: int,
        *,
        description: str | None | Unset = UNSET,
        stage: str | Unset = UNSET,
        tags: Mapping[str, str] | Unset = UNSET,
    ) -> VersionCard:
        """:meth:`update_version_fields`, answered as the changed version's card, with its run."""
        version = self.update_version_fields(principal, name, number, description=description, stage=stage, tags=tags)
        with self.db.uow(readonly=True) as s:
            row = self.model_row(s, principal, name, core=True)
            return self._version_cards(s, principal, row.project_id, [version], runs=True)[0]

    def registration_cards(
        self, principal: Principal, name: str, version: ModelVersion
    ) -> tuple[ModelCard, VersionCard]:
        """What registering ``version`` of model ``name`` answers: the model's card with ``version`` as its newest,
        and the version's card with its run."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        with self.db.uow(readonly=True) as s:
            model = self._models(s, [self.model_row(s, principal, name, core=True)])[0]
            found = _find(
                s,
                principal,
                projects=[model.project_id],
                users=[model.creator_id, version.creator_id],
                runs=[version.run_id],
                params=True,
            )
            return (
                _model_card(principal, found, model, version, metrics=False),
                _version_card(found, model.project_id, version, runs=True),
            )

    # --- in a session -----------------------------------------------------------------------------
    def _model_cards(
        self, s: Session, principal: Principal, models: list[RegisteredModel], *, metrics: bool = False
    ) -> list[ModelCard]:
        newest = [_newest(m) for m in models]
        found = _find(
            s,
            principal,
            projects=(m.project_id for m in models),
            users=(m.creator_id for m in models),
            runs=(v.run_id for v in newest if v) if metrics else (),
        )
        return [_model_card(principal, found, m, v, metrics) for m, v in zip(models, newest, strict=True)]

    def _version_cards(
        self, s: Session, principal: Principal, project_id: str | None, versions: list[ModelVersion], *, runs: bool
    ) -> list[VersionCard]:
        found = _find(
            s,
            principal,
            projects=[project_id],
            users=(v.creator_id for v in versions),
            runs=(v.run_id for v in versions) if runs else (),
            params=True,
        )
        return [_version_card(found, project_id, v, runs) for v in versions]
