"""Users' git credentials: a token for https hosts or a private key for ssh, kept so that work run for the user
(cloning a project's imported repositories) can authenticate as them.

The secret is sealed at rest with :class:`~modelharbor.core.secretbox.SecretBox` (purpose ``git-credentials``) and
never returned by any API: callers see the *accessor* — id, name, domain, protocol, provider and a fingerprint (an
ssh key's OpenSSH SHA256 fingerprint; for a token a keyed hash, which says whether two tokens are the same and
nothing about either). :meth:`GitCredentialService.secret` opens one for the server's own use.

Who may do what: a user adds and removes their own credentials and lists them; an organisation admin (Domino's
``UpdateUser``) lists and removes those of the members of their organisation; a superuser those of anyone.
Users of other organisations are missing (404).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.identity import nameable
from modelharbor.core.ids import well_formed
from modelharbor.core.secretbox import SecretBox
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_people import GitCredentialRow
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

PROVIDERS = ("Bitbucket", "BitbucketServer", "Github", "GithubEnterprise", "GitLab", "GitLabEnterprise", "Unknown")
_BY_HOST = {"github.com": "Github", "gitlab.com": "GitLab", "bitbucket.org": "Bitbucket"}
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$")
MAX_PER_USER = 100
MAX_SECRET = 16384


@dataclass(frozen=True)
class GitCredential:
    """What anyone is shown of a credential: never its secret."""

    id: str
    user_id: str
    name: str
    domain: str
    protocol: str  # "https" | "ssh"
    provider: str  # one of PROVIDERS
    fingerprint: str
    created_at: datetime


@dataclass(frozen=True)
class GitSecret:
    protocol: str
    domain: str
    secret: str  # the token, or the private key (OpenSSH or PEM)
    passphrase: str | None


class GitCredentialService:
    def __init__(self, db: Database, secret_key: str):
        self.db = db
        self._box = SecretBox(secret_key, "git-credentials")
        self._key = hashlib.sha256(b"modelharbor/git-credential-fingerprint" + secret_key.encode()).digest()

    def add(
        self,
        principal: Principal,
        user_id: str,
        *,
        name: str,
        domain: str,
        token: str | None = None,
        private_key: str | None = None,
        passphrase: str | None = None,
        provider: str | None = None,
    ) -> GitCredential:
        """A new credential of the caller's own (``user_id`` must be theirs): a ``token`` (https) or an ssh
        ``private_key`` (with its ``passphrase`` when it has one)."""
        if user_id != principal.user_id:
            with self.db.uow(readonly=True) as s:
                self._user_in_reach(s, principal, user_id)  # 404 for users the caller cannot see
            raise Forbidden("git credentials are added by their own user only")
        name = _name(name)
        domain = _domain(domain)
        provider = _provider(provider, domain)
        if (token is None) == (private_key is None):
            raise InvalidInput("give either a token (https) or a private key (ssh)", field="token")
        if token is not None:
            protocol, secret = "https", _secret(token, "token")
            fingerprint = "HMAC-SHA256:" + hmac.new(self._key, secret.encode(), "sha256").hexdigest()[:32]
        else:
            protocol, secret = "ssh", _secret(private_key, "key")
            fingerprint = _ssh_fingerprint(secret, passphrase)
        row = GitCredentialRow(
            id=new_hex(),
            user_id=user_id,
            name=name,
            domain=domain,
            protocol=protocol,
            provider=provider,
            fingerprint=fingerprint,
            sealed=self._box.seal("\0".join((secret, passphrase or ""))),
            created_at=now(),
        )
        try:
            with self.db.uow() as s:
                count = len(s.scalars(select(GitCredentialRow.id).where(GitCredentialRow.user_id == user_id)).all())
                if count >= MAX_PER_USER:
                    raise InvalidInput(f"a user has at most {MAX_PER_USER} git credentials", field="name")
                if s.scalar(select(GitCredentialRow.id).where(_named(user_id, name))):
                    raise Conflict(f"you already have a git credential named {name!r}", code="DUPLICATE")
                s.add(row)
        except IntegrityError:  # the same name, added at the same moment
            raise Conflict(f"you already have a git credential named {name!r}", code="DUPLICATE") from None
        return _credential(row)

    def list(self, principal: Principal, user_id: str) -> list[GitCredential]:
        """A user's credentials by name: your own, a member's of your organisation (admins), anyone's
        (superusers)."""
        with self.db.uow(readonly=True) as s:
            self._manageable(s, principal, user_id)
            rows = s.scalars(
                select(GitCredentialRow).where(GitCredentialRow.user_id == user_id).order_by(GitCredentialRow.name)
            )
            return [_credential(r) for r in rows]

    def delete(self, principal: Principal, user_id: str, credential_id: str) -> None:
        with self.db.uow() as s:
            self._manageable(s, principal, user_id)
            row = s.get(GitCredentialRow, credential_id) if well_formed(credential_id) else None
            if row is None or row.user_id != user_id:
                raise NotFound(f"git credential {credential_id!r} not found", code="GIT_CREDENTIAL_NOT_FOUND")
            s.delete(row)

    def secret(self, user_id: str, credential_id: str) -> GitSecret:
        """The secret itself, for the server's own use (a clone run for the user); never for an API answer."""
        with self.db.uow(readonly=True) as s:
            row = s.get(GitCredentialRow, credential_id) if well_formed(credential_id) else None
            if row is None or row.user_id != user_id:
                raise NotFound(f"git credential {credential_id!r} not found", code="GIT_CREDENTIAL_NOT_FOUND")
            secret, _, passphrase = self._box.open(row.sealed).partition("\0")
            return GitSecret(row.protocol, row.domain, secret, passphrase or None)

    # --- who may see whose ----------------------------------------------------------------------------
    @staticmethod
    def _user_in_reach(s, principal: Principal, user_id: str) -> str:
        """The org the user is seen from: the caller's, where the user must be a member (superusers: any)."""
        if not well_formed(user_id) or s.get(UserRow, user_id) is None:
            raise NotFound(f"user {user_id!r} not found", code="USER_NOT_FOUND")
        if principal.is_superuser or user_id == principal.user_id:
            return principal.org_id
        member = s.get(MembershipRow, (principal.org_id, user_id))
        if member is None:
            raise NotFound(f"user {user_id!r} not found", code="USER_NOT_FOUND")
        return principal.org_id

    def _manageable(self, s, principal: Principal, user_id: str) -> None:
        org_id = self._user_in_reach(s, principal, user_id)
        if user_id != principal.user_id:
            require(principal, Action.USER_MANAGE, org_id, what="user")


def _named(user_id: str, name: str):
    return (GitCredentialRow.user_id == user_id) & (GitCredentialRow.name == name)


def _name(name: object) -> str:
    if not nameable(name) or name != name.strip():
        raise InvalidInput("a credential's name is 1 to 200 printable characters", field="name")
    return name


def _domain(domain: object) -> str:
    text = domain.strip().lower() if isinstance(domain, str) else ""
    if not (0 < len(text) <= 255 and _HOST.match(text)):
        raise InvalidInput(f"domain must be a host name such as github.com, not {domain!r}", field="domain")
    return text


def _provider(provider: object, domain: str) -> str:
    if provider is None or provider == "":
        return _BY_HOST.get(domain, "Unknown")
    for known in PROVIDERS:
        if isinstance(provider, str) and provider.lower() == known.lower():
            return known
    raise InvalidInput(f"gitServiceProvider must be one of {', '.join(PROVIDERS)}", field="gitServiceProvider")


def _secret(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SECRET or "\0" in value:
        raise InvalidInput(f"{what} must be a non-empty string of at most {MAX_SECRET} characters", field=what)
    return value


def _ssh_fingerprint(key: str, passphrase: str | None) -> str:
    """The OpenSSH fingerprint (``SHA256:…``) of a private key, which must open with its passphrase."""
    data, password = key.encode(), passphrase.encode() if passphrase else None
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            private = serialization.load_ssh_private_key(data, password)
        else:
            private = serialization.load_pem_private_key(data, password)
        public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except UnsupportedAlgorithm:
        raise InvalidInput(
            "this server cannot open passphrase-protected keys in OpenSSH format: give the key in PEM form "
            "(ssh-keygen -p -m PEM -f KEY) or without a passphrase",
            field="key",
        ) from None
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise InvalidInput(f"key is not a private key this server reads (OpenSSH or PEM): {exc}", field="key") from None
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _credential(row: GitCredentialRow) -> GitCredential:
    return GitCredential(
        row.id, row.user_id, row.name, row.domain, row.protocol, row.provider, row.fingerprint, aware(row.created_at)
    )
