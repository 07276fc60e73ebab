"""Lookups shared by the serving modules, and the route cache: a project (with permission), a deployment, a version
or a revision by name; the entities read from their rows; and the cached route to a version (ROUTE_TTL seconds)
so a request costs no database round trip. ``ServingLookup`` is the base of ServingService; its public lookups
(``project_row``, ``environment_row``, ``system_environments``, ``version_entity``) are what environment builds,
pipelines and transfer use besides the service's operations."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware
from modelharbor.core.projects import require_project_read, require_project_write
from modelharbor.core.serving.entities import Deployment, DeploymentVersion, Revision
from modelharbor.core.serving.request_history import lookup_key
from modelharbor.core.serving.validation import ROUTE_TTL, fields_of, truncate
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import DeploymentRow, DeploymentVersionRow, EnvironmentRow, RevisionRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

R = TypeVar("R")


def named_row(
    s: Session, row_type: type[R], *where: ColumnElement[bool], key: str, missing: str, limit: int = 256
) -> R:
    """The one ``row_type`` row ``where`` names — ``key`` (the name or version from outside) checked first, so one
    no row could have matches none without a query — else NotFound(``missing``)."""
    row = s.scalar(select(row_type).where(*where)) if lookup_key(key, limit) else None
    if row is None:
        raise NotFound(missing)
    return row


@dataclass(frozen=True)
class Route:
    """What a request needs, cached for ROUTE_TTL seconds."""

    expires: float
    org_id: str
    project: str
    deployment: Deployment
    version: DeploymentVersion
    revision_id: str | None
    environment: tuple[str | None, str | None]  # what the revision's last build ran in: (base, environment build)
    env_vars: dict[str, str]


def held_if_present(s: Session, table: type, row_id: str) -> bool:
    """Whether the row still exists, held so (share lock) until the transaction ends. Routes and versions are read
    before a request runs and may be deleted meanwhile (or by another server process): what a request stores
    under a version is stored only under this check, so a deletion cannot pass between it and the commit (on
    SQLite the write transaction keeps other writers out)."""
    return s.scalar(select(table.id).where(table.id == row_id).with_for_update(read=True)) is not None


class ServingLookup:
    """Project, deployment, version and revision lookups; the route cache."""

    # --- projects and permission ----------------------------------------------------------------
    @staticmethod
    def project_row(s: Session, principal: Principal, project: str, *, write: bool = False) -> RegistryProjectRow:
        """The principal's project by name, read access checked (``write``: write access, the row locked); else
        NotFound."""
        require(principal, Action.SERVING_WRITE if write else Action.SERVING_READ, principal.org_id, what="project")
        row = None
        if lookup_key(project, 256):
            q = select(RegistryProjectRow).where(
                RegistryProjectRow.org_id == principal.org_id, RegistryProjectRow.name == project
            )
            row = s.scalar(q.with_for_update() if write else q)
        if row is None:
            raise NotFound(f"Project {project!r} not found")
        require_project_read(s, principal, row)  # its visibility (core/projects.py)
        if write:
            require_project_write(s, principal, row)
        return row

    def _changed(self) -> None:
        with self._lock:
            self._routes.clear()

    # --- environments ---------------------------------------------------------------------------
    def system_environments(self) -> list[str]:
        """The names of the built-in base environments (``python3-11`` …), sorted: the last is the newest."""
        return sorted(self.builder.base_environments())

    @staticmethod
    def environment_row(s: Session, p: RegistryProjectRow, name: str) -> EnvironmentRow:
        """The project's custom environment by name; else NotFound."""
        return named_row(
            s,
            EnvironmentRow,
            EnvironmentRow.project_id == p.id,
            EnvironmentRow.name == name,
            key=name,
            missing=f"Environment {name!r} not found in project {p.name!r}",
        )

    @staticmethod
    def _deployment_row(s: Session, p: RegistryProjectRow, name: str) -> DeploymentRow:
        return named_row(
            s,
            DeploymentRow,
            DeploymentRow.project_id == p.id,
            DeploymentRow.name == name,
            key=name,
            missing=f"Deployment {name!r} not found in project {p.name!r}",
        )

    @staticmethod
    def _deployment_entity(s: Session, project: str, r: DeploymentRow) -> Deployment:
        default = s.get(DeploymentVersionRow, r.default_version_id) if r.default_version_id else None
        return Deployment(
            r.id,
            project,
            r.name,
            r.description or "",
            r.input_type,
            r.output_type,
            fields_of(r.input_fields),
            fields_of(r.output_fields),
            dict(r.labels or {}),
            r.supports_request_format,
            default.version if default else None,
            aware(r.created_at),
            aware(r.updated_at),
        )

    @staticmethod
    def _version_row(s: Session, d: DeploymentRow, version: str) -> DeploymentVersionRow:
        return named_row(
            s,
            DeploymentVersionRow,
            DeploymentVersionRow.deployment_id == d.id,
            DeploymentVersionRow.version == version,
            key=version,
            missing=f"Version {version!r} of deployment {d.name!r} not found",
        )

    @staticmethod
    def version_entity(s: Session, project: str, d: DeploymentRow, r: DeploymentVersionRow) -> DeploymentVersion:
        """The version entity of a version row (with its status, from its active and latest revisions)."""
        active = s.get(RevisionRow, r.active_revision_id) if r.active_revision_id else None
        latest = s.get(RevisionRow, r.latest_revision_id) if r.latest_revision_id else None
        if latest is not None and latest.status in ("queued", "building"):
            status = "processing"
        elif active is not None:
            status = "available"
        else:
            status = "unavailable"
        shown = active or latest
        return DeploymentVersion(
            id=r.id,
            project=project,
            deployment=d.name,
            version=r.version,
            description=r.description or "",
            labels=dict(r.labels or {}),
            environment=r.environment,
            environment_tag=r.environment_tag,
            status=status,
            is_default=d.default_version_id == r.id,
            active_revision=r.active_revision_id,
            latest_revision=r.latest_revision_id,
            minimum_instances=r.minimum_instances,
            maximum_instances=r.maximum_instances,
            maximum_idle_time=r.maximum_idle_time,
            request_retention_mode=r.request_retention_mode,
            request_retention_time=r.request_retention_time,
            maximum_queue_size=r.maximum_queue_size,
            instance_type_group_name=r.instance_type_group_name,
            settings=dict(r.settings or {}),
            has_request_method=shown.has_request_method if shown else None,
            has_requests_method=shown.has_requests_method if shown else None,
            last_file_upload=aware(latest.created_at) if latest else None,
            created_at=aware(r.created_at),
            updated_at=aware(r.updated_at),
        )

    @staticmethod
    def _revision_row(s: Session, v: DeploymentVersionRow, revision_id: str) -> RevisionRow:
        row = s.get(RevisionRow, revision_id) if lookup_key(revision_id, 36) else None
        if row is None or row.version_id != v.id:
            raise NotFound(f"Revision {revision_id!r} not found")
        return row

    @staticmethod
    def _revision_entity(v: DeploymentVersionRow, r: RevisionRow) -> Revision:
        return Revision(
            r.id,
            v.version,
            r.status,
            truncate(r.error_message),
            r.created_by,
            aware(r.created_at),
            r.has_request_method,
            r.has_requests_method,
            r.file_id,
        )

    # --- requests -------------------------------------------------------------------------------
    def _route(self, principal: Principal, project: str, deployment: str, version: str | None) -> Route:
        key = (principal.org_id, project, deployment, version)
        route = self._routes.get(key)
        if route is not None and route.expires > time.monotonic():
            return route
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            if version is None:
                if d.default_version_id is None:
                    raise InvalidInput(f"Deployment {d.name!r} has no versions yet: create one and upload a package.")
                v = s.get(DeploymentVersionRow, d.default_version_id)
            else:
                v = self._version_row(s, d, version)
            route = Route(
                expires=time.monotonic() + ROUTE_TTL,
                org_id=p.org_id,
                project=p.name,
                deployment=self._deployment_entity(s, p.name, d),
                version=self.version_entity(s, p.name, d, v),
                revision_id=v.active_revision_id,
                environment=self._built_in(s, v),
                env_vars=self._effective_env(s, p.id, d.id, v.id),
            )
        with self._lock:
            self._routes[key] = route
        return route

    @staticmethod
    def _built_in(s: Session, v: DeploymentVersionRow) -> tuple[str | None, str | None]:
        """(base, environment build) the version's serving revision was last built in."""
        rev = s.get(RevisionRow, v.active_revision_id) if v.active_revision_id else None
        return (rev.environment_base, rev.environment_build_id) if rev is not None else (None, None)
