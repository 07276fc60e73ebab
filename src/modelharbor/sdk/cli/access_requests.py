"""``modelharbor access-requests``: ask a project's owner for a collaborator role; list, approve and decline the
requests (the project's owner and organisation admins decide)."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.access_requests import AccessRequest
from modelharbor.sdk.cli.common import JsonOpt, command, emit_json, lines, show, table
from modelharbor.sdk.client import Client

requests_app = typer.Typer(
    help="Access requests: ask for a project role; list, approve, decline.", no_args_is_help=True
)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name or id.")
RequestArg = typer.Argument(..., metavar="REQUEST", help="The request's id (see `access-requests list`).")


def _one(a: AccessRequest, as_json: bool) -> None:
    if as_json:
        emit_json(a)
        return
    lines(f"{a.status.lower()}: {a.username or a.user_id} as {a.role} on {a.project_name} (request {a.id})")


@command(requests_app, "ask")
def ask(
    project: str = ProjectArg,
    role: str = typer.Option(None, "--role", help="Contributor (default), ResultsConsumer, LauncherUser, …"),
    message: str = typer.Option(None, "--message", help="A note for the project's owner."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Ask the project's owner for a collaborator role."""
    _one(client.access_requests.ask(project, role=role, message=message), as_json)


@command(requests_app, "list")
def list_requests(
    project: str = typer.Option(None, "--project", help="One project's requests (its owner, admins)."),
    status: str = typer.Option("Pending", "--status", help="Pending, Approved, Declined or all."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Requests on your projects (an admin: the organisation's) and your own; or one project's."""
    items = client.access_requests.list(project, status=status)
    if as_json:
        emit_json(items)
        return
    t = table("id", "project", "user", "role", "status", "asked", "message")
    for a in items:
        t.add_row(
            a.id,
            escape(a.project_name),
            escape(a.username or a.user_id),
            a.role,
            a.status,
            f"{a.created_at:%Y-%m-%d %H:%M}",
            escape(a.message),
        )
    show(t)
    lines(f"{len(items)} request(s)")


@command(requests_app, "approve")
def approve(
    project: str = ProjectArg,
    request: str = RequestArg,
    role: str = typer.Option(None, "--role", help="Grant this role instead of the one asked for."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Approve a request: the user becomes a collaborator."""
    _one(client.access_requests.approve(project, request, role=role), as_json)


@command(requests_app, "decline")
def decline(project: str = ProjectArg, request: str = RequestArg, as_json: bool = JsonOpt, client: Client = None):
    """Decline a request."""
    _one(client.access_requests.decline(project, request), as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(requests_app, name="access-requests")
