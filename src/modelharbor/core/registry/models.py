"""Registered models: create, read, rename, change, delete (with their versions, tags, aliases and reviews), and
their tags."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from modelharbor.core.clock import aware, now
from modelharbor.core.projects import project_row, require_project_write
from modelharbor.core.registry import statements as stmts
from modelharbor.core.registry.reviews import delete_reviews
from modelharbor.core.registry.validation import (
    MAX_TAG_KEY,
    UNSET,
    Unset,
    check_text,
    validate_name,
    validate_tag,
    validate_tags,
)
from modelharbor.db.tables_registry import (
    ModelReviewRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelAliasRow,
    RegisteredModelTagRow,
)
from modelharbor.domain.entities import RegisteredModel
from modelharbor.domain.errors import Conflict
from modelharbor.domain.principal import Action, Principal, require


class Models:
    """Registered models and their tags."""

    def create_model(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        project_id: str | None = None,
        discoverable: bool = False,
    ) -> RegisteredModel:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        name = validate_name(name)
        description = check_text(description, "description") or ""
        tags = validate_tags(tags)
        with self.db.uow() as s:
            if project_id is not None:
                require_project_write(s, principal, project_row(s, principal, project_id))
            if self._find_model(s, principal, name) is not None:
                raise Conflict(f"Registered Model (name={name}) already exists.")
            t = now()
            c = s.connection()  # Core inserts of prebuilt statements: a create is a hot path (bench/registry.py)
            try:
                pk = c.execute(
                    stmts.INSERT_MODEL,
                    {
                        "org_id": principal.org_id,
                        "name": name,
                        "description": description,
                        "project_id": project_id,
                        "discoverable": bool(discoverable),
                        "creator_id": principal.user_id,
                        "next_version": 1,
                        "created_at": t,
                        "updated_at": t,
                    },
                ).inserted_primary_key[0]
            except IntegrityError:
                raise Conflict(f"Registered Model (name={name}) already exists.") from None
            if tags:
                c.execute(stmts.INSERT_MODEL_TAG, [{"model_pk": pk, "key": k, "value": v} for k, v in tags.items()])
            # a new model has these tags and nothing else: no aliases, no versions
            return RegisteredModel(
                name=name,
                org_id=principal.org_id,
                description=description,
                creation_time=aware(t),
                last_updated_time=aware(t),
                project_id=project_id,
                discoverable=bool(discoverable),
                creator_id=principal.user_id,
                tags=dict(sorted(tags.items())),
            )

    def get_model(self, principal: Principal, name: str) -> RegisteredModel:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        with self.db.uow(readonly=True) as s:
            return self._models(s, [self.model_row(s, principal, name, core=True)])[0]

    def rename_model(self, principal: Principal, name: str, new_name: str) -> RegisteredModel:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        new_name = validate_name(new_name, "new_name")
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            if new_name != row.name:
                if self._find_model(s, principal, new_name) is not None:
                    raise Conflict(f"Registered Model (name={new_name}) already exists.")
                row.name = new_name
                row.updated_at = now()
                try:
                    s.flush()
                except IntegrityError:
                    raise Conflict(f"Registered Model (name={new_name}) already exists.") from None
            return self._models(s, [row])[0]

    def update_model(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None | Unset = UNSET,
        discoverable: bool | Unset = UNSET,
    ) -> RegisteredModel:
        """Change the description (None: empty) and/or whether the model is discoverable; UNSET leaves it."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        if description is not UNSET:
            description = check_text(description, "description") or ""
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            if description is not UNSET:
                row.description = description
            if discoverable is not UNSET:
                row.discoverable = discoverable
            row.updated_at = now()
            s.flush()
            return self._models(s, [row])[0]

    def delete_model(self, principal: Principal, name: str) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            vpks = select(ModelVersionRow.pk).where(ModelVersionRow.model_pk == row.pk)
            # explicit deletes: SQLite only cascades when foreign keys are on, and order matters for PostgreSQL
            s.execute(delete(RegisteredModelAliasRow).where(RegisteredModelAliasRow.model_pk == row.pk))
            s.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk.in_(vpks)))
            delete_reviews(s, select(ModelReviewRow.id).where(ModelReviewRow.version_pk.in_(vpks)))
            s.execute(delete(ModelVersionRow).where(ModelVersionRow.model_pk == row.pk))
            s.execute(delete(RegisteredModelTagRow).where(RegisteredModelTagRow.model_pk == row.pk))
            s.delete(row)
            s.flush()

    def set_model_tag(self, principal: Principal, name: str, key: str, value: str | None) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        key, value = validate_tag(key, value)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            tag = s.get(RegisteredModelTagRow, (row.pk, key))
            if tag is None:
                s.add(RegisteredModelTagRow(model_pk=row.pk, key=key, value=value))
            else:
                tag.value = value
            row.updated_at = now()
            s.flush()

    def delete_model_tag(self, principal: Principal, name: str, key: str) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        key = check_text(key, "key", max_len=MAX_TAG_KEY, optional=False)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            s.execute(
                delete(RegisteredModelTagRow).where(
                    RegisteredModelTagRow.model_pk == row.pk, RegisteredModelTagRow.key == key
                )
            )
