"""User administration through the API: list, create, read, set a password, delete.

Who may do what (checked here, on the operation and the user it touches; docs/api.md, "Users"):

- **Superusers** manage every user, in any organisation (``org`` names one: its id or name).
- **Organisation admins** (and owners) manage the users of their own organisation: they see and create them
  there, set their passwords and remove them. They never act on a superuser, on a user whose role there is above
  theirs, or give a role above their own. A password is the user's everywhere: an admin sets one only for a user
  who belongs to no other organisation (else a superuser must), so no admin can sign in to another
  organisation as its member. Users of other organisations are missing to them (404), as every other object is.
- **Every user** reads their own record and changes their own password, with the current one when they have
  one.

Passwords: at least :data:`MIN_PASSWORD` characters (at most :data:`MAX_PASSWORD`), hashed with Argon2id as
every password is (``core/identity.py``); never returned.

Deleting a user removes them from the organisation: their membership goes and their API keys there are revoked
(this process forgets them at once; other processes within the key cache's few seconds); their open upload sessions
there expire (the next sweep removes them). What they made stays with the organisation. A user who then belongs to
no organisation is deleted for good (their username becomes free); the files, upload sessions and imports that name
them as their owner name the admin who deleted them instead. Nobody deletes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, now
from modelharbor.core.files.uploads import OPEN
from modelharbor.core.identity import (
    IdentityService,
    check_password,
    hash_password,
    nameable,
    new_user_row,
    org_row,
    password_matches,
    user_row,
)
from modelharbor.db.tables import (
    ApiKeyRow,
    FileRow,
    ImportedModelRow,
    MembershipRow,
    OrganisationRow,
    UploadSessionRow,
    UserRow,
)
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import RANK, Action, Principal, Role, require

_ID_LIKE = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class UserInfo:
    """A user as one organisation sees them: their membership's organisation and role."""

    id: str
    username: str
    org_id: str
    role: Role
    is_superuser: bool
    created_at: datetime
    has_password: bool


def _username(name: object) -> str:
    if not nameable(name) or name != name.strip() or not name.isprintable():
        raise InvalidInput(
            "a username is 1 to 200 printable characters, without leading or trailing spaces", field="username"
        )
    if len(name) == 32 and set(name) <= _ID_LIKE:
        raise InvalidInput("a username cannot look like a user id (32 hex digits)", field="username")
    return name


def _role(role: object) -> Role:
    try:
        return Role(str(role).lower())
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}: use viewer, member, admin or owner", field="role") from None


class UserAdminService:
    """Users through the API (the module docstring says who may do what)."""

    def __init__(self, identity: IdentityService):
        self.identity = identity
        self.db = identity.db

    # --- reading ---------------------------------------------------------------------------------
    def list_users(self, principal: Principal, *, org: str | None = None) -> list[UserInfo]:
        """The users of an organisation by username: the caller's (admins), or ``org`` (superusers; without it, every
        membership of every organisation)."""
        with self.db.uow(readonly=True) as s:
            q = select(UserRow, MembershipRow).join(MembershipRow, MembershipRow.user_id == UserRow.id)
            if org is not None or not principal.is_superuser:
                org_id = self._org_of(s, principal, org)
                require(principal, Action.USER_MANAGE, org_id, what="organisation")
                q = q.where(MembershipRow.org_id == org_id)
            pairs = s.execute(q.order_by(UserRow.username, MembershipRow.org_id)).all()
            return [_info(u, m) for u, m in pairs]

    def get_user(self, principal: Principal, user: str) -> UserInfo:
        """One user (id or username): yourself, a user of your organisation (admins), anyone (superusers)."""
        with self.db.uow(readonly=True) as s:
            row, member = self._visible(s, principal, user)
            if row.id != principal.user_id:
                require(principal, Action.USER_MANAGE, member.org_id, what=f"user {user!r}")
            return _info(row, member)

    # --- changing --------------------------------------------------------------------------------
    def add_user(
        self,
        principal: Principal,
        username: str,
        *,
        password: str | None = None,
        role: str | None = None,
        org: str | None = None,
    ) -> UserInfo:
        """A new user, member of the caller's organisation (or ``org``, superusers) with ``role`` (default
        ``member``; at most the caller's own), with ``password`` or none (keys only)."""
        with self.db.uow() as s:
            org_id = self._org_of(s, principal, org, lock=True)
            require(principal, Action.USER_MANAGE, org_id, what="organisation")
            username = _username(username)
            new_role = _role(role) if role is not None else Role.MEMBER
            if not principal.is_superuser and RANK[new_role] > RANK[principal.role]:
                raise Forbidden(f"your role '{principal.role}' may not give the role '{new_role}'")
            if password is not None:
                check_password(password)
            if s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                raise Conflict(f"user {username!r} already exists", code="USER_EXISTS")
            row = new_user_row(username, password)
            s.add(row)
            s.flush()
            member = MembershipRow(org_id=org_id, user_id=row.id, role=new_role.value)
            s.add(member)
            s.flush()
            return _info(row, member)

    def set_password(
        self, principal: Principal, user: str, password: str, *, current_password: str | None = None
    ) -> UserInfo:
        """Set a user's password: your own (with ``current_password`` when you have one), or, for admins, that of a
        user of your organisation who belongs to no other (superusers: anyone's)."""
        with self.db.uow() as s:
            row, member = self._visible(s, principal, user, lock=True)
            if row.id == principal.user_id:
                if row.password_hash is not None and not (
                    isinstance(current_password, str) and password_matches(row.password_hash, current_password)
                ):
                    raise Forbidden(
                        "to change your own password, send your current one as current_password",
                        code="WRONG_PASSWORD",
                    )
            else:
                self._may_manage(s, principal, row, member, "set the password of")
                if not principal.is_superuser and self._other_orgs(s, row.id, member.org_id):
                    raise Forbidden(
                        f"user {row.username!r} also belongs to another organisation: a password is theirs everywhere, "
                        "so only a superuser may set it"
                    )
            row.password_hash = hash_password(check_password(password))
            return _info(row, member)

    def delete_user(self, principal: Principal, user: str) -> None:
        """Remove a user (id or username) from the caller's organisation (the module docstring says what goes and
        what stays); superusers remove them from every organisation."""
        with self.db.uow() as s:
            row, member = self._visible(s, principal, user, lock=True)
            if row.id == principal.user_id:
                raise Conflict("you cannot delete yourself; ask another admin", code="CANNOT_DELETE_SELF")
            self._may_manage(s, principal, row, member, "delete")
            leaving = (
                list(s.scalars(select(MembershipRow.org_id).where(MembershipRow.user_id == row.id)))
                if principal.is_superuser
                else [member.org_id]
            )
            s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.user_id == row.id, ApiKeyRow.org_id.in_(leaving), ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            s.execute(
                update(UploadSessionRow)
                .where(
                    UploadSessionRow.owner_id == row.id,
                    UploadSessionRow.org_id.in_(leaving),
                    UploadSessionRow.state == OPEN,
                )
                .values(expires_at=now())
            )
            for m in s.scalars(select(MembershipRow).where(MembershipRow.user_id == row.id)):
                if m.org_id in leaving:
                    s.delete(m)
            s.flush()
            if s.scalar(select(MembershipRow.org_id).where(MembershipRow.user_id == row.id).limit(1)) is None:
                for table in (FileRow, UploadSessionRow, ImportedModelRow):
                    s.execute(update(table).where(table.owner_id == row.id).values(owner_id=principal.user_id))
                s.delete(row)  # memberships, keys, project roles and UFDL numbers go with it (ON DELETE)
        self.identity.forget_keys()  # after the commit: no request here acts with their keys any more

    # --- who sees and manages whom ---------------------------------------------------------------
    @staticmethod
    def _org_of(s: Session, principal: Principal, org: str | None, *, lock: bool = False) -> str:
        """The organisation a call is about: the caller's, or ``org`` (id or name), which only a superuser may name
        when it is another one (to others, another organisation is missing)."""
        if org is None:
            return principal.org_id
        try:
            row = org_row(s, org, lock=lock)
        except NotFound:
            raise NotFound(f"organisation {org!r} not found", code="ORG_NOT_FOUND") from None
        if row.id != principal.org_id and not principal.is_superuser:
            raise NotFound(f"organisation {org!r} not found", code="ORG_NOT_FOUND")
        return row.id

    @staticmethod
    def _visible(s: Session, principal: Principal, user: str, *, lock: bool = False) -> tuple[UserRow, MembershipRow]:
        """The user and their membership of the caller's organisation (a superuser also sees users elsewhere: their
        first membership). Anyone else's is missing."""
        missing = NotFound(f"user {user!r} not found", code="USER_NOT_FOUND")
        try:
            row = user_row(s, user)
        except NotFound:
            raise missing from None
        if lock:
            s.execute(select(UserRow.id).where(UserRow.id == row.id).with_for_update())
        members = {
            m.org_id: m
            for m in s.scalars(
                select(MembershipRow)
                .join(OrganisationRow, OrganisationRow.id == MembershipRow.org_id)
                .where(MembershipRow.user_id == row.id)
                .order_by(OrganisationRow.created_at)
            )
        }
        member = members.get(principal.org_id)
        if member is None and principal.is_superuser and members:
            member = next(iter(members.values()))
        if member is None:
            raise missing
        return row, member

    @staticmethod
    def _may_manage(s: Session, principal: Principal, row: UserRow, member: MembershipRow, what: str) -> None:
        require(principal, Action.USER_MANAGE, member.org_id, what=f"user {row.username!r}")
        if principal.is_superuser:
            return
        if row.is_superuser:
            raise Forbidden(f"only a superuser may {what} a superuser")
        if RANK[Role(member.role)] > RANK[principal.role]:
            raise Forbidden(f"your role '{principal.role}' may not {what} a user whose role is '{member.role}'")

    @staticmethod
    def _other_orgs(s: Session, user_id: str, org_id: str) -> bool:
        q = select(MembershipRow.org_id).where(MembershipRow.user_id == user_id, MembershipRow.org_id != org_id)
        return s.scalar(q.limit(1)) is not None


def _info(row: UserRow, member: MembershipRow) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        org_id=member.org_id,
        role=Role(member.role),
        is_superuser=row.is_superuser,
        created_at=aware(row.created_at),
        has_password=row.password_hash is not None,
    )
