"""Building environment tags (task ``serving_environment_build``), the API v2.1 environment revisions, and what a
revision builds in. What a tag is: core/serving/environment_tags.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.compute.base import BuildFailed
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving.environment_tags import (
    DEFAULT_TAG,
    ENV_BUILD_TASK,
    ENV_PACKAGE_CONTEXT,
    MAX_LOG,
    PROGRESS_EVERY,
    EnvironmentBuild,
    EnvironmentChoice,
    EnvironmentNotReady,
    EnvironmentRevision,
    EnvironmentTag,
    EnvironmentTags,
    read_environment_package,
)
from modelharbor.core.serving.packages import PackageRejected, environment_key
from modelharbor.core.serving.request_history import lookup_key
from modelharbor.core.serving.validation import build_error, truncate
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import DeploymentVersionRow, EnvironmentBuildRow, EnvironmentRow, EnvironmentTagRow
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Principal

log = logging.getLogger("modelharbor.serving.environments")


class EnvironmentTagService(EnvironmentTags):
    """Tags of custom environments and their builds; part of :class:`ServingService` (``serving.environment_tags``),
    whose projects, permissions, files, tasks and builder it uses."""

    # --- builds ---------------------------------------------------------------------------------
    def check_build_target(
        self,
        principal: Principal,
        project: str,
        environment: str,
        tag: str,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
    ) -> None:
        """Before any bytes are stored: the caller may build this tag, on this base."""
        with self.db.uow(readonly=True) as s:
            p, env = self._custom(s, principal, project, environment, write=True)
            row = self._tag_row(s, env, tag)
            self._base(s, env, row, base_environment, base_environment_tag)

    def _base(
        self,
        s: Session,
        env: EnvironmentRow,
        tag: EnvironmentTagRow,
        name: str | None,
        tag_name: str | None,
        default: str | None = None,
    ) -> str:
        """The base environment a build is made on: the one named, else ``default``, else the tag's current one,
        else the environment's."""
        bases = self.serving.system_environments()
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
        project: str,
        environment: str,
        tag: str,
        data: AsyncIterable[bytes],
        filename: str,
        *,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
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
        project: str,
        environment: str,
        tag: str,
        file_id: str,
        *,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
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

    async def build_from(
        self,
        principal: Principal,
        project: str,
        environment: str,
        tag: str,
        *,
        file_id: str | None = None,
        source: tuple[str, str] | None = None,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
    ) -> EnvironmentTag:
        """Queue a build of ``tag`` from a stored package (``file_id``, :meth:`build_package`), else from the package
        of ``source`` = (environment, tag) of the project (:meth:`copy_build`)."""
        base = {"base_environment": base_environment, "base_environment_tag": base_environment_tag}
        if file_id is not None:
            return await self.build_package(principal, project, environment, tag, file_id, **base)
        if source is None:
            raise InvalidInput("Give an environment package or the environment and tag whose package to build.")
        return await asyncio.to_thread(
            lambda: self.copy_build(principal, project, environment, tag, source[0], source[1], **base)
        )

    def copy_build(
        self,
        principal: Principal,
        project: str,
        environment: str,
        tag: str,
        source_environment: str,
        source_tag: str,
        *,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
    ) -> EnvironmentTag:
        """Build ``tag`` from the package of another tag of the project (no bytes copied), on that tag's base
        unless one is named."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if source_environment in self.serving.system_environments():
                raise InvalidInput(f"{source_environment!r} is a base environment: it has no package to copy.")
            src_env = self.serving.environment_row(s, p, source_environment)
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

    def rebuild(self, principal: Principal, project: str, environment: str, tag: str) -> EnvironmentTag:
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
        project: str,
        environment: str,
        tag: str,
        *,
        file_id: str,
        size: int | None,
        base_environment: str | None = None,
        base_environment_tag: str | None = None,
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

    def package_file(self, principal: Principal, project: str, environment: str, tag: str) -> str:
        """The file id of a tag's environment package (its newest build's)."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                raise NotFound(f"Base environment {environment!r} has no environment package.")
            env = self.serving.environment_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            if latest is None or latest.file_id is None:
                raise NotFound(f"Tag {tag!r} of environment {env.name!r} has no environment package.")
            return latest.file_id

    async def open_package(
        self, principal: Principal, project: str, environment: str, tag: str, range_header: str | None = None
    ) -> tuple[FileRecord, Any, AsyncIterator[bytes]]:
        """A tag's environment package for reading: (record, satisfied range or None, byte stream), as
        ``files.open``."""
        file_id = await asyncio.to_thread(self.package_file, principal, project, environment, tag)
        return await self.serving.files.open(principal, file_id, range_header)

    def dependency_files(self, principal: Principal, project: str, environment: str, tag: str) -> list[tuple[str, str]]:
        """(name, content) of requirements.txt and ubiops.yaml in a tag's package, once its build read them."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                return []
            env = self.serving.environment_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            return sorted((latest.dependency_files or {}).items()) if latest else []

    def tag_detail(self, principal: Principal, project: str, environment: str, tag: str) -> tuple[EnvironmentTag, str]:
        """A tag and the log of its newest build (empty before it started)."""
        return self.get_tag(principal, project, environment, tag), self.build_log(principal, project, environment, tag)

    def build_log(self, principal: Principal, project: str, environment: str, tag: str) -> str:
        """The log of a tag's newest build (empty before it started)."""
        with self.db.uow(readonly=True) as s:
            p = self.serving.project_row(s, principal, project)
            if environment in self.serving.system_environments():
                return ""
            env = self.serving.environment_row(s, p, environment)
            latest = self._latest(s, self._tag_row(s, env, tag))
            return (latest.build_log or "") if latest else ""

    # --- API v2.1: environment revisions and builds (of the tag ``latest``) ------------------------
    def _latest_tag(self, s: Session, principal: Principal, project: str, environment: str):
        p = self.serving.project_row(s, principal, project)
        if environment in self.serving.system_environments():
            raise NotFound(f"Base environment {environment!r} has no environment revisions")
        env = self.serving.environment_row(s, p, environment)
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

    def list_revisions(self, principal: Principal, project: str, environment: str) -> list[EnvironmentRevision]:
        """The packages uploaded to the environment (its tag ``latest``), oldest first."""
        if environment in self.serving.system_environments():
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
        self, principal: Principal, project: str, environment: str, revision_id: str
    ) -> EnvironmentRevision:
        with self.db.uow(readonly=True) as s:
            _, env, tag = self._latest_tag(s, principal, project, environment)
            b = self._revision_row(s, tag, revision_id)
            return EnvironmentRevision(b.id, env.name, b.created_by, aware(b.created_at))

    @staticmethod
    def _revision_row(s: Session, tag: EnvironmentTagRow, revision_id: str) -> EnvironmentBuildRow:
        row = s.get(EnvironmentBuildRow, revision_id) if lookup_key(revision_id, 36) else None
        if row is None or row.tag_id != tag.id or row.revision_id != row.id:
            raise NotFound(f"Environment revision {revision_id!r} not found")
        return row

    def list_builds(
        self, principal: Principal, project: str, environment: str, revision_id: str
    ) -> list[EnvironmentBuild]:
        """The builds of one environment revision: its first and every rebuild, oldest first."""
        with self.db.uow(readonly=True) as s:
            _, _, tag = self._latest_tag(s, principal, project, environment)
            first = self._revision_row(s, tag, revision_id)
            return [self._build_entity(b) for b in self._builds(s, tag) if b.revision_id == first.id]

    def get_build(
        self, principal: Principal, project: str, environment: str, revision_id: str, build_id: str
    ) -> EnvironmentBuild:
        for build in self.list_builds(principal, project, environment, revision_id):
            if build.id == build_id:
                return build
        raise NotFound(f"Build {build_id!r} of environment revision {revision_id!r} not found")

    def rebuild_environment_revision(
        self, principal: Principal, project: str, environment: str, revision_id: str
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

    def revision_file(self, principal: Principal, project: str, environment: str, revision_id: str) -> str:
        """The file id of an environment revision's package."""
        with self.db.uow(readonly=True) as s:
            _, _, tag = self._latest_tag(s, principal, project, environment)
            row = self._revision_row(s, tag, revision_id)
            if row.file_id is None:
                raise NotFound(f"Environment revision {revision_id!r} has no package.")
            return row.file_id

    async def open_revision_package(
        self, principal: Principal, project: str, environment: str, revision_id: str, range_header: str | None = None
    ) -> tuple[FileRecord, Any, AsyncIterator[bytes]]:
        """An environment revision's package for reading, as :meth:`open_package`."""
        file_id = await asyncio.to_thread(self.revision_file, principal, project, environment, revision_id)
        return await self.serving.files.open(principal, file_id, range_header)

    def build_dependency_files(
        self, principal: Principal, project: str, environment: str, revision_id: str, build_id: str
    ) -> list[tuple[str, str]]:
        self.get_build(principal, project, environment, revision_id, build_id)  # exists and is readable
        with self.db.uow(readonly=True) as s:
            return sorted((s.get(EnvironmentBuildRow, build_id).dependency_files or {}).items())

    # --- what a revision builds in -------------------------------------------------------------
    def resolve(self, s: Session, p: RegistryProjectRow, v: DeploymentVersionRow) -> EnvironmentChoice:
        """The environment a version's revision builds in now. EnvironmentNotReady while its tag builds;
        PackageRejected when the tag failed or is gone."""
        if v.environment in self.serving.system_environments():
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
            given = (build.requirements, dict(build.dependency_files or {})) if build.spec is not None else None
        requirements, files = None, {}
        try:
            progress(5)
            note(f"building environment {label} on {base}")
            if given is not None:  # a revision given as fields (core/serving/environment_catalog.py)
                requirements, files = given
            elif file_id is None:
                raise PackageRejected("The build has no environment package.")
            else:
                requirements, files = self._read(build_id, file_id, note)
            listed = (requirements or "").splitlines()
            note("requirements: " + (", ".join(listed[:20]) + (", …" if len(listed) > 20 else "") or "none"))
            progress(20)
            if base not in self.serving.system_environments():
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
                # an organisation's environment (no project) has no deployment versions to rebuild
                ok = status == "success"
                rebuilt = self.serving.environment_built(s, env, tag, success=ok) if env.project_id else 0
            else:
                rebuilt = 0
        return {"build_id": build_id, "status": status, "error": reason, "revisions_queued": rebuilt}
