"""Creating what an import selected, through the serving and pipeline services' public methods: custom
environments (with their tags, whose packages are built as usual), project variables, deployments with their
variables and versions (packages become revisions), then pipelines — and undoing it all if one creation fails.

Invariants
- The whole selection is checked against the project before anything is created (:meth:`_prevalidate`): name
  clashes, unknown environments and tags, variable limits, pipeline objects.
- Each package is linked to bytes the organisation already holds (the SHA-256 of the entry as this server read it,
  never one the zip claims) — then nothing is read or stored again — else written once (by the scan already, or
  now) and committed with the checks of an upload.
- Each object created is recorded in the import's row at once; if a creation fails, what was created is deleted
  again, newest first, with the packages written (:meth:`_undo`); a later attempt undoes what a dead one left.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import now
from modelharbor.core.serving.environment_tags import DEFAULT_TAG, ENV_PACKAGE_CONTEXT
from modelharbor.core.serving.validation import MAX_ENV_VARS, PACKAGE_CONTEXT, VERSION_INTS, fields_in
from modelharbor.core.transfer.base import TransferBase
from modelharbor.core.transfer.format import IMPORT_READ, Rejected
from modelharbor.core.transfer.selection import KINDS
from modelharbor.core.transfer.staging import STAGED, Stager, staged_prefixes
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentRow,
    EnvironmentTagRow,
    EnvVarRow,
    PipelineRow,
)
from modelharbor.db.tables_transfer import ProjectImportRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import DeploymentIn, DeploymentPatch, EnvVarIn, PipelineIn, PipelineVersionIn, VersionIn
from modelharbor.domain.principal import Principal

if TYPE_CHECKING:
    from modelharbor.core.serving.pipelines import PipelineService

log = logging.getLogger("modelharbor.transfer")
S = TypeVar("S", DeploymentIn, PipelineIn)


class ImportObjects(TransferBase):
    """Checking, creating and undoing an import's objects (mixed into TransferService)."""

    def _prevalidate(self, principal: Principal, project: str, selection: dict[str, Any]) -> None:
        """Check the whole selection against the project before anything is created."""
        base = set(self.serving.system_environments())
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project, write=True)
            envs = set(s.scalars(select(EnvironmentRow.name).where(EnvironmentRow.project_id == p.id)))
            deployments = {d.name: d for d in s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id))}
            pipes = set(s.scalars(select(PipelineRow.name).where(PipelineRow.project_id == p.id)))
            project_vars = self._level_names(s, p, None, None)
            var_count = s.scalar(select(func.count()).select_from(EnvVarRow).where(EnvVarRow.project_id == p.id))
            clashes, problems = [], []
            for name, env in selection["environments"].items():
                if name in base:
                    clashes.append(f"environment {name!r} (a base environment)")
                elif name in envs:
                    clashes.append(f"environment {name!r}")
                if env["base_environment"] is not None and env["base_environment"] not in base:
                    problems.append(
                        f"environment {name!r}: unknown base environment {env['base_environment']!r} "
                        f"(this server has {', '.join(sorted(base))})"
                    )
                for tname, t in env["tags"].items():
                    if t["base_environment"] is not None and t["base_environment"] not in base:
                        problems.append(
                            f"tag {tname!r} of environment {name!r}: unknown base environment "
                            f"{t['base_environment']!r} (this server has {', '.join(sorted(base))})"
                        )
            clashes += [
                f"project environment variable {n!r}" for n in selection["environment_variables"] if n in project_vars
            ]
            clashes += [f"deployment {n!r}" for n in selection["deployments"] if n in deployments]
            clashes += [f"pipeline {n!r}" for n in selection["pipelines"] if n in pipes]
            if clashes:
                raise InvalidInput(
                    f"Already in project {p.name!r}: {', '.join(clashes)}. Nothing was imported: delete them, or give "
                    "the imported objects other names in the confirmation, and import again."
                )
            available = base | envs | set(selection["environments"])
            new_vars = len(selection["environment_variables"])
            for dname, d in selection["deployments"].items():
                new_vars += len(d["environment_variables"])
                for vname, v in d["versions"].items():
                    new_vars += len(v["environment_variables"])
                    if v["environment"] is not None and v["environment"] not in available:
                        problems.append(
                            f"version {vname!r} of {dname!r}: unknown environment {v['environment']!r} (this server "
                            f"has {', '.join(sorted(available))}; change it in the confirmation)"
                        )
                    elif v.get("environment_tag") not in (None, DEFAULT_TAG):
                        problem = self._tag_problem(s, p, selection, base, v["environment"], v["environment_tag"])
                        if problem:
                            problems.append(f"version {vname!r} of {dname!r}: {problem}")
                    for key in ("instance_type_group_name", "instance_type"):  # a hardware tier of this server
                        if v.get(key) is not None:
                            try:
                                self.serving.hardware_tiers.workload_tier(s, principal, v[key], field=key)
                            except InvalidInput as exc:
                                problems.append(
                                    f"version {vname!r} of {dname!r}: {exc.message} (change it in the confirmation)"
                                )
            if var_count + new_vars > MAX_ENV_VARS:
                problems.append(f"a project may hold at most {MAX_ENV_VARS} environment variables")
            for pname, pl in selection["pipelines"].items():
                for vname, pv in pl["versions"].items():
                    for obj in pv["objects"]:
                        ref, pinned = obj["reference_name"], obj["reference_version"]
                        where = f"object {obj['name']!r} of pipeline {pname!r} version {vname!r}"
                        if ref in selection["deployments"]:
                            if pinned is not None and pinned not in selection["deployments"][ref]["versions"]:
                                problems.append(f"{where}: deployment {ref!r} gets no version {pinned!r}")
                        elif ref in deployments:
                            if pinned is not None and not s.scalar(
                                select(DeploymentVersionRow.id).where(
                                    DeploymentVersionRow.deployment_id == deployments[ref].id,
                                    DeploymentVersionRow.version == pinned,
                                )
                            ):
                                problems.append(f"{where}: deployment {ref!r} has no version {pinned!r}")
                        else:
                            problems.append(f"{where}: unknown deployment {ref!r}")
            if problems:
                raise InvalidInput("Nothing was imported: " + "; ".join(problems) + ".")

    @staticmethod
    def _tag_problem(
        s: Session, p: RegistryProjectRow, selection: dict[str, Any], base: set[str], env: str | None, tag: str
    ) -> str | None:
        """Why a version cannot run on ``env``'s tag ``tag`` (not ``latest``, which every custom environment has)
        after the import — neither the imported environment nor the project's has it — or None."""
        if env is None or env in base:
            return f"environment tag {tag!r}: a base environment has one tag, 'latest'"
        if env in selection["environments"]:
            tags = selection["environments"][env]["tags"]
            if tag not in tags:
                listed = ", ".join(sorted({DEFAULT_TAG, *tags}))
                return (
                    f"unknown environment tag {tag!r} of environment {env!r} (the import gives it {listed}; "
                    "add the tag to the environment, or change the version's tag in the confirmation)"
                )
            return None
        row = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == env))
        names = set(s.scalars(select(EnvironmentTagRow.name).where(EnvironmentTagRow.environment_id == row.id)))
        if tag not in names:
            return (
                f"unknown environment tag {tag!r} of environment {env!r} (the project's environment has "
                f"{', '.join(sorted(names))}; change the version's tag in the confirmation)"
            )
        return None

    def _create_all(
        self,
        principal: Principal,
        project: str,
        import_id: str,
        selection: dict[str, Any],
        zf: zipfile.ZipFile,
        root: str,
        pipelines: PipelineService,
        progress: Callable[[int], None],
        hashes: dict[str, tuple[str, int]],
        staging: Callable[[], Stager],
    ) -> None:
        created: list[dict[str, Any]] = []
        serving = self.serving
        members = [
            root + v["zip"] for d in selection["deployments"].values() for v in d["versions"].values() if v["zip"]
        ] + [root + t["zip"] for e in selection["environments"].values() for t in e["tags"].values() if t["zip"]]
        # packages the scan did not hash, of a size some file of the organisation has, are hashed before storing
        names = set(zf.namelist())
        unhashed = {zf.getinfo(m).file_size for m in members if m not in hashes and m in names}
        held = self.files.held_sizes(principal.org_id, unhashed) if unhashed else set()

        def done(kind: str, name: str, ident: str | None = None) -> None:
            created.append({"kind": kind, "name": name, "id": ident})
            with self.db.uow() as s:
                row = s.get(ProjectImportRow, import_id)
                if row is None:
                    raise InvalidInput("The import was deleted while it ran.")
                staged = [x for x in row.created or [] if isinstance(x, dict) and x.get("kind") == STAGED]
                row.created, row.updated_at = staged + list(created), now()

        def add_vars(raw: dict[str, Any], **level: Any) -> None:
            for name, var in raw.items():
                serving.create_env_var(principal, project, EnvVarIn(name, var["value"], var["secret"]), **level)

        def place(member: str, context: str, attach: Callable[[str, int], Any]) -> None:
            """A package of the zip made a file handed to ``attach``: linked to bytes the organisation holds, else
            written once (by the scan already, or now) and committed."""
            known = hashes.get(member)
            if known is None and zf.getinfo(member).file_size in held:
                known = self._hash_member(zf, member)
            if known is None or not self._link_package(principal, member, *known, context, attach):
                stager = staging()
                if member not in stager.entries:  # not written by the scan: written now, in one pass
                    self._stage_member(stager, zf, member)
                self._commit_staged(principal, stager, member, context, attach)

        tags = serving.environment_tags
        steps = max(1, sum(len(selection[k]) for k in KINDS))
        step = 0

        def advance() -> None:
            nonlocal step
            step += 1
            progress(60 + 39 * step // steps)

        try:
            for name, env in selection["environments"].items():
                serving.create_environment(
                    principal,
                    project,
                    name=name,
                    description=env["description"],
                    labels=env["labels"],
                    base_environment=env["base_environment"],
                )
                done("environment", name)
                ordered = sorted(env["tags"].items(), key=lambda item: item[0] != DEFAULT_TAG)  # latest first
                for tname, t in ordered:
                    if tname != DEFAULT_TAG:
                        tags.create_tag(
                            principal, project, name, tname, supports_request_format=t["supports_request_format"]
                        )
                    elif not t["supports_request_format"]:
                        tags.update_tag(principal, project, name, tname, supports_request_format=False)
                    if t["zip"] is not None:  # built like …/tags/{tag}/build: in the background

                        def build(file_id: str, size: int, env_name: str = name, tag: str = tname, spec=t) -> None:
                            tags.new_build(
                                principal,
                                project,
                                env_name,
                                tag,
                                file_id=file_id,
                                size=size,
                                base_environment=spec["base_environment"],
                            )

                        place(root + t["zip"], ENV_PACKAGE_CONTEXT, build)
                advance()
            for name, var in selection["environment_variables"].items():
                e = serving.create_env_var(principal, project, EnvVarIn(name, var["value"], var["secret"]))
                done("project_variable", name, e.id)
                advance()
            for dname, d in selection["deployments"].items():
                serving.create_deployment(
                    principal,
                    project,
                    _served(DeploymentIn, dname, d),
                )
                done("deployment", dname)
                add_vars(d["environment_variables"], deployment=dname)
                first = None
                for vname, v in d["versions"].items():
                    serving.create_version(principal, project, dname, _version_in(vname, v))
                    first = first or vname
                    add_vars(v["environment_variables"], deployment=dname, version=vname)
                    if v["zip"] is not None:

                        def revision(file_id: str, size: int, d_name: str = dname, v_name: str = vname) -> None:
                            serving.new_revision_from_file(principal, project, d_name, v_name, file_id)

                        place(root + v["zip"], PACKAGE_CONTEXT, revision)
                if d["default_version"] in d["versions"] and d["default_version"] != first:
                    serving.update_deployment(
                        principal, project, dname, DeploymentPatch(default_version=d["default_version"])
                    )
                advance()
            for pname, pl in selection["pipelines"].items():
                pipelines.create_pipeline(
                    principal,
                    project,
                    _served(PipelineIn, pname, pl),
                )
                done("pipeline", pname)
                first = None
                for vname, pv in pl["versions"].items():
                    pipelines.create_version(
                        principal,
                        project,
                        pname,
                        PipelineVersionIn(
                            version=vname,
                            description=pv["description"],
                            labels=pv["labels"],
                            request_retention_mode=pv["request_retention_mode"],
                            request_retention_time=pv["request_retention_time"],
                            objects=[
                                {
                                    "name": o["name"],
                                    "reference_type": "deployment",
                                    "reference_name": o["reference_name"],
                                    "version": o["reference_version"],
                                }
                                for o in pv["objects"]
                            ],
                            attachments=pv["attachments"],
                        ),
                    )
                    first = first or vname
                if pl["default_version"] in pl["versions"] and pl["default_version"] != first:
                    pipelines.update_pipeline(
                        principal, project, pname, DeploymentPatch(default_version=pl["default_version"])
                    )
                advance()
        except BaseException:
            self._undo(principal, project, created, pipelines, import_id)
            raise

    def _hash_member(self, zf: zipfile.ZipFile, member: str) -> tuple[str, int]:
        """(SHA-256, size) of an entry, read (and CRC-checked) once without storing it."""
        limit, size, hasher = self.limits.max_member, 0, hashlib.sha256()
        with zf.open(member) as src:
            while chunk := src.read(IMPORT_READ):
                size += len(chunk)
                if size > limit:
                    raise Rejected(f"{member!r} unpacks to more than {limit} bytes.")
                hasher.update(chunk)
            return hasher.hexdigest(), size

    def _link_package(
        self,
        principal: Principal,
        member: str,
        sha256: str,
        size: int,
        context: str,
        attach: Callable[[str, int], Any],
    ) -> bool:
        """Make a package the organisation already holds (the SHA-256 of the entry's bytes, as this server read
        them) a file without storing it again and hand it to ``attach`` — the checks of an upload included; False
        when it is not held (then it is stored as usual)."""
        self._check_package_size(size)
        filename = member.rsplit("/", 1)[-1]
        if not filename.lower().endswith(".zip"):  # pragma: no cover - the layout only has .zip packages
            raise InvalidInput(f"A package must be a .zip file, not {filename!r}.")
        record = self.files.link_held(principal, sha256=sha256, size=size, name=filename, context=context)
        if record is None:
            return False
        try:
            attach(record.id, size)
        except BaseException:
            with self.db.uow() as s:
                stale = self.files.drop_in(s, record.id)
            self.serving.drop_blobs(stale)
            raise
        return True

    def _undo(
        self,
        principal: Principal,
        project: str,
        created: list[dict[str, Any]],
        pipelines: PipelineService,
        import_id: str,
        *,
        keep: Stager | None = None,
    ) -> None:
        """Delete what an import created, newest first (a deployment takes its versions and variables along), and
        the packages it wrote (those of ``keep``, this attempt's scan, excepted)."""
        for item in reversed(created):
            kind, name = item.get("kind"), item.get("name")
            try:
                if kind == "pipeline":
                    pipelines.delete_pipeline(principal, project, name)
                elif kind == "deployment":
                    self.serving.delete_deployment(principal, project, name)
                elif kind == "project_variable":
                    self.serving.delete_env_var(principal, project, item.get("id"))
                elif kind == "environment":
                    self._drop_environment(principal, project, name)
            except NotFound:
                pass
            except Exception:  # noqa: BLE001 - keep undoing the rest
                log.exception("could not remove %s %r created by import %s", kind, name, import_id)
        with self.db.uow(readonly=True) as s:
            row = s.get(ProjectImportRow, import_id)
            prefixes = set(staged_prefixes(row.created if row is not None else []))
        self._clean_staged(import_id, prefixes - ({keep.prefix} if keep is not None else set()))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:  # what the processing created is gone; this attempt's packages stay named
                row.created = [{"kind": STAGED, "name": keep.prefix}] if keep is not None else []

    def _drop_environment(self, principal: Principal, project: str, name: str) -> None:
        """Remove a custom environment this import created (once no version uses it)."""
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name))
            if row is None:
                return
            used = s.scalar(
                select(func.count())
                .select_from(DeploymentVersionRow)
                .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
                .where(DeploymentRow.project_id == p.id, DeploymentVersionRow.environment == name)
            )
            if used:
                raise InvalidInput(f"Environment {name!r} is in use by {used} version(s).")
            stale = self.serving.environment_tags.drop_in(s, [row.id])  # its tags, builds and their packages
            s.delete(row)
            s.flush()
        self.serving.drop_blobs(stale)


def _version_in(name: str, v: dict[str, Any]) -> VersionIn:
    """A version of the selection (core/transfer/selection.py checked it) as the serving core creates it."""
    return VersionIn(
        version=name,
        environment=v["environment"],
        environment_tag=v["environment_tag"],
        description=v["description"],
        labels=v["labels"],
        request_retention_mode=v["request_retention_mode"],
        instance_type_group_name=v["instance_type_group_name"],
        settings={} if v["instance_type"] is None else {"instance_type": v["instance_type"]},
        **{key: v[key] for key in VERSION_INTS},
    )


def _served(kind: type[S], name: str, entry: dict[str, Any]) -> S:
    """A deployment or pipeline of the selection (checked) as the serving core creates it."""
    return kind(
        name=name,
        description=entry["description"],
        labels=entry["labels"],
        input_type=entry["input_type"],
        output_type=entry["output_type"],
        input_fields=fields_in(entry["input_fields"]),
        output_fields=fields_in(entry["output_fields"]),
    )
