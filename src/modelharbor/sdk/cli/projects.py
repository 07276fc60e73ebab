"""``modelharbor projects``: the organisation's projects — create, list, show, set, archive, unarchive, delete."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    command,
    confirm_delete,
    emit_json,
    lines,
    short,
    show,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.wire import Project

projects_app = typer.Typer(help="Projects: create, list, show, set, archive, unarchive, delete.", no_args_is_help=True)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")


def describe(p: Project) -> list[str]:
    found = [f"name: {p.name}", f"id: {p.id}"]
    if p.description:
        found.append(f"description: {p.description}")
    found += [
        f"owner: {p.owner_username or '-'} ({p.owner_id or '-'})",
        f"visibility: {p.visibility}" + ("  (archived: read-only)" if p.archived else ""),
        f"status: {p.status}",
        f"tags: {', '.join(p.tags) or '-'}",
        f"created: {when(p.created_at)}",
        "stages: " + ", ".join(p.stages) + (" (the default list)" if p.default_stages else ""),
    ]
    found += [f"collaborator: {c.username} ({c.role})" for c in p.collaborators]
    return found


@command(projects_app, "list")
def projects_list(as_json: bool = JsonOpt, client: Client = None):
    """Table of the organisation's projects, by name."""
    items = client.projects.list()
    if as_json:
        emit_json(items)
        return
    t = table(("name", {"min_width": 8}), "id", "owner", "visibility", ("created", {"no_wrap": True}), "description")
    for p in items:
        t.add_row(
            escape(p.name) + (" (archived)" if p.archived else ""),
            p.id,
            escape(p.owner_username or "-"),
            p.visibility,
            when(p.created_at),
            escape(short(p.description)),
        )
    show(t)
    lines(f"{len(items)} project(s)")


@command(projects_app, "show")
def projects_show(project: str = ProjectArg, as_json: bool = JsonOpt, client: Client = None):
    """One project: id, owner, stages, collaborators, and how many deployments and pipelines it holds."""
    p = client.projects.get(project)
    if as_json:
        emit_json(p)
        return
    lines(*describe(p))
    try:
        deployments, pipelines = client.deployments.list(p.name), client.pipelines.list(p.name)
    except HarborClientError:  # a project whose name serving does not take holds no deployments
        return
    lines(f"deployments: {', '.join(d.name for d in deployments) or 'none'}")
    lines(f"pipelines: {', '.join(x.name for x in pipelines) or 'none'}")


@command(projects_app, "create")
def projects_create(
    name: str = typer.Argument(..., metavar="NAME", help="Lowercase letters, digits and dashes to hold deployments."),
    description: str = typer.Option(None, "--description", help="Free text."),
    visibility: str = typer.Option(None, "--visibility", help="Public (default), Searchable or Private."),
    tags: list[str] = typer.Option(None, "--tag", help="A tag name (repeat for more)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create a project (you own it)."""
    p = client.projects.create(name, description=description, visibility=visibility, tags=tags)
    if as_json:
        emit_json(p)
        return
    lines(f"created project {p.name}  id: {p.id}")


@command(projects_app, "set")
def projects_set(
    project: str = ProjectArg,
    description: str = typer.Option(None, "--description", help="Free text."),
    visibility: str = typer.Option(None, "--visibility", help="Public, Searchable or Private."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Change a project's description or visibility (its owner, or an admin)."""
    p = client.projects.update(project, description=description, visibility=visibility)
    if as_json:
        emit_json(p)
        return
    lines(*describe(p))


@command(projects_app, "archive")
def projects_archive(project: str = ProjectArg, client: Client = None):
    """Archive a project: it stays, read-only (every change to it or in it is refused), until un-archived."""
    p = client.projects.update(project, archived=True)
    lines(f"archived project {p.name} ({p.id}): read-only")


@command(projects_app, "unarchive")
def projects_unarchive(project: str = ProjectArg, client: Client = None):
    """Make an archived project writable again."""
    p = client.projects.update(project, archived=False)
    lines(f"un-archived project {p.name} ({p.id})")


@command(projects_app, "delete")
def projects_delete(
    project: str = ProjectArg,
    yes: bool = YesOpt,
    client: Client = None,
):
    """Delete a project with everything in it (deployments, pipelines, environments, variables, exports)."""
    p = client.projects.get(project)
    confirm_delete(f"project {p.name!r} and everything in it", yes)
    client.projects.delete(p.id)
    lines(f"deleted project {p.name} ({p.id})")


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")
