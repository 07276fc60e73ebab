"""Teams: groups of users inside one organisation, with a role each (``admin`` or ``member``) — what Domino calls
organizations. The organisation stays the tenant boundary: a team and its members all belong to one organisation,
and another organisation's teams are missing (404).

Who may do what (checked here, on the operation and the team):

- **Any member** of the organisation (role ``member`` or above) creates a team; they become its admin.
- **A team's members** read it; its **admins** add members, change their roles and remove them.
- **Organisation admins** (and superusers, in the organisation they act in) read and manage every team, and alone
  list all of the organisation's teams (Domino's ``ManageOrganizations``).
- A team always keeps an admin: the last one is neither removed nor made a member.

Members are read through the organisation's memberships: a user who leaves the organisation leaves its teams
too (their rows stay until the team is next changed, and are never shown).

Projects: a team can own projects — the projects work adds a nullable ``owner_team_id`` to projects; who may act
on a team-owned project is :meth:`TeamService.role_of` (the team's admins as owners, members as contributors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.directory import page_bounds
from modelharbor.core.identity import nameable
from modelharbor.core.ids import well_formed
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_people import TeamMemberRow, TeamRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

MAX_MEMBERS_AT_CREATION = 1000


class TeamRole(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


@dataclass(frozen=True)
class TeamMember:
    user_id: str
    username: str
    role: TeamRole


@dataclass(frozen=True)
class Team:
    id: str
    org_id: str
    name: str
    members: tuple[TeamMember, ...]
    created_at: datetime


@dataclass(frozen=True)
class Teams:
    items: list[Team]
    offset: int
    limit: int
    total: int


def team_role(value: object) -> TeamRole:
    try:
        return TeamRole(str(value).lower())
    except ValueError:
        raise InvalidInput(
            f"organizationRole must be member or admin, not {value!r}", field="organizationRole"
        ) from None


class TeamService:
    def __init__(self, db: Database):
        self.db = db

    # --- reading -------------------------------------------------------------------------------------
    def list_mine(self, principal: Principal, *, name: str | None = None, offset: int = 0, limit: int = 10) -> Teams:
        """The teams the caller is a member of, by name (``name``: that name exactly)."""
        offset, limit = page_bounds(offset, limit)
        with self.db.uow(readonly=True) as s:
            mine = select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == principal.user_id)
            q = select(TeamRow).where(TeamRow.org_id == principal.org_id, TeamRow.id.in_(mine))
            return self._page(s, principal, q, name=name, exact=True, offset=offset, limit=limit)

    def list_all(
        self,
        principal: Principal,
        *,
        name: str | None = None,
        user_id: str | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> Teams:
        """Every team of the organisation (admins): ``name`` a substring of the name (any case), ``user_id`` a
        member."""
        require(principal, Action.TEAM_MANAGE, principal.org_id, what="organisation")
        offset, limit = page_bounds(offset, limit)
        with self.db.uow(readonly=True) as s:
            q = select(TeamRow).where(TeamRow.org_id == principal.org_id)
            if user_id is not None:
                members = select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == user_id)
                q = q.where(TeamRow.id.in_(members))
            return self._page(s, principal, q, name=name, exact=False, offset=offset, limit=limit)

    def get(self, principal: Principal, team_id: str) -> Team:
        """A team: its members and organisation admins read it; other members of the organisation are refused."""
        with self.db.uow(readonly=True) as s:
            row = _team_row(s, principal, team_id)
            if self._role(s, principal, row) is None and not principal.can(Action.TEAM_MANAGE, row.org_id):
                raise Forbidden("only the team's members and the organisation's admins see a team")
            return _teams(s, [row])[0]

    def role_of(self, principal: Principal, team_id: str) -> TeamRole | None:
        """The caller's role in a team of their organisation (None: not a member) — what a team-owned object
        grants them."""
        with self.db.uow(readonly=True) as s:
            return self._role(s, principal, _team_row(s, principal, team_id))

    # --- changing ------------------------------------------------------------------------------------
    def create(self, principal: Principal, name: str, members: Sequence[tuple[str, TeamRole]] = ()) -> Team:
        """A new team named ``name`` (unique in the organisation) with ``members`` (user id, role); the creator is
        an admin of it whatever the list says about them."""
        require(principal, Action.TEAM_CREATE, principal.org_id, what="organisation")
        name = _name(name)
        if len(members) > MAX_MEMBERS_AT_CREATION:
            raise InvalidInput(f"at most {MAX_MEMBERS_AT_CREATION} members at creation", field="members")
        roles = {user_id: role for user_id, role in members}
        roles[principal.user_id] = TeamRole.ADMIN
        try:
            with self.db.uow() as s:
                for user_id in roles:
                    _org_member(s, principal.org_id, user_id)
                if s.scalar(select(TeamRow.id).where(TeamRow.org_id == principal.org_id, TeamRow.name == name)):
                    raise Conflict(f"a team named {name!r} already exists", code="DUPLICATE")
                row = TeamRow(
                    id=new_hex(12), org_id=principal.org_id, name=name, created_by=principal.user_id, created_at=now()
                )
                s.add(row)
                s.flush()
                s.add_all(TeamMemberRow(team_id=row.id, user_id=u, role=r.value) for u, r in roles.items())
                s.flush()
                return _teams(s, [row])[0]
        except IntegrityError:  # the same name, created at the same moment
            raise Conflict(f"a team named {name!r} already exists", code="DUPLICATE") from None

    def add_member(self, principal: Principal, team_id: str, user_id: str, role: TeamRole) -> Team:
        """Add a user of the organisation to the team, or give a member another role."""
        with self.db.uow() as s:
            row = _team_row(s, principal, team_id, lock=True)
            self._may_edit(s, principal, row)
            _org_member(s, row.org_id, user_id)
            member = s.get(TeamMemberRow, (row.id, user_id))
            if member is None:
                s.add(TeamMemberRow(team_id=row.id, user_id=user_id, role=role.value))
            else:
                if member.role == TeamRole.ADMIN and role != TeamRole.ADMIN:
                    _keep_an_admin(s, row, user_id)
                member.role = role.value
            s.flush()
            return _teams(s, [row])[0]

    def remove_member(self, principal: Principal, team_id: str, user_id: str) -> Team:
        with self.db.uow() as s:
            row = _team_row(s, principal, team_id, lock=True)
            self._may_edit(s, principal, row)
            member = s.get(TeamMemberRow, (row.id, user_id)) if well_formed(user_id) else None
            if member is None or s.get(MembershipRow, (row.org_id, user_id)) is None:
                raise NotFound(f"user {user_id!r} is not a member of the team", code="USER_NOT_FOUND")
            if member.role == TeamRole.ADMIN:
                _keep_an_admin(s, row, user_id)
            s.delete(member)
            s.flush()
            return _teams(s, [row])[0]

    # --- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _role(s: Session, principal: Principal, row: TeamRow) -> TeamRole | None:
        member = s.get(TeamMemberRow, (row.id, principal.user_id))
        return None if member is None else TeamRole(member.role)

    def _may_edit(self, s: Session, principal: Principal, row: TeamRow) -> None:
        role = self._role(s, principal, row)
        if role == TeamRole.ADMIN or principal.can(Action.TEAM_MANAGE, row.org_id):
            return
        if role is None:
            raise Forbidden("only the team's admins and the organisation's admins change a team")
        raise Forbidden("your role in the team is member: only its admins change its members")

    @staticmethod
    def _page(s: Session, principal, q, *, name: str | None, exact: bool, offset: int, limit: int) -> Teams:
        if name:
            if exact:
                q = q.where(TeamRow.name == name)
            else:
                q = q.where(func.lower(TeamRow.name).contains(name.lower(), autoescape=True))
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = list(s.scalars(q.order_by(TeamRow.name).offset(offset).limit(limit)))
        return Teams(_teams(s, rows), offset, limit, total)


def _name(name: object) -> str:
    if not nameable(name) or name != name.strip():
        raise InvalidInput(
            "name must be 1 to 200 printable characters, without leading or trailing spaces", field="name"
        )
    return name


def _team_row(s: Session, principal: Principal, team_id: str, *, lock: bool = False) -> TeamRow:
    q = select(TeamRow).where(TeamRow.id == team_id)
    row = s.scalar(q.with_for_update() if lock else q) if well_formed(team_id) else None
    if row is None or (row.org_id != principal.org_id and not principal.is_superuser):
        raise NotFound(f"organization {team_id!r} not found", code="TEAM_NOT_FOUND")
    return row


def _org_member(s: Session, org_id: str, user_id: object) -> None:
    if not well_formed(user_id) or s.get(MembershipRow, (org_id, user_id)) is None:
        raise NotFound(f"user {user_id!r} not found in this organisation", code="USER_NOT_FOUND")


def _keep_an_admin(s: Session, row: TeamRow, leaving: str) -> None:
    others = s.scalar(
        select(func.count())
        .select_from(TeamMemberRow)
        .join(MembershipRow, (MembershipRow.user_id == TeamMemberRow.user_id) & (MembershipRow.org_id == row.org_id))
        .where(TeamMemberRow.team_id == row.id, TeamMemberRow.role == TeamRole.ADMIN, TeamMemberRow.user_id != leaving)
    )
    if not others:
        raise InvalidInput("a team keeps at least one admin: make another member admin first", code="LAST_ADMIN")


def _teams(s: Session, rows: list[TeamRow]) -> list[Team]:
    """Teams with their current members (users still in the organisation), by username — two queries."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    members: dict[str, list[TeamMember]] = {i: [] for i in ids}
    q = (
        select(TeamMemberRow.team_id, UserRow.id, UserRow.username, TeamMemberRow.role, TeamRow.org_id)
        .join(UserRow, UserRow.id == TeamMemberRow.user_id)
        .join(TeamRow, TeamRow.id == TeamMemberRow.team_id)
        .join(MembershipRow, (MembershipRow.user_id == UserRow.id) & (MembershipRow.org_id == TeamRow.org_id))
        .where(TeamMemberRow.team_id.in_(ids))
        .order_by(UserRow.username)
    )
    for team_id, user_id, username, role, _org in s.execute(q):
        members[team_id].append(TeamMember(user_id, username, TeamRole(role)))
    return [Team(r.id, r.org_id, r.name, tuple(members[r.id]), aware(r.created_at)) for r in rows]
