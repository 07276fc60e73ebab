"""``ProjectFileService``: a project's versioned files — commits newest first, a commit's files at a path, a file's
bytes at a commit (ranges), a write streamed into the files service as a new commit.

Projects are the core projects (core/projects.py), addressed by id or by ``(owner username, name)``
(:data:`ProjectRef`); reading takes what reading the project takes (a member of its organisation), writing what
changing it takes (its owner, an organisation admin or a collaborator with a writer role).

A write streams the body into a fresh store object (``FileService.store_stream``: flat memory, any size up to
``max_size``), then in one transaction locks the project, records the content once per project (a file record of
context ``project-file`` behind a 40-hex blob key) and stores the directory nodes on the path and the commit
(trees.py). A body cut off, a bad path or an unchanged file (an empty commit) leave no commit and no bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, now
from modelharbor.core.files import PROJECT_FILE, ByteRange, FileService, Segment, blobs, parse_range, to_record
from modelharbor.core.project_files import trees
from modelharbor.core.project_files.paths import normalise, split
from modelharbor.core.projects import ProjectService, project_row, project_row_by_owner, require_project_write
from modelharbor.db.engine import Database
from modelharbor.db.tables import BlobRow, FileRow, UserRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow, ProjectFileCommitRow, ProjectFileTreeRow
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

ProjectRef = str | tuple[str, str]  # a project id, or (owner username, project name)
HEAD = ("", "head", "latest")
MAX_PAGE = 10_000
_HEX40 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Commit:
    id: str  # 40 hex
    number: int  # 1, 2, …: newest is highest
    parent_id: str | None
    path: str  # the file it wrote
    author_id: str | None
    author: str | None  # username
    created_at: datetime
    tree: str = field(default="", repr=False, compare=False)  # the root directory node (internal)


@dataclass(frozen=True)
class FileEntry:
    """A file or directory at a commit. ``key`` is the blob key of a file (40 hex), the node hash of a directory."""

    path: str
    name: str
    is_dir: bool
    key: str
    size: int
    modified_ms: int


@dataclass(frozen=True)
class Listing:
    commit: Commit | None  # None: the project has no commit yet (and the listing is empty)
    path: str
    entries: list[FileEntry]


@dataclass(frozen=True)
class Opened:
    entry: FileEntry
    record: FileRecord
    range: ByteRange | None
    stream: AsyncIterator[bytes]


def _is_hex40(value: str) -> bool:
    return len(value) == 40 and set(value) <= _HEX40


class ProjectFileService:
    def __init__(self, db: Database, files: FileService, projects: ProjectService, *, max_size: int):
        self.db = db
        self.files = files
        self.max_size = max_size
        projects.on_delete.append(self._delete_project_files)

    # --- lookups --------------------------------------------------------------------------------------------------
    @staticmethod
    def _project(s: Session, principal: Principal, ref: ProjectRef, *, lock: bool = False) -> RegistryProjectRow:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        if isinstance(ref, tuple):
            return project_row_by_owner(s, principal, ref[0], ref[1], lock=lock)
        return project_row(s, principal, ref, lock=lock)

    @staticmethod
    def _commit(s: Session, project_id: str, commit: str | None) -> Commit | None:
        """The commit ``commit`` names (its 40-hex id; ``None``, ``head`` or ``latest`` for the newest, None when the
        project has none), with its author's username: one query."""
        C = ProjectFileCommitRow
        q = select(C, UserRow.username).outerjoin(UserRow, UserRow.id == C.author_id).where(C.project_id == project_id)
        if commit is None or commit.lower() in HEAD:
            found = s.execute(q.order_by(C.seq.desc()).limit(1)).first()
            if found is None:
                return None
        else:
            if not _is_hex40(commit.lower()):
                raise InvalidInput(f"'commitId' must be a commit id (40 hex digits) or 'head', not {commit!r}")
            found = s.execute(q.where(C.id == commit.lower())).first()
            if found is None:
                raise NotFound(f"commit {commit} not found in this project")
        r, author = found
        return Commit(r.id, r.seq, r.parent_id, r.path, r.author_id, author, aware(r.created_at), r.tree)

    # --- read -----------------------------------------------------------------------------------------------------
    def commits(self, principal: Principal, ref: ProjectRef, *, limit: int = 100, offset: int = 0) -> list[Commit]:
        """The project's commits, newest first."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1..{MAX_PAGE} and offset ≥ 0")
        C = ProjectFileCommitRow
        with self.db.uow(readonly=True) as s:
            project = self._project(s, principal, ref)
            rows = s.execute(
                select(C, UserRow.username)
                .outerjoin(UserRow, UserRow.id == C.author_id)
                .where(C.project_id == project.id)
                .order_by(C.seq.desc())
                .limit(limit)
                .offset(offset)
            )
            return [
                Commit(r.id, r.seq, r.parent_id, r.path, r.author_id, name, aware(r.created_at)) for r, name in rows
            ]

    def list(self, principal: Principal, ref: ProjectRef, commit: str | None = None, path: str = "") -> Listing:
        """The files and directories directly under ``path`` at ``commit`` (the newest when None), by name; the file
        itself when ``path`` names one."""
        norm = normalise(path, absolute_ok=True)
        with self.db.uow(readonly=True) as s:
            project = self._project(s, principal, ref)
            row = self._commit(s, project.id, commit)
            if row is None:
                if norm:
                    raise NotFound(f"no file or directory {norm!r}: the project has no files yet")
                return Listing(None, norm, [])
            found = trees.lookup(s, project.id, row.tree, split(norm), shown=norm)
            base = norm if found.is_dir else norm.rpartition("/")[0]
            entries = [
                FileEntry(f"{base}/{e[0]}" if base else e[0], e[0], e[1] == trees.DIR, e[2], e[3], e[4])
                for e in found.entries
            ]
            return Listing(row, norm, entries)

    def _file(self, principal: Principal, ref: ProjectRef, commit: str | None, path: str):
        norm = normalise(path, absolute_ok=True, root_ok=False)
        with self.db.uow(readonly=True) as s:
            project = self._project(s, principal, ref)
            row = self._commit(s, project.id, commit)
            if row is None:
                raise NotFound(f"no file {norm!r}: the project has no files yet")
            found = trees.lookup(s, project.id, row.tree, split(norm), shown=norm)
            if found.is_dir:
                raise InvalidInput(f"'path': {norm!r} is a directory, not a file", field="path")
            e = found.entries[0]
            entry = FileEntry(norm, e[0], False, e[2], e[3], e[4])
            return (entry, *self._blob(s, project.id, e[2]))

    def _key(self, principal: Principal, ref: ProjectRef, key: str):
        if not _is_hex40(key.lower()):
            raise InvalidInput(f"'key' must be a blob key (40 hex digits), not {key!r}", field="key")
        with self.db.uow(readonly=True) as s:
            project = self._project(s, principal, ref)
            record, segments = blob_of(s, project.id, key.lower(), files_only=True)
            entry = FileEntry(record.name, record.name, False, key.lower(), record.size, 0)
            return entry, record, segments

    @staticmethod
    def _blob(s: Session, project_id: str, key: str) -> tuple[FileRecord, list[Segment]]:
        return blob_of(s, project_id, key)

    def _opened(self, entry, record, segments, range_header) -> Opened:
        return opened(self.files, entry, record, segments, range_header)

    async def open(
        self, principal: Principal, ref: ProjectRef, commit: str | None, path: str, range_header: str | None = None
    ) -> Opened:
        """A file's bytes at a commit (the newest when None), ``range_header`` honoured (``bytes=a-b``)."""
        entry, record, segments = await asyncio.to_thread(self._file, principal, ref, commit, path)
        return self._opened(entry, record, segments, range_header)

    async def open_blob(self, principal: Principal, ref: ProjectRef, key: str, range_header: str | None = None):
        """A blob's bytes by its key (what a listing's ``key`` names)."""
        entry, record, segments = await asyncio.to_thread(self._key, principal, ref, key)
        return self._opened(entry, record, segments, range_header)

    # --- write ----------------------------------------------------------------------------------------------------
    async def write(
        self, principal: Principal, ref: ProjectRef, path: str, data: AsyncIterable[bytes], *, url_path: bool = False
    ) -> Commit:
        """Write the file ``path`` with the bytes of ``data`` as a new commit (streamed; at most ``max_size``).

        ``url_path``: the path came in a URL, where a leading ``/`` is the separator before it, not an absolute path.
        """
        norm = normalise(path, root_ok=False, absolute_ok=url_path)
        parts = split(norm)

        def check(s: Session) -> None:  # may the caller write into the project? asked before any byte is read
            require_project_write(s, principal, self._project(s, principal, ref))

        def commit(s: Session, sha256: str, size: int, segments: list[Segment]) -> tuple[Commit, list[str]]:
            project = self._project(s, principal, ref, lock=True)
            require_project_write(s, principal, project)
            head = self._commit(s, project.id, None)
            key, stale = record_blob(s, self.files, principal, project.id, parts[-1], sha256, size, segments)
            at = now()
            ms = int(at.timestamp() * 1000)
            root = trees.put_file(s, project.id, head.tree if head else None, parts, key, size, ms)
            if root is None:
                raise InvalidInput(
                    f"empty commit: {norm!r} already has this content at the newest commit", field="path"
                )
            seq = head.number + 1 if head else 1
            parent = head.id if head else None
            ident = hashlib.sha1(f"{project.id}\n{seq}\n{parent}\n{root}\n{principal.user_id}\n{at}".encode())
            row = ProjectFileCommitRow(
                id=ident.hexdigest(),
                project_id=project.id,
                seq=seq,
                parent_id=parent,
                tree=root,
                path=norm,
                author_id=principal.user_id,
                created_at=at,
            )
            s.add(row)
            s.flush()
            return Commit(row.id, seq, parent, norm, principal.user_id, principal.username, aware(at), root), stale

        return await self.files.store_stream(data, self.max_size, commit, what="the file", check=check)

    # --- a deleted project's files --------------------------------------------------------------------------------
    def _delete_project_files(self, s: Session, project_id: str) -> list[str]:
        """``ProjectService.on_delete``: the project's commits, nodes and blobs go; store keys no file uses any more
        are returned (to delete once committed)."""
        file_ids = list(
            s.scalars(select(ProjectFileBlobRow.file_id).where(ProjectFileBlobRow.project_id == project_id))
        )
        for table in (ProjectFileBlobRow, ProjectFileTreeRow, ProjectFileCommitRow):
            s.execute(delete(table).where(table.project_id == project_id))
        stale: list[str] = []
        for file_id in file_ids:
            stale += self.files.drop_in(s, file_id)
        return stale


# --- shared with datasets (core/datasets.py), whose files live in their project's content store ---------------------
def blob_of(s: Session, project_id: str, key: str, *, files_only: bool = False) -> tuple[FileRecord, list[Segment]]:
    """The file record and store segments of the project's blob ``key``; NotFound if the project has none (with
    ``files_only``, none its versioned files hold: a blob only a dataset holds is read through the dataset, whose
    grants decide)."""
    q = (
        select(FileRow, BlobRow.segments)
        .join(ProjectFileBlobRow, ProjectFileBlobRow.file_id == FileRow.id)
        .join(BlobRow, BlobRow.sha256 == FileRow.sha256)
        .where(ProjectFileBlobRow.project_id == project_id, ProjectFileBlobRow.key == key)
    )
    found = s.execute(q.where(ProjectFileBlobRow.in_files.is_(True)) if files_only else q).first()
    if found is None:
        raise NotFound(f"blob {key} not found in this project")
    return to_record(found[0]), [(k, n) for k, n in found[1]]


def record_blob(
    s: Session,
    files: FileService,
    principal: Principal,
    project_id: str,
    name: str,
    sha256: str,
    size: int,
    segments: list[Segment],
    *,
    in_files: bool = True,
) -> tuple[str, list[str]]:
    """Within a ``store_stream`` commit: record fresh content once per project (a file record of context
    ``project-file`` behind a 40-hex blob key); its key and the store keys made redundant (to delete once
    committed). ``in_files``: for the project's versioned files (False: a dataset's, core/datasets.py)."""
    key = sha256[:40]
    held = s.get(ProjectFileBlobRow, (project_id, key))
    if held is not None:
        if in_files and not held.in_files:
            held.in_files = True  # the project's files hold it now too
        return key, [k for k, _ in segments]  # the project holds this content: the fresh bytes go
    record, stale = files.record_in(
        s, principal, name=name, context=PROJECT_FILE, extension=None, sha256=sha256, size=size, segments=segments
    )
    s.add(ProjectFileBlobRow(project_id=project_id, key=key, file_id=record.id, size=size, in_files=in_files))
    return key, stale


def opened(files: FileService, entry: FileEntry, record: FileRecord, segments, range_header: str | None) -> Opened:
    """A file's bytes streamed from the store, ``range_header`` honoured (``bytes=a-b``)."""
    rng = parse_range(range_header, record.size)
    start, end = (rng.start, rng.end) if rng else (0, record.size)
    return Opened(entry, record, rng, blobs.stream_segments(files.store, segments, start, end))
