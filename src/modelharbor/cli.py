"""The ``modelharbor`` command: server-side maintenance on this machine (serve, worker, db upgrade, admin
set-password), and the client commands of the SDK (``sdk/cli/``: login, upload, files, models, deploy, keys, users, …), which talk to a server."""

from __future__ import annotations

import logging.config
import sys
import time
from pathlib import Path

import typer

from modelharbor import __version__
from modelharbor.datadir import make_private
from modelharbor.settings import Settings

LOCAL = "Local: acts on this machine's server data (the MODELHARBOR_* settings), not through a server's API."

app = typer.Typer(
    help="ModelHarbor: a self-hosted model hub. `serve`, `worker` and `db` run on the server's machine; every other "
    "command talks to a server (`modelharbor login` once, or --url/--key).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help=f"Database schema. {LOCAL}", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelharbor {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a failure (or MODELHARBOR_DEBUG=1)."),
):
    """ModelHarbor: a self-hosted model hub."""
    if debug:
        from modelharbor.sdk.cli.common import STATE

        STATE.debug = True


admin_app = typer.Typer(
    help="Server-side maintenance, run on the server's machine: acts directly on the database the settings name "
    "(MODELHARBOR_DATABASE_URL, else DATA_DIR/modelharbor.db), never through a server's API.",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin")


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
    """Serve the API (and run background tasks in-process unless MODELHARBOR_WORKERS=false). Local: on this machine."""
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
    application = create_app(settings, announce=True, freeze_heap=True)
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
    """Run background tasks only (for a server started with MODELHARBOR_WORKERS=false). Local: on this machine."""
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


def _local_database() -> Settings:
    """The settings of a maintenance command, once the database they name exists (a command run in the wrong folder
    says so instead of creating an empty ./data/)."""
    from modelharbor.datadir import sqlite_path

    settings = Settings()
    path = sqlite_path(settings.resolved_database_url())
    if path is not None and not path.is_file():
        typer.echo(
            f"error: no database at {path}: run this where the server's data directory is, or set "
            "MODELHARBOR_DATA_DIR (or MODELHARBOR_DATABASE_URL) as the server has it",
            err=True,
        )
        raise typer.Exit(2)
    make_private(settings)
    return settings


def _read_new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        typer.echo("error: no terminal to ask for the password on: pipe it in with --password-stdin", err=True)
        raise typer.Exit(2)
    return typer.prompt("New password", hide_input=True, confirmation_prompt=True)


@admin_app.command("set-password")
def admin_set_password(
    username: str = typer.Argument(..., help="Whose password (e.g. admin)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input, without asking."
    ),
):
    """Set a user's password on this server's local database (asks twice, hidden; or --password-stdin).

    For a lost admin password: it needs no key and no running server, only access to the server's database.
    Through a running server's API instead (from anywhere, with a key): `modelharbor users set-password`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from modelharbor.domain.errors import HarborError
    from modelharbor.services import build_services

    settings = _local_database()
    password = _read_new_password(password_stdin)
    url = _redact(settings.resolved_database_url())
    try:
        user = build_services(settings).identity.reset_password(username, password)
    except HarborError as exc:
        typer.echo(f"error: {exc.message} (database {url})", err=True)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) is not None else exc).splitlines()[0]
        typer.echo(
            f"error: the database {url} answered: {reason} (is its schema current? `modelharbor db upgrade`)", err=True
        )
        raise typer.Exit(1) from None
    typer.echo(f"password of {user.username!r} set in the local database {url}")
    from modelharbor.app import ADMIN_FILE

    if (settings.data_dir / ADMIN_FILE).is_file():
        typer.echo(f"note: {settings.data_dir / ADMIN_FILE} holds the first start's credentials; update or delete it")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _register_sdk_commands() -> None:
    """The client commands (login, upload, files, models, deploy, keys, users, …): modelharbor.sdk.cli."""
    from modelharbor.sdk import cli as sdk_cli

    sdk_cli.register(app)


_register_sdk_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main", "Path"]
