"""A project's goals (Domino's project goals): what the team wants the project to reach, each complete or not.

Every member of the project's organisation may read them (as they may read the project); adding, completing and
deleting one takes project write (the owner, a collaborator with the Owner or Contributor role, an organisation
admin). ``assignee`` must be a member of the organisation; ``stage`` is a free label (Domino's goal stages; the
project's model-version stages are another thing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_hex, now
from modelharbor.core.ids import find
from modelharbor.core.projects import ProjectService, readable_project_row, require_project_write
from modelharbor.db.engine import Database
from modelharbor.db.tables_collab import ProjectGoalRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Principal

MAX_GOALS = 1000
MAX_TITLE = 256
MAX_DESCRIPTION = 10_000
MAX_STAGE = 64


@dataclass(frozen=True)
class Goal:
    id: str
    project_id: str
    title: str
    description: str
    is_complete: bool
    creator_id: str | None
    assignee_id: str | None
    stage: str | None
    created_at: datetime


def _goal(r: ProjectGoalRow) -> Goal:
    return Goal(
        r.id, r.project_id, r.title, r.description or "", bool(r.is_complete), r.creator_id, r.assignee_id,
        r.stage_id, aware(r.created_at),
    )  # fmt: skip


def check_title(title: str) -> str:
    if not title.strip() or len(title) > MAX_TITLE or not title.isprintable():
        raise InvalidInput(f"'title' must be 1 to {MAX_TITLE} printable characters, not {title[:80]!r}", field="title")
    return title.strip()


class ProjectGoalService:
    def __init__(self, db: Database, projects: ProjectService):
        self.db = db
        projects.on_delete.append(self._delete_project_goals)

    def list(self, principal: Principal, project_id: str) -> list[Goal]:
        """The project's goals, oldest first."""
        with self.db.uow(readonly=True) as s:
            project = readable_project_row(s, principal, project_id)
            rows = s.scalars(
                select(ProjectGoalRow)
                .where(ProjectGoalRow.project_id == project.id)
                .order_by(ProjectGoalRow.created_at, ProjectGoalRow.id)
            )
            return [_goal(r) for r in rows]

    def add(
        self,
        principal: Principal,
        project_id: str,
        title: str,
        *,
        description: str | None = None,
        assignee: str | None = None,
        stage: str | None = None,
    ) -> Goal:
        title = check_title(title)
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"'description' must be at most {MAX_DESCRIPTION} characters", field="description")
        if stage is not None and (not stage.strip() or len(stage) > MAX_STAGE or not stage.isprintable()):
            raise InvalidInput(f"'stageId' must be 1 to {MAX_STAGE} printable characters", field="stageId")
        with self.db.uow() as s:
            project = readable_project_row(s, principal, project_id, lock=True)
            require_project_write(s, principal, project)
            assignee_id = None
            if assignee:
                try:
                    assignee_id = ProjectService._member(s, principal, assignee)
                except InvalidInput:
                    raise InvalidInput(
                        f"'assigneeId': user {assignee!r} is not a member of this organisation", field="assigneeId"
                    ) from None
            count = s.scalar(select(func.count()).where(ProjectGoalRow.project_id == project.id))
            if count >= MAX_GOALS:
                raise InvalidInput(f"A project may have at most {MAX_GOALS} goals.")
            row = ProjectGoalRow(
                id=new_hex(12),
                project_id=project.id,
                title=title,
                description=description or "",
                stage_id=stage,
                assignee_id=assignee_id,
                creator_id=principal.user_id,
                is_complete=False,
                created_at=now(),
            )
            s.add(row)
            s.flush()
            return _goal(row)

    def set_complete(self, principal: Principal, project_id: str, goal_id: str, complete: bool) -> Goal:
        with self.db.uow() as s:
            row = self._row(s, principal, project_id, goal_id)
            row.is_complete = complete
            s.flush()
            return _goal(row)

    def delete(self, principal: Principal, project_id: str, goal_id: str) -> None:
        with self.db.uow() as s:
            s.delete(self._row(s, principal, project_id, goal_id))
            s.flush()

    @staticmethod
    def _row(s: Session, principal: Principal, project_id: str, goal_id: str) -> ProjectGoalRow:
        project = readable_project_row(s, principal, project_id, lock=True)
        row = find(s, ProjectGoalRow, goal_id)
        if row is None or row.project_id != project.id:
            raise NotFound(f"Goal {goal_id!r} not found in project {project.name!r}")
        require_project_write(s, principal, project)
        return row

    @staticmethod
    def _delete_project_goals(s: Session, project_id: str) -> list[str]:
        s.execute(delete(ProjectGoalRow).where(ProjectGoalRow.project_id == project_id))
        return []
