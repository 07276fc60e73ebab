"""What the transfer service returns (frozen dataclasses) and the names of its tasks, upload contexts and
statuses.

An export: ``pending`` → ``processing`` → ``completed`` | ``failed``. An import: ``pending`` → ``scanning`` →
``confirmation`` → ``confirmation_pending`` → ``processing`` → ``completed`` (``skip_confirmation``: from
``scanning`` straight to ``processing``); any step may end ``failed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelharbor.core.files.usage import PROJECT_EXPORT, PROJECT_IMPORT
from modelharbor.domain.entities import FileRecord

EXPORT_TASK = "project_export"
IMPORT_TASK = "project_import"
EXPORT_CONTEXT = PROJECT_EXPORT  # internal files (core/files/usage.py)
IMPORT_CONTEXT = PROJECT_IMPORT
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


@dataclass(frozen=True)
class ImportForm:
    """What an upload's form says besides the zip (``TransferService.create_import_from_upload``)."""

    import_link: str | None = None
    export_id: str | None = None
    skip_confirmation: bool = False


# An export's or import's zip for reading (``open_export_file``, ``open_import_file``): the record, the satisfied range
# (None = the whole file), the byte stream (as ``files.open``) and the download name.
OpenedZip = tuple[FileRecord, Any, AsyncIterator[bytes], str]
