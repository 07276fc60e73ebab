"""``client.transfer``: project exports (a zip built in the background, downloaded verified and resumable) and
imports (a zip uploaded resumably, scanned, then confirmed with the values secrets need)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelharbor.sdk.deployments import poll, project_path
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.transfers import Progress, fetch_verified, safe_name, target_path
from modelharbor.sdk.uploads import DEFAULT_CHUNK_SIZE, SessionCallback
from modelharbor.sdk.wire import Export, ExportDetail, Import, ImportDetail

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

IMPORT_UPLOAD_CONTEXT = "project-import-upload"  # a zip uploaded for an import (deleted once the import has it)
EXPORT_DONE = ("completed", "failed")
IMPORT_DONE = ("completed", "failed")
IMPORT_WAITS = ("confirmation", "completed", "failed")
Values = dict[tuple[str | None, str | None, str], str]  # (deployment, version, name) → value


def missing_values(imp: ImportDetail) -> list[dict[str, Any]]:
    """The variables of an import (at ``confirmation``) that need a value: every secret, and those exported without
    theirs. Each ``{name, secret, deployment, version}`` (deployment/version None at the levels above)."""
    out: list[dict[str, Any]] = []

    def check(variables: dict[str, Any] | None, deployment: str | None = None, version: str | None = None) -> None:
        for name, var in (variables or {}).items():
            if var.get("value") is None:
                out.append(
                    {"name": name, "secret": bool(var.get("secret")), "deployment": deployment, "version": version}
                )

    check(imp.environment_variables)
    for dname, d in (imp.deployments or {}).items():
        check(d.get("environment_variables"), dname)
        for vname, v in (d.get("versions") or {}).items():
            check(v.get("environment_variables"), dname, vname)
    return out


def confirmation_body(imp: ImportDetail, values: Values | None = None) -> dict[str, Any]:
    """The confirmation that imports everything as the zip holds it, with ``values[(deployment, version, name)]``
    for the variables that need one (see :func:`missing_values`; a level's key has None for deployment/version
    above it). A variable still without a value makes the server answer 400 naming it."""
    values = values or {}

    def level(variables: dict[str, Any] | None, d: str | None = None, v: str | None = None) -> dict[str, Any] | None:
        variables = variables or {}
        if all(var.get("value") is not None for var in variables.values()):
            return None  # as in the zip
        return {
            name: (
                {"value": values[(d, v, name)], "secret": bool(var.get("secret"))}
                if var.get("value") is None and (d, v, name) in values
                else {}
            )
            for name, var in variables.items()
        }

    body: dict[str, Any] = {
        "deployments": {},
        "pipelines": {name: {} for name in imp.pipelines or {}},
        "environments": {name: {} for name in imp.environments or {}},
        "environment_variables": level(imp.environment_variables)
        or {name: {} for name in imp.environment_variables or {}},
    }
    for dname, d in (imp.deployments or {}).items():
        entry: dict[str, Any] = {}
        own = level(d.get("environment_variables"), dname)
        if own is not None:
            entry["environment_variables"] = own
        versions = {
            vname: level(v.get("environment_variables"), dname, vname) for vname, v in (d.get("versions") or {}).items()
        }
        if any(x is not None for x in versions.values()):
            entry["versions"] = {
                vname: ({"environment_variables": x} if x is not None else {}) for vname, x in versions.items()
            }
        body["deployments"][dname] = entry
    return body


class Transfer:
    """``/api/v1/projects/{project}/exports`` and ``…/imports``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    # --- exports ----------------------------------------------------------------------------------------------
    def create_export(
        self,
        project: str,
        selection: dict[str, Any] | None = None,
        *,
        everything: bool = False,
        packages: bool = True,
        description: str | None = None,
    ) -> Export:
        """Start an export of ``selection`` (``{deployments, pipelines, environment_variables, environments}`` in
        the API's shape, e.g. from :meth:`export_selection`), or of everything (with values); it is ``pending``."""
        body: dict[str, Any] = {**(selection or {}), "all": everything, "packages": packages}
        if description is not None:
            body["description"] = description
        return self._t.call(Export, "POST", project_path(project, "exports"), json=body)

    def export_selection(
        self,
        project: str,
        deployments: dict[str, list[str] | None] | None = None,
        pipelines: dict[str, list[str] | None] | None = None,
    ) -> dict[str, Any]:
        """A selection for :meth:`create_export`: each deployment with all its versions (or the listed ones), its and
        those versions' own variables with their values (a secret's value is never exported) and the custom
        environments those versions use; each pipeline with all its versions (or the listed ones)."""
        c = self._client
        system = {e.name for e in c.projects.environments(project) if e.system}
        out: dict[str, Any] = {"deployments": {}, "pipelines": {}, "environments": {}}

        def own(deployment: str, version: str | None = None) -> dict[str, Any]:
            found = c.env.list(project, deployment=deployment, version=version)
            return {e.name: {"include_value": True} for e in found if e.inheritance_type is None}

        for name, wanted in (deployments or {}).items():
            versions = {v.version: v for v in c.deployments.versions(project, name)}
            chosen = list(versions) if wanted is None else list(wanted)
            unknown = [v for v in chosen if v not in versions]
            if unknown:
                raise HarborClientError(
                    404, "NOT_FOUND", f"deployment {name!r} has no version {', '.join(map(repr, unknown))}"
                )
            out["deployments"][name] = {
                "environment_variables": own(name),
                "versions": {v: {"environment_variables": own(name, v)} for v in chosen},
            }
            for v in chosen:
                if versions[v].environment not in system:
                    out["environments"][versions[v].environment] = {}
        for name, wanted in (pipelines or {}).items():
            versions_p = [v.version for v in c.pipelines.versions(project, name)]
            chosen = versions_p if wanted is None else list(wanted)
            unknown = [v for v in chosen if v not in versions_p]
            if unknown:
                raise HarborClientError(
                    404, "NOT_FOUND", f"pipeline {name!r} has no version {', '.join(map(repr, unknown))}"
                )
            out["pipelines"][name] = {"versions": {v: {} for v in chosen}}
        return out

    def exports(self, project: str, *, status: str | None = None) -> list[Export]:
        params = {"status": status} if status else {}
        return self._t.call(list[Export], "GET", project_path(project, "exports"), params=params)

    def get_export(self, project: str, export_id: str) -> ExportDetail:
        """One export with its selection; once completed also the zip's ``file_id`` and ``sha256``."""
        return self._t.call(ExportDetail, "GET", project_path(project, "exports", export_id))

    def delete_export(self, project: str, export_id: str) -> None:
        self._t.request("DELETE", project_path(project, "exports", export_id))

    def wait_for_export(
        self,
        project: str,
        export_id: str,
        *,
        timeout: float = 3600.0,
        on_status: Callable[[ExportDetail, float], None] | None = None,
    ) -> ExportDetail:
        """Poll an export until it is ``completed`` or ``failed`` (``on_status(export, elapsed)`` after each poll)."""
        return poll(lambda: self.get_export(project, export_id), EXPORT_DONE, timeout, on_status, f"export {export_id}")

    def download_export(
        self,
        project: str,
        export_id: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Path:
        """Download a completed export's zip to ``dest`` (a path, or a directory for the server's name
        ``export_<project>_<id8>.zip``; default: here). Resumes ``<dest>.part``; verifies the SHA-256."""
        e = self.get_export(project, export_id)
        if e.status != "completed" or not e.sha256 or e.size is None:
            raise HarborClientError(
                0, "NOT_READY", f"export {export_id} is {e.status}: it can be downloaded once completed"
            )
        target = target_path(dest, f"export_{safe_name(e.project, 'project')}_{e.id[:8]}.zip", "export.zip")
        url = project_path(project, "exports", export_id, "download")
        return fetch_verified(self._t, url, target, e.size, e.sha256, progress)

    def export(
        self,
        project: str,
        dest: str | os.PathLike[str] | None = None,
        selection: dict[str, Any] | None = None,
        *,
        everything: bool = False,
        packages: bool = True,
        timeout: float = 3600.0,
        progress: Progress | None = None,
        on_status: Callable[[ExportDetail, float], None] | None = None,
        on_created: Callable[[Export], None] | None = None,
    ) -> tuple[ExportDetail, Path]:
        """Export, wait until the zip is built, download it (resumable, SHA-256 checked): ``(export, path)``.
        A failed export raises ``HarborClientError`` (code ``EXPORT_FAILED``) with the server's reason."""
        e = self.create_export(project, selection, everything=everything, packages=packages)
        if on_created:
            on_created(e)
        e = self.wait_for_export(project, e.id, timeout=timeout, on_status=on_status)
        if e.status == "failed":
            raise HarborClientError(
                0, "EXPORT_FAILED", f"export {e.id} failed: {e.error_message or 'no reason given'}", {"export": e}
            )
        return e, self.download_export(project, e.id, dest, progress=progress)

    # --- imports ----------------------------------------------------------------------------------------------
    def create_import(
        self,
        project: str,
        *,
        file_id: str | None = None,
        export_id: str | None = None,
        import_link: str | None = None,
        skip_confirmation: bool = False,
    ) -> Import:
        """Start an import from an uploaded file, an export of the project or a link (exactly one)."""
        body: dict[str, Any] = {
            k: v
            for k, v in {"file_id": file_id, "export_id": export_id, "import_link": import_link}.items()
            if v is not None
        }
        body["skip_confirmation"] = skip_confirmation
        return self._t.call(Import, "POST", project_path(project, "imports"), json=body)

    def imports(self, project: str, *, status: str | None = None) -> list[Import]:
        params = {"status": status} if status else {}
        return self._t.call(list[Import], "GET", project_path(project, "imports"), params=params)

    def get_import(self, project: str, import_id: str) -> ImportDetail:
        """One import with what its zip holds (the confirmation's shape)."""
        return self._t.call(ImportDetail, "GET", project_path(project, "imports", import_id))

    def confirm_import(self, project: str, import_id: str, body: dict[str, Any]) -> ImportDetail:
        """The confirmation: the objects to create (see :func:`confirmation_body`)."""
        return self._t.call(ImportDetail, "PATCH", project_path(project, "imports", import_id), json=body)

    def delete_import(self, project: str, import_id: str) -> None:
        self._t.request("DELETE", project_path(project, "imports", import_id))

    def wait_for_import(
        self,
        project: str,
        import_id: str,
        *,
        until: tuple[str, ...] = IMPORT_WAITS,
        timeout: float = 3600.0,
        on_status: Callable[[ImportDetail, float], None] | None = None,
    ) -> ImportDetail:
        """Poll an import until its status is one of ``until`` (default: ``confirmation``, ``completed``,
        ``failed``) and return it."""
        return poll(lambda: self.get_import(project, import_id), until, timeout, on_status, f"import {import_id}")

    def upload_for_import(
        self,
        project: str,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        skip_confirmation: bool = False,
        progress: Progress | None = None,
        on_session: SessionCallback | None = None,
    ) -> Import:
        """Check that ``project`` exists (before any byte is sent), upload the zip (resumable), start the import
        from it; the uploaded file's record is deleted then (the import keeps the bytes)."""
        self._client.projects.get(project)
        record = self._client.uploads.upload(
            path,
            chunk_size=chunk_size,
            parallel=parallel,
            context=IMPORT_UPLOAD_CONTEXT,
            progress=progress,
            on_session=on_session,
        )
        try:
            return self.create_import(project, file_id=record.id, skip_confirmation=skip_confirmation)
        finally:
            with contextlib.suppress(HarborClientError):
                self._client.files.delete(record.id)

    def import_zip(
        self,
        project: str,
        path: str | os.PathLike[str],
        *,
        skip_confirmation: bool = False,
        confirm: Callable[[ImportDetail], dict[str, Any] | None] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        timeout: float = 3600.0,
        progress: Progress | None = None,
        on_session: SessionCallback | None = None,
        on_created: Callable[[Import], None] | None = None,
        on_status: Callable[[ImportDetail, float], None] | None = None,
    ) -> ImportDetail:
        """Import a zip (an export) into ``project``: a resumable chunked upload, the import from that file, the
        scan, and then — unless ``skip_confirmation`` — ``confirm(import)``, which returns the confirmation's body
        (default :func:`confirmation_body`: everything as in the zip) or None to stop there (the import is
        deleted; code ``IMPORT_DECLINED``). Returns the completed import; a failed one raises
        ``HarborClientError`` (code ``IMPORT_FAILED``) with the server's reason."""
        imp = self.upload_for_import(
            project,
            path,
            chunk_size=chunk_size,
            parallel=parallel,
            skip_confirmation=skip_confirmation,
            progress=progress,
            on_session=on_session,
        )
        if on_created:
            on_created(imp)
        imp = self.wait_for_import(project, imp.id, timeout=timeout, on_status=on_status)
        if imp.status == "confirmation":
            body = confirm(imp) if confirm is not None else confirmation_body(imp)
            if body is None:
                with contextlib.suppress(HarborClientError):
                    self.delete_import(project, imp.id)
                raise HarborClientError(0, "IMPORT_DECLINED", f"import {imp.id} not confirmed: nothing imported")
            self.confirm_import(project, imp.id, body)
            imp = self.wait_for_import(project, imp.id, until=IMPORT_DONE, timeout=timeout, on_status=on_status)
        if imp.status == "failed":
            raise HarborClientError(
                0, "IMPORT_FAILED", f"import {imp.id} failed: {imp.error_message or 'no reason given'}", {"import": imp}
            )
        return imp
