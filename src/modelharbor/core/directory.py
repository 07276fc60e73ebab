"""Users as callers see them: who am I, and the people of my organisation (the Domino dialect's users).

Every member of an organisation sees the other members (to name reviewers and collaborators); users of other
organisations are not visible. A superuser sees the members of the organisation they act in, like anyone: the
tenant boundary is the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from modelharbor.core.clock import aware
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, Role, require

MAX_PAGE = 1000


@dataclass(frozen=True)
class Person:
    """A user with their role in the organisation the caller sees them from."""

    id: str
    username: str
    email: str | None
    role: Role
    is_superuser: bool
    created_at: datetime


@dataclass(frozen=True)
class People:
    items: list[Person]
    offset: int
    limit: int
    total: int


def page_bounds(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise InvalidInput("offset must be 0 or more", field="offset")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return offset, limit


class DirectoryService:
    def __init__(self, db: Database):
        self.db = db

    def me(self, principal: Principal) -> Person:
        """The caller, as their organisation sees them."""
        with self.db.uow(readonly=True) as s:
            row = s.get(UserRow, principal.user_id)
            if row is None:  # deleted since the key was cached
                raise NotFound("your user no longer exists", code="USER_NOT_FOUND")
            return _person(row, principal.role)

    def visible_users(self, principal: Principal, *, offset: int = 0, limit: int = 10) -> People:
        """The members of the caller's organisation by username, a page of them and how many there are."""
        require(principal, Action.USER_READ, principal.org_id, what="organisation")
        offset, limit = page_bounds(offset, limit)
        with self.db.uow(readonly=True) as s:
            members = (
                select(UserRow, MembershipRow.role)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .where(MembershipRow.org_id == principal.org_id)
            )
            total = s.scalar(select(func.count()).select_from(members.subquery())) or 0
            rows = s.execute(members.order_by(UserRow.username).offset(offset).limit(limit)).all()
            return People([_person(u, Role(r)) for u, r in rows], offset, limit, total)


def _person(row: UserRow, role: Role) -> Person:
    return Person(row.id, row.username, row.email, role, row.is_superuser, aware(row.created_at))
