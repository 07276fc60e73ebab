"""Read models of the registry: what a page about a registered model or version shows, answered in one call.

A card is an entity with what an edge renders next to it — its project's summary, its creator's username, the
caller's rights and, when asked for, its run's params and latest metrics — looked up by the core in a few batched
queries for a whole page (core/registry/cards.py), so an edge renders cards with pure functions and asks nothing
more. Unknown users, projects the caller cannot see and runs the caller cannot read are ``None``, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelharbor.domain.entities import Metric, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class ProjectSummary:
    """A project as a listing names it (core/projects.py has the whole ``Project``)."""

    id: str
    name: str
    owner_username: str | None  # None: the owner is no user any more


@dataclass(frozen=True)
class RunSummary:
    """The experiment run a version was registered from, as far as a page about the version shows it."""

    id: str
    metrics: tuple[Metric, ...]  # the latest value of each metric, by key
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCard:
    """A registered model with its newest version, its creator's username, its project and the caller's rights."""

    model: RegisteredModel
    latest: ModelVersion | None  # the newest version (of those newest in their stage), None without versions
    creator_username: str | None
    project: ProjectSummary | None  # None: in no project, or in one the caller cannot see
    can_edit: bool  # the caller may change the model (registry write, and project write for a model in a project)
    can_view_runs: bool  # the caller may read experiment runs
    latest_metrics: tuple[Metric, ...] = ()  # the latest version's run's latest metrics, when asked for


@dataclass(frozen=True)
class VersionCard:
    """A model version with its creator's username, its model's project and, when asked for, its run."""

    version: ModelVersion
    creator_username: str | None
    project: ProjectSummary | None  # the model's project; None as for ModelCard
    run: RunSummary | None = None  # None: not asked for, no run, or one the caller cannot read
