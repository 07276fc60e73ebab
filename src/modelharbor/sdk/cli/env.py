"""``modelharbor env``: environment variables of a project, deployment or version — set, list, delete (a secret's
value is never shown)."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import JsonOpt, command, emit_json, lines, short, show, table
from modelharbor.sdk.client import Client

env_app = typer.Typer(
    help="Environment variables of a project, deployment or version: set, list, delete.", no_args_is_help=True
)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")
DeploymentOpt = typer.Option(None, "--deployment", "-d", help="At deployment level.")
VersionOpt = typer.Option(None, "--version", help="At version level (with --deployment).")


def _level(deployment: str | None, version: str | None) -> None:
    if version is not None and deployment is None:
        raise typer.BadParameter("--version needs --deployment", param_hint="--version")


def _where(project: str, deployment: str | None, version: str | None) -> str:
    return "/".join(x for x in (project, deployment, version) if x)


@command(env_app, "set")
def env_set(
    project: str = ProjectArg,
    name: str = typer.Argument(..., metavar="NAME", help="Letters, digits and _, starting with a letter."),
    value: str = typer.Argument(None, metavar="[VALUE]", help="The value (omit it to be asked, hidden for secrets)."),
    secret: bool = typer.Option(False, "--secret", help="Never show the value again (it is encrypted either way)."),
    deployment: str = DeploymentOpt,
    version: str = VersionOpt,
    client: Client = None,
):
    """Create or change an environment variable (project level unless --deployment / --version)."""
    _level(deployment, version)
    if value is None:
        value = typer.prompt(f"value of {name}", hide_input=secret, err=True)
    e = client.env.set(project, name, value, secret=secret, deployment=deployment, version=version)
    lines(f"set {'secret ' if e.secret else ''}{e.name} at {_where(project, deployment, version)}")


@command(env_app, "list")
def env_list(
    project: str = ProjectArg,
    deployment: str = DeploymentOpt,
    version: str = VersionOpt,
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of a level's variables, inherited ones first; secrets' values are never shown."""
    _level(deployment, version)
    items = client.env.list(project, deployment=deployment, version=version)
    if as_json:
        emit_json(items)
        return
    t = table(("name", {"no_wrap": True}), "value", "level", "id")
    for e in items:
        value = "(secret)" if e.secret else short(e.value or "", 60)
        level = "this level" if e.inheritance_type is None else f"{e.inheritance_type} {e.inheritance_name}"
        t.add_row(escape(e.name), escape(value), escape(level), e.id)
    show(t)
    lines(f"{len(items)} variable(s) at {_where(project, deployment, version)}")


@command(env_app, "delete")
def env_delete(
    project: str = ProjectArg,
    name: str = typer.Argument(..., metavar="NAME"),
    deployment: str = DeploymentOpt,
    version: str = VersionOpt,
    client: Client = None,
):
    """Delete a variable of this level (inherited ones are deleted at their own level)."""
    _level(deployment, version)
    client.env.unset(project, name, deployment=deployment, version=version)
    lines(f"deleted {name} at {_where(project, deployment, version)}")


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
