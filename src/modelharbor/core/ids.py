"""Looking rows up by ids that come from outside: an id no row could have is simply not found.

Without this, PostgreSQL rejects ids with NUL bytes with an error (a 500) instead of "no such row".
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_ID = 64


def well_formed(value: str | None) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and value.isprintable() and value.isascii()


def find(s: Session, model: type[T], ident: str | None) -> T | None:
    return s.get(model, ident) if well_formed(ident) else None
