"""The model registry: projects, registered models, numbered versions, tags, aliases and stages.

Everything belongs to an organisation: a registered model's name is unique within it, and another organisation's
models are simply not found. Viewers may read, members may write (``REGISTRY_READ`` / ``REGISTRY_WRITE``).
Versions are numbered 1, 2, 3… per model and numbers are never reused after a delete. Stages follow MLflow
(None / Staging / Production / Archived); moving a version into Staging or Production may archive the versions
already there. Searches take a domain query (:mod:`modelharbor.domain.query`; the MLflow dialect parses its
filter strings into one) and answer one offset :class:`Page`.
A model may belong to a project (core/projects.py): then its versions take the project's stages, and changing it
takes write access to the project. Reviews (core/reviews.py) move a version into a stage once every reviewer
approved; while one is open the version's stage does not change any other way.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, now
from modelharbor.core.filters import checked_compare, comparisons, order_clauses, tag_condition
from modelharbor.core.projects import (
    DEFAULT_STAGES,
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    canonical_stage,
    model_stages,
    project_row,
    require_model_write,
    require_project_write,
)
from modelharbor.db.engine import Database
from modelharbor.db.tables_registry import (
    ModelReviewerRow,
    ModelReviewRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelAliasRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)
from modelharbor.domain.errors import Conflict, InvalidInput, NotFound
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Page, Query

STAGES = DEFAULT_STAGES
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
STATUS_READY = "READY"

MAX_NAME = 256
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 100_000
MAX_ALIAS = 255
MAX_TEXT = 1_000_000
MAX_MODELS_PAGE, DEFAULT_MODELS_PAGE = 1000, 100
MAX_VERSIONS_PAGE, DEFAULT_VERSIONS_PAGE = 200_000, 10_000
MAX_IN = 10_000  # values per IN (…) list
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_UNSET: Any = object()


# --- entities -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_time: datetime
    last_updated_time: datetime
    current_stage: str
    description: str
    source: str
    run_id: str | None
    run_link: str | None
    model_id: str | None
    status: str
    creator_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    org_id: str
    description: str
    creation_time: datetime
    last_updated_time: datetime
    project_id: str | None
    discoverable: bool
    creator_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[tuple[str, int], ...] = ()  # (alias, version), sorted by alias
    latest_versions: tuple[ModelVersion, ...] = ()  # the newest version in each stage that has one


# --- validation ---------------------------------------------------------------------------------
def _text(value: Any, what: str, *, max_len: int = MAX_TEXT, optional: bool = True) -> str | None:
    if value is None:
        if optional:
            return None
        raise InvalidInput(f"Missing value for required parameter '{what}'.")
    if not isinstance(value, str):
        raise InvalidInput(f"Parameter '{what}' must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise InvalidInput(f"Parameter '{what}' must not contain NUL characters.")
    if len(value) > max_len:
        raise InvalidInput(f"Parameter '{what}' is {len(value)} characters long; the limit is {max_len}.")
    return value


def validate_name(name: Any, what: str = "name") -> str:
    name = _text(name, what, max_len=MAX_NAME, optional=False)
    if not name.strip():
        raise InvalidInput(f"Missing value for required parameter '{what}'.")
    if "/" in name or ":" in name:
        raise InvalidInput(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if not name.isprintable():
        raise InvalidInput(f"Invalid model name {name!r}. Names cannot contain control characters.")
    norm = posixpath.normpath(name)
    if norm != name or norm in (".", "..") or norm.startswith(".."):
        raise InvalidInput(f"Invalid model name '{name}'. Names may not be '.' or '..' or start with '..'.")
    return name


def validate_version(version: Any) -> int:
    if isinstance(version, bool) or version is None or version == "":
        raise InvalidInput("Missing value for required parameter 'version'.")
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidInput(f"Parameter 'version' must be an integer, got {version!r}.") from None
    if isinstance(version, float) and version != number:
        raise InvalidInput(f"Parameter 'version' must be an integer, got {version!r}.")
    if not 0 < number < 2**31:
        raise NotFound(f"Model Version (version={version}) not found")
    return number


def validate_alias(alias: Any) -> str:
    alias = _text(alias, "alias", max_len=MAX_ALIAS)
    if not alias:
        raise InvalidInput("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    return alias


def _validate_alias_reserved(alias: str) -> None:
    if alias.lower() == "latest":
        raise InvalidInput("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidInput(f"Version alias name '{alias}' is reserved.")


def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    key = _text(key, "key", max_len=MAX_TAG_KEY, optional=False)
    if not key or not re.fullmatch(r"[\w.\- /:]+", key) or posixpath.normpath(key) != key or key.startswith(".."):
        raise InvalidInput(
            f"Invalid tag key {key!r}: names may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colons (:) and slashes (/), and must be a normalised path."
        )
    value = _text(value, f"value of tag {key!r}", max_len=MAX_TAG_VALUE)
    return key, value or ""


def validate_tags(tags: Any) -> dict[str, str]:
    """Tags as MLflow sends them (a list of ``{key, value}``) or a mapping."""
    if tags is None:
        return {}
    if isinstance(tags, dict):
        pairs: Iterable = tags.items()
    elif isinstance(tags, list):
        pairs = []
        for t in tags:
            if not isinstance(t, dict):
                raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
            pairs.append((t.get("key"), t.get("value")))
    else:
        raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
    out: dict[str, str] = {}
    for k, v in pairs:
        k, v = validate_tag(k, v)
        out[k] = v
    return out


def _ms(dt: datetime) -> int:
    return int(aware(dt).timestamp() * 1000)


def _page_size(max_results: int | None, *, default: int, limit: int) -> int:
    if max_results is None:
        return default
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 0 < max_results <= limit:
        raise InvalidInput(f"Invalid value {max_results} for parameter 'max_results': it must be in 1..{limit}.")
    return max_results


# --- the service --------------------------------------------------------------------------------
class RegistryService:
    def __init__(self, db: Database, *, logged_model_run: Callable[[Principal, str], str | None] | None = None):
        self.db = db
        # Finds the run a logged model came from: versions registered from ``models:/m-…`` carry that run.
        self._logged_model_run = logged_model_run

    @property
    def _dialect(self) -> str:
        return self.db.engine.dialect.name

    # --- registered models ----------------------------------------------------------------------
    def create_model(
        self,
        principal: Principal,
        name: Any,
        *,
        description: Any = None,
        tags: Any = None,
        project_id: Any = None,
        discoverable: bool = False,
    ) -> RegisteredModel:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        name = validate_name(name)
        description = _text(description, "description") or ""
        tags = validate_tags(tags)
        with self.db.uow() as s:
            if project_id is not None:
                require_project_write(s, principal, project_row(s, principal, project_id))
            if self._find_model(s, principal, name) is not None:
                raise Conflict(f"Registered Model (name={name}) already exists.")
            t = now()
            c = s.connection()  # Core inserts of prebuilt statements: a create is a hot path (bench/registry.py)
            try:
                pk = c.execute(
                    _INSERT_MODEL,
                    {
                        "org_id": principal.org_id,
                        "name": name,
                        "description": description,
                        "project_id": project_id,
                        "discoverable": bool(discoverable),
                        "creator_id": principal.user_id,
                        "next_version": 1,
                        "created_at": t,
                        "updated_at": t,
                    },
                ).inserted_primary_key[0]
            except IntegrityError:
                raise Conflict(f"Registered Model (name={name}) already exists.") from None
            if tags:
                c.execute(_INSERT_MODEL_TAG, [{"model_pk": pk, "key": k, "value": v} for k, v in tags.items()])
            # a new model has these tags and nothing else: no aliases, no versions
            return RegisteredModel(
                name=name,
                org_id=principal.org_id,
                description=description,
                creation_time=aware(t),
                last_updated_time=aware(t),
                project_id=project_id,
                discoverable=bool(discoverable),
                creator_id=principal.user_id,
                tags=dict(sorted(tags.items())),
            )

    def get_model(self, principal: Principal, name: Any) -> RegisteredModel:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        with self.db.uow(readonly=True) as s:
            return self._models(s, [self._model_row(s, principal, name, core=True)])[0]

    def rename_model(self, principal: Principal, name: Any, new_name: Any) -> RegisteredModel:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        new_name = validate_name(new_name, "new_name")
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            if new_name != row.name:
                if self._find_model(s, principal, new_name) is not None:
                    raise Conflict(f"Registered Model (name={new_name}) already exists.")
                row.name = new_name
                row.updated_at = now()
                try:
                    s.flush()
                except IntegrityError:
                    raise Conflict(f"Registered Model (name={new_name}) already exists.") from None
            return self._models(s, [row])[0]

    def update_model(
        self, principal: Principal, name: Any, *, description: Any = _UNSET, discoverable: Any = _UNSET
    ) -> RegisteredModel:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        if description is not _UNSET:
            description = _text(description, "description") or ""
        if discoverable is not _UNSET and not isinstance(discoverable, bool):
            raise InvalidInput("Parameter 'discoverable' must be a boolean.")
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            if description is not _UNSET:
                row.description = description
            if discoverable is not _UNSET:
                row.discoverable = discoverable
            row.updated_at = now()
            s.flush()
            return self._models(s, [row])[0]

    def delete_model(self, principal: Principal, name: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            vpks = select(ModelVersionRow.pk).where(ModelVersionRow.model_pk == row.pk)
            # explicit deletes: SQLite only cascades when foreign keys are on, and order matters for PostgreSQL
            s.execute(delete(RegisteredModelAliasRow).where(RegisteredModelAliasRow.model_pk == row.pk))
            s.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk.in_(vpks)))
            _delete_reviews(s, select(ModelReviewRow.id).where(ModelReviewRow.version_pk.in_(vpks)))
            s.execute(delete(ModelVersionRow).where(ModelVersionRow.model_pk == row.pk))
            s.execute(delete(RegisteredModelTagRow).where(RegisteredModelTagRow.model_pk == row.pk))
            s.delete(row)
            s.flush()

    def search_models(
        self, principal: Principal, query: Query = Query(), *, max_results: int | None = None, offset: int = 0
    ) -> Page[RegisteredModel]:
        """The organisation's models matching ``query``: ``name`` and ``tags.<key>`` comparisons; ordered by name,
        timestamp, last_updated_timestamp or creation_timestamp (then by name)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = _page_size(max_results, default=DEFAULT_MODELS_PAGE, limit=MAX_MODELS_PAGE)
        where = [RegisteredModelRow.org_id == principal.org_id]
        for c in comparisons(query, "registered model searches"):
            if c.name == "name":
                where.append(checked_compare(RegisteredModelRow.name, c, self._dialect))
            elif c.kind == "tags":
                where.append(
                    tag_condition(
                        RegisteredModelTagRow, RegisteredModelTagRow.model_pk, RegisteredModelRow.pk, c, self._dialect
                    )
                )
            else:
                raise InvalidInput(
                    f"Invalid filter attribute {c.name!r} for registered models: use name or tags.<key>."
                )
        order = order_clauses(
            query.order,
            {
                "name": RegisteredModelRow.name,
                "timestamp": RegisteredModelRow.updated_at,
                "last_updated_timestamp": RegisteredModelRow.updated_at,
                "creation_timestamp": RegisteredModelRow.created_at,
            },
        )
        q = (
            select(*_M.c)  # Core rows: no ORM objects to build for a page of up to 1000 models
            .where(*where)
            .order_by(*order, RegisteredModelRow.name.asc(), RegisteredModelRow.pk)
            .offset(offset)
            .limit(size + 1)
        )
        with self.db.uow(readonly=True) as s:
            rows = s.execute(q).all()
            more = len(rows) > size
            return Page(tuple(self._models(s, rows[:size])), offset + size if more else None)

    def latest_versions(self, principal: Principal, name: Any, stages: Any = None) -> list[ModelVersion]:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        if stages is not None and not isinstance(stages, list):
            raise InvalidInput("Parameter 'stages' must be a list of stage names.")
        with self.db.uow(readonly=True) as s:
            row = self._model_row(s, principal, name)
            known = model_stages(s, row)
            wanted = [canonical_stage(known, x) for x in stages] if stages else list(known)
            latest = self._latest(s, [row.pk]).get(row.pk, [])
            return [v for v in latest if v.current_stage in wanted]

    def list_models(
        self,
        principal: Principal,
        *,
        project_id: Any = None,
        name_contains: Any = None,
        discoverable: bool | None = None,
        order: tuple[str, bool] | None = None,
        max_results: int | None = None,
        offset: int = 0,
        default_page: int = 25,
    ) -> Page[RegisteredModel]:
        """Domino's listing: optionally one project's models, names containing a pattern (any case), newest-first
        or by name; ``order`` is (``name``/``created``/``updated``, descending)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = _page_size(max_results, default=default_page, limit=MAX_MODELS_PAGE)
        M = RegisteredModelRow
        where = [M.org_id == principal.org_id]
        if project_id is not None:
            with self.db.uow(readonly=True) as s:
                project_row(s, principal, project_id)
            where.append(M.project_id == project_id)
        if name_contains:
            pattern = _text(name_contains, "searchPattern", max_len=MAX_NAME)
            where.append(func.lower(M.name).contains(pattern.lower(), autoescape=True))
        if discoverable is not None:
            where.append(M.discoverable.is_(discoverable))
        key, desc = order or ("name", False)
        col = {"name": M.name, "created": M.created_at, "updated": M.updated_at}[key]
        q = select(M).where(*where).order_by(col.desc() if desc else col.asc(), M.pk).offset(offset).limit(size + 1)
        with self.db.uow(readonly=True) as s:
            rows = list(s.scalars(q))
            more = len(rows) > size
            return Page(tuple(self._models(s, rows[:size])), offset + size if more else None)

    def set_model_tag(self, principal: Principal, name: Any, key: Any, value: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        key, value = validate_tag(key, value)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            tag = s.get(RegisteredModelTagRow, (row.pk, key))
            if tag is None:
                s.add(RegisteredModelTagRow(model_pk=row.pk, key=key, value=value))
            else:
                tag.value = value
            row.updated_at = now()
            s.flush()

    def delete_model_tag(self, principal: Principal, name: Any, key: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        key = _text(key, "key", max_len=MAX_TAG_KEY, optional=False)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            s.execute(
                delete(RegisteredModelTagRow).where(
                    RegisteredModelTagRow.model_pk == row.pk, RegisteredModelTagRow.key == key
                )
            )

    # --- aliases --------------------------------------------------------------------------------
    def set_alias(self, principal: Principal, name: Any, alias: Any, version: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        alias = validate_alias(alias)
        _validate_alias_reserved(alias)
        number = validate_version(version)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            existing = s.get(RegisteredModelAliasRow, (row.pk, alias))
            if existing is None:
                s.add(RegisteredModelAliasRow(model_pk=row.pk, alias=alias, version_pk=v.pk))
            else:
                existing.version_pk = v.pk
            row.updated_at = now()
            s.flush()

    def delete_alias(self, principal: Principal, name: Any, alias: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        alias = validate_alias(alias)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            s.execute(
                delete(RegisteredModelAliasRow).where(
                    RegisteredModelAliasRow.model_pk == row.pk, RegisteredModelAliasRow.alias == alias
                )
            )

    def get_version_by_alias(self, principal: Principal, name: Any, alias: Any) -> ModelVersion:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        alias = validate_alias(alias)
        with self.db.uow(readonly=True) as s:
            row = self._model_row(s, principal, name)
            a = s.get(RegisteredModelAliasRow, (row.pk, alias))
            if a is None:
                raise NotFound(f"Registered model alias {alias} not found.")
            return self._versions(s, [(row.name, s.get(ModelVersionRow, a.version_pk))])[0]

    # --- versions -------------------------------------------------------------------------------
    def create_version(
        self,
        principal: Principal,
        name: Any,
        source: Any,
        *,
        run_id: Any = None,
        tags: Any = None,
        run_link: Any = None,
        description: Any = None,
        model_id: Any = None,
    ) -> ModelVersion:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        source = _text(source, "source", optional=False)
        run_id = _text(run_id, "run_id", max_len=64) or None
        run_link = _text(run_link, "run_link") or None
        model_id = _text(model_id, "model_id", max_len=64) or None
        description = _text(description, "description") or ""
        tags = validate_tags(tags)
        if model_id and not run_id and self._logged_model_run is not None:
            try:
                run_id = self._logged_model_run(principal, model_id)
            except NotFound:
                raise InvalidInput(
                    f"logged model {model_id!r} does not exist", code="RESOURCE_DOES_NOT_EXIST"
                ) from None
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True, core=True)
            number = row.next_version
            t = now()
            c = s.connection()  # Core statements, prebuilt: a create is a hot path (bench/registry.py)
            try:
                version_pk = c.execute(
                    _INSERT_VERSION,
                    {
                        "model_pk": row.pk,
                        "version": number,
                        "source": source,
                        "run_id": run_id,
                        "run_link": run_link,
                        "model_id": model_id,
                        "status": STATUS_READY,
                        "description": description,
                        "current_stage": STAGE_NONE,
                        "creator_id": principal.user_id,
                        "created_at": t,
                        "updated_at": t,
                    },
                ).inserted_primary_key[0]
            except IntegrityError:  # a concurrent writer took the number (PostgreSQL without the lock)
                raise Conflict(f"Model Version (name={row.name}, version={number}) already exists; retry.") from None
            c.execute(_NEXT_VERSION, {"model_pk": row.pk, "next_number": number + 1, "at": t})
            if tags:
                c.execute(
                    _INSERT_VERSION_TAG, [{"version_pk": version_pk, "key": k, "value": v} for k, v in tags.items()]
                )
            # a new version has these tags and no aliases yet
            return ModelVersion(
                name=row.name,
                version=number,
                creation_time=aware(t),
                last_updated_time=aware(t),
                current_stage=STAGE_NONE,
                description=description,
                source=source,
                run_id=run_id,
                run_link=run_link,
                model_id=model_id,
                status=STATUS_READY,
                creator_id=principal.user_id,
                tags=dict(sorted(tags.items())),
            )

    def get_version(self, principal: Principal, name: Any, version: Any) -> ModelVersion:
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow(readonly=True) as s:
            row = self._model_row(s, principal, name)
            return self._versions(s, [(row.name, self._version_row(s, row, number))])[0]

    def download_uri(self, principal: Principal, name: Any, version: Any) -> str:
        return self.get_version(principal, name, version).source

    def update_version(self, principal: Principal, name: Any, version: Any, *, description: Any) -> ModelVersion:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        description = _text(description, "description") or ""
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            v.description = description
            v.updated_at = now()
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def update_version_fields(
        self,
        principal: Principal,
        name: Any,
        version: Any,
        *,
        description: Any = _UNSET,
        stage: Any = _UNSET,
        tags: Any = _UNSET,
    ) -> ModelVersion:
        """Domino's version update, in one transaction: description, stage (one of the project's stages; not while
        a review is open) and tags (merged: each given key is set)."""
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        if description is _UNSET and stage is _UNSET and tags is _UNSET:
            raise InvalidInput("Give at least one of modelVersionDescription, stage or tags.")
        if description is not _UNSET:
            description = _text(description, "modelVersionDescription") or ""
        new_tags = validate_tags(tags) if tags is not _UNSET else {}
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            if stage is not _UNSET:
                stage = canonical_stage(model_stages(s, row), stage)
                if stage != v.current_stage:
                    require_no_open_review(s, v)
                    v.current_stage = stage
            if description is not _UNSET:
                v.description = description
            for k, val in new_tags.items():
                tag = s.get(ModelVersionTagRow, (v.pk, k))
                if tag is None:
                    s.add(ModelVersionTagRow(version_pk=v.pk, key=k, value=val))
                else:
                    tag.value = val
            v.updated_at = row.updated_at = now()
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def delete_version(self, principal: Principal, name: Any, version: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            s.execute(delete(RegisteredModelAliasRow).where(RegisteredModelAliasRow.version_pk == v.pk))
            s.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk == v.pk))
            _delete_reviews(s, select(ModelReviewRow.id).where(ModelReviewRow.version_pk == v.pk))
            s.delete(v)
            row.updated_at = now()
            s.flush()

    def transition_stage(
        self, principal: Principal, name: Any, version: Any, stage: Any, *, archive_existing_versions: Any = False
    ) -> ModelVersion:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        if archive_existing_versions in (None, ""):
            archive_existing_versions = False
        if isinstance(archive_existing_versions, str) and archive_existing_versions.lower() in ("true", "false"):
            archive_existing_versions = archive_existing_versions.lower() == "true"
        if not isinstance(archive_existing_versions, bool):
            raise InvalidInput("Parameter 'archive_existing_versions' must be a boolean.")
        if archive_existing_versions and stage not in ACTIVE_STAGES:
            raise InvalidInput(
                f"Model version transition cannot archive existing model versions because '{stage}' is not an "
                f"Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}."
            )
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            stage = canonical_stage(model_stages(s, row), stage)
            if archive_existing_versions and STAGE_ARCHIVED not in model_stages(s, row):
                raise InvalidInput("This model's project has no 'Archived' stage to archive existing versions into.")
            if stage != v.current_stage:
                require_no_open_review(s, v)
            t = now()
            if archive_existing_versions:
                for other in s.scalars(
                    select(ModelVersionRow).where(
                        ModelVersionRow.model_pk == row.pk,
                        ModelVersionRow.version != number,
                        ModelVersionRow.current_stage == stage,
                    )
                ):
                    require_no_open_review(s, other)
                    other.current_stage = STAGE_ARCHIVED
                    other.updated_at = t
            v.current_stage = stage
            v.updated_at = t
            row.updated_at = t
            s.flush()
            return self._versions(s, [(row.name, v)])[0]

    def set_version_tag(self, principal: Principal, name: Any, version: Any, key: Any, value: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        key, value = validate_tag(key, value)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            tag = s.get(ModelVersionTagRow, (v.pk, key))
            if tag is None:
                s.add(ModelVersionTagRow(version_pk=v.pk, key=key, value=value))
            else:
                tag.value = value
            v.updated_at = now()
            s.flush()

    def delete_version_tag(self, principal: Principal, name: Any, version: Any, key: Any) -> None:
        require(principal, Action.REGISTRY_WRITE, principal.org_id, what="registry")
        number = validate_version(version)
        key = _text(key, "key", max_len=MAX_TAG_KEY, optional=False)
        with self.db.uow() as s:
            row = self._model_row(s, principal, name, lock=True)
            v = self._version_row(s, row, number)
            s.execute(
                delete(ModelVersionTagRow).where(ModelVersionTagRow.version_pk == v.pk, ModelVersionTagRow.key == key)
            )

    def list_versions(
        self, principal: Principal, name: Any, *, offset: int = 0, limit: int = 20, newest_first: bool = True
    ) -> tuple[list[ModelVersion], int]:
        """One model's versions by number, offset-paged; also returns how many there are."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        V = ModelVersionRow
        with self.db.uow(readonly=True) as s:
            row = self._model_row(s, principal, name)
            total = s.scalar(select(func.count()).select_from(V).where(V.model_pk == row.pk))
            rows = s.scalars(
                select(V)
                .where(V.model_pk == row.pk)
                .order_by(V.version.desc() if newest_first else V.version.asc())
                .offset(offset)
                .limit(limit)
            ).all()
            return self._versions(s, [(row.name, v) for v in rows]), total

    def search_versions(
        self, principal: Principal, query: Query = Query(), *, max_results: int | None = None, offset: int = 0
    ) -> Page[ModelVersion]:
        """The organisation's versions matching ``query``: name, run_id (also IN / NOT IN), source_path,
        version_number, current_stage and ``tags.<key>`` comparisons; ordered by those attributes or timestamps
        (then by name, newest version first)."""
        require(principal, Action.REGISTRY_READ, principal.org_id, what="registry")
        size = _page_size(max_results, default=DEFAULT_VERSIONS_PAGE, limit=MAX_VERSIONS_PAGE)
        M, V = RegisteredModelRow, ModelVersionRow
        where = [M.org_id == principal.org_id]
        d = self._dialect
        for c in comparisons(query, "model version searches"):
            key = c.name
            if key == "name":
                where.append(checked_compare(M.name, c, d))
            elif key == "run_id":
                where.append(checked_compare(V.run_id, c, d, kind="in"))
            elif key in ("source_path", "source"):
                where.append(checked_compare(V.source, c, d))
            elif key in ("version_number", "version"):
                where.append(checked_compare(V.version, c, d, kind="int"))
            elif key in ("current_stage", "stage"):
                where.append(checked_compare(V.current_stage, c, d))
            elif c.kind == "tags":
                where.append(tag_condition(ModelVersionTagRow, ModelVersionTagRow.version_pk, V.pk, c, d))
            else:
                raise InvalidInput(
                    f"Invalid filter attribute {key!r} for model versions: use name, run_id, source_path, "
                    "version_number or tags.<key>."
                )
        order = order_clauses(
            query.order,
            {
                "name": M.name,
                "version_number": V.version,
                "version": V.version,
                "creation_timestamp": V.created_at,
                "timestamp": V.created_at,
                "last_updated_timestamp": V.updated_at,
                "run_id": V.run_id,
            },
        )
        q = (
            select(M.name, V)
            .join(M, M.pk == V.model_pk)
            .where(*where)
            .order_by(*order, M.name.asc(), V.version.desc())
            .offset(offset)
            .limit(size + 1)
        )
        with self.db.uow(readonly=True) as s:
            rows = [(r[0], r[1]) for r in s.execute(q)]
            more = len(rows) > size
            return Page(tuple(self._versions(s, rows[:size])), offset + size if more else None)

    # --- helpers --------------------------------------------------------------------------------
    def _find_model(self, s: Session, principal: Principal, name: str) -> int | None:
        """The pk of the organisation's model called ``name``, or None."""
        s.flush()  # the statement below runs on the connection, past the session's autoflush
        return s.connection().execute(_Q_MODEL_PK, {"org": principal.org_id, "name": name}).scalar()

    def _model_row(
        self, s: Session, principal: Principal, name: Any, *, lock: bool = False, core: bool = False
    ) -> RegisteredModelRow:
        """The model called ``name`` (locked for a write, which also checks write access). ``core``: a read-only
        Core row with the same attributes instead of an ORM row, which is cheaper; for callers that change nothing
        through it."""
        name = _text(name, "name", optional=False)
        if not name or not name.strip():
            raise InvalidInput("Missing value for required parameter 'name'.")
        params = {"org": principal.org_id, "name": name}
        if core:
            s.flush()
            row = s.connection().execute(_Q_MODEL_LOCKED if lock else _Q_MODEL, params).first()
        else:
            row = s.scalar(_Q_MODEL_ROW_LOCKED if lock else _Q_MODEL_ROW, params)
        if row is None:
            raise NotFound(f"Registered Model with name={name} not found")
        if lock:  # a write: a model in a project also takes write access to the project
            require_model_write(s, principal, row)
        return row

    def _version_row(self, s: Session, model: RegisteredModelRow, number: int) -> ModelVersionRow:
        v = s.scalar(
            select(ModelVersionRow).where(ModelVersionRow.model_pk == model.pk, ModelVersionRow.version == number)
        )
        if v is None:
            raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
        return v

    def _latest(
        self, s: Session, model_pks: list[int], *, aliases: dict[int, list[str]] | None = None
    ) -> dict[int, list[ModelVersion]]:
        """The newest version in each stage of each model. ``aliases``: each version pk's aliases, when the caller
        has already read them (saves a query)."""
        if not model_pks:
            return {}
        s.flush()  # the statements run on the connection, past the session's autoflush
        rows: dict[int, Any] = {}  # version pk -> its row, in model and version order
        tags: dict[int, dict[str, str]] = {}
        for r in s.connection().execute(*_by_pks(_Q_LATEST, model_pks)):
            rows.setdefault(r.pk, r)
            if r.tag_key is not None:
                tags.setdefault(r.pk, {})[r.tag_key] = r.tag_value
        versions = [(r.name, r) for r in rows.values()]
        out: dict[int, list[ModelVersion]] = {}
        for (_, r), entity in zip(versions, self._versions(s, versions, tags=tags, aliases=aliases), strict=True):
            out.setdefault(r.model_pk, []).append(entity)
        return out

    def _versions(
        self,
        s: Session,
        rows: list[tuple[str, ModelVersionRow]],
        *,
        tags: dict[int, dict[str, str]] | None = None,
        aliases: dict[int, list[str]] | None = None,
    ) -> list[ModelVersion]:
        """Entities for (model name, version row) pairs (ORM or Core rows), with their tags and aliases, read here
        unless the caller has them (version pk -> tags; version pk -> aliases sorted by name)."""
        pks = [v.pk for _, v in rows]
        if pks and (tags is None or aliases is None):
            s.flush()
            c = s.connection()
            # a page may hold more versions than a statement may take parameters (SQLite: 32,766): in slices
            slices = [pks[i : i + MAX_IN] for i in range(0, len(pks), MAX_IN)]
            if tags is None:
                tags = {}
                for part in slices:
                    for version_pk, key, value in c.execute(_Q_VERSION_TAGS, {"pks": part}):
                        tags.setdefault(version_pk, {})[key] = value
            if aliases is None:
                aliases = {}
                for part in slices:
                    for version_pk, alias in c.execute(_Q_VERSION_ALIASES, {"pks": part}):
                        aliases.setdefault(version_pk, []).append(alias)
        tags = tags or {}
        aliases = aliases or {}
        return [
            ModelVersion(
                name=name,
                version=v.version,
                creation_time=aware(v.created_at),
                last_updated_time=aware(v.updated_at),
                current_stage=v.current_stage,
                description=v.description or "",
                source=v.source,
                run_id=v.run_id,
                run_link=v.run_link,
                model_id=v.model_id,
                status=v.status,
                creator_id=v.creator_id,
                tags=dict(sorted(tags.get(v.pk, {}).items())),
                aliases=tuple(aliases.get(v.pk, ())),
            )
            for name, v in rows
        ]

    def _models(self, s: Session, rows: list[RegisteredModelRow]) -> list[RegisteredModel]:
        """Entities for model rows (ORM or Core rows) with their tags, aliases and latest versions."""
        pks = [r.pk for r in rows]
        tags: dict[int, dict[str, str]] = {}
        aliases: dict[int, list[tuple[str, int]]] = {}
        version_aliases: dict[int, list[str]] = {}  # every alias of these models is on one of their versions
        if pks:
            s.flush()  # the statements run on the connection, past the session's autoflush
            for model_pk, key, value, version_pk, number in s.connection().execute(
                *_by_pks(_Q_MODEL_TAGS_AND_ALIASES, pks)
            ):
                if version_pk is None:
                    tags.setdefault(model_pk, {})[key] = value
                else:
                    aliases.setdefault(model_pk, []).append((key, number))
                    version_aliases.setdefault(version_pk, []).append(key)
            for found in (*aliases.values(), *version_aliases.values()):
                found.sort()
        latest = self._latest(s, pks, aliases=version_aliases)
        return [
            RegisteredModel(
                name=r.name,
                org_id=r.org_id,
                description=r.description or "",
                creation_time=aware(r.created_at),
                last_updated_time=aware(r.updated_at),
                project_id=r.project_id,
                discoverable=r.discoverable,
                creator_id=r.creator_id,
                tags=dict(sorted(tags.get(r.pk, {}).items())),
                aliases=tuple(aliases.get(r.pk, ())),
                latest_versions=tuple(latest.get(r.pk, ())),
            )
            for r in rows
        ]


def require_no_open_review(s: Session, v: ModelVersionRow) -> None:
    open_review = s.scalar(
        select(ModelReviewRow.id).where(ModelReviewRow.version_pk == v.pk, ModelReviewRow.status == "Open").limit(1)
    )
    if open_review:
        raise InvalidInput(
            f"Version {v.version} has an open review ({open_review}): its stage changes when the review is "
            "approved; cancel the review to change the stage another way."
        )


def _delete_reviews(s: Session, review_ids) -> None:
    s.execute(delete(ModelReviewerRow).where(ModelReviewerRow.review_id.in_(review_ids)))
    s.execute(delete(ModelReviewRow).where(ModelReviewRow.id.in_(review_ids)))


def ms(dt: datetime) -> int:
    """A datetime as MLflow's milliseconds since the epoch."""
    return _ms(dt)


# --- prebuilt statements of the hot paths (get, search, create) ---------------------------------------------------
# Built once, so SQLAlchemy reuses their cache key and compiled SQL: on SQLite, building and keying a statement costs
# several times more than running it (bench/registry.py). They return Core rows, whose attributes are named like the
# ORM rows' (pk, name, version, …), and run on the unit of work's connection.
_M = RegisteredModelRow.__table__
_V = ModelVersionRow.__table__
_MT = RegisteredModelTagRow.__table__
_VT = ModelVersionTagRow.__table__
_AL = RegisteredModelAliasRow.__table__
_BY_NAME = (RegisteredModelRow.org_id == bindparam("org"), RegisteredModelRow.name == bindparam("name"))
_Q_MODEL_ROW = select(RegisteredModelRow).where(*_BY_NAME)
_Q_MODEL_ROW_LOCKED = _Q_MODEL_ROW.with_for_update()
_Q_MODEL = select(_M).where(_M.c.org_id == bindparam("org"), _M.c.name == bindparam("name"))
_Q_MODEL_LOCKED = _Q_MODEL.with_for_update()
_Q_MODEL_PK = select(_M.c.pk).where(_M.c.org_id == bindparam("org"), _M.c.name == bindparam("name"))


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
_Q_MODEL_TAGS_AND_ALIASES = (_tags_and_aliases(_one), _tags_and_aliases(_many))
_Q_LATEST = (_latest_with_tags(_one), _latest_with_tags(_many))
_Q_VERSION_TAGS = select(_VT.c.version_pk, _VT.c.key, _VT.c.value).where(_many(_VT.c.version_pk))
_Q_VERSION_ALIASES = select(_AL.c.version_pk, _AL.c.alias).where(_many(_AL.c.version_pk)).order_by(_AL.c.alias)


def _by_pks(statements: tuple, pks: list[int]) -> tuple[Any, dict[str, Any]]:
    """The statement of a (one pk, many pks) pair that fits ``pks``, with its parameters."""
    if len(pks) == 1:
        return statements[0], {"pks": pks[0]}
    return statements[1], {"pks": list(pks)}


_INSERT_MODEL = insert(_M)
_INSERT_MODEL_TAG = insert(_MT)
_INSERT_VERSION = insert(_V)
_INSERT_VERSION_TAG = insert(_VT)
_NEXT_VERSION = (
    update(_M)
    .where(_M.c.pk == bindparam("model_pk"))
    .values(next_version=bindparam("next_number"), updated_at=bindparam("at"))
)
