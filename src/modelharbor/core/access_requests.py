"""Access requests: a member of the organisation asks for a collaborator role on a project (Domino's op 136,
``POST /api/registeredmodels/v1/access/{projectId}``); the project's owner or an organisation admin approves it,
which grants the role (core/projects.py ``set_collaborator`` rules), or declines it.

Every member may already read the organisation's projects; what a request asks for is a role, by default
``Contributor`` (changing the project's files and models). A user has at most one open (``Pending``) request per
project: asking again while one is open answers that one (its role updated). The project's owner cannot ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.ids import find
from modelharbor.core.projects import (
    MAX_COLLABORATORS,
    PROJECT_ROLES,
    ProjectService,
    is_org_admin,
    readable_project_row,
    require_project_owner,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_collab import ProjectAccessRequestRow
from modelharbor.db.tables_people import TeamMemberRow
from modelharbor.db.tables_registry import ProjectCollaboratorRow, RegistryProjectRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

PENDING, APPROVED, DECLINED = "Pending", "Approved", "Declined"
STATUSES = (PENDING, APPROVED, DECLINED)
DEFAULT_ROLE = "Contributor"
MAX_MESSAGE = 2000
MAX_PAGE = 500


@dataclass(frozen=True)
class AccessRequest:
    id: str
    project_id: str
    project_name: str
    user_id: str
    username: str | None
    role: str
    message: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


def project_role(role: str | None) -> str:
    """A role of PROJECT_ROLES in its v4 spelling, given in any case (None: the default)."""
    if role is None or role == "":
        return DEFAULT_ROLE
    for known in PROJECT_ROLES:
        if known.lower() == role.lower():
            return known
    raise InvalidInput(f"Invalid project role {role!r}: use one of {', '.join(PROJECT_ROLES)}.", field="role")


class AccessRequestService:
    def __init__(self, db: Database, projects: ProjectService):
        self.db = db
        projects.on_delete.append(self._delete_project_requests)

    def request(
        self, principal: Principal, project_id: str, *, role: str | None = None, message: str | None = None
    ) -> AccessRequest:
        """Ask for ``role`` on the project (any member of its organisation)."""
        role = project_role(role)
        if message is not None and len(message) > MAX_MESSAGE:
            raise InvalidInput(f"'message' must be at most {MAX_MESSAGE} characters", field="message")
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True, contents=False)
            if project.owner_id == principal.user_id:
                raise InvalidInput(f"You own project {project.name!r}: there is no access to ask for.")
            R = ProjectAccessRequestRow
            row = s.scalar(
                select(R).where(R.project_id == project.id, R.user_id == principal.user_id, R.status == PENDING)
            )
            if row is None:
                open_count = s.scalar(select(func.count()).where(R.project_id == project.id, R.status == PENDING))
                if open_count >= MAX_COLLABORATORS:
                    raise InvalidInput(f"Project {project.name!r} has {open_count} open access requests already.")
                row = R(
                    id=new_hex(12),
                    project_id=project.id,
                    user_id=principal.user_id,
                    status=PENDING,
                    created_at=now(),
                    message="",
                )
                s.add(row)
            row.role = role
            if message is not None:
                row.message = message
            s.flush()
            return self._entity(s, row, project)

    def list_for_project(
        self, principal: Principal, project_id: str, *, status: str | None = PENDING
    ) -> list[AccessRequest]:
        """The project's requests (only open ones by default), oldest first: for its owner and admins."""
        status = _status(status)
        with self.db.uow(readonly=True) as s:
            project = readable_project_row(s, principal, project_id)
            require_project_owner(s, principal, project)
            R = ProjectAccessRequestRow
            q = select(R).where(R.project_id == project.id)
            if status:
                q = q.where(R.status == status)
            rows = s.scalars(q.order_by(R.created_at, R.id).limit(MAX_PAGE))
            return [self._entity(s, r, project) for r in rows]

    def list_mine(self, principal: Principal, *, status: str | None = PENDING) -> list[AccessRequest]:
        """Requests the caller decides (on projects it owns or its teams own as their admin; every project of the
        organisation for an admin) or made, oldest first."""
        status = _status(status)
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            R, P = ProjectAccessRequestRow, RegistryProjectRow
            q = select(R, P).join(P, P.id == R.project_id).where(P.org_id == principal.org_id)
            if not is_org_admin(principal):
                led = select(TeamMemberRow.team_id).where(
                    TeamMemberRow.user_id == principal.user_id, TeamMemberRow.role == "admin"
                )
                q = q.where(
                    or_(P.owner_id == principal.user_id, P.owner_team_id.in_(led), R.user_id == principal.user_id)
                )
            if status:
                q = q.where(R.status == status)
            rows = s.execute(q.order_by(R.created_at, R.id).limit(MAX_PAGE)).all()
            return [self._entity(s, r, p) for r, p in rows]

    def decide(
        self, principal: Principal, project_id: str, request_id: str, *, approve: bool, role: str | None = None
    ) -> AccessRequest:
        """Approve (granting ``role``, else the role asked for) or decline an open request."""
        granted = project_role(role) if role else None
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            row = find(s, ProjectAccessRequestRow, request_id)
            if row is None or row.project_id != project.id:
                raise NotFound(f"Access request {request_id!r} not found in project {project.name!r}")
            require_project_owner(s, principal, project)
            if row.status != PENDING:
                raise InvalidInput(f"Access request {request_id} is {row.status.lower()} already.")
            row.status = APPROVED if approve else DECLINED
            row.decided_by, row.decided_at = principal.user_id, now()
            if approve:
                row.role = granted or row.role
                self._grant(s, project, row.user_id, row.role)
            s.flush()
            return self._entity(s, row, project)

    @staticmethod
    def _grant(s: Session, project: RegistryProjectRow, user_id: str, role: str) -> None:
        if project.owner_id == user_id:
            return
        if s.get(MembershipRow, (project.org_id, user_id)) is None:
            raise InvalidInput("The user who asked is no longer a member of this organisation: decline the request.")
        existing = s.get(ProjectCollaboratorRow, (project.id, user_id))
        if existing is not None:
            existing.role = role
            return
        count = s.scalar(select(func.count()).where(ProjectCollaboratorRow.project_id == project.id))
        if count >= MAX_COLLABORATORS:
            raise InvalidInput(f"A project may have at most {MAX_COLLABORATORS} collaborators.")
        s.add(ProjectCollaboratorRow(project_id=project.id, user_id=user_id, role=role))

    @staticmethod
    def _entity(s: Session, r: ProjectAccessRequestRow, project: RegistryProjectRow) -> AccessRequest:
        user = s.get(UserRow, r.user_id)
        return AccessRequest(
            r.id, r.project_id, project.name, r.user_id, user.username if user else None, r.role, r.message or "",
            r.status, aware(r.created_at), r.decided_by, aware(r.decided_at) if r.decided_at else None,
        )  # fmt: skip

    @staticmethod
    def _delete_project_requests(s: Session, project_id: str) -> list[str]:
        s.execute(delete(ProjectAccessRequestRow).where(ProjectAccessRequestRow.project_id == project_id))
        return []


def _status(status: str | None) -> str | None:
    if status is None or status == "" or status.lower() == "all":
        return None
    for known in STATUSES:
        if known.lower() == status.lower():
            return known
    raise InvalidInput(f"'status' must be one of {', '.join(STATUSES)} or all, not {status!r}", field="status")
