"""Jobs on imported models (Kore.ai's export, deploy and undeploy), run as background tasks.

- **Export**: checks the model is ready; the answer is its archive (the edge turns it into a signed download link).
- **Deploy**: the imported archive must be a deployment package (``deployment.py`` with a ``Deployment`` class,
  zip or tar) — ModelHarbor does not run raw weights (GGUF, safetensors) by itself. It becomes the deployment
  ``<model name>-<id>`` (plain text in and out) in the importer's project ``kore-models`` (created on first use),
  version ``v1``, with the hyper-parameters as environment variables (``KORE_TEMPERATURE``, ``KORE_MAX_TOKENS``,
  ``KORE_TOP_P``, ``KORE_TOP_K``, ``KORE_STOP_SEQUENCE`` as JSON) and the scaling parameters as instance limits.
  The package is built and started within the job, so a SUCCESS means it answers requests (native or UbiOps
  ``…/deployments/<name>/requests``). Deploying again replaces the package and settings.
- **Undeploy**: deletes that deployment (its instances stop); the imported model stays.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from modelharbor.core.catalogue.model_imports import ImportService
from modelharbor.core.files import FileService
from modelharbor.core.identity import IdentityService
from modelharbor.core.projects import ProjectService
from modelharbor.core.serving import ServingService
from modelharbor.core.tasks import TaskService
from modelharbor.db.engine import Database
from modelharbor.domain.entities import FileRecord, ImportedModel, Task
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound
from modelharbor.domain.inputs import DeploymentIn, DeploySettings, EnvVarIn, VersionIn
from modelharbor.domain.principal import Action, Principal, require

EXPORT, DEPLOY, UNDEPLOY = "model_export", "model_deploy", "model_undeploy"
KINDS = {EXPORT: "EXPORT", DEPLOY: "DEPLOY", UNDEPLOY: "UNDEPLOY"}
PROJECT = "kore-models"
VERSION = "v1"
MAX_INSTANCES = 20  # the scaling a deployed model is granted, whatever its settings ask


class JobFailed(HarborError):
    code = "JOB_FAILED"
    status = 400


def deployment_name(model: ImportedModel) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", model.name.lower()).strip("-")[:48] or "model"
    return f"{slug}-{model.id.replace('-', '')[:8]}"


def deploy_payload(settings: DeploySettings) -> dict[str, Any]:
    """The deploy job's settings as its task keeps them (JSON; the shape tasks queued by earlier versions hold)."""
    if not settings.name.strip() or not settings.device:
        raise InvalidInput("a deployment needs a name and a device profile")
    if not 1 <= settings.min_instances <= settings.max_instances:
        raise InvalidInput("'minReplicas' cannot be more than 'maxReplicas'.")
    return {
        "name": settings.name,
        "params": {
            "temperature": settings.temperature,
            "maxTokens": settings.max_tokens,
            "topP": settings.top_p,
            "topK": settings.top_k,
        },
        "stop": list(settings.stop),
        "min": min(settings.min_instances, MAX_INSTANCES),
        "max": min(settings.max_instances, MAX_INSTANCES),
        "idle": settings.idle_seconds,
        "device": settings.device,
    }


@dataclass(frozen=True)
class JobStatus:
    """A task as its status page reads it (an import or a job on a model): the task and, once an export has
    succeeded, the archive file it answers with."""

    task: Task
    archive: FileRecord | None = None


class ModelJobService:
    def __init__(
        self,
        db: Database,
        imports: ImportService,
        serving: ServingService,
        projects: ProjectService,
        tasks: TaskService,
        identity: IdentityService,
        files: FileService,
    ):
        self.db = db
        self.imports = imports
        self.serving = serving
        self.projects = projects
        self.tasks = tasks
        self.identity = identity
        self.files = files

    # --- starting jobs (from a request) -----------------------------------------------------------
    def start(
        self, principal: Principal, model_id: str, kind: str, read: Callable[[], DeploySettings] | None = None
    ) -> Task:
        """Queue job ``kind`` on imported model ``model_id``; a deploy's settings are what ``read()`` gives once the
        caller may and the model is ready (so a bad body on an unknown model answers 404, as the vendor does)."""
        require(principal, Action.MODEL_WRITE, principal.org_id, what="model")
        model = self.imports.get(principal, model_id)
        if model.status != "ready":
            raise InvalidInput(
                f"The model is {model.status}; only a ready (imported) model can be {KINDS[kind].lower()}ed."
            )
        payload: dict[str, Any] = {"model_id": model.id, "user_id": principal.user_id}
        if kind == DEPLOY:
            if read is None:
                raise InvalidInput("a deploy needs its settings")
            payload["settings"] = deploy_payload(read())
        with self.db.uow() as s:
            row = self.tasks.enqueue_in(s, kind, payload, org_id=principal.org_id)
            task_id = row.id
        return self.tasks.get(principal, task_id)

    def status(self, principal: Principal, task_id: str) -> JobStatus:
        """The task ``task_id`` (any the principal may read: an import or a job), with the archive a succeeded
        export made (read with the principal's rights, so a file deleted since is a NotFound)."""
        task = self.tasks.get(principal, task_id)
        if task.status == "succeeded" and task.kind == EXPORT:
            return JobStatus(task, self.files.get(principal, task.result["file_id"]))
        return JobStatus(task)

    # --- running them (background) ----------------------------------------------------------------
    def process(self, task: Task, progress: Callable[[int], None]) -> dict[str, Any]:
        principal = self.identity.principal_by_ids(task.payload["user_id"], task.org_id)
        model = self.imports.get(principal, task.payload["model_id"])
        if task.kind == EXPORT:
            if model.file_id is None:
                raise JobFailed("the model's archive is gone")
            return {"model_id": model.id, "file_id": model.file_id}
        name = deployment_name(model)
        if task.kind == UNDEPLOY:
            try:
                self.serving.delete_deployment(principal, PROJECT, name)
            except NotFound:
                raise JobFailed("the model is not deployed") from None
            return {"model_id": model.id, "deployment": name, "undeployed": True}
        return self._deploy(principal, model, name, task.payload["settings"], progress)

    def _deploy(
        self, principal: Principal, model: ImportedModel, name: str, settings: dict[str, Any], progress
    ) -> dict[str, Any]:
        try:
            self.projects.get_by_name(principal, PROJECT)
        except NotFound:
            with contextlib.suppress(Conflict):  # another job made it meanwhile
                self.projects.create_project(principal, PROJECT, description="Models deployed through Kore.ai")
        progress(5)
        try:
            self.serving.get_deployment(principal, PROJECT, name)
        except NotFound:
            self.serving.create_deployment(
                principal,
                PROJECT,
                DeploymentIn(name, input_type="plain", output_type="plain", description=settings["name"][:400]),
            )
        scaling = VersionIn(
            minimum_instances=settings["min"],
            maximum_instances=settings["max"],
            maximum_idle_time=max(10, settings["idle"]),
            labels={"kore-device": settings["device"][:64]},
        )
        try:
            self.serving.get_version(principal, PROJECT, name, VERSION)
            self.serving.update_version(principal, PROJECT, name, VERSION, scaling)
        except NotFound:
            self.serving.create_version(principal, PROJECT, name, replace(scaling, version=VERSION))
        env = {
            "KORE_TEMPERATURE": str(settings["params"]["temperature"]),
            "KORE_MAX_TOKENS": str(settings["params"]["maxTokens"]),
            "KORE_TOP_P": str(settings["params"]["topP"]),
            "KORE_TOP_K": str(settings["params"]["topK"]),
            "KORE_STOP_SEQUENCE": json.dumps(settings["stop"]),
        }
        existing = {
            e.name: e
            for e in self.serving.list_env_vars(principal, PROJECT, name, VERSION)
            if e.inheritance_type is None
        }
        for key, value in env.items():
            body = EnvVarIn(key, value, secret=False)
            if key in existing:
                self.serving.update_env_var(
                    principal, PROJECT, existing[key].id, body, deployment=name, version=VERSION
                )
            else:
                self.serving.create_env_var(principal, PROJECT, body, deployment=name, version=VERSION)
        progress(20)
        revision = self.serving.new_revision_from_file(principal, PROJECT, name, VERSION, model.file_id, build=False)
        outcome = self.serving.build_revision(revision.id, lambda pct: progress(20 + pct * 3 // 4))
        if outcome["status"] != "success":
            raise JobFailed(
                f"the archive could not be deployed: {outcome.get('error')} — a deployable archive holds "
                "deployment.py with class Deployment and request(self, data)"
            )
        return {
            "model_id": model.id,
            "project": PROJECT,
            "deployment": name,
            "version": VERSION,
            "revision": revision.id,
        }
