"""Projects: the Domino-style container (24-hex id) that registered models may belong to.

A project has an owner, collaborators with Domino's project roles and, optionally, its own ordered list of model
version stages (Domino lets each project configure them; without a list a project uses MLflow's
None / Staging / Production / Archived). Everyone in the organisation may read a project; changing it, or the
models in it, takes the project's owner, a collaborator whose role may write (Owner, Contributor) or an admin
of the organisation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
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

# Domino's project roles (v4 spelling); the first two may change the project and its models.
PROJECT_ROLES = ("Owner", "Contributor", "ResultsConsumer", "LauncherUser", "ProjectImporter")
WRITER_ROLES = frozenset({"Owner", "Contributor"})
_PROJECT_ID = re.compile(r"[0-9a-f]{24}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


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


def may_write_project(s: Session, principal: Principal, row: RegistryProjectRow) -> bool:
    if is_org_admin(principal) or row.owner_id == principal.user_id:
        return True
    collab = s.get(ProjectCollaboratorRow, (row.id, principal.user_id))
    return collab is not None and collab.role in WRITER_ROLES


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
        select(P.id, P.org_id, P.name, P.owner_id, UserRow.username, C.role)
        .outerjoin(UserRow, UserRow.id == P.owner_id)
        .outerjoin(C, (C.project_id == P.id) & (C.user_id == principal.user_id))
        .where(P.id.in_(ids))
    )
    out: dict[str, tuple[ProjectSummary, bool]] = {}
    for project_id, org_id, name, owner_id, owner_username, role in rows:
        if org_id != principal.org_id and not principal.is_superuser:
            continue
        writer = is_org_admin(principal) or owner_id == principal.user_id or role in WRITER_ROLES
        out[project_id] = (
            ProjectSummary(project_id, name, owner_username),
            principal.can(Action.REGISTRY_WRITE, org_id) and writer,
        )
    return out


def require_project_write(s: Session, principal: Principal, row: RegistryProjectRow) -> None:
    require(principal, Action.REGISTRY_WRITE, row.org_id, what="project")
    if not may_write_project(s, principal, row):
        raise Forbidden(
            f"you may not change project {row.name!r} or its models: ask its owner to add you as a "
            "collaborator with the Contributor role"
        )


def require_model_write(s: Session, principal: Principal, model: RegisteredModelRow) -> None:
    """Changing a model takes registry write in its organisation and, for a model in a project, project write."""
    require(principal, Action.REGISTRY_WRITE, model.org_id, what="registered model")
    if model.project_id:
        project = s.get(RegistryProjectRow, model.project_id)
        if project is not None:
            require_project_write(s, principal, project)


def project_row(s: Session, principal: Principal, project_id: str, *, lock: bool = False) -> RegistryProjectRow:
    if not _PROJECT_ID.fullmatch(project_id):
        raise NotFound(f"Project {project_id!r} not found")
    q = select(RegistryProjectRow).where(RegistryProjectRow.id == project_id)
    row = s.scalar(q.with_for_update() if lock else q)
    if row is None or (row.org_id != principal.org_id and not principal.is_superuser):
        raise NotFound(f"Project {project_id!r} not found")
    return row


def project_row_by_owner(
    s: Session, principal: Principal, owner_username: str, name: str, *, lock: bool = False
) -> RegistryProjectRow:
    """The caller's organisation's project ``name`` owned by ``owner_username`` (Domino's ``{owner}/{project}``)."""
    for text in (owner_username, name):  # what no name can be (NUL, which PostgreSQL refuses in text) finds nothing
        if not text or len(text) > MAX_PROJECT_NAME or "\x00" in text:
            raise NotFound(f"Project {owner_username!r}/{name!r} not found")
    q = (
        select(RegistryProjectRow)
        .join(UserRow, UserRow.id == RegistryProjectRow.owner_id)
        .where(
            RegistryProjectRow.org_id == principal.org_id,
            RegistryProjectRow.name == name,
            UserRow.username == owner_username,
        )
    )
    row = s.scalar(q.with_for_update(of=RegistryProjectRow) if lock else q)
    if row is None:
        raise NotFound(f"Project {owner_username}/{name} not found")
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
        self, principal: Principal, name: str, *, description: str | None = None, owner_id: str | None = None
    ) -> Project:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="project")
        if not _PROJECT_NAME.fullmatch(name) or len(name) > MAX_PROJECT_NAME:
            raise InvalidInput(
                f"Invalid project name {name!r}: use 1 to {MAX_PROJECT_NAME} letters, digits, '_', '-' or '.'."
            )
        with self.db.uow() as s:
            owner = principal.user_id
            if owner_id not in (None, "", principal.user_id):
                if not is_org_admin(principal):
                    raise Forbidden("only an admin of the organisation may create a project for another user")
                owner = self._member(s, principal, owner_id)
            if s.scalar(
                select(RegistryProjectRow.id).where(
                    RegistryProjectRow.org_id == principal.org_id, func.lower(RegistryProjectRow.name) == name.lower()
                )
            ):
                raise Conflict(f"Project (name={name}) already exists.")
            row = RegistryProjectRow(
                id=new_hex(12),
                org_id=principal.org_id,
                name=name,
                owner_id=owner,
                description=description or "",
                stages=None,
                created_at=now(),
            )
            s.add(row)
            s.flush()
            return self._entity(s, row)

    def get_project(self, principal: Principal, project_id: str) -> Project:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            return self._entity(s, project_row(s, principal, project_id))

    def list_projects(self, principal: Principal) -> list[Project]:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            rows = s.scalars(
                select(RegistryProjectRow)
                .where(RegistryProjectRow.org_id == principal.org_id)
                .order_by(RegistryProjectRow.name)
            )
            return [self._entity(s, r) for r in rows]

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
            self._require_owner(principal, row)
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
            return self._entity(s, project_row_by_owner(s, principal, owner_username, name))

    def set_collaborator(self, principal: Principal, project_id: str, user_id: str, role: str) -> Project:
        canonical = {r.lower(): r for r in PROJECT_ROLES}
        if role.lower() not in canonical:
            raise InvalidInput(f"Invalid project role {role!r}: use one of {', '.join(PROJECT_ROLES)}.")
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            self._require_owner(principal, row)
            user = self._member(s, principal, user_id)
            existing = s.get(ProjectCollaboratorRow, (row.id, user))
            if existing is None:
                count = s.scalar(
                    select(func.count())
                    .select_from(ProjectCollaboratorRow)
                    .where(ProjectCollaboratorRow.project_id == row.id)
                )
                if count >= MAX_COLLABORATORS:
                    raise InvalidInput(f"A project may have at most {MAX_COLLABORATORS} collaborators.")
                s.add(ProjectCollaboratorRow(project_id=row.id, user_id=user, role=canonical[role.lower()]))
            else:
                existing.role = canonical[role.lower()]
            s.flush()
            return self._entity(s, row)

    def remove_collaborator(self, principal: Principal, project_id: str, user_id: str) -> Project:
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            self._require_owner(principal, row)
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
            self._require_owner(principal, row)
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
    def _require_owner(principal: Principal, row: RegistryProjectRow) -> None:
        require(principal, Action.REGISTRY_WRITE, row.org_id, what="project")
        if not (is_org_admin(principal) or row.owner_id == principal.user_id):
            raise Forbidden(f"only the owner of project {row.name!r} or an organisation admin may change it")

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
        owner = s.get(UserRow, row.owner_id) if row.owner_id else None
        collabs = s.execute(
            select(ProjectCollaboratorRow, UserRow.username)
            .join(UserRow, UserRow.id == ProjectCollaboratorRow.user_id)
            .where(ProjectCollaboratorRow.project_id == row.id)
            .order_by(UserRow.username)
        ).all()
        return Project(
            id=row.id,
            org_id=row.org_id,
            name=row.name,
            owner_id=row.owner_id,
            created_at=aware(row.created_at),
            description=row.description or "",
            owner_username=owner.username if owner else None,
            stages=tuple(json.loads(row.stages)) if row.stages else None,
            collaborators=tuple(Collaborator(c.user_id, name, c.role) for c, name in collabs),
        )


# --- shared with the project satellites (goals, repositories, access requests, copies) ---------------------------
def may_manage_project(principal: Principal, row: RegistryProjectRow) -> bool:
    """Whether the caller manages the project (its collaborators, settings, access requests): its owner or an
    admin of its organisation. A collaborator with the Owner role writes like a Contributor but does not manage."""
    return principal.can(Action.REGISTRY_WRITE, row.org_id) and (
        is_org_admin(principal) or row.owner_id == principal.user_id
    )


def require_project_owner(principal: Principal, row: RegistryProjectRow) -> None:
    """What :meth:`ProjectService.set_collaborator` asks: the project's owner or an organisation admin."""
    ProjectService._require_owner(principal, row)


def readable_project_row(
    s: Session, principal: Principal, project_id: str, *, lock: bool = False
) -> RegistryProjectRow:
    """The project ``project_id`` for a caller who may read projects (every member of its organisation)."""
    require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
    return project_row(s, principal, project_id, lock=lock)
