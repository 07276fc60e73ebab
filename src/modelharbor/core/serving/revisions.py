"""Revisions (uploaded deployment packages) and their builds: a new revision queues a build (task ``serving_build``);
the build unpacks, checks, prepares the environment and proves the package initialises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.compute.base import BuildFailed, WorkerSpec
from modelharbor.compute.sandbox import share_read_only
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving.entities import Revision
from modelharbor.core.serving.environment_tags import EnvironmentChoice, EnvironmentNotReady
from modelharbor.core.serving.packages import (
    PackageRejected,
    check_ubiops_yaml,
    environment_key,
    inspect_deployment,
    unpack_package,
)
from modelharbor.core.serving.validation import (
    BUILD_TASK,
    MAX_TIMEOUT,
    MAX_UBIOPS_YAML,
    PACKAGE_CONTEXT,
    build_error,
    hardware_tier_of,
)
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentRow,
    EnvironmentTagRow,
    RevisionRow,
)
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Principal


class Revisions:
    """Revisions and building them (mixed into ServingService)."""

    # --- revisions ------------------------------------------------------------------------------
    async def upload_revision(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        version: str,
        data: AsyncIterable[bytes],
        filename: str,
    ) -> Revision:
        """Store an uploaded package and queue its build; the version's latest revision is the new one."""
        await asyncio.to_thread(self.get_version, principal, project, deployment, version)  # exists, readable
        await asyncio.to_thread(self._check_write, principal, project)
        if not filename.lower().endswith(".zip"):
            raise InvalidInput(f"A deployment package must be a .zip file, not {filename!r}.")
        record = await self.files.upload(principal, name=filename, data=self._limited(data), context=PACKAGE_CONTEXT)
        try:
            return await asyncio.to_thread(self._new_revision, principal, project, deployment, version, record.id)
        except BaseException:
            await self.files.delete(principal, record.id)
            raise

    async def _limited(self, data: AsyncIterable[bytes]):
        total = 0
        async for piece in data:
            total += len(piece)
            if total > self.max_package_size:
                raise TooLarge(f"A deployment package may be at most {self.max_package_size} bytes.")
            yield piece

    def _check_write(self, principal: Principal, project: str) -> None:
        with self.db.uow(readonly=True) as s:
            self.project_row(s, principal, project, write=True)

    def copy_revision(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        version: str,
        source_deployment: str,
        source_version: str,
    ) -> Revision:
        """A new revision of ``version`` from the active package of another version (no bytes copied)."""
        src = self.get_version(principal, project, source_deployment, source_version)
        if src.active_revision is None:
            raise InvalidInput(f"Version {source_version!r} of {source_deployment!r} has no built package to copy.")
        with self.db.uow(readonly=True) as s:
            file_id = s.get(RevisionRow, src.active_revision).file_id
        return self._new_revision(principal, project, deployment, version, file_id)

    def new_revision_from_file(
        self, principal: Principal, project: str, deployment: str, version: str, file_id: str, *, build: bool = True
    ) -> Revision:
        """A revision whose package is an existing file (e.g. an imported model's archive, zip or tar); with
        ``build=False`` the caller runs :meth:`build_revision` itself."""
        return self._new_revision(principal, project, deployment, version, file_id, enqueue=build)

    def _new_revision(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        version: str,
        file_id: str | None,
        *,
        enqueue: bool = True,
    ) -> Revision:
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            v = self._version_row(s, d, version)
            row = RevisionRow(
                id=new_uuid(),
                version_id=v.id,
                file_id=file_id,
                status="queued",
                error_message=None,
                build_log="",
                has_request_method=None,
                has_requests_method=None,
                build_id=new_uuid(),
                created_by=principal.user_id,
                created_at=now(),
            )
            s.add(row)
            v.latest_revision_id = row.id
            v.updated_at = now()
            s.flush()
            if enqueue:
                self.tasks.enqueue_in(
                    s, BUILD_TASK, {"revision_id": row.id, "build_id": row.build_id}, org_id=principal.org_id
                )
            self._changed()
            return self._revision_entity(v, row)

    def rebuild_revision(
        self, principal: Principal, project: str, deployment: str, version: str, revision_id: str
    ) -> Revision:
        """Build a revision's package again (in the version's environment as it is now): its status goes back to
        ``queued``; until the new build succeeds the revision keeps serving as it was built before."""
        with self.db.uow() as s:
            p = self.project_row(s, principal, project, write=True)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            row = self._revision_row(s, v, revision_id)
            if row.file_id is None:
                raise InvalidInput(f"Revision {row.id!r} has no package to rebuild.")
            if row.status in ("queued", "building"):
                raise InvalidInput(f"Revision {row.id!r} is {row.status} already: wait for its build to finish.")
            self._queue_build(s, row, p.org_id)
            s.flush()
            self._changed()
            return self._revision_entity(v, row)

    def _queue_build(self, s: Session, rev: RevisionRow, org_id: str | None) -> None:
        """A new build of ``rev``: any build of it still queued or running stands down."""
        rev.status, rev.error_message, rev.build_id = "queued", None, new_uuid()
        self.tasks.enqueue_in(s, BUILD_TASK, {"revision_id": rev.id, "build_id": rev.build_id}, org_id=org_id)

    def environment_built(self, s: Session, env: EnvironmentRow, tag: EnvironmentTagRow, *, success: bool) -> int:
        """An environment tag's build finished: every version on the tag builds its latest revision again (after a
        failure only those waiting for the tag, which then fail with its reason). How many were queued."""
        p = s.get(RegistryProjectRow, env.project_id)
        versions = s.scalars(
            select(DeploymentVersionRow)
            .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
            .where(
                DeploymentRow.project_id == env.project_id,
                DeploymentVersionRow.environment == env.name,
                DeploymentVersionRow.environment_tag == tag.name,
            )
        ).all()
        queued = 0
        for v in versions:
            rev = s.get(RevisionRow, v.latest_revision_id) if v.latest_revision_id else None
            if rev is None or rev.file_id is None or not (success or rev.status == "queued"):
                continue
            self._queue_build(s, rev, p.org_id)
            queued += 1
        self._changed()
        return queued

    def list_revisions(self, principal: Principal, project: str, deployment: str, version: str) -> list[Revision]:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            rows = s.scalars(select(RevisionRow).where(RevisionRow.version_id == v.id).order_by(RevisionRow.created_at))
            return [self._revision_entity(v, r) for r in rows]

    def get_revision(
        self, principal: Principal, project: str, deployment: str, version: str, revision_id: str
    ) -> Revision:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            return self._revision_entity(v, self._revision_row(s, v, revision_id))

    def revision_log(self, principal: Principal, project: str, deployment: str, version: str, revision_id: str) -> str:
        with self.db.uow(readonly=True) as s:
            p = self.project_row(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            return self._revision_row(s, v, revision_id).build_log or ""

    def revision_file(self, principal: Principal, project: str, deployment: str, version: str, revision_id: str) -> str:
        rev = self.get_revision(principal, project, deployment, version, revision_id)
        if rev.file_id is None:
            raise NotFound("This revision has no package file.")
        return rev.file_id

    async def open_revision_file(
        self,
        principal: Principal,
        project: str,
        deployment: str,
        version: str,
        revision_id: str,
        range_header: str | None = None,
    ) -> tuple[FileRecord, Any, AsyncIterator[bytes]]:
        """A revision's package for reading: (record, satisfied range or None, byte stream), as ``files.open``."""
        file_id = await asyncio.to_thread(self.revision_file, principal, project, deployment, version, revision_id)
        return await self.files.open(principal, file_id, range_header)

    # --- building (a background task) -----------------------------------------------------------
    def build_revision(
        self, revision_id: str, progress: Callable[[int], None], *, build_id: str | None = None
    ) -> dict[str, Any]:
        """Build a revision (task ``serving_build``). ``build_id``: the build this task was queued for; when the
        revision was queued again since, this task stands down. A revision whose environment tag is still building
        stays ``queued``: it is built again when the tag's build finishes."""
        lines: list[str] = []

        def note(line: str) -> None:
            lines.append(line.rstrip("\n"))
            if len(lines) > 2000:
                del lines[:1000]

        with self.db.uow() as s:
            rev = s.get(RevisionRow, revision_id)
            if rev is None:
                return {"revision_id": revision_id, "status": "gone"}
            if build_id is not None and rev.build_id not in (None, build_id):
                return {"revision_id": revision_id, "status": "superseded"}
            v = s.get(DeploymentVersionRow, rev.version_id)
            p = s.get(RegistryProjectRow, s.get(DeploymentRow, v.deployment_id).project_id)
            try:
                self.environment_tags.resolve(s, p, v)
            except EnvironmentNotReady as exc:
                rev.status, rev.build_log = "queued", f"waiting: {exc.message}; the build starts when it is done"
                return {"revision_id": revision_id, "status": "waiting"}
            except PackageRejected:
                pass  # the build below fails with the reason
            rev.status = "building"
        try:
            progress(10)
            spec, has_request, has_requests, choice = self._prepare(revision_id, note, build=True)
            progress(60)
            note("starting one instance to check that the deployment initialises")
            check = self.executor.check(spec)
            if check.state == "failed":
                raise PackageRejected(f"The deployment failed to start: {check.error}")
            note("the deployment initialised")
        except EnvironmentNotReady as exc:  # the tag was rebuilt meanwhile: its end queues this build again
            note(f"waiting: {exc.message}")
            self._finish(revision_id, "queued", None, lines, build_id=build_id)
            return {"revision_id": revision_id, "status": "waiting"}
        except (PackageRejected, BuildFailed, HarborError) as exc:
            message = exc.message if isinstance(exc, HarborError) else str(exc)
            note(f"build failed: {message}")
            self._finish(revision_id, "failed", build_error(message), lines, build_id=build_id)
            return {"revision_id": revision_id, "status": "failed", "error": build_error(message)}
        self._finish(revision_id, "success", None, lines, has_request, has_requests, choice=choice, build_id=build_id)
        progress(100)
        return {"revision_id": revision_id, "status": "success"}

    def _finish(
        self,
        revision_id: str,
        status: str,
        error: str | None,
        lines: list[str],
        has_request=None,
        has_requests=None,
        *,
        choice: EnvironmentChoice | None = None,
        build_id: str | None = None,
    ) -> None:
        with self.db.uow() as s:
            rev = s.get(RevisionRow, revision_id)
            if rev is None or (build_id is not None and rev.build_id not in (None, build_id)):
                return  # gone, or queued again meanwhile: that build reports
            rev.status, rev.error_message = status, error
            rev.build_log = "\n".join(lines)[-200_000:]
            if has_request is not None:
                rev.has_request_method, rev.has_requests_method = has_request, has_requests
            if status == "success":
                if choice is not None:  # what it serves with from now on
                    rev.environment_base, rev.environment_requirements = choice.base, choice.requirements
                    rev.environment_build_id = choice.build_id
                v = s.get(DeploymentVersionRow, rev.version_id)
                current = s.get(RevisionRow, v.active_revision_id) if v.active_revision_id else None
                if current is None or aware(current.created_at) <= aware(rev.created_at):
                    v.active_revision_id = rev.id
                    v.updated_at = now()
        self._changed()

    def _prepare(
        self, revision_id: str, note: Callable[[str], None], *, build: bool = False
    ) -> tuple[WorkerSpec, bool, bool, EnvironmentChoice]:
        """Unpack the package, inspect it, build its environment; the spec that runs it. Building, the environment
        is the version's now (environment_builds.py); serving, the one the revision's last build used."""
        with self.db.uow(readonly=True) as s:
            rev = s.get(RevisionRow, revision_id)
            v = s.get(DeploymentVersionRow, rev.version_id) if rev is not None else None
            if v is None:  # deleted after the caller's route was read (routes are cached)
                raise NotFound("Deployment version not found: it was deleted")
            d = s.get(DeploymentRow, v.deployment_id)
            p = s.get(RegistryProjectRow, d.project_id)
            if build:
                choice = self.environment_tags.resolve(s, p, v)
            elif rev.environment_base is not None:
                choice = EnvironmentChoice(
                    rev.environment_base, rev.environment_requirements, rev.environment_build_id, rev.environment_base
                )
            else:  # built before environments had tags: the base alone (custom environments had no packages)
                env_row = s.scalar(
                    select(EnvironmentRow).where(
                        EnvironmentRow.project_id == p.id, EnvironmentRow.name == v.environment
                    )
                )
                base = env_row.base_environment if env_row is not None else v.environment
                choice = EnvironmentChoice(base or v.environment, None, None, v.environment)
            env_vars = self._effective_env(s, p.id, d.id, v.id)
            file_id = rev.file_id
            spec_base = (v.id, v.minimum_instances, v.maximum_instances, v.maximum_idle_time, p.name, d.name, v.version)
            limits = self.hardware_tiers.workload_limits(
                s, p.org_id, hardware_tier_of(v.instance_type_group_name, v.settings)
            )
            org_id = p.org_id
        root = self._package_dir(revision_id, file_id, note)
        has_request, has_requests = inspect_deployment(root)
        note(
            f"deployment.py defines Deployment with {'request' if has_request else ''}{' and ' if has_request and has_requests else ''}{'requests' if has_requests else ''}"
        )
        if build and (root / "ubiops.yaml").is_file():
            if (root / "ubiops.yaml").stat().st_size > MAX_UBIOPS_YAML:
                raise PackageRejected(f"ubiops.yaml is larger than {MAX_UBIOPS_YAML} bytes.")
            for line in check_ubiops_yaml((root / "ubiops.yaml").read_text(errors="replace"), "ubiops.yaml"):
                note(line)
        own = (root / "requirements.txt").read_text(errors="replace") if (root / "requirements.txt").is_file() else None
        requirements = "\n".join(x for x in (choice.requirements, own) if x).strip() or None
        base = choice.base
        if base not in self.system_environments():
            raise PackageRejected(f"Unknown base environment {base!r}.")
        env_key = environment_key(base, requirements)
        note(
            f"environment {choice.label}"
            + (f" on {base}" if choice.label != base else "")
            + (" with the package's requirements.txt" if own and own.strip() else "")
            + f" ({env_key})"
        )
        environment = self.builder.build(env_key, base, requirements, note)
        vid, lo, hi, idle, project, deployment, version = spec_base
        spec = WorkerSpec(
            key=vid,
            revision=revision_id,
            package_dir=root,
            environment=environment,
            env_vars=env_vars,
            minimum_instances=lo,
            maximum_instances=hi,
            maximum_idle_time=float(idle),
            request_timeout=float(MAX_TIMEOUT),
            context={"project": project, "deployment": deployment, "version": version, "revision": revision_id},
            tenant=org_id,
            limits=limits,
        )
        return spec, has_request, has_requests, choice

    def _package_dir(self, revision_id: str, file_id: str | None, note: Callable[[str], None]) -> Path:
        """The unpacked package of a revision on this machine (fetched from the blob store once)."""
        dest = self.work_dir / "packages" / revision_id
        marker = dest.with_name(revision_id + ".root")
        if marker.is_file() and (Path(marker.read_text()) / "deployment.py").is_file():
            return Path(marker.read_text())
        if file_id is None:
            raise PackageRejected("The revision has no package.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        zip_path = dest.with_name(revision_id + ".zip")
        note("fetching the package")
        reader = self.files.open_reader(file_id)
        try:
            with open(zip_path, "wb") as out:
                while chunk := reader.read(1 << 20):
                    out.write(chunk)
        finally:
            reader.close()
        try:
            note("unpacking")
            root = unpack_package(zip_path, dest)
            share_read_only(dest)  # the sandboxed worker (another uid) reads it through a read-only mount
        finally:
            zip_path.unlink(missing_ok=True)
        marker.write_text(str(root))
        return root
