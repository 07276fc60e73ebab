"""Writing an export's zip (format.py has the layout): the yaml files from one consistent read of the project, then
the packages streamed from the blob store into the zip, stored as they are (they are zips already).

Invariants
- A secret's value is never written, whatever the selection says; another variable's value only if selected
  (``include_value``).
- A version's package is the one it serves, else its newest; an environment tag's is that of its newest successful
  build, else of its newest build; environments get folder names of safe characters (the yaml holds the real name).
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelharbor.core.bridges import Pipe
from modelharbor.core.clock import aware, now
from modelharbor.core.secretbox import SecretUnreadable
from modelharbor.core.serving.environment_tags import DEFAULT_TAG
from modelharbor.core.transfer.base import TransferBase
from modelharbor.core.transfer.format import CHUNK, FORMAT_SPEC, dump_yaml, field_yaml, folder_slug, root_name
from modelharbor.core.transfer.selection import empty_selection
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentBuildRow,
    EnvironmentRow,
    EnvironmentTagRow,
    EnvVarRow,
    PipelineRow,
    PipelineVersionRow,
    RevisionRow,
)
from modelharbor.db.tables_transfer import ProjectExportRow
from modelharbor.domain.errors import InvalidInput


class ExportZip(TransferBase):
    """Writing an export's zip (mixed into TransferService)."""

    def _vars_for_export(self, s: Session, p, did, vid, chosen: dict[str, Any], where: str) -> list[dict[str, Any]]:
        q = select(EnvVarRow).where(EnvVarRow.project_id == p.id)
        q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
        q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
        rows = {r.name: r for r in s.scalars(q)}
        out = []
        for name, spec in chosen.items():
            r = rows.get(name)
            if r is None:
                raise InvalidInput(f"Environment variable {name!r} of {where} no longer exists.")
            value = None
            if spec.get("include_value") and not r.secret:  # a secret's value is never read here
                try:
                    value = self.serving.box.open(r.value)
                except SecretUnreadable as exc:
                    raise InvalidInput(f"The value of {name!r} ({where}) cannot be read: {exc}") from None
            out.append({"name": name, "value": value, "secret": bool(r.secret)})
        return out

    def _write_export(self, export_id: str, path: Path | Pipe, progress: Callable[[int], None]) -> None:
        """Write the zip (to a file, or a Pipe): yaml files from one consistent read, then the packages streamed
        from the store."""
        files: list[tuple[str, dict[str, Any]]] = []
        packages: list[tuple[str, str]] = []
        with self.db.uow(readonly=True) as s:
            row = s.get(ProjectExportRow, export_id)
            p = s.get(RegistryProjectRow, row.project_id)
            selection = {**empty_selection(), **(row.selection or {})}
            root = root_name(p.name, row.id) + "/"
            info = {"format_spec": FORMAT_SPEC, "exported_by": "ModelHarbor", "project_name": p.name}
            files.append(("info.yaml", {**info, "export_id": row.id, "creation_date": now().isoformat()}))
            for name, spec in selection["deployments"].items():
                self._deployment_files(s, p, name, spec, row.packages, files, packages)
            for name, spec in selection["pipelines"].items():
                self._pipeline_files(s, p, name, spec, files)
            self._environment_files(s, p, selection["environments"], row.packages, files, packages)
            if selection["environment_variables"]:
                variables = self._vars_for_export(s, p, None, None, selection["environment_variables"], "the project")
                files.append(("project_environment_variables.yaml", {"project_environment_variables": variables}))
        progress(20)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for rel, data in files:
                zf.writestr(root + rel, dump_yaml(data))
            for i, (rel, file_id) in enumerate(packages):
                info = zipfile.ZipInfo(root + rel, date_time=time.localtime()[:6])
                info.compress_type = zipfile.ZIP_STORED  # packages are zips already
                info.external_attr = 0o644 << 16
                reader = self.files.open_reader(file_id)
                try:
                    with zf.open(info, "w", force_zip64=True) as out:
                        while chunk := reader.read(CHUNK):
                            out.write(chunk)
                finally:
                    reader.close()
                progress(20 + 70 * (i + 1) // len(packages))

    def _deployment_files(self, s: Session, p, name: str, spec: dict, with_packages: bool, files: list, packages: list):
        d = s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name))
        if d is None:
            raise InvalidInput(f"Deployment {name!r} no longer exists.")
        default = s.get(DeploymentVersionRow, d.default_version_id) if d.default_version_id else None
        folder = f"deployments/deployment_{name}/"
        variables = self._vars_for_export(
            s, p, d.id, None, spec.get("environment_variables", {}), f"deployment {name!r}"
        )
        files.append(
            (
                f"{folder}deployment_{name}.yaml",
                {
                    "deployment_name": d.name,
                    "deployment_description": d.description or "",
                    "deployment_labels": dict(d.labels or {}),
                    "input_type": d.input_type,
                    "output_type": d.output_type,
                    "input_fields": [field_yaml(f) for f in d.input_fields or []],
                    "output_fields": [field_yaml(f) for f in d.output_fields or []],
                    "default_version": default.version if default else None,
                    "deployment_environment_variables": variables,
                },
            )
        )
        for vname, vspec in spec.get("versions", {}).items():
            v = s.scalar(
                select(DeploymentVersionRow).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == vname
                )
            )
            if v is None:
                raise InvalidInput(f"Version {vname!r} of deployment {name!r} no longer exists.")
            base = f"{folder}versions/deployment_{name}_version_{vname}"
            chosen = (vspec or {}).get("environment_variables", {})
            files.append(
                (
                    base + ".yaml",
                    {
                        "version_name": v.version,
                        "version_description": v.description or "",
                        "version_labels": dict(v.labels or {}),
                        "environment": v.environment,
                        **({"environment_tag": v.environment_tag} if v.environment_tag else {}),
                        "instance_type_group_name": v.instance_type_group_name,
                        "instance_type": (v.settings or {}).get("instance_type"),
                        "minimum_instances": v.minimum_instances,
                        "maximum_instances": v.maximum_instances,
                        "maximum_idle_time": v.maximum_idle_time,
                        "request_retention_mode": v.request_retention_mode,
                        "request_retention_time": v.request_retention_time,
                        "maximum_queue_size": v.maximum_queue_size,
                        "version_environment_variables": self._vars_for_export(
                            s, p, d.id, v.id, chosen, f"version {vname!r} of {name!r}"
                        ),
                    },
                )
            )
            if with_packages:  # the package the version serves, else its newest
                for rid in (v.active_revision_id, v.latest_revision_id):
                    rev = s.get(RevisionRow, rid) if rid else None
                    if rev is not None and rev.file_id:
                        packages.append((base + ".zip", rev.file_id))
                        break

    @staticmethod
    def _pipeline_files(s: Session, p, name: str, spec: dict, files: list) -> None:
        pl = s.scalar(select(PipelineRow).where(PipelineRow.project_id == p.id, PipelineRow.name == name))
        if pl is None:
            raise InvalidInput(f"Pipeline {name!r} no longer exists.")
        default = s.get(PipelineVersionRow, pl.default_version_id) if pl.default_version_id else None
        folder = f"pipelines/pipeline_{name}/"
        files.append(
            (
                f"{folder}pipeline_{name}.yaml",
                {
                    "pipeline_name": pl.name,
                    "pipeline_description": pl.description or "",
                    "pipeline_labels": dict(pl.labels or {}),
                    "input_type": pl.input_type,
                    "output_type": pl.output_type,
                    "input_fields": [field_yaml(f) for f in pl.input_fields or []],
                    "output_fields": [field_yaml(f) for f in pl.output_fields or []],
                    "default_version": default.version if default else None,
                },
            )
        )
        for vname in spec.get("versions", {}):
            pv = s.scalar(
                select(PipelineVersionRow).where(
                    PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == vname
                )
            )
            if pv is None:
                raise InvalidInput(f"Version {vname!r} of pipeline {name!r} no longer exists.")
            objects = [
                {
                    "name": o.get("name"),
                    "reference_name": o.get("reference_name"),
                    "reference_type": o.get("reference_type") or "deployment",
                    "reference_version": o.get("version"),
                }
                for o in pv.objects or []
            ]
            attachments = [  # without the ids: the importing server gives its own
                {
                    "destination_name": a.get("destination_name"),
                    "sources": [
                        {"source_name": src.get("source_name"), "mapping": src.get("mapping") or []}
                        for src in a.get("sources") or []
                    ],
                }
                for a in pv.attachments or []
            ]
            files.append(
                (
                    f"{folder}versions/pipeline_{name}_version_{vname}.yaml",
                    {
                        "version_name": pv.version,
                        "version_description": pv.description or "",
                        "version_labels": dict(pv.labels or {}),
                        "request_retention_mode": pv.request_retention_mode,
                        "request_retention_time": pv.request_retention_time,
                        "objects": objects,
                        "attachments": attachments,
                    },
                )
            )

    @staticmethod
    def _environment_files(
        s: Session, p, names: dict[str, Any], with_packages: bool, files: list, packages: list
    ) -> None:
        """Each environment's yaml (its tags listed, ``latest`` first, then oldest first) and, with packages, each
        tag's environment package: that of its newest successful build, else of its newest build (as for versions:
        the package it serves, else its newest), whose base environment the yaml names for the tag."""
        used: set[str] = set()
        for name in names:
            e = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name))
            if e is None:
                raise InvalidInput(f"Environment {name!r} no longer exists.")
            slug, n = folder_slug(name), 1  # the folder name; the yaml holds the real name
            while slug in used:
                n += 1
                slug = f"{folder_slug(name)}_{n}"
            used.add(slug)
            folder = f"environments/environment_{slug}/"
            tag_rows = sorted(
                s.scalars(select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == e.id)),
                key=lambda t: (t.name != DEFAULT_TAG, aware(t.created_at), t.name),
            )
            tags = []
            for t in tag_rows:
                build = s.scalar(
                    select(EnvironmentBuildRow)
                    .where(
                        EnvironmentBuildRow.tag_id == t.id,
                        EnvironmentBuildRow.status == "success",
                        EnvironmentBuildRow.file_id.is_not(None),
                    )
                    .order_by(EnvironmentBuildRow.created_at.desc(), EnvironmentBuildRow.id.desc())
                    .limit(1)
                )
                if build is None and t.latest_build_id:
                    build = s.get(EnvironmentBuildRow, t.latest_build_id)
                if build is not None and build.file_id is None:
                    build = None
                tags.append(
                    {
                        "tag_name": t.name,
                        "supports_request_format": bool(t.supports_request_format),
                        "base_environment": build.base_environment if build is not None else None,
                    }
                )
                if with_packages and build is not None:
                    packages.append((f"{folder}tags/environment_{slug}_tag_{t.name}.zip", build.file_id))
            files.append(
                (
                    f"{folder}environment_{slug}.yaml",
                    {
                        "environment_name": e.name,
                        "environment_description": e.description or "",
                        "environment_labels": dict(e.labels or {}),
                        "base_environment": e.base_environment,
                        "environment_tags": tags,
                    },
                )
            )
