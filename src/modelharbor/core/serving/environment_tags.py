"""Environment tags and their builds: custom environments with packages (UbiOps API v2 "environment tags").

A custom environment is a named set of **tags**; a version runs on one (``environment_name`` +
``environment_tag``, default ``latest``, which every custom environment gets when it is created). A tag is
*built* from an **environment package** — a zip holding ``requirements.txt`` (and optionally ``ubiops.yaml``),
at its top or in one top-level folder — on a base environment (``python3-11`` …). Each build runs in the
background (task ``serving_environment_build``): the package is unpacked safely, checked (no ``apt`` packages,
no build-time variables, no ``install.sh``) and its requirements installed into a virtual environment made
once per distinct base + requirements (the builder's cache, shared with deployment packages). A tag's state is
that of its newest build: ``queued`` → ``building`` → ``success`` | ``failed``; a tag that was never built is
its environment's base as it is (``success``).

Revisions of versions on a tag build in it (their own ``requirements.txt`` is added to the tag's) and keep the
environment they built in: a revision whose tag is still building waits (``queued``), and when a tag build
finishes every version on the tag rebuilds its latest revision (it fails with the tag's reason if the tag
failed). The built-in base environments have one tag, ``latest``, that cannot be changed.

API v2.1 (clients <= 4.12) knows no tags: its "environment revisions" are the builds of the tag ``latest`` (a
revision's first build has the revision's id; rebuilds share it, ``EnvironmentBuildRow.revision_id``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.files.usage import ENVIRONMENT_PACKAGE
from modelharbor.core.serving.lookup import named_row
from modelharbor.core.serving.packages import PackageRejected, check_ubiops_yaml, unpack_archive
from modelharbor.core.serving.validation import truncate
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentBuildRow,
    EnvironmentRow,
    EnvironmentTagRow,
    RevisionRow,
)
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound
from modelharbor.domain.inputs import Unnamed
from modelharbor.domain.principal import Principal

if TYPE_CHECKING:
    from modelharbor.core.serving.service import ServingService


ENV_BUILD_TASK = "serving_environment_build"
ENV_PACKAGE_CONTEXT = ENVIRONMENT_PACKAGE  # an internal file (core/files/usage.py)
DEFAULT_TAG = "latest"
MAX_TAGS = 100
MAX_DEPENDENCY_FILE = 1 << 20  # requirements.txt / ubiops.yaml of an environment package
MAX_LOG = 200_000
PROGRESS_EVERY = 30.0  # seconds between progress reports of a long build (they renew the task's lease)
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCRIPT = "install.sh"


@dataclass(frozen=True)
class EnvironmentTag:
    id: str
    environment: str
    name: str
    status: str  # queued | building | success | failed
    supports_request_format: bool
    base_environment: str | None  # what it builds on (None: the tag of a base environment)
    built: bool  # built from an uploaded environment package (which can be downloaded)
    size: int | None  # bytes of that package
    error_message: str | None
    build_id: str | None  # its newest build
    created_at: datetime | None
    updated_at: datetime | None
    system: bool = False


@dataclass(frozen=True)
class TagUsage:
    id: str
    deployment: str
    version: str
    environment: str
    tag: str
    status: str  # the version's status


@dataclass(frozen=True)
class EnvironmentRevision:
    """API v2.1's view: an environment package uploaded to an environment (a build of its tag ``latest``)."""

    id: str
    environment: str
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class EnvironmentBuild:
    id: str
    revision: str
    status: str
    error_message: str | None
    trigger: str  # "environment package upload" or "rebuild"
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class EnvironmentChoice:
    """The environment a revision builds in: a base plus the requirements of an environment tag's build."""

    base: str
    requirements: str | None
    build_id: str | None  # the environment build they come from (None: a base environment, or a tag never built)
    label: str  # "python3-11", "science:latest"


class EnvironmentNotReady(HarborError):
    """The environment tag a revision needs is still building: the revision waits (it is built again after)."""

    code = "ENVIRONMENT_NOT_READY"
    status = 400


def tag_name(value: Any) -> str:
    """A tag's name (a JSON value: the edges and the imports check theirs with this; the core takes ``str``)."""
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise InvalidInput(
            f"Invalid tag name {value!r}: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return value


def _environment_root(top: Path) -> Path:
    """The folder of an environment package holding requirements.txt / ubiops.yaml: the top or one folder."""
    wanted = ("requirements.txt", "ubiops.yaml", _SCRIPT)
    if any((top / name).is_file() for name in wanted):
        return top
    dirs = [p for p in top.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    named = [d for d in dirs if d.name == "environment_package"]
    candidates = named or dirs
    if len(candidates) == 1 and any((candidates[0] / name).is_file() for name in wanted):
        return candidates[0]
    raise PackageRejected(
        "The environment package holds no requirements.txt (nor ubiops.yaml): put it at the top of the zip or in "
        "one top-level folder (named environment_package when there are several)."
    )


def read_environment_package(archive: Path, dest: Path, note: Callable[[str], None]) -> tuple[str | None, dict]:
    """Unpack an environment package safely into ``dest`` (removed again) and read it: (its requirements, stripped,
    or None; its dependency files by name). PackageRejected for what cannot be built here."""
    try:
        root = unpack_archive(archive, dest, _environment_root)
        if (root / _SCRIPT).exists():
            raise PackageRejected(
                f"The environment package holds {_SCRIPT}: scripts do not run at build time here; list Python "
                "packages in requirements.txt instead."
            )
        files: dict[str, str] = {}
        for name in ("requirements.txt", "ubiops.yaml"):
            path = root / name
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_DEPENDENCY_FILE:
                raise PackageRejected(f"{name} is larger than {MAX_DEPENDENCY_FILE} bytes.")
            files[name] = path.read_text(errors="replace")
        if "ubiops.yaml" in files:
            for line in check_ubiops_yaml(files["ubiops.yaml"], "ubiops.yaml"):
                note(line)
        others = sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in files and p != root
        )
        if others:
            note(f"not used by the build: {', '.join(others[:20])}{', …' if len(others) > 20 else ''}")
        requirements = (files.get("requirements.txt") or "").strip() or None
        return requirements, files
    finally:
        shutil.rmtree(dest, ignore_errors=True)


class EnvironmentTags:
    """Tags of custom environments: lookups, create, change, delete, usage (the base of EnvironmentTagService)."""

    def __init__(self, serving: ServingService):
        self.serving = serving

    @property
    def db(self):
        return self.serving.db

    # --- lookups --------------------------------------------------------------------------------
    def _custom(self, s: Session, principal: Principal, project: str, environment: str, *, write: bool = False):
        """(project row, environment row) of a custom environment; base environments cannot be changed."""
        p = self.serving.project_row(s, principal, project, write=write)
        if environment in self.serving.system_environments():
            raise InvalidInput(f"{environment!r} is a base environment: its one tag, 'latest', cannot be changed.")
        return p, self.serving.environment_row(s, p, environment)

    @staticmethod
    def _tag_row(s: Session, env: EnvironmentRow, tag: str) -> EnvironmentTagRow:
        return named_row(
            s,
            EnvironmentTagRow,
            EnvironmentTagRow.environment_id == env.id,
            EnvironmentTagRow.name == tag,
            key=tag,
            missing=f"Environment {env.name!r} has no tag {tag!r}",
            limit=128,
        )

    @staticmethod
    def _latest(s: Session, tag: EnvironmentTagRow) -> EnvironmentBuildRow | None:
        return s.get(EnvironmentBuildRow, tag.latest_build_id) if tag.latest_build_id else None

    def _entity(self, s: Session, env: EnvironmentRow, tag: EnvironmentTagRow) -> EnvironmentTag:
        build = self._latest(s, tag)
        return EnvironmentTag(
            id=tag.id,
            environment=env.name,
            name=tag.name,
            status=build.status if build else "success",
            supports_request_format=tag.supports_request_format,
            base_environment=build.base_environment if build else self._base_of(env),
            built=build is not None and build.file_id is not None,
            size=build.size if build else None,
            error_message=truncate(build.error_message) if build else None,
            build_id=build.id if build else None,
            created_at=aware(tag.created_at),
            updated_at=aware(tag.updated_at),
        )

    def _base_of(self, env: EnvironmentRow) -> str:
        return env.base_environment or self.serving.system_environments()[-1]

    @staticmethod
    def _system_tag(name: str) -> EnvironmentTag:
        return EnvironmentTag(
            id=f"{name}:{DEFAULT_TAG}",
            environment=name,
            name=DEFAULT_TAG,
            status="success",
            supports_request_format=True,
            base_environment=None,
            built=False,
            size=None,
            error_message=None,
            build_id=None,
            created_at=None,
            updated_at=None,
            system=True,
        )

    # --- tags -----------------------------------------------------------------------------------
    def list_tags(
        self, principal: Principal, project: str, environment: str, *, supports_request_format: bool | None = None
    ) -> list[EnvironmentTag]:
        """``latest`` first, then the others oldest first (only those with ``supports_request_format``, if given)."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                tags = [self._system_tag(environment)]
            else:
                env = self.serving.environment_row(s, p, environment)
                rows = s.scalars(select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == env.id)).all()
                rows = sorted(rows, key=lambda r: (r.name != DEFAULT_TAG, aware(r.created_at), r.name))
                tags = [self._entity(s, env, r) for r in rows]
        wanted = supports_request_format
        return [t for t in tags if wanted is None or t.supports_request_format == wanted]

    def get_tag(self, principal: Principal, project: str, environment: str, tag: str) -> EnvironmentTag:
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                if tag != DEFAULT_TAG:
                    raise NotFound(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}")
                return self._system_tag(environment)
            env = self.serving.environment_row(s, p, environment)
            return self._entity(s, env, self._tag_row(s, env, tag))

    def create_default_in(self, s: Session, env: EnvironmentRow) -> None:
        """The tag ``latest`` of a new custom environment (its base as it is, until it is built)."""
        s.add(
            EnvironmentTagRow(
                id=new_uuid(),
                environment_id=env.id,
                name=DEFAULT_TAG,
                supports_request_format=True,
                latest_build_id=None,
                created_at=env.created_at,
                updated_at=env.created_at,
            )
        )
        s.flush()

    def create_tag(
        self,
        principal: Principal,
        project: str,
        environment: str,
        name: str | None = None,
        *,
        supports_request_format: bool = True,
        status: str | None = None,
    ) -> EnvironmentTag:
        """A tag with no build yet (the environment's base as it is). Without a ``name`` it is called ``v<N>``, the
        next free number; a ``status`` may only be the one it has (success)."""
        supports = supports_request_format
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            names = set(s.scalars(select(EnvironmentTagRow.name).where(EnvironmentTagRow.environment_id == env.id)))
            if len(names) >= MAX_TAGS:
                raise InvalidInput(f"An environment may have at most {MAX_TAGS} tags: delete some first.")
            if name is None:
                name = next(f"v{n}" for n in range(1, MAX_TAGS + 2) if f"v{n}" not in names)
            else:
                name = tag_name(name)
            if name in names:
                raise Conflict(f"Environment {env.name!r} already has a tag {name!r}.")
            self._status_unchanged(status, "success")
            t = now()
            row = EnvironmentTagRow(
                id=new_uuid(),
                environment_id=env.id,
                name=name,
                supports_request_format=supports,
                latest_build_id=None,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._entity(s, env, row)

    def update_tag(
        self,
        principal: Principal,
        project: str,
        environment: str,
        tag: str,
        *,
        status: str | None = None,
        supports_request_format: bool | None = None,
    ) -> EnvironmentTag:
        """The status comes from builds (it may only be sent unchanged); ``supports_request_format`` changes."""
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            current = self._entity(s, env, row)
            self._status_unchanged(status, current.status)
            if supports_request_format is not None:
                row.supports_request_format = supports_request_format
            row.updated_at = now()
            s.flush()
            return self._entity(s, env, row)

    @staticmethod
    def _status_unchanged(value: str | None, current: str) -> None:
        if value is not None and value != current:
            raise InvalidInput(
                f"A tag's status comes from its builds (now {current!r}): upload an environment package with "
                "…/build to change it, or leave 'status' out."
            )

    def delete_tag(self, principal: Principal, project: str, environment: str, tag: str) -> None:
        """Delete a tag with its builds and packages; refused while a version uses it."""
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            users = self._users(s, p, env.name, row.name)
            if users:
                raise InvalidInput(
                    f"Tag {row.name!r} of environment {env.name!r} is used by {', '.join(u.deployment + '/' + u.version for u in users)}; "
                    "move those versions to another environment or tag first."
                )
            stale = self._drop_tags_in(s, [row.id])
            s.delete(row)
            s.flush()
        self.serving.drop_blobs(stale)

    def usage(self, principal: Principal, project: str, environment: str, tag: str) -> list[TagUsage]:
        """The deployment versions that run on a tag."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                if tag != DEFAULT_TAG:
                    raise NotFound(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}")
                return self._users(s, p, environment, None)
            env = self.serving.environment_row(s, p, environment)
            return self._users(s, p, env.name, self._tag_row(s, env, tag).name)

    def _users(self, s: Session, p: RegistryProjectRow, environment: str, tag: str | None) -> list[TagUsage]:
        q = (
            select(DeploymentRow, DeploymentVersionRow)
            .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
            .where(DeploymentRow.project_id == p.id, DeploymentVersionRow.environment == environment)
        )
        if tag is not None:
            q = q.where(DeploymentVersionRow.environment_tag == tag)
        out = []
        for d, v in s.execute(q.order_by(DeploymentRow.name, DeploymentVersionRow.version)).all():
            status = self.serving.version_entity(s, p.name, d, v).status
            out.append(TagUsage(v.id, d.name, v.version, environment, v.environment_tag or DEFAULT_TAG, status))
        return out

    def check_version_tag(self, s: Session, p: RegistryProjectRow, environment: str, tag: str | None) -> str | None:
        """The tag a version on ``environment`` names (None on a base environment); ``latest`` when none is given.
        A custom environment's tag given as no string (an edge's ``Unnamed``) is refused as such."""
        if environment in self.serving.system_environments():
            if tag not in (None, DEFAULT_TAG):
                raise InvalidInput(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}.")
            return None
        env = self.serving.environment_row(s, p, environment)
        if isinstance(tag, Unnamed):
            raise InvalidInput("'environment_tag' must be a string.")
        return self._tag_row(s, env, tag or DEFAULT_TAG).name

    def drop_in(self, s: Session, environment_ids: list[str]) -> list[str]:
        """Environments are being deleted: their tags, builds and packages go (the blob keys to delete after
        commit are returned)."""
        if not environment_ids:
            return []
        tag_ids = list(
            s.scalars(select(EnvironmentTagRow.id).where(EnvironmentTagRow.environment_id.in_(environment_ids)))
        )
        stale = self._drop_tags_in(s, tag_ids)
        s.execute(delete(EnvironmentTagRow).where(EnvironmentTagRow.id.in_(tag_ids)))
        s.flush()
        return stale

    def _drop_tags_in(self, s: Session, tag_ids: list[str]) -> list[str]:
        if not tag_ids:
            return []
        file_ids = {
            f
            for f in s.scalars(select(EnvironmentBuildRow.file_id).where(EnvironmentBuildRow.tag_id.in_(tag_ids)))
            if f
        }
        s.execute(delete(EnvironmentBuildRow).where(EnvironmentBuildRow.tag_id.in_(tag_ids)))
        s.flush()
        stale: list[str] = []
        for fid in file_ids:
            builds = s.scalar(
                select(func.count()).select_from(EnvironmentBuildRow).where(EnvironmentBuildRow.file_id == fid)
            )
            revisions = s.scalar(select(func.count()).select_from(RevisionRow).where(RevisionRow.file_id == fid))
            if not builds and not revisions:
                stale += self.serving.files.drop_in(s, fid)
        return stale
