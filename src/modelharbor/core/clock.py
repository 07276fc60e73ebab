"""Time and ids in one place, so tests can reason about expiry."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_hex(nbytes: int = 16) -> str:
    return secrets.token_hex(nbytes)
