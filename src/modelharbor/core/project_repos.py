"""Git repositories imported into a project (Domino's imported repositories): where each is and which ref to use.

ModelHarbor stores them now; cloning them into a job's working directory comes with jobs (a later issue), using the
git credential named here (one of the adder's own, core/git_credentials.py). Only remote URLs a clone can use
safely are accepted: ``https://host/path`` and ssh (``ssh://[user@]host[:port]/path`` or ``user@host:path``); any
other scheme (``http``, ``git``, ``file``, ``ext::``), a local path or an option-like value is refused with a 400
naming ``uri``. Reading takes reading the project; adding and removing take managing it (its owner or an admin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.ids import find
from modelharbor.core.projects import ProjectService, readable_project_row, require_project_owner
from modelharbor.db.engine import Database
from modelharbor.db.tables_collab import ProjectRepositoryRow
from modelharbor.db.tables_people import GitCredentialRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Principal

MAX_REPOS = 100
MAX_URI = 2048
MAX_NAME = 256
MAX_REF = 256
PROVIDERS = ("Bitbucket", "BitbucketServer", "Github", "GithubEnterprise", "GitLab", "GitLabEnterprise", "Unknown")
REF_TYPES = ("Head", "Branch", "Tag", "Commit")
_KNOWN_HOSTS = {"github.com": "Github", "gitlab.com": "GitLab", "bitbucket.org": "Bitbucket"}
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.\-]*[a-z0-9])?|[0-9a-f:.]+")  # urlsplit's hostname: lower case, no brackets
_SCP = re.compile(r"(?P<user>[A-Za-z0-9._\-]+)@(?P<host>[A-Za-z0-9.\-]+):(?P<path>[^\s]+)")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class Repository:
    id: str
    project_id: str
    name: str
    uri: str
    provider: str
    ref_type: str
    ref_value: str | None
    credential_id: str | None
    created_at: datetime


def _repo(r: ProjectRepositoryRow) -> Repository:
    return Repository(
        r.id, r.project_id, r.name, r.uri, r.provider, r.ref_type, r.ref_value, r.credential_id, aware(r.created_at)
    )


def _bad_uri(uri: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"'uri' {uri[:200]!r} {why}: use https://host/path or ssh (git@host:path, ssh://…)", field="uri"
    )


def check_git_uri(uri: str) -> tuple[str, str]:
    """``uri`` if a clone may use it, with its host; else a 400 naming ``uri``."""
    if not uri or len(uri) > MAX_URI or not uri.isprintable() or any(c.isspace() for c in uri):
        raise _bad_uri(uri, f"must be 1 to {MAX_URI} printable characters without spaces")
    if uri.startswith("-"):
        raise _bad_uri(uri, "must not start with '-'")
    scp = _SCP.fullmatch(uri)
    if scp and "://" not in uri:
        if scp["path"].startswith("-"):
            raise _bad_uri(uri, "has a path starting with '-'")
        return uri, scp["host"].lower()
    try:
        parts = urlsplit(uri)
        host, _port = parts.hostname, parts.port  # a bad port raises ValueError
    except ValueError:
        raise _bad_uri(uri, "is no valid URL") from None
    if parts.scheme.lower() not in ("https", "ssh"):
        raise _bad_uri(uri, f"has scheme {parts.scheme or 'none'!r}; only https and ssh are accepted")
    if not host or not _HOST.fullmatch(host):
        raise _bad_uri(uri, "has no valid host")
    if parts.path.strip("/") == "":
        raise _bad_uri(uri, "names no repository path")
    if parts.scheme.lower() == "https" and parts.password:
        raise _bad_uri(uri, "carries a password: store it as a git credential instead")
    return uri, host.lower()


def provider_of(value: str | None, host: str) -> str:
    if value is None or value == "":
        return _KNOWN_HOSTS.get(host, "Unknown")
    for p in PROVIDERS:
        if p.lower() == value.lower():
            return p
    raise InvalidInput(
        f"'serviceProvider' must be one of {', '.join(PROVIDERS)}, not {value!r}", field="serviceProvider"
    )


def ref_of(ref_type: str | None, value: str | None) -> tuple[str, str | None]:
    kind = "Head"
    if ref_type:
        found = [t for t in REF_TYPES if t.lower() == ref_type.lower()]
        if not found:
            raise InvalidInput(f"'defaultRef.refType' must be one of {', '.join(REF_TYPES)}, not {ref_type!r}")
        kind = found[0]
    if kind == "Head":
        return kind, None
    if not value or len(value) > MAX_REF or not value.isprintable() or value.startswith("-") or " " in value:
        raise InvalidInput(f"'defaultRef.value' must name the {kind.lower()} (1 to {MAX_REF} characters, no spaces)")
    return kind, value


def default_name(uri: str) -> str:
    tail = re.split(r"[/:]", uri.rstrip("/"))[-1]
    return tail[:-4] if tail.endswith(".git") and len(tail) > 4 else tail


class ProjectRepoService:
    def __init__(self, db: Database, projects: ProjectService):
        self.db = db
        projects.on_delete.append(self._delete_project_repos)

    def list(self, principal: Principal, project_id: str, *, offset: int = 0, limit: int = 10):
        """(the page of repositories by name, the total)."""
        with self.db.uow(readonly=True) as s:
            project = readable_project_row(s, principal, project_id)
            R = ProjectRepositoryRow
            total = s.scalar(select(func.count()).where(R.project_id == project.id))
            rows = s.scalars(
                select(R).where(R.project_id == project.id).order_by(R.name, R.id).offset(offset).limit(limit)
            )
            return [_repo(r) for r in rows], total

    def add(
        self,
        principal: Principal,
        project_id: str,
        uri: str,
        *,
        name: str | None = None,
        provider: str | None = None,
        ref_type: str | None = None,
        ref_value: str | None = None,
        credential_id: str | None = None,
    ) -> Repository:
        uri, host = check_git_uri(uri)
        provider = provider_of(provider, host)
        kind, value = ref_of(ref_type, ref_value)
        name = name if name not in (None, "") else default_name(uri)
        if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
            raise InvalidInput(f"'name' must be 1 to {MAX_NAME} letters, digits, '_', '-' or '.', not {name!r}")
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            require_project_owner(s, principal, project)
            if credential_id:
                cred = find(s, GitCredentialRow, credential_id)
                if cred is None or cred.user_id != principal.user_id:
                    raise InvalidInput(
                        f"'gitCredentialId': {credential_id!r} is not one of your git credentials",
                        field="gitCredentialId",
                    )
            R = ProjectRepositoryRow
            existing = s.execute(select(R.name, R.uri).where(R.project_id == project.id)).all()
            if len(existing) >= MAX_REPOS:
                raise InvalidInput(f"A project may import at most {MAX_REPOS} git repositories.")
            for other_name, other_uri in existing:
                if other_name.lower() == name.lower():
                    raise InvalidInput(f"This project already has a repository named {name!r}.", code="DUPLICATE")
                if other_uri == uri:
                    raise InvalidInput(f"This project already imports {uri!r} (as {other_name!r}).", code="DUPLICATE")
            row = R(
                id=new_hex(12),
                project_id=project.id,
                name=name,
                uri=uri,
                provider=provider,
                ref_type=kind,
                ref_value=value,
                credential_id=credential_id or None,
                creator_id=principal.user_id,
                created_at=now(),
            )
            s.add(row)
            s.flush()
            return _repo(row)

    def remove(self, principal: Principal, project_id: str, repository_id: str) -> None:
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            row = find(s, ProjectRepositoryRow, repository_id)
            if row is None or row.project_id != project.id:
                raise NotFound(f"Repository {repository_id!r} not found in project {project.name!r}")
            require_project_owner(s, principal, project)
            s.delete(row)
            s.flush()

    @staticmethod
    def _delete_project_repos(s: Session, project_id: str) -> list[str]:
        s.execute(delete(ProjectRepositoryRow).where(ProjectRepositoryRow.project_id == project_id))
        return []
