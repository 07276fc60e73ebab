"""Deployments and their versions: create, read, change, delete (with what goes with them: revisions, variables,
kept requests, blobs, running instances)."""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import run_sync
from modelharbor.core.clock import new_uuid, now
from modelharbor.core.hardware_tiers import HardwareTier
from modelharbor.core.serving.entities import Deployment, DeploymentVersion
from modelharbor.core.serving.request_history import bounded_int
from modelharbor.core.serving.validation import (
    VERSION_INTS,
    VERSION_SETTINGS,
    check_instances,
    fields_json,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
    valid_retention_mode,
    valid_text,
)
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRequestRow,
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentRow,
    EnvVarRow,
    RevisionRow,
)
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound
from modelharbor.domain.inputs import DeploymentIn, DeploymentPatch, VersionIn
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.serving")


class Deployments:
    """Deployments and versions (mixed into ServingService)."""

    # --- deployments ----------------------------------------------------------------------------
    def create_deployment(self, principal: Principal, project: str, spec: DeploymentIn) -> Deployment:
        name = valid_name(spec.name, "deployment")
        input_type = valid_io_type(spec.input_type, "input_type")
        output_type = valid_io_type(spec.output_type, "output_type")
        input_fields = valid_fields(fields_json(spec.input_fields), "input_fields", input_type)
        output_fields = valid_fields(fields_json(spec.output_fields), "output_fields", output_type)
        supports = spec.supports_request_format
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            if s.scalar(select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name)):
                raise Conflict(f"Deployment {name!r} already exists in project {p.name!r}.")
            t = now()
            row = DeploymentRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=valid_text(spec.description, "description"),
                input_type=input_type,
                output_type=output_type,
                input_fields=input_fields,
                output_fields=output_fields,
                labels=valid_labels(spec.labels),
                supports_request_format=supports,
                default_version_id=None,
                creator_id=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._deployment_entity(s, p.name, row)

    def list_deployments(self, principal: Principal, project: str) -> list[Deployment]:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            rows = s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id).order_by(DeploymentRow.name))
            return [self._deployment_entity(s, p.name, r) for r in rows]

    def get_deployment(self, principal: Principal, project: str, name: str) -> Deployment:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            return self._deployment_entity(s, p.name, self._deployment_row(s, p, name))

    def update_deployment(self, principal: Principal, project: str, name: str, change: DeploymentPatch) -> Deployment:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            row = self._deployment_row(s, p, name)
            if change.name is not None and change.name != row.name:
                new = valid_name(change.name, "deployment")
                if s.scalar(
                    select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == new)
                ):
                    raise Conflict(f"Deployment {new!r} already exists in project {p.name!r}.")
                row.name = new
            if change.description is not None:
                row.description = valid_text(change.description, "description")
            if change.labels is not None:
                row.labels = valid_labels(change.labels)
            if change.input_fields is not None:
                row.input_fields = valid_fields(fields_json(change.input_fields), "input_fields", row.input_type)
            if change.output_fields is not None:
                row.output_fields = valid_fields(fields_json(change.output_fields), "output_fields", row.output_type)
            if change.default_version is not None:
                row.default_version_id = self._version_row(s, row, change.default_version).id
            row.updated_at = now()
            s.flush()
            self._changed()
            return self._deployment_entity(s, p.name, row)

    def delete_deployment(self, principal: Principal, project: str, name: str) -> None:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            row = self._deployment_row(s, p, name)
            for hook in self.on_delete_deployment:
                hook(s, row)
            version_ids = list(
                s.scalars(select(DeploymentVersionRow.id).where(DeploymentVersionRow.deployment_id == row.id))
            )
            stale = self._delete_versions(s, version_ids)
            s.execute(delete(EnvVarRow).where(EnvVarRow.deployment_id == row.id))
            s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.deployment_id == row.id))
            s.delete(row)
            s.flush()
        self.drop_blobs(stale)
        self._undeploy(version_ids)

    def delete_project_objects(self, s: Session, project_id: str) -> list[str]:
        """A project is being deleted: its deployments, environments (with their tags and packages) and variables
        go with it (returns the blob keys to delete once the transaction committed)."""
        deps = list(s.scalars(select(DeploymentRow.id).where(DeploymentRow.project_id == project_id)))
        version_ids = list(
            s.scalars(select(DeploymentVersionRow.id).where(DeploymentVersionRow.deployment_id.in_(deps)))
        )
        stale = self._delete_versions(s, version_ids)
        s.execute(delete(EnvVarRow).where(EnvVarRow.project_id == project_id))
        s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.deployment_id.in_(deps)))
        s.execute(delete(DeploymentRow).where(DeploymentRow.project_id == project_id))
        env_ids = list(s.scalars(select(EnvironmentRow.id).where(EnvironmentRow.project_id == project_id)))
        stale += self.environment_tags.drop_in(s, env_ids)
        s.execute(delete(EnvironmentRow).where(EnvironmentRow.project_id == project_id))
        self._undeploy(version_ids)
        return stale

    def _delete_versions(self, s: Session, version_ids: list[str]) -> list[str]:
        """Delete versions with their revisions, variables and requests; the blob keys to delete after commit."""
        if not version_ids:
            return []
        file_ids = [
            f for f in s.scalars(select(RevisionRow.file_id).where(RevisionRow.version_id.in_(version_ids))) if f
        ]
        s.execute(delete(EnvVarRow).where(EnvVarRow.version_id.in_(version_ids)))
        s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.version_id.in_(version_ids)))
        s.execute(delete(RevisionRow).where(RevisionRow.version_id.in_(version_ids)))
        s.execute(delete(DeploymentVersionRow).where(DeploymentVersionRow.id.in_(version_ids)))
        s.flush()
        stale: list[str] = []
        for fid in set(file_ids):
            if s.scalar(select(func.count()).select_from(RevisionRow).where(RevisionRow.file_id == fid)) == 0:
                stale += self.files.drop_in(s, fid)
        return stale

    def drop_blobs(self, keys: list[str]) -> None:
        """Delete blobs no file needs any more (called from worker threads, after the commit)."""
        if keys:
            run_sync(self.files.store.delete(keys))

    def _undeploy(self, version_ids: list[str]) -> None:
        self._changed()
        for vid in version_ids:
            with self._lock:
                self._deployed.pop(vid, None)
                self._deployed_env.pop(vid, None)
            if self._executor is None:
                continue
            try:
                self._executor.undeploy(vid)
            except Exception:  # noqa: BLE001 - a stopped instance is not worth failing a delete for
                log.exception("could not stop instances of version %s", vid)

    # --- versions -------------------------------------------------------------------------------
    def create_version(self, principal: Principal, project: str, deployment: str, spec: VersionIn) -> DeploymentVersion:
        version = valid_name(spec.version, "version")
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            if s.scalar(
                select(DeploymentVersionRow.id).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == version
                )
            ):
                raise Conflict(f"Version {version!r} of deployment {d.name!r} already exists.")
            t = now()
            row = DeploymentVersionRow(
                id=new_uuid(),
                deployment_id=d.id,
                version=version,
                creator_id=principal.user_id,
                created_at=t,
                updated_at=t,
                active_revision_id=None,
                latest_revision_id=None,
                labels={},
                settings={},
                description="",
                environment="",
                environment_tag=None,
            )
            self._apply_version(s, principal, p, row, spec, creating=True)
            s.add(row)
            s.flush()
            if d.default_version_id is None:
                d.default_version_id = row.id
            s.flush()
            return self.version_entity(s, p.name, d, row)

    def _apply_version(
        self,
        s: Session,
        principal: Principal,
        p: RegistryProjectRow,
        row: DeploymentVersionRow,
        spec: VersionIn,
        *,
        creating: bool,
    ) -> bool:
        """Apply a version's settings; whether the environment (or its tag) changed. The instance type group (and
        the deprecated instance type) name a hardware tier, by id or name: unknown and archived tiers are refused
        (core/hardware_tiers.py); the instances run with its limits (revisions.py)."""
        before = (row.environment, row.environment_tag)
        env, tag = spec.environment, spec.environment_tag
        if env is not None or creating:
            env = env or self.system_environments()[-1]
            if env not in self.system_environments():
                self.environment_row(s, p, env)
            row.environment = env
        if env is not None or tag is not None or creating:
            row.environment_tag = self.environment_tags.check_version_tag(s, p, row.environment, tag)
        if creating or spec.description is not None:
            row.description = valid_text(spec.description, "description")
        if creating or spec.labels is not None:
            row.labels = valid_labels(spec.labels)
        for key, (low, high, default) in VERSION_INTS.items():
            given = getattr(spec, key)
            setattr(row, key, bounded_int(given, key, default if creating else getattr(row, key), low, high))
            if key == "maximum_instances":
                check_instances(row.minimum_instances, row.maximum_instances)
        if spec.request_retention_mode is not None:
            row.request_retention_mode = valid_retention_mode(spec.request_retention_mode)
        elif creating:
            row.request_retention_mode = "full"
        if spec.instance_type_group_name is not None:
            group = valid_text(spec.instance_type_group_name, "instance_type_group_name", 256)
            self.hardware_tiers.workload_tier(s, principal, group, field="instance_type_group_name")
            row.instance_type_group_name = group
        instance_type = spec.settings.get("instance_type")
        if instance_type is not None:
            if not isinstance(instance_type, str):
                raise InvalidInput("'instance_type' must be the name of a hardware tier", field="instance_type")
            self.hardware_tiers.workload_tier(s, principal, instance_type, field="instance_type")
        settings = dict(row.settings or {})
        for key in VERSION_SETTINGS:
            if spec.settings.get(key) is not None:
                settings[key] = spec.settings[key]
        row.settings = settings
        return (row.environment, row.environment_tag) != before

    # --- instance type groups: the hardware tiers a version may name ----------------------------------
    def instance_type_groups(self, principal: Principal, project: str) -> list[HardwareTier]:
        """The hardware tiers a version in ``project`` may run on (UbiOps' instance type groups), default first:
        the organisation's unarchived tiers the caller sees (core/hardware_tiers.py)."""
        with self.db.uow(readonly=True) as s:
            self.project_row(s, principal, project)
            return self.hardware_tiers.selectable(s, principal)

    def instance_type_group(self, principal: Principal, project: str, group: str) -> HardwareTier:
        """One of :meth:`instance_type_groups`, by its id (the tier's id)."""
        for tier in self.instance_type_groups(principal, project):
            if tier.id == group:
                return tier
        raise NotFound(f"Instance type group {group!r} not found")

    def list_versions(self, principal: Principal, project: str, deployment: str) -> list[DeploymentVersion]:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            rows = s.scalars(
                select(DeploymentVersionRow)
                .where(DeploymentVersionRow.deployment_id == d.id)
                .order_by(DeploymentVersionRow.version)
            )
            return [self.version_entity(s, p.name, d, r) for r in rows]

    def get_version(self, principal: Principal, project: str, deployment: str, version: str) -> DeploymentVersion:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            return self.version_entity(s, p.name, d, self._version_row(s, d, version))

    def update_version(
        self, principal: Principal, project: str, deployment: str, version: str, change: VersionIn
    ) -> DeploymentVersion:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            row = self._version_row(s, d, version)
            if change.version is not None and change.version != row.version:
                new = valid_name(change.version, "version")
                if s.scalar(
                    select(DeploymentVersionRow.id).where(
                        DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == new
                    )
                ):
                    raise Conflict(f"Version {new!r} of deployment {d.name!r} already exists.")
                row.version = new
            moved = self._apply_version(s, principal, p, row, change, creating=False)
            row.updated_at = now()
            latest = s.get(RevisionRow, row.latest_revision_id) if row.latest_revision_id else None
            if moved and latest is not None and latest.file_id is not None:
                self._queue_build(s, latest, p.org_id)  # the package builds again in its new environment
            s.flush()
            self._changed()
            return self.version_entity(s, p.name, d, row)

    def delete_version(self, principal: Principal, project: str, deployment: str, version: str) -> None:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            row = self._version_row(s, d, version)
            if d.default_version_id == row.id:
                others = s.scalar(
                    select(func.count())
                    .select_from(DeploymentVersionRow)
                    .where(DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.id != row.id)
                )
                if others:
                    raise InvalidInput(
                        f"Version {row.version!r} is the default of {d.name!r}: make another version the default first."
                    )
                d.default_version_id = None
            for hook in self.on_delete_version:
                hook(s, row)
            stale = self._delete_versions(s, [row.id])
            vid = row.id
        self.drop_blobs(stale)
        self._undeploy([vid])
