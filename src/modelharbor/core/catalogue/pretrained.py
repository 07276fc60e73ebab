"""The pretrained-model catalogue: models with a framework, a domain, a licence and (optionally) data.

A model's data is a file of the files service, so the same weights can also be fetched by signed link, ranged
download or the CLI. Models are soft-deleted (``deletion_time``), can be reinstated, or deleted for good.
Frameworks and licences are reference data shared by every organisation; domains are seeded and read-only.
Models belong to an organisation: everyone in it may read them, admins may change them.

A change answers in a fixed order: the caller may not make it (403), then no such object (404), then a problem
with its input (400): every field's, in one :class:`FieldErrors` (as Django REST Framework does), the body's own
faults as the edge found them (``faults`` of the typed input: wrong types, blank or over-long texts, required fields
missing) merged with those found here (no such framework, domain or licence), storing nothing. The ``…_from`` methods take the input as ``read``, a function called once the caller and the
object have passed, which returns the input or raises the request's own error (a body that is not JSON, too large,
without a filename): an edge that reads its request itself keeps that order with one call (UFDL, as Django REST
Framework does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, now
from modelharbor.core.files import ByteRange, FileService, to_record
from modelharbor.core.filters import FilterField, compile_query
from modelharbor.db.engine import Database
from modelharbor.db.tables import (
    DomainRow,
    FileRow,
    FrameworkRow,
    LicenceRow,
    PretrainedModelRow,
    UserNumberRow,
)
from modelharbor.domain.entities import Domain, FileRecord, Framework, Licence, PretrainedModel
from modelharbor.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelharbor.domain.inputs import Faults, FrameworkIn, LicenceIn, PretrainedModelIn, SubdescriptorEdit
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.domain.query import Query

CONTEXT = "catalogue"
REQUIRED = "This field is required."
NON_FIELD = "non_field_errors"
SUBDESCRIPTORS = ("permissions", "conditions", "limitations", "domains")
MODEL_ORDER = ("name", "url", "description", "metadata", "framework", "domain", "licence")
MODEL_REQUIRED = ("name", "url", "framework", "domain", "licence")
MODEL_TEXT: dict[str, dict[str, Any]] = {
    "name": {"max_len": 200, "blank": False},
    "url": {"max_len": 200, "blank": False},
    "description": {"max_len": None, "blank": True},
    "metadata": {"max_len": None, "blank": True},
}
FRAMEWORK_TEXT = {"name": 32, "version": 32}
LICENCE_TEXT = {"name": 100, "url": 200}
EDIT_ORDER = ("method", "type", "names")


class FieldErrors(InvalidInput):
    """Per-field validation messages (``details['fields']``: field → list of messages)."""

    code = "INVALID_FIELDS"

    def __init__(self, fields: dict[str, list[str]]):
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        super().__init__(summary, fields=fields)


def _framework(r: FrameworkRow) -> Framework:
    return Framework(r.pk, r.name, r.version)


def _licence(r: LicenceRow) -> Licence:
    return Licence(
        r.pk,
        r.name,
        r.url,
        tuple(r.permissions or ()),
        tuple(r.conditions or ()),
        tuple(r.limitations or ()),
        tuple(r.domains or ()),
    )


def _domain(r: DomainRow) -> Domain:
    return Domain(r.pk, r.name, r.description)


MODEL_FIELDS = {
    "pk": FilterField(PretrainedModelRow.pk, "int"),
    "name": FilterField(PretrainedModelRow.name, "str"),
    "url": FilterField(PretrainedModelRow.url, "str"),
    "description": FilterField(PretrainedModelRow.description, "str"),
    "metadata": FilterField(PretrainedModelRow.meta, "str"),
    "creation_time": FilterField(PretrainedModelRow.creation_time, "datetime"),
    "deletion_time": FilterField(PretrainedModelRow.deletion_time, "datetime"),
    "creator": FilterField(UserNumberRow.number, "int"),
    "framework": FilterField(PretrainedModelRow.framework_pk, "int"),
    "framework.pk": FilterField(FrameworkRow.pk, "int"),
    "framework.name": FilterField(FrameworkRow.name, "str"),
    "framework.version": FilterField(FrameworkRow.version, "str"),
    "domain": FilterField(PretrainedModelRow.domain_pk, "int"),
    "domain.pk": FilterField(DomainRow.pk, "int"),
    "domain.name": FilterField(DomainRow.name, "str"),
    "domain.description": FilterField(DomainRow.description, "str"),
    "licence": FilterField(PretrainedModelRow.licence_pk, "int"),
    "licence.pk": FilterField(LicenceRow.pk, "int"),
    "licence.name": FilterField(LicenceRow.name, "str"),
    "data": FilterField(PretrainedModelRow.file_id, "ref"),
}
FRAMEWORK_FIELDS = {
    "pk": FilterField(FrameworkRow.pk, "int"),
    "name": FilterField(FrameworkRow.name, "str"),
    "version": FilterField(FrameworkRow.version, "str"),
}
LICENCE_FIELDS = {
    "pk": FilterField(LicenceRow.pk, "int"),
    "name": FilterField(LicenceRow.name, "str"),
    "url": FilterField(LicenceRow.url, "str"),
}
DOMAIN_FIELDS = {
    "pk": FilterField(DomainRow.pk, "int"),
    "name": FilterField(DomainRow.name, "str"),
    "description": FilterField(DomainRow.description, "str"),
}


class CatalogueService:
    def __init__(self, db: Database, files: FileService, *, max_data_size: int):
        self.db = db
        self.files = files
        self.max_data_size = max_data_size

    # --- reading models ----------------------------------------------------------------------
    def _model_query(self):
        return (
            select(PretrainedModelRow, FrameworkRow, DomainRow, LicenceRow, FileRow, UserNumberRow.number)
            .join(FrameworkRow, FrameworkRow.pk == PretrainedModelRow.framework_pk)
            .join(DomainRow, DomainRow.pk == PretrainedModelRow.domain_pk)
            .join(LicenceRow, LicenceRow.pk == PretrainedModelRow.licence_pk)
            .outerjoin(FileRow, FileRow.id == PretrainedModelRow.file_id)
            .outerjoin(UserNumberRow, UserNumberRow.user_id == PretrainedModelRow.creator_id)
        )

    @staticmethod
    def _entity(row) -> PretrainedModel:
        m, fw, dom, lic, f, number = row
        return PretrainedModel(
            pk=m.pk,
            org_id=m.org_id,
            name=m.name,
            url=m.url,
            description=m.description or "",
            metadata=m.meta or "",
            framework=_framework(fw),
            domain=_domain(dom),
            licence=_licence(lic),
            file=to_record(f) if f is not None else None,
            creator_id=m.creator_id,
            creator_number=number,
            creation_time=aware(m.creation_time),
            deletion_time=aware(m.deletion_time) if m.deletion_time else None,
        )

    def _load(self, s: Session, principal: Principal, pk: int, action: Action) -> PretrainedModel:
        if action is not Action.CATALOGUE_READ:  # permission first: a non-admin learns nothing about pks
            require(principal, action, principal.org_id, what="catalogue")
        if not 0 < pk < 2**31:
            raise NotFound(f"pretrained model {pk} not found")
        row = s.execute(self._model_query().where(PretrainedModelRow.pk == pk)).first()
        if row is None:
            raise NotFound(f"pretrained model {pk} not found")
        require(principal, action, row[0].org_id, what=f"pretrained model {pk}")
        return self._entity(row)

    def list_models(self, principal: Principal, query: Query | None = None) -> list[PretrainedModel]:
        """The organisation's models matching ``query`` (fields: :data:`MODEL_FIELDS`), by pk after its ordering."""
        require(principal, Action.CATALOGUE_READ, principal.org_id, what="catalogue")
        compiled = compile_query(query, MODEL_FIELDS, dialect=self.db.engine.dialect.name)
        q = self._model_query().where(PretrainedModelRow.org_id == principal.org_id, *compiled.where)
        if not compiled.include_inactive:
            q = q.where(PretrainedModelRow.deletion_time.is_(None))
        q = q.order_by(*compiled.order_by, PretrainedModelRow.pk)
        with self.db.uow(readonly=True) as s:
            return [self._entity(r) for r in s.execute(q)]

    def get_model(self, principal: Principal, pk: int) -> PretrainedModel:
        with self.db.uow(readonly=True) as s:
            return self._load(s, principal, pk, Action.CATALOGUE_READ)

    # --- writing models ----------------------------------------------------------------------
    def create_model(self, principal: Principal, fields: PretrainedModelIn) -> PretrainedModel:
        require(principal, Action.CATALOGUE_WRITE, principal.org_id, what="catalogue")
        with self.db.uow() as s:
            values = self._validate(s, fields, partial=False)
            row = PretrainedModelRow(
                org_id=principal.org_id,
                creator_id=principal.user_id,
                creation_time=now(),
                deletion_time=None,
                file_id=None,
                **values,
            )
            s.add(row)
            self._ensure_number(s, principal.user_id)
            s.flush()
            return self._load(s, principal, row.pk, Action.CATALOGUE_READ)

    def update_model(
        self, principal: Principal, pk: int, fields: PretrainedModelIn, *, partial: bool
    ) -> PretrainedModel:
        return self.update_model_from(principal, pk, lambda: fields, partial=partial)

    def update_model_from(
        self, principal: Principal, pk: int, read: Callable[[], PretrainedModelIn], *, partial: bool
    ) -> PretrainedModel:
        """:meth:`update_model` with the fields ``read()`` gives once the caller may change model ``pk`` and it
        exists (the module docstring)."""
        with self.db.uow() as s:
            self._load(s, principal, pk, Action.CATALOGUE_WRITE)
            values = self._validate(s, read(), partial=partial)
            row = s.get(PretrainedModelRow, pk)
            for k, v in values.items():
                setattr(row, k, v)
            s.flush()
            return self._load(s, principal, pk, Action.CATALOGUE_READ)

    def soft_delete(self, principal: Principal, pk: int) -> PretrainedModel:
        return self._set_deleted(principal, pk, True)

    def reinstate(self, principal: Principal, pk: int) -> PretrainedModel:
        return self._set_deleted(principal, pk, False)

    def _set_deleted(self, principal: Principal, pk: int, deleted: bool) -> PretrainedModel:
        with self.db.uow() as s:
            self._load(s, principal, pk, Action.CATALOGUE_WRITE)
            row = s.get(PretrainedModelRow, pk)
            if deleted and row.deletion_time is None:
                row.deletion_time = now()
            elif not deleted:
                row.deletion_time = None
            s.flush()
            return self._load(s, principal, pk, Action.CATALOGUE_READ)

    async def hard_delete(self, principal: Principal, pk: int) -> PretrainedModel:
        """Remove the model and its data for good; returns the model as it was."""
        model, stale = await asyncio.to_thread(self._hard_delete, principal, pk)
        await self.files.store.delete(stale)
        return model

    def _hard_delete(self, principal: Principal, pk: int):
        with self.db.uow() as s:
            model = self._load(s, principal, pk, Action.CATALOGUE_WRITE)
            row = s.get(PretrainedModelRow, pk)
            file_id = row.file_id
            s.delete(row)
            s.flush()
            stale = self.files.drop_in(s, file_id) if file_id else []
            return model, stale

    def _ensure_number(self, s: Session, user_id: str) -> None:
        if s.scalar(select(UserNumberRow.number).where(UserNumberRow.user_id == user_id)) is None:
            s.add(UserNumberRow(user_id=user_id))

    def _validate(self, s: Session, fields: PretrainedModelIn, *, partial: bool) -> dict[str, Any]:
        """The columns to write, or :class:`FieldErrors` with the edge's faults and the database's together."""
        if NON_FIELD in fields.faults:
            raise FieldErrors({NON_FIELD: list(fields.faults[NON_FIELD])})
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for key, column in (("name", "name"), ("url", "url"), ("description", "description"), ("metadata", "meta")):
            v = getattr(fields, key)
            if v is not None and (fault := text_fault(v, **MODEL_TEXT[key])):
                errors[key] = [fault]
            elif v is not None:
                values[column] = v
        if (pk := fields.framework) is not None:
            fw = s.get(FrameworkRow, pk) if 0 < pk < 2**31 else None
            if fw is None:
                errors["framework"] = [f'Invalid pk "{pk}" - object does not exist.']
            else:
                values["framework_pk"] = fw.pk
        if (name := fields.domain) is not None:
            dom = s.scalar(select(DomainRow).where(DomainRow.name == name))
            if dom is None:
                errors["domain"] = [missing_name(name)]
            else:
                values["domain_pk"] = dom.pk
        if (ref := fields.licence) is not None:
            if isinstance(ref, str):
                lic = s.scalar(select(LicenceRow).where(LicenceRow.name == ref))
            else:  # the TypeScript client sends a pk
                lic = s.get(LicenceRow, ref) if 0 < ref < 2**31 else None
            if lic is None:
                errors["licence"] = [missing_name(ref)]
            else:
                values["licence_pk"] = lic.pk
        if not partial:
            for key in MODEL_REQUIRED:
                if getattr(fields, key) is None and key not in fields.faults:
                    errors[key] = [REQUIRED]
        _raise_faults(fields.faults, errors, MODEL_ORDER)
        return values

    # --- data ----------------------------------------------------------------------------
    async def set_data(
        self, principal: Principal, pk: int, data: AsyncIterable[bytes], *, filename: str = "model.data"
    ) -> PretrainedModel:
        """Stream new data in; the previous data stays until the new bytes are safely stored."""
        return await self.set_data_from(principal, pk, lambda: data, filename=filename)

    async def set_data_from(
        self, principal: Principal, pk: int, read: Callable[[], AsyncIterable[bytes]], *, filename: str = "model.data"
    ) -> PretrainedModel:
        """:meth:`set_data` with the bytes ``read()`` gives once the caller may change model ``pk`` and it exists
        (the module docstring)."""
        await asyncio.to_thread(self.get_model_for_write, principal, pk)
        record = await self.files.upload(
            principal, name=filename or "model.data", data=read(), context=CONTEXT, max_size=self.max_data_size
        )
        model, stale = await asyncio.to_thread(self._attach, principal, pk, record.id, True)
        await self.files.store.delete(stale)
        return model

    def get_model_for_write(self, principal: Principal, pk: int) -> PretrainedModel:
        with self.db.uow(readonly=True) as s:
            return self._load(s, principal, pk, Action.CATALOGUE_WRITE)

    async def set_data_from_file(self, principal: Principal, pk: int, file_id: str) -> PretrainedModel:
        """Use an already-uploaded file as the model's data, without sending the bytes again."""
        model, stale = await asyncio.to_thread(self._attach_existing, principal, pk, file_id)
        await self.files.store.delete(stale)
        return model

    def _attach_existing(self, principal: Principal, pk: int, file_id: str):
        with self.db.uow() as s:
            self._load(s, principal, pk, Action.CATALOGUE_WRITE)
            clone = self.files.clone_in(s, principal, file_id, context=CONTEXT)
            return self._swap(s, principal, pk, clone.id)

    def _attach(self, principal: Principal, pk: int, file_id: str, drop_on_missing: bool):
        try:
            with self.db.uow() as s:
                self._load(s, principal, pk, Action.CATALOGUE_WRITE)
                return self._swap(s, principal, pk, file_id)
        except (NotFound, Forbidden):
            if drop_on_missing:  # the model vanished while the bytes were streaming: drop them again
                with self.db.uow() as s:
                    stale = self.files.drop_in(s, file_id)
                if stale:
                    asyncio.run(self.files.store.delete(stale))  # we are in a worker thread: no running loop
            raise

    def _swap(self, s: Session, principal: Principal, pk: int, file_id: str | None):
        row = s.get(PretrainedModelRow, pk)
        old = row.file_id
        row.file_id = file_id
        s.flush()
        stale = self.files.drop_in(s, old) if old and old != file_id else []
        return self._load(s, principal, pk, Action.CATALOGUE_READ), stale

    async def delete_data(self, principal: Principal, pk: int) -> PretrainedModel:
        model, stale = await asyncio.to_thread(self._delete_data, principal, pk)
        await self.files.store.delete(stale)
        return model

    def _delete_data(self, principal: Principal, pk: int):
        with self.db.uow() as s:
            self._load(s, principal, pk, Action.CATALOGUE_WRITE)
            return self._swap(s, principal, pk, None)

    async def open_data(
        self, principal: Principal, pk: int, range_header: str | None = None
    ) -> tuple[PretrainedModel, FileRecord | None, ByteRange | None, AsyncIterator[bytes] | None]:
        """The model and a stream of its data (None when it has none)."""
        model = await asyncio.to_thread(self.get_model, principal, pk)
        if model.file is None:
            return model, None, None, None
        record, rng, stream = await self.files.open(principal, model.file.id, range_header)
        return model, record, rng, stream

    # --- reference data: frameworks, licences, domains -------------------------------------------
    def list_frameworks(self, principal: Principal, query: Query | None = None) -> list[Framework]:
        return [_framework(r) for r in self._list(principal, FrameworkRow, FRAMEWORK_FIELDS, query)]

    def list_licences(self, principal: Principal, query: Query | None = None) -> list[Licence]:
        return [_licence(r) for r in self._list(principal, LicenceRow, LICENCE_FIELDS, query)]

    def list_domains(self, principal: Principal, query: Query | None = None) -> list[Domain]:
        return [_domain(r) for r in self._list(principal, DomainRow, DOMAIN_FIELDS, query)]

    def _list(self, principal: Principal, table, fields, query: Query | None):
        require(principal, Action.CATALOGUE_READ, principal.org_id, what="catalogue")
        compiled = compile_query(query, fields, dialect=self.db.engine.dialect.name)
        with self.db.uow(readonly=True) as s:
            q = select(table).where(*compiled.where).order_by(*compiled.order_by, table.pk)
            return list(s.scalars(q))

    def _get_ref(self, s: Session, principal: Principal, table, pk: int, what: str):
        require(principal, Action.CATALOGUE_READ, principal.org_id, what="catalogue")
        if not 0 < pk < 2**31:
            raise NotFound(f"{what} {pk} not found")
        row = s.get(table, pk)
        if row is None:
            raise NotFound(f"{what} {pk} not found")
        return row

    def get_framework(self, principal: Principal, pk: int) -> Framework:
        with self.db.uow(readonly=True) as s:
            return _framework(self._get_ref(s, principal, FrameworkRow, pk, "framework"))

    def get_licence(self, principal: Principal, pk: int) -> Licence:
        with self.db.uow(readonly=True) as s:
            return _licence(self._get_ref(s, principal, LicenceRow, pk, "licence"))

    def get_domain(self, principal: Principal, pk: int) -> Domain:
        with self.db.uow(readonly=True) as s:
            return _domain(self._get_ref(s, principal, DomainRow, pk, "domain"))

    def change_domain(self, principal: Principal) -> NoReturn:
        """Domains are seeded and read-only: creating, changing or deleting one is refused, to admins too (403)."""
        raise Forbidden("domains are read-only")

    def save_framework(
        self, principal: Principal, fields: FrameworkIn, *, pk: int | None = None, partial: bool = False
    ) -> Framework:
        return self._save_framework(principal, pk, lambda: fields, partial)

    def update_framework_from(
        self, principal: Principal, pk: int, read: Callable[[], FrameworkIn], *, partial: bool
    ) -> Framework:
        """Change framework ``pk`` to the fields ``read()`` gives once the caller may and it exists (the module
        docstring)."""
        return self._save_framework(principal, pk, read, partial)

    def _save_framework(
        self, principal: Principal, pk: int | None, read: Callable[[], FrameworkIn], partial: bool
    ) -> Framework:
        require(principal, Action.REFERENCE_WRITE, principal.org_id, what="framework")
        with self.db.uow() as s:
            row = self._get_ref(s, principal, FrameworkRow, pk, "framework") if pk is not None else FrameworkRow()
            fields = read()
            values = _ref_values(fields, {"name": fields.name, "version": fields.version}, FRAMEWORK_TEXT, partial)
            for k, v in values.items():
                setattr(row, k, v)
            with s.no_autoflush:  # look for a clash before the changed row is written
                dup = s.scalar(
                    select(FrameworkRow.pk).where(
                        FrameworkRow.name == row.name,
                        FrameworkRow.version == row.version,
                        FrameworkRow.pk != (pk or -1),
                    )
                )
            if dup is not None:
                raise Conflict(f"framework {row.name} {row.version} already exists (pk {dup})", code="DUPLICATE")
            s.add(row)
            s.flush()
            return _framework(row)

    def save_licence(
        self, principal: Principal, fields: LicenceIn, *, pk: int | None = None, partial: bool = False
    ) -> Licence:
        return self._save_licence(principal, pk, lambda: fields, partial)

    def update_licence_from(
        self, principal: Principal, pk: int, read: Callable[[], LicenceIn], *, partial: bool
    ) -> Licence:
        """Change licence ``pk`` to the fields ``read()`` gives once the caller may and it exists (the module
        docstring)."""
        return self._save_licence(principal, pk, read, partial)

    def _save_licence(
        self, principal: Principal, pk: int | None, read: Callable[[], LicenceIn], partial: bool
    ) -> Licence:
        require(principal, Action.REFERENCE_WRITE, principal.org_id, what="licence")
        with self.db.uow() as s:
            if pk is None:
                row = LicenceRow(permissions=[], conditions=[], limitations=[], domains=[])
            else:
                row = self._get_ref(s, principal, LicenceRow, pk, "licence")
            fields = read()
            values = _ref_values(fields, {"name": fields.name, "url": fields.url}, LICENCE_TEXT, partial)
            for k, v in values.items():
                setattr(row, k, v)
            with s.no_autoflush:
                dup = s.scalar(select(LicenceRow.pk).where(LicenceRow.name == row.name, LicenceRow.pk != (pk or -1)))
            if dup is not None:
                raise Conflict(f"licence {row.name!r} already exists (pk {dup})", code="DUPLICATE")
            s.add(row)
            s.flush()
            return _licence(row)

    def edit_subdescriptors(self, principal: Principal, pk: int, edit: SubdescriptorEdit) -> Licence:
        return self.edit_subdescriptors_from(principal, pk, lambda: edit)

    def edit_subdescriptors_from(self, principal: Principal, pk: int, read: Callable[[], SubdescriptorEdit]) -> Licence:
        """:meth:`edit_subdescriptors` with the change ``read()`` gives once the caller may change licence ``pk``
        and it exists (the module docstring)."""
        require(principal, Action.REFERENCE_WRITE, principal.org_id, what="licence")
        with self.db.uow() as s:
            row = self._get_ref(s, principal, LicenceRow, pk, "licence")
            edit = read()
            if edit.faults:  # a field missing: only those (the edge checked the others' choices too)
                raise FieldErrors({k: list(v) for k, v in edit.faults.items()})
            _raise_faults({}, subdescriptor_faults(edit.method, edit.kind, list(edit.names)), EDIT_ORDER)
            return _apply_subdescriptors(s, row, edit.method, edit.kind, edit.names)

    def delete_framework(self, principal: Principal, pk: int) -> None:
        self._delete_ref(principal, FrameworkRow, PretrainedModelRow.framework_pk, pk, "framework")

    def delete_licence(self, principal: Principal, pk: int) -> None:
        self._delete_ref(principal, LicenceRow, PretrainedModelRow.licence_pk, pk, "licence")

    def _delete_ref(self, principal: Principal, table, ref_column, pk: int, what: str) -> None:
        require(principal, Action.REFERENCE_WRITE, principal.org_id, what=what)
        with self.db.uow() as s:
            row = self._get_ref(s, principal, table, pk, what)
            users = s.scalar(select(func.count()).select_from(PretrainedModelRow).where(ref_column == pk))
            if users:
                raise Conflict(
                    f"{what} {pk} is used by {users} pretrained model(s); change or delete them first", code="IN_USE"
                )
            try:
                s.delete(row)
                s.flush()
            except IntegrityError:  # pragma: no cover - raced with a new reference
                raise Conflict(f"{what} {pk} is in use") from None


def text_fault(value: str, *, max_len: int | None, blank: bool) -> str | None:
    """What is wrong with a text field's value (DRF's ``CharField`` wording), or None."""
    if not blank and not value.strip():
        return "This field may not be blank."
    if max_len and len(value) > max_len:
        return f"Ensure this field has no more than {max_len} characters."
    return None


def url_fault(value: str) -> str | None:
    """A licence's URL must be http(s)."""
    return None if value.startswith(("http://", "https://")) else "Enter a valid URL."


def missing_name(value: object) -> str:
    """DRF's ``SlugRelatedField`` wording for a name (or any value) that names no row."""
    return f"Object with name={value} does not exist."


def subdescriptor_faults(method: Any, kind: Any, names: Any) -> dict[str, list[str]]:
    """What is wrong with a licence's list edit (a pure check of JSON values: the edge calls it on the body, the core
    again on the typed change)."""
    errors = {}
    if method not in ("add", "remove"):
        errors["method"] = [f'"{method}" is not a valid choice.']
    if kind not in SUBDESCRIPTORS:
        errors["type"] = [f'"{kind}" is not a valid choice.']
    if not isinstance(names, list) or not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names):
        errors["names"] = ["Expected a list of names."]
    return errors


def _raise_faults(faults: Faults, found: dict[str, list[str]], order: tuple[str, ...]) -> None:
    """The edge's faults and the core's, merged into one :class:`FieldErrors` in the fields' order."""
    merged = {k: list(v) for k, v in faults.items()}
    for k, v in found.items():
        merged.setdefault(k, []).extend(m for m in v if m not in merged[k])
    if merged:
        rank = {k: i for i, k in enumerate((NON_FIELD, *order))}
        raise FieldErrors({k: merged[k] for k in sorted(merged, key=lambda k: rank.get(k, len(rank)))})


def _apply_subdescriptors(s: Session, row: LicenceRow, method: str, kind: str, names: tuple[str, ...]) -> Licence:
    current = list(getattr(row, kind) or [])
    for n in names:
        if method == "add" and n not in current:
            current.append(n)
        elif method == "remove" and n in current:
            current.remove(n)
    setattr(row, kind, current)
    s.flush()
    return _licence(row)


def _ref_values(
    fields: FrameworkIn | LicenceIn, given: dict[str, str | None], limits: dict[str, int], partial: bool
) -> dict[str, str]:
    if NON_FIELD in fields.faults:
        raise FieldErrors({NON_FIELD: list(fields.faults[NON_FIELD])})
    errors: dict[str, list[str]] = {}
    values = {}
    for key, v in given.items():
        if v is None:
            if not partial and key not in fields.faults:
                errors[key] = [REQUIRED]
        elif fault := (text_fault(v, max_len=limits[key], blank=False) or (url_fault(v) if key == "url" else None)):
            errors[key] = [fault]
        else:
            values[key] = v
    _raise_faults(fields.faults, errors, tuple(given))
    return values
