"""Model imports (Kore.ai's): an uploaded model archive becomes a model once a background check has read it.

A model import is an upload purpose (``core/files/purposes.py``) claiming the context ``model``: opening a session
of that context (``UploadService.open``, or ``start`` below) checks the extension (archives and weights), reserves the
model (status ``importing``) and opens the session; completing it (hook below) attaches the file and enqueues a
``model_import`` task; the task reads the archive (tar/zip/gzip readable, no absolute or ``..`` paths, no links
leaving the archive, entry count limited) and marks the model ``ready`` or ``failed`` with the reason. A ready model
lands in the registry: a registered model of the same name (``/`` and ``:`` become ``-``) gains a version whose
source is the archive (``modelharbor:/files/<file id>``), tagged with the import's id so a retried task never
registers it twice.
"""

from __future__ import annotations

import gzip
import struct
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.files import FILE_SOURCE, FileService, UploadPurpose, UploadService, session_entity
from modelharbor.core.identity import IdentityService
from modelharbor.core.ids import find
from modelharbor.core.jsontext import loads
from modelharbor.core.registry import RegistryService, validate_name
from modelharbor.core.tasks import TaskService
from modelharbor.db.engine import Database
from modelharbor.db.tables import FileRow, ImportedModelRow, UploadSessionRow
from modelharbor.domain.entities import FileRecord, ImportedModel, Task, UploadSession
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Comparison, Query

CONTEXT = "model"
TASK_KIND = "model_import"
TAR_EXTENSIONS = {"tar", "tar.gz", "tgz", "tar.bz2", "tar.xz"}
ARCHIVE_EXTENSIONS = TAR_EXTENSIONS | {"zip", "gz"}
WEIGHT_EXTENSIONS = {"gguf", "safetensors", "bin", "pt", "onnx"}
MODEL_EXTENSIONS = ARCHIVE_EXTENSIONS | WEIGHT_EXTENSIONS
IMPORT_TAG = "modelharbor.import_id"
ADAPTER_TAG = "modelharbor.is_adapter"


def file_source(file_id: str) -> str:
    """A registered version's source when its model is one file of the files service."""
    return FILE_SOURCE + file_id


def registry_name(name: str, model_id: str) -> str:
    """The registered model an import lands in: its name with '/' and ':' (which registry names cannot hold)
    replaced by '-', or ``import-<id>`` when nothing usable is left."""
    candidate = name.replace("/", "-").replace(":", "-").strip()
    try:
        return validate_name(candidate)
    except InvalidInput:
        return f"import-{model_id[:8]}"


class ArchiveRejected(Exception):
    """The archive cannot be imported; the message is shown to the user."""


def _model(row: ImportedModelRow) -> ImportedModel:
    return ImportedModel(
        id=row.id,
        org_id=row.org_id,
        owner_id=row.owner_id,
        name=row.name,
        is_adapter=row.is_adapter,
        status=row.status,
        file_id=row.file_id,
        error=row.error,
        created_at=aware(row.created_at),
    )


class ImportService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        uploads: UploadService,
        tasks: TaskService,
        *,
        max_entries: int,
        registry: RegistryService,
        identity: IdentityService,
    ):
        self.db = db
        self.registry = registry
        self.identity = identity
        self.files = files
        self.uploads = uploads
        self.tasks = tasks
        self.max_entries = max_entries
        self.purpose = UploadPurpose(
            "model import",
            context=CONTEXT,
            extensions=frozenset(MODEL_EXTENSIONS),
            on_open=self._reserve,
            on_complete=self._on_upload_complete,
        )
        uploads.add_purpose(self.purpose)

    def start(
        self,
        principal: Principal,
        *,
        name: str,
        total_chunks: int,
        size: int | None,
        extension: str | None,
        is_adapter: bool = False,
    ) -> tuple[UploadSession, ImportedModel]:
        """Reserve a model and open the upload session its archive travels in (the purpose's one call, for callers
        that want the model itself)."""
        with self.db.uow() as s:
            row, reserved = self.uploads.open_in(
                s,
                principal,
                name=name,
                total_chunks=total_chunks,
                size=size,
                context=CONTEXT,
                extension=extension,
                options={"is_adapter": is_adapter},
            )
            return session_entity(row), _model(s.get(ImportedModelRow, reserved["model_id"]))

    def _reserve(self, s: Session, principal: Principal, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Opening a session of the import purpose: reserve the model its archive becomes (the session's meta)."""
        require(principal, Action.MODEL_WRITE, principal.org_id, what="model")
        is_adapter = bool(options.get("is_adapter", False))
        model = ImportedModelRow(
            id=new_uuid(),
            org_id=principal.org_id,
            owner_id=principal.user_id,
            name=name,
            is_adapter=is_adapter,
            status="importing",
            file_id=None,
            error=None,
            created_at=now(),
        )
        s.add(model)
        s.flush()
        return {"model_id": model.id, "is_adapter": is_adapter}

    def _on_upload_complete(self, s: Session, row: UploadSessionRow, file: FileRecord) -> dict[str, Any]:
        model_id = (row.meta or {}).get("model_id")
        model = s.get(ImportedModelRow, model_id) if model_id else None
        if model is None:
            return {}
        model.file_id = file.id
        task = self.tasks.enqueue_in(s, TASK_KIND, {"model_id": model.id, "file_id": file.id}, org_id=row.org_id)
        return {"model_id": model.id, "task_id": task.id}

    def get(self, principal: Principal, model_id: str) -> ImportedModel:
        with self.db.uow(readonly=True) as s:
            row = find(s, ImportedModelRow, model_id)
            if row is None:
                raise NotFound(f"model {model_id!r} not found")
            require(principal, Action.MODEL_READ, row.org_id, what=f"model {model_id!r}")
            return _model(row)

    # --- the background step ---------------------------------------------------------------------
    def process(self, task: Task, progress: Callable[[int], None]) -> dict[str, Any]:
        """Check the archive of ``task``'s model; mark the model ready or failed. Raises to fail the task."""
        model_id, file_id = task.payload["model_id"], task.payload["file_id"]
        with self.db.uow(readonly=True) as s:
            row = find(s, ImportedModelRow, model_id)
            if row is None:
                raise ArchiveRejected("the model was deleted before its import ran")
            owner = (row.owner_id, row.org_id, row.name, row.is_adapter)
        try:
            summary = self.check_archive(file_id, progress)
            registered = self._register(model_id, file_id, *owner)
        except ArchiveRejected as exc:
            self._set_status(model_id, "failed", str(exc))
            raise
        self._set_status(model_id, "ready", None)
        return {"model_id": model_id, **summary, **registered}

    def _register(
        self, model_id: str, file_id: str, owner_id: str | None, org_id: str, name: str, is_adapter: bool
    ) -> dict[str, Any]:
        """Add the import to the registry as the next version of its model (once, even when retried)."""
        try:
            if owner_id is None:
                raise ArchiveRejected("the user who started the import no longer exists")
            principal = self.identity.principal_by_ids(owner_id, org_id)
            reg_name = registry_name(name, model_id)
            done = self.registry.search_versions(
                principal, Query((Comparison("name", "=", reg_name), Comparison(IMPORT_TAG, "=", model_id, "tags")))
            ).items
            if done:
                return {"registered_model": reg_name, "version": done[0].version}
            try:
                self.registry.create_model(principal, reg_name, description=f"Imported through Kore.ai: {name}")
            except HarborError as exc:
                if exc.code != "CONFLICT":
                    raise
            version = self.registry.create_version(
                principal,
                reg_name,
                file_source(file_id),
                tags={IMPORT_TAG: model_id, ADAPTER_TAG: str(is_adapter).lower()},
            )
            return {"registered_model": reg_name, "version": version.version}
        except ArchiveRejected:
            raise
        except HarborError as exc:
            raise ArchiveRejected(f"the model could not be added to the registry: {exc.message}") from None

    def _set_status(self, model_id: str, status: str, error: str | None) -> None:
        with self.db.uow() as s:
            row = find(s, ImportedModelRow, model_id)
            if row is not None:
                row.status, row.error = status, error

    def check_archive(self, file_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
        with self.db.uow(readonly=True) as s:
            f = s.get(FileRow, file_id)
            if f is None:
                raise ArchiveRejected("the uploaded archive no longer exists")
            ext, size = f.extension.lower(), f.size
        reader = self.files.open_reader(file_id)
        try:
            if ext in TAR_EXTENSIONS:
                return self._check_tar(reader, size, progress)
            if ext == "zip":
                return self._check_zip(reader)
            if ext == "gz":
                return self._check_gzip(reader, size, progress)
            return self._check_weights(reader, ext, size)
        finally:
            reader.close()

    def _check_tar(self, reader, size: int, progress) -> dict[str, Any]:
        entries = 0
        total = 0
        last = -1
        try:
            with tarfile.open(fileobj=reader, mode="r:*") as tf:
                while (member := tf.next()) is not None:
                    entries += 1
                    if entries > self.max_entries:
                        raise ArchiveRejected(f"the archive has more than {self.max_entries} entries")
                    _check_member_path(member.name, strict=True)
                    if member.issym() or member.islnk():
                        target = member.linkname
                        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
                        _check_member_path(str(base / target), what=f"link target of {member.name!r}")
                    elif member.isdev() or member.isfifo():
                        raise ArchiveRejected(f"the archive holds a device or FIFO entry {member.name!r}")
                    total += member.size
                    pct = min(99, reader.tell() * 100 // max(size, 1))
                    if pct != last:
                        progress(pct)
                        last = pct
        except ArchiveRejected:
            raise
        except (tarfile.TarError, EOFError, OSError, zlib_error()) as exc:
            raise ArchiveRejected(f"the archive is not a readable tar file: {exc}") from None
        if entries == 0:
            raise ArchiveRejected("the archive is empty")
        return {"format": "tar", "entries": entries, "uncompressed_bytes": total}

    def _check_zip(self, reader) -> dict[str, Any]:
        try:
            with zipfile.ZipFile(reader) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ArchiveRejected(f"the archive is not a readable zip file: {exc}") from None
        if len(infos) > self.max_entries:
            raise ArchiveRejected(f"the archive has more than {self.max_entries} entries")
        if not infos:
            raise ArchiveRejected("the archive is empty")
        for info in infos:
            _check_member_path(info.filename, strict=True)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ArchiveRejected(f"the archive holds a symbolic link {info.filename!r}")
        return {"format": "zip", "entries": len(infos), "uncompressed_bytes": sum(i.file_size for i in infos)}

    def _check_gzip(self, reader, size: int, progress) -> dict[str, Any]:
        total = 0
        try:
            with gzip.GzipFile(fileobj=reader) as gz:
                while piece := gz.read(4 << 20):
                    total += len(piece)
                    progress(min(99, reader.tell() * 100 // max(size, 1)))
        except (OSError, EOFError, zlib_error()) as exc:
            raise ArchiveRejected(f"the file is not readable gzip data: {exc}") from None
        return {"format": "gzip", "entries": 1, "uncompressed_bytes": total}

    def _check_weights(self, reader, ext: str, size: int) -> dict[str, Any]:
        head = reader.read(16)
        if ext == "gguf" and not head.startswith(b"GGUF"):
            raise ArchiveRejected("the file does not start with the GGUF magic bytes")
        if ext == "safetensors":
            if len(head) < 9:
                raise ArchiveRejected("the file is too short to be safetensors")
            (n,) = struct.unpack("<Q", head[:8])
            if n <= 0 or n + 8 > size:
                raise ArchiveRejected("the safetensors header length is out of range")
            reader.seek(8)
            try:
                loads(reader.read(min(n, 100 << 20)), what="the safetensors header")
            except InvalidInput:
                raise ArchiveRejected("the safetensors header is not valid JSON") from None
        if size == 0:
            raise ArchiveRejected("the file is empty")
        return {"format": ext, "entries": 1, "uncompressed_bytes": size}


def zlib_error():
    import zlib

    return zlib.error


def _check_member_path(name: str, what: str | None = None, *, strict: bool = False) -> None:
    """Refuse absolute paths and '..'. Entry names (strict) may hold no '..' at all; link targets may
    use '..' as long as they stay inside the archive."""
    label = what or f"entry {name!r}"
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRejected(f"{label} is an absolute path")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    depth = 0
    for part in parts:
        if part == "..":
            if strict:
                raise ArchiveRejected(f"{label} contains a '..' path component")
            depth -= 1
            if depth < 0:
                raise ArchiveRejected(f"{label} leaves the archive through '..'")
        elif part not in (".", ""):
            depth += 1
