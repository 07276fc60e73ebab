"""Tracking's names, limits and input checks: lifecycle stages and view types, the artifact URIs of experiments,
runs and logged models, and the checks of names, keys, values and page sizes (shared by the tracking modules)."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelharbor.core.tracking.metrics import MAX_KEY
from modelharbor.domain.errors import HarborError, InvalidInput
from modelharbor.domain.inputs import ViewType

DEFAULT_EXPERIMENT = "Default"
DEFAULT_ID = "0"
ACTIVE, DELETED = "active", "deleted"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MODEL_STATUSES = ("PENDING", "READY", "FAILED")
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


class AlreadyExists(HarborError):
    code = "RESOURCE_ALREADY_EXISTS"
    status = 400


def experiment_artifact_location(experiment_id: int | str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: int | str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def model_artifact_uri(experiment_id: int | str, model_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"


VIEW_STAGES = {ViewType.ACTIVE_ONLY: (ACTIVE,), ViewType.DELETED_ONLY: (DELETED,), ViewType.ALL: (ACTIVE, DELETED)}


def stages_of(view_type: ViewType | None) -> tuple[str, ...]:
    """The lifecycle stages a search with ``view_type`` sees (active only when None)."""
    return VIEW_STAGES[view_type or ViewType.ACTIVE_ONLY]


def check_max(max_results: int | None, default: int, limit: int) -> int:
    if max_results is None or max_results == 0:
        return default
    if not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be from 1 to {limit}, got {max_results!r}")
    return max_results


def check_value(value: str, what: str, limit: int) -> str:
    """A param's or tag's value (the edges give one that is not a string as its text)."""
    if len(value) > limit:
        raise InvalidInput(f"{what} value is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"{what} value contains a NUL character")
    return value


def dialect_insert(s: Session):
    """The dialect's INSERT (for ON CONFLICT)."""
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def key_ok(key: str) -> bool:
    """Whether ``key`` could name a tag (one that cannot is simply not there)."""
    return 0 < len(key) <= MAX_KEY and "\x00" not in key


def check_name(name: str) -> str:
    if not name.strip():
        raise InvalidInput("an experiment name is required")
    if len(name) > 500 or "\x00" in name:
        raise InvalidInput("the experiment name must be at most 500 characters, without NUL")
    return name


def exp_int(experiment_id: str) -> int | None:
    """The number an experiment id names, or None when it names none (not a number, or too long to be one)."""
    return int(experiment_id) if experiment_id.isdecimal() and len(experiment_id) < 12 else None


def new_run_name() -> str:
    adjectives = ("bright", "calm", "eager", "gentle", "brave", "quick", "merry", "bold", "wise", "keen")
    nouns = ("otter", "harbor", "falcon", "maple", "comet", "lynx", "reef", "willow", "heron", "orca")
    h = uuid.uuid4().int
    return f"{adjectives[h % 10]}-{nouns[(h >> 8) % 10]}-{h % 1000}"
