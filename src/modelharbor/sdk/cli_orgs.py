"""``modelharbor orgs``: organisations on a server (superusers only) — list, create, rename, members, move a user.

Registered by :func:`modelharbor.sdk.cli.register`. An organisation or a user is named by its id or its name.
"""

from __future__ import annotations

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from modelharbor.sdk.cli import KeyOpt, UrlOpt, _client, _errors, _when, out

orgs_app = typer.Typer(
    help="Organisations (superusers): list, create, rename, members, move a user between them.", no_args_is_help=True
)
OrgArg = typer.Argument(..., metavar="ORG", help="The organisation's name (or id).")


def _org_line(o: dict) -> str:
    return f"{o['name']}  id: {o['id']}  members: {o['members']}"


@orgs_app.command("list")
def orgs_list(url: str = UrlOpt, key: str = KeyOpt):
    """Table of every organisation, oldest first."""
    with _errors(), _client(url, key) as client:
        items = client.list_orgs()
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "id", "members", "created"):
        table.add_column(column, no_wrap=column != "name", overflow="fold")
    for o in items:
        table.add_row(escape(o["name"]), o["id"], str(o["members"]), _when(o["created_at"]))
    out.print(table)
    out.print(f"{len(items)} organisation(s)", highlight=False)


@orgs_app.command("create")
def orgs_create(name: str = typer.Argument(..., metavar="NAME"), url: str = UrlOpt, key: str = KeyOpt):
    """Create an organisation (you become its owner)."""
    with _errors(), _client(url, key) as client:
        org = client.create_org(name)
    out.print(f"created {_org_line(org)}", highlight=False, markup=False)


@orgs_app.command("rename")
def orgs_rename(
    org: str = OrgArg, name: str = typer.Argument(..., metavar="NEW_NAME"), url: str = UrlOpt, key: str = KeyOpt
):
    """Rename an organisation (`default` keeps its name)."""
    with _errors(), _client(url, key) as client:
        renamed = client.rename_org(org, name)
    out.print(f"renamed {_org_line(renamed)}", highlight=False, markup=False)


@orgs_app.command("members")
def orgs_members(org: str = OrgArg, url: str = UrlOpt, key: str = KeyOpt):
    """Table of an organisation's members and their roles."""
    with _errors(), _client(url, key) as client:
        items = client.org_members(org)
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("username", "id", "role", "superuser"):
        table.add_column(column, no_wrap=column != "username", overflow="fold")
    for m in items:
        table.add_row(escape(m["username"]), m["user_id"], m["role"], "yes" if m["is_superuser"] else "")
    out.print(table)
    out.print(f"{len(items)} member(s)", highlight=False)


@orgs_app.command("move")
def orgs_move(
    user: str = typer.Argument(..., metavar="USER", help="The user's name (or id)."),
    org: str = OrgArg,
    role: str = typer.Option(None, "--role", help="viewer, member, admin or owner (default: member)."),
    from_org: str = typer.Option(None, "--from", help="The organisation they leave, if they are in several."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Move USER into ORG, out of the organisation they were in; their API keys go with them."""
    with _errors(), _client(url, key) as client:
        m = client.move_user(user, org, role=role, from_org=from_org)
    out.print(
        f"moved {m['username']} to {org} as {m['role']} (their API keys act there now)", highlight=False, markup=False
    )
