"""An organisation's environments (Domino's compute environments): the same environments, tags and builds as a
project's (core/serving/environments.py, environment_tags.py, environment_builds.py), without a project.

What one is: a custom environment row with ``org_id`` (no ``project_id``), an owner, a visibility and revisions.
A **revision** is a build of its tag ``latest`` made from fields instead of an environment package: a base
(the ``image`` named — a base environment's name such as ``python3-12`` picks that interpreter, any other image
is stored and shown as given and builds on the newest base environment), requirements (what the edge parsed out
of the dialect's own grammar: Domino's ``RUN pip install …`` lines) and the rest kept as it was given
(``spec``). Revisions build in the background like every environment build (task ``serving_environment_build``:
built once per base + requirements, with a build log); a revision made while an older one is still queued
supersedes it (the older one fails with "Superseded"). Revisions are numbered 1, 2, … in the order they were
made; the newest is ``latest``, the newest successful one ``active``, and one may be marked ``restricted``.

Who sees and changes what (checked here, on the operation and the environment):

- everyone in the organisation sees ``global`` environments; a ``private`` one its owner; an ``organization``
  one the members of the team (Domino's organization) owning it; organisation admins see all of them. Others
  are missing (404). Archived environments are left out of listings and stay readable by id.
- any member who may change serving objects (``serving.write``) creates ``private`` environments, and
  ``organization`` ones for a team they belong to; only organisation admins create ``global`` ones (and mark
  revisions restricted, Domino's ``ClassifyEnvironments``);
- new revisions and archiving: organisation admins, the owner, and the admins of an owning team (403 for other
  viewers); an archived environment takes no new revisions.
- each organisation has a default environment, made on first use: ``global``, the newest base environment as it
  is, one revision (built: no requirements). It cannot be archived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from modelharbor.compute.base import BuildFailed
from modelharbor.compute.environments import check_requirements
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.ids import well_formed
from modelharbor.core.projects import is_org_admin, project_row
from modelharbor.core.serving.environment_tags import DEFAULT_TAG, ENV_BUILD_TASK
from modelharbor.db.tables import OrganisationRow, UserRow
from modelharbor.db.tables_people import TeamMemberRow, TeamRow
from modelharbor.db.tables_serving import EnvironmentBuildRow, EnvironmentRow, EnvironmentTagRow
from modelharbor.domain.errors import Forbidden, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require

if TYPE_CHECKING:
    from modelharbor.core.serving.service import ServingService

VISIBILITIES = ("global", "private", "organization")
MAX_NAME = 256
MAX_INSTRUCTIONS = 64 * 1024
MAX_REQUIREMENTS = 500
MAX_SPEC = 256 * 1024  # bytes of a revision's kept fields, as JSON
_ID = re.compile(r"[0-9a-f-]{36}")


@dataclass(frozen=True)
class RevisionIn:
    """A new revision: the image named, the instructions as given (stored), the requirements the edge parsed out
    of them (pip requirement specifiers) and other fields kept and shown as given."""

    image: str = ""
    instructions: str = ""
    requirements: Sequence[str] = ()
    summary: str = ""
    kept: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvironmentIn:
    name: str
    visibility: str  # global | private | organization
    revision: RevisionIn
    description: str = ""
    team_id: str | None = None  # the owning team (``organization`` visibility)
    restricted: bool = False  # mark the first revision restricted (admins)


@dataclass(frozen=True)
class CatalogRevision:
    id: str
    environment_id: str
    number: int
    status: str  # queued | building | success | failed
    image: str
    base: str
    requirements: tuple[str, ...]
    instructions: str
    summary: str
    kept: dict[str, Any]
    restricted: bool
    error_message: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class CatalogEnvironment:
    id: str
    name: str
    description: str
    visibility: str
    owner_id: str | None
    owner_username: str | None
    team_id: str | None
    team_name: str | None
    archived: bool
    is_default: bool
    base: str
    latest: CatalogRevision | None
    active: CatalogRevision | None  # the newest successful revision
    restricted: CatalogRevision | None
    created_at: datetime
    updated_at: datetime


def visibility_of(value: Any) -> str:
    """A visibility, any case (``Global``, ``private`` …), as the core spells it; else InvalidInput."""
    if isinstance(value, str) and value.lower() in VISIBILITIES:
        return value.lower()
    raise InvalidInput(f"'visibility' must be one of {', '.join(VISIBILITIES)} (any case), not {value!r}")


class EnvironmentCatalog:
    """An organisation's environments (``serving.environment_catalog``): see the module docstring."""

    def __init__(self, serving: ServingService):
        self.serving = serving

    @property
    def db(self):
        return self.serving.db

    # --- reads ---------------------------------------------------------------------------------------
    def list_environments(
        self, principal: Principal, *, offset: int = 0, limit: int | None = None, include_archived: bool = False
    ) -> tuple[list[CatalogEnvironment], int]:
        """The environments the caller sees (default first, then by name) and how many there are."""
        require(principal, Action.SERVING_READ, principal.org_id, what="environment")
        self._ensure_default(principal)
        with self.db.uow(readonly=True) as s:
            q = self._visible(s, principal)
            if not include_archived:
                q = q.where(EnvironmentRow.archived.is_(False))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = list(
                s.scalars(
                    q.order_by(EnvironmentRow.is_default.desc(), EnvironmentRow.name, EnvironmentRow.id)
                    .offset(offset)
                    .limit(limit)
                )
            )
            return self._entities(s, rows), total

    def usable_in_project(self, principal: Principal, project_id: str) -> list[CatalogEnvironment]:
        """What a project's workloads may run in: the caller's visible, unarchived environments (404 for a project
        the caller cannot see)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            project_row(s, principal, project_id)
        return self.list_environments(principal)[0]

    def default_environment(self, principal: Principal) -> CatalogEnvironment:
        require(principal, Action.SERVING_READ, principal.org_id, what="environment")
        env_id = self._ensure_default(principal)
        with self.db.uow(readonly=True) as s:
            return self._entity(s, s.get(EnvironmentRow, env_id))

    def get_environment(self, principal: Principal, environment_id: Any) -> CatalogEnvironment:
        require(principal, Action.SERVING_READ, principal.org_id, what="environment")
        with self.db.uow(readonly=True) as s:
            return self._entity(s, self._row(s, principal, environment_id))

    def build_log(self, principal: Principal, environment_id: Any, revision_id: Any) -> str:
        """The build log of one revision (empty before its build started)."""
        require(principal, Action.SERVING_READ, principal.org_id, what="environment")
        with self.db.uow(readonly=True) as s:
            row = self._row(s, principal, environment_id)
            return self._revision_row(s, row, revision_id).build_log or ""

    # --- writes --------------------------------------------------------------------------------------
    def create_environment(self, principal: Principal, new: EnvironmentIn) -> CatalogEnvironment:
        require(principal, Action.SERVING_WRITE, principal.org_id, what="environment")
        name = _text(new.name, "name", MAX_NAME, required=True)
        description = _text(new.description, "description", 64 * 1024)
        visibility = visibility_of(new.visibility)
        if new.team_id is not None and visibility == "private":
            visibility = "organization"  # a team's private environment is the team's (Domino's orgOwnerId)
        if visibility == "global" and not is_org_admin(principal):
            raise Forbidden("only an admin of the organisation may create a global environment")
        if visibility == "organization" and new.team_id is None:
            raise InvalidInput("an environment of visibility 'organization' needs the owning organization's id")
        if new.restricted and not is_org_admin(principal):
            raise Forbidden("only an admin of the organisation may mark a revision restricted (ClassifyEnvironments)")
        base, requirements = self._checked(new.revision)
        self._ensure_default(principal)
        with self.db.uow() as s:
            if new.team_id is not None:
                self._check_team(s, principal, new.team_id)
            t = now()
            row = EnvironmentRow(
                id=new_uuid(),
                project_id=None,
                org_id=principal.org_id,
                owner_id=principal.user_id,
                team_id=new.team_id,
                visibility=visibility,
                is_default=False,
                archived=False,
                name=name,
                description=description,
                labels={},
                base_environment=base,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.serving.environment_tags.create_default_in(s, row)
            build = self._new_revision(s, principal, row, new.revision, base, requirements)
            if new.restricted:
                row.restricted_build_id = build.id
            s.flush()
            return self._entity(s, row)

    def create_revision(self, principal: Principal, environment_id: Any, new: RevisionIn) -> CatalogRevision:
        require(principal, Action.SERVING_WRITE, principal.org_id, what="environment")
        base, requirements = self._checked(new)
        with self.db.uow() as s:
            row = self._row(s, principal, environment_id, lock=True)
            self._may_edit(s, principal, row)
            if row.archived:
                raise InvalidInput(f"environment {row.id!r} is archived: it takes no new revisions")
            if row.is_default:
                raise InvalidInput("the default environment is the base environment as it is: create your own")
            build = self._new_revision(s, principal, row, new, base, requirements)
            row.updated_at = now()
            s.flush()
            return self._revisions(s, row)[build.id]

    def set_restricted(self, principal: Principal, environment_id: Any, revision_id: Any, restricted: bool) -> str:
        """Mark a revision the environment's restricted one (or clear it, if it is); its id."""
        require(principal, Action.SERVING_WRITE, principal.org_id, what="environment")
        if not is_org_admin(principal):
            raise Forbidden("only an admin of the organisation may classify revisions (ClassifyEnvironments)")
        with self.db.uow() as s:
            row = self._row(s, principal, environment_id, lock=True)
            build = self._revision_row(s, row, revision_id)
            if restricted:
                row.restricted_build_id = build.id
            elif row.restricted_build_id == build.id:
                row.restricted_build_id = None
            row.updated_at = now()
            return build.id

    def archive_environment(self, principal: Principal, environment_id: Any) -> CatalogEnvironment:
        """Archive (soft: the environment and its revisions stay readable by id); archiving twice is no change."""
        require(principal, Action.SERVING_WRITE, principal.org_id, what="environment")
        with self.db.uow() as s:
            row = self._row(s, principal, environment_id, lock=True)
            self._may_edit(s, principal, row)
            if row.is_default:
                raise InvalidInput("the organisation's default environment cannot be archived")
            if not row.archived:
                row.archived, row.updated_at = True, now()
            s.flush()
            return self._entity(s, row)

    # --- helpers -------------------------------------------------------------------------------------
    def _checked(self, new: RevisionIn) -> tuple[str, str | None]:
        """(the base environment a revision builds on, its requirements as requirements.txt text or None)."""
        image = _text(new.image, "image", 512)
        _text(new.instructions, "dockerfileInstructions", MAX_INSTRUCTIONS)
        _text(new.summary, "summary", 64 * 1024)
        bases = self.serving.system_environments()
        base = image if image in bases else bases[-1]
        specs = list(new.requirements)
        if len(specs) > MAX_REQUIREMENTS:
            raise InvalidInput(f"a revision may list at most {MAX_REQUIREMENTS} requirements")
        for spec in specs:
            if not isinstance(spec, str) or "\n" in spec or spec.strip().startswith("-"):
                raise InvalidInput(f"invalid requirement {spec!r}: a package name with an optional version")
        text = "\n".join(s.strip() for s in specs) or None
        try:
            check_requirements(text or "")
        except BuildFailed as exc:
            raise InvalidInput(str(exc).replace("requirements.txt line", "requirement")) from None
        if len(json.dumps(dict(new.kept), default=str)) > MAX_SPEC:
            raise InvalidInput(f"the revision's other fields take more than {MAX_SPEC // 1024} KiB")
        return base, text

    def _new_revision(
        self,
        s: Session,
        principal: Principal,
        row: EnvironmentRow,
        new: RevisionIn,
        base: str,
        requirements: str | None,
    ) -> EnvironmentBuildRow:
        tag = s.scalar(
            select(EnvironmentTagRow).where(
                EnvironmentTagRow.environment_id == row.id, EnvironmentTagRow.name == DEFAULT_TAG
            )
        )
        build_id = new_uuid()
        build = EnvironmentBuildRow(
            id=build_id,
            tag_id=tag.id,
            revision_id=build_id,
            file_id=None,
            base_environment=base,
            requirements=requirements,
            dependency_files={"requirements.txt": requirements} if requirements else {},
            spec={
                "image": new.image,
                "instructions": new.instructions,
                "summary": new.summary,
                "kept": json.loads(json.dumps(dict(new.kept), default=str)),
            },
            status="queued",
            error_message=None,
            build_log="",
            size=None,
            created_by=principal.user_id,
            created_at=now(),
            finished_at=None,
        )
        s.add(build)
        tag.latest_build_id, tag.updated_at = build.id, now()
        s.flush()
        self.serving.tasks.enqueue_in(s, ENV_BUILD_TASK, {"build_id": build.id}, org_id=row.org_id)
        return build

    @staticmethod
    def _visible(s: Session, principal: Principal):
        q = select(EnvironmentRow).where(EnvironmentRow.org_id == principal.org_id, EnvironmentRow.project_id.is_(None))
        if is_org_admin(principal):
            return q
        teams = select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == principal.user_id)
        return q.where(
            or_(
                EnvironmentRow.visibility == "global",
                EnvironmentRow.owner_id == principal.user_id,
                (EnvironmentRow.visibility == "organization") & EnvironmentRow.team_id.in_(teams),
            )
        )

    def _row(self, s: Session, principal: Principal, environment_id: Any, *, lock: bool = False) -> EnvironmentRow:
        row = None
        if isinstance(environment_id, str) and _ID.fullmatch(environment_id):
            q = self._visible(s, principal).where(EnvironmentRow.id == environment_id)
            row = s.scalar(q.with_for_update(of=EnvironmentRow) if lock else q)
        if row is None:
            raise NotFound(f"Environment {environment_id!r} not found")
        return row

    @staticmethod
    def _may_edit(s: Session, principal: Principal, row: EnvironmentRow) -> None:
        if is_org_admin(principal) or (row.owner_id is not None and row.owner_id == principal.user_id):
            return
        if row.team_id is not None:
            member = s.get(TeamMemberRow, (row.team_id, principal.user_id))
            if member is not None and member.role == "admin":
                return
        raise Forbidden(
            f"you may not change environment {row.name!r}: its owner, the admins of the organization owning it "
            "and the organisation's admins may (EditEnvironment)"
        )

    @staticmethod
    def _check_team(s: Session, principal: Principal, team_id: str) -> None:
        team = s.get(TeamRow, team_id) if well_formed(team_id) else None
        if team is None or team.org_id != principal.org_id:
            raise NotFound(f"organization {team_id!r} not found", code="TEAM_NOT_FOUND")
        if s.get(TeamMemberRow, (team.id, principal.user_id)) is None and not is_org_admin(principal):
            raise Forbidden(f"you are not a member of organization {team.name!r}: it cannot own your environment")

    def _revision_row(self, s: Session, row: EnvironmentRow, revision_id: Any) -> EnvironmentBuildRow:
        build = (
            s.get(EnvironmentBuildRow, revision_id)
            if isinstance(revision_id, str) and _ID.fullmatch(revision_id)
            else None
        )
        tag = s.get(EnvironmentTagRow, build.tag_id) if build is not None else None
        if build is None or tag is None or tag.environment_id != row.id or build.revision_id != build.id:
            raise NotFound(f"Revision {revision_id!r} of environment {row.id!r} not found")
        return build

    def _revisions(self, s: Session, row: EnvironmentRow) -> dict[str, CatalogRevision]:
        """The environment's revisions by id, in the order they were made."""
        return self._revisions_of(s, [row])[row.id]

    @staticmethod
    def _revisions_of(s: Session, rows: Sequence[EnvironmentRow]) -> dict[str, dict[str, CatalogRevision]]:
        """The revisions of each of ``rows`` (by environment id, then revision id, oldest first), in one query."""
        out: dict[str, dict[str, CatalogRevision]] = {r.id: {} for r in rows}
        if not rows:
            return out
        by_id = {r.id: r for r in rows}
        builds = s.execute(
            select(EnvironmentTagRow.environment_id, EnvironmentBuildRow)
            .join(EnvironmentTagRow, EnvironmentTagRow.id == EnvironmentBuildRow.tag_id)
            .where(
                EnvironmentTagRow.environment_id.in_(list(by_id)),
                EnvironmentTagRow.name == DEFAULT_TAG,
                EnvironmentBuildRow.revision_id == EnvironmentBuildRow.id,
            )
            .order_by(EnvironmentBuildRow.created_at, EnvironmentBuildRow.id)
        )
        for env_id, b in builds:
            spec, row, mine = b.spec or {}, by_id[env_id], out[env_id]
            mine[b.id] = CatalogRevision(
                id=b.id,
                environment_id=env_id,
                number=len(mine) + 1,
                status=b.status,
                image=spec.get("image") or b.base_environment,
                base=b.base_environment,
                requirements=tuple((b.requirements or "").splitlines()),
                instructions=spec.get("instructions") or "",
                summary=spec.get("summary") or "",
                kept=dict(spec.get("kept") or {}),
                restricted=row.restricted_build_id == b.id,
                error_message=b.error_message,
                created_at=aware(b.created_at),
                finished_at=aware(b.finished_at) if b.finished_at else None,
            )
        return out

    def _entity(self, s: Session, row: EnvironmentRow) -> CatalogEnvironment:
        return self._entities(s, [row])[0]

    def _entities(self, s: Session, rows: Sequence[EnvironmentRow]) -> list[CatalogEnvironment]:
        """A page of environments with their revisions, owners and teams, in three queries."""
        revisions_of = self._revisions_of(s, rows)
        user_ids = sorted({r.owner_id for r in rows if r.owner_id})
        team_ids = sorted({r.team_id for r in rows if r.team_id})
        users = (
            {i: n for i, n in s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(user_ids)))}
            if user_ids
            else {}
        )
        teams = (
            {i: n for i, n in s.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(team_ids)))}
            if team_ids
            else {}
        )
        newest_base = self.serving.system_environments()[-1]
        out = []
        for row in rows:
            revisions = list(revisions_of[row.id].values())
            done = [r for r in revisions if r.status == "success"]
            out.append(
                CatalogEnvironment(
                    id=row.id,
                    name=row.name,
                    description=row.description or "",
                    visibility=row.visibility or "private",
                    owner_id=row.owner_id,
                    owner_username=users.get(row.owner_id),
                    team_id=row.team_id,
                    team_name=teams.get(row.team_id),
                    archived=row.archived,
                    is_default=row.is_default,
                    base=row.base_environment or newest_base,
                    latest=revisions[-1] if revisions else None,
                    active=done[-1] if done else None,
                    restricted=next((r for r in revisions if r.restricted), None),
                    created_at=aware(row.created_at),
                    updated_at=aware(row.updated_at),
                )
            )
        return out

    def _ensure_default(self, principal: Principal) -> str:
        """The organisation's default environment's id, made on first use (see the module docstring)."""
        q = select(EnvironmentRow.id).where(
            EnvironmentRow.org_id == principal.org_id,
            EnvironmentRow.project_id.is_(None),
            EnvironmentRow.is_default.is_(True),
        )
        with self.db.uow(readonly=True) as s:
            found = s.scalar(q.limit(1))
        if found:
            return found
        base = self.serving.system_environments()[-1]
        with self.db.uow() as s:
            # one default per organisation: the organisation's row is locked while it is made (PostgreSQL)
            s.scalar(select(OrganisationRow.id).where(OrganisationRow.id == principal.org_id).with_for_update())
            found = s.scalar(q.limit(1))  # another request may have made it meanwhile
            if found:
                return found
            t = now()
            row = EnvironmentRow(
                id=new_uuid(),
                org_id=principal.org_id,
                visibility="global",
                is_default=True,
                archived=False,
                name=f"Default ({base})",
                description=f"The server's base environment {base} as it is.",
                labels={},
                base_environment=base,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.serving.environment_tags.create_default_in(s, row)
            tag = s.scalar(select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == row.id))
            build_id = new_uuid()
            s.add(
                EnvironmentBuildRow(
                    id=build_id,
                    tag_id=tag.id,
                    revision_id=build_id,
                    file_id=None,
                    base_environment=base,
                    requirements=None,
                    dependency_files={},
                    spec={"image": base, "instructions": "", "summary": "the base environment", "kept": {}},
                    status="success",
                    error_message=None,
                    build_log=f"no requirements: the base environment {base} as it is",
                    size=None,
                    created_by=None,
                    created_at=t,
                    finished_at=t,
                )
            )
            tag.latest_build_id = build_id
            return row.id


def _text(value: Any, what: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{what}' must be a string of at most {limit} characters")
    if required and not value.strip():
        raise InvalidInput(f"'{what}' is required")
    return value
