"""Searches and listings: MLflow's searches of models and versions (a domain :class:`Query`, one offset
:class:`Page`), a model's latest version per stage, Domino's model listing and a model's versions by number (also
in a session, for the read models of core/registry/cards.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelharbor.core.filters import checked_compare, comparisons, order_clauses, tag_condition
from modelharbor.core.projects import canonical_stage, model_stages, project_row
from modelharbor.core.registry.validation import (
    DEFAULT_MODELS_PAGE,
    DEFAULT_VERSIONS_PAGE,
    MAX_MODELS_PAGE,
    MAX_NAME,
    MAX_VERSIONS_PAGE,
    check_text,
    page_size,
)
from modelharbor.db.tables_registry import (
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)
from modelharbor.domain.entities import ModelVersion, RegisteredModel
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Page, Query


class Search:
    """Searches and listings of models and versions."""

    def search_models(
        self, principal: Principal, query: Query = Query(), *, max_results: int | None = None, offset: int = 0
    ) -> Page[RegisteredModel]:
        """The organisation's models matching ``query``: ``name`` and ``tags.<key>`` comparisons; ordered by name,
        timestamp, last_updated_timestamp or creation_timestamp (then by name)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = page_size(max_results, default=DEFAULT_MODELS_PAGE, limit=MAX_MODELS_PAGE)
        where = [RegisteredModelRow.org_id == principal.org_id]
        for c in comparisons(query, "registered model searches"):
            if c.name == "name":
                where.append(checked_compare(RegisteredModelRow.name, c, self._dialect))
            elif c.kind == "tags":
                where.append(
                    tag_condition(
                        RegisteredModelTagRow, RegisteredModelTagRow.model_pk, RegisteredModelRow.pk, c, self._dialect
                    )
                )
            else:
                raise InvalidInput(
                    f"Invalid filter attribute {c.name!r} for registered models: use name or tags.<key>."
                )
        order = order_clauses(
            query.order,
            {
                "name": RegisteredModelRow.name,
                "timestamp": RegisteredModelRow.updated_at,
                "last_updated_timestamp": RegisteredModelRow.updated_at,
                "creation_timestamp": RegisteredModelRow.created_at,
            },
        )
        # Core rows: no ORM objects to build for a page of up to 1000 models
        q = (
            select(*RegisteredModelRow.__table__.c)
            .where(*where)
            .order_by(*order, RegisteredModelRow.name.asc(), RegisteredModelRow.pk)
            .offset(offset)
            .limit(size + 1)
        )
        with self.db.uow(readonly=True) as s:
            rows = s.execute(q).all()
            more = len(rows) > size
            return Page(tuple(self._models(s, rows[:size])), offset + size if more else None)

    def latest_versions(
        self, principal: Principal, name: str, stages: Sequence[str | None] | None = None
    ) -> list[ModelVersion]:
        """The newest version of the model in each of ``stages`` (each one of the model's stages, any case; None
        names none, and is refused with the stages there are), or in every stage when none are given."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        with self.db.uow(readonly=True) as s:
            row = self.model_row(s, principal, name)
            known = model_stages(s, row)
            wanted = [canonical_stage(known, x) for x in stages] if stages else list(known)
            latest = self._latest(s, [row.pk]).get(row.pk, [])
            return [v for v in latest if v.current_stage in wanted]

    def list_models(
        self,
        principal: Principal,
        *,
        project_id: str | None = None,
        name_contains: str | None = None,
        discoverable: bool | None = None,
        order: tuple[str, bool] | None = None,
        max_results: int | None = None,
        offset: int = 0,
        default_page: int = 25,
    ) -> Page[RegisteredModel]:
        """Domino's listing: optionally one project's models, names containing a pattern (any case), newest-first
        or by name; ``order`` is (``name``/``created``/``updated``, descending)."""
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
                default_page=default_page,
            )
            return Page(tuple(self._models(s, rows)), next_offset)

    def _listing(
        self,
        s: Session,
        principal: Principal,
        *,
        project_id: str | None,
        name_contains: str | None,
        discoverable: bool | None,
        order: tuple[str, bool] | None,
        max_results: int | None,
        offset: int,
        default_page: int = 25,
    ) -> tuple[list[RegisteredModelRow], int | None]:
        """The rows of one page of :meth:`list_models` and the offset of the next page (None on the last)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = page_size(max_results, default=default_page, limit=MAX_MODELS_PAGE)
        M = RegisteredModelRow
        where = [M.org_id == principal.org_id]
        if project_id is not None:
            project_row(s, principal, project_id)
            where.append(M.project_id == project_id)
        if name_contains:
            pattern = check_text(name_contains, "searchPattern", max_len=MAX_NAME)
            where.append(func.lower(M.name).contains(pattern.lower(), autoescape=True))
        if discoverable is not None:
            where.append(M.discoverable.is_(discoverable))
        key, desc = order or ("name", False)
        col = {"name": M.name, "created": M.created_at, "updated": M.updated_at}[key]
        q = select(M).where(*where).order_by(col.desc() if desc else col.asc(), M.pk).offset(offset).limit(size + 1)
        rows = list(s.scalars(q))
        return rows[:size], offset + size if len(rows) > size else None

    def list_versions(
        self, principal: Principal, name: str, *, offset: int = 0, limit: int = 20, newest_first: bool = True
    ) -> tuple[list[ModelVersion], int]:
        """One model's versions by number, offset-paged; also returns how many there are."""
        with self.db.uow(readonly=True) as s:
            _, versions, total = self._version_page(s, principal, name, offset, limit, newest_first)
            return versions, total

    def _version_page(
        self, s: Session, principal: Principal, name: str, offset: int, limit: int, newest_first: bool
    ) -> tuple[Any, list[ModelVersion], int]:
        """:meth:`list_versions` in a session, with the model's row (a read-only Core row)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        V = ModelVersionRow
        row = self.model_row(s, principal, name, core=True)
        total = s.scalar(select(func.count()).select_from(V).where(V.model_pk == row.pk))
        rows = s.scalars(
            select(V)
            .where(V.model_pk == row.pk)
            .order_by(V.version.desc() if newest_first else V.version.asc())
            .offset(offset)
            .limit(limit)
        ).all()
        return row, self._versions(s, [(row.name, v) for v in rows]), total

    def search_versions(
        self, principal: Principal, query: Query = Query(), *, max_results: int | None = None, offset: int = 0
    ) -> Page[ModelVersion]:
        """The organisation's versions matching ``query``: name, run_id (also IN / NOT IN), source_path,
        version_number, current_stage and ``tags.<key>`` comparisons; ordered by those attributes or timestamps
        (then by name, newest version first)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = page_size(max_results, default=DEFAULT_VERSIONS_PAGE, limit=MAX_VERSIONS_PAGE)
        M, V = RegisteredModelRow, ModelVersionRow
        where = [M.org_id == principal.org_id]
        d = self._dialect
        for c in comparisons(query, "model version searches"):
            key = c.name
            if key == "name":
                where.append(checked_compare(M.name, c, d))
            elif key == "run_id":
                where.append(checked_compare(V.run_id, c, d, kind="in"))
            elif key in ("source_path", "source"):
                where.append(checked_compare(V.source, c, d))
            elif key in ("version_number", "version"):
                where.append(checked_compare(V.version, c, d, kind="int"))
            elif key in ("current_stage", "stage"):
                where.append(checked_compare(V.current_stage, c, d))
            elif c.kind == "tags":
                where.append(tag_condition(ModelVersionTagRow, ModelVersionTagRow.version_pk, V.pk, c, d))
            else:
                raise InvalidInput(
                    f"Invalid filter attribute {key!r} for model versions: use name, run_id, source_path, "
                    "version_number or tags.<key>."
                )
        order = order_clauses(
            query.order,
            {
                "name": M.name,
                "version_number": V.version,
                "version": V.version,
                "creation_timestamp": V.created_at,
                "timestamp": V.created_at,
                "last_updated_timestamp": V.updated_at,
                "run_id": V.run_id,
            },
        )
        q = (
            select(M.name, V)
            .join(M, M.pk == V.model_pk)
            .where(*where)
            .order_by(*order, M.name.asc(), V.version.desc())
            .offset(offset)
            .limit(size + 1)
        )
        with self.db.uow(readonly=True) as s:
            rows = [(r[0], r[1]) for r in s.execute(q)]
            more = len(rows) > size
            return Page(tuple(self._versions(s, rows[:size])), offset + size if more else None)
