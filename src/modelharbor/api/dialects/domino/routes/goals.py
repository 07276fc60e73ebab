"""A project's goals (ops 121–124, mounted at ``/api/projects``): each route parses, makes one core call
(core/project_goals.py) and maps the answer."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_collab
from modelharbor.api.params import field, json_object

router = APIRouter()
BASE = "/v1/projects/{project_id}/goals"


def _envelope(request: Request, goal) -> dict:
    return {"goal": mapping_collab.goal(goal), "metadata": mapping.metadata(request)}


@router.get(BASE)
def goals(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    found = services.project_goals.list(principal, project_id)
    return {"goals": [mapping_collab.goal(g) for g in found], "metadata": mapping.metadata(request)}


@router.post(BASE)
async def add_goal(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """``NewProjectGoalV1`` ``{title, description?, assigneeId?, stageId?}``."""
    body = await json_object(request, missing="a JSON object body {title, …} is required")
    goal = await run_in_threadpool(
        partial(
            services.project_goals.add,
            principal,
            project_id,
            field(body, "title", str, required=True),
            description=field(body, "description", str),
            assignee=field(body, "assigneeId", str),
            stage=field(body, "stageId", str),
        )
    )
    return _envelope(request, goal)


@router.patch(BASE + "/{goal_id}")
async def update_goal(request: Request, project_id: str, goal_id: str, principal: PrincipalDep, services: ServicesDep):
    """``ProjectGoalForUpdateV1`` ``{isComplete}``."""
    body = await json_object(request, missing="a JSON object body {isComplete} is required")
    complete = field(body, "isComplete", bool, required=True)
    goal = await run_in_threadpool(services.project_goals.set_complete, principal, project_id, goal_id, complete)
    return _envelope(request, goal)


@router.delete(BASE + "/{goal_id}")
def delete_goal(request: Request, project_id: str, goal_id: str, principal: PrincipalDep, services: ServicesDep):
    services.project_goals.delete(principal, project_id, goal_id)
    return mapping_collab.deleted(request)
