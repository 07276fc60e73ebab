"""Project tags (Domino's ``/v4/projects/{id}/tags``, ``GET /projectTags/{id}``): one tag per name inside an
organisation, linked to any number of its projects (db/tables_projects.py). The rules of names and the linking;
who may link is decided by the callers (core/projects.py, core/project_settings.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.clock import new_hex, now
from modelharbor.db.tables_projects import ProjectTagLinkRow, ProjectTagRow
from modelharbor.domain.errors import InvalidInput

MAX_TAGS = 100
MAX_TAG_NAME = 100


def tag_name(value: object) -> str:
    """A project tag's name: 1 to MAX_TAG_NAME printable characters, no surrounding spaces."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidInput(
            f"Invalid tag name {value!r}: a non-empty string without surrounding spaces", field="tagNames"
        )
    if len(value) > MAX_TAG_NAME or not value.isprintable():
        raise InvalidInput(f"Invalid tag name {value!r}: at most {MAX_TAG_NAME} printable characters", field="tagNames")
    return value


def link_tags(
    s: Session, org_id: str, project_id: str, names: Sequence[str], *, approved: bool, by: str | None
) -> None:
    """Link the tags ``names`` to the project, creating the organisation's tags that do not exist yet (``approved``:
    created by an organisation admin; ``by`` their creator); at most MAX_TAGS per project."""
    wanted = list(dict.fromkeys(tag_name(n) for n in names))
    if not wanted:
        return
    T, L = ProjectTagRow, ProjectTagLinkRow
    for name in wanted:
        tag_id = s.scalar(select(T.id).where(T.org_id == org_id, T.name == name))
        if tag_id is None:
            tag_id = new_hex(12)
            try:
                with s.begin_nested():
                    s.add(
                        T(
                            id=tag_id,
                            org_id=org_id,
                            name=name,
                            is_approved=approved,
                            created_by=by,
                            created_at=now(),
                        )
                    )
            except IntegrityError:  # created meanwhile by another request: use that one
                tag_id = s.scalar(select(T.id).where(T.org_id == org_id, T.name == name))
        if s.get(L, (project_id, tag_id)) is None:
            s.add(L(project_id=project_id, tag_id=tag_id))
    s.flush()
    count = s.scalar(select(func.count()).select_from(L).where(L.project_id == project_id))
    if count > MAX_TAGS:
        raise InvalidInput(f"A project may have at most {MAX_TAGS} tags, not {count}.", field="tagNames")
