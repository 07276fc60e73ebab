"""Typed inputs of the core's write and search operations: what a dialect parses a request into before it calls the
core, so the core takes typed values and never a wire dict. A dialect's parse functions check the wire types (and
answer its own messages); the core checks the domain rules (key names, lengths, ranges) of these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class MetricIn:
    """A metric to log: ``timestamp`` in milliseconds since the epoch, ``step`` as MLflow counts them; with
    ``model_id`` it is also that logged model's metric (with its dataset, name and digest both or neither)."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True)
class TagIn:
    """A key and its value: a param or tag of an experiment, a run or a logged model."""

    key: str
    value: str


@dataclass(frozen=True)
class VersionFileIn:
    """A file of a model version to register: its path inside the version (e.g. ``MLmodel``) and the id of a file
    already uploaded."""

    path: str
    file_id: str


class ViewType(Enum):
    """Which lifecycle stages a search sees."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"
