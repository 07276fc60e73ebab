"""Entity → native wire model. Pure functions."""

from __future__ import annotations

from modelharbor.api.native import schemas
from modelharbor.core.files import FileDetail
from modelharbor.core.users import UserInfo
from modelharbor.domain.entities import (
    ApiKey,
    Domain,
    FileRecord,
    Framework,
    ImportedModel,
    Licence,
    PretrainedModel,
    Task,
    UploadSession,
)


def file_out(f: FileRecord) -> schemas.FileOut:
    return schemas.FileOut(
        id=f.id,
        name=f.name,
        extension=f.extension,
        size=f.size,
        sha256=f.sha256,
        content_type=f.content_type,
        context=f.context,
        owner_id=f.owner_id,
        created_at=f.created_at,
        internal=f.internal,
    )


def file_detail_out(d: FileDetail) -> schemas.FileDetailOut:
    return schemas.FileDetailOut(
        **file_out(d.file).model_dump(),
        used_by=[schemas.FileUseOut(kind=u.kind, id=u.id, name=u.name) for u in d.used_by],
    )


def upload_out(u: UploadSession) -> schemas.UploadOut:
    return schemas.UploadOut(
        id=u.id,
        name=u.name,
        size=u.size,
        total_chunks=u.total_chunks,
        context=u.context,
        state=u.state,
        expires_at=u.expires_at,
        created_at=u.created_at,
        received_bytes=u.received_bytes,
        chunks=[schemas.ChunkOut(number=c.number, size=c.size) for c in u.chunks],
        missing_chunks=u.missing_chunks if u.state == "open" else [],
        file_id=u.file_id,
        chunk_size=u.chunk_size,
        fingerprint=u.fingerprint,
        deduplicated=u.deduplicated,
    )


def user_out(u: UserInfo) -> schemas.UserOut:
    return schemas.UserOut(
        id=u.id,
        username=u.username,
        org_id=u.org_id,
        role=u.role.value,
        is_superuser=u.is_superuser,
        created_at=u.created_at,
        has_password=u.has_password,
    )


def key_out(k: ApiKey) -> schemas.KeyOut:
    return schemas.KeyOut(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        user_id=k.user_id,
        created_at=k.created_at,
        last_used_at=k.last_used_at,
        revoked_at=k.revoked_at,
        expires_at=k.expires_at,
        key=k.secret,
    )


def task_out(t: Task) -> schemas.TaskOut:
    return schemas.TaskOut(
        id=t.id,
        kind=t.kind,
        status=t.status,
        percent=t.percent,
        result=t.result,
        error=t.error,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


def imported_model_out(m: ImportedModel) -> schemas.ImportedModelOut:
    return schemas.ImportedModelOut(
        id=m.id,
        name=m.name,
        is_adapter=m.is_adapter,
        status=m.status,
        file_id=m.file_id,
        error=m.error,
        created_at=m.created_at,
    )


# --- the pretrained-model catalogue ----------------------------------------------------------------
def framework_out(f: Framework) -> schemas.FrameworkOut:
    return schemas.FrameworkOut(pk=f.pk, name=f.name, version=f.version)


def domain_out(d: Domain) -> schemas.DomainOut:
    return schemas.DomainOut(pk=d.pk, name=d.name, description=d.description)


def licence_ref_out(lic: Licence) -> schemas.LicenceRefOut:
    return schemas.LicenceRefOut(pk=lic.pk, name=lic.name, url=lic.url)


def licence_out(lic: Licence) -> schemas.LicenceOut:
    return schemas.LicenceOut(
        pk=lic.pk,
        name=lic.name,
        url=lic.url,
        permissions=list(lic.permissions),
        conditions=list(lic.conditions),
        limitations=list(lic.limitations),
        domains=list(lic.domains),
    )


def catalogue_model_out(m: PretrainedModel) -> schemas.CatalogueModelOut:
    data = None
    if m.file is not None:
        data = schemas.ModelDataOut(file_id=m.file.id, size=m.file.size, sha256=m.file.sha256)
    return schemas.CatalogueModelOut(
        pk=m.pk,
        name=m.name,
        url=m.url,
        description=m.description,
        metadata=m.metadata,
        framework=framework_out(m.framework),
        domain=domain_out(m.domain),
        licence=licence_ref_out(m.licence),
        data=data,
        creator_id=m.creator_id,
        creation_time=m.creation_time,
        deletion_time=m.deletion_time,
    )
