"""What every client command shares: the connection options (``--url``, ``--key``, ``--profile``), failures printed
as one line (``--debug``: with the traceback), ``--json`` output, tables that never cut an id, sizes, times and
progress bars.

A command is registered with :func:`command`, which adds the connection options to it and hands it a connected
:class:`~modelharbor.sdk.Client` as its ``client`` argument.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import sys
import traceback
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from typer.exceptions import TyperException

from modelharbor.sdk.client import Client
from modelharbor.sdk.config import KEY_ENV, PROFILE_ENV, URL_ENV
from modelharbor.sdk.errors import HarborClientError, InsecureConfigWarning
from modelharbor.sdk.wire import dump

DEBUG_ENV = "MODELHARBOR_DEBUG"
PIPED_WIDTH = 10_000  # piped output keeps whole rows (rich would squeeze tables into 80 columns)

out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True)


class _State:
    debug = False


STATE = _State()


def debugging() -> bool:
    return STATE.debug or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


# --- failures ---------------------------------------------------------------------------------------------------
def error_line(message: str) -> None:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def warning_line(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


@contextmanager
def failures() -> Iterator[None]:
    """A failure as one line and a non-zero exit; ``--debug`` (or MODELHARBOR_DEBUG=1) adds the traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except HarborClientError as exc:
        if debugging():
            err.print(traceback.format_exc(), markup=False, highlight=False)
        error_line(exc.message)
        _field_errors(exc)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for more
        if debugging():
            err.print(traceback.format_exc(), markup=False, highlight=False)
        error_line(f"{type(exc).__name__}: {exc} (an unexpected failure; run again with --debug to see where)")
        raise typer.Exit(1) from None


def _field_errors(exc: HarborClientError) -> None:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if isinstance(fields, dict):
        for field, messages in fields.items():
            err.print(f"  --{str(field).replace('_', '-')}: {escape(' '.join(map(str, messages)))}", soft_wrap=True)


def fail(message: str, code: int = 1) -> typing.NoReturn:
    error_line(message)
    raise typer.Exit(code)


# --- connecting --------------------------------------------------------------------------------------------------
def connect(url: str | None, key: str | None, profile: str | None, *, need_key: bool = True) -> Client:
    """A client for the options given (else the environment, else the config file's profile)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InsecureConfigWarning)
        client = Client(url, key, profile)
    for w in caught:
        if issubclass(w.category, InsecureConfigWarning):
            warning_line(str(w.message))
    if need_key and not client.api_key:
        client.close()
        fail(
            f"no API key for {client.url}: run `modelharbor login` (or set {KEY_ENV}, or pass --key)",
            code=2,
        )
    return client


_CONNECTION = [  # parameter names no command uses for its own
    (
        "harbor_url",
        str | None,
        typer.Option(None, "--url", help=f"Server base URL (default: {URL_ENV}, else the profile's)."),
    ),
    ("harbor_key", str | None, typer.Option(None, "--key", help=f"API key (default: {KEY_ENV}, else the profile's).")),
    (
        "harbor_profile",
        str | None,
        typer.Option(
            None,
            "--profile",
            help=f"A profile saved by `modelharbor login` (default: {PROFILE_ENV}, else the default one).",
        ),
    ),
    ("harbor_debug", bool, typer.Option(False, "--debug", help="Show the traceback of a failure.")),
]


def command(app: typer.Typer, name: str, *, need_key: bool = True, **kw: Any) -> Callable:
    """Register the decorated function as command ``name`` of ``app``: it gains ``--url``, ``--key``, ``--profile``
    and ``--debug``, gets a connected client as its ``client`` parameter (when it has one), and any failure is
    printed as one line."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
        wants_client = "client" in sig.parameters
        params = [p for p in own if p.name != "client"]
        extra = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for n, annotation, default in _CONNECTION
        ]

        @functools.wraps(fn)
        def run(
            *args: Any,
            harbor_url: str | None,
            harbor_key: str | None,
            harbor_profile: str | None,
            harbor_debug: bool,
            **kwargs: Any,
        ):
            STATE.debug = STATE.debug or harbor_debug
            with failures():
                if not wants_client:
                    return fn(*args, **kwargs)
                with connect(harbor_url, harbor_key, harbor_profile, need_key=need_key) as client:
                    return fn(*args, client=client, **kwargs)

        run.__signature__ = sig.replace(parameters=params + extra)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params + extra}
        app.command(name, **kw)(run)
        return fn

    return decorate


# --- output -----------------------------------------------------------------------------------------------------
JsonOpt = typer.Option(False, "--json", help="Print JSON (machine-readable) instead of a table or text.")
YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask (needed without a terminal).")


def emit_json(value: Any) -> None:
    """``value`` (typed objects, lists of them, plain data) as indented JSON on stdout."""
    typer.echo(json.dumps(dump(value), indent=2, ensure_ascii=False))


def lines(*texts: str) -> None:
    """Plain lines on stdout (no markup, no highlighting, no wrapping)."""
    out.print("\n".join(texts), highlight=False, markup=False, soft_wrap=True)


def table(*columns: str | tuple[str, dict[str, Any]]) -> Table:
    """A table; a column is a name, or (name, options). Names ending in ``id`` (and ``sha256``) never wrap."""
    t = Table(box=box.SIMPLE_HEAD)
    for column in columns:
        name, opts = (column, {}) if isinstance(column, str) else column
        if name.endswith("id") or name in ("sha256", "prefix"):
            opts = {"no_wrap": True, **opts}
        t.add_column(name, **{"overflow": "fold", **opts})
    return t


def show(t: Table) -> None:
    """Print a table at least as wide as it needs to show every id and every word whole (a narrow terminal wraps
    its lines rather than cutting an id)."""
    need = Measurement.get(out, out.options, t).minimum
    out.print(t, width=max(out.width, need))


def when(value: datetime | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{value:%Y-%m-%d %H:%M}"


def short(text: str | None, n: int = 40) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``64MiB``, ``64M``, ``64MB``, ``512k``, ``1.5G`` or plain bytes (units are binary: M = 2**20)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a size; use e.g. 64MiB, 8M or 1048576")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != int(value) or int(value) < 1:
        raise ValueError(f"{text!r} is not a whole number of bytes ≥ 1")
    return int(value)


def size_option(text: str, option: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def key_values(items: list[str] | None, option: str = "--tag") -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        tags[key] = value
    return tags


def confirm_delete(what: str, yes: bool) -> None:
    """Ask before deleting ``what`` (on a terminal); without a terminal ``--yes`` is needed."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"not deleting {what} without confirmation: pass --yes", code=2)
    if not typer.confirm(f"delete {what}?", default=False, err=True):
        fail("nothing deleted", code=1)


@contextmanager
def bar(description: str) -> Iterator[tuple[Callable[[int, int], None], Progress]]:
    """A transfer bar (size, speed, ETA) on stderr, shown from the first progress report on."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task(escape(description), total=None, start=False)
    started = [False]

    def update(done: int, total: int) -> None:
        if not started[0]:
            started[0] = True
            progress.start()
            # bytes already there (a resumed transfer) must not count towards the speed
            progress.reset(task, total=total, completed=done, start=True)
        else:
            progress.update(task, total=total, completed=done)

    try:
        yield update, progress
    finally:
        if started[0]:
            progress.stop()


@contextmanager
def interruptible(progress: Progress, advice: str) -> Iterator[None]:
    """Ctrl-C during a transfer: stop the bar, say how to resume, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        progress.stop()
        err.print(advice, highlight=False, markup=False)
        raise typer.Exit(130) from None


@contextmanager
def status_lines(what: str) -> Iterator[Callable[[Any, float], None]]:
    """``on_status`` for a build, export or import: a line per status change, and a live status line (with the
    task's percent, when it has one) on a terminal."""
    last: list[str | None] = [None]
    live = err.status(f"{what}: waiting", spinner="dots") if err.is_terminal else None

    def on_status(item: Any, elapsed: float) -> None:
        status = item.status
        if status != last[0]:
            last[0] = status
            err.print(f"{what}: {status} ({elapsed:.0f} s)", highlight=False, markup=False)
        if live is not None:
            percent = getattr(item, "percent", None)
            pct = f" {percent}%" if percent is not None else ""
            live.update(escape(f"{what}: {status}{pct} … {elapsed:.0f} s"))

    if live is None:
        yield on_status
        return
    with live:
        yield on_status


def show_entries(entries: list[Any], where: str) -> None:
    """A table of a listing's files and directories (``path``, ``size``, ``key``, ``modified_at``; directories end
    in '/'), then how many there are ``where`` ("at commit …")."""
    t = table(("path", {"min_width": 8}), ("size", {"justify": "right", "no_wrap": True}), "key")
    t.add_column("modified", no_wrap=True)
    for e in entries:
        t.add_row(escape(e.path + ("/" if e.is_dir else "")), human(e.size), e.key[:12], when(e.modified_at))
    show(t)
    lines(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} {where}")
