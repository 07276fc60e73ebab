"""Domino's wire shapes: the registry's cards and reviews as Domino's JSON (camelCase, ISO-8601 times, ``project``
summaries, access flags), its ``FailureEnvelopeV1`` error body and its metadata envelope. Pure functions: the
cards (core/registry/cards.py) already carry the projects, usernames, rights and runs shown.

Domino's client turns any 409 into "credentials expired", so a duplicate answers 400 here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.core.directory import Person
from modelharbor.core.git_credentials import GitCredential
from modelharbor.core.hardware_tiers import UNITS
from modelharbor.core.project_files import Commit, FileEntry, Listing
from modelharbor.core.teams import Team
from modelharbor.domain.cards import ModelCard, ProjectSummary, RunSummary, VersionCard
from modelharbor.domain.entities import Review
from modelharbor.domain.errors import HarborError

STATUS = {"CONFLICT": 400, "DUPLICATE": 400}  # never 409 (see above)


def request_id(request: Request) -> str:
    return failures.request_id(request.scope)  # the id an unexpected failure is logged under, too


def failure(request: Request, status: int, *messages: str, headers: dict | None = None) -> JSONResponse:
    """``FailureEnvelopeV1``: ``{"errors": [...], "requestId": ...}``."""
    return JSONResponse(
        {"errors": list(messages), "requestId": request_id(request)}, status_code=status, headers=headers
    )


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): the failure envelope, ``requestId`` the id it is logged under."""
    return JSONResponse({"errors": [failures.message(rid)], "requestId": rid}, status_code=500)


def render(request: Request, exc: HarborError) -> JSONResponse:
    """Every error the dialect answers (api/dialect.py), in the failure envelope."""
    status = STATUS.get(exc.code, exc.status)
    if status == 409:
        status = 400
    headers = {"www-authenticate": 'Bearer realm="domino"'} if status == 401 else None
    if exc.code == "INVALID_REQUEST" and exc.details.get("problems"):
        return failure(request, 400, *(f"{loc}: {msg}" for loc, msg in exc.details["problems"]))
    return failure(request, status, exc.message, headers=headers)


def metadata(request: Request, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id(request), "notices": [], **extra}


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN or infinity


def iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso(datetime.fromtimestamp(ms / 1000, UTC))


def project(p: ProjectSummary | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"id": p.id, "name": p.name, "ownerUsername": p.owner_username or "", "isGitBasedProject": False}


def access(card: ModelCard) -> dict[str, bool]:
    """``requestingUserAccess``: the caller's rights, as the core decided them."""
    return {
        "canEditModel": card.can_edit,
        "canEditProjectAssets": card.can_edit,
        "canViewExperimentRuns": card.can_view_runs,
        "canViewModelApis": True,
        "canViewProject": True,
        "canViewProjectFiles": True,
    }


def model(card: ModelCard) -> dict[str, Any]:
    """``RegisteredModelV1``."""
    m = card.model
    return {
        "name": m.name,
        "description": m.description,
        "discoverable": m.discoverable,
        "latestVersion": card.latest.version if card.latest else None,
        "ownerUsername": card.creator_username or "",
        "project": project(card.project),
        "requestingUserAccess": access(card),
        "tags": dict(m.tags),
        "createdAt": iso(m.creation_time),
        "updatedAt": iso(m.last_updated_time),
    }


def model_for_ui(card: ModelCard) -> dict[str, Any]:
    """``RegisteredModelForUIV1``: the card of a listing asked with ``metrics``."""
    out = model(card)
    del out["requestingUserAccess"]
    out.update(
        {
            "latestVersionExperimentMetrics": {x.key: _num(x.value) for x in card.latest_metrics},
            "latestVersionModelType": "ml",
            "modelApiCount": 0,
            "predictionCount": 0,
        }
    )
    return out


def version_overview(card: VersionCard) -> dict[str, Any]:
    v = card.version
    return {
        "modelName": v.name,
        "modelVersion": v.version,
        "experimentRunId": v.run_id or "",
        "ownerUsername": card.creator_username or "",
        "project": project(card.project),
        "createdAt": iso(v.creation_time),
        "updatedAt": iso(v.last_updated_time),
    }


def version_details(card: VersionCard, base: str) -> dict[str, Any]:
    """``RegisteredModelVersionDetailsV1`` + ``stage``; ``base``: the server's public URL, for the run's URL."""
    v = card.version
    out = version_overview(card)
    out.update(
        {
            "modelVersionDescription": v.description,
            "tags": dict(v.tags),
            "stage": v.current_stage,
            "versionUiDetails": {
                "experimentRunInfo": run_info(card.run, base),
                "modelVersionDataSources": [],
                "modelVersionDatasets": [],
            },
        }
    )
    return out


def run_info(run: RunSummary | None, base: str) -> dict[str, Any]:
    if run is None:
        return {"metrics": [], "params": [], "runUrl": ""}
    return {
        "metrics": [{"key": x.key, "value": _num(x.value), "timestamp": iso_ms(x.timestamp)} for x in run.metrics],
        "params": [{"key": k, "value": v} for k, v in sorted(run.params.items())],
        "runUrl": f"{base}/api/2.0/mlflow/runs/get?run_id={run.id}",
    }


def stages(project_id: str, own: tuple[str, ...] | None, effective: tuple[str, ...], *, defaults: bool = True):
    """A project's stage list: its own, else the default one (``defaults``: else none)."""
    if own is None and not defaults:
        return {"stages": [], "projectId": project_id, "isDefault": False}
    return {"stages": list(effective), "projectId": project_id, "isDefault": own is None}


def review(r: Review) -> dict[str, Any]:
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


# --- hardware tiers and compute providers (core/hardware_tiers.py, core/compute_providers.py) -------------------
TIER_EXTRA_FLAGS = ("isDataAnalystTier", "isModelApiTier", "isDefaultForModelApi")


def information(size: int | None, units: str) -> dict[str, Any] | None:
    """Bytes as Domino's ``InformationV1`` in the tier's units."""
    if size is None:
        return None
    return {"value": round(size / UNITS[units], 6), "units": units}


def hardware_tier(t: Any) -> dict[str, Any]:
    """A core ``HardwareTier`` as ``HardwareTierV1`` (fields ModelHarbor keeps but does not act on come back as
    given)."""
    extra = t.extra
    flags = {"isArchived": t.is_archived, "isDefault": t.is_default, "isGlobal": t.is_global, "isVisible": t.is_visible}
    flags.update({k: bool(extra.get(k, False)) for k in TIER_EXTRA_FLAGS})
    resources = {
        "allowSharedMemoryToExceedDefault": bool(extra.get("allowSharedMemoryToExceedDefault", False)),
        "cores": t.cores,
        "coresLimit": t.cores_limit,
        "memory": information(t.memory, t.memory_units),
        "memoryLimit": information(t.memory_limit, t.memory_units),
    }
    for key in ("memorySwapLimit", "sharedMemoryLimit"):
        if extra.get(key) is not None:
            resources[key] = extra[key]
    out: dict[str, Any] = {
        "id": t.id,
        "name": t.name,
        "centsPerMinute": t.cents_per_minute,
        "creationTime": iso(t.created_at),
        "updateTime": iso(t.updated_at),
        "flags": flags,
        "gpuConfiguration": {"gpuKey": t.gpu_key or "nvidia.com/gpu", "numberOfGpus": t.gpus} if t.gpus else None,
        "metadata": extra.get("metadata", {}),
        "nodePool": t.node_pool,
        "maxSimultaneousExecutions": t.max_executions,
        "podCustomization": extra.get("podCustomization", {}),
        "resources": resources,
        "tags": extra.get("tags", []),
    }
    for key in ("availabilityZones", "computeClusterRestrictions", "dataPlaneId", "overProvisioning"):
        if extra.get(key) is not None:
            out[key] = extra[key]
    return out


def v4_hardware_tier(t: Any) -> dict[str, Any]:
    """One item of ``GET /v4/projects/{id}/hardwareTiers`` (what the client's ``hardware_tiers_list`` reads)."""
    gib = 2**30
    return {
        "hardwareTier": {
            "id": t.id,
            "name": t.name,
            "hwtFlags": {
                "isDefault": t.is_default,
                "isVisible": t.is_visible,
                "isArchived": t.is_archived,
                "isGlobal": t.is_global,
                **{k: bool(t.extra.get(k, False)) for k in TIER_EXTRA_FLAGS},
            },
            "hwtResources": {
                "cores": t.cores,
                "coresLimit": t.cores_limit,
                "memoryInGiB": t.memory / gib,
                "memoryLimitInGiB": (t.memory_limit or t.memory) / gib,
                "gpuConfiguration": {"gpuKey": t.gpu_key or "nvidia.com/gpu", "numberOfGpus": t.gpus}
                if t.gpus
                else None,
            },
            "centsPerMinute": t.cents_per_minute,
            "nodePool": t.node_pool,
        },
        "capacity": None,
        "dataPlane": {"id": "local", "name": "Local", "isLocal": True},
    }


def provider_type(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "logoUrl": "",
        "description": p.description,
        "configurationSchema": p.configuration_schema,
    }


def compute_provider(card: Any) -> dict[str, Any]:
    p = card.provider
    return {
        "id": p.id,
        "name": p.name,
        "computeProviderTypeId": p.type.id,
        "computeProviderTypeName": p.type.name,
        "configuration": p.configuration,
        "isGloballyAccessible": True,
        "userAndOrganizationIds": [],
        "defaultComputeTierId": card.default_tier_id,
        "isArchived": False,
        "lastModified": iso(p.since),
    }


def compute_tier(ct: Any) -> dict[str, Any]:
    t = ct.tier
    return {
        "id": ct.id,
        "name": t.name,
        "computeProviderId": ct.provider.id,
        "configuration": {
            "hardwareTierId": t.id,
            "cores": t.cores_limit or t.cores,
            "memoryMiB": (t.memory_limit or t.memory) // 2**20,
            "gpus": t.gpus,
            "centsPerMinute": t.cents_per_minute,
        },
        "description": f"hardware tier {t.id!r} on {ct.provider.name}",
        "isDefault": t.is_default,
        "isArchived": t.is_archived,
        "lastModified": iso(t.updated_at),
    }


# --- users, git credentials, organizations (teams) ----------------------------------------------
def epoch_ms(dt: datetime | None) -> int | None:
    """v4 and legacy routes give times as epoch milliseconds (the public API: ISO-8601, :func:`iso`)."""
    return None if dt is None else int(dt.timestamp() * 1000)


def paged(request: Request, offset: int, limit: int, total: int) -> dict[str, Any]:
    """``PaginatedMetadataV1``."""
    return metadata(request, offset=offset, limit=limit, totalCount=total)


def user(p: Person) -> dict[str, Any]:
    """``UserV1``: ModelHarbor keeps a username and an email, not first and last names, so ``fullName`` is the
    username and the name parts are empty; ``roles`` holds the role in the caller's organisation."""
    return {
        "id": p.id,
        "userName": p.username,
        "firstName": "",
        "lastName": "",
        "fullName": p.username,
        "email": p.email or "",
        "avatarUrl": "",
        "roles": ["SysAdmin", p.role.value] if p.is_superuser else [p.role.value],
    }


def person_v4(p: Person) -> dict[str, Any]:
    """v4 ``Person`` (``GET /v4/users``; the client's ``get_user_id`` matches ``userName`` or ``email``): the user
    without ``roles``, with ``createdAt`` in epoch milliseconds."""
    out = user(p)
    del out["roles"]
    out["createdAt"] = epoch_ms(p.created_at)
    return out


def git_credential(c: GitCredential) -> dict[str, Any]:
    """``GitCredentialsAccessorV1``: never the secret."""
    return {
        "id": c.id,
        "name": c.name,
        "domain": c.domain,
        "protocol": c.protocol,
        "gitServiceProvider": c.provider,
        "fingerprint": c.fingerprint,
    }


def git_credential_v4(c: GitCredential) -> dict[str, Any]:
    out = git_credential(c)
    out["type"] = "TokenGitCredentialDto" if c.protocol == "https" else "SshGitCredentialDto"
    out["createdAt"] = epoch_ms(c.created_at)
    return out


def organization(t: Team) -> dict[str, Any]:
    """``OrganizationV1``: a team of the organisation."""
    return {
        "id": t.id,
        "name": t.name,
        "members": [{"userId": m.user_id, "organizationRole": m.role.value} for m in t.members],
        "defaultEnvironmentId": None,
    }


# --- versioned project files (routes/files.py) ---------------------------------------------------------------------
def project_file(entry: FileEntry, commit_id: str | None) -> dict[str, Any]:
    """One entry of the legacy ``GET /v1/projects/{owner}/{project}/files/{commitId}/{path}`` (epoch ms)."""
    return {
        "path": entry.path,
        "name": entry.name,
        "key": entry.key,
        "size": entry.size,
        "lastModified": entry.modified_ms,
        "isDirectory": entry.is_dir,
        "commitId": commit_id,
    }


def project_files(listing: Listing) -> dict[str, Any]:
    commit_id = listing.commit.id if listing.commit else None
    return {"data": [project_file(e, commit_id) for e in listing.entries]}


def uploaded_file(path: str, commit: Commit) -> dict[str, Any]:
    """``PUT /v1/projects/{owner}/{project}/{path}``'s answer: the path (no leading slash) and the new commit."""
    return {
        "path": path.lstrip("/"),
        "commitId": commit.id,
        "lastModified": int(commit.created_at.timestamp() * 1000),
    }
