"""Domino datasets: a project's read-write dataset (a **head**, a tree of files), its immutable **snapshots**,
tags naming snapshots, and grants (core/dataset_access.py says who may do what).

Files live in the project's content store, the one versioned project files use (core/project_files/): a head is
the hash of a root directory node of the project, a file a blob of the project. A snapshot records the head's root
hash — one row, no byte and no node copied, whatever the number of files; a snapshot of some paths builds a root
holding just those entries (a few nodes, still no byte). The head changes by writes (:meth:`DatasetService.write`,
what the resumable upload will call per file), so snapshots stay as they were. Deleting a dataset drops its rows;
its content stays in the project's store until the project is deleted (like the history of project files).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core import dataset_access as access
from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.files import FileService
from modelharbor.core.ids import find, well_formed
from modelharbor.core.project_files import FileEntry, Opened, trees
from modelharbor.core.project_files.paths import normalise, split
from modelharbor.core.project_files.service import blob_of, opened, record_blob
from modelharbor.core.projects import (
    ProjectService,
    readable_project_row,
    require_not_archived,
    require_project_write,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables import MembershipRow, UserRow
from modelharbor.db.tables_datasets import (
    DatasetGrantRow,
    DatasetRow,
    DatasetSnapshotRow,
    DatasetTagRow,
    ProjectSharedDatasetRow,
)
from modelharbor.db.tables_people import TeamRow
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

MAX_NAME = 256
MAX_DESCRIPTION = 10_000
MAX_TAG = 256
MAX_PAGE = 1000
MAX_PATHS = 1000
ACTIVE = "active"


@dataclass(frozen=True)
class Dataset:
    id: str
    project_id: str
    project_name: str
    project_owner: str | None  # the owner's username (a team-owned project: the team's name)
    project_archived: bool
    name: str
    description: str
    created_at: datetime
    creator_id: str | None
    snapshot_ids: list[str]  # newest first
    tags: dict[str, str]  # tag → snapshot id
    role: str  # the caller's role


@dataclass(frozen=True)
class Snapshot:
    id: str
    dataset_id: str
    created_at: datetime
    creator_id: str | None
    description: str
    size: int
    status: str = ACTIVE


@dataclass(frozen=True)
class Grant:
    target_id: str
    role: str
    is_team: bool
    target_name: str = ""


def _snapshot(r: DatasetSnapshotRow) -> Snapshot:
    return Snapshot(r.id, r.dataset_id, aware(r.created_at), r.creator_id, r.description or "", r.size or 0)


def _text(value: str | None, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(f"'{name}' is required", field=name)
        return None
    if (required or name == "name") and not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{name}' must be 1 to {limit} characters without NUL", field=name)
    if name == "name" and not value.isprintable():
        raise InvalidInput(f"'{name}' must be printable characters", field=name)
    return value.strip() if name == "name" else value


class DatasetService:
    def __init__(self, db: Database, files: FileService, projects: ProjectService, *, max_size: int):
        self.db = db
        self.files = files
        self.max_size = max_size
        projects.on_delete.append(self._delete_project_datasets)

    # --- lookups --------------------------------------------------------------------------------------------------
    @staticmethod
    def _load(
        s: Session, principal: Principal, dataset_id: str, need: str, *, lock: bool = False
    ) -> tuple[DatasetRow, RegistryProjectRow, str]:
        """The dataset, its project and the caller's role, which must be at least ``need`` (a change also takes
        registry write and an active project). Unknown, foreign or unseen: 404."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="dataset")
        row = find(s, DatasetRow, dataset_id)
        if row is not None and lock:
            s.refresh(row, with_for_update=True)
        project = s.get(RegistryProjectRow, row.project_id) if row is not None else None
        if project is None or (project.org_id != principal.org_id and not principal.is_superuser):
            raise NotFound(f"Dataset {dataset_id!r} not found")
        role = access.Roles(s, principal).role(row.id, project)
        if role is None:
            raise NotFound(f"Dataset {dataset_id!r} not found")
        if access.RANK[role] < access.RANK[need]:
            raise Forbidden(f"you are {role} on dataset {row.name!r}; this takes {need}")
        if need != access.READER:
            require(principal, Action.REGISTRY_WRITE, project.org_id, what="dataset")
            require_not_archived(project)
        return row, project, role

    @staticmethod
    def _entity(s: Session, row: DatasetRow, project: RegistryProjectRow, role: str) -> Dataset:
        S, T = DatasetSnapshotRow, DatasetTagRow
        snaps = list(s.scalars(select(S.id).where(S.dataset_id == row.id).order_by(S.created_at.desc(), S.id)))
        tags = dict(s.execute(select(T.name, T.snapshot_id).where(T.dataset_id == row.id).order_by(T.name)).all())
        owner = None
        if project.owner_team_id:
            owner = s.scalar(select(TeamRow.name).where(TeamRow.id == project.owner_team_id))
        elif project.owner_id:
            owner = s.scalar(select(UserRow.username).where(UserRow.id == project.owner_id))
        return Dataset(
            row.id, project.id, project.name, owner, bool(project.archived), row.name, row.description or "",
            aware(row.created_at), row.creator_id, snaps, tags, role,
        )  # fmt: skip

    # --- datasets -------------------------------------------------------------------------------------------------
    def create(
        self,
        principal: Principal,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        grants: Sequence[tuple[str, str]] = (),
        snapshot_id: str | None = None,
    ) -> Dataset:
        """A dataset in the project (project write): its creator is its DatasetRwOwner; ``grants`` (target id,
        role) are added; ``snapshot_id`` (a snapshot of a dataset of the same project the caller reads) starts
        its head with that snapshot's files (no byte copied)."""
        name = _text(name, "name", MAX_NAME, required=True)
        description = _text(description, "description", MAX_DESCRIPTION) or ""
        roles = [(t, access.role_of(r)) for t, r in grants]
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, project)
            if s.scalar(select(DatasetRow.id).where(DatasetRow.project_id == project.id, DatasetRow.name == name)):
                raise InvalidInput(f"a dataset named {name!r} already exists in project {project.name!r}", field="name")
            head = None
            if snapshot_id is not None:
                snap, source, _ = self._snapshot_row(s, principal, snapshot_id)
                if source.project_id != project.id:
                    raise InvalidInput(
                        "'snapshotId' must be a snapshot of a dataset of the same project", field="snapshotId"
                    )
                head = snap.tree
            row = DatasetRow(
                id=new_hex(12), project_id=project.id, name=name, description=description, head_tree=head,
                creator_id=principal.user_id, created_at=now(),
            )  # fmt: skip
            s.add(row)
            s.flush()
            s.add(DatasetGrantRow(dataset_id=row.id, target_id=principal.user_id, is_team=False, role=access.OWNER))
            for target, role in roles:
                self._put_grant(s, principal, row, target, role)
            s.flush()
            return self._entity(s, row, project, access.OWNER)

    def get(self, principal: Principal, dataset_id: str) -> Dataset:
        with self.db.uow(readonly=True) as s:
            return self._entity(s, *self._load(s, principal, dataset_id, access.READER))

    def update(
        self, principal: Principal, dataset_id: str, *, name: str | None = None, description: str | None = None
    ) -> Dataset:
        """Rename or describe (Editor); a name taken in the project is a 400."""
        name = _text(name, "name", MAX_NAME)
        description = _text(description, "description", MAX_DESCRIPTION)
        with self.db.uow() as s:
            row, project, role = self._load(s, principal, dataset_id, access.EDITOR, lock=True)
            if name is not None and name != row.name:
                taken = select(DatasetRow.id).where(DatasetRow.project_id == project.id, DatasetRow.name == name)
                if s.scalar(taken):
                    raise InvalidInput(f"a dataset named {name!r} already exists in this project", field="name")
                row.name = name
            if description is not None:
                row.description = description
            s.flush()
            return self._entity(s, row, project, role)

    def delete(self, principal: Principal, dataset_id: str) -> Dataset:
        """Delete the dataset, its snapshots, tags and grants (Owner); the dataset as it was."""
        with self.db.uow() as s:
            row, project, role = self._load(s, principal, dataset_id, access.OWNER, lock=True)
            gone = self._entity(s, row, project, role)
            self._drop(s, [row.id])
            return gone

    def list(
        self,
        principal: Principal,
        *,
        project_id: str | None = None,
        name: str | None = None,
        minimum: str = access.READER,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        archived: bool = True,
        offset: int = 0,
        limit: int = 10,
    ) -> tuple[list[Dataset], int]:
        """The datasets the caller has at least ``minimum`` on (newest first), named ``name`` (when given), of
        ``project_id`` / the projects in ``include`` (when given) but not in ``exclude``, of archived projects too
        when ``archived``; a page of them and how many there are."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1..{MAX_PAGE} and offset ≥ 0")
        require(principal, Action.REGISTRY_READ, principal.org_id, what="dataset")
        D, P = DatasetRow, RegistryProjectRow
        q = select(D, P).join(P, P.id == D.project_id).order_by(D.created_at.desc(), D.id)
        q = q.where(P.org_id == principal.org_id)
        if project_id is not None:
            q = q.where(D.project_id == project_id)
        if name is not None:
            q = q.where(D.name == name)
        if include:
            q = q.where(D.project_id.in_(list(include)))
        if exclude:
            q = q.where(D.project_id.not_in(list(exclude)))
        if not archived:
            q = q.where(P.archived.is_(False))
        with self.db.uow(readonly=True) as s:
            rows = s.execute(q).all()
            roles = access.Roles(s, principal)
            granted = roles.granted([d.id for d, _ in rows])
            mine = []
            for d, p in rows:
                role = access.highest(granted.get(d.id), roles.of_project(p))
                if role is not None and access.RANK[role] >= access.RANK[minimum]:
                    mine.append((d, p, role))
            return [self._entity(s, *found) for found in mine[offset : offset + limit]], len(mine)

    # --- grants ---------------------------------------------------------------------------------------------------
    def grants(self, principal: Principal, dataset_id: str) -> list[Grant]:
        """The dataset's grants with their targets' names (Reader)."""
        with self.db.uow(readonly=True) as s:
            row, _, _ = self._load(s, principal, dataset_id, access.READER)
            return self._grants(s, row.id)

    def add_grant(self, principal: Principal, dataset_id: str, target_id: str, role: str) -> list[Grant]:
        """Give ``target_id`` (a user's or a team's id, or a username) ``role``, replacing its grant (Owner)."""
        role = access.role_of(role)
        with self.db.uow() as s:
            row, _, _ = self._load(s, principal, dataset_id, access.OWNER, lock=True)
            self._put_grant(s, principal, row, target_id, role)
            s.flush()
            return self._grants(s, row.id)

    def remove_grant(self, principal: Principal, dataset_id: str, target_id: str, role: str) -> list[Grant]:
        """Take the grant ``(target_id, role)`` away (Owner; ``target_id`` a user's or team's id, or a username);
        NotFound when the target has no such grant."""
        role = access.role_of(role)
        with self.db.uow() as s:
            row, _, _ = self._load(s, principal, dataset_id, access.OWNER, lock=True)
            grant = s.get(DatasetGrantRow, (row.id, target_id)) if well_formed(target_id) else None
            if grant is None and isinstance(target_id, str) and "\x00" not in target_id:
                user_id = s.scalar(select(UserRow.id).where(UserRow.username == target_id))
                grant = s.get(DatasetGrantRow, (row.id, user_id)) if user_id is not None else None
            if grant is None or grant.role != role:
                raise NotFound(f"no grant {role} to {target_id!r} on dataset {row.name!r}")
            s.delete(grant)
            s.flush()
            return self._grants(s, row.id)

    @staticmethod
    def _put_grant(s: Session, principal: Principal, row: DatasetRow, target_id: str, role: str) -> None:
        if not isinstance(target_id, str) or not target_id.strip():
            raise InvalidInput("'targetId' is required", field="targetId")
        user = find(s, UserRow, target_id) or (
            s.scalar(select(UserRow).where(UserRow.username == target_id)) if "\x00" not in target_id else None
        )
        project = s.get(RegistryProjectRow, row.project_id)
        if user is not None and s.get(MembershipRow, (project.org_id, user.id)) is None:
            user = None
        team = None if user is not None else find(s, TeamRow, target_id)
        if team is not None and team.org_id != project.org_id:
            team = None
        if user is None and team is None:
            raise NotFound(f"'targetId': no user or organization {target_id!r} in this organisation")
        ident = user.id if user is not None else team.id
        grant = s.get(DatasetGrantRow, (row.id, ident))
        if grant is None:
            s.add(DatasetGrantRow(dataset_id=row.id, target_id=ident, is_team=team is not None, role=role))
        else:
            grant.role = role

    @staticmethod
    def _grants(s: Session, dataset_id: str) -> list[Grant]:
        """The dataset's grants with their targets' names."""
        G = DatasetGrantRow
        rows = list(s.scalars(select(G).where(G.dataset_id == dataset_id).order_by(G.target_id)))
        ids = [g.target_id for g in rows]
        names: dict[str, str] = {}
        names.update(s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))).all())
        names.update(s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(ids))).all())
        return [Grant(g.target_id, g.role, bool(g.is_team), names.get(g.target_id, "")) for g in rows]

    # --- snapshots and tags ---------------------------------------------------------------------------------------
    def snapshots(self, principal: Principal, dataset_id: str, *, offset: int = 0, limit: int = 10):
        """The dataset's snapshots, newest first: a page and the total (Reader)."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1..{MAX_PAGE} and offset ≥ 0")
        S = DatasetSnapshotRow
        with self.db.uow(readonly=True) as s:
            row, _, _ = self._load(s, principal, dataset_id, access.READER)
            total = s.scalar(select(func.count()).where(S.dataset_id == row.id))
            page = s.scalars(
                select(S).where(S.dataset_id == row.id).order_by(S.created_at.desc(), S.id).offset(offset).limit(limit)
            )
            return [_snapshot(r) for r in page], total

    def snapshot(self, principal: Principal, snapshot_id: str) -> Snapshot:
        with self.db.uow(readonly=True) as s:
            return _snapshot(self._snapshot_row(s, principal, snapshot_id)[0])

    def _snapshot_row(self, s: Session, principal: Principal, snapshot_id: str, dataset: DatasetRow | None = None):
        snap = find(s, DatasetSnapshotRow, snapshot_id)
        if snap is None or (dataset is not None and snap.dataset_id != dataset.id):
            raise NotFound(f"Snapshot {snapshot_id!r} not found")
        try:
            row, project, role = self._load(s, principal, snap.dataset_id, access.READER)
        except NotFound:
            raise NotFound(f"Snapshot {snapshot_id!r} not found") from None
        return snap, row, project

    def create_snapshot(self, principal: Principal, dataset_id: str, paths: Sequence[str] = ()) -> Snapshot:
        """Freeze the head (Editor): all of it when ``paths`` is empty or names the root (``.``), else just those
        files and directories (each must exist). One row; no byte copied."""
        if len(paths) > MAX_PATHS:
            raise InvalidInput(f"'relativeFilePaths' may name at most {MAX_PATHS} paths", field="relativeFilePaths")
        norms = sorted({normalise(p, field="relativeFilePaths") for p in paths})
        with self.db.uow() as s:
            row, project, _ = self._load(s, principal, dataset_id, access.EDITOR, lock=True)
            tree = row.head_tree
            if norms and "" not in norms:
                tree = None
                for path in norms:
                    found = trees.lookup(s, project.id, row.head_tree, split(path), shown=path)
                    if found.is_dir:
                        node = trees.store(s, project.id, found.entries)
                        entry = [path, trees.DIR, node, sum(e[3] for e in found.entries), int(now().timestamp() * 1000)]
                    else:
                        entry = found.entries[0]
                    tree = trees.put_entry(s, project.id, tree, split(path), entry)
            size = sum(e[3] for e in trees.load(s, project.id, tree))
            snap = DatasetSnapshotRow(
                id=new_hex(12), dataset_id=row.id, tree=tree, size=size, description="",
                creator_id=principal.user_id, created_at=now(),
            )  # fmt: skip
            s.add(snap)
            s.flush()
            return _snapshot(snap)

    def add_tag(self, principal: Principal, dataset_id: str, tag: str, snapshot_id: str) -> Dataset:
        """Name a snapshot of the dataset ``tag`` (Editor); an existing tag moves to it."""
        tag = _text(tag, "tagName", MAX_TAG, required=True)
        if not tag.isprintable() or tag != tag.strip():
            raise InvalidInput("'tagName' must be printable, without surrounding spaces", field="tagName")
        with self.db.uow() as s:
            row, project, role = self._load(s, principal, dataset_id, access.EDITOR, lock=True)
            snap = find(s, DatasetSnapshotRow, snapshot_id)
            if snap is None or snap.dataset_id != row.id:
                raise NotFound(f"Snapshot {snapshot_id!r} not found in dataset {row.name!r}")
            existing = s.get(DatasetTagRow, (row.id, tag))
            if existing is None:
                s.add(DatasetTagRow(dataset_id=row.id, name=tag, snapshot_id=snap.id))
            else:
                existing.snapshot_id = snap.id
            s.flush()
            return self._entity(s, row, project, role)

    def remove_tag(self, principal: Principal, dataset_id: str, tag: str) -> Dataset:
        with self.db.uow() as s:
            row, project, role = self._load(s, principal, dataset_id, access.EDITOR, lock=True)
            existing = s.get(DatasetTagRow, (row.id, tag)) if "\x00" not in tag and len(tag) <= MAX_TAG else None
            if existing is None:
                raise NotFound(f"Tag {tag!r} not found in dataset {row.name!r}")
            s.delete(existing)
            s.flush()
            return self._entity(s, row, project, role)

    # --- files ----------------------------------------------------------------------------------------------------
    def _root(self, s: Session, principal: Principal, dataset_id: str, snapshot_id: str | None):
        """(project id, root node) of the head, or of the dataset's snapshot ``snapshot_id`` (Reader)."""
        row, project, _ = self._load(s, principal, dataset_id, access.READER)
        if snapshot_id is None:
            return project.id, row.head_tree
        return project.id, self._snapshot_row(s, principal, snapshot_id, row)[0].tree

    def list_files(
        self, principal: Principal, dataset_id: str, path: str = "", *, snapshot_id: str | None = None
    ) -> list[FileEntry]:
        """The files and directories directly under ``path`` of the head (or of a snapshot), by name; the file
        itself when ``path`` names one."""
        norm = normalise(path, absolute_ok=True)
        with self.db.uow(readonly=True) as s:
            project_id, root = self._root(s, principal, dataset_id, snapshot_id)
            if root is None:
                if norm:
                    raise NotFound(f"no file or directory {norm!r}: the dataset has no files here")
                return []
            found = trees.lookup(s, project_id, root, split(norm), shown=norm)
            base = norm if found.is_dir else norm.rpartition("/")[0]
            return [
                FileEntry(f"{base}/{e[0]}" if base else e[0], e[0], e[1] == trees.DIR, e[2], e[3], e[4])
                for e in found.entries
            ]

    def _file(self, principal: Principal, dataset_id: str, path: str, snapshot_id: str | None):
        norm = normalise(path, absolute_ok=True, root_ok=False)
        with self.db.uow(readonly=True) as s:
            project_id, root = self._root(s, principal, dataset_id, snapshot_id)
            if root is None:
                raise NotFound(f"no file {norm!r}: the dataset has no files here")
            found = trees.lookup(s, project_id, root, split(norm), shown=norm)
            if found.is_dir:
                raise InvalidInput(f"'path': {norm!r} is a directory, not a file", field="path")
            e = found.entries[0]
            return (FileEntry(norm, e[0], False, e[2], e[3], e[4]), *blob_of(s, project_id, e[2]))

    async def open(
        self,
        principal: Principal,
        dataset_id: str,
        path: str,
        *,
        snapshot_id: str | None = None,
        range_header: str | None = None,
    ) -> Opened:
        """A file's bytes in the head (or a snapshot), ``range_header`` honoured (``bytes=a-b``)."""
        entry, record, segments = await asyncio.to_thread(self._file, principal, dataset_id, path, snapshot_id)
        return opened(self.files, entry, record, segments, range_header)

    async def write(self, principal: Principal, dataset_id: str, path: str, data: AsyncIterable[bytes]) -> FileEntry:
        """Write the file ``path`` of the head with the bytes of ``data`` (Editor; streamed, at most ``max_size``);
        the content is recorded once per project. Snapshots keep their files."""
        norm = normalise(path, root_ok=False)
        parts = split(norm)

        def check(s: Session) -> None:
            self._load(s, principal, dataset_id, access.EDITOR)

        def commit(s: Session, sha256: str, size: int, segments) -> tuple[FileEntry, list[str]]:
            row, project, _ = self._load(s, principal, dataset_id, access.EDITOR, lock=True)
            key, stale = record_blob(
                s, self.files, principal, project.id, parts[-1], sha256, size, segments, in_files=False
            )
            ms = int(now().timestamp() * 1000)
            root = trees.put_file(s, project.id, row.head_tree, parts, key, size, ms)
            if root is not None:
                row.head_tree = root
            s.flush()
            return FileEntry(norm, parts[-1], False, key, size, ms), stale

        return await self.files.store_stream(data, self.max_size, commit, what="the file", check=check)

    # --- shared datasets (datasets of other projects linked into a project) ----------------------------------------
    def shared(self, principal: Principal, project_id: str) -> list[str]:
        """The ids of the datasets linked into the project that the caller has a role on (project read)."""
        L = ProjectSharedDatasetRow
        with self.db.uow(readonly=True) as s:
            project = readable_project_row(s, principal, project_id)
            rows = s.execute(
                select(DatasetRow, RegistryProjectRow)
                .join(L, L.dataset_id == DatasetRow.id)
                .join(RegistryProjectRow, RegistryProjectRow.id == DatasetRow.project_id)
                .where(L.project_id == project.id)
                .order_by(L.created_at, DatasetRow.id)
            ).all()
            roles = access.Roles(s, principal)
            granted = roles.granted([d.id for d, _ in rows])
            return [d.id for d, p in rows if access.highest(granted.get(d.id), roles.of_project(p)) is not None]

    def link(self, principal: Principal, project_id: str, dataset_id: str) -> list[str]:
        """Link a dataset of another project (the caller reads it) into the project (project write); linking again
        changes nothing. The ids linked, as :meth:`shared` lists them."""
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, project)
            row, _, _ = self._load(s, principal, dataset_id, access.READER)
            if row.project_id == project.id:
                raise InvalidInput("'datasetId': a project's own dataset is not shared into it", field="datasetId")
            if s.get(ProjectSharedDatasetRow, (project.id, row.id)) is None:
                s.add(
                    ProjectSharedDatasetRow(
                        project_id=project.id, dataset_id=row.id, linked_by=principal.user_id, created_at=now()
                    )
                )
        return self.shared(principal, project_id)

    def unlink(self, principal: Principal, project_id: str, dataset_id: str) -> None:
        """Unlink a shared dataset from the project (project write); NotFound when it is not linked."""
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, project)
            link = s.get(ProjectSharedDatasetRow, (project.id, dataset_id)) if well_formed(dataset_id) else None
            if link is None:
                raise NotFound(f"Dataset {dataset_id!r} is not shared into project {project.name!r}")
            s.delete(link)

    # --- deleting -------------------------------------------------------------------------------------------------
    @staticmethod
    def _drop(s: Session, dataset_ids: list[str]) -> None:
        if not dataset_ids:
            return
        for table in (DatasetTagRow, DatasetGrantRow, DatasetSnapshotRow, ProjectSharedDatasetRow):
            s.execute(delete(table).where(table.dataset_id.in_(dataset_ids)))
        s.execute(delete(DatasetRow).where(DatasetRow.id.in_(dataset_ids)))

    def _delete_project_datasets(self, s: Session, project_id: str) -> list[str]:
        """``ProjectService.on_delete``: the project's datasets go (their content goes with the project's files), and
        its links to other projects' datasets."""
        self._drop(s, list(s.scalars(select(DatasetRow.id).where(DatasetRow.project_id == project_id))))
        s.execute(delete(ProjectSharedDatasetRow).where(ProjectSharedDatasetRow.project_id == project_id))
        return []


def dataset_row(
    s: Session, principal: Principal, dataset_id: str, need: str, *, lock: bool = False
) -> tuple[DatasetRow, RegistryProjectRow, str]:
    """Within the caller's transaction: the dataset, its project and the caller's role, at least ``need`` (else
    403; unknown or unseen: 404) — for services working on a dataset (core/dataset_uploads.py)."""
    return DatasetService._load(s, principal, dataset_id, need, lock=lock)
