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
from modelharbor.domain.inputs import DeploymentIn, EnvVarIn, VersionIn
from modelharbor.domain.principal import Action, Principal, require

EXPORT, DEPLOY, UNDEPLOY = "model_export", "model_deploy", "model_undeploy"
KINDS = {EXPORT: "EXPORT", DEPLOY: "DEPLOY", UNDEPLOY: "UNDEPLOY"}
PROJECT = "kore-models"
VERSION = "v1"


class JobFailed(HarborError):
    code = "JOB_FAILED"
    status = 400


def deployment_name(model: ImportedModel) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", model.name.lower()).strip("-")[:48] or "model"
    return f"{slug}-{model.id.replace('-', '')[:8]}"


def _number(body: dict[str, Any], key: str, low: float, high: float, *, required: bool, integer: bool = False):
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"'{key}' is required ({low} to {high}).")
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not low <= value <= high:
        raise InvalidInput(f"'{key}' must be {'an integer' if integer else 'a number'} from {low} to {high}.")
    return value


def validate_deploy(body: Any) -> dict[str, Any]:
    """The deploy body as the vendor documents it (``isDeployedPreviouly`` accepted too)."""
    if not isinstance(body, dict):
        raise InvalidInput("the deploy body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidInput("'name' is required: 1 to 256 characters.")
    if not isinstance(body.get("deviceType"), str) or not body["deviceType"]:
        raise InvalidInput("'deviceType' is required (any device profile name; ModelHarbor runs on CPU here).")
    hyper = body.get("hyperParameters")
    if not isinstance(hyper, dict):
        raise InvalidInput("'hyperParameters' is required: {temperature, maxTokens, topP, topK, stopSequence?}.")
    params = {
        "temperature": _number(hyper, "temperature", 0, 2, required=True),
        "maxTokens": _number(hyper, "maxTokens", 0, 512, required=True, integer=True),
        "topP": _number(hyper, "topP", 0, 1, required=True),
        "topK": _number(hyper, "topK", 1, 100, required=True, integer=True),
    }
    stop = hyper.get("stopSequence")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(x, str) for x in stop)):
        raise InvalidInput("'stopSequence' must be a list of strings.")
    scaling = body.get("scalingParameters") or {}
    if not isinstance(scaling, dict):
        raise InvalidInput("'scalingParameters' must be an object.")
    lo = _number(scaling, "minReplicas", 1, 10, required=False, integer=True) or 1
    hi = _number(scaling, "maxReplicas", 1, 50, required=False, integer=True) or max(lo, 1)
    for key, low, high in (("maxBatchSize", 1, 256), ("scaleUpDelay", 1, 1000), ("scaleDownDelay", 50, 2000)):
        _number(scaling, key, low, high, required=False, integer=True)
    if lo > hi:
        raise InvalidInput("'minReplicas' cannot be more than 'maxReplicas'.")
    optimisation = body.get("optimizationInfo")
    if optimisation is not None and not isinstance(optimisation, dict):
        raise InvalidInput("'optimizationInfo' must be an object.")
    return {
        "name": name,
        "params": params,
        "stop": stop or [],
        "min": min(lo, 20),
        "max": min(hi, 20),
        "idle": int(scaling.get("scaleDownDelay") or 300),
        "device": body["deviceType"],
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
    def start(self, principal: Principal, model_id: str, kind: str, body: Any = None) -> Task:
        require(principal, Action.MODEL_WRITE, principal.org_id, what="model")
        model = self.imports.get(principal, model_id)
        if model.status != "ready":
            raise InvalidInput(
                f"The model is {model.status}; only a ready (imported) model can be {KINDS[kind].lower()}ed."
            )
        payload: dict[str, Any] = {"model_id": model.id, "user_id": principal.user_id}
        if kind == DEPLOY:
            payload["settings"] = validate_deploy(body)
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
