"""Project imports (not to be confused with core/imports.py, Kore.ai model imports): a zip of format ``v1.0``
(format.py) — uploaded, an export of this server, or fetched from a link — read into a project.

Task ``project_import``: ``pending`` → ``scanning`` (fetched if it is a link, every entry checked and read once,
counting the bytes; a zip in a local store is read in place, one in S3 copied to a temporary file) →
``confirmation`` (``content`` describes the zip in the shape of the confirmation) → after the confirmation
``confirmation_pending`` → ``processing`` → ``completed``; with ``skip_confirmation`` straight from ``scanning``
to ``processing``. Any step may end ``failed``, with the reason.

Invariants
- An import link is fetched by storage/fetch.py (checked hosts and addresses, also after redirects; bounded size
  and time); its refusals are :class:`Rejected`.
- The confirmation is checked as a whole (every package it names is in the zip, every variable has a value) and
  sealed (it holds secrets' values) until it is processed; what is shown never holds a secret's value.
- Objects are created by import_objects.py; what an import created is deleted again if a creation fails — an
  import lands whole or not at all; packages are written under a staged prefix first (staging.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from modelharbor.core.bridges import run_sync
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.serving.validation import truncate
from modelharbor.core.transfer.base import TransferBase
from modelharbor.core.transfer.entities import (
    IMPORT_CONTEXT,
    IMPORT_STATUSES,
    IMPORT_TASK,
    Import,
    ImportForm,
    OpenedZip,
)
from modelharbor.core.transfer.format import (
    IMPORT_READ,
    MAX_YAML,
    MAX_YAML_TOTAL,
    PACKAGE_KINDS,
    YAML_KINDS,
    Rejected,
    check_end_record,
    check_member,
    find_root,
    layout_kind,
    root_name,
    safe_filename,
)
from modelharbor.core.transfer.scan import Scan, describe
from modelharbor.core.transfer.selection import (
    CHILDREN,
    KINDS,
    as_object,
    empty_selection,
    is_id,
    merge_entry,
    missing_values,
    normalise_selection,
    public_view,
    reject_nul,
)
from modelharbor.core.transfer.staging import STAGED, STALE, Sink, Stager, staged_prefixes
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_transfer import ProjectExportRow, ProjectImportRow
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Principal
from modelharbor.storage.fetch import LinkPolicy, LinkRefused, check_link, fetch

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelharbor.core.serving.pipelines import PipelineService


StoreZip = Callable[[AsyncIterator[bytes], "str | None"], Awaitable[FileRecord]]  # stores an uploaded import zip


class Imports(TransferBase):
    """Creating, confirming, listing, deleting, scanning and processing imports (mixed into TransferService)."""

    async def store_import_file(self, principal: Principal, data: AsyncIterator[bytes], filename: str | None):
        """Stream an uploaded import zip into the files service (the import is created afterwards)."""
        return await self.files.upload(
            principal,
            name=safe_filename(filename, "import.zip"),
            data=data,
            context=IMPORT_CONTEXT,
            max_size=self.limits.max_import_size,
        )

    async def create_import_from_upload(
        self,
        principal: Principal,
        project: str,
        read_form: Callable[[StoreZip], Awaitable[ImportForm]],
    ) -> Import:
        """An import from an uploaded form: the project's write permission is checked before any byte is kept;
        ``read_form(store)`` reads the form, handing its zip part (if any) to ``store(data, filename)`` as it is
        read, and answers the other fields; then the import is created. On any failure once the zip was stored, the
        stored zip is deleted again."""
        await asyncio.to_thread(self.check_write, principal, project)
        stored: list[FileRecord] = []

        async def store(data: AsyncIterator[bytes], filename: str | None) -> FileRecord:
            record = await self.store_import_file(principal, data, filename)
            stored.append(record)
            return record

        try:
            form = await read_form(store)
            record = stored[0] if stored else None
            return await asyncio.to_thread(
                lambda: self.create_import(
                    principal,
                    project,
                    file=record,
                    import_link=form.import_link or None,
                    export_id=form.export_id or None,
                    skip_confirmation=form.skip_confirmation,
                )
            )
        except BaseException:
            for record in stored:
                await self.files.delete(principal, record.id)
            raise

    def create_import(
        self,
        principal: Principal,
        project: str,
        *,
        file: FileRecord | None = None,
        import_link: str | None = None,
        export_id: str | None = None,
        skip_confirmation: bool = False,
        file_id: str | None = None,
    ) -> Import:
        """``file`` is a zip stored for this import; ``file_id`` an already-uploaded file of the organisation (e.g.
        through a resumable chunked upload), which the import uses through its own record (no bytes copied)."""
        if sum(x is not None and x != "" for x in (file, import_link, export_id, file_id)) != 1:
            raise InvalidInput("Give exactly one of 'file' (a zip), 'file_id', 'import_link' or 'export_id'.")
        if import_link:
            self._check_link(import_link)
        uploaded, file_id = file_id, None
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            size, source = None, "link"
            if file is not None:
                file_id, size, source = file.id, file.size, "file"
            elif uploaded:
                clone = self.files.clone_in(s, principal, uploaded, context=IMPORT_CONTEXT)
                if clone.size > self.limits.max_import_size:
                    raise TooLarge(f"An import zip may be at most {self.limits.max_import_size} bytes.")
                file_id, size, source = clone.id, clone.size, "file"
            elif export_id:
                exp = s.get(ProjectExportRow, export_id) if is_id(export_id) else None
                if exp is None or exp.project_id != p.id:
                    raise NotFound(f"Export {export_id!r} not found in project {p.name!r}")
                if exp.status != "completed":
                    raise InvalidInput(f"Export {exp.id} is {exp.status}: import it once it completed.")
                if exp.file_id is None:
                    raise NotFound(f"The zip of export {exp.id} was deleted (through the files API).")
                clone = self.files.clone_in(
                    s, principal, exp.file_id, context=IMPORT_CONTEXT, name=root_name(p.name, exp.id) + ".zip"
                )
                file_id, size, source = clone.id, clone.size, "export"
            t = now()
            row = ProjectImportRow(
                id=new_uuid(),
                project_id=p.id,
                status="pending",
                error_message=None,
                source=source,
                import_link=import_link or None,
                export_id=export_id or None,
                skip_confirmation=bool(skip_confirmation),
                file_id=file_id,
                size=size,
                content=empty_selection(),
                packages=[],
                root="",
                confirmed=None,
                created=[],
                created_by=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.tasks.enqueue_in(s, IMPORT_TASK, {"import_id": row.id, "stage": "scan"}, org_id=principal.org_id)
            return self._import_entity(s, p.name, row)

    def list_imports(self, principal: Principal, project: str, *, status: str | None = None) -> list[Import]:
        return self._listing(principal, project, ProjectImportRow, IMPORT_STATUSES, status, self._import_entity)

    def get_import(self, principal: Principal, project: str, import_id: str) -> Import:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            return self._import_entity(s, p.name, self._import_row(s, p, import_id))

    def import_file(self, principal: Principal, project: str, import_id: str) -> tuple[str, str]:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            row = self._import_row(s, p, import_id)
            if row.file_id is None:
                raise InvalidInput(
                    f"Import {row.id} has no zip: a link is fetched while the import is scanned (or its file was "
                    "deleted through the files API)."
                )
            return row.file_id, f"import_{p.name}_{row.id[:8]}.zip"

    async def open_import_file(
        self, principal: Principal, project: str, import_id: str, range_header: str | None = None
    ) -> OpenedZip:
        """An import's zip for reading: (record, satisfied range or None, byte stream, download name)."""
        file_id, name = await asyncio.to_thread(self.import_file, principal, project, import_id)
        return (*await self.files.open(principal, file_id, range_header), name)

    def delete_import(self, principal: Principal, project: str, import_id: str) -> None:
        """Delete the import and its zip; the objects it created stay."""
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._import_row(s, p, import_id)
            if row.status in ("scanning", "processing") and (now() - aware(row.updated_at)).total_seconds() < STALE:
                raise InvalidInput(f"Import {row.id} is {row.status}: delete it once it finished.")
            file_id, prefixes = row.file_id, staged_prefixes(row.created)
            s.delete(row)
            s.flush()
            stale = self.files.drop_in(s, file_id) if file_id else []
        self.serving.drop_blobs(stale)
        if prefixes:  # packages it wrote that no file points at (its worker can no longer commit them: no row)
            self._drop_keys(self._staged_garbage(prefixes))

    def confirm_import(self, principal: Principal, project: str, import_id: str, body: Mapping[str, Any]) -> Import:
        """The confirmation: the objects to create keyed by name, in the shape the detail shows (the transfer
        format's selection document, JSON: the edges send an object). Fields an entry leaves out come from the
        same-named entry of the zip; variables without a value (secrets) need one."""
        reject_nul(body, "confirmation")
        if body.get("services"):
            raise InvalidInput("Services cannot be imported: ModelHarbor projects have none.")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._import_row(s, p, import_id, lock=True)
            if row.status != "confirmation":
                raise InvalidInput(
                    f"Import {row.id} is {row.status}: only an import waiting for confirmation can be confirmed."
                )
            content = {**empty_selection(), **(row.content or {})}
            merged = {}
            for kind in KINDS:
                given = as_object(body.get(kind), kind)
                merged[kind] = {
                    name: merge_entry(entry, content[kind].get(name), CHILDREN[kind], f"{kind} {name}")
                    for name, entry in given.items()
                }
            selection = normalise_selection(merged)
            if not any(selection[k] for k in KINDS):
                raise InvalidInput("The confirmation selects nothing to import: list the objects to create.")
            known = set(row.packages or [])
            for dname, d in selection["deployments"].items():
                for vname, v in d["versions"].items():
                    if v["zip"] is not None and v["zip"] not in known:
                        raise InvalidInput(
                            f"Version {vname!r} of {dname!r}: the zip holds no package {v['zip']!r}"
                            + (f" (it holds {', '.join(sorted(known))})." if known else " (it holds none).")
                        )
            for ename, env in selection["environments"].items():
                for tname, t in env["tags"].items():
                    if t["zip"] is not None and t["zip"] not in known:
                        raise InvalidInput(
                            f"Tag {tname!r} of environment {ename!r}: the zip holds no package {t['zip']!r}"
                            + (f" (it holds {', '.join(sorted(known))})." if known else " (it holds none).")
                        )
            missing = missing_values(selection)
            if missing:
                raise InvalidInput(
                    "These environment variables need a value (secrets are never exported): "
                    + ", ".join(missing)
                    + ". Send them in the confirmation as {'value': ..., 'secret': ...}."
                )
            row.confirmed = self.box.seal(json.dumps(selection))
            row.content = public_view(selection)
            row.status, row.updated_at = "confirmation_pending", now()
            s.flush()
            self.tasks.enqueue_in(s, IMPORT_TASK, {"import_id": row.id, "stage": "process"}, org_id=principal.org_id)
            return self._import_entity(s, p.name, row)

    @staticmethod
    def _import_row(s: Session, p: RegistryProjectRow, import_id: str, *, lock: bool = False) -> ProjectImportRow:
        row = None
        if is_id(import_id):
            row = s.get(ProjectImportRow, import_id, with_for_update=lock)
        if row is None or row.project_id != p.id:
            raise NotFound(f"Import {import_id!r} not found in project {p.name!r}")
        return row

    def _import_entity(
        self, s: Session, project: str, r: ProjectImportRow, names: dict[str, str] | None = None
    ) -> Import:
        names = names if names is not None else self._usernames(s, {r.created_by})
        return Import(
            r.id,
            project,
            r.status,
            truncate(r.error_message),
            r.size,
            names.get(r.created_by) if r.created_by else None,
            aware(r.created_at),
            {**empty_selection(), **(r.content or {})},
            r.source,
            r.skip_confirmation,
        )

    # --- import links -------------------------------------------------------------------------------
    def _link_policy(self) -> LinkPolicy:
        limits = self.limits
        return LinkPolicy(
            max_size=limits.max_import_size,
            timeout=limits.link_timeout,
            allow_private=limits.allow_private_links,
            allow_http=limits.allow_http_links,
            field="import_link",
            name="import link",
            private_setting="MODELHARBOR_ALLOW_PRIVATE_IMPORT_LINKS",
            user_agent="ModelHarbor-import/1",
        )

    def _check_link(self, link: str) -> None:
        """An import link must be https (http too if allowed) to a host name or a public address; a refused address
        is a Rejected."""
        try:
            check_link(link, self._link_policy())
        except LinkRefused as exc:
            raise Rejected(exc.message) from None

    def fetch_link(self, link: str, dest: Path, touch: Callable[[], None] = lambda: None) -> None:
        """Download ``link`` to ``dest``: checked hosts and addresses (also after redirects), bounded size and
        time, connected to the address that was checked (storage/fetch.py); any refusal is a Rejected."""
        try:
            fetch(link, dest, self._link_policy(), touch)
        except InvalidInput as exc:
            raise Rejected(exc.message) from None

    # --- imports: scanning and processing (background tasks) ---------------------------------------
    def run_import(self, payload: dict[str, Any], progress: Callable[[int], None], pipelines: PipelineService):
        import_id = payload.get("import_id")
        if payload.get("stage") == "process":
            return self._process(import_id, progress, pipelines)
        return self._scan(import_id, progress, pipelines)

    def _touch(self, import_id: str) -> None:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.updated_at = now()

    def _fail(self, import_id: str, exc: BaseException) -> dict[str, Any]:
        message = truncate(self._reason(exc, "import"))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.status, row.error_message, row.confirmed, row.updated_at = "failed", message, None, now()
        return {"import_id": import_id, "status": "failed", "error": message}

    def _scan(self, import_id: str, progress: Callable[[int], None], pipelines: PipelineService) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is None:
                return {"import_id": import_id, "status": "gone"}
            if row.status == "processing":  # a skip_confirmation import whose worker died while it created
                resume = True
            elif row.status in ("pending", "scanning"):
                resume = False
                row.status, row.updated_at = "scanning", now()
            else:
                return {"import_id": import_id, "status": row.status}
            p = s.get(RegistryProjectRow, row.project_id)
            source, link, file_id, user_id, org_id = row.source, row.import_link, row.file_id, row.created_by, p.org_id
            skip = row.skip_confirmation
        if resume:
            return self._process(import_id, progress, pipelines)
        path = zip_src = None
        stagers: list[Stager] = []
        try:
            path = zip_src = self._tmp("import-")
            if source == "link" and file_id is None:
                principal = self._principal(user_id, org_id)
                self.fetch_link(link, path, lambda: self._touch(import_id))
                name = safe_filename(unquote(urlsplit(link).path), "import.zip")
                record = run_sync(self._upload_path(principal, path, name, IMPORT_CONTEXT, self.limits.max_import_size))
                stale: list[str] = []
                with self.db.uow() as s:
                    row = s.get(ProjectImportRow, import_id)
                    gone = row is None
                    if gone:
                        stale = self.files.drop_in(s, record.id)
                    else:
                        row.file_id, row.size, row.updated_at = record.id, record.size, now()
                if gone:
                    self.serving.drop_blobs(stale)
                    return {"import_id": import_id, "status": "gone"}
            else:
                zip_src = self._zip_source(file_id, path)
            progress(20)
            # an import without confirmation hands the scan to the processing at once: hash the packages the
            # organisation may already hold while scanning, so those are neither read again nor stored again, and
            # write the others on the way (one read of the zip); the processing makes them files, or they go
            stager = None
            if skip:
                self._clean_staged(import_id)  # what an interrupted scan of this import wrote
                stager = self._begin_staging(import_id)
                stagers.append(stager)
            scan = self._read_zip(zip_src, hash_for=org_id if skip else None, stage=stager)
            if stager is not None:
                stager.sync()
            progress(50)
            missing = missing_values(scan.content) if skip else []
            with self.db.uow() as s:
                row = s.get(ProjectImportRow, import_id)
                if row is None:
                    self._abandon(import_id, stagers)
                    return {"import_id": import_id, "status": "gone"}
                row.content, row.packages, row.root = scan.content, scan.packages, scan.root
                if not missing:
                    row.status = "processing" if skip else "confirmation"
                row.updated_at = now()
            if missing:
                raise InvalidInput(
                    "These environment variables have no value in the zip (secrets are never exported): "
                    + ", ".join(missing)
                    + ". Import without skip_confirmation and give them in the confirmation."
                )
            if skip:
                return self._process(
                    import_id, progress, pipelines, zip_path=zip_src, hashes=scan.hashes, stager=stager
                )
            return {"import_id": import_id, "status": "confirmation"}
        except Exception as exc:  # noqa: BLE001 - anything wrong with the zip fails the import, with the reason
            self._abandon(import_id, stagers)
            return self._fail(import_id, exc)
        finally:
            if zip_src is not None and not isinstance(zip_src, Path):
                zip_src.close()
            if path is not None:
                path.unlink(missing_ok=True)

    def _read_zip(self, path: Path | BinaryIO, *, hash_for: str | None = None, stage: Stager | None = None) -> Scan:
        """Check every entry, read each once (counting what it unpacks to), and describe the content. With
        ``hash_for`` (an organisation id), the packages of a size some file of that organisation has are hashed on
        the way (:meth:`_create_all` links those it holds instead of storing them again); with ``stage``, the
        other packages (within the package limits) are written to it on the way, hashed from the same buffers."""
        check_end_record(path, self.limits.max_entries)
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, struct.error, EOFError) as exc:
            raise Rejected(f"The import is not a readable zip file: {exc}") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > self.limits.max_entries:
                raise Rejected(f"The zip has more than {self.limits.max_entries} entries.")
            seen: set[str] = set()
            for info in infos:
                check_member(info, seen)
            files = {i.filename: i for i in infos if not i.is_dir()}
            root = find_root(files)
            layout = {name: kind for name in files if (kind := layout_kind(name, root)) is not None}
            texts: dict[str, bytes] = {}
            hashes: dict[str, tuple[str, int]] = {}
            packages = {n: i.file_size for n, i in files.items() if layout.get(n, ("",))[0] in PACKAGE_KINDS}
            held = self.files.held_sizes(hash_for, set(packages.values())) if hash_for and packages else set()
            total = yaml_total = 0
            stage_limit = min(self.serving.max_package_size, self.files.max_single_upload)
            sink: Sink | None = None
            try:
                for name, info in files.items():
                    is_yaml = layout.get(name, ("",))[0] in YAML_KINDS
                    limit = MAX_YAML if is_yaml else self.limits.max_member
                    buf = bytearray() if is_yaml else None
                    hasher = hashlib.sha256() if packages.get(name, -1) in held else None
                    if stage is not None and hasher is None and name in packages and info.file_size <= stage_limit:
                        sink = stage.open()
                    size = 0
                    with zf.open(info) as src:
                        while chunk := src.read(IMPORT_READ):
                            size += len(chunk)
                            total += len(chunk)
                            if size > limit:
                                raise Rejected(
                                    f"{name!r} unpacks to more than {limit} bytes"
                                    + (" (a yaml file of the layout may hold at most 1 MiB)." if is_yaml else ".")
                                )
                            if total > self.limits.max_unpacked:
                                raise Rejected(f"The zip unpacks to more than {self.limits.max_unpacked} bytes.")
                            if buf is not None:
                                yaml_total += len(chunk)
                                if yaml_total > MAX_YAML_TOTAL:
                                    raise Rejected(f"The zip's yaml files hold more than {MAX_YAML_TOTAL} bytes.")
                                buf += chunk
                            if hasher is not None:
                                hasher.update(chunk)
                            if sink is not None:
                                sink.write(chunk)
                    # the whole entry was read: zipfile checked its CRC at the end
                    if hasher is not None:
                        hashes[name] = (hasher.hexdigest(), size)
                    if sink is not None:
                        stage.store_entry(name, sink)  # type: ignore[union-attr]
                        sink = None
                        self._touch(stage.import_id)  # type: ignore[union-attr]
                    if buf is not None:
                        texts[name] = bytes(buf)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                NotImplementedError,
                RuntimeError,
                ValueError,
                struct.error,
            ) as exc:
                raise Rejected(f"The zip is damaged: {exc}") from None
            finally:
                if sink is not None:  # this entry failed half-way: nothing of it stays
                    sink.abort()
        scan = describe(root, layout, texts)
        scan.hashes = hashes
        return scan

    def _process(
        self,
        import_id: str,
        progress: Callable[[int], None],
        pipelines: PipelineService,
        *,
        zip_path: Path | BinaryIO | None = None,
        hashes: dict[str, tuple[str, int]] | None = None,
        stager: Stager | None = None,
    ) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is None:
                return {"import_id": import_id, "status": "gone"}
            if row.status not in ("confirmation_pending", "processing"):
                return {"import_id": import_id, "status": row.status}
            row.status, row.updated_at = "processing", now()
            p = s.get(RegistryProjectRow, row.project_id)
            project, org_id, user_id, file_id, root = p.name, p.org_id, row.created_by, row.file_id, row.root
            sealed, content, created = row.confirmed, row.content, list(row.created or [])
        leftovers = [x for x in created if not (isinstance(x, dict) and x.get("kind") == STAGED)]
        earlier = set(staged_prefixes(created)) - ({stager.prefix} if stager is not None else set())
        own_path = zip_path is None
        path, tmp = zip_path, None
        stagers = [stager] if stager is not None else []

        def staging() -> Stager:  # where the packages not written by the scan go (made once one is needed)
            if not stagers:
                stagers.append(self._begin_staging(import_id))
            return stagers[0]

        try:
            principal = self._principal(user_id, org_id)
            if leftovers:  # an earlier attempt died half-way: undo it, then start again
                self._undo(principal, project, leftovers, pipelines, import_id, keep=stager)
            elif earlier:  # what an earlier attempt wrote before it died
                self._clean_staged(import_id, earlier)
            selection = json.loads(self.box.open(sealed)) if sealed else normalise_selection(content)
            if own_path:
                tmp = self._tmp("import-")
                path = self._zip_source(file_id, tmp)
            self._prevalidate(principal, project, selection)
            progress(60)
            with zipfile.ZipFile(path) as zf:
                self._create_all(
                    principal, project, import_id, selection, zf, root, pipelines, progress, hashes or {}, staging
                )
            for st in stagers:  # packages written but not imported (not selected, or linked instead)
                self._drop_keys(st.leftover())
        except Exception as exc:  # noqa: BLE001 - the import fails with the reason; nothing of it stays
            self._abandon(import_id, stagers)
            return self._fail(import_id, exc)
        finally:
            if own_path and path is not None and not isinstance(path, Path):
                path.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.status, row.error_message, row.confirmed, row.created = "completed", None, None, []
                row.content, row.updated_at = public_view(selection), now()
        progress(100)
        return {"import_id": import_id, "status": "completed"}
