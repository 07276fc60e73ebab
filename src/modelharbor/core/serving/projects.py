"""Projects as the serving API shows them: by name, with the name of their organisation (mixed into ServingService).

The projects themselves are core/projects.py's (``ProjectService``; the registry's projects too). What is added here
is what a serving client sees with them: the organisation's name (each answer carries it), a check that a named
organisation is the caller's own (another → NotFound, naming the caller's), deployable project names (lowercase
letters, digits and dashes, starting with a letter, at most 64), no labels (a label filter matches no project) and
no renaming. Deleting a project is ``ServingService.delete_project`` (it takes the serving objects along).
"""

from __future__ import annotations

import re

from modelharbor.core.projects import Project
from modelharbor.db.tables import OrganisationRow
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.principal import Principal

PROJECT_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


def project_name_fault(name: object) -> InvalidInput:
    """The fault of a name that is no deployable project name (the edges answer it for a value that is no string)."""
    return InvalidInput(
        f"Invalid project name {name!r}: 1 to 64 lowercase letters, digits and dashes, starting with a letter."
    )


def valid_project_name(name: str) -> str:
    """A deployable project name; else InvalidInput."""
    if not PROJECT_NAME.fullmatch(name):
        raise project_name_fault(name)
    return name


class ServingProjects:
    """Create, list, read and change projects by name; each answer is ``(project(s), organisation name)``."""

    def organisation_name(self, principal: Principal) -> str:
        """The name of the caller's organisation."""
        with self.db.uow(readonly=True) as s:
            row = s.get(OrganisationRow, principal.org_id)
            if row is None:
                raise NotFound(f"organisation {principal.org_id!r} not found")
            return row.name

    def _own_organisation(self, principal: Principal, organization: str | None) -> str:
        org = self.organisation_name(principal)
        if organization is not None and organization.lower() != org.lower():
            raise NotFound(f"Organization {organization!r} not found: your API key belongs to organization {org!r}.")
        return org

    def create_project(
        self, principal: Principal, name: str, *, organization: str | None = None
    ) -> tuple[Project, str]:
        """A new project called ``name`` in the caller's organisation (``organization``, when given, must name it;
        an edge hands a value that is no string as a ``domain.inputs.Unnamed``)."""
        valid_project_name(name)
        org = self._own_organisation(principal, organization)
        return self.projects.create_project(principal, name), org

    def list_projects(
        self, principal: Principal, *, organization: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Project], str]:
        """The organisation's projects; none when ``organization`` names another one or ``labels`` asks for any
        (projects carry no labels)."""
        org = self.organisation_name(principal)
        if organization and organization.lower() != org.lower():
            return [], org
        projects = self.projects.list_projects(principal)
        return ([] if labels else projects), org

    def get_project(self, principal: Principal, name: str) -> tuple[Project, str]:
        return self.projects.get_by_name(principal, name), self.organisation_name(principal)

    def update_project(self, principal: Principal, name: str, *, new_name: str | None = None) -> tuple[Project, str]:
        """Nothing of a project changes here: a ``new_name`` other than its name is refused (an edge hands a value that is no
        string as a ``domain.inputs.Unnamed``)."""
        project = self.projects.get_by_name(principal, name)
        if new_name not in (None, project.name):
            raise InvalidInput("Projects cannot be renamed.")
        return project, self.organisation_name(principal)
