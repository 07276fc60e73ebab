"""Packages an import writes to the blob store before it commits: under ``imports/<import id>/<attempt>/``, a
prefix the import's row names (``created``: ``{"kind": "staged", "name": prefix}``) before the first byte goes there.

Invariants
- Nothing written there is visible until a file row points at a key; a file row is committed only while the import's
  row still names the prefix (not retired), so an import deleted or cleaned up meanwhile commits nothing.
- Each package is read, CRC-checked, hashed and written in one pass (:class:`Sink`): straight to a local file (made
  durable before any row points at it, :meth:`Stager.sync`), or fed to the store's streamed put (S3, memory).
- What no file points at when an import fails, is deleted, or its worker dies is removed: by the import itself
  (:meth:`Staging._abandon`), its deletion, or :meth:`Staging.sweep_staged` (called with the upload sweep). A
  prefix is retired before its keys go, so a crash half-way leaves it for the next clean-up; the pending-objects
  sweep leaves the unfinished writes of live prefixes alone (:func:`live_staged`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import PIPE_DEPTH, Feed, run_sync
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.files import check_name
from modelharbor.core.transfer.base import TransferBase
from modelharbor.core.transfer.format import CHUNK, IMPORT_READ, Rejected
from modelharbor.core.transfer.selection import is_id
from modelharbor.db.tables import BlobRow
from modelharbor.db.tables_transfer import ProjectImportRow
from modelharbor.domain.errors import InvalidInput, TooLarge
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.storage import BlobStore

log = logging.getLogger("modelharbor.transfer")

STAGED = "staged"  # kind of the ``created`` entry naming a prefix this import writes packages under
STAGE_ROOT = "imports/"  # store keys imports/<import id>/<attempt>/<n>: invisible until a file row points at one
STALE = 15 * 60  # an import scanning/processing that long without a change has lost its worker


def staged_prefixes(created: Any) -> list[str]:
    return [x["name"] for x in created or [] if isinstance(x, dict) and x.get("kind") == STAGED and x.get("name")]


def live_staged(s: Session, keys: list[str]) -> set[str]:
    """Of keys under ``imports/``, those written under a prefix its import still names and has not retired (its
    worker may be writing them; the sweep of pending objects leaves their unfinished writes alone)."""
    by_import: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and is_id(parts[1]):
            by_import.setdefault(parts[1], []).append(key)
    live: set[str] = set()
    for import_id, mine in by_import.items():
        row = s.get(ProjectImportRow, import_id)
        named = {
            x.get("name")
            for x in (row.created or [] if row is not None else [])
            if isinstance(x, dict) and x.get("kind") == STAGED and not x.get("retired")
        }
        live.update(k for k in mine if k[: k.rindex("/") + 1] in named)
    return live


class Sink:
    """One package being written to its store key while it is read: SHA-256 of the same buffer the zip's reader
    returned (already CRC-checked by zipfile at the end) and written on — one pass over the bytes."""

    def __init__(self, store: BlobStore, key: str):
        self.key = key
        self.size = 0
        self._h = hashlib.sha256()
        self._store = store
        self._path = store.local_path(key)
        self._fd: int | None = None
        self._feed: Feed | None = None
        if self._path is not None:  # a local file, written straight (fsync'd by Stager.sync before any commit)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        else:  # S3 / memory: the store's streamed put, fed from this thread
            self._feed = Feed(
                lambda chunks: store.put_stream(key, chunks),
                depth=max(1, PIPE_DEPTH * CHUNK // IMPORT_READ),
                name="modelharbor-transfer-put",
            )

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._h.update(chunk)
        if self._fd is not None:
            view, done = memoryview(chunk), 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        else:
            self._feed.write(chunk)  # type: ignore[union-attr]

    def finish(self) -> tuple[str, int]:
        """All bytes were written: (SHA-256, size)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        else:
            self._feed.finish()  # type: ignore[union-attr]
        return self._h.hexdigest(), self.size

    def abort(self) -> None:
        """Nothing of the key stays."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()  # type: ignore[union-attr]
        elif self._feed is not None:
            self._feed.abort(Rejected("the package was not stored"))  # put_stream leaves nothing at the key
            run_sync(self._store.delete(self.key))


class Stager:
    """Packages of one attempt of one import written under ``imports/<import id>/<attempt>/`` — a prefix named in
    the import's ``created`` list before the first byte is written, so whatever a crash leaves there is found
    again (:meth:`TransferService.sweep_staged`). Nothing there is visible until a file row points at a key."""

    def __init__(self, store: BlobStore, import_id: str):
        self.store = store
        self.import_id = import_id
        self.prefix = f"{STAGE_ROOT}{import_id}/{new_uuid()}/"
        self.entries: dict[str, tuple[str, str, int]] = {}  # zip entry → (key, SHA-256, size)
        self.committed: set[str] = set()  # keys a file row points at (or deduplication already deleted)
        self._unsynced: list[str] = []
        self._n = 0

    def open(self) -> Sink:
        self._n += 1
        return Sink(self.store, f"{self.prefix}{self._n}")

    def store_entry(self, name: str, sink: Sink) -> None:
        sha, size = sink.finish()
        self.entries[name] = (sink.key, sha, size)
        self._unsynced.append(sink.key)

    def sync(self) -> None:
        """Make what was written durable before a row may point at it: one fsync per file (after all of them were
        written, so the disk writes back meanwhile), then the new directories."""
        if self.store.kind != "local" or not self._unsynced:
            self._unsynced.clear()
            return
        for key in self._unsynced:
            _fsync_path(self.store.local_path(key))  # type: ignore[arg-type]
        self._unsynced.clear()
        folder = self.store.local_path(self.prefix)
        assert folder is not None and self.store.root is not None
        while True:  # <attempt>/, <import id>/, imports/, the store's root
            _fsync_path(folder)
            if folder == self.store.root or self.store.root not in folder.parents:
                break
            folder = folder.parent

    def leftover(self) -> list[str]:
        """The keys written that no file row points at."""
        return [key for key, _, _ in self.entries.values() if key not in self.committed]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging(TransferBase):
    """Staged packages of imports (mixed into TransferService)."""

    def _begin_staging(self, import_id: str) -> Stager:
        """A new prefix for this attempt's packages, named in the import's row before any byte goes there."""
        stager = Stager(self.files.store, import_id)
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            if row is None:
                raise InvalidInput("The import was deleted while it ran.")
            row.created = [*(row.created or []), {"kind": STAGED, "name": stager.prefix}]
            row.updated_at = now()
        return stager

    def _staged_garbage(self, prefixes: list[str], s: Session | None = None) -> list[str]:
        """The keys under ``prefixes`` that no blob points at: what an import wrote and did not (or not any more)
        make a file of."""
        keys = [k for prefix in prefixes for k in run_sync(self.files.store.list(prefix))]
        if not keys:
            return []
        used: set[str] = set()
        with contextlib.nullcontext(s) if s is not None else self.db.uow(readonly=True) as q:
            for prefix in prefixes:
                like = cast(BlobRow.segments, Text).like(f'%"{prefix}%')
                for segments in q.scalars(select(BlobRow.segments).where(like)):
                    used.update(k for k, _ in segments)
        return [k for k in keys if k not in used]

    def _drop_keys(self, keys: list[str]) -> None:
        if keys:
            run_sync(self.files.store.delete(keys))

    def _clean_staged(self, import_id: str, only: set[str] | None = None) -> None:
        """Delete what the import's staged prefixes (``only`` those) hold that no file points at, then forget them.
        The prefixes are retired first (a worker still running commits nothing under a retired prefix), so a
        crash half-way leaves them for the next clean-up."""
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            prefixes = [p for p in staged_prefixes(row.created if row else []) if only is None or p in only]
            if not prefixes:
                return
            row.created = [
                {**x, "retired": True}
                if isinstance(x, dict) and x.get("kind") == STAGED and x.get("name") in prefixes
                else x
                for x in row.created
            ]
        self._drop_keys(self._staged_garbage(prefixes))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            if row is not None:
                row.created = [
                    x
                    for x in row.created or []
                    if not (isinstance(x, dict) and x.get("kind") == STAGED and x.get("name") in prefixes)
                ]

    def _abandon(self, import_id: str, stagers: list[Stager]) -> None:
        """A failed attempt: nothing it wrote stays (written keys no file points at, whatever its prefixes hold)."""
        try:
            for stager in stagers:
                self._drop_keys(stager.leftover())
            self._clean_staged(import_id)
        except Exception:  # noqa: BLE001 - the sweep retries what is still named in the row
            log.exception("could not remove the packages import %s wrote", import_id)

    def sweep_staged(self) -> int:
        """Remove what imports that no longer run (failed, deleted half-way, or whose worker died) left under their
        staged prefixes; returns how many imports were cleaned. Called with the upload sweep."""
        cutoff = now() - timedelta(seconds=STALE)
        with self.db.uow(readonly=True) as s:
            rows = list(
                s.execute(
                    select(
                        ProjectImportRow.id,
                        ProjectImportRow.status,
                        ProjectImportRow.updated_at,
                        ProjectImportRow.created,
                    )
                    .where(cast(ProjectImportRow.created, Text).like(f'%"{STAGED}"%'))
                    .limit(500)
                )
            )
        cleaned = 0
        for import_id, status, updated_at, created in rows:
            markers = [x for x in created or [] if isinstance(x, dict) and x.get("kind") == STAGED]
            if not markers:
                continue
            running = status in ("scanning", "processing") and aware(updated_at) > cutoff
            retired = {x.get("name") for x in markers if x.get("retired")}
            if running and not retired:
                continue
            self._clean_staged(import_id, retired if running else None)
            cleaned += 1
        return cleaned

    def _stage_member(self, stager: Stager, zf: zipfile.ZipFile, member: str) -> None:
        """Write one package (read, CRC-checked, hashed and written in one pass) and make it durable."""
        info = zf.getinfo(member)
        self._check_package_size(info.file_size)
        limit = self.limits.max_member
        sink = stager.open()
        try:
            with zf.open(info) as src:
                while chunk := src.read(IMPORT_READ):
                    if sink.size + len(chunk) > limit:
                        raise Rejected(f"{member!r} unpacks to more than {limit} bytes.")
                    sink.write(chunk)
                    self._check_package_size(sink.size)
            stager.store_entry(member, sink)
        except BaseException:
            sink.abort()
            raise
        stager.sync()
        self._touch(stager.import_id)

    def _check_package_size(self, size: int) -> None:
        """The limits an uploaded package has (``upload_revision``, then the files service)."""
        if size > self.serving.max_package_size:
            raise TooLarge(
                f"A package (of a deployment or an environment) may be at most {self.serving.max_package_size} bytes."
            )
        limit = self.files.max_single_upload
        if size > limit:
            raise TooLarge(f"the file is larger than the limit of {limit} bytes", code="FILE_TOO_LARGE", limit=limit)

    def _commit_staged(
        self, principal: Principal, stager: Stager, member: str, context: str, attach: Callable[[str, int], Any]
    ) -> None:
        """Make a written package a file — its row points at the key (or, if the bytes are held already, at the held
        blob; the key goes) — and hand it to ``attach`` (file id, size: a revision, or an environment tag's build),
        the checks of an upload included; the file goes again if ``attach`` fails."""
        key, sha256, size = stager.entries[member]
        self._check_package_size(size)
        filename = member.rsplit("/", 1)[-1]
        if not filename.lower().endswith(".zip"):  # pragma: no cover - the layout only has .zip packages
            raise InvalidInput(f"A package must be a .zip file, not {filename!r}.")
        check_name(filename)
        require(principal, Action.FILE_WRITE, principal.org_id, what="file")
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, stager.import_id, with_for_update=True)
            live = {"kind": STAGED, "name": stager.prefix}
            if row is None or live not in (row.created or []):  # deleted, or its prefix retired by a clean-up
                raise InvalidInput("The import was deleted while it ran.")
            record, stale = self.files.record_in(
                s,
                principal,
                name=filename,
                context=context,
                extension=None,
                sha256=sha256,
                size=size,
                segments=[(key, size)],
            )
        stager.committed.add(key)
        self.serving.drop_blobs(stale)
        try:
            attach(record.id, size)
        except BaseException:
            with self.db.uow() as s:
                stale = self.files.drop_in(s, record.id)
            self.serving.drop_blobs(stale)
            raise
