"""The ``modelharbor`` command: serve, worker, db upgrade, keys — and the SDK commands (upload, download, files)."""

from __future__ import annotations

import logging.config
import sys
import time
from pathlib import Path

import typer

from modelharbor.datadir import make_private
from modelharbor.settings import Settings

app = typer.Typer(help="ModelHarbor: a self-hosted model hub.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys (local admin commands; they act on the configured database).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="Users (local admin commands on the configured database).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")


def _settings() -> Settings:
    """The settings of a command that acts on the server's data: from here on, what it creates is private."""
    settings = Settings()
    make_private(settings)
    return settings


def _log_config(settings: Settings) -> dict:
    """uvicorn's logging, with ModelHarbor's own loggers (``modelharbor.*``) printed the same way, as text or one
    JSON object per line (MODELHARBOR_LOG_FORMAT; api/logs.py)."""
    from modelharbor.api.logs import log_config

    return log_config(settings.log_level, settings.log_format)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default MODELHARBOR_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default MODELHARBOR_PORT or 8000)."),
    migrate: bool = typer.Option(True, help="Upgrade the database schema before serving."),
):
    """Serve the API (and run background tasks in-process unless MODELHARBOR_WORKERS=false)."""
    import uvicorn

    from modelharbor.api.http import HarborHttpProtocol
    from modelharbor.app import create_app
    from modelharbor.db.migrate import upgrade

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)
    log_config = _log_config(settings)
    logging.config.dictConfig(log_config)
    make_private(settings)  # umask 0077 for the server's process, before the database or any file is created
    if migrate:
        upgrade(settings.resolved_database_url())
    application = create_app(settings, announce=True)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config,
        # access lines are logged at info: below that level, uvicorn need not build them
        access_log=settings.log_level.lower() in ("trace", "debug", "info"),
        http=HarborHttpProtocol,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


@app.command()
def worker(poll: float = typer.Option(0.5, help="Seconds between queue polls.")):
    """Run background tasks only (for a server started with MODELHARBOR_WORKERS=false)."""
    from modelharbor.services import build_services
    from modelharbor.tasks.runner import Runner

    settings = Settings()
    logging.config.dictConfig(_log_config(settings))
    make_private(settings)  # umask 0077 for the worker's process
    services = build_services(settings)
    runner = Runner(services, poll=poll)
    runner.start()
    typer.echo("worker running; Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        runner.stop()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")):
    """Apply migrations up to REVISION (default: the newest)."""
    from modelharbor.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url(), revision)
    typer.echo(f"database at {revision}: {_redact(settings.resolved_database_url())}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base.")):
    """Revert migrations down to REVISION."""
    from modelharbor.db.migrate import downgrade

    downgrade(_settings().resolved_database_url(), revision)
    typer.echo(f"database at {revision}")


def _admin_principal(user: str | None, org: str):
    from modelharbor.services import build_services

    services = build_services(_settings())
    username = user or services.identity.first_superuser()
    if username is None:
        typer.echo("no users yet: start the server once (`make run`) or set MODELHARBOR_ADMIN_USER", err=True)
        raise typer.Exit(2)
    return services, services.identity.principal_for(username, org)


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="A label for the key."),
    user: str = typer.Option(None, help="Whose key (default: the first superuser)."),
    org: str = typer.Option("default", help="Organisation the key acts in."),
    expires_in_days: int = typer.Option(None, help="Lifetime in days (default: no expiry)."),
):
    """Create an API key and print its secret (shown only now)."""
    services, principal = _admin_principal(user, org)
    key = services.identity.create_key(principal, name, expires_in_days=expires_in_days)
    typer.echo(f"id: {key.id}\nkey: {key.secret}\n(store it now: it is never shown again)")


@keys_app.command("list")
def keys_list(
    user: str = typer.Option(None, help="Whose keys (default: the first superuser)."),
    org: str = typer.Option("default"),
    all_users: bool = typer.Option(False, "--all", help="Every key of the organisation."),
):
    """List API keys (never their secrets)."""
    from rich.console import Console
    from rich.table import Table

    services, principal = _admin_principal(user, org)
    table = Table("id", "name", "prefix", "user", "created", "last used", "state")
    for k in services.identity.list_keys(principal, all_users=all_users):
        state = (
            "revoked"
            if k.revoked_at
            else ("expired" if k.expires_at and k.expires_at.timestamp() < time.time() else "active")
        )
        table.add_row(
            k.id,
            k.name,
            k.prefix + "…",
            k.user_id,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            state,
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, user: str = typer.Option(None), org: str = typer.Option("default")):
    """Revoke an API key by id."""
    services, principal = _admin_principal(user, org)
    services.identity.revoke_key(principal, key_id)
    typer.echo(f"revoked {key_id}")


@users_app.command("create")
def users_create(
    username: str = typer.Argument(..., help="The new user's name."),
    role: str = typer.Option("member", help="viewer, member, admin or owner."),
    email: str = typer.Option(None),
    org: str = typer.Option("default", help="Organisation the user joins."),
    key: bool = typer.Option(True, "--key/--no-key", help="Also create an API key for the user and print it."),
):
    """Create a user in an organisation (and, by default, an API key for them)."""
    from modelharbor.domain.principal import Role

    services, admin = _admin_principal(None, org)
    try:
        role_value = Role(role.lower())
    except ValueError:
        typer.echo(f"unknown role {role!r}: use viewer, member, admin or owner", err=True)
        raise typer.Exit(2) from None
    from modelharbor.domain.errors import HarborError

    try:
        user = services.identity.create_user(admin, username, role=role_value, email=email)
    except HarborError as exc:
        typer.echo(f"cannot create {username!r}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"user: {user.username}  id: {user.id}  role: {role_value}")
    if key:
        secret = services.identity.create_key(admin, f"{username} (created with the user)", username=username).secret
        typer.echo(f"key: {secret}\n(store it now: it is never shown again)")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _register_sdk_commands() -> None:
    try:
        from modelharbor.sdk import cli as sdk_cli
    except ImportError:  # pragma: no cover
        return
    sdk_cli.register(app)


_register_sdk_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main", "Path"]
