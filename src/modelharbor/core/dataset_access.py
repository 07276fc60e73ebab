"""Who may do what with a dataset (core/datasets.py): the roles ``DatasetRwReader`` ⊂ ``DatasetRwEditor`` ⊂
``DatasetRwOwner``, from grants and from the dataset's project.

The caller's role on a dataset is the highest of:

- the project's defaults: the project's owner, an admin of its owning team, an organisation admin and a collaborator
  with the Owner role are ``DatasetRwOwner``; a writer (Contributor, member of the owning team) is
  ``DatasetRwEditor``; any other collaborator (ResultsConsumer, LauncherUser, ProjectImporter) is
  ``DatasetRwReader``. Organisation members who merely see a Public project get nothing by default.
- grants to the caller, and to every team (Domino's organizations) the caller is a member of.

No role: the dataset is missing (404). Reading (files, snapshots, grants) takes Reader; changing it (metadata, tags,
snapshots, files of its head) Editor; its grants and deleting it Owner. A change also takes registry write in the
organisation and an active (not archived) project.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from modelharbor.core.projects import WRITER_ROLES, project_role
from modelharbor.db.tables_datasets import DatasetGrantRow
from modelharbor.db.tables_people import TeamMemberRow
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Principal

READER, EDITOR, OWNER = "DatasetRwReader", "DatasetRwEditor", "DatasetRwOwner"
ROLES = (READER, EDITOR, OWNER)  # ascending
RANK = {r: i for i, r in enumerate(ROLES)}
# DatasetRwPermissionV1 (the v2 listing's ``minimumPermission``): the spec's permission names and the role names
PERMISSIONS = {
    "read": READER, "list": READER, "datasetrwreader": READER,
    "update": EDITOR, "readwrite": EDITOR, "datasetrweditor": EDITOR,
    "editsecurity": OWNER, "datasetrwowner": OWNER,
}  # fmt: skip


def role_of(value: object, *, field: str = "targetRole") -> str:
    """A role name (any case) spelled canonically; InvalidInput naming ``field`` otherwise."""
    canonical = {r.lower(): r for r in ROLES}
    if not isinstance(value, str) or value.lower() not in canonical:
        raise InvalidInput(f"'{field}' must be one of {', '.join(ROLES)}, not {value!r}", field=field)
    return canonical[value.lower()]


def permission_of(value: str) -> str:
    """``minimumPermission``: the least role it asks for."""
    role = PERMISSIONS.get(value.strip().lower())
    if role is None:
        raise InvalidInput(
            f"'minimumPermission' must be Read, Update, EditSecurity or a role name ({', '.join(ROLES)}), not "
            f"{value!r}",
            field="minimumPermission",
        )
    return role


def project_default(s: Session, principal: Principal, project: RegistryProjectRow) -> str | None:
    role = project_role(s, principal, project)
    if role is None:
        return None
    if role == "Owner":
        return OWNER
    return EDITOR if role in WRITER_ROLES else READER


class Roles:
    """The caller's roles on datasets, for one transaction: their teams and project defaults looked up once."""

    def __init__(self, s: Session, principal: Principal):
        self.s = s
        self.principal = principal
        self.teams = set(s.scalars(select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == principal.user_id)))
        self._projects: dict[str, str | None] = {}

    def granted(self, dataset_ids: list[str]) -> dict[str, str]:
        """The highest role granted to the caller or their teams on each of ``dataset_ids`` (those with one)."""
        out: dict[str, str] = {}
        if not dataset_ids:
            return out
        G = DatasetGrantRow
        targets = [self.principal.user_id, *self.teams]
        for chunk in range(0, len(dataset_ids), 500):
            rows = self.s.execute(
                select(G.dataset_id, G.role).where(
                    G.dataset_id.in_(dataset_ids[chunk : chunk + 500]), or_(G.target_id.in_(targets))
                )
            )
            for dataset_id, role in rows:
                if dataset_id not in out or RANK[role] > RANK[out[dataset_id]]:
                    out[dataset_id] = role
        return out

    def of_project(self, project: RegistryProjectRow) -> str | None:
        if project.id not in self._projects:
            self._projects[project.id] = project_default(self.s, self.principal, project)
        return self._projects[project.id]

    def role(self, dataset_id: str, project: RegistryProjectRow, granted: str | None = None) -> str | None:
        """The caller's role on the dataset (``granted``: what :meth:`granted` found, when it was asked)."""
        if granted is None:
            granted = self.granted([dataset_id]).get(dataset_id)
        return highest(granted, self.of_project(project))


def highest(*roles: str | None) -> str | None:
    known = [r for r in roles if r is not None]
    return max(known, key=RANK.__getitem__) if known else None
