"""The files of registered model versions: resolving a version's ``source`` to files, and registering a version
from files that were already uploaded through the files service.

Sources this module resolves (anything else is ``409 UNSUPPORTED_SOURCE``):

- ``models:/m-…`` — an MLflow 3 logged model: its artifacts under ``<experiment_id>/models/<model_id>/artifacts``;
- ``models:/<name>/<version>`` (also ``@alias``, ``latest`` or a stage) — another registered version, followed
  at most :data:`MAX_HOPS` times;
- ``mlflow-artifacts:/<path>`` — an artifact file, or every artifact under a folder;
- ``runs:/<run_id>/<subpath>`` — ``<experiment_id>/<run_id>/artifacts/<subpath>``;
- ``modelharbor:/files/<file_id>`` — one file of the files service.

Every step checks the caller's rights on what it reaches (registry read on the model, tracking read on the
experiment, file read on the file). Sources are free text that MLflow clients may set to anything, so a source
that points into another organisation resolves as missing, never as that organisation's files.

Registering from files (:meth:`ModelFileService.register`) writes everything in one transaction: the registered
model (if asked to create it), an MLflow 3 logged model in the caller's Default experiment, one artifact row per
file pointing at the uploaded file record (no bytes are copied), and the version with source
``models:/<model_id>`` — so the real ``mlflow`` client loads it with ``models:/<name>/<version>``. The file records
then belong to the logged model (context ``mlflow-artifact``): :func:`in_use_by` reports them as in use.
Deleting a version (or a model) through this service also removes the logged models that registering created,
with their files, once no version refers to them any more.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_hex, now
from modelharbor.core.files import FILE_SOURCE, FileService, in_use_by
from modelharbor.core.ids import find, well_formed
from modelharbor.core.projects import STAGE_NONE, require_model_write
from modelharbor.core.registry.service import RegistryService
from modelharbor.core.registry.validation import STATUS_READY, validate_alias, validate_name, validate_tags
from modelharbor.core.tracking import ACTIVE, DELETED, TrackingService, clean_path, now_ms
from modelharbor.core.tracking.artifacts import CONTEXT as ARTIFACT_CONTEXT
from modelharbor.db.engine import Database
from modelharbor.db.tables import FileRow
from modelharbor.db.tables_registry import (
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelAliasRow,
    RegisteredModelRow,
)
from modelharbor.db.tables_tracking import ArtifactRow, ExperimentRow, LoggedModelRow, RunRow
from modelharbor.domain.entities import ModelVersion, VersionFile
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound
from modelharbor.domain.inputs import VersionFileIn
from modelharbor.domain.principal import Action, Principal, require

MAX_VERSION_FILES = 10_000  # files per version, registering and listing
MAX_HOPS = 3  # models:/<name>/<version> sources followed at most this many times
MAX_ARTIFACT_PATH = 1024  # the length of tracking_artifacts.path
MAX_TEXT = 1_000_000
REGISTERED_TAG = "modelharbor.registered_from"  # on logged models that registering from files created
REGISTERED_FROM_FILES = "files"


class UnsupportedSource(HarborError):
    """A version whose source is nothing this server holds (``s3://…``, ``file:…``, a foreign host…)."""

    code = "UNSUPPORTED_SOURCE"
    status = 409


# --- validation -----------------------------------------------------------------------------------
def _text(value: str | None, what: str) -> str:
    if value is None:
        return ""
    if "\x00" in value or len(value) > MAX_TEXT:
        raise InvalidInput(f"Parameter '{what}' must be at most {MAX_TEXT} characters, without NUL.")
    return value


def _aliases(aliases: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for a in aliases or ():
        a = validate_alias(a)
        if a.lower() == "latest" or re.fullmatch(r"[vV]\d+", a):
            raise InvalidInput(f"Alias name '{a}' is reserved.")
        if a not in out:
            out.append(a)
    return out


def check_files(files: Sequence[VersionFileIn]) -> list[tuple[str, str]]:
    """The files of a version → ``[(path, file_id)]``: relative clean paths, no duplicates, no path that is also a
    folder of another, distinct file ids, at most :data:`MAX_VERSION_FILES`."""
    if not files:
        raise InvalidInput("Parameter 'files' must be a non-empty list of {path, file_id} objects.")
    if len(files) > MAX_VERSION_FILES:
        raise InvalidInput(
            f"a version holds at most {MAX_VERSION_FILES} files; {len(files)} were sent",
            code="TOO_MANY_FILES",
            limit=MAX_VERSION_FILES,
        )
    out: list[tuple[str, str]] = []
    paths: set[str] = set()
    ids: set[str] = set()
    for i, item in enumerate(files):
        raw, file_id = item.path, item.file_id
        if not raw:
            raise InvalidInput(f"files[{i}].path is required (a relative path such as 'model/MLmodel').")
        try:
            path = clean_path(raw)
        except InvalidInput as exc:
            raise InvalidInput(f"files[{i}].path: {exc.message}", path=raw) from None
        if path != raw:
            raise InvalidInput(f"files[{i}].path {raw!r} must be written as {path!r}", path=raw)
        if not path.isprintable():
            raise InvalidInput(f"files[{i}].path {raw!r} contains control characters", path=raw)
        if not file_id:
            raise InvalidInput(f"files[{i}].file_id is required (the id of an uploaded file).", path=path)
        if path in paths:
            raise InvalidInput(f"the path {path!r} is listed twice", path=path)
        if file_id in ids:
            raise InvalidInput(f"file {file_id!r} is listed twice; upload each file separately", file_id=file_id)
        paths.add(path)
        ids.add(file_id)
        out.append((path, file_id))
    for path in paths:
        parts = path.split("/")
        for n in range(1, len(parts)):
            folder = "/".join(parts[:n])
            if folder in paths:
                raise InvalidInput(f"{folder!r} is a file, so it cannot also be the folder of {path!r}", path=path)
    return out


# --- the service ----------------------------------------------------------------------------------
class ModelFileService:
    def __init__(self, db: Database, files: FileService, registry: RegistryService, tracking: TrackingService):
        self.db = db
        self.files = files
        self.registry = registry
        self.tracking = tracking

    # --- reading ---------------------------------------------------------------------------------
    def version_files(self, principal: Principal, name: str, version: int) -> list[VersionFile]:
        """The files of version ``version`` of model ``name``, sorted by path."""
        v = self.registry.get_version(principal, name, version)
        return self.resolve(principal, v.source)

    def resolve(self, principal: Principal, source: str, *, _hops: int = 0) -> list[VersionFile]:
        """The files a source names, for this caller (see the module's docstring for the schemes)."""
        if not source.strip():
            raise UnsupportedSource("the version has no source to take files from", source=source)
        if source.startswith("models:/"):
            return self._models_uri(principal, source, _hops)
        if source.startswith("mlflow-artifacts:"):
            rest = source[len("mlflow-artifacts:") :]
            if rest.startswith("//"):
                host, _, rest = rest[2:].partition("/")
                if host:
                    raise UnsupportedSource(
                        f"source {source!r} names the artifact server {host!r}; only this server's artifacts "
                        "(mlflow-artifacts:/<path>) can be resolved",
                        source=source,
                    )
            return self._artifacts(principal, rest.lstrip("/"), source)
        if source.startswith("runs:/"):
            run_id, _, sub = source[len("runs:/") :].partition("/")
            with self.db.uow(readonly=True) as s:
                run = s.get(RunRow, run_id) if well_formed(run_id) and len(run_id) <= 32 else None
                exp = s.get(ExperimentRow, run.experiment_id) if run is not None else None
                if exp is None or exp.org_id != principal.org_id:
                    raise NotFound(f"run {run_id!r} of source {source!r} not found", code="SOURCE_NOT_FOUND")
                base = f"{exp.id}/{run.id}/artifacts"
            return self._artifacts(principal, f"{base}/{sub}" if sub.strip("/") else base, source)
        if source.startswith(FILE_SOURCE):
            return [self._single_file(principal, source[len(FILE_SOURCE) :], source)]
        raise UnsupportedSource(
            f"the files of source {source!r} are not held by this server; resolvable sources are models:/…, "
            "mlflow-artifacts:/…, runs:/… and modelharbor:/files/…",
            source=source,
        )

    def _models_uri(self, principal: Principal, source: str, hops: int) -> list[VersionFile]:
        rest = source[len("models:/") :]
        if rest.startswith("m-") and "/" not in rest:
            with self.db.uow(readonly=True) as s:
                logged = s.get(LoggedModelRow, rest) if well_formed(rest) and len(rest) <= 40 else None
                exp = s.get(ExperimentRow, logged.experiment_id) if logged is not None else None
                if exp is None or exp.org_id != principal.org_id or logged.lifecycle_stage != ACTIVE:
                    raise NotFound(f"logged model {rest!r} of source {source!r} not found", code="SOURCE_NOT_FOUND")
                require(principal, Action.TRACKING_READ, exp.org_id, what=f"logged model {rest!r}")
                return self._under(s, f"{exp.id}/models/{logged.id}/artifacts")  # none yet: an empty list
        if hops >= MAX_HOPS:
            raise UnsupportedSource(f"source {source!r} refers to versions more than {MAX_HOPS} times", source=source)
        name, version = self._name_and_version(rest, source)
        try:
            if version.startswith("@"):
                v = self.registry.get_version_by_alias(principal, name, version[1:])
            elif version.isdecimal():
                v = self.registry.get_version(principal, name, int(version))
            else:  # 'latest', or a stage: the newest version in it
                stages = None if version.lower() == "latest" else [version]
                latest = self.registry.latest_versions(principal, name, stages)
                if not latest:
                    raise NotFound(f"registered model {name!r} has no version in {version!r}")
                v = max(latest, key=lambda x: x.version)
        except (NotFound, InvalidInput) as exc:
            raise NotFound(f"source {source!r}: {exc.message}", code="SOURCE_NOT_FOUND") from None
        return self.resolve(principal, v.source, _hops=hops + 1)

    @staticmethod
    def _name_and_version(rest: str, source: str) -> tuple[str, str]:
        if "@" in rest and "/" not in rest:
            name, _, alias = rest.rpartition("@")
            return name, "@" + alias
        name, slash, version = rest.rpartition("/")
        if not slash or not name or not version:
            raise UnsupportedSource(
                f"source {source!r} is neither models:/m-<id> nor models:/<name>/<version>", source=source
            )
        return name, version

    def _artifacts(self, principal: Principal, path: str, source: str) -> list[VersionFile]:
        try:
            path = clean_path(path)
        except InvalidInput as exc:
            raise UnsupportedSource(f"source {source!r}: {exc.message}", source=source) from None
        head = path.split("/", 1)[0]
        with self.db.uow(readonly=True) as s:
            exp = s.get(ExperimentRow, int(head)) if head.isdecimal() and len(head) <= 12 else None
            if exp is None or exp.org_id != principal.org_id:
                raise NotFound(f"no artifacts at source {source!r}", code="SOURCE_NOT_FOUND")
            require(principal, Action.TRACKING_READ, exp.org_id, what=f"experiment {exp.id}")
            found = s.execute(
                select(ArtifactRow.path, ArtifactRow.size, FileRow.sha256, FileRow.id)
                .join(FileRow, FileRow.id == ArtifactRow.file_id)
                .where(ArtifactRow.path == path)
            ).first()
            if found is not None:
                return [VersionFile(path.rsplit("/", 1)[-1], found[1], found[2], found[3])]
            files = self._under(s, path)
            if not files:
                raise NotFound(f"no artifacts at source {source!r}", code="SOURCE_NOT_FOUND")
            return files

    @staticmethod
    def _under(s: Session, folder: str) -> list[VersionFile]:
        prefix = folder.rstrip("/") + "/"
        rows = s.execute(
            select(ArtifactRow.path, ArtifactRow.size, FileRow.sha256, FileRow.id)
            .join(FileRow, FileRow.id == ArtifactRow.file_id)
            .where(ArtifactRow.path.startswith(prefix, autoescape=True))
            .order_by(ArtifactRow.path)
            .limit(MAX_VERSION_FILES + 1)
        ).all()
        if len(rows) > MAX_VERSION_FILES:
            raise Conflict(
                f"{folder!r} holds more than {MAX_VERSION_FILES} files, more than a version may list",
                code="TOO_MANY_FILES",
                limit=MAX_VERSION_FILES,
            )
        return [VersionFile(p[len(prefix) :], size, sha, fid) for p, size, sha, fid in rows]

    def _single_file(self, principal: Principal, file_id: str, source: str) -> VersionFile:
        with self.db.uow(readonly=True) as s:
            row = find(s, FileRow, file_id)
            if row is None or row.org_id != principal.org_id:
                raise NotFound(f"file {file_id!r} of source {source!r} not found", code="SOURCE_NOT_FOUND")
            require(principal, Action.FILE_READ, row.org_id, what=f"file {file_id!r}")
            base = row.name.replace("\\", "/").rsplit("/", 1)[-1]
            name = base if base not in ("", ".", "..") and base.isprintable() else row.id
            return VersionFile(name, row.size, row.sha256, row.id)

    # --- registering -----------------------------------------------------------------------------
    def register(
        self,
        principal: Principal,
        name: str,
        *,
        files: Sequence[VersionFileIn] | None = None,
        source: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        aliases: Sequence[str] | None = None,
        create_model: bool = False,
        model_description: str | None = None,
    ) -> ModelVersion:
        """A new version of model ``name`` from uploaded ``files``, or from a ``source`` the caller can read. One
        transaction: on any error nothing is written."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        name = validate_name(name)
        if (files is None) == (source is None):
            raise InvalidInput("Send either 'files' ([{path, file_id}, …]) or 'source' (a model URI), not both.")
        description = _text(description, "description")
        model_description = _text(model_description, "model_description")
        tags = validate_tags(tags)
        alias_names = _aliases(aliases)
        if run_id is not None and (not well_formed(run_id) or len(run_id) > 32):
            raise NotFound(f"run {run_id!r} not found")
        model_id: str | None = None
        entries: list[tuple[str, str]] = []
        exp_id: int | None = None
        if files is not None:
            require(principal, Action.TRACKING_WRITE, principal.org_id, what="logged model")
            entries = check_files(files)
            exp_id = self.tracking.ensure_default(principal)
        else:
            source = _text(source, "source")
            try:
                self.resolve(principal, source)  # the caller must be able to read what the version will name
            except UnsupportedSource as exc:
                raise InvalidInput(exc.message, code=exc.code, **exc.details) from None
            if source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
                model_id = source[len("models:/") :]
        with self.db.uow() as s:
            model = self._model_for_write(s, principal, name, create_model, model_description)
            if run_id is not None:
                run = s.get(RunRow, run_id)
                exp = s.get(ExperimentRow, run.experiment_id) if run is not None else None
                if exp is None or exp.org_id != principal.org_id:
                    raise NotFound(f"run {run_id!r} not found")
            if files is not None:
                model_id = f"m-{new_hex(16)}"
                self._logged_model_in(s, principal, exp_id, model_id, model.name, run_id, entries)
                source = f"models:/{model_id}"
            elif model_id is not None and run_id is None:
                run_id = s.scalar(select(LoggedModelRow.source_run_id).where(LoggedModelRow.id == model_id))
            number = self._version_in(s, principal, model, source, model_id, run_id, description, tags, alias_names)
        return self.registry.get_version(principal, name, number)

    def _model_for_write(
        self, s: Session, principal: Principal, name: str, create: bool, description: str
    ) -> RegisteredModelRow:
        q = (
            select(RegisteredModelRow)
            .where(RegisteredModelRow.org_id == principal.org_id, RegisteredModelRow.name == name)
            .with_for_update()
        )
        row = s.scalar(q)
        if row is not None:
            require_model_write(s, principal, row)  # a model in a project also takes project write access
            return row
        if not create:
            raise NotFound(f"Registered Model with name={name} not found")
        t = now()
        row = RegisteredModelRow(
            org_id=principal.org_id,
            name=name,
            description=description,
            project_id=None,
            discoverable=False,
            creator_id=principal.user_id,
            next_version=1,
            created_at=t,
            updated_at=t,
        )
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:  # created concurrently (PostgreSQL): use that one
            found = s.scalar(q.execution_options(populate_existing=True))
            if found is None:  # pragma: no cover - the conflict was something else
                raise
            require_model_write(s, principal, found)
            return found
        return row

    def _logged_model_in(
        self,
        s: Session,
        principal: Principal,
        exp_id: int | None,
        model_id: str,
        name: str,
        run_id: str | None,
        entries: list[tuple[str, str]],
    ) -> None:
        exp = s.get(ExperimentRow, exp_id) if exp_id is not None else None
        if exp is None or exp.org_id != principal.org_id:  # pragma: no cover - ensure_default just made it
            raise NotFound("the organisation's Default experiment is missing; retry")
        require(principal, Action.TRACKING_WRITE, exp.org_id, what=f"experiment {exp.id}")
        if exp.lifecycle_stage != ACTIVE:
            raise InvalidInput(f"the Default experiment ({exp.id}) is deleted; restore it to register files")
        prefix = f"{exp.id}/models/{model_id}/artifacts/"
        for path, _ in entries:
            if len(prefix) + len(path) > MAX_ARTIFACT_PATH:
                raise InvalidInput(
                    f"the path {path!r} is too long: at most {MAX_ARTIFACT_PATH - len(prefix)} characters",
                    path=path,
                )
        t = now_ms()
        s.add(
            LoggedModelRow(
                id=model_id,
                experiment_id=exp.id,
                name=name[:500],
                model_type=None,
                source_run_id=run_id,
                creator_id=principal.user_id,
                status=STATUS_READY,
                status_message=None,
                lifecycle_stage=ACTIVE,
                params={},
                tags={REGISTERED_TAG: REGISTERED_FROM_FILES},
                creation_timestamp_ms=t,
                last_updated_timestamp_ms=t,
            )
        )
        s.flush()
        created = now()
        for path, file_id in entries:
            row = (
                s.scalar(
                    select(FileRow)
                    .where(FileRow.id == file_id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
                if well_formed(file_id)
                else None
            )
            if row is None or row.org_id != principal.org_id:
                raise NotFound(f"file {file_id!r} (for {path!r}) not found", path=path, file_id=file_id)
            require(principal, Action.FILE_READ, row.org_id, what=f"file {file_id!r}")
            user = in_use_by(s, file_id)
            if user is not None:
                raise Conflict(
                    f"file {file_id!r} (for {path!r}) is already the data of {user}; upload it again",
                    code="FILE_IN_USE",
                    path=path,
                    file_id=file_id,
                )
            row.context = ARTIFACT_CONTEXT
            s.add(
                ArtifactRow(path=prefix + path, experiment_id=exp.id, file_id=row.id, size=row.size, created_at=created)
            )
            s.flush()

    @staticmethod
    def _version_in(
        s: Session,
        principal: Principal,
        model: RegisteredModelRow,
        source: str,
        model_id: str | None,
        run_id: str | None,
        description: str,
        tags: dict[str, str],
        aliases: list[str],
    ) -> int:
        number = model.next_version
        t = now()
        v = ModelVersionRow(
            model_pk=model.pk,
            version=number,
            source=source,
            run_id=run_id,
            run_link=None,
            model_id=model_id,
            status=STATUS_READY,
            description=description,
            current_stage=STAGE_NONE,
            creator_id=principal.user_id,
            created_at=t,
            updated_at=t,
        )
        s.add(v)
        model.next_version = number + 1
        model.updated_at = t
        try:
            s.flush()
        except IntegrityError:  # pragma: no cover - the model row is locked
            raise Conflict(f"Model Version (name={model.name}, version={number}) already exists; retry.") from None
        for k, val in tags.items():
            s.add(ModelVersionTagRow(version_pk=v.pk, key=k, value=val))
        for alias in aliases:
            existing = s.get(RegisteredModelAliasRow, (model.pk, alias))
            if existing is None:
                s.add(RegisteredModelAliasRow(model_pk=model.pk, alias=alias, version_pk=v.pk))
            else:
                existing.version_pk = v.pk
        s.flush()
        return number

    # --- deleting --------------------------------------------------------------------------------
    async def delete_version(self, principal: Principal, name: str, version: int) -> None:
        """Delete a version; a logged model that registering from files created goes with its last version."""
        v = await asyncio.to_thread(self.registry.get_version, principal, name, version)
        await asyncio.to_thread(self.registry.delete_version, principal, name, v.version)
        await self._release(principal, [v.model_id])

    async def delete_model(self, principal: Principal, name: str) -> None:
        """Delete a registered model with its versions, and the logged models registering from files created."""
        model_ids = await asyncio.to_thread(self._model_ids_of, principal, name)
        await asyncio.to_thread(self.registry.delete_model, principal, name)
        await self._release(principal, model_ids)

    def _model_ids_of(self, principal: Principal, name: str) -> list[str]:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        if "\x00" in name or len(name) > 1000:
            return []  # no model has such a name: the registry's delete says what is wrong
        with self.db.uow(readonly=True) as s:
            return [
                m
                for m in s.scalars(
                    select(ModelVersionRow.model_id)
                    .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
                    .where(RegisteredModelRow.org_id == principal.org_id, RegisteredModelRow.name == name)
                )
                if m
            ]

    async def _release(self, principal: Principal, model_ids: Iterable[str | None]) -> None:
        ids = sorted({m for m in model_ids if m})
        if not ids:
            return
        stale = await asyncio.to_thread(self._release_in_tx, principal, ids)
        await self.files.store.delete(stale)

    def _release_in_tx(self, principal: Principal, model_ids: list[str]) -> list[str]:
        stale: list[str] = []
        with self.db.uow() as s:
            for model_id in model_ids:
                logged = s.scalar(select(LoggedModelRow).where(LoggedModelRow.id == model_id).with_for_update())
                if logged is None or (logged.tags or {}).get(REGISTERED_TAG) != REGISTERED_FROM_FILES:
                    continue  # logged by an MLflow client: MLflow keeps logged models when versions go
                exp = s.get(ExperimentRow, logged.experiment_id)
                if (
                    exp is None
                    or exp.org_id != principal.org_id
                    or not principal.can(Action.TRACKING_WRITE, exp.org_id)
                ):
                    continue
                still_used = s.scalar(
                    select(ModelVersionRow.pk)
                    .where(or_(ModelVersionRow.model_id == model_id, ModelVersionRow.source == f"models:/{model_id}"))
                    .limit(1)
                )
                if still_used is not None:
                    continue
                under = ArtifactRow.path.startswith(f"{exp.id}/models/{model_id}/", autoescape=True)
                file_ids = list(s.scalars(select(ArtifactRow.file_id).where(under)))
                s.execute(delete(ArtifactRow).where(under))
                s.flush()
                for file_id in file_ids:
                    stale += self.files.drop_in(s, file_id)
                logged.lifecycle_stage = DELETED
                logged.last_updated_timestamp_ms = now_ms()
                s.flush()
        return stale


__all__ = [
    "MAX_VERSION_FILES",
    "ModelFileService",
    "UnsupportedSource",
    "check_files",
    "in_use_by",
]
