"""Environment variables (with secrets) at project, deployment and version level: the narrowest wins; values
encrypted at rest (SecretBox), a secret's value never returned."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_uuid, now
from modelharbor.core.secretbox import SecretUnreadable
from modelharbor.core.serving.entities import EnvVar
from modelharbor.core.serving.request_history import lookup_key
from modelharbor.core.serving.validation import MAX_ENV_VARS, valid_env_name, valid_env_value
from modelharbor.db.tables_serving import EnvVarRow
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound
from modelharbor.domain.inputs import EnvVarIn
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.serving")


class EnvVars:
    """Environment variables (mixed into ServingService)."""

    # --- environment variables ------------------------------------------------------------------
    def _effective_env(self, s: Session, project_id: str, deployment_id: str, version_id: str) -> dict[str, str]:
        rows = s.scalars(
            select(EnvVarRow).where(
                EnvVarRow.project_id == project_id,
                (EnvVarRow.deployment_id.is_(None) & EnvVarRow.version_id.is_(None))
                | ((EnvVarRow.deployment_id == deployment_id) & EnvVarRow.version_id.is_(None))
                | (EnvVarRow.version_id == version_id),
            )
        ).all()
        rank = {0: [], 1: [], 2: []}
        for r in rows:
            rank[2 if r.version_id else 1 if r.deployment_id else 0].append(r)
        out: dict[str, str] = {}
        for level in (0, 1, 2):
            for r in rank[level]:
                try:
                    out[r.name] = self.box.open(r.value)
                except SecretUnreadable:
                    log.warning("environment variable %s cannot be decrypted (server key changed?)", r.name)
        return out

    def _level(
        self,
        s: Session,
        principal: Principal,
        project: str,
        deployment: str | None,
        version: str | None,
        *,
        write: bool,
    ):
        p = self.project_row(s, principal, project, write=write)
        d = self._deployment_row(s, p, deployment) if deployment is not None else None
        v = self._version_row(s, d, version) if version is not None and d is not None else None
        return p, d, v

    def list_env_vars(
        self, principal: Principal, project: str, deployment: str | None = None, version: str | None = None
    ) -> list[EnvVar]:
        """A level's variables with those it inherits (project, then deployment), own ones last."""
        with self.db.uow(readonly=True) as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=False)
            out: list[EnvVar] = []
            levels = [("project", p.name, None, None)]
            if d is not None:
                levels.append(("deployment", d.name, d.id, None))
            if v is not None:
                levels.append(("version", v.version, d.id, v.id))
            own = levels[-1][0]
            for kind, label, did, vid in levels:
                q = select(EnvVarRow).where(EnvVarRow.project_id == p.id)
                q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
                q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
                for r in s.scalars(q.order_by(EnvVarRow.name)):
                    inherited = kind != own
                    out.append(self._env_var(r, kind if inherited else None, label if inherited else None))
            return out

    def get_env_var(
        self, principal: Principal, project: str, var_id: str, deployment: str | None = None, version: str | None = None
    ) -> EnvVar:
        with self.db.uow(readonly=True) as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=False)
            return self._env_var(self._env_var_row(s, p, d, v, var_id))

    def create_env_var(
        self,
        principal: Principal,
        project: str,
        var: EnvVarIn,
        deployment: str | None = None,
        version: str | None = None,
    ) -> EnvVar:
        """A variable at the level ``deployment``/``version`` name (``var.secret`` None: not secret)."""
        name, value, secret = valid_env_name(var.name), valid_env_value(var.value), bool(var.secret)
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            if self._find_var(s, p, d, v, name) is not None:
                raise Conflict(f"Environment variable {name!r} already exists at this level.")
            count = s.scalar(select(func.count()).select_from(EnvVarRow).where(EnvVarRow.project_id == p.id))
            if count >= MAX_ENV_VARS:
                raise InvalidInput(f"A project may hold at most {MAX_ENV_VARS} environment variables.")
            row = EnvVarRow(
                id=new_uuid(),
                project_id=p.id,
                deployment_id=d.id if d else None,
                version_id=v.id if v else None,
                name=name,
                value=self.box.seal(value),
                secret=secret,
                created_at=now(),
            )
            s.add(row)
            s.flush()
            self._changed()
            return self._env_var(row)

    def update_env_var(
        self,
        principal: Principal,
        project: str,
        var_id: str,
        change: EnvVarIn,
        deployment: str | None = None,
        version: str | None = None,
    ) -> EnvVar:
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            row = self._env_var_row(s, p, d, v, var_id)
            name = valid_env_name(change.name) if change.name is not None else row.name
            if name != row.name and self._find_var(s, p, d, v, name) is not None:
                raise Conflict(f"Environment variable {name!r} already exists at this level.")
            row.name = name
            if change.secret is not None:
                if row.secret and not change.secret and change.value is None:
                    raise InvalidInput("To make a secret visible, send its value again.")
                row.secret = change.secret
            if change.value is not None:
                row.value = self.box.seal(valid_env_value(change.value))
            s.flush()
            self._changed()
            return self._env_var(row)

    def delete_env_var(
        self, principal: Principal, project: str, var_id: str, deployment: str | None = None, version: str | None = None
    ) -> None:
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            s.delete(self._env_var_row(s, p, d, v, var_id))
        self._changed()

    def copy_env_vars(
        self,
        principal: Principal,
        project: str,
        source_deployment: str,
        source_version: str | None,
        deployment: str,
        version: str | None = None,
    ) -> list[EnvVar]:
        """Copy the source level's own variables to the target level; same names are overwritten."""
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            _, sd, sv = self._level(s, principal, project, source_deployment, source_version, write=False)
            q = select(EnvVarRow).where(EnvVarRow.project_id == p.id, EnvVarRow.deployment_id == sd.id)
            q = q.where(EnvVarRow.version_id == sv.id if sv is not None else EnvVarRow.version_id.is_(None))
            for src in list(s.scalars(q)):
                existing = self._find_var(s, p, d, v, src.name)
                if existing is None:
                    s.add(
                        EnvVarRow(
                            id=new_uuid(),
                            project_id=p.id,
                            deployment_id=d.id,
                            version_id=v.id if v else None,
                            name=src.name,
                            value=src.value,
                            secret=src.secret,
                            created_at=now(),
                        )
                    )
                else:
                    existing.value, existing.secret = src.value, src.secret
            s.flush()
        self._changed()
        return self.list_env_vars(principal, project, deployment, version)

    @staticmethod
    def _find_var(s: Session, p, d, v, name: str) -> EnvVarRow | None:
        q = select(EnvVarRow).where(EnvVarRow.project_id == p.id, EnvVarRow.name == name)
        q = q.where(EnvVarRow.deployment_id == d.id if d is not None else EnvVarRow.deployment_id.is_(None))
        q = q.where(EnvVarRow.version_id == v.id if v is not None else EnvVarRow.version_id.is_(None))
        return s.scalar(q)

    @staticmethod
    def _env_var_row(s: Session, p, d, v, var_id: str) -> EnvVarRow:
        row = s.get(EnvVarRow, var_id) if lookup_key(var_id, 36) else None
        if (
            row is None
            or row.project_id != p.id
            or row.deployment_id != (d.id if d is not None else None)
            or row.version_id != (v.id if v is not None else None)
        ):
            raise NotFound(f"Environment variable {var_id!r} not found at this level")
        return row

    def _env_var(
        self, r: EnvVarRow, inheritance_type: str | None = None, inheritance_name: str | None = None
    ) -> EnvVar:
        value = None
        if not r.secret:
            try:
                value = self.box.open(r.value)
            except SecretUnreadable:
                value = None
        return EnvVar(r.id, r.name, value, r.secret, inheritance_type, inheritance_name)
