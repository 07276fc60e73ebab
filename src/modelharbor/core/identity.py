"""Organisations, users, API keys and authentication into a :class:`Principal`.

Passwords are hashed with Argon2id. API keys are 256-bit random secrets, stored as SHA-256 (a KDF adds
nothing for keys of that entropy and would make every request slow); they are shown once, on creation.

A verified key is remembered in-process for at most :data:`KEY_CACHE_SECONDS` (by its SHA-256, never the
secret), so a busy client costs no database read per request. Revoking a key through this process drops it at
once; a revocation made by another process (another replica, the CLI) takes effect here within that time, as do
changes of the key owner's role or membership. Expiry is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.ids import find, well_formed
from modelharbor.db.engine import Database
from modelharbor.db.tables import ApiKeyRow, MembershipRow, OrganisationRow, UserRow
from modelharbor.domain.entities import ApiKey, Organisation, User
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from modelharbor.domain.principal import Action, Principal, Role, require

_hasher = PasswordHasher()
KEY_PREFIX = "mh_"
DEFAULT_ORG = "default"
TOUCH_EVERY = timedelta(minutes=1)
KEY_CACHE_SECONDS = 5.0  # how long a verified key is trusted without reading its row again
KEY_CACHE_MAX = 10_000  # entries; the cache is emptied when full (keys are few, callers reuse them)


@dataclass(frozen=True)
class _CachedKey:
    principal: Principal
    expires_at: datetime | None  # the key's own expiry
    until: float  # time.monotonic() after which the row is read again
    touched: float  # time.monotonic() of the last last_used_at update (or of the read that saw a fresh one)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _org(row: OrganisationRow) -> Organisation:
    return Organisation(row.id, row.name, aware(row.created_at))


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.email, row.is_superuser, aware(row.created_at))


def _key(row: ApiKeyRow, secret: str | None = None) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        org_id=row.org_id,
        name=row.name,
        prefix=row.prefix,
        created_at=aware(row.created_at),
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
        expires_at=aware(row.expires_at) if row.expires_at else None,
        secret=secret,
    )


class IdentityService:
    def __init__(self, db: Database):
        self.db = db
        self._key_cache: dict[str, _CachedKey] = {}
        self._key_cache_lock = threading.Lock()
        # bumped by every forget: a row read before a revocation committed is never remembered after it
        self._key_cache_generation = 0

    def forget_keys(self) -> None:
        """Drop every remembered key: the next request with any key reads its row again."""
        with self._key_cache_lock:
            self._key_cache.clear()
            self._key_cache_generation += 1

    def _forget_key(self, key_id: str | None) -> None:
        with self._key_cache_lock:
            for digest in [d for d, c in self._key_cache.items() if c.principal.key_id == key_id]:
                del self._key_cache[digest]
            self._key_cache_generation += 1

    # --- bootstrap (no principal: runs from the CLI / server start) ----------------------
    def ensure_org(self, name: str) -> Organisation:
        with self.db.uow() as s:
            row = s.scalar(select(OrganisationRow).where(OrganisationRow.name == name))
            if row is None:
                row = OrganisationRow(id=new_hex(), name=name, created_at=now())
                s.add(row)
            return _org(row)

    def has_users(self) -> bool:
        with self.db.uow(readonly=True) as s:
            return s.scalar(select(UserRow.id).limit(1)) is not None

    def ensure_admin(
        self, username: str, *, password: str | None = None, key: str | None = None, org_name: str = DEFAULT_ORG
    ) -> AdminCredentials:
        """Make sure ``username`` exists as a superuser, owner of ``org_name``, with ``password`` and ``key``.

        An admin without any key gets a generated one when ``key`` is None, and then a generated password too when
        ``password`` is None and it has none: the credentials of a first start. Generated secrets come back in the
        answer (their hashes alone are stored); nothing generated is None.
        """
        org = self.ensure_org(org_name)
        with self.db.uow() as s:
            user = s.scalar(select(UserRow).where(UserRow.username == username))
            if user is None:
                user = UserRow(id=new_hex(), username=username, is_superuser=True, created_at=now())
                s.add(user)
                s.flush()
            user.is_superuser = True
            if password is not None and not _password_ok(user.password_hash, password):
                user.password_hash = _hasher.hash(password)
            member = s.get(MembershipRow, (org.id, user.id))
            if member is None:
                s.add(MembershipRow(org_id=org.id, user_id=user.id, role=Role.OWNER.value))
            else:
                member.role = Role.OWNER.value
            generated_key = generated_password = None
            if key is not None:
                existing = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key)))
                if existing is None:
                    s.add(_new_key_row(user.id, org.id, "admin (from MODELHARBOR_ADMIN_KEY)", key))
                elif existing.user_id != user.id:
                    raise Conflict("MODELHARBOR_ADMIN_KEY is already the key of another user")
                else:
                    existing.revoked_at = None
            elif s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.user_id == user.id)) is None:
                generated_key = KEY_PREFIX + secrets.token_urlsafe(32)
                s.add(_new_key_row(user.id, org.id, "initial admin key", generated_key))
                if user.password_hash is None:
                    generated_password = secrets.token_urlsafe(18)  # 144 bits, 24 characters
                    user.password_hash = _hasher.hash(generated_password)
            out = AdminCredentials(_user(user), generated_key, generated_password)
        self.forget_keys()  # the admin's role and membership may have changed
        return out

    def reset_password(self, username: str, password: str) -> User:
        """Set ``username``'s password (server-side maintenance: ``modelharbor admin set-password``, which acts on
        the local database without a principal; users change theirs through the API)."""
        check_password(password)
        with self.db.uow() as s:
            user = s.scalar(select(UserRow).where(UserRow.username == username))
            if user is None:
                raise NotFound(f"no user {username!r}")
            user.password_hash = _hasher.hash(password)
            return _user(user)

    def create_user(
        self,
        principal: Principal,
        username: str,
        *,
        password: str | None = None,
        role: Role = Role.MEMBER,
        email: str | None = None,
    ) -> User:
        require(principal, Action.USER_MANAGE, principal.org_id, what="organisation")
        if not username or len(username) > 200:
            raise InvalidInput("username must be 1 to 200 characters")
        with self.db.uow() as s:
            if s.scalar(select(UserRow.id).where(UserRow.username == username)):
                raise Conflict(f"user {username!r} already exists")
            user = new_user_row(username, password or None, email=email)
            s.add(user)
            s.flush()
            s.add(MembershipRow(org_id=principal.org_id, user_id=user.id, role=Role(role).value))
            return _user(user)

    # --- organisations (superusers only) ----------------------------------------------------
    # An organisation owns its objects (files, models, projects, deployments …: every row carries its org_id); users
    # are its members with a role. Moving a user (:meth:`move_user`) moves the user, never objects.
    def create_org(self, principal: Principal, name: str) -> Organisation:
        """A new organisation, with the creating superuser as its owner (so keys can be made to act in it)."""
        _superuser(principal, "create organisations")
        name = _org_name(name)
        with self.db.uow() as s:
            if s.scalar(select(OrganisationRow.id).where(OrganisationRow.name == name)):
                raise Conflict(f"organisation {name!r} already exists")
            row = OrganisationRow(id=new_hex(), name=name, created_at=now())
            s.add(row)
            s.flush()
            s.add(MembershipRow(org_id=row.id, user_id=principal.user_id, role=Role.OWNER.value))
            return _org(row)

    def list_orgs(self, principal: Principal) -> list[OrgSummary]:
        """Every organisation, oldest first, with how many members it has."""
        _superuser(principal, "list organisations")
        with self.db.uow(readonly=True) as s:
            counts = dict(s.execute(select(MembershipRow.org_id, func.count()).group_by(MembershipRow.org_id)).all())
            rows = s.scalars(select(OrganisationRow).order_by(OrganisationRow.created_at, OrganisationRow.name))
            return [OrgSummary(r.id, r.name, aware(r.created_at), counts.get(r.id, 0)) for r in rows]

    def get_org(self, principal: Principal, org: str) -> OrgSummary:
        """One organisation by id or name."""
        _superuser(principal, "read organisations")
        with self.db.uow(readonly=True) as s:
            row = _org_row(s, org)
            members = s.scalar(select(func.count()).select_from(MembershipRow).where(MembershipRow.org_id == row.id))
            return OrgSummary(row.id, row.name, aware(row.created_at), members or 0)

    def rename_org(self, principal: Principal, org: str, name: str) -> OrgSummary:
        """Give an organisation (id or name) a new name. ``default`` is the organisation the server makes sure its
        configured admin owns at every start (by that name): it keeps its name, and no other takes it."""
        _superuser(principal, "rename organisations")
        name = _org_name(name)
        with self.db.uow() as s:
            row = _org_row(s, org, lock=True)
            if row.name != name:
                if DEFAULT_ORG in (row.name, name):
                    raise Conflict(
                        f"the organisation {DEFAULT_ORG!r} is where the server ensures its admin at every start: it "
                        "cannot be renamed, nor another renamed to it",
                        code="ORG_NAME_RESERVED",
                    )
                if s.scalar(select(OrganisationRow.id).where(OrganisationRow.name == name)):
                    raise Conflict(f"organisation {name!r} already exists")
                row.name = name
            members = s.scalar(select(func.count()).select_from(MembershipRow).where(MembershipRow.org_id == row.id))
            return OrgSummary(row.id, row.name, aware(row.created_at), members or 0)

    def org_members(self, principal: Principal, org: str) -> list[Member]:
        """The members of an organisation (id or name), by username."""
        _superuser(principal, "list an organisation's members")
        with self.db.uow(readonly=True) as s:
            row = _org_row(s, org)
            pairs = s.execute(
                select(UserRow, MembershipRow)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .where(MembershipRow.org_id == row.id)
                .order_by(UserRow.username)
            ).all()
            return [Member(u.id, u.username, row.id, Role(m.role), u.is_superuser) for u, m in pairs]

    def move_user(
        self,
        principal: Principal,
        user: str,
        org: str,
        *,
        role: str | None = None,
        from_org: str | None = None,
    ) -> Member:
        """Move a user (id or username) into ``org`` (id or name), out of the organisation they were in.

        - **Membership.** They leave ``from_org`` — needed only when they belong to several organisations besides
          ``org`` — and are a member of ``org`` with ``role``; without one, a new member is a ``member`` (a move
          grants no more than membership unless the superuser says so) and one already in ``org`` keeps their role.
        - **API keys.** Their keys that acted in the old organisation act in ``org`` from now on (same secrets, so
          their scripts keep working, now in the new organisation, with the new role). This process forgets every
          remembered key at once; other processes within :data:`KEY_CACHE_SECONDS`, as for a revocation. Tokens
          and sessions issued for the old organisation stop working (they name it; the user is no member of it).
        - **Objects** stay with the organisation that owns them (files, models, projects, deployments …): its admins
          keep managing them. The user can no longer reach them; their project roles there grant nothing while
          they are not a member, and come back if they return. Their open upload sessions there expire.

        Moving a user into the organisation they are only in just sets their role. The last owner of the old
        organisation may be moved out (superusers can still manage it).
        """
        _superuser(principal, "move users between organisations")
        new_role = None
        if role is not None:
            try:
                new_role = Role(str(role).lower())
            except ValueError:
                raise InvalidInput(f"unknown role {role!r}: use viewer, member, admin or owner", field="role") from None
        with self.db.uow() as s:
            target = _org_row(s, org, lock=True)
            person = _user_row(s, user)
            memberships = {
                m.org_id: m
                for m in s.scalars(select(MembershipRow).where(MembershipRow.user_id == person.id).with_for_update())
            }
            if from_org is not None:
                source = _org_row(s, from_org)
                if source.id not in memberships:
                    raise NotFound(f"user {person.username!r} is not a member of organisation {source.name!r}")
                leaving = [] if source.id == target.id else [source.id]
            else:
                leaving = [o for o in memberships if o != target.id]
                if len(leaving) > 1:
                    names = ", ".join(sorted(s.get(OrganisationRow, o).name for o in leaving))
                    raise InvalidInput(
                        f"user {person.username!r} is a member of several organisations ({names}): "
                        "say which one they leave (from_org)",
                        field="from_org",
                    )
            staying = memberships.get(target.id)
            if staying is None:
                staying = MembershipRow(org_id=target.id, user_id=person.id, role=(new_role or Role.MEMBER).value)
                s.add(staying)
            elif new_role is not None:
                staying.role = new_role.value
            for org_id in leaving:
                s.delete(memberships[org_id])
            if leaving:
                s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.user_id == person.id, ApiKeyRow.org_id.in_(leaving))
                    .values(org_id=target.id)
                )
            s.flush()
            out = Member(person.id, person.username, target.id, Role(staying.role), person.is_superuser)
        self.forget_keys()  # after the commit: no request here acts with the old organisation or role any more
        return out

    # --- authentication ------------------------------------------------------------------
    def cached_key(self, secret: str) -> Principal | None:
        """The principal of a key verified within the last :data:`KEY_CACHE_SECONDS`, without any I/O (for the
        event loop); None when :meth:`authenticate_key` has to run (unknown, stale, expired, or due a touch)."""
        cached = self._key_cache.get(hash_key(secret)) if secret and len(secret) <= 512 else None
        if cached is None:
            return None
        clock = time.monotonic()
        if clock >= cached.until or clock - cached.touched > TOUCH_EVERY.total_seconds():
            return None
        if cached.expires_at is not None and cached.expires_at <= now():
            return None
        return cached.principal

    def authenticate_key(self, secret: str) -> Principal:
        """The principal an API key acts as; raises Unauthenticated for unknown, revoked or expired keys."""
        if not secret or len(secret) > 512:
            raise Unauthenticated("missing or malformed API key")
        digest = hash_key(secret)
        cached = self._key_cache.get(digest)
        if cached is not None:
            clock = time.monotonic()
            if clock < cached.until:
                if cached.expires_at is not None and cached.expires_at <= now():
                    self._forget_key(cached.principal.key_id)
                    raise Unauthenticated("this API key has expired; get a new one, then run `modelharbor login`")
                if clock - cached.touched > TOUCH_EVERY.total_seconds():
                    self.touch_key(cached.principal.key_id)
                    with self._key_cache_lock:
                        if self._key_cache.get(digest) is cached:
                            self._key_cache[digest] = _CachedKey(
                                cached.principal, cached.expires_at, cached.until, clock
                            )
                return cached.principal
        generation = self._key_cache_generation
        with self.db.uow(readonly=True) as s:
            row = s.execute(
                select(ApiKeyRow, UserRow, MembershipRow)
                .join(UserRow, UserRow.id == ApiKeyRow.user_id)
                .join(
                    MembershipRow,
                    (MembershipRow.user_id == ApiKeyRow.user_id) & (MembershipRow.org_id == ApiKeyRow.org_id),
                )
                .where(ApiKeyRow.key_hash == digest)
            ).first()
        if row is None:
            raise Unauthenticated(
                "unknown API key; get one from an admin (`modelharbor keys create`), then run `modelharbor login`"
            )
        key, user, member = row
        if not hmac.compare_digest(key.key_hash, digest):
            raise Unauthenticated("unknown API key")
        if key.revoked_at is not None:
            raise Unauthenticated("this API key was revoked; get a new one, then run `modelharbor login`")
        if key.expires_at is not None and aware(key.expires_at) <= now():
            raise Unauthenticated("this API key has expired; get a new one, then run `modelharbor login`")
        clock = time.monotonic()
        touched = clock
        if key.last_used_at is None or now() - aware(key.last_used_at) > TOUCH_EVERY:
            self.touch_key(key.id)  # at most once a minute per key, so requests stay read-only
        else:
            touched = clock - (now() - aware(key.last_used_at)).total_seconds()
        principal = Principal(
            user_id=user.id,
            username=user.username,
            org_id=key.org_id,
            role=Role(member.role),
            is_superuser=user.is_superuser,
            key_id=key.id,
        )
        expires_at = aware(key.expires_at) if key.expires_at is not None else None
        entry = _CachedKey(principal, expires_at, clock + KEY_CACHE_SECONDS, touched)
        with self._key_cache_lock:
            if generation == self._key_cache_generation:  # no revocation since the row was read
                if len(self._key_cache) >= KEY_CACHE_MAX:
                    self._key_cache.clear()
                self._key_cache[digest] = entry
        return principal

    def authenticate_password(self, username: str, password: str, org_name: str | None = None) -> Principal:
        with self.db.uow(readonly=True) as s:
            user = s.scalar(select(UserRow).where(UserRow.username == username))
            if user is None or not _password_ok(user.password_hash, password):
                raise Unauthenticated("wrong username or password")
            q = select(MembershipRow, OrganisationRow).join(OrganisationRow, OrganisationRow.id == MembershipRow.org_id)
            q = q.where(MembershipRow.user_id == user.id)
            if org_name:
                q = q.where(OrganisationRow.name == org_name)
            member = s.execute(q.order_by(OrganisationRow.created_at)).first()
            if member is None:
                raise Unauthenticated("this user belongs to no organisation")
            return Principal(
                user_id=user.id,
                username=user.username,
                org_id=member[0].org_id,
                role=Role(member[0].role),
                is_superuser=user.is_superuser,
            )

    def authenticate_basic(self, username: str, password: str) -> Principal:
        """HTTP Basic credentials: a user's password, or else an API key given as the password (any username)."""
        try:
            return self.authenticate_password(username, password)
        except Unauthenticated:
            return self.authenticate_key(password)

    # --- API keys ------------------------------------------------------------------------
    def create_key(
        self, principal: Principal, name: str, *, username: str | None = None, expires_in_days: int | None = None
    ) -> ApiKey:
        """Create a key for the caller (or, for admins, for ``username`` in the caller's organisation)."""
        if not name or len(name) > 200:
            raise InvalidInput("key name must be 1 to 200 characters")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise InvalidInput("expires_in_days must be between 1 and 3650")
        with self.db.uow() as s:
            user_id = principal.user_id
            if username and username != principal.username:
                require(principal, Action.KEY_MANAGE_ANY, principal.org_id, what="user")
                target = s.scalar(
                    select(UserRow.id)
                    .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                    .where(UserRow.username == username, MembershipRow.org_id == principal.org_id)
                )
                if target is None:
                    raise NotFound(f"user {username!r} not found in this organisation")
                user_id = target
            else:
                require(principal, Action.KEY_MANAGE_OWN, principal.org_id, what="key")
            secret = KEY_PREFIX + secrets.token_urlsafe(32)
            row = _new_key_row(user_id, principal.org_id, name, secret)
            if expires_in_days:
                row.expires_at = now() + timedelta(days=expires_in_days)
            s.add(row)
            s.flush()
            return _key(row, secret)

    def list_keys(self, principal: Principal, *, all_users: bool = False, username: str | None = None) -> list[ApiKey]:
        """The caller's keys in their organisation; admins: everyone's there (``all_users``) or ``username``'s."""
        with self.db.uow(readonly=True) as s:
            q = select(ApiKeyRow).where(ApiKeyRow.org_id == principal.org_id)
            if username is not None and username != principal.username:
                require(principal, Action.KEY_MANAGE_ANY, principal.org_id, what="key")
                q = q.where(ApiKeyRow.user_id == _member_id(s, principal.org_id, username))
            elif all_users:
                require(principal, Action.KEY_MANAGE_ANY, principal.org_id, what="key")
            else:
                q = q.where(ApiKeyRow.user_id == principal.user_id)
            return [_key(r) for r in s.scalars(q.order_by(ApiKeyRow.created_at))]

    def revoke_key(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key by its id, or by a prefix of it (at least :data:`MIN_KEY_PREFIX` characters) that names one
        key among those the caller may revoke: their own, or (admins) every key of their organisation."""
        with self.db.uow() as s:
            row = find(s, ApiKeyRow, key_id)
            if row is None or row.org_id != principal.org_id:
                row = _key_by_prefix(s, principal, key_id)
            if row.user_id != principal.user_id:
                require(principal, Action.KEY_MANAGE_ANY, row.org_id, what="key")
            if row.revoked_at is None:
                row.revoked_at = now()
            out = _key(row)
        self._forget_key(out.id)  # after the commit, so no request can remember the row as it was before
        return out

    def touch_key(self, key_id: str) -> None:
        with self.db.uow() as s:
            s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now()))

    # --- admin helpers for the CLI (operate as the superuser of a named org) ---------------
    def principal_for(self, username: str, org_name: str = DEFAULT_ORG) -> Principal:
        with self.db.uow(readonly=True) as s:
            row = s.execute(
                select(UserRow, MembershipRow)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .join(OrganisationRow, OrganisationRow.id == MembershipRow.org_id)
                .where(UserRow.username == username, OrganisationRow.name == org_name)
            ).first()
            if row is None:
                raise NotFound(f"user {username!r} is not a member of organisation {org_name!r}")
            user, member = row
            return Principal(user.id, user.username, member.org_id, Role(member.role), user.is_superuser)

    def principal_by_ids(self, user_id: str, org_id: str) -> Principal:
        with self.db.uow(readonly=True) as s:
            row = s.execute(
                select(UserRow, MembershipRow)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .where(UserRow.id == user_id, MembershipRow.org_id == org_id)
            ).first()
            if row is None:
                raise Unauthenticated("this user is no longer a member of the organisation")
            user, member = row
            return Principal(user.id, user.username, member.org_id, Role(member.role), user.is_superuser)

    def org_name(self, org_id: str) -> str:
        with self.db.uow(readonly=True) as s:
            row = s.get(OrganisationRow, org_id)
            if row is None:
                raise NotFound(f"organisation {org_id!r} not found")
            return row.name

    def first_superuser(self) -> str | None:
        with self.db.uow(readonly=True) as s:
            return s.scalar(select(UserRow.username).where(UserRow.is_superuser).order_by(UserRow.created_at).limit(1))

    def home_org_id(self) -> str | None:
        """The server's home organisation: the one its bootstrap admin owns (``default``, which cannot be renamed)."""
        with self.db.uow(readonly=True) as s:
            return s.scalar(select(OrganisationRow.id).where(OrganisationRow.name == DEFAULT_ORG))


@dataclass(frozen=True)
class AdminCredentials:
    """The bootstrapped admin, and the secrets generated for it now (shown once; only their hashes are stored)."""

    user: User
    key: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class OrgSummary:
    id: str
    name: str
    created_at: datetime
    members: int


@dataclass(frozen=True)
class Member:
    """A user's membership of one organisation."""

    user_id: str
    username: str
    org_id: str
    role: Role
    is_superuser: bool


def _superuser(principal: Principal, what: str) -> None:
    if not principal.is_superuser:
        raise Forbidden(f"only a superuser may {what}")


def _org_name(name: object) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 200 or not name.isprintable() or name != name.strip():
        raise InvalidInput(
            "an organisation's name is 1 to 200 printable characters, without leading or trailing spaces",
            field="name",
        )
    return name


def _nameable(ref: object) -> bool:
    """A name some row could have: a string of at most 200 characters without control characters (PostgreSQL
    refuses NUL in a query, so such a name is "not found" before any lookup)."""
    return isinstance(ref, str) and 0 < len(ref) <= 200 and not any(ord(c) < 32 or c == "\x7f" for c in ref)


def _org_row(s, ref: str, *, lock: bool = False) -> OrganisationRow:
    """An organisation by id, else by name; NotFound if neither."""
    q = select(OrganisationRow)
    if lock:
        q = q.with_for_update()
    row = s.scalar(q.where(OrganisationRow.id == ref)) if well_formed(ref) else None
    if row is None and _nameable(ref):
        row = s.scalar(q.where(OrganisationRow.name == ref))
    if row is None:
        raise NotFound(f"organisation {ref!r} not found", code="ORG_NOT_FOUND")
    return row


def _user_row(s, ref: str) -> UserRow:
    """A user by id, else by username; NotFound if neither."""
    row = s.get(UserRow, ref) if well_formed(ref) else None
    if row is None and _nameable(ref):
        row = s.scalar(select(UserRow).where(UserRow.username == ref))
    if row is None:
        raise NotFound(f"user {ref!r} not found", code="USER_NOT_FOUND")
    return row


MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # Argon2 takes any length; the bound keeps one request cheap


def check_password(password: object, field: str = "password") -> str:
    """The password policy: a string of :data:`MIN_PASSWORD` to :data:`MAX_PASSWORD` characters, not only spaces,
    without NUL."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="WEAK_PASSWORD", field=field
        )
    if not password.strip() or "\x00" in password:
        raise InvalidInput("a password cannot be only spaces or hold NUL characters", code="WEAK_PASSWORD", field=field)
    return password


MIN_KEY_PREFIX = 6  # characters of a key id that may name it


def _key_by_prefix(s, principal: Principal, ref: str) -> ApiKeyRow:
    """The one key whose id starts with ``ref`` among the keys the caller may revoke — or the one such key not yet
    revoked (NotFound if none, Conflict if several: their ids are listed, so the caller can pick)."""
    ref = ref.lower() if isinstance(ref, str) else ref
    if not isinstance(ref, str) or not ref or len(ref) > 64 or any(c not in "0123456789abcdef" for c in ref):
        raise NotFound(f"API key {ref!r} not found")
    if len(ref) < MIN_KEY_PREFIX:
        raise InvalidInput(
            f"give at least {MIN_KEY_PREFIX} characters of the key's id (or all of it)", code="KEY_PREFIX_TOO_SHORT"
        )
    q = select(ApiKeyRow).where(ApiKeyRow.org_id == principal.org_id, ApiKeyRow.id.startswith(ref, autoescape=True))
    if not principal.can(Action.KEY_MANAGE_ANY, principal.org_id):
        q = q.where(ApiKeyRow.user_id == principal.user_id)
    rows = list(s.scalars(q.order_by(ApiKeyRow.id).limit(101)))
    if not rows:
        raise NotFound(f"API key {ref!r} not found")
    active = [r for r in rows if r.revoked_at is None]
    if len(rows) > 1 and len(active) == 1:
        return active[0]  # revoked keys do not make a prefix of the one live key ambiguous
    if len(rows) > 1:
        ids = [r.id for r in rows[:10]]
        raise Conflict(
            f"{ref!r} begins the ids of several keys ({', '.join(ids)}{' …' if len(rows) > 10 else ''}); give more "
            "of the id",
            code="AMBIGUOUS_KEY_PREFIX",
            key_ids=ids,
        )
    return rows[0]


def _member_id(s, org_id: str, username: str) -> str:
    """The id of ``username`` if a member of the organisation; NotFound otherwise."""
    user_id = (
        s.scalar(
            select(UserRow.id)
            .join(MembershipRow, MembershipRow.user_id == UserRow.id)
            .where(UserRow.username == username, MembershipRow.org_id == org_id)
        )
        if _nameable(username)
        else None
    )
    if user_id is None:
        raise NotFound(f"user {username!r} not found in this organisation", code="USER_NOT_FOUND")
    return user_id


def _password_ok(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _new_key_row(user_id: str, org_id: str, name: str, secret: str) -> ApiKeyRow:
    return ApiKeyRow(
        id=new_hex(8),
        user_id=user_id,
        org_id=org_id,
        name=name,
        prefix=secret[:8],
        key_hash=hash_key(secret),
        created_at=now(),
        last_used_at=None,
        revoked_at=None,
        expires_at=None,
    )


def hash_password(password: str) -> str:
    """The Argon2id hash every password is stored as."""
    return _hasher.hash(password)


def new_user_row(username: str, password: str | None, *, email: str | None = None) -> UserRow:
    """A new (not superuser) user's row, with the hash of ``password`` or none."""
    return UserRow(
        id=new_hex(),
        username=username,
        email=email,
        is_superuser=False,
        created_at=now(),
        password_hash=hash_password(password) if password is not None else None,
    )


# What core/users.py (user administration) shares with this module.
password_matches = _password_ok
org_row = _org_row
user_row = _user_row
nameable = _nameable
