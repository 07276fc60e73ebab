"""What the transfer service returns (frozen dataclasses) and the names of its tasks, upload contexts and
statuses.

An export: ``pending`` → ``processing`` → ``completed`` | ``failed``. An import: ``pending`` → ``scanning`` →
``confirmation`` → ``confirmation_pending`` → ``processing`` → ``completed`` (``skip_confirmation``: from
``scanning`` straight to ``processing``); any step may end ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

EXPORT_TASK = "project_export"
IMPORT_TASK = "project_import"
EXPORT_CONTEXT = "ubiops-export"
IMPORT_CONTEXT = "ubiops-import"
EXPORT_STATUSES = ("pending", "processing", "completed", "failed")
IMPORT_STATUSES = ("pending", "scanning", "confirmation", "confirmation_pending", "processing", "completed", "failed")


@dataclass(frozen=True)
class Export:
    id: str
    project: str
    status: str
    error_message: str | None
    description: str
    size: int | None
    created_by: str | None  # username
    created_at: datetime
    selection: dict[str, Any]
    packages: bool


@dataclass(frozen=True)
class Import:
    id: str
    project: str
    status: str
    error_message: str | None
    size: int | None
    created_by: str | None
    created_at: datetime
    content: dict[str, Any]
    source: str
    skip_confirmation: bool
