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

import asyncio
import logging
import re
import shutil
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.compute.base import BuildFailed
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving import (
    PackageRejected,
    ServingService,
    build_error,
    check_ubiops_yaml,
    environment_key,
    lookup_key,
    truncate,
    unpack_archive,
)
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentBuildRow,
    EnvironmentRow,
    EnvironmentTagRow,
    RevisionRow,
)
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.serving.environments")

ENV_BUILD_TASK = "serving_environment_build"
ENV_PACKAGE_CONTEXT = "environment-package"
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


class EnvironmentTagService:
    """Tags of custom environments and their builds; part of :class:`ServingService` (``serving.environment_tags``),
    whose projects, permissions, files, tasks and builder it uses."""

    def __init__(self, serving: ServingService):
        self.serving = serving

    @property
    def db(self):
        return self.serving.db

    # --- lookups --------------------------------------------------------------------------------
    def _custom(self, s: Session, principal: Principal, project: Any, environment: Any, *, write: bool = False):
        """(project row, environment row) of a custom environment; base environments cannot be changed."""
        p = self.serving._project(s, principal, project, write=write)
        if environment in self.serving._system_envs():
            raise InvalidInput(f"{environment!r} is a base environment: its one tag, 'latest', cannot be changed.")
        return p, self.serving._env_row(s, p, environment)

    @staticmethod
    def _tag_row(s: Session, env: EnvironmentRow, tag: Any) -> EnvironmentTagRow:
        row = (
            s.scalar(
                select(EnvironmentTagRow).where(
                    EnvironmentTagRow.environment_id == env.id, EnvironmentTagRow.name == tag
                )
            )
            if lookup_key(tag, 128)
            else None
        )
        if row is None:
            raise NotFound(f"Environment {env.name!r} has no tag {tag!r}")
        return row

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
        return env.base_environment or self.serving._system_envs()[-1]

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
    def list_tags(self, principal: Principal, project: Any, environment: Any) -> list[EnvironmentTag]:
        """``latest`` first, then the others oldest first."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                return [self._system_tag(environment)]
            env = self.serving._env_row(s, p, environment)
            rows = s.scalars(select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == env.id)).all()
            rows = sorted(rows, key=lambda r: (r.name != DEFAULT_TAG, aware(r.created_at), r.name))
            return [self._entity(s, env, r) for r in rows]

    def get_tag(self, principal: Principal, project: Any, environment: Any, tag: Any) -> EnvironmentTag:
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                if tag != DEFAULT_TAG:
                    raise NotFound(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}")
                return self._system_tag(environment)
            env = self.serving._env_row(s, p, environment)
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

    def create_tag(self, principal: Principal, project: Any, environment: Any, body: dict[str, Any]) -> EnvironmentTag:
        """``{name?, status?, supports_request_format?}``: a tag with no build yet (the environment's base as it is).
        Without a name it is called ``v<N>``, the next free number."""
        supports = self._supports(body.get("supports_request_format"), True)
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            names = set(s.scalars(select(EnvironmentTagRow.name).where(EnvironmentTagRow.environment_id == env.id)))
            if len(names) >= MAX_TAGS:
                raise InvalidInput(f"An environment may have at most {MAX_TAGS} tags: delete some first.")
            if body.get("name") is None:
                name = next(f"v{n}" for n in range(1, MAX_TAGS + 2) if f"v{n}" not in names)
            else:
                name = tag_name(body["name"])
            if name in names:
                raise Conflict(f"Environment {env.name!r} already has a tag {name!r}.")
            self._status_unchanged(body.get("status"), "success")
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
        self, principal: Principal, project: Any, environment: Any, tag: Any, body: dict[str, Any]
    ) -> EnvironmentTag:
        """``{status?, supports_request_format?}``; the status comes from builds (it may only be sent unchanged)."""
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            current = self._entity(s, env, row)
            self._status_unchanged(body.get("status"), current.status)
            if body.get("supports_request_format") is not None:
                row.supports_request_format = self._supports(body["supports_request_format"], True)
            row.updated_at = now()
            s.flush()
            return self._entity(s, env, row)

    @staticmethod
    def _supports(value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidInput("'supports_request_format' must be a boolean.")
        return value

    @staticmethod
    def _status_unchanged(value: Any, current: str) -> None:
        if value is not None and value != current:
            raise InvalidInput(
                f"A tag's status comes from its builds (now {current!r}): upload an environment package with "
                "…/build to change it, or leave 'status' out."
            )

    def delete_tag(self, principal: Principal, project: Any, environment: Any, tag: Any) -> None:
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
        self.serving._drop_blobs(stale)

    def usage(self, principal: Principal, project: Any, environment: Any, tag: Any) -> list[TagUsage]:
        """The deployment versions that run on a tag."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                if tag != DEFAULT_TAG:
                    raise NotFound(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}")
                return self._users(s, p, environment, None)
            env = self.serving._env_row(s, p, environment)
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
            status = self.serving._version_entity(s, p.name, d, v).status
            out.append(TagUsage(v.id, d.name, v.version, environment, v.environment_tag or DEFAULT_TAG, status))
        return out

    def check_version_tag(self, s: Session, p: RegistryProjectRow, environment: str, tag: Any) -> str | None:
        """The tag a version on ``environment`` names (None on a base environment); ``latest`` when none is given."""
        if environment in self.serving._system_envs():
            if tag not in (None, DEFAULT_TAG):
                raise InvalidInput(f"Base environment {environment!r} has one tag, 'latest', not {tag!r}.")
            return None
        env = self.serving._env_row(s, p, environment)
        if tag is not None and not isinstance(tag, str):
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

    # --- builds ---------------------------------------------------------------------------------
    def check_build_target(
        self,
        principal: Principal,
        project: Any,
        environment: Any,
        tag: Any,
        base_environment: Any = None,
        base_environment_tag: Any = None,
    ) -> None:
        """Before any bytes are stored: the caller may build this tag, on this base."""
        with self.db.uow(readonly=True) as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            self._base(s, env, row, base_environment, base_environment_tag)

    def _base(
        self, s: Session, env: EnvironmentRow, tag: EnvironmentTagRow, name: Any, tag_name: Any, default: Any = None
    ) -> str:
        """The base environment a build is made on: the one named, else ``default``, else the tag's current one,
        else the environment's."""
        bases = self.serving._system_envs()
        if tag_name not in (None, "", DEFAULT_TAG):
            raise InvalidInput(
                f"'base_environment_tag' must be 'latest' (base environments have one tag), not {tag_name!r}."
            )
        if name in (None, ""):
            latest = self._latest(s, tag)
            name = default or (latest.base_environment if latest else None) or self._base_of(env)
        if name not in bases:
            raise InvalidInput(
                f"'base_environment_name' must be a base environment ({', '.join(bases)}), not {name!r}."
            )
        return name

    async def store_package(
        self,
        principal: Principal,
        project: Any,
        environment: Any,
        tag: Any,
        data: AsyncIterable[bytes],
        filename: str,
        *,
        base_environment: Any = None,
        base_environment_tag: Any = None,
    ) -> str:
        """Store an uploaded environment package (a .zip of at most the package size limit) once the caller may
        build the tag on that base; its file id. The caller then calls :meth:`build_package`, or
        :meth:`discard_package`."""
        await asyncio.to_thread(
            self.check_build_target, principal, project, environment, tag, base_environment, base_environment_tag
        )
        if not filename.lower().endswith(".zip"):
            raise InvalidInput(f"An environment package must be a .zip file, not {filename!r}.")
        record = await self.serving.files.upload(
            principal, name=filename, data=self._limited(data), context=ENV_PACKAGE_CONTEXT
        )
        return record.id

    async def _limited(self, data: AsyncIterable[bytes]):
        total, limit = 0, self.serving.max_package_size
        async for piece in data:
            total += len(piece)
            if total > limit:
                raise TooLarge(f"An environment package may be at most {limit} bytes.")
            yield piece

    async def discard_package(self, principal: Principal, file_id: str) -> None:
        await self.serving.files.delete(principal, file_id)

    async def build_package(
        self,
        principal: Principal,
        project: Any,
        environment: Any,
        tag: Any,
        file_id: str,
        *,
        base_environment: Any = None,
        base_environment_tag: Any = None,
    ) -> EnvironmentTag:
        """Queue a build of ``tag`` from a stored package (:meth:`store_package`); the package is dropped if the
        build cannot be queued."""
        try:
            size = (await asyncio.to_thread(self.serving.files.get, principal, file_id)).size
            return await asyncio.to_thread(
                self.new_build,
                principal,
                project,
                environment,
                tag,
                file_id=file_id,
                size=size,
                base_environment=base_environment,
                base_environment_tag=base_environment_tag,
            )
        except BaseException:
            await self.discard_package(principal, file_id)
            raise

    def copy_build(
        self,
        principal: Principal,
        project: Any,
        environment: Any,
        tag: Any,
        source_environment: Any,
        source_tag: Any,
        *,
        base_environment: Any = None,
        base_environment_tag: Any = None,
    ) -> EnvironmentTag:
        """Build ``tag`` from the package of another tag of the project (no bytes copied), on that tag's base
        unless one is named."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if source_environment in self.serving._system_envs():
                raise InvalidInput(f"{source_environment!r} is a base environment: it has no package to copy.")
            src_env = self.serving._env_row(s, p, source_environment)
            src = self._latest(s, self._tag_row(s, src_env, source_tag))
            if src is None or src.file_id is None:
                raise InvalidInput(
                    f"Tag {source_tag!r} of environment {source_environment!r} has no environment package to copy."
                )
            file_id, size, base = src.file_id, src.size, src.base_environment
        return self.new_build(
            principal,
            project,
            environment,
            tag,
            file_id=file_id,
            size=size,
            base_environment=base_environment,
            base_environment_tag=base_environment_tag,
            default_base=base,
        )

    def rebuild(self, principal: Principal, project: Any, environment: Any, tag: Any) -> EnvironmentTag:
        """Build a tag again from its package, on the same base (a new build; the status starts at ``queued``)."""
        with self.db.uow(readonly=True) as s:
            _, env = self._custom(s, principal, project, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            if latest is None or latest.file_id is None:
                raise InvalidInput(f"Tag {tag!r} has no environment package to rebuild: upload one with …/build.")
            if latest.status in ("queued", "building"):
                raise InvalidInput(f"Tag {tag!r} is {latest.status} already: wait for the build to finish.")
            file_id, size, base, revision = latest.file_id, latest.size, latest.base_environment, latest.revision_id
        return self.new_build(
            principal,
            project,
            environment,
            tag,
            file_id=file_id,
            size=size,
            base_environment=base,
            revision_id=revision,
        )

    def new_build(
        self,
        principal: Principal,
        project: Any,
        environment: Any,
        tag: Any,
        *,
        file_id: str,
        size: int | None,
        base_environment: Any = None,
        base_environment_tag: Any = None,
        default_base: str | None = None,
        revision_id: str | None = None,
        as_build: bool = False,
    ) -> EnvironmentTag | EnvironmentBuild:
        """A new build of ``tag``: of a new package (a new v2.1 revision), or ``revision_id``'s package again; the
        tag as it is now (or, ``as_build``, the new build)."""
        with self.db.uow() as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            base = self._base(s, env, row, base_environment, base_environment_tag, default_base)
            build_id = new_uuid()
            build = EnvironmentBuildRow(
                id=build_id,
                tag_id=row.id,
                revision_id=revision_id or build_id,
                file_id=file_id,
                base_environment=base,
                requirements=None,
                dependency_files={},
                status="queued",
                error_message=None,
                build_log="",
                size=size,
                created_by=principal.user_id,
                created_at=now(),
                finished_at=None,
            )
            s.add(build)
            row.latest_build_id, row.updated_at = build.id, now()
            s.flush()
            self.serving.tasks.enqueue_in(s, ENV_BUILD_TASK, {"build_id": build.id}, org_id=p.org_id)
            if as_build:
                return self._build_entity(build)
            return self._entity(s, env, row)

    def package_file(self, principal: Principal, project: Any, environment: Any, tag: Any) -> str:
        """The file id of a tag's environment package (its newest build's)."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                raise NotFound(f"Base environment {environment!r} has no environment package.")
            env = self.serving._env_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            if latest is None or latest.file_id is None:
                raise NotFound(f"Tag {tag!r} of environment {env.name!r} has no environment package.")
            return latest.file_id

    def dependency_files(self, principal: Principal, project: Any, environment: Any, tag: Any) -> list[tuple[str, str]]:
        """(name, content) of requirements.txt and ubiops.yaml in a tag's package, once its build read them."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                return []
            env = self.serving._env_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            return sorted((latest.dependency_files or {}).items()) if latest else []

    def build_log(self, principal: Principal, project: Any, environment: Any, tag: Any) -> str:
        """The log of a tag's newest build (empty before it started)."""
        with self.db.uow(readonly=True) as s:
            p = self.serving._project(s, principal, project)
            if environment in self.serving._system_envs():
                return ""
            env = self.serving._env_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            return (latest.build_log or "") if latest else ""

    # --- API v2.1: environment revisions and builds (of the tag ``latest``) ------------------------
    def _latest_tag(self, s: Session, principal: Principal, project: Any, environment: Any):
        p = self.serving._project(s, principal, project)
        if environment in self.serving._system_envs():
            raise NotFound(f"Base environment {environment!r} has no environment revisions")
        env = self.serving._env_row(s, p, environment)
        return p, env, self._tag_row(s, env, DEFAULT_TAG)

    @staticmethod
    def _builds(s: Session, tag: EnvironmentTagRow) -> list[EnvironmentBuildRow]:
        return list(
            s.scalars(
                select(EnvironmentBuildRow)
                .where(EnvironmentBuildRow.tag_id == tag.id)
                .order_by(EnvironmentBuildRow.created_at, EnvironmentBuildRow.id)
            )
        )

    @staticmethod
    def _build_entity(b: EnvironmentBuildRow) -> EnvironmentBuild:
        return EnvironmentBuild(
            b.id,
            b.revision_id,
            b.status,
            truncate(b.error_message),
            "environment package upload" if b.id == b.revision_id else "rebuild",
            aware(b.created_at),
            aware(b.finished_at) if b.finished_at else None,
        )

    def revision_summary(self, s: Session, env: EnvironmentRow) -> dict[str, str | None]:
        """``latest_revision``/``latest_build`` (the tag ``latest``'s newest build) and ``active_revision``/
        ``active_build`` (its newest successful one) of a custom environment, as API v2.1 shows them."""
        tag = s.scalar(
            select(EnvironmentTagRow).where(
                EnvironmentTagRow.environment_id == env.id, EnvironmentTagRow.name == DEFAULT_TAG
            )
        )
        latest = self._latest(s, tag) if tag is not None else None
        active = (
            s.scalar(
                select(EnvironmentBuildRow)
                .where(EnvironmentBuildRow.tag_id == tag.id, EnvironmentBuildRow.status == "success")
                .order_by(EnvironmentBuildRow.created_at.desc())
                .limit(1)
            )
            if tag is not None
            else None
        )
        return {
            "latest_revision": latest.revision_id if latest else None,
            "latest_build": latest.id if latest else None,
            "active_revision": active.revision_id if active else None,
            "active_build": active.id if active else None,
        }

    def list_revisions(self, principal: Principal, project: Any, environment: Any) -> list[EnvironmentRevision]:
        """The packages uploaded to the environment (its tag ``latest``), oldest first."""
        if environment in self.serving._system_envs():
            self.serving.get_environment(principal, project, environment)  # the project exists and is readable
            return []
        with self.db.uow(readonly=True) as s:
            _, env, tag = self._latest_tag(s, principal, project, environment)
            return [
                EnvironmentRevision(b.id, env.name, b.created_by, aware(b.created_at))
                for b in self._builds(s, tag)
                if b.revision_id == b.id
            ]

    def get_revision(
        self, principal: Principal, project: Any, environment: Any, revision_id: Any
    ) -> EnvironmentRevision:
        with self.db.uow(readonly=True) as s:
            _, env, tag = self._latest_tag(s, principal, project, environment)
            b = self._revision_row(s, tag, revision_id)
            return EnvironmentRevision(b.id, env.name, b.created_by, aware(b.created_at))

    @staticmethod
    def _revision_row(s: Session, tag: EnvironmentTagRow, revision_id: Any) -> EnvironmentBuildRow:
        row = s.get(EnvironmentBuildRow, revision_id) if lookup_key(revision_id, 36) else None
        if row is None or row.tag_id != tag.id or row.revision_id != row.id:
            raise NotFound(f"Environment revision {revision_id!r} not found")
        return row

    def list_builds(
        self, principal: Principal, project: Any, environment: Any, revision_id: Any
    ) -> list[EnvironmentBuild]:
        """The builds of one environment revision: its first and every rebuild, oldest first."""
        with self.db.uow(readonly=True) as s:
            _, _, tag = self._latest_tag(s, principal, project, environment)
            first = self._revision_row(s, tag, revision_id)
            return [self._build_entity(b) for b in self._builds(s, tag) if b.revision_id == first.id]

    def get_build(
        self, principal: Principal, project: Any, environment: Any, revision_id: Any, build_id: Any
    ) -> EnvironmentBuild:
        for build in self.list_builds(principal, project, environment, revision_id):
            if build.id == build_id:
                return build
        raise NotFound(f"Build {build_id!r} of environment revision {revision_id!r} not found")

    def rebuild_environment_revision(
        self, principal: Principal, project: Any, environment: Any, revision_id: Any
    ) -> EnvironmentBuild:
        """Build an environment revision's package again (the tag ``latest``'s newest build from now on)."""
        with self.db.uow(readonly=True) as s:
            _, _, tag = self._latest_tag(s, principal, project, environment)
            first = self._revision_row(s, tag, revision_id)
            latest = self._latest(s, tag)
            if latest is not None and latest.status in ("queued", "building"):
                raise InvalidInput(f"Environment {environment!r} is {latest.status} already: wait for that build.")
            if first.file_id is None:
                raise InvalidInput(f"Environment revision {revision_id!r} has no package to rebuild.")
            file_id, size, base = first.file_id, first.size, first.base_environment
        return self.new_build(
            principal,
            project,
            environment,
            DEFAULT_TAG,
            file_id=file_id,
            size=size,
            base_environment=base,
            revision_id=first.id,
            as_build=True,
        )

    def revision_file(self, principal: Principal, project: Any, environment: Any, revision_id: Any) -> str:
        """The file id of an environment revision's package."""
        with self.db.uow(readonly=True) as s:
            _, _, tag = self._latest_tag(s, principal, project, environment)
            row = self._revision_row(s, tag, revision_id)
            if row.file_id is None:
                raise NotFound(f"Environment revision {revision_id!r} has no package.")
            return row.file_id

    def build_dependency_files(
        self, principal: Principal, project: Any, environment: Any, revision_id: Any, build_id: Any
    ) -> list[tuple[str, str]]:
        self.get_build(principal, project, environment, revision_id, build_id)  # exists and is readable
        with self.db.uow(readonly=True) as s:
            return sorted((s.get(EnvironmentBuildRow, build_id).dependency_files or {}).items())

    # --- what a revision builds in -------------------------------------------------------------
    def resolve(self, s: Session, p: RegistryProjectRow, v: DeploymentVersionRow) -> EnvironmentChoice:
        """The environment a version's revision builds in now. EnvironmentNotReady while its tag builds;
        PackageRejected when the tag failed or is gone."""
        if v.environment in self.serving._system_envs():
            return EnvironmentChoice(v.environment, None, None, v.environment)
        env = s.scalar(
            select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == v.environment)
        )
        if env is None:
            raise PackageRejected(f"The version's environment {v.environment!r} does not exist.")
        name = v.environment_tag or DEFAULT_TAG
        label = f"{env.name}:{name}"
        tag = s.scalar(
            select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == env.id, EnvironmentTagRow.name == name)
        )
        if tag is None:
            raise PackageRejected(f"The version's environment {env.name!r} has no tag {name!r}.")
        build = self._latest(s, tag)
        if build is None:
            return EnvironmentChoice(self._base_of(env), None, None, label)
        if build.status in ("queued", "building"):
            raise EnvironmentNotReady(f"environment {label} is {build.status}")
        if build.status != "success":
            raise PackageRejected(
                build_error(f"The environment {label} failed to build: {build.error_message or 'see its build log'}")
            )
        return EnvironmentChoice(build.base_environment, build.requirements, build.id, label)

    # --- building (a background task) -----------------------------------------------------------
    def run_build(self, build_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
        """Build one environment package (task ``serving_environment_build``); a build that is no longer its
        tag's newest stands down."""
        lines: list[str] = []
        last = [time.monotonic()]

        def note(line: str) -> None:
            lines.append(line.rstrip("\n"))
            if len(lines) > 4000:
                del lines[:2000]
            if time.monotonic() - last[0] > PROGRESS_EVERY:  # a long pip run: renew the task's lease
                last[0] = time.monotonic()
                progress(50)

        with self.db.uow() as s:
            build = s.get(EnvironmentBuildRow, build_id)
            if build is None:
                return {"build_id": build_id, "status": "gone"}
            tag = s.get(EnvironmentTagRow, build.tag_id)
            if tag.latest_build_id != build.id:
                if build.status in ("queued", "building"):
                    build.status, build.error_message = "failed", "Superseded by a newer build of the tag."
                    build.finished_at = now()
                return {"build_id": build_id, "status": "superseded"}
            if build.status not in ("queued", "building"):
                return {"build_id": build_id, "status": build.status}
            env = s.get(EnvironmentRow, tag.environment_id)
            build.status = "building"
            base, file_id, label = build.base_environment, build.file_id, f"{env.name}:{tag.name}"
        requirements, files = None, {}
        try:
            progress(5)
            note(f"building environment {label} on {base}")
            if file_id is None:
                raise PackageRejected("The build has no environment package.")
            requirements, files = self._read(build_id, file_id, note)
            listed = (requirements or "").splitlines()
            note("requirements: " + (", ".join(listed[:20]) + (", …" if len(listed) > 20 else "") or "none"))
            progress(20)
            if base not in self.serving._system_envs():
                raise PackageRejected(f"Base environment {base!r} is not available on this server.")
            self.serving.builder.build(environment_key(base, requirements), base, requirements, note)
        except (PackageRejected, BuildFailed, HarborError) as exc:
            message = exc.message if isinstance(exc, HarborError) else str(exc)
            note(f"build failed: {message}")
            return self._finish(build_id, "failed", message, lines, requirements, files)
        except Exception as exc:  # a bug or the machine: the tag must not stay "building"
            log.exception("environment build %s crashed", build_id)
            note(f"build failed: internal error: {type(exc).__name__}: {exc}")
            return self._finish(build_id, "failed", f"internal error: {type(exc).__name__}: {exc}", lines, None, files)
        note(f"environment {label} is ready")
        progress(100)
        return self._finish(build_id, "success", None, lines, requirements, files)

    def _read(self, build_id: str, file_id: str, note: Callable[[str], None]) -> tuple[str | None, dict]:
        folder = self.serving.work_dir / "environment-packages"
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"{build_id}.zip"
        note("fetching the environment package")
        reader = self.serving.files.open_reader(file_id)
        try:
            with open(archive, "wb") as out:
                while chunk := reader.read(1 << 20):
                    out.write(chunk)
        finally:
            reader.close()
        try:
            note("unpacking")
            return read_environment_package(archive, folder / build_id, note)
        finally:
            archive.unlink(missing_ok=True)

    def _finish(
        self, build_id: str, status: str, error: str | None, lines: list[str], requirements: str | None, files: dict
    ) -> dict[str, Any]:
        with self.db.uow() as s:
            build = s.get(EnvironmentBuildRow, build_id)
            if build is None:
                return {"build_id": build_id, "status": "gone"}
            build.status, build.finished_at = status, now()
            build.error_message = reason = build_error(error) if error else None
            build.build_log = "\n".join(lines)[-MAX_LOG:]
            build.requirements, build.dependency_files = requirements, files
            tag = s.get(EnvironmentTagRow, build.tag_id)
            if tag is not None and tag.latest_build_id == build.id:
                tag.updated_at = now()
                env = s.get(EnvironmentRow, tag.environment_id)
                rebuilt = self.serving.environment_built(s, env, tag, success=status == "success")
            else:
                rebuilt = 0
        return {"build_id": build_id, "status": status, "error": reason, "revisions_queued": rebuilt}
