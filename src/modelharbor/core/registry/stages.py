"""Where a version stands: its stage (MLflow's transition, which may archive the versions already in the target
stage; not while a review is open) and the aliases that name it."""

from __future__ import annotations

from sqlalchemy import delete, select

from modelharbor.core.clock import now
from modelharbor.core.projects import STAGE_ARCHIVED, canonical_stage, model_stages
from modelharbor.core.registry.reviews import require_no_open_review
from modelharbor.core.registry.validation import (
    validate_alias,
    validate_alias_reserved,
    validate_archive,
    validate_version,
)
from modelharbor.db.tables_registry import ModelVersionRow, RegisteredModelAliasRow
from modelharbor.domain.entities import ModelVersion
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require


class Stages:
    """Stage transitions and aliases."""

    def transition_stage(
        self,
        principal: Principal,
        name: str,
        version: int,
        stage: str | None,
        *,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version into ``stage`` (one of the model's stages, any case; None names none, and is refused with
        the stages there are)."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        validate_archive(stage, archive_existing_versions)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            stage = canonical_stage(model_stages(s, row), stage)
            if archive_existing_versions and STAGE_ARCHIVED not in model_stages(s, row):
                raise InvalidInput("This model's project has no 'Archived' stage to archive existing versions into.")
            if stage != v.current_stage:
                require_no_open_review(s, v)
            t = now()
            if archive_existing_versions:
                for other in s.scalars(
                    select(ModelVersionRow).where(
                        ModelVersionRow.model_pk == row.pk,
                        ModelVersionRow.version != number,
                        ModelVersionRow.current_stage == stage,
                    )
                ):
                    require_no_open_review(s, other)
                    other.current_stage = STAGE_ARCHIVED
                    other.updated_at = t
            v.current_stage = stage
            v.updated_at = t
            row.updated_at = t
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def set_alias(self, principal: Principal, name: str, alias: str, version: int) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        alias = validate_alias(alias)
        validate_alias_reserved(alias)
        number = validate_version(version)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            v = self.version_row(s, row, number)
            existing = s.get(RegisteredModelAliasRow, (row.pk, alias))
            if existing is None:
                s.add(RegisteredModelAliasRow(model_pk=row.pk, alias=alias, version_pk=v.pk))
            else:
                existing.version_pk = v.pk
            row.updated_at = now()
            s.flush()

    def delete_alias(self, principal: Principal, name: str, alias: str) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        alias = validate_alias(alias)
        with self.db.uow() as s:
            row = self.model_row(s, principal, name, lock=True)
            s.execute(
                delete(RegisteredModelAliasRow).where(
                    RegisteredModelAliasRow.model_pk == row.pk, RegisteredModelAliasRow.alias == alias
                )
            )

    def get_version_by_alias(self, principal: Principal, name: str, alias: str) -> ModelVersion:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        alias = validate_alias(alias)
        with self.db.uow(readonly=True) as s:
            row = self.model_row(s, principal, name)
            a = s.get(RegisteredModelAliasRow, (row.pk, alias))
            if a is None:
                raise NotFound(f"Registered model alias {alias} not found.")
            return self._versions(s, [(row.name, s.get(ModelVersionRow, a.version_pk))])[0]
