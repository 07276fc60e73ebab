"""``modelharbor models``: the model registry — list, show, versions (with tags), register, alias, stage,
download, delete, delete-version."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from modelharbor.sdk import names
from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    bar,
    command,
    confirm_delete,
    emit_json,
    human,
    interruptible,
    key_values,
    lines,
    out,
    short,
    show,
    size_option,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.wire import ModelVersion

models_app = typer.Typer(
    help="The model registry: list, show, versions, register, alias, stage, download, delete.", no_args_is_help=True
)
NameArg = typer.Argument(..., metavar="NAME", help="The registered model's name (quote names with spaces).")


def _version_ref(text: str | None) -> int | str | None:
    if text is None:
        return None
    if text.startswith("@") and len(text) > 1:
        return text
    if text.isdecimal() and int(text) > 0:
        return int(text)
    if text.lower() == "latest":
        return None
    raise typer.BadParameter(f"{text!r} is not a version number, @alias or 'latest'", param_hint="VERSION")


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def version_line(v: ModelVersion) -> str:
    aliases = f", aliases {', '.join(v.aliases)}" if v.aliases else ""
    return f"{v.name} version {v.version}: stage {v.current_stage}{aliases}"


def versions_table(versions: list[ModelVersion]) -> Table:
    t = table(("version", {"no_wrap": True, "justify": "right"}), ("stage", {"no_wrap": True}), "aliases", "tags")
    t.add_column("source", overflow="fold")
    t.add_column("run id", no_wrap=True)
    t.add_column("created", no_wrap=True)
    t.add_column("description", overflow="fold")
    for v in versions:
        t.add_row(
            str(v.version),
            escape(v.current_stage),
            escape(", ".join(v.aliases)),
            escape(_tags_text(v.tags)),
            escape(v.source),
            escape(v.run_id or ""),
            when(v.creation_time),
            escape(short(v.description)),
        )
    return t


@command(models_app, "list")
def models_list(
    name: str = typer.Option(None, "--name", help="Only models whose name contains this (any case)."),
    prefix: str = typer.Option(None, "--prefix", help="Only models whose name starts with this."),
    tag: list[str] = typer.Option(None, "--tag", help="Only models with this tag: KEY=VALUE (repeatable)."),
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """List the organisation's registered models."""
    tags = key_values(tag)
    models = list(client.models.iter(limit=limit + 1, name_contains=name, name_prefix=prefix, tags=tags or None))
    more = len(models) > limit
    models = models[:limit]
    if as_json:
        emit_json(models)
        return
    t = table(("name", {"min_width": 8}), ("latest", {"no_wrap": True, "justify": "right"}), "stages", "aliases")
    t.add_column("tags", overflow="fold")
    t.add_column("updated", no_wrap=True)
    t.add_column("description", overflow="fold")
    for m in models:
        latest = max((v.version for v in m.latest_versions), default=None)
        stages = ", ".join(f"{v.current_stage}: {v.version}" for v in m.latest_versions if v.current_stage != "None")
        t.add_row(
            escape(m.name),
            str(latest) if latest is not None else "-",
            escape(stages),
            escape(", ".join(f"{a}: {n}" for a, n in m.aliases.items())),
            escape(_tags_text(m.tags)),
            when(m.last_updated_time),
            escape(short(m.description)),
        )
    show(t)
    lines(f"{len(models)} model(s)" + (f" (more: raise --limit above {limit})" if more else ""))


@command(models_app, "show")
def models_show(name: str = NameArg, as_json: bool = JsonOpt, client: Client = None):
    """Show one registered model: description, tags, aliases and the latest version per stage (with its tags)."""
    m = client.models.get(name)
    if as_json:
        emit_json(m)
        return
    found = [f"name: {m.name}"]
    if m.description:
        found.append(f"description: {m.description}")
    found += [f"tag: {k}={v}" for k, v in m.tags.items()]
    found += [f"alias: {a} -> version {n}" for a, n in m.aliases.items()]
    if m.project_id:
        found.append(f"project: {m.project_id}")
    found += [f"created: {when(m.creation_time)}", f"updated: {when(m.last_updated_time)}"]
    lines(*found)
    if m.latest_versions:
        lines("latest versions:")
        show(versions_table(sorted(m.latest_versions, key=lambda v: -v.version)))
    else:
        lines("no versions yet")


@command(models_app, "versions")
def models_versions(
    name: str = NameArg,
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many (newest first)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """List a model's versions, newest first, with their stages, aliases and tags."""
    versions: list[ModelVersion] = []
    more = False
    token = None
    while True:
        page = client.models.versions(name, max_results=min(limit + 1 - len(versions), 1000), page_token=token)
        versions += page.versions
        token = page.next_page_token
        if len(versions) > limit:
            more, versions = True, versions[:limit]
            break
        if not token:
            break
    if as_json:
        emit_json(versions)
        return
    show(versions_table(versions))
    lines(f"{len(versions)} version(s)" + (f" (more: raise --limit above {limit})" if more else ""))


@command(models_app, "register")
def models_register(
    name: str = NameArg,
    path: Path = typer.Argument(
        ..., exists=True, readable=True, help="A file, or a directory such as an MLflow model."
    ),
    description: str = typer.Option(None, "--description", help="The version's description."),
    tag: list[str] = typer.Option(None, "--tag", help="A tag of the version: KEY=VALUE (repeatable)."),
    alias: list[str] = typer.Option(None, "--alias", help="Point this alias at the new version (repeatable)."),
    run_id: str = typer.Option(None, "--run-id", help="The MLflow run the model came from."),
    create: bool = typer.Option(True, "--create/--no-create", help="Create the registered model if it is new."),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Upload chunk size: 64MiB, 8M, 1048576 …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Connections at once."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Upload PATH (resumable, parallel, SHA-256 checked) and register it as a new version of NAME. The name and
    aliases are checked before any byte is sent."""
    size = size_option(chunk_size, "--chunk-size")
    tags = key_values(tag)
    names.model_name(name)
    for a in alias or []:
        names.alias(a)
    with bar(path.name) as (update, progress):

        def on_plan(count: int, total: int, reused: int) -> None:
            note = f", {human(reused)} already uploaded by an earlier run" if reused else ""
            progress.console.print(f"{count} file(s), {human(total)}{note}", highlight=False, markup=False)

        advice = "interrupted: run the same command again to resume (uploaded files are reused)"
        with interruptible(progress, advice):
            v = client.models.register(
                name,
                path,
                description=description,
                tags=tags or None,
                aliases=alias or None,
                run_id=run_id,
                create_model=create,
                chunk_size=size,
                parallel=parallel,
                progress=update,
                on_plan=on_plan,
            )
    if as_json:
        emit_json(v)
        return
    found = [f"registered {v.name} version {v.version}", f"source: {v.source}"]
    if v.aliases:
        found.append(f"aliases: {', '.join(v.aliases)}")
    if v.tags:
        found.append(f"tags: {_tags_text(v.tags)}")
    lines(*found)


@command(models_app, "alias")
def models_alias(
    name: str = NameArg,
    alias: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. champion."),
    version: str = typer.Argument(None, metavar="[VERSION]", help="Point the alias here (omit to show it)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    client: Client = None,
):
    """Point ALIAS at VERSION, show where it points (no VERSION), or remove it (--delete)."""
    if delete and version is not None:
        raise typer.BadParameter("give VERSION or --delete, not both", param_hint="VERSION / --delete")
    if version is not None and not version.isdecimal():
        raise typer.BadParameter(f"{version!r} is not a version number", param_hint="VERSION")
    if delete:
        client.models.delete_alias(name, alias)
        lines(f"removed alias {alias} of {name}")
        return
    v = client.models.set_alias(name, alias, int(version)) if version is not None else client.models.alias(name, alias)
    lines(version_line(v))


@command(models_app, "stage")
def models_stage(
    name: str = NameArg,
    version: int = typer.Argument(..., metavar="VERSION", min=1, help="The version number."),
    stage: str = typer.Argument(..., metavar="STAGE", help="None, Staging, Production or Archived (any case)."),
    archive_existing: bool = typer.Option(
        False, "--archive-existing", help="Archive the versions already in that stage (Staging/Production)."
    ),
    client: Client = None,
):
    """Move a version to a stage."""
    lines(version_line(client.models.stage(name, version, stage, archive_existing=archive_existing)))


@command(models_app, "download")
def models_download(
    name: str = NameArg,
    version: str = typer.Argument(None, metavar="[VERSION|@ALIAS]", help="Default: the newest version."),
    output: Path = typer.Option(None, "-o", "--output", help="Destination directory (default: here)."),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Files fetched at once."),
    client: Client = None,
):
    """Download every file of a version into a directory (skips complete files, resumes partial ones)."""
    ref = _version_ref(version)
    with bar(name) as (update, progress):

        def on_plan(v: ModelVersion, count: int, total: int) -> None:
            progress.console.print(
                f"{v.name} version {v.version}: {count} file(s), {human(total)}", highlight=False, markup=False
            )

        with interruptible(progress, "interrupted: run the same command again to resume the download"):
            result = client.models.download(name, ref, output, parallel=parallel, progress=update, on_plan=on_plan)
    skipped = f", {result.skipped} already complete" if result.skipped else ""
    lines(str(result.root), f"{result.files} file(s), {human(result.bytes)}: {result.downloaded} downloaded{skipped}")


@command(models_app, "delete")
def models_delete(
    name: str = NameArg,
    yes: bool = YesOpt,
    client: Client = None,
):
    """Delete a registered model with all its versions and their files."""
    m = client.models.get(name)
    count = len(client.models.versions(name, max_results=1000).versions)
    confirm_delete(f"registered model {m.name!r} and its {count} version(s)", yes)
    client.models.delete(name)
    lines(f"deleted registered model {m.name} ({count} version(s))")


@command(models_app, "delete-version")
def models_delete_version(
    name: str = NameArg,
    version: int = typer.Argument(..., metavar="VERSION", min=1, help="The version number."),
    client: Client = None,
):
    """Delete one version of a registered model (and its files)."""
    try:
        client.models.delete_version(name, version)
    except HarborClientError as exc:
        if exc.status == 404:
            raise HarborClientError(
                404, exc.code, f"{exc.message} (see `modelharbor models versions {name!r}`)"
            ) from None
        raise
    out.print(f"deleted {name} version {version}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
