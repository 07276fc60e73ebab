"""ServingService: the facade over the serving modules (a thin class composed of their parts); its constructor
wires the collaborators and the environment tag service."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from modelharbor.compute.base import EnvironmentBuilder, Executor, WorkerSpec, WorkerStatus
from modelharbor.core.files import FileService
from modelharbor.core.hardware_tiers import HardwareTierService
from modelharbor.core.projects import ProjectService
from modelharbor.core.secretbox import SecretBox
from modelharbor.core.serving import request_history as kept
from modelharbor.core.serving.deployments import Deployments
from modelharbor.core.serving.env_vars import EnvVars
from modelharbor.core.serving.environment_builds import EnvironmentTagService
from modelharbor.core.serving.environment_catalog import EnvironmentCatalog
from modelharbor.core.serving.environments import Environments
from modelharbor.core.serving.lookup import Route, ServingLookup
from modelharbor.core.serving.projects import ServingProjects
from modelharbor.core.serving.requests import Requests
from modelharbor.core.serving.revisions import Revisions
from modelharbor.core.tasks import TaskService
from modelharbor.db.engine import Database
from modelharbor.db.tables_serving import DeploymentRequestRow, DeploymentRow, DeploymentVersionRow
from modelharbor.domain.principal import Principal


class ServingService(
    ServingProjects, Environments, Deployments, Revisions, EnvVars, Requests, ServingLookup, kept.KeptRequests
):
    """Projects by name, environments, deployments, versions, revisions, env vars and requests of the projects (one
    instance per server process)."""

    kept_table, kept_versions = DeploymentRequestRow, DeploymentVersionRow  # kept requests: see KeptRequests
    kept_owner_column, kept_what = "deployment_id", "deployment"

    def __init__(
        self,
        db: Database,
        files: FileService,
        tasks: TaskService,
        projects: ProjectService,
        executor: Callable[[], Executor],
        builder: EnvironmentBuilder,
        *,
        secret_key: str,
        work_dir: Path,
        max_package_size: int,
        hardware_tiers: HardwareTierService | None = None,
    ):
        self.db = db
        self.hardware_tiers = hardware_tiers or HardwareTierService(db)  # a version's instance type group
        self.files = files
        self.tasks = tasks
        self.projects = projects
        projects.on_delete.append(self.delete_project_objects)
        self._executor_factory = executor  # made on first use: most processes never run a deployment
        self._executor: Executor | None = None
        self.builder = builder
        self.box = SecretBox(secret_key, "env-vars")
        self.work_dir = Path(work_dir)
        self.max_package_size = max_package_size
        self._routes: dict[tuple, Route] = {}
        # (session, row) callbacks of services that refer to deployments/versions (pipelines): raise to refuse
        self.on_delete_deployment: list[Callable[[Session, DeploymentRow], None]] = []
        self.on_delete_version: list[Callable[[Session, DeploymentVersionRow], None]] = []
        # (session) -> rows removed: other kept requests (pipelines') swept with the deployment requests
        self.on_sweep_requests: list[Callable[[Session], int]] = []
        # (outcome, seconds) after every prediction the executor was asked for (direct, batch item list, pipeline
        # step): "completed", "failed" (user code raised, timed out, answered a wrong output) or "error" (refused
        # before user code ran). The server's metrics listen (api/metrics.py); called on the caller's thread.
        self.on_prediction: list[Callable[[str, float], None]] = []
        self._deployed: dict[str, WorkerSpec] = {}
        # what each deployed version runs in: (its environment (base, build), the hardware tier it names)
        self._deployed_env: dict[str, tuple[tuple[str | None, str | None], str | None]] = {}
        self._lock = threading.Lock()
        self.environment_tags = EnvironmentTagService(self)
        self.environment_catalog = EnvironmentCatalog(self)  # an organisation's environments (Domino's)

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = self._executor_factory()
        return self._executor

    def workload(self) -> list[WorkerStatus]:
        """What the executor runs now (every deployed version's status); nothing when no deployment ran yet (the
        executor is not started for this)."""
        executor = self._executor
        return [] if executor is None else executor.statuses()

    def delete_project(self, principal: Principal, name: str) -> None:
        """Delete a project by name with its deployments, environments and variables (models stay)."""
        project = self.projects.get_by_name(principal, name)
        self.drop_blobs(self.projects.delete_project(principal, project.id))

    def delete_project_by_id(self, principal: Principal, project_id: str) -> None:
        """Delete a project by id with everything in it (deployments, pipelines, environments, variables; the
        registered models in it stay, outside any project): the project's owner or an organisation admin."""
        self.drop_blobs(self.projects.delete_project(principal, project_id))

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        with self._lock:
            self._deployed.clear()
            self._deployed_env.clear()
