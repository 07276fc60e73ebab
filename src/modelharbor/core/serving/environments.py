"""Environments of a project: the built-in base environments and custom ones (their tags and builds are
core/serving/environment_builds.py)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving.entities import EnvironmentInfo
from modelharbor.core.serving.validation import valid_environment_name, valid_labels, valid_text
from modelharbor.db.tables_serving import DeploymentRow, DeploymentVersionRow, EnvironmentRow
from modelharbor.domain.errors import Conflict, InvalidInput
from modelharbor.domain.principal import Principal


class Environments:
    """Listing, reading, creating, changing and deleting environments (mixed into ServingService)."""

    def list_environments(
        self, principal: Principal, project: str, *, system: bool | None = None, labels: dict[str, str] | None = None
    ):
        """Base (``system``) and custom environments, those carrying every one of ``labels`` (key: value)."""
        wanted = labels or {}
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            custom = list(s.scalars(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id)))
            out = []
            if system in (None, True):
                out += [
                    EnvironmentInfo(name, p.name, True, f"Python {name[6:].replace('-', '.')}")
                    for name in self.system_environments()
                ]
            if system in (None, False):
                out += [self._env_entity(s, p.name, r) for r in sorted(custom, key=lambda r: r.name)]
            return [e for e in out if all(e.labels.get(k) == v for k, v in wanted.items())]

    def get_environment(self, principal: Principal, project: str, name: str) -> EnvironmentInfo:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            if name in self.system_environments():
                return EnvironmentInfo(name, p.name, True, f"Python {name[6:].replace('-', '.')}")
            return self._env_entity(s, p.name, self.environment_row(s, p, name))

    def create_environment(
        self,
        principal: Principal,
        project: str,
        *,
        name: str,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        base_environment: str | None = None,
    ) -> EnvironmentInfo:
        """A custom environment on ``base_environment`` (None: the newest base environment)."""
        valid_environment_name(name)
        if name in self.system_environments():
            raise Conflict(f"{name!r} is a base environment; choose another name.")
        base = base_environment or self.system_environments()[-1]
        if base not in self.system_environments():
            raise InvalidInput(
                f"Unknown base environment {base!r}: use one of {', '.join(self.system_environments())}."
            )
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            if s.scalar(
                select(EnvironmentRow.id).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name)
            ):
                raise Conflict(f"Environment {name!r} already exists in project {p.name!r}.")
            t = now()
            row = EnvironmentRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=valid_text(description, "description"),
                labels=valid_labels(labels),
                base_environment=base,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.environment_tags.create_default_in(s, row)
            return self._env_entity(s, p.name, row)

    def update_environment(
        self,
        principal: Principal,
        project: str,
        name: str,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> EnvironmentInfo:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            if name in self.system_environments():
                raise InvalidInput(f"{name!r} is a base environment: it cannot be changed.")
            row = self.environment_row(s, p, name)
            if description is not None:
                row.description = valid_text(description, "description")
            if labels is not None:
                row.labels = valid_labels(labels)
            row.updated_at = now()
            s.flush()
            return self._env_entity(s, p.name, row)

    def delete_environment(self, principal: Principal, project: str, name: str) -> None:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            if name in self.system_environments():
                raise InvalidInput(f"{name!r} is a base environment: it cannot be deleted.")
            row = self.environment_row(s, p, name)
            users = [
                f"{d}/{v}"
                for d, v in s.execute(
                    select(DeploymentRow.name, DeploymentVersionRow.version)
                    .select_from(DeploymentVersionRow)
                    .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
                    .where(DeploymentRow.project_id == p.id, DeploymentVersionRow.environment == row.name)
                )
            ]
            if users:
                raise InvalidInput(f"Environment {row.name!r} is used by {', '.join(users)}; change those first.")
            stale = self.environment_tags.drop_in(s, [row.id])
            s.delete(row)
            s.flush()
        self.drop_blobs(stale)

    def _env_entity(self, s: Session, project: str, r: EnvironmentRow) -> EnvironmentInfo:
        return EnvironmentInfo(
            r.name,
            project,
            False,
            r.description or "",
            dict(r.labels or {}),
            r.base_environment,
            r.id,
            aware(r.created_at),
            aware(r.updated_at),
            **self.environment_tags.revision_summary(s, r),
        )
