"""Projects: the Domino-style container (24-hex id) that registered models may belong to.

A project has an owner, collaborators with Domino's project roles and, optionally, its own ordered list of model
version stages (Domino lets each project configure them; without a list a project uses MLflow's
None / Staging / Production / Archived).

Domino's project entity lives here too: a **visibility** (``Public``: everyone in the organisation reads it;
``Searchable``: everyone finds it and reads what it is — name, owner, tags, status — but only its members read
its contents: files, models, deployments; ``Private``: only its members know it exists, others get 404),
**tags** (shared by name inside the organisation; core/project_settings.py), an **archived** flag (an archived
project is read-only: every write authorised by :func:`require_project_write` or the owner check refuses it with
``PROJECT_ARCHIVED``; only deleting it, or un-archiving it, remain), a **status** (active/complete, blocked with
a reason), **result settings** and an optional owning **team** (core/teams.py: the team's admins act as owners,
its members as contributors).

Members of a project: its owner, its collaborators (any role), the owning team's members and the organisation's
admins. Changing a project, or the models in it, takes the project's owner, a collaborator whose role may write
(Owner, Contributor), a member of its owning team or an admin of the organisation.

Names: 1 to 256 letters, digits, ``_``, ``-`` or ``.``, unique in the organisation without case (the registry's
rule since before Domino's projects; Domino's own rule is the same without the dot). A slash is refused with
the field named, so ``owner/name`` never becomes ambiguous.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.project_tags import link_tags, tag_name
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_people import TeamMemberRow, TeamRow
from modelharbor.db.tables_projects import ProjectTagLinkRow, ProjectTagRow
from modelharbor.db.tables_registry import (
    ModelReviewRow,
    ModelVersionRow,
    ProjectCollaboratorRow,
    RegisteredModelRow,
    RegistryProjectRow,
)
from modelharbor.domain.cards import ProjectSummary
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import RANK, Action, Principal, Role, require

STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED = "None", "Staging", "Production", "Archived"
DEFAULT_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
MAX_STAGES = 20
MAX_STAGE_NAME = 64
MAX_PROJECT_NAME = 256
MAX_COLLABORATORS = 500
MAX_DESCRIPTION = 100_000

# Domino's project roles (v4 spelling); the first two may change the project and its models.
PROJECT_ROLES = ("Owner", "Contributor", "ResultsConsumer", "LauncherUser", "ProjectImporter")
WRITER_ROLES = frozenset({"Owner", "Contributor"})
_PROJECT_ID = re.compile(r"[0-9a-f]{24}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

VISIBILITIES = ("Public", "Searchable", "Private")
STATUSES = ("active", "complete")
RESULT_BRANCHES = ("isolated", "main")
ARCHIVED = "PROJECT_ARCHIVED"  # the error code of a write to an archived project


@dataclass(frozen=True)
class ProjectTag:
    id: str
    name: str
    is_approved: bool


@dataclass(frozen=True)
class Collaborator:
    user_id: str
    username: str
    role: str


@dataclass(frozen=True)
class Project:
    id: str
    org_id: str
    name: str
    owner_id: str | None
    created_at: datetime
    description: str = ""
    owner_username: str | None = None
    stages: tuple[str, ...] | None = None  # None: the project uses DEFAULT_STAGES
    collaborators: tuple[Collaborator, ...] = ()
    visibility: str = "Public"
    archived: bool = False
    status: str = "active"
    is_blocked: bool = False
    blocked_reason: str | None = None
    completed_message: str | None = None
    results_branch: str = "main"
    owner_team_id: str | None = None
    owner_team_name: str | None = None
    updated_at: datetime | None = None
    tags: tuple[ProjectTag, ...] = ()

    @property
    def owner_name(self) -> str | None:
        """Who owns it as Domino shows it: the owning team's name, else the owner's username."""
        return self.owner_team_name or self.owner_username

    @property
    def effective_stages(self) -> tuple[str, ...]:
        return self.stages or DEFAULT_STAGES


# --- rules shared with the registry and reviews ---------------------------------------------------
def is_org_admin(principal: Principal) -> bool:
    return principal.is_superuser or RANK[principal.role] >= RANK[Role.ADMIN]


def stages_of_row(row: RegistryProjectRow | None) -> tuple[str, ...]:
    if row is None or not row.stages:
        return DEFAULT_STAGES
    return tuple(json.loads(row.stages))


def model_stages(s: Session, model: RegisteredModelRow) -> tuple[str, ...]:
    """The stages a version of ``model`` may be in: its project's list, or the default list."""
    return stages_of_row(s.get(RegistryProjectRow, model.project_id) if model.project_id else None)


def canonical_stage(stages: tuple[str, ...], stage: str | None) -> str:
    """``stage`` spelled as in ``stages`` (case-insensitive match), or InvalidInput naming the valid ones (None, no
    stage named, too)."""
    if stage is not None:
        for known in stages:
            if known.lower() == stage.lower():
                return known
    raise InvalidInput(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(stages)}.")


def visibility_of(value: object) -> str:
    """A project visibility, any case, spelled ``Public``/``Searchable``/``Private``; else InvalidInput."""
    canonical = {v.lower(): v for v in VISIBILITIES}
    if not isinstance(value, str) or value.lower() not in canonical:
        raise InvalidInput(f"'visibility' must be one of {', '.join(VISIBILITIES)}, not {value!r}", field="visibility")
    return canonical[value.lower()]


def team_role_in(s: Session, principal: Principal, row: RegistryProjectRow) -> str | None:
    """The caller's role in the project's owning team ("admin"/"member"), None without one."""
    if not row.owner_team_id:
        return None
    member = s.get(TeamMemberRow, (row.owner_team_id, principal.user_id))
    return None if member is None else member.role


def project_role(s: Session, principal: Principal, row: RegistryProjectRow) -> str | None:
    """The caller's role on the project: ``Owner`` (owner, organisation admin, admin of the owning team), a
    collaborator's role, ``Contributor`` (member of the owning team); None: not a member."""
    if is_org_admin(principal) or row.owner_id == principal.user_id:
        return "Owner"
    team = team_role_in(s, principal, row)
    if team == "admin":
        return "Owner"
    collab = s.get(ProjectCollaboratorRow, (row.id, principal.user_id))
    if collab is not None:
        return collab.role
    return "Contributor" if team == "member" else None


def may_write_project(s: Session, principal: Principal, row: RegistryProjectRow) -> bool:
    return project_role(s, principal, row) in WRITER_ROLES


def require_project_read(s: Session, principal: Principal, row: RegistryProjectRow, *, contents: bool = True) -> None:
    """The visibility rule: a ``Private`` project is missing (404) to non-members; a ``Searchable`` one is found but
    its contents (``contents``) are refused (403) to them; ``Public`` ones are read by the whole organisation."""
    if row.visibility == "Public" or project_role(s, principal, row) is not None:
        return
    if row.visibility == "Private":
        raise NotFound(f"Project {row.id!r} not found")
    if contents:
        raise Forbidden(
            f"project {row.name!r} is searchable: only its members read its contents; ask its owner for access"
        )


def select_projects() -> Select:
    """Every column of the projects with their owner's username and owning team's name, as Core rows: what listings
    hand :func:`project_entities` (no ORM cost per row, no lookups of names)."""
    P = RegistryProjectRow
    return (
        select(*P.__table__.c, UserRow.username.label("owner_username"), TeamRow.name.label("owner_team_name"))
        .outerjoin(UserRow, UserRow.id == P.owner_id)
        .outerjoin(TeamRow, TeamRow.id == P.owner_team_id)
    )


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """SQL: the projects (of the caller's organisation) the caller may know of — all but the private projects they
    are no member of."""
    if is_org_admin(principal):
        return true()
    P = RegistryProjectRow
    collab = select(ProjectCollaboratorRow.project_id).where(ProjectCollaboratorRow.user_id == principal.user_id)
    teams = select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == principal.user_id)
    return or_(P.visibility != "Private", P.owner_id == principal.user_id, P.id.in_(collab), P.owner_team_id.in_(teams))


def project_entities(s: Session, rows: Sequence[Any]) -> list[Project]:
    """The entities of ``rows`` (ORM rows, or Core rows of every column of the table: what listings select, without
    the ORM's cost per row) in a fixed number of queries (owners, teams, collaborators, tags), whatever their
    number."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    if isinstance(rows[0], RegistryProjectRow):
        owner_ids = {r.owner_id for r in rows if r.owner_id}
        owners = (
            {i: n for i, n in s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(owner_ids)))}
            if owner_ids
            else {}
        )
        team_ids = {r.owner_team_id for r in rows if r.owner_team_id}
        teams = (
            {i: n for i, n in s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(team_ids)))}
            if team_ids
            else {}
        )
    else:  # listing rows carry the names (select_projects)
        owners = {r.owner_id: r.owner_username for r in rows if r.owner_id}
        teams = {r.owner_team_id: r.owner_team_name for r in rows if r.owner_team_id}
    collabs: dict[str, list[Collaborator]] = {}
    C = ProjectCollaboratorRow
    for project_id, user_id, role, name in s.execute(
        select(C.project_id, C.user_id, C.role, UserRow.username)
        .join(UserRow, UserRow.id == C.user_id)
        .where(C.project_id.in_(ids))
        .order_by(UserRow.username)
    ):
        collabs.setdefault(project_id, []).append(Collaborator(user_id, name, role))
    tags: dict[str, list[ProjectTag]] = {}
    for project_id, tag_id, name, approved in s.execute(
        select(ProjectTagLinkRow.project_id, ProjectTagRow.id, ProjectTagRow.name, ProjectTagRow.is_approved)
        .join(ProjectTagRow, ProjectTagRow.id == ProjectTagLinkRow.tag_id)
        .where(ProjectTagLinkRow.project_id.in_(ids))
        .order_by(ProjectTagRow.name)
    ):
        tags.setdefault(project_id, []).append(ProjectTag(tag_id, name, approved))
    return [
        Project(
            id=row.id,
            org_id=row.org_id,
            name=row.name,
            owner_id=row.owner_id,
            created_at=aware(row.created_at),
            description=row.description or "",
            owner_username=owners.get(row.owner_id),
            stages=tuple(json.loads(row.stages)) if row.stages else None,
            collaborators=tuple(collabs.get(row.id, ())),
            visibility=row.visibility,
            archived=row.archived,
            status=row.status,
            is_blocked=row.is_blocked,
            blocked_reason=row.blocked_reason,
            completed_message=row.completed_message,
            results_branch=row.results_branch,
            owner_team_id=row.owner_team_id,
            owner_team_name=teams.get(row.owner_team_id),
            updated_at=aware(row.updated_at or row.created_at),
            tags=tuple(tags.get(row.id, ())),
        )
        for row in rows
    ]


def require_not_archived(row: RegistryProjectRow) -> None:
    if row.archived:
        raise Forbidden(
            f"project {row.name!r} is archived, so it is read-only: nothing in it can be changed", code=ARCHIVED
        )


def project_summaries(
    s: Session, principal: Principal, project_ids: Iterable[str | None]
) -> dict[str, tuple[ProjectSummary, bool]]:
    """The projects among ``project_ids`` the caller may see (those :func:`project_row` finds; the others are left
    out), each with its summary and whether the caller may change it and its models (registry write in its
    organisation and :func:`may_write_project`): for a page of read models (the registry's cards), in one query."""
    ids = sorted({p for p in project_ids if isinstance(p, str) and _PROJECT_ID.fullmatch(p)})
    if not ids:
        return {}
    P, C = RegistryProjectRow, ProjectCollaboratorRow
    rows = s.execute(
        select(P.id, P.org_id, P.name, P.owner_id, UserRow.username, C.role, P.visibility, TeamMemberRow.team_id)
        .outerjoin(UserRow, UserRow.id == P.owner_id)
        .outerjoin(C, (C.project_id == P.id) & (C.user_id == principal.user_id))
        .outerjoin(
            TeamMemberRow, (TeamMemberRow.team_id == P.owner_team_id) & (TeamMemberRow.user_id == principal.user_id)
        )
        .where(P.id.in_(ids))
    )
    out: dict[str, tuple[ProjectSummary, bool]] = {}
    for project_id, org_id, name, owner_id, owner_username, role, visibility, team_id in rows:
        if org_id != principal.org_id and not principal.is_superuser:
            continue
        writer = is_org_admin(principal) or owner_id == principal.user_id or role in WRITER_ROLES
        if visibility == "Private" and not writer and role is None and team_id is None:
            continue  # a private project is shown to its members only
        out[project_id] = (
            ProjectSummary(project_id, name, owner_username),
            principal.can(Action.REGISTRY_WRITE, org_id) and writer,
        )
    return out


def require_project_write(s: Session, principal: Principal, row: RegistryProjectRow) -> None:
    """Changing the project or anything in it (files, models, deployments…): registry write in its organisation, a
    writer's role on it (:func:`may_write_project`), and the project not archived (every feature that authorises
    its writes here inherits the read-only rule of archived projects)."""
    require(principal, Action.REGISTRY_WRITE, row.org_id, what="project")
    require_not_archived(row)
    if not may_write_project(s, principal, row):
        raise Forbidden(
            f"you may not change project {row.name!r} or its models: ask its owner to add you as a "
            "collaborator with the Contributor role"
        )


def require_project_owner(
    s: Session, principal: Principal, row: RegistryProjectRow, *, archived_ok: bool = False
) -> None:
    """The project's owner, an admin of its owning team or an organisation admin; the project not archived
    (``archived_ok``: deleting and un-archiving)."""
    require(principal, Action.REGISTRY_WRITE, row.org_id, what="project")
    if not archived_ok:
        require_not_archived(row)
    if not (is_org_admin(principal) or row.owner_id == principal.user_id or team_role_in(s, principal, row) == "admin"):
        raise Forbidden(f"only the owner of project {row.name!r} or an organisation admin may change it")


def require_model_write(s: Session, principal: Principal, model: RegisteredModelRow) -> None:
    """Changing a model takes registry write in its organisation and, for a model in a project, project write."""
    require(principal, Action.REGISTRY_WRITE, model.org_id, what="registered model")
    if model.project_id:
        project = s.get(RegistryProjectRow, model.project_id)
        if project is not None:
            require_project_write(s, principal, project)


def project_row(
    s: Session, principal: Principal, project_id: str, *, lock: bool = False, contents: bool = True
) -> RegistryProjectRow:
    """The project by id, if the caller's organisation has it and its visibility lets the caller see it
    (:func:`require_project_read`; ``contents`` False: what the project is, not what is in it)."""
    if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
        raise NotFound(f"Project {project_id!r} not found")
    q = select(RegistryProjectRow).where(RegistryProjectRow.id == project_id)
    row = s.scalar(q.with_for_update() if lock else q)
    if row is None or (row.org_id != principal.org_id and not principal.is_superuser):
        raise NotFound(f"Project {project_id!r} not found")
    require_project_read(s, principal, row, contents=contents)
    return row


def project_row_by_owner(
    s: Session, principal: Principal, owner_username: str, name: str, *, lock: bool = False, contents: bool = True
) -> RegistryProjectRow:
    """The caller's organisation's project ``name`` owned by ``owner_username`` (Domino's ``{owner}/{project}``;
    a team-owned project's owner is the team's name), visibility checked as :func:`project_row` does."""
    for text in (owner_username, name):  # what no name can be (NUL, which PostgreSQL refuses in text) finds nothing
        if not text or len(text) > MAX_PROJECT_NAME or "\x00" in text:
            raise NotFound(f"Project {owner_username!r}/{name!r} not found")
    P = RegistryProjectRow
    by_user = (
        select(P)
        .join(UserRow, UserRow.id == P.owner_id)
        .where(
            P.org_id == principal.org_id, P.name == name, P.owner_team_id.is_(None), UserRow.username == owner_username
        )
    )
    by_team = (
        select(P)
        .join(TeamRow, TeamRow.id == P.owner_team_id)
        .where(P.org_id == principal.org_id, P.name == name, TeamRow.name == owner_username)
    )
    row = None
    for q in (by_user, by_team):
        row = s.scalar(q.with_for_update(of=P) if lock else q)
        if row is not None:
            break
    if row is None:
        raise NotFound(f"Project {owner_username}/{name} not found")
    try:
        require_project_read(s, principal, row, contents=contents)
    except NotFound:
        raise NotFound(f"Project {owner_username}/{name} not found") from None
    return row


def check_stage_count(count: int) -> None:
    """A stage list's length: 1 to MAX_STAGES."""
    if not count:
        raise InvalidInput("'stages' must be a non-empty list of stage names.")
    if count > MAX_STAGES:
        raise InvalidInput(f"A project may have at most {MAX_STAGES} stages, not {count}.")


def stage_name_fault(stage: object) -> InvalidInput:
    """The fault of a stage name that is not a non-empty string without surrounding spaces (the edges answer it
    for a value that is no string)."""
    return InvalidInput(f"Invalid stage name {stage!r}: a non-empty string without surrounding spaces.")


def check_stage_name(stage: str, seen: set[str]) -> None:
    """One name of a stage list (``seen``: the lower-case names before it, which this one joins)."""
    if not stage.strip() or stage != stage.strip():
        raise stage_name_fault(stage)
    if len(stage) > MAX_STAGE_NAME or not stage.isprintable():
        raise InvalidInput(f"Invalid stage name {stage!r}: at most {MAX_STAGE_NAME} printable characters.")
    if stage.lower() in seen:
        raise InvalidInput(f"Stage {stage!r} appears twice (stage names are compared without case).")
    seen.add(stage.lower())


def validate_stage_list(stages: Sequence[str]) -> tuple[str, ...]:
    """A project's own stage list: 1 to MAX_STAGES distinct printable names, 'None' among them. The edges check
    that the list holds strings, calling these checks in the same order (api/inputs.py's ``stage_list``)."""
    check_stage_count(len(stages))
    seen: set[str] = set()
    for st in stages:
        check_stage_name(st, seen)
    if STAGE_NONE.lower() not in seen:
        raise InvalidInput("The stage list must include 'None': every new model version starts in it.")
    return tuple(stages)


# --- the service -----------------------------------------------------------------------------------
class ProjectService:
    def __init__(self, db: Database):
        self.db = db
        self.on_delete: list = []  # (session, project_id) callbacks of services owning objects in projects

    def create_project(
        self,
        principal: Principal,
        name: str,
        *,
        description: str | None = None,
        owner_id: str | None = None,
        visibility: str = "Public",
        tags: Sequence[str] = (),
        collaborators: Sequence[tuple[str, str]] = (),
    ) -> Project:
        """A new project owned by the caller, or by ``owner_id``: another member (organisation admins only) or a team
        of the organisation (its admins, or organisation admins); with its ``tags`` (names) and ``collaborators``
        ((user id or username, role)), all or nothing."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="project")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name) or len(name) > MAX_PROJECT_NAME:
            raise InvalidInput(
                f"Invalid project name {name!r} ('name'): use 1 to {MAX_PROJECT_NAME} letters, digits, '_', '-' or "
                "'.' (no slash, no space).",
                field="name",
            )
        if description is not None and (len(description) > MAX_DESCRIPTION or "\x00" in description):
            raise InvalidInput(
                f"'description' must be at most {MAX_DESCRIPTION} characters, without NUL", field="description"
            )
        if owner_id is not None and (len(owner_id) > 200 or not owner_id.isprintable()):
            raise InvalidInput(f"Unknown owner {owner_id!r}.", field="ownerId")
        visibility = visibility_of(visibility)
        roles = [(user, self._role(role)) for user, role in collaborators]
        names = [tag_name(t) for t in tags]
        with self.db.uow() as s:
            owner, team = principal.user_id, None
            if owner_id not in (None, "", principal.user_id):
                team = s.scalar(select(TeamRow).where(TeamRow.org_id == principal.org_id, TeamRow.id == owner_id))
                if team is not None:
                    member = s.get(TeamMemberRow, (team.id, principal.user_id))
                    if not is_org_admin(principal) and (member is None or member.role != "admin"):
                        raise Forbidden(f"only an admin of team {team.name!r} may create a project it owns")
                elif not is_org_admin(principal):
                    raise Forbidden("only an admin of the organisation may create a project for another user")
                else:
                    owner = self._member(s, principal, owner_id)
            existing = s.scalar(
                select(RegistryProjectRow).where(
                    RegistryProjectRow.org_id == principal.org_id, func.lower(RegistryProjectRow.name) == name.lower()
                )
            )
            if existing is not None:
                raise Conflict(
                    f"Project (name={name}) already exists" + (" (archived)." if existing.archived else "."),
                    field="name",
                )
            created = now()
            row = RegistryProjectRow(
                id=new_hex(12),
                org_id=principal.org_id,
                name=name,
                owner_id=owner,
                description=description or "",
                stages=None,
                created_at=created,
                updated_at=created,
                visibility=visibility,
                archived=False,
                status="active",
                is_blocked=False,
                results_branch="main",
                owner_team_id=team.id if team is not None else None,
            )
            s.add(row)
            s.flush()
            for user, role in roles:
                uid = self._member(s, principal, user)
                if uid != owner:
                    s.merge(ProjectCollaboratorRow(project_id=row.id, user_id=uid, role=role))
            if len(roles) > MAX_COLLABORATORS:
                raise InvalidInput(f"A project may have at most {MAX_COLLABORATORS} collaborators.")
            link_tags(s, row.org_id, row.id, names, approved=is_org_admin(principal), by=principal.user_id)
            s.flush()
            return self._entity(s, row)

    def get_project(self, principal: Principal, project_id: str) -> Project:
        """A project the caller may know of (a searchable one too: what it is, not its contents)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            return self._entity(s, project_row(s, principal, project_id, contents=False))

    def list_projects(self, principal: Principal) -> list[Project]:
        """The organisation's projects the caller may know of (archived ones too), by name."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            rows = s.scalars(
                select(RegistryProjectRow)
                .where(RegistryProjectRow.org_id == principal.org_id, visible_to(principal))
                .order_by(RegistryProjectRow.name)
            ).all()
            return project_entities(s, rows)

    def get_by_name(self, principal: Principal, name: str) -> Project:
        """The caller's organisation's project called ``name`` (names are unique in an organisation, any case)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        if not name or len(name) > MAX_PROJECT_NAME or not name.isprintable():
            raise NotFound(f"Project {name!r} not found")
        with self.db.uow(readonly=True) as s:
            row = s.scalar(
                select(RegistryProjectRow).where(
                    RegistryProjectRow.org_id == principal.org_id, RegistryProjectRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"Project {name!r} not found")
            return self._entity(s, row)

    def delete_project(self, principal: Principal, project_id: str) -> list[str]:
        """Delete a project; its registered models stay (outside any project), what ``on_delete`` hooks own goes
        (deployments, …). Returns the blob keys the hooks freed, to delete once committed."""
        stale: list[str] = []
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_owner(s, principal, row, archived_ok=True)  # deleting an archived project is allowed
            s.execute(
                RegisteredModelRow.__table__.update()
                .where(RegisteredModelRow.project_id == row.id)
                .values(project_id=None)
            )
            for hook in self.on_delete:
                stale += hook(s, row.id) or []
            s.execute(ProjectCollaboratorRow.__table__.delete().where(ProjectCollaboratorRow.project_id == row.id))
            s.delete(row)
            s.flush()
        return stale

    def find_by_owner_and_name(self, principal: Principal, owner_username: str, name: str) -> Project:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            return self._entity(s, project_row_by_owner(s, principal, owner_username, name, contents=False))

    def set_collaborator(self, principal: Principal, project_id: str, user_id: str, role: str) -> Project:
        role = self._role(role)
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_owner(s, principal, row)
            user = self._member(s, principal, user_id)
            if user == row.owner_id:
                raise InvalidInput(f"That user owns project {row.name!r}: owners are not collaborators.")
            existing = s.get(ProjectCollaboratorRow, (row.id, user))
            if existing is None:
                count = s.scalar(
                    select(func.count())
                    .select_from(ProjectCollaboratorRow)
                    .where(ProjectCollaboratorRow.project_id == row.id)
                )
                if count >= MAX_COLLABORATORS:
                    raise InvalidInput(f"A project may have at most {MAX_COLLABORATORS} collaborators.")
                s.add(ProjectCollaboratorRow(project_id=row.id, user_id=user, role=role))
            else:
                existing.role = role
            s.flush()
            return self._entity(s, row)

    def remove_collaborator(self, principal: Principal, project_id: str, user_id: str) -> Project:
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_owner(s, principal, row)
            try:
                user = self._member(s, principal, user_id)
            except InvalidInput:
                user = None
            existing = s.get(ProjectCollaboratorRow, (row.id, user)) if user else None
            if existing is None:
                raise NotFound(f"User {user_id!r} is not a collaborator of project {row.name!r}")
            s.delete(existing)
            s.flush()
            return self._entity(s, row)

    # --- stage lists ----------------------------------------------------------------------------
    def get_stages(self, principal: Principal, project_id: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        """(the project's own list or None, the list in force)."""
        project = self.get_project(principal, project_id)
        return project.stages, project.effective_stages

    def set_stages(self, principal: Principal, project_id: str, stages: Sequence[str]) -> Project:
        stages = validate_stage_list(stages)
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_owner(s, principal, row)
            known = {st.lower(): st for st in stages}
            used = s.scalars(
                select(ModelVersionRow.current_stage)
                .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
                .where(RegisteredModelRow.project_id == row.id)
                .distinct()
            ).all()
            targets = s.scalars(
                select(ModelReviewRow.target_stage)
                .join(ModelVersionRow, ModelVersionRow.pk == ModelReviewRow.version_pk)
                .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
                .where(RegisteredModelRow.project_id == row.id, ModelReviewRow.status == "Open")
                .distinct()
            ).all()
            missing = sorted({st for st in (*used, *targets) if st.lower() not in known})
            if missing:
                raise InvalidInput(
                    f"Versions of models in this project are in (or under review for) stage(s) {', '.join(missing)}: "
                    "keep those stages in the list, or move the versions out of them (or cancel the reviews) first."
                )
            # versions keep their stage, spelled as the new list spells it
            for v in s.scalars(
                select(ModelVersionRow)
                .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
                .where(RegisteredModelRow.project_id == row.id)
            ):
                if known[v.current_stage.lower()] != v.current_stage:
                    v.current_stage = known[v.current_stage.lower()]
            row.stages = None if stages == DEFAULT_STAGES else json.dumps(list(stages))
            s.flush()
            return self._entity(s, row)

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _role(role: object) -> str:
        canonical = {r.lower(): r for r in PROJECT_ROLES}
        if not isinstance(role, str) or role.lower() not in canonical:
            raise InvalidInput(f"Invalid project role {role!r}: use one of {', '.join(PROJECT_ROLES)}.", field="role")
        return canonical[role.lower()]

    @staticmethod
    def _member(s: Session, principal: Principal, user: str) -> str:
        """The id of a member of the caller's organisation, given by id or by username."""
        if not user or len(user) > 200 or not user.isprintable():
            raise InvalidInput(f"Unknown user {user!r}.")
        if s.get(MembershipRow, (principal.org_id, user)) is not None:
            return user
        by_name = s.scalar(
            select(MembershipRow.user_id)
            .join(UserRow, UserRow.id == MembershipRow.user_id)
            .where(MembershipRow.org_id == principal.org_id, UserRow.username == user)
        )
        if by_name is None:
            raise InvalidInput(f"User {user!r} is not a member of this organisation.")
        return by_name

    @staticmethod
    def _entity(s: Session, row: RegistryProjectRow) -> Project:
        return project_entities(s, [row])[0]


# --- shared with the project satellites (goals, repositories, access requests, copies) ---------------------------
def may_manage_project(s: Session, principal: Principal, row: RegistryProjectRow) -> bool:
    """Whether the caller manages the project (its collaborators, settings, access requests): its owner, an admin of
    its owning team or an admin of its organisation. A collaborator with the Owner role writes like a Contributor but
    does not manage."""
    return principal.can(Action.REGISTRY_WRITE, row.org_id) and (
        is_org_admin(principal) or row.owner_id == principal.user_id or team_role_in(s, principal, row) == "admin"
    )


def readable_project_row(
    s: Session, principal: Principal, project_id: str, *, lock: bool = False, contents: bool = True
) -> RegistryProjectRow:
    """The project ``project_id`` for a caller who may read projects and sees this one (``contents=False``: what it
    is, e.g. to ask for access to a searchable project, rather than what is in it)."""
    require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
    return project_row(s, principal, project_id, lock=lock, contents=contents)
