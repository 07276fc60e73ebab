"""``modelharbor catalogue``: the pretrained-model catalogue — list, show, create, push/pull data, delete,
reinstate, frameworks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    bar,
    command,
    emit_json,
    human,
    interruptible,
    lines,
    show,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.wire import CatalogueModel

catalogue_app = typer.Typer(
    help="The pretrained-model catalogue: list, show, create, push/pull data, delete, reinstate.",
    no_args_is_help=True,
)
PkArg = typer.Argument(..., metavar="PK", min=1, help="The model's pk.")


def describe(m: CatalogueModel) -> list[str]:
    fw, dom, lic, data = m.framework, m.domain, m.licence, m.data
    found = [
        f"pk: {m.pk}",
        f"name: {m.name}",
        f"url: {m.url}",
        f"framework: {fw.name} {fw.version} (pk {fw.pk})",
        f"domain: {dom.name} ({dom.description})",
        f"licence: {lic.name} ({lic.url})",
    ]
    if m.description:
        found.append(f"description: {m.description}")
    if m.metadata:
        found.append(f"metadata: {m.metadata}")
    if data:
        found += [f"data: {data.file_id} ({human(data.size)})", f"sha256: {data.sha256}", f"size: {data.size}"]
    else:
        found.append("data: none")
    found.append(f"created: {when(m.creation_time)}")
    if m.deletion_time:
        found.append(f"deleted: {when(m.deletion_time)} (reinstate with `modelharbor catalogue reinstate {m.pk}`)")
    return found


@command(catalogue_app, "list")
def catalogue_list(
    include_all: bool = typer.Option(False, "--all", help="Also list soft-deleted models."),
    name: str = typer.Option(None, "--name", help="Only models whose name contains this (any case)."),
    framework: str = typer.Option(None, "--framework", help="Only this framework (pk or name)."),
    domain: str = typer.Option(None, "--domain", help="Only this domain (code, e.g. ic)."),
    licence: str = typer.Option(None, "--licence", help="Only this licence (name)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """List the organisation's pretrained models."""
    models = client.catalogue.list(
        include_inactive=include_all, name_contains=name, framework=framework, domain=domain, licence=licence
    )
    if as_json:
        emit_json(models)
        return
    t = table(("pk", {"justify": "right", "no_wrap": True}), ("name", {"min_width": 8}), "framework", "domain")
    t.add_column("licence", overflow="fold")
    t.add_column("data", no_wrap=True, justify="right")
    t.add_column("created", no_wrap=True)
    if include_all:
        t.add_column("deleted", no_wrap=True)
    for m in models:
        row = [
            str(m.pk),
            escape(m.name),
            escape(f"{m.framework.name} {m.framework.version}"),
            escape(m.domain.name),
            escape(m.licence.name),
            human(m.data.size) if m.data else "-",
            when(m.creation_time),
        ]
        t.add_row(*row, *([when(m.deletion_time)] if include_all else []))
    show(t)
    lines(f"{len(models)} model(s)")


@command(catalogue_app, "show")
def catalogue_show(pk: int = PkArg, as_json: bool = JsonOpt, client: Client = None):
    """Show one model."""
    model = client.catalogue.get(pk)
    if as_json:
        emit_json(model)
        return
    lines(*describe(model))


def catalogue_create(
    name: str = typer.Option(..., "--name", help="The model's name."),
    model_url: str = typer.Option(..., "--url", help="Where the model comes from (a URL)."),
    framework: str = typer.Option(..., "--framework", help="Framework: pk, NAME or NAME:VERSION."),
    domain: str = typer.Option(..., "--domain", help="Domain code: ic, od, is, sp, sc …"),
    licence: str = typer.Option(..., "--licence", help="Licence name, e.g. MIT or 'Apache 2.0'."),
    description: str = typer.Option(None, "--description", help="Free text."),
    metadata: str = typer.Option(None, "--metadata", help="Free text, e.g. JSON."),
    server: str = typer.Option(None, "--server", help="Server base URL (this command's --url is the model's)."),
    as_json: bool = JsonOpt,
    key: str = typer.Option(None, "--key", help="API key (default: MODELHARBOR_API_KEY, else the profile's)."),
    profile: str = typer.Option(None, "--profile", help="A profile saved by `modelharbor login`."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a failure."),
):
    """Create a pretrained model (admins); push its data with `catalogue push-data`."""
    from modelharbor.sdk.cli.common import STATE, connect, failures

    STATE.debug = STATE.debug or debug
    with failures(), connect(server, key, profile) as client:
        model = client.catalogue.create(
            name=name,
            url=model_url,
            framework=client.catalogue.framework_pk(framework),
            domain=domain,
            licence=licence,
            description=description,
            metadata=metadata,
        )
    if as_json:
        emit_json(model)
        return
    lines(*describe(model))


catalogue_app.command("create")(catalogue_create)


@command(catalogue_app, "push-data")
def catalogue_push_data(
    pk: int = PkArg,
    file: Path = typer.Argument(
        None, exists=True, dir_okay=False, readable=True, show_default=False, help="The data file to send."
    ),
    file_id: str = typer.Option(None, "--file-id", help="Use this already-uploaded file instead (no bytes sent)."),
    name: str = typer.Option(None, "--name", help="Name of the data on the server (default: the file's name)."),
    client: Client = None,
):
    """Set a model's data from FILE (with a progress bar) or from an uploaded file's id (--file-id)."""
    if (file is None) == (file_id is None):
        raise typer.BadParameter("give either FILE or --file-id", param_hint="FILE / --file-id")
    if file_id is not None:
        model = client.catalogue.data_from_file(pk, file_id)
    else:
        advice = "interrupted: the model keeps its previous data; run the command again"
        with bar(file.name) as (update, progress), interruptible(progress, advice):
            model = client.catalogue.push_data(pk, file, filename=name, progress=update)
    data = model.data
    lines(f"pk: {model.pk}", f"data: {data.file_id}", f"sha256: {data.sha256}", f"size: {data.size}")


@command(catalogue_app, "pull-data")
def catalogue_pull_data(
    pk: int = PkArg,
    output: str = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    client: Client = None,
):
    """Download a model's data (resumes a .part left by an interrupted run; checks the SHA-256)."""
    advice = "interrupted: run the same command again to resume the download"
    with bar(f"model {pk}") as (update, progress), interruptible(progress, advice):
        path = client.catalogue.pull_data(pk, output, progress=update)
    lines(str(path))


@command(catalogue_app, "delete")
def catalogue_delete(
    pk: int = PkArg,
    hard: bool = typer.Option(False, "--hard", help="Delete the model and its data for good (no reinstating)."),
    client: Client = None,
):
    """Soft-delete a model (undo with `catalogue reinstate`), or with --hard delete it for good."""
    model = client.catalogue.delete(pk, hard=hard)
    if hard:
        lines(f"deleted model {model.pk} ({model.name}) and its data for good")
    else:
        lines(f"deleted model {model.pk} ({model.name}); undo with `modelharbor catalogue reinstate {model.pk}`")


@command(catalogue_app, "reinstate")
def catalogue_reinstate(pk: int = PkArg, client: Client = None):
    """Undo a soft delete."""
    model = client.catalogue.reinstate(pk)
    lines(f"reinstated model {model.pk} ({model.name})")


@command(catalogue_app, "frameworks")
def catalogue_frameworks(as_json: bool = JsonOpt, client: Client = None):
    """List the frameworks (pk, name, version)."""
    frameworks = client.catalogue.frameworks()
    if as_json:
        emit_json(frameworks)
        return
    t = table(("pk", {"no_wrap": True}), "name", "version")
    for f in frameworks:
        t.add_row(str(f.pk), escape(f.name), escape(f.version))
    show(t)


def register(app: typer.Typer) -> None:
    app.add_typer(catalogue_app, name="catalogue")
