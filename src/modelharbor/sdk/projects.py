"""``client.projects``: the organisation's projects (by name or id), their collaborators and stage lists, and the
environments their deployments may use."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelharbor.sdk import names
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.http import seg
from modelharbor.sdk.wire import Environment, Project

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

_ID = re.compile(r"[0-9a-f]{24}")


class Projects:
    """``/api/v1/projects``. A project is named by its name or its 24-hex id."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(self) -> list[Project]:
        """The organisation's projects, by name."""
        return self._t.call(list[Project], "GET", "/projects")

    def find(self, project: str) -> Project | None:
        """The project with that name (or id), or None."""
        if _ID.fullmatch(project):
            try:
                return self._t.call(Project, "GET", f"/projects/{project}")
            except HarborClientError as exc:
                if exc.status != 404:
                    raise
        return next((p for p in self.list() if project in (p.name, p.id)), None)

    def get(self, project: str) -> Project:
        """The project with that name (or id); 404 when there is none."""
        found = self.find(project)
        if found is None:
            raise HarborClientError(
                404,
                "NOT_FOUND",
                f"project {project!r} not found: see `modelharbor projects list`, or create it with "
                f"`modelharbor projects create {project}`",
            )
        return found

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        owner_id: str | None = None,
        visibility: str | None = None,
        tags: list[str] | None = None,
    ) -> Project:
        """A new project; ``visibility`` Public (default), Searchable or Private; ``tags`` names."""
        body: dict[str, Any] = {"name": names.project(name)}
        if description is not None:
            body["description"] = description
        if owner_id is not None:
            body["owner_id"] = owner_id
        if visibility is not None:
            body["visibility"] = visibility
        if tags:
            body["tags"] = list(tags)
        return self._t.call(Project, "POST", "/projects", json=body)

    def update(
        self,
        project: str,
        *,
        description: str | None = None,
        visibility: str | None = None,
        archived: bool | None = None,
    ) -> Project:
        """Change the description or visibility, archive (read-only) or un-archive (what is None stays)."""
        body: dict[str, Any] = {
            k: v
            for k, v in (("description", description), ("visibility", visibility), ("archived", archived))
            if v is not None
        }
        return self._t.call(Project, "PATCH", f"/projects/{seg(self.get(project).id)}", json=body)

    def delete(self, project: str) -> None:
        """Delete a project with everything in it (deployments, pipelines, environments, exports, …)."""
        self._t.request("DELETE", f"/projects/{seg(self.get(project).id)}")

    def set_collaborator(self, project: str, user: str, role: str) -> Project:
        """Add a collaborator (user id or username) or change their role (Owner, Contributor, ResultsConsumer, …)."""
        url = f"/projects/{seg(self.get(project).id)}/collaborators/{seg(user)}"
        return self._t.call(Project, "PUT", url, json={"role": role})

    def remove_collaborator(self, project: str, user: str) -> None:
        self._t.request("DELETE", f"/projects/{seg(self.get(project).id)}/collaborators/{seg(user)}")

    def set_stages(self, project: str, stages: list[str]) -> Project:
        """The stages versions of the project's models may be in, in order."""
        return self._t.call(Project, "PUT", f"/projects/{seg(self.get(project).id)}/stages", json={"stages": stages})

    def environments(self, project: str) -> list[Environment]:
        """Environments a deployment version may use: base ones (``system``) and the project's custom ones."""
        return self._t.call(list[Environment], "GET", f"/projects/{seg(project)}/environments")
