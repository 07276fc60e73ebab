"""``modelharbor data-sources``: named connection settings for external stores — list, create, show, test, delete.
Secret credentials are given as ``--secret KEY=VALUE`` or, safer, ``--secret KEY`` (asked for, not echoed); the
server seals them and never shows them again."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    command,
    confirm_delete,
    emit_json,
    key_values,
    lines,
    show,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.wire import DataSource

sources_app = typer.Typer(help="Data sources: list, create, show, test, delete.", no_args_is_help=True)
IdArg = typer.Argument(..., metavar="ID", help="The data source's id.")


def _one(d: DataSource, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(d)
        return
    lines(f"{verb} data source {d.id} ({d.name}): {d.data_source_type}, {d.auth_type}, {d.credential_type}")


def _secrets(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not key:
            raise typer.BadParameter(f"{item!r} is not KEY or KEY=VALUE", param_hint="--secret")
        out[key] = value if eq else typer.prompt(key, hide_input=True, err=True)
    return out


@command(sources_app, "list")
def sources_list(
    name: list[str] = typer.Option(None, "--name", help="Only these names (repeat)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of the data sources you may see, by name."""
    items = client.data_sources.list(names=name or ())
    if as_json:
        emit_json(items)
        return
    t = table("id", "name", "type", "auth", "credentials", "owner", "shared with", "updated")
    for x in items:
        shared = "everyone" if x.is_everyone else ", ".join(x.grantee_ids) or "-"
        t.add_row(
            escape(x.id), escape(x.name), x.data_source_type, x.auth_type, x.credential_type,
            escape(x.owner_username), escape(shared), when(x.updated_at),
        )  # fmt: skip
    show(t)
    lines(f"{len(items)} data source(s)")


@command(sources_app, "create")
def sources_create(
    name: str = typer.Argument(..., metavar="NAME"),
    data_source_type: str = typer.Option(..., "--type", help="S3Config, GenericS3Config, PostgreSQLConfig, …"),
    auth_type: str = typer.Option(..., "--auth", help="Basic, AWSIAMBasic, OAuth or NoAuth."),
    config: list[str] = typer.Option(None, "--config", help="A setting KEY=VALUE (repeat)."),
    visible: list[str] = typer.Option(None, "--visible", help="A visible credential KEY=VALUE, e.g. username=bob."),
    secret: list[str] = typer.Option(None, "--secret", help="A secret credential KEY (asked for) or KEY=VALUE."),
    individual: bool = typer.Option(False, "--individual", help="Each user sets their own credentials."),
    everyone: bool = typer.Option(False, "--everyone", help="Everyone in the organisation may use it."),
    grant: list[str] = typer.Option(None, "--grant", help="A user (id or username) or team id allowed (repeat)."),
    description: str = typer.Option("", "--description"),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create a data source (the type's fields: docs/dialects/domino.md#data-sources)."""
    d = client.data_sources.create(
        name, data_source_type, auth_type=auth_type, config=key_values(config, "--config"),
        visible=key_values(visible, "--visible"), secret=_secrets(secret),
        credential_type="Individual" if individual else "Shared", everyone=everyone, grantees=grant or (),
        description=description,
    )  # fmt: skip
    _one(d, as_json, "created")


@command(sources_app, "show")
def sources_show(data_source: str = IdArg, as_json: bool = JsonOpt, client: Client = None):
    """One data source's settings (never its credentials)."""
    d = client.data_sources.get(data_source)
    if as_json:
        emit_json(d)
        return
    _one(d, False, "")
    for key, value in sorted(d.config.items()):
        lines(f"  {key}: {value}")


@command(sources_app, "test")
def sources_test(data_source: str = IdArg, as_json: bool = JsonOpt, client: Client = None):
    """Ask the server to connect; exit code 1 when it cannot."""
    result = client.data_sources.test(data_source)
    if as_json:
        emit_json(result)
    else:
        lines(f"{'ok' if result.ok else 'failed'} ({result.elapsed_ms} ms): {result.message}")
    if not result.ok:
        raise typer.Exit(1)


@command(sources_app, "delete")
def sources_delete(data_source: str = IdArg, yes: bool = YesOpt, as_json: bool = JsonOpt, client: Client = None):
    """Delete a data source (its owner only)."""
    confirm_delete(f"data source {data_source}", yes)
    _one(client.data_sources.delete(data_source), as_json, "deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="data-sources")
