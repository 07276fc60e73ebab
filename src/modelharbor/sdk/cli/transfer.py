"""``modelharbor export``, ``import``, ``exports list|download|delete`` and ``imports list|delete``: a project's
deployments, pipelines, environments and variables as one zip, and back."""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    bar,
    command,
    emit_json,
    err,
    error_line,
    human,
    lines,
    short,
    show,
    size_option,
    status_lines,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.deploy import first_line
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.transfer import IMPORT_DONE, IMPORT_WAITS, confirmation_body, missing_values
from modelharbor.sdk.wire import Export, ImportDetail, Upload

exports_app = typer.Typer(help="Exports of a project: list, download, delete.", no_args_is_help=True)
imports_app = typer.Typer(help="Imports into a project: list, delete.", no_args_is_help=True)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")
ExportIdArg = typer.Argument(..., metavar="EXPORT_ID", help="The export's id.")
ImportIdArg = typer.Argument(..., metavar="IMPORT_ID", help="The import's id.")
_SECRET_KEY = re.compile(r"^[^/=\s]+(?:/[^/=\s]+){0,2}$")


def _named_versions(items: list[str] | None, option: str) -> dict[str, list[str] | None]:
    """``NAME`` (every version) or ``NAME:V,V…`` per item."""
    chosen: dict[str, list[str] | None] = {}
    for item in items or []:
        name, colon, versions = item.partition(":")
        picked = [v.strip() for v in versions.split(",") if v.strip()]
        if not name.strip() or (colon and not picked):
            raise typer.BadParameter(f"{item!r} is not NAME or NAME:VERSION,VERSION…", param_hint=option)
        if name.strip() in chosen:
            raise typer.BadParameter(f"{name.strip()!r} is given twice", param_hint=option)
        chosen[name.strip()] = picked if colon else None
    return chosen


def export(
    project: str = ProjectArg,
    output: str = typer.Option(
        None, "-o", "--output", help="The zip to write, or a directory (default: here, the server's name)."
    ),
    everything: bool = typer.Option(False, "--all", help="Everything, with values (the default with no selection)."),
    deployments: list[str] = typer.Option(
        None, "--deployment", "-d", help="D (all its versions) or D:V,V… (repeatable)."
    ),
    pipelines: list[str] = typer.Option(None, "--pipeline", help="P (all its versions) or P:V,V… (repeatable)."),
    packages: bool = typer.Option(True, "--packages/--no-packages", help="Include each version's package."),
    timeout: float = typer.Option(3600, "--timeout", min=1, help="Seconds to wait for the zip to be built."),
    client: Client = None,
):
    """Export PROJECT (everything, or the deployments and pipelines named) as a zip: wait while the server builds
    it, then download it with a progress bar (resumable) and check its SHA-256."""
    chosen_d = _named_versions(deployments, "--deployment")
    chosen_p = _named_versions(pipelines, "--pipeline")
    if everything and (chosen_d or chosen_p):
        raise typer.BadParameter("--all exports everything: leave out --deployment/--pipeline", param_hint="--all")
    everything = everything or not (chosen_d or chosen_p)
    selection = None if everything else client.transfer.export_selection(project, chosen_d, chosen_p)
    e = client.transfer.create_export(project, selection, everything=everything, packages=packages)
    err.print(f"export {e.id} of {e.project}", highlight=False, markup=False)
    try:
        with status_lines("export") as on_status:
            e = client.transfer.wait_for_export(project, e.id, timeout=timeout, on_status=on_status)
    except KeyboardInterrupt:
        err.print(f"stopped waiting: the export goes on; fetch it with `modelharbor exports download {project} {e.id}`")
        raise typer.Exit(130) from None
    if e.status == "failed":
        error_line(f"export {e.id} failed: {e.error_message or 'no reason given'}")
        raise typer.Exit(1)
    path = _download_export(client, project, e, output)
    lines(str(path), f"sha256: {e.sha256}", f"size: {e.size}")


def _download_export(client: Client, project: str, e: Export, output: str | None) -> Path:
    with bar(f"export {e.id[:8]}") as (update, progress):
        try:
            return client.transfer.download_export(project, e.id, output, progress=update)
        except KeyboardInterrupt:
            progress.stop()
            where = f" -o {output}" if output else ""
            err.print(f"interrupted: resume with `modelharbor exports download {project} {e.id}{where}`")
            raise typer.Exit(130) from None


@command(exports_app, "list")
def exports_list(
    project: str = ProjectArg,
    status: str = typer.Option(None, "--status", help="pending, processing, completed or failed."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of a project's exports, newest first."""
    items = client.transfer.exports(project, status=status)
    if as_json:
        emit_json(items)
        return
    t = table(
        "id", ("status", {"no_wrap": True}), ("size", {"no_wrap": True}), "packages", ("created", {"no_wrap": True})
    )
    t.add_column("by", overflow="fold")
    t.add_column("error", overflow="fold")
    for e in items:
        state = e.status + (f" {e.percent}%" if e.status in ("pending", "processing") else "")
        t.add_row(
            e.id,
            escape(state),
            human(e.size) if e.size is not None else "-",
            "yes" if e.packages else "no",
            when(e.created_at),
            escape(e.created_by or "-"),
            escape(short(first_line(e.error_message), 60) if e.error_message else ""),
        )
    show(t)
    lines(f"{len(items)} export(s)")


@command(exports_app, "download")
def exports_download(
    project: str = ProjectArg,
    export_id: str = ExportIdArg,
    output: str = typer.Option(None, "-o", "--output", help="The zip to write, or a directory (default: here)."),
    client: Client = None,
):
    """Download a completed export (resumes a .part left by an interrupted run; checks the SHA-256)."""
    e = client.transfer.get_export(project, export_id)
    path = _download_export(client, project, e, output)
    lines(str(path), f"sha256: {e.sha256}", f"size: {e.size}")


@command(exports_app, "delete")
def exports_delete(project: str = ProjectArg, export_id: str = ExportIdArg, client: Client = None):
    """Delete an export and its zip."""
    client.transfer.delete_export(project, export_id)
    lines(f"deleted export {export_id}")


# --- imports ------------------------------------------------------------------------------------------------
def _secret_values(items: list[str] | None) -> dict[str, str]:
    """``--secret NAME=VALUE`` (every level), ``D/NAME=VALUE`` (deployment D and its versions), ``D/V/NAME=VALUE``."""
    values: dict[str, str] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not _SECRET_KEY.match(name):
            raise typer.BadParameter(
                "expected NAME=VALUE, DEPLOYMENT/NAME=VALUE or DEPLOYMENT/VERSION/NAME=VALUE (the value is not shown)",
                param_hint="--secret",
            )
        values[name] = value
    return values


def _level_text(var: dict[str, Any]) -> str:
    if var["version"] is not None:
        return f"deployment {var['deployment']} version {var['version']}"
    return f"deployment {var['deployment']}" if var["deployment"] is not None else "project"


def describe_import(imp: ImportDetail, needed: list[dict[str, Any]]) -> list[str]:
    """What an import's zip holds (or what it imported), a line per object."""
    lacking = {(v["deployment"], v["version"], v["name"]) for v in needed}

    def variables(raw: dict[str, Any] | None, d: str | None = None, v: str | None = None) -> str:
        found = []
        for name, var in (raw or {}).items():
            notes = [
                x
                for x in ("secret" if var.get("secret") else "", "needs a value" if (d, v, name) in lacking else "")
                if x
            ]
            found.append(name + (f" ({', '.join(notes)})" if notes else ""))
        return ", ".join(found)

    found = []
    for dname, d in (imp.deployments or {}).items():
        own = d.get("environment_variables")
        found.append(f"deployment {dname}" + (f": variables {variables(own, dname)}" if own else ""))
        for vname, v in (d.get("versions") or {}).items():
            facts = [f"environment {v.get('environment') or 'default'}", "package" if v.get("zip") else "no package"]
            if v.get("environment_variables"):
                facts.append("variables " + variables(v["environment_variables"], dname, vname))
            found.append(f"  version {vname}: " + "; ".join(facts))
    for pname, pl in (imp.pipelines or {}).items():
        found.append(f"pipeline {pname}: versions {', '.join(pl.get('versions') or {}) or 'none'}")
    for ename, env in (imp.environments or {}).items():
        base = env.get("base_environment")
        found.append(f"environment {ename}" + (f" (base {base})" if base else ""))
    if imp.environment_variables:
        found.append("project variables: " + variables(imp.environment_variables))
    return found or ["nothing"]


def _values_for(needed: list[dict[str, Any]], given: dict[str, str], interactive: bool) -> dict[tuple, str]:
    """A value for each variable that needs one: the most specific ``--secret``, else asked (hidden for secrets)."""
    values: dict[tuple, str] = {}
    used: set[str] = set()
    missing = []
    for var in needed:
        d, v, name = var["deployment"], var["version"], var["name"]
        keys = [f"{d}/{v}/{name}", f"{d}/{name}", name] if v is not None else [f"{d}/{name}", name] if d else [name]
        found = next((k for k in keys if k in given), None)
        if found is not None:
            values[(d, v, name)] = given[found]
            used.add(found)
        elif interactive:
            kind = "secret" if var["secret"] else "variable"
            values[(d, v, name)] = typer.prompt(
                f"value of {kind} {name} ({_level_text(var)})", hide_input=var["secret"], err=True
            )
        else:
            missing.append(var)
    for k in sorted(set(given) - used):
        err.print(f"warning: --secret {k}=… matches no variable that needs a value", highlight=False, markup=False)
    if missing:
        which = ", ".join(f"{x['name']} ({_level_text(x)})" for x in missing)
        raise HarborClientError(
            0,
            "VALUES_NEEDED",
            f"these variables need a value: {which}; pass each with --secret NAME=VALUE (or DEPLOYMENT/NAME=VALUE)",
        )
    return values


def import_(
    project: str = ProjectArg,
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, metavar="FILE.zip", help="The zip (an export)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Import everything the zip holds without asking."),
    secrets: list[str] = typer.Option(
        None, "--secret", help="NAME=VALUE for a variable that needs a value (repeatable; never shown)."
    ),
    create: bool = typer.Option(False, "--create", help="Create PROJECT if it does not exist."),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Upload chunk size: 64MiB, 8M …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Chunks sent at once."),
    timeout: float = typer.Option(3600, "--timeout", min=1, help="Seconds to wait for each stage."),
    client: Client = None,
):
    """Import FILE.zip into PROJECT (which must exist, or --create it; checked before anything is sent): upload it
    (resumable), let the server check it, show what it holds, ask (unless --yes) and for the values secrets need
    (unless given with --secret), then create it all."""
    size = size_option(chunk_size, "--chunk-size")
    given = _secret_values(secrets)
    interactive = sys.stdin.isatty()
    if create and client.projects.find(project) is None:
        p = client.projects.create(project)
        err.print(f"created project {p.name}", highlight=False, markup=False)
    with bar(file.name) as (update, progress):

        def on_session(session: Upload, resumed: bool, to_send: list[int]) -> None:
            if resumed:
                total = session.total_chunks
                progress.console.print(
                    f"resuming upload {session.id}: {total - len(to_send)} of {total} chunks already on the server",
                    soft_wrap=True,
                    highlight=False,
                )

        try:
            imp = client.transfer.upload_for_import(
                project, file, chunk_size=size, parallel=parallel, progress=update, on_session=on_session
            )
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume the upload")
            raise typer.Exit(130) from None
    err.print(f"import {imp.id} into {imp.project}", highlight=False, markup=False)
    imp = _follow(client, project, imp.id, IMPORT_WAITS, timeout)
    if imp.status == "confirmation":
        needed = missing_values(imp)
        lines(f"{file.name} holds:", *("  " + line for line in describe_import(imp, needed)))
        try:
            values = _values_for(needed, given, interactive)
            if not yes:
                if not interactive:
                    raise HarborClientError(0, "NOT_CONFIRMED", "not confirmed: pass --yes to import without asking")
                if not typer.confirm(f"import all this into {imp.project}?", default=False, err=True):
                    raise HarborClientError(0, "NOT_CONFIRMED", "not confirmed")
        except (HarborClientError, KeyboardInterrupt, typer.Abort) as exc:
            with contextlib.suppress(HarborClientError):
                client.transfer.delete_import(project, imp.id)
            if isinstance(exc, HarborClientError):
                raise HarborClientError(exc.status, exc.code, f"{exc.message}; nothing was imported") from None
            err.print("nothing was imported")
            raise typer.Exit(130) from None
        client.transfer.confirm_import(project, imp.id, confirmation_body(imp, values))
        imp = _follow(client, project, imp.id, IMPORT_DONE, timeout)
    if imp.status == "failed":
        error_line(f"import {imp.id} failed: {imp.error_message or 'no reason given'}")
        raise typer.Exit(1)
    counts = {
        k: len(getattr(imp, k) or {}) for k in ("deployments", "pipelines", "environments", "environment_variables")
    }
    versions = sum(len(d.get("versions") or {}) for d in (imp.deployments or {}).values())
    lines(
        f"imported into {imp.project}: {counts['deployments']} deployment(s) with {versions} version(s), "
        f"{counts['pipelines']} pipeline(s), {counts['environments']} environment(s), "
        f"{counts['environment_variables']} project variable(s)"
    )
    if versions:
        err.print(
            f"packages build in the background: see `modelharbor deployments show {imp.project} DEPLOYMENT`",
            highlight=False,
            markup=False,
        )


def _follow(client: Client, project: str, import_id: str, until: tuple[str, ...], timeout: float) -> ImportDetail:
    try:
        with status_lines("import") as on_status:
            return client.transfer.wait_for_import(
                project, import_id, until=until, timeout=timeout, on_status=on_status
            )
    except KeyboardInterrupt:
        err.print(f"stopped waiting: import {import_id} goes on; see `modelharbor imports list {project}`")
        raise typer.Exit(130) from None


@command(imports_app, "list")
def imports_list(
    project: str = ProjectArg,
    status: str = typer.Option(None, "--status", help="pending, scanning, confirmation, …, completed or failed."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of a project's imports, newest first."""
    items = client.transfer.imports(project, status=status)
    if as_json:
        emit_json(items)
        return
    t = table(
        "id", ("status", {"no_wrap": True}), "source", ("size", {"no_wrap": True}), ("created", {"no_wrap": True})
    )
    t.add_column("by", overflow="fold")
    t.add_column("error", overflow="fold")
    for i in items:
        state = i.status + (f" {i.percent}%" if i.percent is not None and i.status != "completed" else "")
        t.add_row(
            i.id,
            escape(state),
            escape(i.source),
            human(i.size) if i.size is not None else "-",
            when(i.created_at),
            escape(i.created_by or "-"),
            escape(short(first_line(i.error_message), 60) if i.error_message else ""),
        )
    show(t)
    lines(f"{len(items)} import(s)")


@command(imports_app, "delete")
def imports_delete(project: str = ProjectArg, import_id: str = ImportIdArg, client: Client = None):
    """Delete an import and its zip (the objects it created stay)."""
    client.transfer.delete_import(project, import_id)
    lines(f"deleted import {import_id}")


def register(app: typer.Typer) -> None:
    command(app, "export")(export)
    command(app, "import")(import_)
    app.add_typer(exports_app, name="exports")
    app.add_typer(imports_app, name="imports")
