"""Who is calling, and what they may do: roles, actions and the single permission check.

Every core service method calls :func:`require` (or :meth:`Principal.can`) for the operation it performs
on the object it touches. Nothing here looks at URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelharbor.domain.errors import Forbidden, NotFound


class Role(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"


RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Action(StrEnum):
    FILE_READ = "file.read"
    FILE_WRITE = "file.write"
    FILE_DELETE = "file.delete"
    UPLOAD_WRITE = "upload.write"
    MODEL_READ = "model.read"
    MODEL_WRITE = "model.write"
    TASK_READ = "task.read"
    KEY_MANAGE_OWN = "key.manage_own"
    KEY_MANAGE_ANY = "key.manage_any"
    USER_MANAGE = "user.manage"
    USER_READ = "user.read"  # the organisation's members: who they are (never their credentials)
    TEAM_CREATE = "team.create"  # teams (Domino's organizations) inside the organisation; core/teams.py
    TEAM_MANAGE = "team.manage"  # every team of the organisation, whatever the caller's team role
    CATALOGUE_READ = "catalogue.read"
    CATALOGUE_WRITE = "catalogue.write"
    REFERENCE_WRITE = "reference.write"  # frameworks and licences, shared by every organisation
    REGISTRY_READ = "registry.read"  # registered models, versions, aliases, projects
    REGISTRY_WRITE = "registry.write"
    TRACKING_READ = "tracking.read"  # MLflow experiments, runs, logged models and their artifacts
    TRACKING_WRITE = "tracking.write"
    SERVING_READ = "serving.read"  # environments, deployments, versions, pipelines, env vars (never secret values)
    SERVING_WRITE = "serving.write"  # …changing them (a project's writers only, see core/projects.py)
    SERVING_REQUEST = "serving.request"  # asking a deployment or pipeline for a prediction


# The least role that may perform each action within its organisation.
MIN_ROLE: dict[Action, Role] = {
    Action.FILE_READ: Role.VIEWER,
    Action.MODEL_READ: Role.VIEWER,
    Action.TASK_READ: Role.VIEWER,
    Action.KEY_MANAGE_OWN: Role.VIEWER,
    Action.FILE_WRITE: Role.MEMBER,
    Action.UPLOAD_WRITE: Role.MEMBER,
    Action.MODEL_WRITE: Role.MEMBER,
    Action.FILE_DELETE: Role.MEMBER,
    Action.KEY_MANAGE_ANY: Role.ADMIN,
    Action.USER_MANAGE: Role.ADMIN,
    Action.USER_READ: Role.VIEWER,
    Action.TEAM_CREATE: Role.MEMBER,
    Action.TEAM_MANAGE: Role.ADMIN,
    Action.CATALOGUE_READ: Role.VIEWER,
    Action.CATALOGUE_WRITE: Role.ADMIN,
    Action.REFERENCE_WRITE: Role.OWNER,
    Action.TRACKING_READ: Role.VIEWER,
    Action.TRACKING_WRITE: Role.MEMBER,
    Action.REGISTRY_READ: Role.VIEWER,
    Action.REGISTRY_WRITE: Role.MEMBER,
    Action.SERVING_READ: Role.VIEWER,
    Action.SERVING_WRITE: Role.MEMBER,
    Action.SERVING_REQUEST: Role.MEMBER,
}

# Actions on data every organisation shares: no organisation role is enough.
SUPERUSER_ONLY = frozenset({Action.REFERENCE_WRITE})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller acting within one organisation."""

    user_id: str
    username: str
    org_id: str
    role: Role
    is_superuser: bool = False
    key_id: str | None = None

    def can(self, action: Action, org_id: str | None = None) -> bool:
        if self.is_superuser:
            return True
        if action in SUPERUSER_ONLY or (org_id is not None and org_id != self.org_id):
            return False
        return RANK[self.role] >= RANK[MIN_ROLE[action]]


def require(principal: Principal, action: Action, org_id: str, *, what: str = "object") -> None:
    """Raise unless ``principal`` may do ``action`` on an object of ``org_id``.

    Objects of another organisation are reported as missing (404), so their existence does not leak.
    """
    if org_id != principal.org_id and not principal.is_superuser:
        raise NotFound(f"{what} not found")
    if action in SUPERUSER_ONLY and not principal.is_superuser:
        raise Forbidden(f"only a superuser may perform '{action}': it changes data every organisation shares")
    if not principal.can(action, org_id):
        raise Forbidden(f"your role '{principal.role}' may not perform '{action}'; ask an admin of the organisation")
