"""Deployments and their versions: create, read, change, delete (with what goes with them: revisions, variables,
kept requests, blobs, running instances)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import run_sync
from modelharbor.core.clock import new_uuid, now
from modelharbor.core.serving.entities import Deployment, DeploymentVersion
from modelharbor.core.serving.request_history import bounded_int
from modelharbor.core.serving.validation import (
    MAX_INSTANCES,
    RETENTION_MODES,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
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
from modelharbor.domain.errors import Conflict, InvalidInput
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.serving")


class Deployments:
    """Deployments and versions (mixed into ServingService)."""

    # --- deployments ----------------------------------------------------------------------------
    def create_deployment(self, principal: Principal, project: Any, body: dict[str, Any]) -> Deployment:
        name = valid_name(body.get("name"), "deployment")
        input_type = valid_io_type(body.get("input_type"), "input_type")
        output_type = valid_io_type(body.get("output_type"), "output_type")
        input_fields = valid_fields(body.get("input_fields"), "input_fields", input_type)
        output_fields = valid_fields(body.get("output_fields"), "output_fields", output_type)
        supports = body.get("supports_request_format", True)
        if not isinstance(supports, bool):
            raise InvalidInput("'supports_request_format' must be a boolean.")
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            if s.scalar(select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name)):
                raise Conflict(f"Deployment {name!r} already exists in project {p.name!r}.")
            t = now()
            row = DeploymentRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=valid_text(body.get("description"), "description"),
                input_type=input_type,
                output_type=output_type,
                input_fields=input_fields,
                output_fields=output_fields,
                labels=valid_labels(body.get("labels")),
                supports_request_format=supports,
                default_version_id=None,
                creator_id=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._deployment_entity(s, p.name, row)

    def list_deployments(self, principal: Principal, project: Any) -> list[Deployment]:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            rows = s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id).order_by(DeploymentRow.name))
            return [self._deployment_entity(s, p.name, r) for r in rows]

    def get_deployment(self, principal: Principal, project: Any, name: Any) -> Deployment:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            return self._deployment_entity(s, p.name, self._deployment_row(s, p, name))

    def update_deployment(self, principal: Principal, project: Any, name: Any, body: dict[str, Any]) -> Deployment:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            row = self._deployment_row(s, p, name)
            if body.get("name") is not None and body["name"] != row.name:
                new = valid_name(body["name"], "deployment")
                if s.scalar(
                    select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == new)
                ):
                    raise Conflict(f"Deployment {new!r} already exists in project {p.name!r}.")
                row.name = new
            if body.get("description") is not None:
                row.description = valid_text(body["description"], "description")
            if body.get("labels") is not None:
                row.labels = valid_labels(body["labels"])
            if body.get("input_fields") is not None:
                row.input_fields = valid_fields(body["input_fields"], "input_fields", row.input_type)
            if body.get("output_fields") is not None:
                row.output_fields = valid_fields(body["output_fields"], "output_fields", row.output_type)
            if body.get("default_version") is not None:
                row.default_version_id = self._version_row(s, row, body["default_version"]).id
            row.updated_at = now()
            s.flush()
            self._changed()
            return self._deployment_entity(s, p.name, row)

    def delete_deployment(self, principal: Principal, project: Any, name: Any) -> None:
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
    _VERSION_SETTINGS = (
        "ports",
        "scaling_strategy",
        "instance_processes",
        "health_check",
        "command",
        "args",
        "restart_request_interruption",
        "instance_type",
        "instance_type_group_id",
    )

    def create_version(
        self, principal: Principal, project: Any, deployment: Any, body: dict[str, Any]
    ) -> DeploymentVersion:
        version = valid_name(body.get("version"), "version")
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
            self._apply_version(s, p, row, body, creating=True)
            s.add(row)
            s.flush()
            if d.default_version_id is None:
                d.default_version_id = row.id
            s.flush()
            return self.version_entity(s, p.name, d, row)

    def _apply_version(
        self, s: Session, p: RegistryProjectRow, row: DeploymentVersionRow, body: dict[str, Any], *, creating: bool
    ) -> bool:
        """Apply a version body; whether the environment (or its tag) changed."""
        before = (row.environment, row.environment_tag)
        env = body.get("environment_name") or body.get("environment")
        tag = body.get("environment_tag")
        if env is not None or creating:
            env = env or self.system_environments()[-1]
            if not isinstance(env, str):
                raise InvalidInput("'environment_name' must be a string.")
            if env not in self.system_environments():
                self.environment_row(s, p, env)
            row.environment = env
        if env is not None or tag is not None or creating:
            row.environment_tag = self.environment_tags.check_version_tag(s, p, row.environment, tag)
        if creating or "description" in body:
            row.description = valid_text(body.get("description"), "description")
        if creating or body.get("labels") is not None:
            row.labels = valid_labels(body.get("labels"))
        row.minimum_instances = bounded_int(
            body.get("minimum_instances"),
            "minimum_instances",
            row.minimum_instances if not creating else 0,
            0,
            MAX_INSTANCES,
        )
        row.maximum_instances = bounded_int(
            body.get("maximum_instances"),
            "maximum_instances",
            row.maximum_instances if not creating else 5,
            1,
            MAX_INSTANCES,
        )
        if row.minimum_instances > row.maximum_instances:
            raise InvalidInput("'minimum_instances' cannot be more than 'maximum_instances'.")
        row.maximum_idle_time = bounded_int(
            body.get("maximum_idle_time"),
            "maximum_idle_time",
            row.maximum_idle_time if not creating else 300,
            10,
            7 * 24 * 3600,
        )
        row.request_retention_time = bounded_int(
            body.get("request_retention_time"),
            "request_retention_time",
            row.request_retention_time if not creating else 604800,
            0,
            365 * 24 * 3600,
        )
        row.maximum_queue_size = bounded_int(
            body.get("maximum_queue_size"),
            "maximum_queue_size",
            row.maximum_queue_size if not creating else 100,
            1,
            100_000,
        )
        mode = body.get("request_retention_mode")
        if mode is not None:
            if mode not in RETENTION_MODES:
                raise InvalidInput(f"'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
            row.request_retention_mode = mode
        elif creating:
            row.request_retention_mode = "full"
        if body.get("instance_type_group_name") is not None:
            row.instance_type_group_name = valid_text(body["instance_type_group_name"], "instance_type_group_name", 256)
        settings = dict(row.settings or {})
        for key in self._VERSION_SETTINGS:
            if body.get(key) is not None:
                settings[key] = body[key]
        row.settings = settings
        return (row.environment, row.environment_tag) != before

    def list_versions(self, principal: Principal, project: Any, deployment: Any) -> list[DeploymentVersion]:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            rows = s.scalars(
                select(DeploymentVersionRow)
                .where(DeploymentVersionRow.deployment_id == d.id)
                .order_by(DeploymentVersionRow.version)
            )
            return [self.version_entity(s, p.name, d, r) for r in rows]

    def get_version(self, principal: Principal, project: Any, deployment: Any, version: Any) -> DeploymentVersion:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            return self.version_entity(s, p.name, d, self._version_row(s, d, version))

    def update_version(
        self, principal: Principal, project: Any, deployment: Any, version: Any, body: dict[str, Any]
    ) -> DeploymentVersion:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            row = self._version_row(s, d, version)
            if body.get("version") is not None and body["version"] != row.version:
                new = valid_name(body["version"], "version")
                if s.scalar(
                    select(DeploymentVersionRow.id).where(
                        DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == new
                    )
                ):
                    raise Conflict(f"Version {new!r} of deployment {d.name!r} already exists.")
                row.version = new
            moved = self._apply_version(s, p, row, body, creating=False)
            row.updated_at = now()
            latest = s.get(RevisionRow, row.latest_revision_id) if row.latest_revision_id else None
            if moved and latest is not None and latest.file_id is not None:
                self._queue_build(s, latest, p.org_id)  # the package builds again in its new environment
            s.flush()
            self._changed()
            return self.version_entity(s, p.name, d, row)

    def delete_version(self, principal: Principal, project: Any, deployment: Any, version: Any) -> None:
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
