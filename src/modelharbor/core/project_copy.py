"""Copying a project (Domino's copy-project and fork): a new project of the caller's (or, for an admin, of
``owner_id``) with, as the options say, the source's files, imported git repositories, goals and collaborators.

Files are copied without copying bytes: the new project's first commit points at the source's newest root
directory node; the nodes reachable from it are recorded for the new project under the same hashes (directory
metadata only, one row per directory), and each file's content gets a new file record over the same stored blob
(core/files: bytes are content-addressed, so both projects share them and deleting one project leaves the other's
intact). Reading the source takes what reading it takes (any member of its organisation); creating the copy what
creating a project takes. Imported repositories keep their git credential only when it is the caller's own (or
``credential_id``, one of the caller's, replaces it); another user's credential is never carried over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_hex, now
from modelharbor.core.files import PROJECT_FILE, FileService
from modelharbor.core.ids import find
from modelharbor.core.projects import Project, ProjectService, project_row, readable_project_row
from modelharbor.db.engine import Database
from modelharbor.db.tables import BlobRow, FileRow
from modelharbor.db.tables_collab import ProjectGoalRow, ProjectRepositoryRow
from modelharbor.db.tables_people import GitCredentialRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow, ProjectFileCommitRow, ProjectFileTreeRow
from modelharbor.db.tables_registry import ProjectCollaboratorRow, RegistryProjectRow
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Principal

_BATCH = 500


@dataclass(frozen=True)
class CopyOptions:
    files: bool = True
    repositories: bool = True
    goals: bool = False
    collaborators: bool = False
    credential_id: str | None = None  # the caller's git credential for the copied repositories


FORK = CopyOptions(files=True, repositories=True, goals=False, collaborators=False)


@dataclass(frozen=True)
class CopyResult:
    project: Project
    source_id: str
    commit_id: str | None  # the copy's first commit (None: the source had no files or files were not copied)
    files: int  # how many files the copy's first commit holds


class ProjectCopyService:
    def __init__(self, db: Database, projects: ProjectService, files: FileService):
        self.db = db
        self.projects = projects
        self.files = files

    def copy(
        self,
        principal: Principal,
        source_id: str,
        name: str,
        *,
        owner_id: str | None = None,
        description: str | None = None,
        visibility: str | None = None,
        options: CopyOptions = FORK,
    ) -> CopyResult:
        """A new project ``name`` from the project ``source_id`` (its description and visibility unless given), with
        what ``options`` asks for; nothing is left when a part fails."""
        with self.db.uow(readonly=True) as s:
            source = readable_project_row(s, principal, source_id)
            if options.credential_id:
                self._own_credential(s, principal, options.credential_id)
            source_description = source.description or ""
            source_visibility = source.visibility
        created = self.projects.create_project(
            principal,
            name,
            description=source_description if description is None else description,
            owner_id=owner_id,
            visibility=source_visibility if visibility is None else visibility,
        )
        try:
            with self.db.uow() as s:
                target = project_row(s, principal, created.id, lock=True)
                src = readable_project_row(s, principal, source_id)
                commit_id, count = (None, 0)
                if options.files:
                    commit_id, count = self._copy_files(s, principal, src.id, target.id)
                if options.repositories:
                    self._copy_repositories(s, principal, src.id, target.id, options.credential_id)
                if options.goals:
                    self._copy_goals(s, principal, src.id, target.id)
                if options.collaborators:
                    self._copy_collaborators(s, src.id, target)
                s.flush()
        except BaseException:
            self.projects.delete_project(principal, created.id)
            raise
        return CopyResult(self.projects.get_project(principal, created.id), source_id, commit_id, count)

    # --- parts ------------------------------------------------------------------------------------------------------
    def _copy_files(self, s: Session, principal: Principal, source: str, target: str) -> tuple[str | None, int]:
        C, T, B = ProjectFileCommitRow, ProjectFileTreeRow, ProjectFileBlobRow
        head = s.scalar(select(C).where(C.project_id == source).order_by(C.seq.desc()).limit(1))
        if head is None:
            return None, 0
        seen: set[str] = set()
        keys: set[str] = set()
        level = {head.tree}
        while level:  # the nodes reachable from the head, one directory level per round of queries
            seen |= level
            found: set[str] = set()
            batch = sorted(level)
            for i in range(0, len(batch), _BATCH):
                for digest, text in s.execute(
                    select(T.hash, T.entries).where(T.project_id == source, T.hash.in_(batch[i : i + _BATCH]))
                ):
                    s.add(T(project_id=target, hash=digest, entries=text))
                    for entry in json.loads(text):
                        (found if entry[1] == "d" else keys).add(entry[2])
            level = found - seen
        wanted = sorted(keys)
        for i in range(0, len(wanted), _BATCH):
            rows = s.execute(
                select(B.key, B.size, FileRow.name, FileRow.sha256, BlobRow.segments)
                .join(FileRow, FileRow.id == B.file_id)
                .join(BlobRow, BlobRow.sha256 == FileRow.sha256)
                .where(B.project_id == source, B.key.in_(wanted[i : i + _BATCH]))
            )
            for key, size, file_name, sha256, segments in rows:
                record, _stale = self.files.record_in(  # the blob exists: a new record, no bytes, nothing stale
                    s,
                    principal,
                    name=file_name,
                    context=PROJECT_FILE,
                    extension=None,
                    sha256=sha256,
                    size=size,
                    segments=[(k, n) for k, n in segments],
                )
                s.add(B(project_id=target, key=key, file_id=record.id, size=size))
        at = now()
        ident = hashlib.sha1(f"{target}\n1\nNone\n{head.tree}\n{principal.user_id}\n{at}\ncopy:{head.id}".encode())
        s.add(
            C(
                id=ident.hexdigest(),
                project_id=target,
                seq=1,
                parent_id=None,
                tree=head.tree,
                path="",
                author_id=principal.user_id,
                created_at=at,
            )
        )
        s.flush()
        return ident.hexdigest(), len(keys)

    def _copy_repositories(
        self, s: Session, principal: Principal, source: str, target: str, credential_id: str | None
    ) -> None:
        R = ProjectRepositoryRow
        for r in s.scalars(select(R).where(R.project_id == source).order_by(R.name)):
            cred = credential_id
            if cred is None and r.credential_id:
                own = s.get(GitCredentialRow, r.credential_id)
                cred = r.credential_id if own is not None and own.user_id == principal.user_id else None
            s.add(
                R(
                    id=new_hex(12),
                    project_id=target,
                    name=r.name,
                    uri=r.uri,
                    provider=r.provider,
                    ref_type=r.ref_type,
                    ref_value=r.ref_value,
                    credential_id=cred,
                    creator_id=principal.user_id,
                    created_at=now(),
                )  # fmt: skip
            )

    @staticmethod
    def _copy_goals(s: Session, principal: Principal, source: str, target: str) -> None:
        G = ProjectGoalRow
        for g in s.scalars(select(G).where(G.project_id == source).order_by(G.created_at, G.id)):
            s.add(
                G(
                    id=new_hex(12),
                    project_id=target,
                    title=g.title,
                    description=g.description,
                    stage_id=g.stage_id,
                    assignee_id=g.assignee_id,
                    creator_id=principal.user_id,
                    is_complete=g.is_complete,
                    created_at=now(),
                )  # fmt: skip
            )

    @staticmethod
    def _copy_collaborators(s: Session, source: str, target: RegistryProjectRow) -> None:
        P = ProjectCollaboratorRow
        for c in s.scalars(select(P).where(P.project_id == source)):
            if c.user_id != target.owner_id:
                s.add(P(project_id=target.id, user_id=c.user_id, role=c.role))

    @staticmethod
    def _own_credential(s: Session, principal: Principal, credential_id: str) -> None:
        cred = find(s, GitCredentialRow, credential_id)
        if cred is None or cred.user_id != principal.user_id:
            raise InvalidInput(
                f"'importedGitReposCredentialId': {credential_id!r} is not one of your git credentials",
                field="importedGitReposCredentialId",
            )
