"""What a file is for and what uses it: the contexts of the files the server keeps for itself (*internal* files),
and the read model of a file's users.

**Internal files.** A file is internal when the server keeps it for one of its own objects and manages it through
that object, never through the files API: a deployment's package, an environment package, a project export's zip,
a project import's zip. Which files those are follows from the file's *context*, set by the service that stores it
(the contexts below; those services take them from here), so it is known from the file row alone — a list filters
on it in SQL. The files API lists internal files only when asked (``?all=true``): they are the server's, not what a
user uploaded. A file a user uploaded stays a user file when something comes to use it (a catalogue model's data, a
registered version's files, an import read from an uploaded zip copies it into an internal record of its own).

**What uses a file.** :func:`used_by` answers every object that depends on a file, in one statement: catalogue
models, Kore.ai imported models, MLflow artifacts, registered model versions (a file source, or the logged model
whose artifact it is), deployment versions (their packages), environment tags (their packages), project exports
and imports, a project's versioned files. :func:`in_use_by`, the first of them, is why the files API refuses to delete a file (``FILE_IN_USE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, cast, literal_column, select, union_all
from sqlalchemy.orm import Session

from modelharbor.db.tables import ImportedModelRow, PretrainedModelRow
from modelharbor.db.tables_project_files import ProjectFileBlobRow
from modelharbor.db.tables_registry import ModelVersionRow, RegisteredModelRow, RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentBuildRow,
    EnvironmentRow,
    EnvironmentTagRow,
    RevisionRow,
)
from modelharbor.db.tables_tracking import ArtifactRow
from modelharbor.db.tables_transfer import ProjectExportRow, ProjectImportRow
from modelharbor.domain.entities import FileRecord

# --- internal contexts: the services that store these files import their context from here ---------------------
DEPLOYMENT_PACKAGE = "deployment-package"  # core/serving: a deployment version's package (a revision)
ENVIRONMENT_PACKAGE = "environment-package"  # core/serving: a custom environment tag's package (a build)
PROJECT_EXPORT = "ubiops-export"  # core/transfer: an export's zip, made by the server
PROJECT_IMPORT = "ubiops-import"  # core/transfer: an import's zip (a copy of the uploaded one, or fetched)
PROJECT_FILE = "project-file"  # core/project_files: the content of a project's versioned file
INTERNAL_CONTEXTS = frozenset({DEPLOYMENT_PACKAGE, ENVIRONMENT_PACKAGE, PROJECT_EXPORT, PROJECT_IMPORT, PROJECT_FILE})

FILE_SOURCE = "modelharbor:/files/"  # a registered version whose model is one file of this service


def is_internal(context: str) -> bool:
    """Whether a file of this context is kept by the server for one of its own objects."""
    return context in INTERNAL_CONTEXTS


# --- what uses a file -----------------------------------------------------------------------------------------
KINDS = (
    "artifact",
    "catalogue_model",
    "imported_model",
    "model_version",
    "deployment_version",
    "environment_tag",
    "export",
    "import",
    "project_file",
)


@dataclass(frozen=True)
class FileUse:
    """One object that uses a file. ``kind`` is one of :data:`KINDS`; ``id`` what the object's own API addresses it
    by (a catalogue model's pk, an artifact's path, ``<model>/<version>`` for a registered version); ``name`` what a
    person recognises it by (``project/deployment/version`` for a deployment version, ``project/environment:tag``
    for an environment tag, the project for an export or import)."""

    kind: str
    id: str
    name: str

    def describe(self) -> str:
        """How a refusal names it (``FILE_IN_USE``), with where it is removed when that is another API."""
        match self.kind:
            case "artifact":
                return f"artifact {self.id}"
            case "catalogue_model":
                return f"pretrained model {self.id}"
            case "imported_model":
                return f"imported model {self.id}"
            case "model_version":
                return f"version {self.id.rsplit('/', 1)[1]} of registered model {self.name!r}"
            case "deployment_version":
                return f"deployment package of version {self.name}"
            case "project_file":
                return f"versioned files of project {self.name!r} (it goes with the project)"
            case "environment_tag":
                return f"environment package of tag {self.name} (delete its tag through the UbiOps API)"
            case _:
                return f"project {self.kind} {self.id} (delete it through the UbiOps API)"


@dataclass(frozen=True)
class FileDetail:
    """A file and what uses it (the files API's ``GET /files/{id}``)."""

    file: FileRecord
    used_by: tuple[FileUse, ...]


def _text(value: str):
    return literal_column("'" + value.replace("'", "''") + "'", String)


def used_by(s: Session, file_id: str, *, limit: int | None = None) -> list[FileUse]:
    """Every object that uses the file, in the order of :data:`KINDS`, then by name: one statement."""
    rank = {kind: i for i, kind in enumerate(KINDS)}

    def row(kind: str, ident, name):
        return select(
            literal_column(str(rank[kind])).label("rank"),
            _text(kind).label("kind"),
            ident.label("id"),
            name.label("name"),
        )

    version_id = RegisteredModelRow.name + "/" + cast(ModelVersionRow.version, String)
    logged_model_prefix = (
        cast(ArtifactRow.experiment_id, String) + "/models/" + ModelVersionRow.model_id + "/artifacts/%"
    )
    project = RegistryProjectRow.name
    parts = [
        row("artifact", ArtifactRow.path, ArtifactRow.path).where(ArtifactRow.file_id == file_id),
        row("catalogue_model", cast(PretrainedModelRow.pk, String), PretrainedModelRow.name).where(
            PretrainedModelRow.file_id == file_id
        ),
        row("imported_model", ImportedModelRow.id, ImportedModelRow.name).where(ImportedModelRow.file_id == file_id),
        row("model_version", version_id, RegisteredModelRow.name)
        .select_from(ModelVersionRow)
        .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
        .where(ModelVersionRow.source == FILE_SOURCE + file_id),
        # the file is an artifact of a logged model a version registers (files registered through the native API)
        row("model_version", version_id, RegisteredModelRow.name)
        .select_from(ArtifactRow)
        .join(ModelVersionRow, ArtifactRow.path.like(logged_model_prefix))
        .join(RegisteredModelRow, RegisteredModelRow.pk == ModelVersionRow.model_pk)
        .where(ArtifactRow.file_id == file_id, ModelVersionRow.model_id.is_not(None)),
        row(
            "deployment_version",
            DeploymentVersionRow.id,
            project + "/" + DeploymentRow.name + "/" + DeploymentVersionRow.version,
        )
        .select_from(RevisionRow)
        .join(DeploymentVersionRow, DeploymentVersionRow.id == RevisionRow.version_id)
        .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
        .join(RegistryProjectRow, RegistryProjectRow.id == DeploymentRow.project_id)
        .where(RevisionRow.file_id == file_id),
        row("environment_tag", EnvironmentTagRow.id, project + "/" + EnvironmentRow.name + ":" + EnvironmentTagRow.name)
        .select_from(EnvironmentBuildRow)
        .join(EnvironmentTagRow, EnvironmentTagRow.id == EnvironmentBuildRow.tag_id)
        .join(EnvironmentRow, EnvironmentRow.id == EnvironmentTagRow.environment_id)
        .join(RegistryProjectRow, RegistryProjectRow.id == EnvironmentRow.project_id)
        .where(EnvironmentBuildRow.file_id == file_id),
        row("export", ProjectExportRow.id, project)
        .select_from(ProjectExportRow)
        .join(RegistryProjectRow, RegistryProjectRow.id == ProjectExportRow.project_id)
        .where(ProjectExportRow.file_id == file_id),
        row("import", ProjectImportRow.id, project)
        .select_from(ProjectImportRow)
        .join(RegistryProjectRow, RegistryProjectRow.id == ProjectImportRow.project_id)
        .where(ProjectImportRow.file_id == file_id),
        row("project_file", ProjectFileBlobRow.key, project)
        .select_from(ProjectFileBlobRow)
        .join(RegistryProjectRow, RegistryProjectRow.id == ProjectFileBlobRow.project_id)
        .where(ProjectFileBlobRow.file_id == file_id),
    ]
    every = union_all(*parts).subquery()
    c = every.c
    q = select(c.rank, c.kind, c.id, c.name).distinct().order_by(c.rank, c.name, c.id)
    if limit is not None:
        q = q.limit(limit)
    return [FileUse(kind, str(ident), str(name)) for _, kind, ident, name in s.execute(q)]


def in_use_by(s: Session, file_id: str) -> str | None:
    """What a file record is the bytes of (``"artifact <path>"``, ``"pretrained model <pk>"``, …), or None.

    A file that something depends on must not be deleted through the files API (``409 FILE_IN_USE``); the
    owning service removes it.
    """
    first = used_by(s, file_id, limit=1)
    return first[0].describe() if first else None
