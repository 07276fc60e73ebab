"""``modelharbor pipelines``: a project's pipelines — list, show, delete, delete-version."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    command,
    emit_json,
    lines,
    show,
    table,
    when,
)
from modelharbor.sdk.cli.deployments import delete_with_versions, io, io_table
from modelharbor.sdk.client import Client

pipelines_app = typer.Typer(help="Pipelines of a project: list, show, delete.", no_args_is_help=True)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")
PipelineArg = typer.Argument(..., metavar="PIPELINE", help="The pipeline's name.")


@command(pipelines_app, "list")
def pipelines_list(project: str = ProjectArg, as_json: bool = JsonOpt, client: Client = None):
    """Table of a project's pipelines."""
    io_table(client.pipelines.list(project), "pipeline", as_json)


@command(pipelines_app, "show")
def pipelines_show(
    project: str = ProjectArg, pipeline: str = PipelineArg, as_json: bool = JsonOpt, client: Client = None
):
    """One pipeline: its fields and its versions with the objects (deployments) each runs."""
    p = client.pipelines.get(project, pipeline)
    versions = client.pipelines.versions(project, pipeline)
    if as_json:
        emit_json({**p.model_dump(mode="json"), "versions": [v.model_dump(mode="json") for v in versions]})
        return
    found = [f"name: {p.name}", f"project: {p.project}"]
    if p.description:
        found.append(f"description: {p.description}")
    found += [f"input: {io(p, 'input')}", f"output: {io(p, 'output')}", f"default version: {p.default_version}"]
    lines(*found)
    if not versions:
        lines("no versions yet")
        return
    t = table("version", "objects", ("retention", {"no_wrap": True}), ("created", {"no_wrap": True}))
    for v in versions:
        objects = ", ".join(
            f"{o.get('name')} → {o.get('reference_name')}" + (f":{o['version']}" if o.get("version") else "")
            for o in v.objects
        )
        t.add_row(
            escape(v.version + (" (default)" if v.is_default else "")),
            escape(objects or "-"),
            escape(v.request_retention_mode),
            when(v.created_at),
        )
    show(t)


@command(pipelines_app, "delete")
def pipelines_delete(
    project: str = ProjectArg,
    pipeline: str = PipelineArg,
    yes: bool = YesOpt,
    client: Client = None,
):
    """Delete a pipeline with all its versions (the deployments it runs stay)."""
    delete_with_versions("pipeline", client.pipelines, project, pipeline, yes)


@command(pipelines_app, "delete-version")
def pipelines_delete_version(
    project: str = ProjectArg,
    pipeline: str = PipelineArg,
    version: str = typer.Argument(..., metavar="VERSION", help="The version to delete."),
    client: Client = None,
):
    """Delete one version of a pipeline."""
    client.pipelines.delete_version(project, pipeline, version)
    lines(f"deleted pipeline {project}/{pipeline} version {version}")


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines")
