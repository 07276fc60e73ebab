"""Lookups and reads shared by the registry modules: a model or version row by name (with write access checked
for a write), and the entities read from rows with their tags, aliases and latest versions in few round trips.
``RegistryLookup`` is the base of RegistryService; its public lookups (``model_row``, ``version_row``) are what
reviews use besides the service's operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware
from modelharbor.core.projects import require_model_write
from modelharbor.core.registry import statements as stmts
from modelharbor.core.registry.validation import MAX_IN, check_text
from modelharbor.db.engine import Database
from modelharbor.db.tables_registry import ModelVersionRow, RegisteredModelRow
from modelharbor.domain.entities import ModelVersion, RegisteredModel
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Principal


class RegistryLookup:
    """Model and version lookups; entities from rows."""

    db: Database

    @property
    def _dialect(self) -> str:
        return self.db.engine.dialect.name

    def _find_model(self, s: Session, principal: Principal, name: str) -> int | None:
        """The pk of the organisation's model called ``name``, or None."""
        s.flush()  # the statement below runs on the connection, past the session's autoflush
        return s.connection().execute(stmts.Q_MODEL_PK, {"org": principal.org_id, "name": name}).scalar()

    def model_row(
        self, s: Session, principal: Principal, name: str, *, lock: bool = False, core: bool = False
    ) -> RegisteredModelRow:
        """The model called ``name`` (locked for a write, which also checks write access). ``core``: a read-only
        Core row with the same attributes instead of an ORM row, which is cheaper; for callers that change nothing
        through it."""
        check_text(name, "name", optional=False)
        if not name.strip():
            raise InvalidInput("Missing value for required parameter 'name'.")
        params = {"org": principal.org_id, "name": name}
        if core:
            s.flush()
            row = s.connection().execute(stmts.Q_MODEL_LOCKED if lock else stmts.Q_MODEL, params).first()
        else:
            row = s.scalar(stmts.Q_MODEL_ROW_LOCKED if lock else stmts.Q_MODEL_ROW, params)
        if row is None:
            raise NotFound(f"Registered Model with name={name} not found")
        if lock:  # a write: a model in a project also takes write access to the project
            require_model_write(s, principal, row)
        return row

    def version_row(self, s: Session, model: RegisteredModelRow, number: int) -> ModelVersionRow:
        v = s.scalar(
            select(ModelVersionRow).where(ModelVersionRow.model_pk == model.pk, ModelVersionRow.version == number)
        )
        if v is None:
            raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
        return v

    def _latest(
        self, s: Session, model_pks: list[int], *, aliases: dict[int, list[str]] | None = None
    ) -> dict[int, list[ModelVersion]]:
        """The newest version in each stage of each model. ``aliases``: each version pk's aliases, when the caller
        has already read them (saves a query)."""
        if not model_pks:
            return {}
        s.flush()  # the statements run on the connection, past the session's autoflush
        rows: dict[int, Any] = {}  # version pk -> its row, in model and version order
        tags: dict[int, dict[str, str]] = {}
        for r in s.connection().execute(*stmts.by_pks(stmts.Q_LATEST, model_pks)):
            rows.setdefault(r.pk, r)
            if r.tag_key is not None:
                tags.setdefault(r.pk, {})[r.tag_key] = r.tag_value
        versions = [(r.name, r) for r in rows.values()]
        out: dict[int, list[ModelVersion]] = {}
        for (_, r), entity in zip(versions, self._versions(s, versions, tags=tags, aliases=aliases), strict=True):
            out.setdefault(r.model_pk, []).append(entity)
        return out

    def _versions(
        self,
        s: Session,
        rows: list[tuple[str, ModelVersionRow]],
        *,
        tags: dict[int, dict[str, str]] | None = None,
        aliases: dict[int, list[str]] | None = None,
    ) -> list[ModelVersion]:
        """Entities for (model name, version row) pairs (ORM or Core rows), with their tags and aliases, read here
        unless the caller has them (version pk -> tags; version pk -> aliases sorted by name)."""
        pks = [v.pk for _, v in rows]
        if pks and (tags is None or aliases is None):
            s.flush()
            c = s.connection()
            # a page may hold more versions than a statement may take parameters (SQLite: 32,766): in slices
            slices = [pks[i : i + MAX_IN] for i in range(0, len(pks), MAX_IN)]
            if tags is None:
                tags = {}
                for part in slices:
                    for version_pk, key, value in c.execute(stmts.Q_VERSION_TAGS, {"pks": part}):
                        tags.setdefault(version_pk, {})[key] = value
            if aliases is None:
                aliases = {}
                for part in slices:
                    for version_pk, alias in c.execute(stmts.Q_VERSION_ALIASES, {"pks": part}):
                        aliases.setdefault(version_pk, []).append(alias)
        tags = tags or {}
        aliases = aliases or {}
        return [
            ModelVersion(
                name=name,
                version=v.version,
                creation_time=aware(v.created_at),
                last_updated_time=aware(v.updated_at),
                current_stage=v.current_stage,
                description=v.description or "",
                source=v.source,
                run_id=v.run_id,
                run_link=v.run_link,
                model_id=v.model_id,
                status=v.status,
                creator_id=v.creator_id,
                tags=dict(sorted(tags.get(v.pk, {}).items())),
                aliases=tuple(aliases.get(v.pk, ())),
            )
            for name, v in rows
        ]

    def _models(self, s: Session, rows: list[RegisteredModelRow]) -> list[RegisteredModel]:
        """Entities for model rows (ORM or Core rows) with their tags, aliases and latest versions."""
        pks = [r.pk for r in rows]
        tags: dict[int, dict[str, str]] = {}
        aliases: dict[int, list[tuple[str, int]]] = {}
        version_aliases: dict[int, list[str]] = {}  # every alias of these models is on one of their versions
        if pks:
            s.flush()  # the statements run on the connection, past the session's autoflush
            for model_pk, key, value, version_pk, number in s.connection().execute(
                *stmts.by_pks(stmts.Q_MODEL_TAGS_AND_ALIASES, pks)
            ):
                if version_pk is None:
                    tags.setdefault(model_pk, {})[key] = value
                else:
                    aliases.setdefault(model_pk, []).append((key, number))
                    version_aliases.setdefault(version_pk, []).append(key)
            for found in (*aliases.values(), *version_aliases.values()):
                found.sort()
        latest = self._latest(s, pks, aliases=version_aliases)
        return [
            RegisteredModel(
                name=r.name,
                org_id=r.org_id,
                description=r.description or "",
                creation_time=aware(r.created_at),
                last_updated_time=aware(r.updated_at),
                project_id=r.project_id,
                discoverable=r.discoverable,
                creator_id=r.creator_id,
                tags=dict(sorted(tags.get(r.pk, {}).items())),
                aliases=tuple(aliases.get(r.pk, ())),
                latest_versions=tuple(latest.get(r.pk, ())),
            )
            for r in rows
        ]
