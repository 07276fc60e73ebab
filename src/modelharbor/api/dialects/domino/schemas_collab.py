"""Domino's wire shapes for collaborators, access requests, copy and fork, goals and imported git repositories
(Domino 6.3's names; the routes check each field by hand, api/params.py). :data:`INPUTS` is merged into
schemas.INPUTS: keys are relative to their mount (``/api/projects``, ``/v4``, ``/api/registeredmodels``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelharbor.api.openapi import JSON, Inputs, Takes

ROLES = "contributor, launcherUser, resultsConsumer, projectImporter or owner (any case)"


class ProjectCollaboratorV1(BaseModel):
    id: str = Field(description="The user's id or username (``collaboratorId`` is accepted too).")
    role: str = Field(description=ROLES + " (``projectRole`` is accepted too).")


class ProjectCollaboratorV4(BaseModel):
    collaboratorId: str
    projectRole: str = Field(description="Contributor, LauncherUser, ResultsConsumer, ProjectImporter or Owner.")


class BillingTagV1(BaseModel):
    tag: str


class CopyProjectSpecV1(BaseModel):
    name: str
    ownerId: str | None = Field(None, description="Admins may copy for another member.")
    copyDatasets: bool = Field(description="ModelHarbor has no datasets yet: nothing to copy, none listed as failed.")
    copyNetAppVolumes: bool | None = None
    visibility: str | None = Field(None, description="Not applied by copy: the copy starts with the default.")
    billingTag: BillingTagV1 | None = None
    importedGitReposCredentialId: str | None = Field(None, description="One of your git credentials.")
    gitCodeRepoSpec: dict | None = Field(None, description="Git-based projects: not supported (501).")
    description: str | None = Field(None, description="ModelHarbor extension: the copy's description.")
    copyFiles: bool = Field(True, description="ModelHarbor extension: copy the newest files (no bytes copied).")
    copyImportedRepos: bool = Field(True, description="ModelHarbor extension: copy the imported git repositories.")
    copyGoals: bool = Field(False, description="ModelHarbor extension: copy the goals.")
    copyCollaborators: bool = Field(False, description="ModelHarbor extension: copy the collaborators.")


class ForkProjectV4(BaseModel):
    name: str


class NewProjectGoalV1(BaseModel):
    title: str
    description: str | None = None
    assigneeId: str | None = None
    stageId: str | None = None


class ProjectGoalForUpdateV1(BaseModel):
    isComplete: bool


class ProjectRepositoryReferenceV1(BaseModel):
    refType: str = Field(description="Head, Branch, Tag or Commit (any case).")
    value: str | None = None


class NewProjectGitRepositoryV1(BaseModel):
    uri: str = Field(description="https://host/path, ssh://[user@]host[:port]/path or user@host:path.")
    name: str | None = None
    serviceProvider: str | None = None
    defaultRef: ProjectRepositoryReferenceV1 | None = None
    gitCredentialId: str | None = None


class RepositoriesQuery(BaseModel):
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


class AccessRequestV1(BaseModel):
    """ModelHarbor extension: op 136 takes no body in Domino; an optional one names the role and a message."""

    role: str | None = Field(None, description=ROLES + "; Contributor when absent.")
    message: str | None = None


PROJECT = "/v1/projects/{project_id}"
INPUTS: Inputs = {
    ("POST", PROJECT + "/collaborators"): Takes({JSON: ProjectCollaboratorV1}),
    ("POST", PROJECT + "/copy-project"): Takes({JSON: CopyProjectSpecV1}, statuses=(501,)),
    ("POST", PROJECT + "/goals"): Takes({JSON: NewProjectGoalV1}),
    ("PATCH", PROJECT + "/goals/{goal_id}"): Takes({JSON: ProjectGoalForUpdateV1}),
    ("GET", PROJECT + "/repositories"): Takes(query=RepositoriesQuery),
    ("POST", PROJECT + "/repositories"): Takes({JSON: NewProjectGitRepositoryV1}),
    ("POST", "/projects/{project_id}/collaborators"): Takes({JSON: ProjectCollaboratorV4}),
    ("POST", "/projects/{project_id}/fork"): Takes({JSON: ForkProjectV4}),
    ("POST", "/v1/access/{project_id}"): Takes({JSON: AccessRequestV1}, required=False),
}
