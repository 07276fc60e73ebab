"""``modelharbor deploy``, ``predict`` and ``deployments list|show|logs|delete|delete-version``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelharbor.sdk import names
from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    bar,
    command,
    confirm_delete,
    emit_json,
    err,
    error_line,
    interruptible,
    lines,
    short,
    show,
    status_lines,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.deploy import LOG_TAIL_LINES, first_line, log_tail
from modelharbor.sdk.deployments import field_list
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.wire import Deployment, RevisionDetail

deployments_app = typer.Typer(help="Deployments of a project: list, show, logs, delete.", no_args_is_help=True)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")
DeploymentArg = typer.Argument(..., metavar="DEPLOYMENT", help="The deployment's name.")
ProjectOpt = typer.Option(..., "--project", "-p", help="The project's name (or id).")
DeploymentOpt = typer.Option(..., "--deployment", "-d", help="The deployment's name.")


def io(d: Any, side: str) -> str:
    if getattr(d, f"{side}_type") == "plain":
        return "plain"
    return ", ".join(f"{f.name}:{f.data_type}" for f in getattr(d, f"{side}_fields")) or "-"


def print_build_failure(rev: RevisionDetail) -> None:
    error_line(f"the build failed: {first_line(rev.error_message)}")
    tail = log_tail(rev.build_log or "")
    if tail:
        err.print(f"build log (last {LOG_TAIL_LINES} lines):", highlight=False)
        err.print(tail, highlight=False, markup=False, soft_wrap=True)


def deploy(
    path: Path = typer.Argument(
        ..., exists=True, readable=True, help="A directory holding deployment.py (zipped on the fly), or a .zip."
    ),
    project: str = ProjectOpt,
    deployment: str = DeploymentOpt,
    version: str = typer.Option("v1", "--version", help="The version to deploy to."),
    inputs: list[str] = typer.Option(None, "--input", help="An input field NAME:TYPE, e.g. x:double (repeatable)."),
    outputs: list[str] = typer.Option(None, "--output", help="An output field NAME:TYPE (repeatable)."),
    plain: bool = typer.Option(False, "--plain", help="Plain text in and out (no fields)."),
    environment: str = typer.Option(None, "--environment", help="e.g. python3-11 (default: the newest base)."),
    min_instances: int = typer.Option(None, "--min-instances", min=0, max=20, help="Instances kept running."),
    max_instances: int = typer.Option(None, "--max-instances", min=1, max=20, help="Instances at most."),
    max_idle_time: int = typer.Option(None, "--max-idle-time", min=10, help="Seconds an idle instance lives."),
    create: bool = typer.Option(True, "--create/--no-create", help="Create the project/deployment/version if new."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the build until it ends."),
    timeout: float = typer.Option(1800, "--timeout", min=1, help="Seconds to wait for the build."),
    client: Client = None,
):
    """Deploy PATH as a new revision of PROJECT/DEPLOYMENT/VERSION: upload it, then follow its build. Names are
    checked before anything is sent."""
    if plain and (inputs or outputs):
        raise typer.BadParameter("a plain deployment has no fields", param_hint="--plain / --input / --output")
    try:
        input_fields, output_fields = field_list(inputs or None), field_list(outputs or None)
        names.serving_name(deployment, "deployment")
        names.serving_name(version, "version")
    except HarborClientError as exc:
        raise typer.BadParameter(exc.message, param_hint="--input / --output / --deployment / --version") from None
    with bar(path.resolve().name or str(path)) as (update, progress):

        def on_step(text: str) -> None:
            progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

        with interruptible(progress, "interrupted before the package was uploaded: run the command again"):
            result = client.deployments.deploy(
                project,
                deployment,
                path,
                version=version,
                input_fields=input_fields,
                output_fields=output_fields,
                plain=plain,
                environment=environment,
                minimum_instances=min_instances,
                maximum_instances=max_instances,
                maximum_idle_time=max_idle_time,
                create=create,
                wait=False,
                progress=update,
                on_step=on_step,
            )
    where = f"{result.project}/{result.deployment}/{result.version}"
    rev = result.revision
    if not wait:
        lines(
            f"{where}: revision {rev.id} {rev.status}; follow it with `modelharbor deployments logs "
            f"{result.project} {result.deployment} {result.version} {rev.id}`"
        )
        return
    try:
        with status_lines("build") as on_status:
            rev = client.deployments.wait_for_revision(
                result.project, result.deployment, version, rev.id, timeout=timeout, on_status=on_status
            )
    except KeyboardInterrupt:
        err.print(f"stopped waiting: the build goes on; see `modelharbor deployments logs {where.replace('/', ' ')}`")
        raise typer.Exit(130) from None
    if rev.status == "failed":
        print_build_failure(rev)
        raise typer.Exit(1)
    lines(f"deployed {where}: revision {rev.id} (success)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def read_data(data: str, plain: bool) -> Any:
    """DATA of ``predict``: JSON text, ``@FILE`` or ``-`` (stdin); with ``plain`` the text itself."""
    if data == "-":
        raw = sys.stdin.read()
    elif data.startswith("@") and len(data) > 1:
        try:
            raw = Path(data[1:]).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read {data[1:]}: {exc}", param_hint="DATA") from None
    else:
        raw = data
    if plain:
        return raw
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except ValueError:
        raise typer.BadParameter(
            "DATA is not valid JSON, e.g. '{\"x\": 1}' (use --plain for a plain deployment's text)", param_hint="DATA"
        ) from None


def predict(
    data: str = typer.Argument(
        ..., metavar="DATA", help="JSON text, @FILE, or - (stdin); with --plain the text itself (or @FILE, -)."
    ),
    project: str = ProjectOpt,
    deployment: str = DeploymentOpt,
    version: str = typer.Option(None, "--version", help="A version (default: the deployment's default)."),
    plain: bool = typer.Option(False, "--plain", help="Send DATA as text (plain deployments); print the text back."),
    timeout: int = typer.Option(None, "--timeout", min=10, max=3600, help="Seconds the deployment may take."),
    client: Client = None,
):
    """Ask a deployment for a prediction and print the result (JSON; text with --plain)."""
    value = read_data(data, plain)
    answer = client.deployments.predict(project, deployment, value, version=version, timeout=timeout, plain=plain)
    if answer.status != "completed":
        error_line(f"the prediction failed ({answer.version}): {answer.error_message or answer.status}")
        raise typer.Exit(1)
    if plain and isinstance(answer.result, str):
        typer.echo(answer.result)
    else:
        typer.echo(json.dumps(answer.result, indent=2, ensure_ascii=False))


@command(deployments_app, "list")
def deployments_list(
    project: str = typer.Option(None, "--project", "-p", help="The project's name (or id)."),
    project_arg: str = typer.Argument(None, metavar="[PROJECT]", help="The project (or give --project)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of a project's deployments."""
    if (project is None) == (project_arg is None):
        raise typer.BadParameter("give the project once: PROJECT or --project", param_hint="PROJECT / --project")
    io_table(client.deployments.list(project or project_arg), "deployment", as_json)


def io_table(items: list[Any], kind: str, as_json: bool) -> None:
    """Deployments or pipelines: as JSON, or a table of their inputs, outputs and default versions."""
    if as_json:
        emit_json(items)
        return
    t = table(("name", {"min_width": 8}), "input", "output", ("default", {"no_wrap": True}))
    t.add_column("updated", no_wrap=True)
    t.add_column("description", overflow="fold")
    for d in items:
        t.add_row(
            escape(d.name),
            escape(io(d, "input")),
            escape(io(d, "output")),
            escape(d.default_version or "-"),
            when(d.updated_at),
            escape(short(d.description)),
        )
    show(t)
    lines(f"{len(items)} {kind}(s)")


def describe(d: Deployment) -> list[str]:
    found = [f"name: {d.name}", f"project: {d.project}"]
    if d.description:
        found.append(f"description: {d.description}")
    return found + [f"input: {io(d, 'input')}", f"output: {io(d, 'output')}", f"default version: {d.default_version}"]


@command(deployments_app, "show")
def deployments_show(
    project: str = ProjectArg, deployment: str = DeploymentArg, as_json: bool = JsonOpt, client: Client = None
):
    """One deployment: its fields and a table of its versions (status, active and latest revision)."""
    d = client.deployments.get(project, deployment)
    versions = client.deployments.versions(project, deployment)
    latest = {
        v.version: client.deployments.revision(project, deployment, v.version, v.latest_revision)
        for v in versions
        if v.latest_revision
    }
    if as_json:
        emit_json({**d.model_dump(mode="json"), "versions": [v.model_dump(mode="json") for v in versions]})
        return
    lines(*describe(d))
    if not versions:
        lines("no versions yet")
        return
    t = table("version", "status", "environment", ("instances", {"no_wrap": True}), ("idle", {"no_wrap": True}))
    t.add_column("active revision id", no_wrap=True, overflow="fold")
    t.add_column("latest revision", overflow="fold")
    for v in versions:
        rev = latest.get(v.version)
        newest = "-" if rev is None else f"{rev.id} {rev.status}"
        if rev is not None and rev.status == "failed" and rev.error_message:
            newest += f": {short(first_line(rev.error_message), 60)}"
        t.add_row(
            escape(v.version + (" (default)" if v.is_default else "")),
            escape(v.status),
            escape(v.environment),
            f"{v.minimum_instances}–{v.maximum_instances}",
            f"{v.maximum_idle_time} s",
            v.active_revision or "-",
            escape(newest),
        )
    show(t)


@command(deployments_app, "logs")
def deployments_logs(
    project: str = ProjectArg,
    deployment: str = DeploymentArg,
    version: str = typer.Argument(None, metavar="[VERSION]", help="The version (needed for build logs)."),
    revision: str = typer.Argument(None, metavar="[REVISION]", help="A revision id (default: the latest)."),
    runtime: bool = typer.Option(
        False, "--runtime", "-r", help="What the instances print while they run, instead of a build log."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="With --runtime: keep printing new lines (Ctrl-C ends)."),
    level: str = typer.Option(None, "--level", help="With --runtime: info (stdout) or error (stderr)."),
    grep: str = typer.Option(None, "--grep", help="With --runtime: only lines containing this text."),
    count: int = typer.Option(100, "--lines", "-n", min=1, max=5000, help="With --runtime: the newest N lines."),
    client: Client = None,
):
    """The build log of a revision (default: the version's latest; its status goes to stderr), or with --runtime
    the lines the deployment's instances wrote (all versions unless VERSION is given)."""
    if runtime:
        return _runtime_logs(client, project, deployment, version, follow, level, grep, count)
    if follow or level or grep:
        raise typer.BadParameter("--follow, --level and --grep go with --runtime", param_hint="--runtime")
    if version is None:
        raise typer.BadParameter("give the VERSION whose build log to show (or --runtime)", param_hint="VERSION")
    if revision is None:
        revision = client.deployments.version(project, deployment, version).latest_revision
        if revision is None:
            raise HarborClientError(
                404, "NOT_FOUND", f"{project}/{deployment}/{version} has no revision yet: deploy a package first"
            )
    rev = client.deployments.revision(project, deployment, version, revision)
    note = f": {first_line(rev.error_message)}" if rev.error_message else ""
    err.print(f"revision {rev.id}: {rev.status}{note}", highlight=False, markup=False, soft_wrap=True)
    if rev.build_log:
        typer.echo(rev.build_log)


def _runtime_logs(client: Client, project, deployment, version, follow, level, grep, count) -> None:
    seen: set[tuple] = set()
    since = None
    while True:
        got = client.deployments.logs(
            project, deployment, version=version, since=since, level=level, contains=grep, limit=count
        )
        for e in got:
            stamp = e.time.isoformat()
            ident = (stamp, e.instance, e.stream, e.text)
            if ident in seen:
                continue
            seen.add(ident)
            where = e.version if version is None else e.instance
            typer.echo(f"{stamp} {where} {e.stream}: {e.text}")
        if not follow:
            return
        if got:
            since = got[-1].time.isoformat()  # inclusive: lines of that same instant come again and are skipped
            seen = {s for s in seen if s[0] == since}
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:  # Ctrl-C ends a --follow
            return


@command(deployments_app, "delete")
def deployments_delete(
    project: str = ProjectArg,
    deployment: str = DeploymentArg,
    yes: bool = YesOpt,
    client: Client = None,
):
    """Delete a deployment with all its versions (their instances stop; pipelines using it fail)."""
    delete_with_versions("deployment", client.deployments, project, deployment, yes)


def delete_with_versions(kind: str, objects: Any, project: str, name: str, yes: bool) -> None:
    """Delete a deployment or pipeline (``objects``: its sub-client) once confirmed, saying how many versions went."""
    found = objects.get(project, name)
    count = len(objects.versions(project, name))
    confirm_delete(f"{kind} {found.project}/{found.name} and its {count} version(s)", yes)
    objects.delete(project, name)
    lines(f"deleted {kind} {found.project}/{found.name} ({count} version(s))")


@command(deployments_app, "delete-version")
def deployments_delete_version(
    project: str = ProjectArg,
    deployment: str = DeploymentArg,
    version: str = typer.Argument(..., metavar="VERSION", help="The version to delete."),
    client: Client = None,
):
    """Delete one version of a deployment (its instances stop)."""
    client.deployments.delete_version(project, deployment, version)
    lines(f"deleted {project}/{deployment}/{version}")


def register(app: typer.Typer) -> None:
    command(app, "deploy")(deploy)
    command(app, "predict")(predict)
    app.add_typer(deployments_app, name="deployments")
