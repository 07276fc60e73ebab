"""What Domino does with a project beyond its files and models: listings (a page of the projects the caller may see;
the gateway's Owned / Collaborating / Suggesting / Popular), archive, status, result settings, tags and the
owner's settings (description, visibility). The projects are core/projects.py's rows (one object for every
dialect); the rules (visibility, archive, who writes) are the functions there.

Who may do what:

- **Listing, reading, tags of a project, a tag**: anyone in the organisation who may know of the project
  (``visible_to`` / ``project_row(contents=False)``: private projects only to their members).
- **Tags and status**: writers of the project (:func:`~modelharbor.core.projects.require_project_write`).
- **Archive, result settings, description, visibility, un-archive**: the owner, an admin of the owning team or an
  organisation admin. Every change but un-archiving refuses an archived project (``PROJECT_ARCHIVED``).

Listings cost a fixed number of queries per page (the rows, then owners, teams, collaborators and tags for the page:
``project_entities``), on the ``(org_id, name)`` unique index. The gateway's listing (up to MAX_GATEWAY projects in
one answer) is a read model of its own (:class:`ProjectListing`): one query for the rows with their owner's name,
their tag ids aggregated and their times as epoch milliseconds computed by the database, one for the few distinct
tags. bench/projects.py measures both with 10,000 projects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import now
from modelharbor.core.directory import page_bounds
from modelharbor.core.project_tags import link_tags
from modelharbor.core.projects import (
    RESULT_BRANCHES,
    STATUSES,
    Project,
    ProjectService,
    ProjectTag,
    is_org_admin,
    project_entities,
    project_row,
    require_project_owner,
    require_project_write,
    select_projects,
    visibility_of,
    visible_to,
)
from modelharbor.db.engine import Database
from modelharbor.db.functions import epoch_ms
from modelharbor.db.tables import UserRow
from modelharbor.db.tables_people import TeamMemberRow, TeamRow
from modelharbor.db.tables_projects import ProjectTagLinkRow, ProjectTagRow
from modelharbor.db.tables_registry import ProjectCollaboratorRow, RegistryProjectRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import UNSET
from modelharbor.domain.principal import Action, Principal, require

RELATIONSHIPS = ("Owned", "Collaborating", "Suggesting", "Popular")
MAX_GATEWAY = 1000  # the gateway's list has no paging: the first 1,000 by name
MAX_REASON = 10_000
_TAG_ID = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class ProjectPage:
    items: list[Project]
    offset: int
    limit: int
    total: int


class ProjectListing(NamedTuple):
    """A project as a long listing shows it (the gateway's, up to MAX_GATEWAY of them): its own columns, its owner's
    name (the owning team's, else the owner's username) and its tags by name — what such a listing shows, read in one
    pass; no collaborators, stages or result settings (:class:`~modelharbor.core.projects.Project` has them)."""

    id: str
    name: str
    owner_id: str | None
    owner_team_id: str | None
    owner_name: str | None
    description: str
    visibility: str
    status: str
    is_blocked: bool
    blocked_reason: str | None
    completed_message: str | None
    archived: bool
    created_ms: int  # times as epoch milliseconds (UTC), computed by the database
    updated_ms: int
    tags: tuple[ProjectTag, ...]


_P = RegistryProjectRow
# the listing's columns, the owner's name and the project's tag ids ("id,id,…", in no order) in one row per project
_LISTING = (
    select(
        _P.id,
        _P.name,
        _P.owner_id,
        _P.owner_team_id,
        func.coalesce(TeamRow.name, UserRow.username).label("owner_name"),
        _P.description,
        _P.visibility,
        _P.status,
        _P.is_blocked,
        _P.blocked_reason,
        _P.completed_message,
        _P.archived,
        epoch_ms(_P.created_at),
        epoch_ms(func.coalesce(_P.updated_at, _P.created_at)),
        select(func.aggregate_strings(ProjectTagLinkRow.tag_id, ","))
        .where(ProjectTagLinkRow.project_id == _P.id)
        .scalar_subquery()
        .label("tag_ids"),
    )
    .outerjoin(UserRow, UserRow.id == _P.owner_id)
    .outerjoin(TeamRow, TeamRow.id == _P.owner_team_id)
)
_by_tag_name = attrgetter("name")


def relationship_of(value: object) -> str:
    canonical = {r.lower(): r for r in RELATIONSHIPS}
    if not isinstance(value, str) or value.lower() not in canonical:
        raise InvalidInput(
            f"'relationship' must be one of {', '.join(RELATIONSHIPS)}, not {value!r}", field="relationship"
        )
    return canonical[value.lower()]


def _text(value: object, name: str, limit: int = MAX_REASON) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{name}' must be a string of at most {limit} characters, without NUL", field=name)
    return value


class ProjectSettingsService:
    def __init__(self, db: Database, projects: ProjectService):
        self.db = db
        self.projects = projects

    # --- listings ------------------------------------------------------------------------------------
    def page(self, principal: Principal, *, offset: int = 0, limit: int = 10) -> ProjectPage:
        """The projects the caller may see, not archived, by name (Domino's ``GET /api/projects/beta/projects``)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        offset, limit = page_bounds(offset, limit)
        P = RegistryProjectRow
        where = and_(P.org_id == principal.org_id, P.archived.is_(False), visible_to(principal))
        with self.db.uow(readonly=True) as s:
            total = s.scalar(select(func.count()).select_from(P).where(where)) or 0
            # the page's ids from the listing index alone (no table row read for the skipped ones), then its rows
            ids = s.scalars(select(P.id).where(where).order_by(P.name).offset(offset).limit(limit)).all()
            rows = s.execute(select_projects().where(P.id.in_(ids)).order_by(P.name)).all() if ids else []
            return ProjectPage(project_entities(s, rows), offset, limit, total)

    def gateway(self, principal: Principal, relationship: str, *, show_completed: bool = False) -> list[ProjectListing]:
        """Domino's gateway listing, by name, at most MAX_GATEWAY, archived projects left out (completed ones too
        unless ``show_completed``): **Owned** — the caller's own and those of teams they administer;
        **Collaborating** — those they are a collaborator or team member of; **Suggesting** and **Popular** — the
        public and searchable projects they are no member of (ModelHarbor keeps no popularity: both by name).

        A read model in two queries whatever the number (:class:`ProjectListing`): the rows with their owner's
        name and their tags' ids (aggregated in SQL), then the few distinct tags they name."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        relationship = relationship_of(relationship)
        P = RegistryProjectRow
        where = self._relationship(principal, relationship)
        if not show_completed:
            where = and_(where, P.status != "complete")
        with self.db.uow(readonly=True) as s:
            c = s.connection()  # Core rows: no ORM loading per row
            rows = c.execute(_LISTING.where(where).order_by(P.name).limit(MAX_GATEWAY)).all()
            tag_ids = {t for ids in {r[-1] for r in rows} if ids for t in ids.split(",")}
            tags = (
                {
                    i: ProjectTag(i, name, approved)
                    for i, name, approved in c.execute(
                        select(ProjectTagRow.id, ProjectTagRow.name, ProjectTagRow.is_approved).where(
                            ProjectTagRow.id.in_(tag_ids)
                        )
                    )
                }
                if tag_ids
                else {}
            )
        by_tags: dict[str, tuple[ProjectTag, ...]] = {"": ()}  # projects share their few combinations of tags

        def tags_of(ids: str | None) -> tuple[ProjectTag, ...]:
            found = by_tags.get(ids or "")
            if found is None:
                found = by_tags[ids] = tuple(sorted((tags[t] for t in ids.split(",") if t in tags), key=_by_tag_name))
            return found

        # unpacked, not read by attribute: a Core row's attributes cost more than the rest of the loop
        return [
            ProjectListing(i, n, o, team, owner, d or "", v, st, b, why, done, a, made, changed, tags_of(t))
            for (i, n, o, team, owner, d, v, st, b, why, done, a, made, changed, t) in rows
        ]

    @staticmethod
    def _relationship(principal: Principal, relationship: str) -> ColumnElement[bool]:
        P, TM, C = RegistryProjectRow, TeamMemberRow, ProjectCollaboratorRow
        me = principal.user_id
        led = select(TM.team_id).where(TM.user_id == me, TM.role == "admin")
        joined = select(TM.team_id).where(TM.user_id == me)
        collab = select(C.project_id).where(C.user_id == me)
        owned = or_(and_(P.owner_id == me, P.owner_team_id.is_(None)), P.owner_team_id.in_(led))
        collaborating = and_(~owned, or_(P.id.in_(collab), P.owner_team_id.in_(joined)))
        chosen = {
            "Owned": owned,
            "Collaborating": collaborating,
            "Suggesting": and_(
                P.visibility != "Private",
                ~owned,
                ~P.id.in_(collab),
                or_(P.owner_team_id.is_(None), ~P.owner_team_id.in_(joined)),
            ),
        }
        chosen["Popular"] = chosen["Suggesting"]
        return and_(P.org_id == principal.org_id, P.archived.is_(False), chosen[relationship])

    # --- archive, status, result settings, owner's settings ------------------------------------------
    def archive(self, principal: Principal, project_id: str) -> Project:
        """Archive the project (Domino's delete): it stays, read-only, out of listings. Archiving an archived
        project changes nothing."""
        with self.db.uow() as s:
            row = self._owned(s, principal, project_id, archived_ok=True)
            if not row.archived:
                row.archived, row.updated_at = True, now()
                s.flush()
            return project_entities(s, [row])[0]

    def update(
        self,
        principal: Principal,
        project_id: str,
        *,
        description: object = UNSET,
        visibility: object = UNSET,
        archived: object = UNSET,
    ) -> Project:
        """The owner's settings (what is not UNSET): ``description``, ``visibility``, ``archived`` (False
        un-archives: the one change an archived project takes, with the others in the same call)."""
        if description is not UNSET and (description is None or _text(description, "description", 100_000) is None):
            raise InvalidInput("'description' must be a string", field="description")
        if visibility is not UNSET:
            visibility = visibility_of(visibility)
        if archived is not UNSET and not isinstance(archived, bool):
            raise InvalidInput("'archived' must be true or false", field="archived")
        with self.db.uow() as s:
            row = self._owned(s, principal, project_id, archived_ok=archived is False)
            if archived is not UNSET:
                row.archived = archived
            if description is not UNSET:
                row.description = description
            if visibility is not UNSET:
                row.visibility = visibility
            row.updated_at = now()
            s.flush()
            return project_entities(s, [row])[0]

    def results_settings(self, principal: Principal, project_id: str) -> str:
        """Where a job's results are committed: ``main`` or ``isolated`` (a branch of their own)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="project")
        with self.db.uow(readonly=True) as s:
            return project_row(s, principal, project_id).results_branch

    def set_results_settings(self, principal: Principal, project_id: str, branch: object) -> str:
        if not isinstance(branch, str) or branch.lower() not in RESULT_BRANCHES:
            raise InvalidInput(f"'branch' must be one of {', '.join(RESULT_BRANCHES)}, not {branch!r}", field="branch")
        with self.db.uow() as s:
            row = self._owned(s, principal, project_id)
            row.results_branch, row.updated_at = branch.lower(), now()
            s.flush()
            return row.results_branch

    def set_status(
        self,
        principal: Principal,
        project_id: str,
        status: object,
        *,
        is_blocked: bool,
        blocked_reason: object = None,
        completed_message: object = None,
    ) -> Project:
        """``active`` or ``complete`` (any case), blocked or not; a reason is kept only while blocked, a message
        only while complete."""
        if not isinstance(status, str) or status.lower() not in STATUSES:
            raise InvalidInput(f"'status' must be one of {', '.join(STATUSES)}, not {status!r}", field="status")
        if not isinstance(is_blocked, bool):
            raise InvalidInput("'isBlocked' must be true or false", field="isBlocked")
        reason, message = _text(blocked_reason, "blockedReason"), _text(completed_message, "completedMessage")
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, row)
            row.status, row.is_blocked = status.lower(), is_blocked
            row.blocked_reason = reason if is_blocked else None
            row.completed_message = message if row.status == "complete" else None
            row.updated_at = now()
            s.flush()
            return project_entities(s, [row])[0]

    # --- tags ----------------------------------------------------------------------------------------
    def add_tags(self, principal: Principal, project_id: str, names: Sequence[str]) -> Project:
        """Link the tags ``names`` (created in the organisation when new; linking a linked tag changes nothing)."""
        if not names:
            raise InvalidInput("'tagNames' must name at least one tag", field="tagNames")
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, row)
            link_tags(s, row.org_id, row.id, names, approved=is_org_admin(principal), by=principal.user_id)
            row.updated_at = now()
            s.flush()
            return project_entities(s, [row])[0]

    def remove_tag(self, principal: Principal, project_id: str, tag_id: str) -> Project:
        """Unlink a tag (the organisation's tag stays for other projects); a tag the project lacks is NotFound."""
        with self.db.uow() as s:
            row = project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, row)
            link = s.get(ProjectTagLinkRow, (row.id, tag_id)) if _TAG_ID.fullmatch(tag_id) else None
            if link is None:
                raise NotFound(f"Tag {tag_id!r} is not on project {row.name!r}")
            s.delete(link)
            row.updated_at = now()
            s.flush()
            return project_entities(s, [row])[0]

    def tag(self, principal: Principal, tag_id: str) -> ProjectTag:
        """A tag of the caller's organisation by id."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="tag")
        with self.db.uow(readonly=True) as s:
            row = s.get(ProjectTagRow, tag_id) if _TAG_ID.fullmatch(tag_id) else None
            if row is None or row.org_id != principal.org_id:
                raise NotFound(f"Tag {tag_id!r} not found")
            return ProjectTag(row.id, row.name, row.is_approved)

    # --- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _owned(s: Session, principal: Principal, project_id: str, *, archived_ok: bool = False) -> RegistryProjectRow:
        row = project_row(s, principal, project_id, lock=True)
        require_project_owner(s, principal, row, archived_ok=archived_ok)
        return row
