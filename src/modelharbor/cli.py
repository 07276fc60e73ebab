"""The ``modelharbor`` command: server-side maintenance on this machine (serve, worker, db upgrade), and the client
commands of the SDK (``sdk/cli/``: login, upload, files, models, deploy, keys, users, …), which talk to a server."""

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


def _settings() -> Settings:
    """The settings of a command that acts on the server's data: from here on, what it creates is private."""
    settings = Settings()
    make_private(settings)
    return settings


def _log_config(level: str) -> dict:
    """uvicorn's logging, with ModelHarbor's own loggers (``modelharbor.*``) printed the same way."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["modelharbor"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


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
    log_config = _log_config(settings.log_level)
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
    """Run background tasks only (for a server started with MODELHARBOR_WORKERS=false). Local: on this machine."""
    from modelharbor.services import build_services
    from modelharbor.tasks.runner import Runner

    settings = Settings()
    logging.config.dictConfig(_log_config(settings.log_level))
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
