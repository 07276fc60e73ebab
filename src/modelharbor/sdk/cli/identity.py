"""``modelharbor keys``, ``users`` and ``orgs``: API keys, users (admins) and organisations (superusers), through
the server's native API (any machine, any server: no database file)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    command,
    confirm_delete,
    emit_json,
    fail,
    lines,
    show,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.wire import Key, Org

keys_app = typer.Typer(help="API keys: create, list, revoke (through the server).", no_args_is_help=True)
users_app = typer.Typer(
    help="Users of your organisation (admins): list, show, create, set-password, delete (through the server).",
    no_args_is_help=True,
)
orgs_app = typer.Typer(
    help="Organisations (superusers): list, create, rename, members, move a user between them.", no_args_is_help=True
)
UserArg = typer.Argument(..., metavar="USER", help="The user's name (or id).")
OrgArg = typer.Argument(..., metavar="ORG", help="The organisation's name (or id).")


# --- keys ---------------------------------------------------------------------------------------------------
def key_state(k: Key) -> str:
    if k.revoked_at:
        return "revoked"
    if k.expires_at and k.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


@command(keys_app, "create")
def keys_create(
    name: str = typer.Argument(..., metavar="NAME", help="A label for the key."),
    user: str = typer.Option(None, "--user", help="Whose key (admins; default: yours)."),
    expires_in_days: int = typer.Option(None, "--expires-in-days", min=1, max=3650, help="Lifetime (default: none)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create an API key and print its secret (shown only now)."""
    key = client.keys.create(name, username=user, expires_in_days=expires_in_days)
    if as_json:
        emit_json(key)
        return
    lines(f"id: {key.id}", f"key: {key.key}")
    typer.echo("(store it now: it is never shown again)", err=True)


@command(keys_app, "list")
def keys_list(
    user: str = typer.Option(None, "--user", help="That user's keys (admins)."),
    every: bool = typer.Option(False, "--all", help="Every key of the organisation (admins)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """List API keys with their full ids (never their secrets)."""
    keys = client.keys.list(username=user, all_users=every)
    if as_json:
        emit_json(keys)
        return
    t = table("id", "name", "prefix", "user id", ("created", {"no_wrap": True}), ("last used", {"no_wrap": True}))
    t.add_column("expires", no_wrap=True)
    t.add_column("state", no_wrap=True)
    for k in keys:
        t.add_row(
            k.id,
            escape(k.name),
            k.prefix + "…",
            k.user_id,
            when(k.created_at),
            when(k.last_used_at) or "-",
            when(k.expires_at) or "never",
            key_state(k),
        )
    show(t)
    lines(f"{len(keys)} key(s)")


@command(keys_app, "revoke")
def keys_revoke(
    key: str = typer.Argument(..., metavar="KEY", help="The key's id, an unambiguous start of it, or its prefix."),
    client: Client = None,
):
    """Revoke an API key (by id, a start of the id, or its shown prefix such as mh_AbCdE)."""
    revoked = client.keys.revoke(key)
    lines(f"revoked {revoked.id} ({revoked.name})")


# --- users --------------------------------------------------------------------------------------------------
@command(users_app, "list")
def users_list(
    org: str = typer.Option(None, "--org", help="Superusers: that organisation's users (default: every one's)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of your organisation's users (superusers: everyone's, a row per organisation they belong to)."""
    users = client.users.list(org=org)
    if as_json:
        emit_json(users)
        return
    t = table(("username", {"min_width": 8}), "id", "org id", "role", "superuser", "password")
    t.add_column("created", no_wrap=True)
    for u in users:
        t.add_row(
            escape(u.username),
            u.id,
            u.org_id,
            u.role,
            "yes" if u.is_superuser else "",
            "set" if u.has_password else "none",
            when(u.created_at),
        )
    show(t)
    lines(f"{len(users)} user(s)")


@command(users_app, "show")
def users_show(user: str = UserArg, as_json: bool = JsonOpt, client: Client = None):
    """One user."""
    u = client.users.get(user)
    if as_json:
        emit_json(u)
        return
    lines(
        f"username: {u.username}",
        f"id: {u.id}",
        f"organisation: {u.org_id}",
        f"role: {u.role}" + (" (superuser)" if u.is_superuser else ""),
        f"password: {'set' if u.has_password else 'none'}",
        f"created: {when(u.created_at)}",
    )


def _new_password(ask_twice: bool = True) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            fail("no password on stdin", code=2)
        return password
    return typer.prompt("new password", hide_input=True, confirmation_prompt=ask_twice, err=True)


@command(users_app, "create")
def users_create(
    username: str = typer.Argument(..., metavar="USERNAME", help="The new user's name."),
    role: str = typer.Option("member", "--role", help="viewer, member, admin or owner (at most your own)."),
    org: str = typer.Option(None, "--org", help="Superusers: the organisation they join (default: yours)."),
    password: bool = typer.Option(False, "--password", help="Set a password too (asked, or read from stdin)."),
    key: bool = typer.Option(True, "--key/--no-key", help="Also create an API key for the user and print it."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create a user in your organisation (and, by default, an API key for them)."""
    secret = _new_password() if password else None
    u = client.users.create(username, role=role, password=secret, org=org)
    made = None
    if key and org is None:
        made = client.keys.create(f"{u.username} (created with the user)", username=u.username)
    elif key:
        typer.echo("no key made: a key acts where it is made; they (or their admin) make one there", err=True)
    if as_json:
        emit_json({**u.model_dump(mode="json"), "key": made.model_dump(mode="json") if made else None})
        return
    lines(f"user: {u.username}  id: {u.id}  role: {u.role}")
    if made:
        lines(f"key: {made.key}")
        typer.echo("(store it now: it is never shown again)", err=True)


@command(users_app, "set-password")
def users_set_password(
    user: str = typer.Argument(None, metavar="[USER]", help="Whose password (default: yours)."),
    current: bool = typer.Option(
        None, "--current/--no-current", help="Ask for the current password (default: when it is your own)."
    ),
    client: Client = None,
):
    """Set a user's password (asked twice without echo, or one line of stdin); it signs in where keys do not
    (UFDL's /v1/auth/obtain, MLflow Basic auth)."""
    me = client.me()
    target = user or me.username
    own = target in (me.username, me.user_id)
    old = None
    if current if current is not None else own:
        old = typer.prompt("current password (empty: none yet)", hide_input=True, default="", err=True) or None
    try:
        client.users.set_password(target, _new_password(), current_password=old)
    except HarborClientError as exc:
        if exc.code == "WRONG_PASSWORD":
            fail("that is not the current password: changing your own password needs it (or ask an admin)")
        raise
    lines(f"password of {target} set")


@command(users_app, "delete")
def users_delete(
    user: str = UserArg,
    yes: bool = YesOpt,
    client: Client = None,
):
    """Delete a user (their API keys stop working; what they made stays with the organisation)."""
    confirm_delete(f"user {user!r}", yes)
    client.users.delete(user)
    lines(f"deleted user {user}")


# --- organisations ------------------------------------------------------------------------------------------
def _org_line(o: Org) -> str:
    return f"{o.name}  id: {o.id}  members: {o.members}"


@command(orgs_app, "list")
def orgs_list(as_json: bool = JsonOpt, client: Client = None):
    """Table of every organisation, oldest first."""
    items = client.orgs.list()
    if as_json:
        emit_json(items)
        return
    t = table(("name", {"min_width": 8}), "id", ("members", {"no_wrap": True}), ("created", {"no_wrap": True}))
    for o in items:
        t.add_row(escape(o.name), o.id, str(o.members), when(o.created_at))
    show(t)
    lines(f"{len(items)} organisation(s)")


@command(orgs_app, "create")
def orgs_create(name: str = typer.Argument(..., metavar="NAME"), client: Client = None):
    """Create an organisation (you become its owner)."""
    lines(f"created {_org_line(client.orgs.create(name))}")


@command(orgs_app, "rename")
def orgs_rename(org: str = OrgArg, name: str = typer.Argument(..., metavar="NEW_NAME"), client: Client = None):
    """Rename an organisation (`default` keeps its name)."""
    lines(f"renamed {_org_line(client.orgs.rename(org, name))}")


@command(orgs_app, "members")
def orgs_members(org: str = OrgArg, as_json: bool = JsonOpt, client: Client = None):
    """Table of an organisation's members and their roles."""
    items = client.orgs.members(org)
    if as_json:
        emit_json(items)
        return
    t = table(("username", {"min_width": 8}), "user id", "role", "superuser")
    for m in items:
        t.add_row(escape(m.username), m.user_id, m.role, "yes" if m.is_superuser else "")
    show(t)
    lines(f"{len(items)} member(s)")


@command(orgs_app, "move")
def orgs_move(
    user: str = typer.Argument(..., metavar="USER", help="The user's name (or id)."),
    org: str = OrgArg,
    role: str = typer.Option(None, "--role", help="viewer, member, admin or owner (default: member)."),
    from_org: str = typer.Option(None, "--from", help="The organisation they leave, if they are in several."),
    client: Client = None,
):
    """Move USER into ORG, out of the organisation they were in; their API keys go with them."""
    m = client.orgs.move_user(user, org, role=role, from_org=from_org)
    lines(f"moved {m.username} to {org} as {m.role} (their API keys act there now)")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
    app.add_typer(orgs_app, name="orgs")
