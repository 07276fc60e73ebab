"""Core registry objects as Domino's JSON (camelCase, ISO-8601 times, ``project`` summaries, access flags)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from modelharbor.api.common import public_base
from modelharbor.core.projects import Project
from modelharbor.core.registry import ModelVersion, RegisteredModel
from modelharbor.core.reviews import Review
from modelharbor.domain.errors import NotFound
from modelharbor.domain.principal import Action, Principal
from modelharbor.services import Services


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN or infinity


def latest_number(m: RegisteredModel) -> int | None:
    return max((v.version for v in m.latest_versions), default=None)


def iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso(datetime.fromtimestamp(ms / 1000, UTC))


class View:
    """Renders for one request, looking each project and username up once."""

    def __init__(self, services: Services, principal: Principal, request):
        self.services = services
        self.principal = principal
        self.request = request
        self._projects: dict[str, Project | None] = {}
        self._names: dict[str, str] = {}
        self._writable: dict[str | None, bool] = {}

    # --- lookups --------------------------------------------------------------------------------
    def project(self, project_id: str | None) -> Project | None:
        if not project_id:
            return None
        if project_id not in self._projects:
            try:
                self._projects[project_id] = self.services.projects.get_project(self.principal, project_id)
            except NotFound:
                self._projects[project_id] = None
        return self._projects[project_id]

    def username(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        if user_id not in self._names:
            self._names.update(self.services.identity.usernames([user_id]))
        return self._names.get(user_id, "")

    def preload(self, models: list[RegisteredModel]) -> None:
        missing = {m.creator_id for m in models if m.creator_id and m.creator_id not in self._names}
        self._names.update(self.services.identity.usernames(missing))

    def can_edit(self, project_id: str | None) -> bool:
        if project_id not in self._writable:
            if not self.principal.can(Action.REGISTRY_WRITE, self.principal.org_id):
                self._writable[project_id] = False
            elif project_id and self.project(project_id) is not None:
                self._writable[project_id] = self.services.projects.may_write(self.principal, project_id)
            else:
                self._writable[project_id] = True
        return self._writable[project_id]

    # --- shapes ---------------------------------------------------------------------------------
    def project_summary(self, project_id: str | None) -> dict[str, Any] | None:
        p = self.project(project_id)
        if p is None:
            return None
        return {"id": p.id, "name": p.name, "ownerUsername": p.owner_username or "", "isGitBasedProject": False}

    def access(self, project_id: str | None) -> dict[str, bool]:
        edit = self.can_edit(project_id)
        return {
            "canEditModel": edit,
            "canEditProjectAssets": edit,
            "canViewExperimentRuns": self.principal.can(Action.TRACKING_READ, self.principal.org_id),
            "canViewModelApis": True,
            "canViewProject": True,
            "canViewProjectFiles": True,
        }

    def model(self, m: RegisteredModel, latest: int | None) -> dict[str, Any]:
        return {
            "name": m.name,
            "description": m.description,
            "discoverable": m.discoverable,
            "latestVersion": latest,
            "ownerUsername": self.username(m.creator_id),
            "project": self.project_summary(m.project_id),
            "requestingUserAccess": self.access(m.project_id),
            "tags": dict(m.tags),
            "createdAt": iso(m.creation_time),
            "updatedAt": iso(m.last_updated_time),
        }

    def model_for_ui(self, m: RegisteredModel, latest: ModelVersion | None) -> dict[str, Any]:
        out = self.model(m, latest.version if latest else None)
        del out["requestingUserAccess"]
        out.update(
            {
                "latestVersionExperimentMetrics": self.run_metrics(latest.run_id) if latest else {},
                "latestVersionModelType": "ml",
                "modelApiCount": 0,
                "predictionCount": 0,
            }
        )
        return out

    def version_overview(self, m: RegisteredModel, v: ModelVersion) -> dict[str, Any]:
        return {
            "modelName": v.name,
            "modelVersion": v.version,
            "experimentRunId": v.run_id or "",
            "ownerUsername": self.username(v.creator_id),
            "project": self.project_summary(m.project_id),
            "createdAt": iso(v.creation_time),
            "updatedAt": iso(v.last_updated_time),
        }

    def version_details(self, m: RegisteredModel, v: ModelVersion) -> dict[str, Any]:
        out = self.version_overview(m, v)
        out.update(
            {
                "modelVersionDescription": v.description,
                "tags": dict(v.tags),
                "stage": v.current_stage,
                "versionUiDetails": {
                    "experimentRunInfo": self.run_info(v.run_id),
                    "modelVersionDataSources": [],
                    "modelVersionDatasets": [],
                },
            }
        )
        return out

    def run_info(self, run_id: str | None) -> dict[str, Any]:
        run = self._run(run_id)
        if run is None:
            return {"metrics": [], "params": [], "runUrl": ""}
        return {
            "metrics": [{"key": x.key, "value": _num(x.value), "timestamp": iso_ms(x.timestamp)} for x in run.metrics],
            "params": [{"key": k, "value": v} for k, v in sorted(run.params.items())],
            "runUrl": f"{public_base(self.request)}/api/2.0/mlflow/runs/get?run_id={run.id}",
        }

    def run_metrics(self, run_id: str | None) -> dict[str, float]:
        run = self._run(run_id)
        return {x.key: _num(x.value) for x in run.metrics} if run else {}

    def _run(self, run_id: str | None):
        if not run_id:
            return None
        try:
            return self.services.tracking.get_run(self.principal, run_id)
        except NotFound:
            return None

    def review(self, r: Review) -> dict[str, Any]:
        return {
            "id": r.id,
            "modelName": r.model_name,
            "modelVersion": r.model_version,
            "targetStage": r.target_stage,
            "status": r.status,
            "notes": r.notes,
            "requestedBy": {"id": r.requested_by_id or "", "userName": r.requested_by_username or ""},
            "reviewers": [
                {
                    "userId": x.user_id,
                    "userName": x.username or "",
                    "decision": x.decision,
                    "notes": x.notes,
                    "respondedAt": iso(x.responded_at),
                }
                for x in r.reviewers
            ],
            "createdAt": iso(r.created_at),
            "updatedAt": iso(r.updated_at),
        }
