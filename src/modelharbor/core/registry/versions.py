"""Model versions: create (numbered 1, 2, 3… per model, never reused), read, change (MLflow's description, or
Domino's description, stage and tags in one go), delete, and their tags."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from modelharbor.core.clock import aware, now
from modelharbor.core.projects import STAGE_NONE, canonical_stage, model_stages
from modelharbor.core.registry import statements as stmts
from modelharbor.core.registry.reviews import delete_reviews, require_no_open_review
from modelharbor.core.registry.validation import (
    MAX_TAG_KEY,
    STATUS_READY,
    UNSET,
    Unset,
    check_text,
    validate_tag,
    validate_tags,
    validate_version,
)
from modelharbor.db.tables_registry import ModelReviewRow, ModelVersionTagRow, RegisteredModelAliasRow
from modelharbor.domain.entities import ModelVersion
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require


class Versions:
    """Model versions and their tags."""

    def create_version(
        self,
        principal: Principal,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        source = check_text(source, "source", optional=False)
        run_id = check_text(run_id, "run_id", max_len=64) or None
        run_link = check_text(run_link, "run_link") or None
        model_id = check_text(model_id, "model_id", max_len=64) or None
        description = check_text(description, "description") or ""
        tags = validate_tags(tags)
        if model_id and not run_id and self._logged_model_run is not None:
            try:
                run_id = self._logged_model_run(principal, model_id)
            except NotFound:
                raise InvalidInput(
                    f"logged model {model_id!r} does not exist", code="RESOURCE_DOES_NOT_EXIST"
                ) from None
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True, core=True)
            number = row.next_version
            t = now()
            c = s.connection()  # Core statements, prebuilt: a create is a hot path (bench/registry.py)
            try:
                version_pk = c.execute(
                    stmts.INSERT_VERSION,
                    {
                        "model_pk": row.pk,
                        "version": number,
                        "source": source,
                        "run_id": run_id,
                        "run_link": run_link,
                        "model_id": model_id,
                        "status": STATUS_READY,
                        "description": description,
                        "current_stage": STAGE_NONE,
                        "creator_id": principal.user_id,
                        "created_at": t,
                        "updated_at": t,
                    },
                ).inserted_primary_key[0]
            except IntegrityError:  # a concurrent writer took the number (PostgreSQL without the lock)
                raise Conflict(f"Model Version (name={row.name}, version={number}) already exists; retry.") from None
            c.execute(stmts.NEXT_VERSION, {"model_pk": row.pk, "next_number": number + 1, "at": t})
            if tags:
                c.execute(
                    stmts.INSERT_VERSION_TAG,
                    [{"version_pk": version_pk, "key": k, "value": v} for k, v in tags.items()],
                )
            # a new version has these tags and no aliases yet
            return ModelVersion(
                name=row.name,
                version=number,
                creation_time=aware(t),
                last_updated_time=aware(t),
                current_stage=STAGE_NONE,
                description=description,
                source=source,
                run_id=run_id,
                run_link=run_link,
                model_id=model_id,
                status=STATUS_READY,
                creator_id=principal.user_id,
                tags=dict(sorted(tags.items())),
            )

    def get_version(self, principal: Principal, name: str, version: int) -> ModelVersion:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow(readonly=True) as s:
            row = self.model_row(s, principal, name)
            return self._versions(s, [(row.name, self.version_row(s, row, number))])[0]

    def download_uri(self, principal: Principal, name: str, version: int) -> str:
        return self.get_version(principal, name, version).source

    def update_version(self, principal: Principal, name: str, version: int, *, description: str | None) -> ModelVersion:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        description = check_text(description, "description") or ""
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            v.description = description
            v.updated_at = now()
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def update_version_fields(
        self,
        principal: Principal,
        name: str,
        version: int,
        *,
        description: str | None | Unset = UNSET,
        stage: str | Unset = UNSET,
        tags: Mapping[str, str] | Unset = UNSET,
    ) -> ModelVersion:
        """Domino's version update, in one transaction: description, stage (one of the project's stages; not while
        a review is open) and tags (merged: each given key is set)."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        if description is UNSET and stage is UNSET and tags is UNSET:
            raise InvalidInput("Give at least one of modelVersionDescription, stage or tags.")
        if description is not UNSET:
            description = check_text(description, "modelVersionDescription") or ""
        new_tags = validate_tags(tags) if not isinstance(tags, Unset) else {}
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            if stage is not UNSET:
                stage = canonical_stage(model_stages(s, row), stage)
                if stage != v.current_stage:
                    require_no_open_review(s, v)
                    v.current_stage = stage
            if description is not UNSET:
                v.description = description
            for k, val in new_tags.items():
                tag = s.get(ModelVersionTagRow, (v.pk, k))
                if tag is None:
                    s.add(ModelVersionTagRow(version_pk=v.pk, key=k, value=val))
                else:
                    tag.value = val
            v.updated_at = row.updated_at = now()
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def delete_version(self, principal: Principal, name: str, version: int) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            s.execute(delete(RegisteredModelAliasRow).where(RegisteredModelAliasRow.version_pk == v.pk))
            s.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk == v.pk))
            delete_reviews(s, select(ModelReviewRow.id).where(ModelReviewRow.version_pk == v.pk))
            s.delete(v)
            row.updated_at = now()
            s.flush()

    def set_version_tag(self, principal: Principal, name: str, version: int, key: str, value: str | None) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        key, value = validate_tag(key, value)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            tag = s.get(ModelVersionTagRow, (v.pk, key))
            if tag is None:
                s.add(ModelVersionTagRow(version_pk=v.pk, key=key, value=value))
            else:
                tag.value = value
            v.updated_at = now()
            s.flush()

    def delete_version_tag(self, principal: Principal, name: str, version: int, key: str) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        key = check_text(key, "key", max_len=MAX_TAG_KEY, optional=False)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            s.execute(
                delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk == v.pk, ModelVersionTagRow.key == key)
            )
