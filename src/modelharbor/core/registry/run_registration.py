"""Registering the model an experiment run logged (Domino's "create a registered model from a run").

A run's model is found, in this order: the MLflow 3 logged model given by id (it must come from that run); the
logged model of that run with the given name, or the run artifact directory of that name holding an ``MLmodel``;
with neither given, the run's only logged model, else its only artifact directory holding an ``MLmodel``. More
than one candidate, or none, is a clear 400 that says what to pass.

The new model goes into the project given, else the project the run names in its ``mlflow.domino.project_id``
tag (or its experiment's). Everything is checked before anything is written; if the version cannot be created
after its new model was, the model is removed again, so a failed request leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from modelharbor.core.registry.service import RegistryService
from modelharbor.core.tracking import TrackingService, clean_path
from modelharbor.db.engine import Database
from modelharbor.db.tables_tracking import ArtifactRow
from modelharbor.domain.cards import ModelCard, VersionCard
from modelharbor.domain.entities import ModelVersion, Run
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.principal import Principal

PROJECT_TAG = "mlflow.domino.project_id"


@dataclass(frozen=True)
class RunModel:
    source: str  # what the version's source becomes: models:/<id> or runs:/<run>/<path>
    run: Run
    model_id: str | None


class RunRegistration:
    def __init__(self, db: Database, tracking: TrackingService, registry: RegistryService):
        self.db = db
        self.tracking = tracking
        self.registry = registry

    def find_model(
        self, principal: Principal, run_id: str, *, artifact: str | None = None, logged_model_id: str | None = None
    ) -> RunModel:
        if not run_id.strip():
            raise InvalidInput("'experimentRunId' is required: the id of the MLflow run that logged the model.")
        run = self.tracking.get_run(principal, run_id)
        if logged_model_id not in (None, ""):
            lm = self.tracking.get_logged_model(principal, logged_model_id)
            if lm.source_run_id != run.id:
                raise InvalidInput(f"Logged model {logged_model_id!r} was not logged by run {run.id}.")
            return RunModel(f"models:/{lm.id}", run, lm.id)
        logged = [
            m
            for m in self.tracking.search_logged_models(principal, [run.experiment_id], max_results=50000).items
            if m.source_run_id == run.id
        ]
        dirs = self._mlmodel_dirs(run)
        if artifact:
            named = [m for m in logged if m.name == artifact]
            if len(named) == 1:
                return RunModel(f"models:/{named[0].id}", run, named[0].id)
            path = clean_path(artifact.strip("/"))
            if path in dirs:
                return RunModel(f"runs:/{run.id}/{path}", run, None)
            raise InvalidInput(
                f"Run {run.id} has no model {artifact!r}: "
                + self._candidates(logged, dirs, "log one with mlflow.<flavor>.log_model")
            )
        if len(logged) == 1:
            return RunModel(f"models:/{logged[0].id}", run, logged[0].id)
        if not logged and len(dirs) == 1:
            return RunModel(f"runs:/{run.id}/{dirs[0]}", run, None)
        if not logged and not dirs:
            raise InvalidInput(f"Run {run.id} logged no model: log one with mlflow.<flavor>.log_model first.")
        raise InvalidInput(
            f"Run {run.id} logged more than one model; say which in 'artifact': " + self._candidates(logged, dirs, "")
        )

    def register(
        self,
        principal: Principal,
        model_name: str,
        run_id: str,
        *,
        create: bool,
        artifact: str | None = None,
        logged_model_id: str | None = None,
        description: str | None = None,
        discoverable: bool | None = None,
        tags: Mapping[str, str] | None = None,
        project_id: str | None = None,
    ) -> tuple[ModelCard, VersionCard]:
        """``create``: a new model with this run's model as version 1; else the next version of an existing one.
        Answers the model's card (the new version its newest) and the new version's card, with its run."""
        found = self.find_model(principal, run_id, artifact=artifact, logged_model_id=logged_model_id)
        if create:
            project = project_id or found.run.tags.get(PROJECT_TAG) or self._experiment_project(principal, found.run)
            model = self.registry.create_model(
                principal,
                model_name,
                description=description,
                tags=tags,
                project_id=project or None,
                discoverable=bool(discoverable),
            )
            try:
                version = self._version(principal, model.name, found, description)
            except BaseException:
                self.registry.delete_model(principal, model.name)
                raise
            return self.registry.registration_cards(principal, model.name, version)
        version = self._version(principal, model_name, found, description)
        return self.registry.registration_cards(principal, model_name, version)

    # --- helpers --------------------------------------------------------------------------------
    def _version(self, principal: Principal, name: str, found: RunModel, description: str | None) -> ModelVersion:
        return self.registry.create_version(
            principal,
            name,
            found.source,
            run_id=found.run.id,
            model_id=found.model_id,
            description=description,
        )

    def _experiment_project(self, principal: Principal, run: Run) -> str | None:
        return self.tracking.get_experiment(principal, run.experiment_id).tags.get(PROJECT_TAG)

    def _mlmodel_dirs(self, run: Run) -> list[str]:
        """Run artifact directories (relative to the run's artifact root) that hold an ``MLmodel`` file."""
        root = f"{run.experiment_id}/{run.id}/artifacts/"
        with self.db.uow(readonly=True) as s:
            paths = s.scalars(
                select(ArtifactRow.path).where(
                    ArtifactRow.path.startswith(root, autoescape=True), ArtifactRow.path.endswith("/MLmodel")
                )
            ).all()
        return sorted(p[len(root) : -len("/MLmodel")] for p in paths if len(p) > len(root) + len("/MLmodel"))

    @staticmethod
    def _candidates(logged, dirs, fallback: str) -> str:
        names = [f"{m.name} (logged model {m.id})" for m in logged] + [f"{d} (artifact path)" for d in dirs]
        return ("candidates: " + ", ".join(names)) if names else fallback
