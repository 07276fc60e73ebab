"""Data sources (Domino's): named connection settings for external stores — S3 and S3-compatible object stores,
PostgreSQL, MySQL/MariaDB, Snowflake, generic JDBC and ODBC — that an organisation's users share.

Each type has its documented configuration fields (:data:`TYPES`: which are required, which optional) and auth
types (which credential fields are visible, like a user name or an access key id, and which are secret, like a
password, a secret key or a token). Secret credentials are sealed at rest with
:class:`~modelharbor.core.secretbox.SecretBox` (purpose ``data-sources``) and never returned: callers see the
data source's settings only. A *Shared* data source has one set of credentials (set by its owner or an
organisation admin); an *Individual* one has a set per user, each user setting their own.

Who may do what: the owner, an organisation admin, every member when ``isEveryone``, and the users and teams
(Domino's organizations) named in ``userAndOrganizationIds`` see and use a data source; its owner and the
organisation's admins change its configuration and permissions; its owner deletes it. Other organisations' data
sources are missing (404). Every create, update, permission change and delete — and every connection test — is
written to an audit log that the organisation's admins read (:meth:`DataSourceService.audit`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core import data_source_probe
from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.identity import nameable
from modelharbor.core.ids import find, well_formed
from modelharbor.core.secretbox import SecretBox, SecretUnreadable
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_data_sources import (
    DataSourceAuditRow,
    DataSourceCredentialRow,
    DataSourceGrantRow,
    DataSourceRow,
)
from modelharbor.db.tables_people import TeamMemberRow, TeamRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal

SHARED = "*"  # the holder of a Shared data source's credentials
CREDENTIAL_TYPES = ("Shared", "Individual")
MAX_VALUE = 4096
MAX_GRANTEES = 1000
MAX_AUDIT = 10_000
MAX_DESCRIPTION = 10_000
TEST_TIMEOUT = 5.0  # seconds, for a connection test


@dataclass(frozen=True)
class Kind:
    """A data source type: its configuration fields and, per auth type, its (visible, secret) credential fields."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    auth: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]


_BASIC = {"Basic": (("username",), ("password",))}
_AWS = {"AWSIAMBasic": (("accessKeyID",), ("secretAccessKey",))}
TYPES: dict[str, Kind] = {
    "S3Config": Kind(("bucket",), ("region", "subfolder"), _AWS),
    # an S3-compatible store (MinIO, Ceph, ...): host is its endpoint, a URL or a host name (https)
    "GenericS3Config": Kind(("bucket", "host"), ("port", "region", "subfolder"), _AWS),
    "PostgreSQLConfig": Kind(("host", "database"), ("port", "schema", "sslmode"), _BASIC),
    "MySQLConfig": Kind(("host", "database"), ("port",), _BASIC),
    "MariaDBConfig": Kind(("host", "database"), ("port",), _BASIC),
    "SnowflakeConfig": Kind(
        ("account",), ("warehouse", "database", "schema", "role"), {**_BASIC, "OAuth": ((), ("token",))}
    ),
    "GenericJDBCConfig": Kind(("jdbcUrl",), ("driverClass",), {**_BASIC, "NoAuth": ((), ())}),
    "GenericODBCConfig": Kind(("connectionString",), ("driver",), {**_BASIC, "NoAuth": ((), ())}),
}
_BY_LOWER = {t.lower(): t for t in TYPES} | {t.lower().removesuffix("config"): t for t in TYPES}

# Domino's DataSourceAuditEventKindV1, and ModelHarbor's own for configuration and credential changes
EVENT_KINDS = (
    "AccessDataSource",
    "CreateDataSource",
    "DataSourceAssociatedToProject",
    "DataSourceDissociatedFromProject",
    "DataSourceChangeOfOwnership",
    "DataSourceChangeOfPermissions",
    "DeleteDataSource",
    "DataSourceChangeOfConfig",
    "DataSourceChangeOfCredentials",
)


@dataclass(frozen=True)
class Credentials:
    visible: Mapping[str, str] = field(default_factory=dict)  # user names, access key ids: kept in clear
    secret: Mapping[str, str] = field(default_factory=dict)  # passwords, secret keys, tokens: sealed, never shown


@dataclass(frozen=True)
class Permissions:
    is_everyone: bool = False
    grantee_ids: tuple[str, ...] = ()  # users (ids or usernames) and teams (ids) of the organisation


@dataclass(frozen=True)
class NewDataSource:
    name: str
    data_source_type: str
    auth_type: str
    credential_type: str
    config: Mapping[str, str]
    credentials: Credentials
    permissions: Permissions
    description: str = ""


@dataclass(frozen=True)
class DataSourceUpdate:
    config: Mapping[str, str] | None = None  # keys given replace theirs; an empty value removes an optional one
    credentials: Credentials | None = None  # the shared set (Shared) or the caller's own (Individual)
    permissions: Permissions | None = None


@dataclass(frozen=True)
class DataSource:
    """What anyone allowed to see a data source is shown: never a secret."""

    id: str
    org_id: str
    name: str
    data_source_type: str
    auth_type: str
    credential_type: str
    description: str
    config: Mapping[str, str]
    is_everyone: bool
    grantee_ids: tuple[str, ...]
    owner_id: str | None
    owner_username: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    data_source_id: str
    data_source_name: str
    data_source_type: str
    event_kind: str
    details: Mapping[str, str]
    performed_by: str
    timestamp: datetime


@dataclass(frozen=True)
class AuditQuery:
    data_source_ids: tuple[str, ...] = ()
    data_source_names: tuple[str, ...] = ()
    event_kinds: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    message: str
    data_source_type: str
    elapsed_ms: int


class DataSourceService:
    def __init__(self, db: Database, secret_key: str):
        self.db = db
        self._box = SecretBox(secret_key, "data-sources")

    # --- reading -----------------------------------------------------------------------------------------------
    def list(
        self, principal: Principal, *, names: Iterable[str] = (), offset: int = 0, limit: int = 10
    ) -> tuple[list[DataSource], int]:
        """The data sources the caller may see (by name), a page of them and how many there are."""
        names = [n for n in names if isinstance(n, str) and n]
        with self.db.uow(readonly=True) as s:
            q = select(DataSourceRow).where(DataSourceRow.org_id == principal.org_id)
            if not _is_admin(principal):
                q = q.where(_visible_clause(s, principal))
            if names:  # a name no row could have (a NUL, …) finds nothing
                q = q.where(DataSourceRow.name.in_([n for n in names if nameable(n)]))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.scalars(q.order_by(DataSourceRow.name).offset(offset).limit(limit)).all()
            return [self._entity(s, r) for r in rows], total

    def get(self, principal: Principal, data_source_id: str) -> DataSource:
        with self.db.uow(readonly=True) as s:
            return self._entity(s, self._visible_row(s, principal, data_source_id))

    def audit(self, principal: Principal, query: AuditQuery) -> list[AuditEvent]:
        """The organisation's audit events, oldest first (at most :data:`MAX_AUDIT`, the newest): admins only."""
        if not _is_admin(principal):
            raise Forbidden("only an admin of the organisation reads the data-source audit log")
        for kind in query.event_kinds:
            if kind not in EVENT_KINDS:
                raise InvalidInput(f"'eventKinds': {kind!r} is not one of {', '.join(EVENT_KINDS)}", field="eventKinds")
        with self.db.uow(readonly=True) as s:
            q = select(DataSourceAuditRow).where(DataSourceAuditRow.org_id == principal.org_id)
            if query.data_source_ids:
                q = q.where(DataSourceAuditRow.data_source_id.in_([i for i in query.data_source_ids if well_formed(i)]))
            if query.data_source_names:
                q = q.where(
                    DataSourceAuditRow.data_source_name.in_([n for n in query.data_source_names if nameable(n)])
                )
            if query.event_kinds:
                q = q.where(DataSourceAuditRow.event_kind.in_(query.event_kinds))
            if query.start is not None:
                q = q.where(DataSourceAuditRow.at >= query.start)
            if query.end is not None:
                q = q.where(DataSourceAuditRow.at <= query.end)
            rows = s.scalars(q.order_by(DataSourceAuditRow.at.desc(), DataSourceAuditRow.id).limit(MAX_AUDIT)).all()
            return [_event(r) for r in reversed(rows)]

    # --- writing -----------------------------------------------------------------------------------------------
    def create(self, principal: Principal, new: NewDataSource) -> DataSource:
        name = _name(new.name)
        kind_name, kind = _kind(new.data_source_type)
        auth_type = _auth_type(kind_name, kind, new.auth_type)
        credential_type = _credential_type(new.credential_type)
        config = _config(kind_name, kind, new.config)
        visible, secret = _credentials(kind, auth_type, new.credentials)
        description = _description(new.description)
        at = now()
        row = DataSourceRow(
            id=new_hex(12),
            org_id=principal.org_id,
            name=name,
            data_source_type=kind_name,
            auth_type=auth_type,
            credential_type=credential_type,
            description=description,
            config=json.dumps(config, sort_keys=True),
            is_everyone=bool(new.permissions.is_everyone),
            owner_id=principal.user_id,
            created_at=at,
            updated_at=at,
        )
        try:
            with self.db.uow() as s:
                grantees = _grantees(s, principal, new.permissions.grantee_ids)
                if s.scalar(select(DataSourceRow.id).where(_named(principal.org_id, name))):
                    raise Conflict(f"a data source named {name!r} already exists", code="DUPLICATE")
                s.add(row)
                s.flush()
                s.add_all(DataSourceGrantRow(data_source_id=row.id, grantee_id=g) for g in grantees)
                holder = SHARED if credential_type == "Shared" else principal.user_id
                s.add(self._credential_row(row.id, holder, visible, secret, at))
                _log(s, principal, row, "CreateDataSource", {"credentialType": credential_type})
                s.flush()
                return self._entity(s, row)
        except IntegrityError:  # the same name, created at the same moment
            raise Conflict(f"a data source named {name!r} already exists", code="DUPLICATE") from None

    def update(self, principal: Principal, data_source_id: str, change: DataSourceUpdate) -> DataSource:
        """Op 51: configuration and permissions by the owner or an admin; a Shared data source's credentials by its
        owner or an admin, an Individual one's by each user for themself."""
        with self.db.uow() as s:
            row = self._visible_row(s, principal, data_source_id)
            manager = _is_admin(principal) or row.owner_id == principal.user_id
            if (change.config is not None or change.permissions is not None) and not manager:
                raise Forbidden("only the data source's owner or an admin changes its configuration or permissions")
            kind = TYPES[row.data_source_type]
            at = now()
            if change.config is not None:
                before = json.loads(row.config)
                merged = dict(before)
                for key, value in _strings(change.config, "config").items():
                    if value == "":
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                config = _config(row.data_source_type, kind, merged)
                changed = sorted(k for k in set(config) | set(before) if config.get(k) != before.get(k))
                row.config = json.dumps(config, sort_keys=True)
                _log(s, principal, row, "DataSourceChangeOfConfig", {"fields": ",".join(changed)})
            if change.credentials is not None:
                if row.credential_type == "Shared" and not manager:
                    raise Forbidden("only the data source's owner or an admin changes its shared credentials")
                visible, secret = _credentials(kind, row.auth_type, change.credentials)
                holder = SHARED if row.credential_type == "Shared" else principal.user_id
                old = s.get(DataSourceCredentialRow, (row.id, holder))
                if old is not None:
                    s.delete(old)
                    s.flush()
                s.add(self._credential_row(row.id, holder, visible, secret, at))
                _log(s, principal, row, "DataSourceChangeOfCredentials", {"holder": "shared" if holder == SHARED
                                                                          else principal.username})  # fmt: skip
            if change.permissions is not None:
                grantees = _grantees(s, principal, change.permissions.grantee_ids)
                s.execute(delete(DataSourceGrantRow).where(DataSourceGrantRow.data_source_id == row.id))
                s.add_all(DataSourceGrantRow(data_source_id=row.id, grantee_id=g) for g in grantees)
                row.is_everyone = bool(change.permissions.is_everyone)
                _log(s, principal, row, "DataSourceChangeOfPermissions",
                     {"isEveryone": str(row.is_everyone).lower(), "userAndOrganizationIds": ",".join(grantees)})  # fmt: skip
            row.updated_at = at
            s.flush()
            return self._entity(s, row)

    def delete(self, principal: Principal, data_source_id: str) -> DataSource:
        """Op 52: the owner deletes (a superuser too); the audit log keeps its events."""
        with self.db.uow() as s:
            row = self._visible_row(s, principal, data_source_id)
            if row.owner_id != principal.user_id and not principal.is_superuser:
                raise Forbidden("only the data source's owner deletes it")
            gone = self._entity(s, row)
            _log(s, principal, row, "DeleteDataSource", {})
            s.delete(row)
            s.flush()
            return gone

    # --- using -------------------------------------------------------------------------------------------------
    def test_connection(self, principal: Principal, data_source_id: str) -> ConnectionTest:
        """Connect to the data source with the credentials that apply to the caller and say whether it worked.
        The connection is made outside any transaction, with a short timeout; a failure is an answer
        (``ok=False`` and the driver's message, with secrets blanked), not an error."""
        with self.db.uow(readonly=True) as s:
            row = self._visible_row(s, principal, data_source_id)
            kind_name, config = row.data_source_type, json.loads(row.config)
            cred = s.get(DataSourceCredentialRow, (row.id, SHARED)) or s.get(
                DataSourceCredentialRow, (row.id, principal.user_id)
            )
            visible = json.loads(cred.visible) if cred else None
            sealed = cred.sealed if cred else None
        if sealed is None:
            result = (False, "you have no credentials for this data source: set yours first (PATCH credentials)")
            secret: dict[str, str] = {}
        else:
            try:
                secret = json.loads(self._box.open(sealed))
            except SecretUnreadable as exc:
                secret, result = {}, (False, str(exc))
            else:
                result = None
        started = time.monotonic()
        if result is None:
            result = data_source_probe.probe(kind_name, config, visible or {}, secret, TEST_TIMEOUT)
        elapsed = int((time.monotonic() - started) * 1000)
        ok, message = result
        for value in secret.values():  # a driver may repeat what it was given
            if value:
                message = message.replace(value, "***")
        with self.db.uow() as s:
            row = s.get(DataSourceRow, data_source_id)
            if row is not None:
                _log(s, principal, row, "AccessDataSource", {"action": "testConnection", "ok": str(ok).lower()})
        return ConnectionTest(ok, message, kind_name, elapsed)

    # --- helpers -----------------------------------------------------------------------------------------------
    def _credential_row(
        self, ds_id: str, holder: str, visible: dict[str, str], secret: dict[str, str], at: datetime
    ) -> DataSourceCredentialRow:
        return DataSourceCredentialRow(
            data_source_id=ds_id,
            holder=holder,
            visible=json.dumps(visible, sort_keys=True),
            sealed=self._box.seal(json.dumps(secret, sort_keys=True)),
            updated_at=at,
        )

    @staticmethod
    def _visible_row(s: Session, principal: Principal, data_source_id: str) -> DataSourceRow:
        row = find(s, DataSourceRow, data_source_id)
        if row is None or row.org_id != principal.org_id and not principal.is_superuser:
            raise NotFound(f"data source {data_source_id!r} not found", code="DATA_SOURCE_NOT_FOUND")
        if _is_admin(principal) or row.owner_id == principal.user_id or row.is_everyone:
            return row
        if s.scalar(select(DataSourceGrantRow.grantee_id).where(
                DataSourceGrantRow.data_source_id == row.id, DataSourceGrantRow.grantee_id.in_(_holders(s, principal)))):  # fmt: skip
            return row
        raise NotFound(f"data source {data_source_id!r} not found", code="DATA_SOURCE_NOT_FOUND")

    @staticmethod
    def _entity(s: Session, row: DataSourceRow) -> DataSource:
        grantees = s.scalars(
            select(DataSourceGrantRow.grantee_id)
            .where(DataSourceGrantRow.data_source_id == row.id)
            .order_by(DataSourceGrantRow.grantee_id)
        ).all()
        owner = s.get(UserRow, row.owner_id) if row.owner_id else None
        return DataSource(
            row.id, row.org_id, row.name, row.data_source_type, row.auth_type, row.credential_type,
            row.description or "", json.loads(row.config), bool(row.is_everyone), tuple(grantees), row.owner_id,
            owner.username if owner else "", aware(row.created_at), aware(row.updated_at),
        )  # fmt: skip


def _is_admin(principal: Principal) -> bool:
    return principal.can(Action.USER_MANAGE, principal.org_id)


def _holders(s: Session, principal: Principal) -> list[str]:
    """The caller's id and their teams' ids: what a grant may name."""
    teams = s.scalars(select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == principal.user_id)).all()
    return [principal.user_id, *teams]


def _visible_clause(s: Session, principal: Principal):
    granted = select(DataSourceGrantRow.data_source_id).where(DataSourceGrantRow.grantee_id.in_(_holders(s, principal)))
    return or_(
        DataSourceRow.owner_id == principal.user_id, DataSourceRow.is_everyone.is_(True), DataSourceRow.id.in_(granted)
    )


def _named(org_id: str, name: str):
    return (DataSourceRow.org_id == org_id) & (DataSourceRow.name == name)


def _log(s: Session, principal: Principal, row: DataSourceRow, kind: str, details: dict[str, str]) -> None:
    s.add(
        DataSourceAuditRow(
            id=new_hex(),
            org_id=row.org_id,
            data_source_id=row.id,
            data_source_name=row.name,
            data_source_type=row.data_source_type,
            event_kind=kind,
            details=json.dumps(details, sort_keys=True),
            performed_by=principal.username,
            performed_by_id=principal.user_id,
            at=now(),
        )
    )


def _event(r: DataSourceAuditRow) -> AuditEvent:
    return AuditEvent(
        r.data_source_id, r.data_source_name, r.data_source_type, r.event_kind, json.loads(r.details),
        r.performed_by, aware(r.at),
    )  # fmt: skip


# --- checking inputs ---------------------------------------------------------------------------------------------
def _name(name: object) -> str:
    if not nameable(name) or name != name.strip():
        raise InvalidInput("'name' must be 1 to 200 printable characters without spaces around them", field="name")
    return name


def _description(text: object) -> str:
    if text is None:
        return ""
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"'description' must be a string of at most {MAX_DESCRIPTION} characters", field="description"
        )
    return text


def _kind(value: object) -> tuple[str, Kind]:
    name = _BY_LOWER.get(value.strip().lower()) if isinstance(value, str) else None
    if name is None:
        raise InvalidInput(
            f"'dataSourceType' {value!r} is not a type this server knows: one of {', '.join(TYPES)}",
            field="dataSourceType",
        )
    return name, TYPES[name]


def _auth_type(kind_name: str, kind: Kind, value: object) -> str:
    for known in kind.auth:
        if isinstance(value, str) and value.strip().lower() == known.lower():
            return known
    raise InvalidInput(f"'authType' of a {kind_name} must be one of {', '.join(kind.auth)}", field="authType")


def _credential_type(value: object) -> str:
    for known in CREDENTIAL_TYPES:
        if isinstance(value, str) and value.strip().lower() == known.lower():
            return known
    raise InvalidInput("'credentialType' must be Shared or Individual", field="credentialType")


def _strings(values: object, where: str) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidInput(f"'{where}' must be an object of strings", field=where)
    out = {}
    for key, value in values.items():
        if not isinstance(value, str) or len(value) > MAX_VALUE or "\0" in value:
            raise InvalidInput(f"'{where}.{key}' must be a string of at most {MAX_VALUE} characters", field=where)
        out[str(key)] = value
    return out


def _config(kind_name: str, kind: Kind, values: object) -> dict[str, str]:
    config = _strings(values, "config")
    for key in config:
        if key not in kind.required and key not in kind.optional:
            known = ", ".join(kind.required + kind.optional)
            raise InvalidInput(f"'config.{key}' is not a setting of a {kind_name} (settings: {known})", field="config")
    for key in kind.required:
        if not config.get(key, "").strip():
            raise InvalidInput(f"'config.{key}' is required for a {kind_name}", field="config")
    port = config.get("port")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidInput(f"'config.port' must be a port number (1 to 65535), not {port!r}", field="config")
    return {k: v for k, v in config.items() if v != ""}


def _credentials(kind: Kind, auth_type: str, credentials: Credentials) -> tuple[dict[str, str], dict[str, str]]:
    visible_fields, secret_fields = kind.auth[auth_type]
    parts = []
    for where, values, fields in (
        ("credentials.visibleCredentials", credentials.visible, visible_fields),
        ("credentials.secretCredentials", credentials.secret, secret_fields),
    ):
        given = _strings(values, where)
        for key in given:
            if key not in fields:
                raise InvalidInput(
                    f"'{where}.{key}' is not a credential of auth type {auth_type} (it takes: "
                    f"{', '.join(visible_fields + secret_fields) or 'none'})",
                    field=where,
                )
        for key in fields:
            if not given.get(key):
                raise InvalidInput(f"'{where}.{key}' is required for auth type {auth_type}", field=where)
        parts.append(given)
    return parts[0], parts[1]


def _grantees(s: Session, principal: Principal, ids: Iterable[str]) -> list[str]:
    """Users (id or username) and teams (id) of the caller's organisation, as ids."""
    ids = list(ids)
    if len(ids) > MAX_GRANTEES:
        raise InvalidInput(f"at most {MAX_GRANTEES} users and organizations", field="permissions")
    out: list[str] = []
    for ident in ids:
        found = None
        if isinstance(ident, str) and well_formed(ident):
            user = s.get(UserRow, ident) or s.scalar(select(UserRow).where(UserRow.username == ident))
            if user is not None and s.get(MembershipRow, (principal.org_id, user.id)) is not None:
                found = user.id
            team = s.get(TeamRow, ident)
            if found is None and team is not None and team.org_id == principal.org_id:
                found = team.id
        if found is None:
            raise InvalidInput(
                f"'permissions.userAndOrganizationIds': {ident!r} is no user or organization of this organisation",
                field="permissions",
            )
        if found not in out:
            out.append(found)
    return out
