"""Prebuilt statements of the registry's hot paths (get, search, create).

Built once, so SQLAlchemy reuses their cache key and compiled SQL: on SQLite, building and keying a statement costs
several times more than running it (bench/registry.py). They return Core rows, whose attributes are named like the
ORM rows' (pk, name, version, …), and run on the unit of work's connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Text, and_, bindparam, cast, func, insert, null, select, union_all, update

from modelharbor.db.tables_registry import (
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelAliasRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

_M = RegisteredModelRow.__table__
_V = ModelVersionRow.__table__
_MT = RegisteredModelTagRow.__table__
_VT = ModelVersionTagRow.__table__
_AL = RegisteredModelAliasRow.__table__
_BY_NAME = (RegisteredModelRow.org_id == bindparam("org"), RegisteredModelRow.name == bindparam("name"))
Q_MODEL_ROW = select(RegisteredModelRow).where(*_BY_NAME)
Q_MODEL_ROW_LOCKED = Q_MODEL_ROW.with_for_update()
Q_MODEL = select(_M).where(_M.c.org_id == bindparam("org"), _M.c.name == bindparam("name"))
Q_MODEL_LOCKED = Q_MODEL.with_for_update()
Q_MODEL_PK = select(_M.c.pk).where(_M.c.org_id == bindparam("org"), _M.c.name == bindparam("name"))


def _one(col):
    return col == bindparam("pks")


def _many(col):
    return col.in_(bindparam("pks", expanding=True))


def _tags_and_aliases(match):
    """The models' tags (version_pk NULL) and aliases (with their version's pk and number), in one round trip."""
    return union_all(
        select(
            _MT.c.model_pk,
            _MT.c.key.label("key"),
            _MT.c.value,
            cast(null(), Integer).label("version_pk"),
            cast(null(), Integer).label("version"),
        ).where(match(_MT.c.model_pk)),
        select(_AL.c.model_pk, _AL.c.alias, cast(null(), Text), _AL.c.version_pk, _V.c.version)
        .select_from(_AL.join(_V, _V.c.pk == _AL.c.version_pk))
        .where(match(_AL.c.model_pk)),
    )


def _latest_with_tags(match):
    """The newest version in each stage of each model, one row per tag of it (tag_key NULL: no tags)."""
    newest = (
        select(_V.c.model_pk, func.max(_V.c.version).label("v"))
        .where(match(_V.c.model_pk))
        .group_by(_V.c.model_pk, _V.c.current_stage)
        .subquery()
    )
    return (
        select(_M.c.name, *_V.c, _VT.c.key.label("tag_key"), _VT.c.value.label("tag_value"))
        .select_from(
            _V.join(newest, and_(_V.c.model_pk == newest.c.model_pk, _V.c.version == newest.c.v))
            .join(_M, _M.c.pk == _V.c.model_pk)
            .outerjoin(_VT, _VT.c.version_pk == _V.c.pk)
        )
        .order_by(_V.c.model_pk, _V.c.version)
    )


# (statement for one pk, statement for a list): an IN list costs more to run, and most reads are of one model
Q_MODEL_TAGS_AND_ALIASES = (_tags_and_aliases(_one), _tags_and_aliases(_many))
Q_LATEST = (_latest_with_tags(_one), _latest_with_tags(_many))
Q_VERSION_TAGS = select(_VT.c.version_pk, _VT.c.key, _VT.c.value).where(_many(_VT.c.version_pk))
Q_VERSION_ALIASES = select(_AL.c.version_pk, _AL.c.alias).where(_many(_AL.c.version_pk)).order_by(_AL.c.alias)


def by_pks(statements: tuple, pks: list[int]) -> tuple[Any, dict[str, Any]]:
    """The statement of a (one pk, many pks) pair that fits ``pks``, with its parameters."""
    if len(pks) == 1:
        return statements[0], {"pks": pks[0]}
    return statements[1], {"pks": list(pks)}


INSERT_MODEL = insert(_M)
INSERT_MODEL_TAG = insert(_MT)
INSERT_VERSION = insert(_V)
INSERT_VERSION_TAG = insert(_VT)
NEXT_VERSION = (
    update(_M)
    .where(_M.c.pk == bindparam("model_pk"))
    .values(next_version=bindparam("next_number"), updated_at=bindparam("at"))
)
