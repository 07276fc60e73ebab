"""SDK commands of ``modelharbor``: upload, download, files (list, link, delete), catalogue, models (the
registry), serving (deploy, predict, deployments, env) and project transfer (export, import, exports, imports),
against a running server.

The server and key come from ``--url``/``--key`` or ``MODELHARBOR_URL``/``MODELHARBOR_API_KEY``.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from modelharbor.sdk.client import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_URL,
    IMPORT_DONE,
    IMPORT_UPLOAD_CONTEXT,
    IMPORT_WAITS,
    LOG_TAIL_LINES,
    Client,
    HarborClientError,
    confirmation_body,
    field_list,
    first_line,
    log_tail,
    missing_values,
)

URL_ENV, KEY_ENV = "MODELHARBOR_URL", "MODELHARBOR_API_KEY"

# Piped output keeps whole rows (rich would squeeze tables into 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

files_app = typer.Typer(help="Files on a ModelHarbor server: list, link, delete.", no_args_is_help=True)

UrlOpt = typer.Option(DEFAULT_URL, "--url", envvar=URL_ENV, help="Server base URL.")
KeyOpt = typer.Option(None, "--key", envvar=KEY_ENV, help="API key.", show_default=False)

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


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _client(url: str, key: str | None) -> Client:
    if not key:
        err.print(
            f"[red]error:[/] no API key: set {KEY_ENV} (or pass --key). "
            "An admin can create one with `modelharbor keys create NAME`.",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return Client(url, key)


@contextmanager
def _errors() -> Iterator[None]:
    """Print a failure as one line and exit non-zero (no tracebacks)."""
    try:
        yield
    except HarborClientError as exc:
        err.print(f"[red]error:[/] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(1) from None


@contextmanager
def _bar(description: str) -> Iterator[tuple[Callable[[int, int], None], Progress]]:
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


def upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The file to upload."),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Chunk size: 64MiB, 8M, 1048576 …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Chunks sent at once."),
    context: str = typer.Option("", "--context", help="Context label stored with the file."),
    name: str = typer.Option(None, "--name", help="Name on the server (default: the file's name)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Upload FILE in parallel chunks; an interrupted upload resumes when run again."""
    try:
        size = parse_size(chunk_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chunk-size") from None
    client = _client(url, key)
    with _errors(), client, _bar(file.name) as (update, progress):

        def on_session(session: dict[str, Any], resumed: bool, to_send: list[int]) -> None:
            total = session["total_chunks"]
            if resumed:
                progress.console.print(  # stderr, above the bar
                    f"resuming upload {session['id']}: {total - len(to_send)} of {total} chunks already on the "
                    f"server, sending {len(to_send)}",
                    soft_wrap=True,
                )
            else:
                progress.console.print(f"upload {session['id']}: sending {total} chunk(s)")

        try:
            record = client.upload(
                file,
                chunk_size=size,
                parallel=parallel,
                context=context,
                name=name,
                progress=update,
                on_session=on_session,
            )
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume the upload")
            raise typer.Exit(130) from None
    out.print(f"id: {record['id']}\nsha256: {record['sha256']}\nsize: {record['size']}", highlight=False)


def download(
    file_id: str = typer.Argument(..., metavar="ID", help="The file's id."),
    output: str = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Download a file by id (resumes a .part left by an interrupted run; checks the SHA-256)."""
    client = _client(url, key)
    with _errors(), client, _bar(file_id[:12]) as (update, progress):
        try:
            path = client.download(file_id, output, progress=update)
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume the download")
            raise typer.Exit(130) from None
    out.print(str(path), highlight=False, soft_wrap=True)


@files_app.command("list")
def files_list(
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many files."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many."),
    context: str = typer.Option(None, "--context", help="Only files with this context."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """List your files, newest first."""
    with _errors(), _client(url, key) as client:
        page = client.list_files(limit=limit, offset=offset, context=context)
    with_context = any(f["context"] for f in page["items"])
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("name", min_width=8, overflow="fold")
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("sha256", no_wrap=True)
    if with_context:
        table.add_column("context", min_width=10, overflow="fold")
    table.add_column("created", no_wrap=True)
    for f in page["items"]:
        created = datetime.fromisoformat(str(f["created_at"]).replace("Z", "+00:00"))
        row = [f["id"], escape(f["name"]), human(f["size"]), f["sha256"][:8] + "…"]
        row += [escape(f["context"])] if with_context else []
        table.add_row(*row, f"{created:%Y-%m-%d %H:%M}")
    out.print(table)
    shown = len(page["items"])
    out.print(f"{shown} of {page['total']} file(s)" + (f" from offset {offset}" if offset else ""), highlight=False)


@files_app.command("link")
def files_link(
    file_id: str = typer.Argument(..., metavar="ID"),
    expires_in: int = typer.Option(None, "--expires-in", min=1, help="Seconds the link stays valid."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Make a signed download link that needs no key."""
    with _errors(), _client(url, key) as client:
        link = client.create_link(file_id, expires_in)
    out.print(link["url"], highlight=False, soft_wrap=True)
    err.print(f"expires at {link['expires_at']}")


@files_app.command("delete")
def files_delete(file_id: str = typer.Argument(..., metavar="ID"), url: str = UrlOpt, key: str = KeyOpt):
    """Delete a file."""
    with _errors(), _client(url, key) as client:
        client.delete_file(file_id)
    out.print(f"deleted {file_id}", highlight=False)


# --- the pretrained-model catalogue -----------------------------------------------------------------
catalogue_app = typer.Typer(
    help="The pretrained-model catalogue: list, show, create, push/pull data, delete, reinstate.",
    no_args_is_help=True,
)
PkArg = typer.Argument(..., metavar="PK", min=1, help="The model's pk.")


def _when(value: str | None) -> str:
    if not value:
        return ""
    return f"{datetime.fromisoformat(str(value).replace('Z', '+00:00')):%Y-%m-%d %H:%M}"


def _show_model(m: dict[str, Any]) -> None:
    fw, dom, lic, data = m["framework"], m["domain"], m["licence"], m["data"]
    lines = [
        f"pk: {m['pk']}",
        f"name: {m['name']}",
        f"url: {m['url']}",
        f"framework: {fw['name']} {fw['version']} (pk {fw['pk']})",
        f"domain: {dom['name']} ({dom['description']})",
        f"licence: {lic['name']} ({lic['url']})",
    ]
    if m["description"]:
        lines.append(f"description: {m['description']}")
    if m["metadata"]:
        lines.append(f"metadata: {m['metadata']}")
    if data:
        lines += [
            f"data: {data['file_id']} ({human(data['size'])})",
            f"sha256: {data['sha256']}",
            f"size: {data['size']}",
        ]
    else:
        lines.append("data: none")
    lines.append(f"created: {_when(m['creation_time'])}")
    if m["deletion_time"]:
        lines.append(
            f"deleted: {_when(m['deletion_time'])} (reinstate with `modelharbor catalogue reinstate {m['pk']}`)"
        )
    out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _framework_pk(client: Client, text: str) -> int:
    """A framework pk from ``PK``, ``NAME`` (when it has one version) or ``NAME:VERSION``."""
    text = text.strip()
    if text.isdecimal():
        return int(text)
    name, _, version = text.partition(":")
    matches = [
        f for f in client.catalogue_frameworks() if f["name"] == name and (not version or f["version"] == version)
    ]
    if len(matches) == 1:
        return matches[0]["pk"]
    if not matches:
        raise HarborClientError(
            0, "UNKNOWN_FRAMEWORK", f"no framework {text!r}; see the pks with `modelharbor catalogue frameworks`"
        )
    versions = ", ".join(f"{f['name']}:{f['version']} (pk {f['pk']})" for f in matches)
    raise HarborClientError(0, "AMBIGUOUS_FRAMEWORK", f"framework {text!r} has several versions: {versions}")


def _field_errors(exc: HarborClientError) -> None:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if isinstance(fields, dict):
        for field, messages in fields.items():
            err.print(f"  --{str(field).replace('_', '-')}: {escape(' '.join(map(str, messages)))}", soft_wrap=True)


@catalogue_app.command("list")
def catalogue_list(
    include_all: bool = typer.Option(False, "--all", help="Also list soft-deleted models."),
    name: str = typer.Option(None, "--name", help="Only models whose name contains this (any case)."),
    framework: str = typer.Option(None, "--framework", help="Only this framework (pk or name)."),
    domain: str = typer.Option(None, "--domain", help="Only this domain (code, e.g. ic)."),
    licence: str = typer.Option(None, "--licence", help="Only this licence (name)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """List the organisation's pretrained models."""
    with _errors(), _client(url, key) as client:
        models = client.catalogue_list(
            include_inactive=include_all, name_contains=name, framework=framework, domain=domain, licence=licence
        )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("pk", no_wrap=True, justify="right")
    table.add_column("name", min_width=8, overflow="fold")
    table.add_column("framework", overflow="fold")
    table.add_column("domain", no_wrap=True)
    table.add_column("licence", overflow="fold")
    table.add_column("data", no_wrap=True, justify="right")
    table.add_column("created", no_wrap=True)
    if include_all:
        table.add_column("deleted", no_wrap=True)
    for m in models:
        row = [
            str(m["pk"]),
            escape(m["name"]),
            escape(f"{m['framework']['name']} {m['framework']['version']}"),
            escape(m["domain"]["name"]),
            escape(m["licence"]["name"]),
            human(m["data"]["size"]) if m["data"] else "-",
            _when(m["creation_time"]),
        ]
        table.add_row(*row, *([_when(m["deletion_time"])] if include_all else []))
    out.print(table)
    out.print(f"{len(models)} model(s)", highlight=False)


@catalogue_app.command("show")
def catalogue_show(pk: int = PkArg, url: str = UrlOpt, key: str = KeyOpt):
    """Show one model."""
    with _errors(), _client(url, key) as client:
        model = client.catalogue_get(pk)
    _show_model(model)


@catalogue_app.command("create")
def catalogue_create(
    name: str = typer.Option(..., "--name", help="The model's name."),
    model_url: str = typer.Option(..., "--url", help="Where the model comes from (a URL)."),
    framework: str = typer.Option(..., "--framework", help="Framework: pk, NAME or NAME:VERSION."),
    domain: str = typer.Option(..., "--domain", help="Domain code: ic, od, is, sp, sc …"),
    licence: str = typer.Option(..., "--licence", help="Licence name, e.g. MIT or 'Apache 2.0'."),
    description: str = typer.Option(None, "--description", help="Free text."),
    metadata: str = typer.Option(None, "--metadata", help="Free text, e.g. JSON."),
    url: str = typer.Option(DEFAULT_URL, "--server", envvar=URL_ENV, help="Server base URL."),
    key: str = KeyOpt,
):
    """Create a pretrained model (admins); push its data with `catalogue push-data`."""
    with _errors(), _client(url, key) as client:
        try:
            model = client.catalogue_create(
                name=name,
                url=model_url,
                framework=_framework_pk(client, framework),
                domain=domain,
                licence=licence,
                description=description,
                metadata=metadata,
            )
        except HarborClientError as exc:
            _field_errors(exc)
            raise
    _show_model(model)


@catalogue_app.command("push-data")
def catalogue_push_data(
    pk: int = PkArg,
    file: Path = typer.Argument(
        None, exists=True, dir_okay=False, readable=True, show_default=False, help="The data file to send."
    ),
    file_id: str = typer.Option(None, "--file-id", help="Use this already-uploaded file instead (no bytes sent)."),
    name: str = typer.Option(None, "--name", help="Name of the data on the server (default: the file's name)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Set a model's data from FILE (with a progress bar) or from an uploaded file's id (--file-id)."""
    if (file is None) == (file_id is None):
        raise typer.BadParameter("give either FILE or --file-id", param_hint="FILE / --file-id")
    client = _client(url, key)
    if file_id is not None:
        with _errors(), client:
            model = client.catalogue_data_from_file(pk, file_id)
    else:
        with _errors(), client, _bar(file.name) as (update, progress):
            try:
                model = client.catalogue_push_data(pk, file, filename=name, progress=update)
            except KeyboardInterrupt:
                progress.stop()
                err.print("interrupted: the model keeps its previous data; run the command again")
                raise typer.Exit(130) from None
    data = model["data"]
    out.print(
        f"pk: {model['pk']}\ndata: {data['file_id']}\nsha256: {data['sha256']}\nsize: {data['size']}", highlight=False
    )


@catalogue_app.command("pull-data")
def catalogue_pull_data(
    pk: int = PkArg,
    output: str = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Download a model's data (resumes a .part left by an interrupted run; checks the SHA-256)."""
    client = _client(url, key)
    with _errors(), client, _bar(f"model {pk}") as (update, progress):
        try:
            path = client.catalogue_pull_data(pk, output, progress=update)
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume the download")
            raise typer.Exit(130) from None
    out.print(str(path), highlight=False, soft_wrap=True)


@catalogue_app.command("delete")
def catalogue_delete(
    pk: int = PkArg,
    hard: bool = typer.Option(False, "--hard", help="Delete the model and its data for good (no reinstating)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Soft-delete a model (undo with `catalogue reinstate`), or with --hard delete it for good."""
    with _errors(), _client(url, key) as client:
        model = client.catalogue_delete(pk, hard=hard)
    if hard:
        out.print(f"deleted model {model['pk']} ({model['name']}) and its data for good", highlight=False, markup=False)
    else:
        out.print(
            f"deleted model {model['pk']} ({model['name']}); undo with `modelharbor catalogue reinstate {model['pk']}`",
            highlight=False,
            markup=False,
        )


@catalogue_app.command("reinstate")
def catalogue_reinstate(pk: int = PkArg, url: str = UrlOpt, key: str = KeyOpt):
    """Undo a soft delete."""
    with _errors(), _client(url, key) as client:
        model = client.catalogue_reinstate(pk)
    out.print(f"reinstated model {model['pk']} ({model['name']})", highlight=False, markup=False)


@catalogue_app.command("frameworks")
def catalogue_frameworks(url: str = UrlOpt, key: str = KeyOpt):
    """List the frameworks (pk, name, version)."""
    with _errors(), _client(url, key) as client:
        frameworks = client.catalogue_frameworks()
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("pk", "name", "version"):
        table.add_column(column, no_wrap=True)
    for f in frameworks:
        table.add_row(str(f["pk"]), escape(f["name"]), escape(f["version"]))
    out.print(table)


# --- the model registry ---------------------------------------------------------------------------
models_app = typer.Typer(
    help="The model registry: list, show, versions, register, alias, stage, download.",
    no_args_is_help=True,
)
NameArg = typer.Argument(..., metavar="NAME", help="The registered model's name (quote names with spaces).")


def _tags(items: list[str] | None, option: str = "--tag") -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        tags[key] = value
    return tags


def _short(text: str, n: int = 40) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _version_ref(text: str | None) -> int | str | None:
    if text is None:
        return None
    if text.startswith("@") and len(text) > 1:
        return text
    if text.isdecimal() and int(text) > 0:
        return int(text)
    if text.lower() == "latest":
        return None
    raise typer.BadParameter(f"{text!r} is not a version number, @alias or 'latest'", param_hint="VERSION")


def _version_line(v: dict[str, Any]) -> str:
    aliases = f", aliases {', '.join(v['aliases'])}" if v["aliases"] else ""
    return f"{v['name']} version {v['version']}: stage {v['current_stage']}{aliases}"


def _versions_table(versions: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("version", no_wrap=True, justify="right")
    table.add_column("stage", no_wrap=True)
    table.add_column("aliases", overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("run", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("description", overflow="fold")
    for v in versions:
        table.add_row(
            str(v["version"]),
            escape(v["current_stage"]),
            escape(", ".join(v["aliases"])),
            escape(v["source"]),
            escape((v["run_id"] or "")[:12]),
            _when(v["creation_time"]),
            escape(_short(v["description"])),
        )
    return table


@models_app.command("list")
def models_list(
    name: str = typer.Option(None, "--name", help="Only models whose name contains this (any case)."),
    prefix: str = typer.Option(None, "--prefix", help="Only models whose name starts with this."),
    tag: list[str] = typer.Option(None, "--tag", help="Only models with this tag: KEY=VALUE (repeatable)."),
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """List the organisation's registered models."""
    tags = _tags(tag)
    with _errors(), _client(url, key) as client:
        models = list(client.models_iter(limit=limit + 1, name_contains=name, name_prefix=prefix, tags=tags or None))
    more = len(models) > limit
    models = models[:limit]
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("name", min_width=8, overflow="fold")
    table.add_column("latest", no_wrap=True, justify="right")
    table.add_column("stages", overflow="fold")
    table.add_column("aliases", overflow="fold")
    table.add_column("updated", no_wrap=True)
    table.add_column("description", overflow="fold")
    for m in models:
        latest = max((v["version"] for v in m["latest_versions"]), default=None)
        stages = ", ".join(
            f"{v['current_stage']}: {v['version']}" for v in m["latest_versions"] if v["current_stage"] != "None"
        )
        aliases = ", ".join(f"{a}: {n}" for a, n in m["aliases"].items())
        table.add_row(
            escape(m["name"]),
            str(latest) if latest is not None else "-",
            escape(stages),
            escape(aliases),
            _when(m["last_updated_time"]),
            escape(_short(m["description"])),
        )
    out.print(table)
    out.print(f"{len(models)} model(s)" + (f" (more: raise --limit above {limit})" if more else ""), highlight=False)


@models_app.command("show")
def models_show(name: str = NameArg, url: str = UrlOpt, key: str = KeyOpt):
    """Show one registered model: description, tags, aliases and the latest version per stage."""
    with _errors(), _client(url, key) as client:
        m = client.model_get(name)
    lines = [f"name: {m['name']}"]
    if m["description"]:
        lines.append(f"description: {m['description']}")
    for k, v in m["tags"].items():
        lines.append(f"tag: {k}={v}")
    for a, n in m["aliases"].items():
        lines.append(f"alias: {a} -> version {n}")
    if m["project_id"]:
        lines.append(f"project: {m['project_id']}")
    lines += [f"created: {_when(m['creation_time'])}", f"updated: {_when(m['last_updated_time'])}"]
    out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    if m["latest_versions"]:
        out.print("latest versions:", highlight=False)
        out.print(_versions_table(sorted(m["latest_versions"], key=lambda v: -v["version"])))
    else:
        out.print("no versions yet", highlight=False)


@models_app.command("versions")
def models_versions(
    name: str = NameArg,
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many (newest first)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """List a model's versions, newest first."""
    versions: list[dict[str, Any]] = []
    more = False
    with _errors(), _client(url, key) as client:
        token = None
        while True:
            page = client.model_versions(name, max_results=min(limit + 1 - len(versions), 1000), page_token=token)
            versions += page["versions"]
            token = page["next_page_token"]
            if len(versions) > limit:
                more, versions = True, versions[:limit]
                break
            if not token:
                break
    out.print(_versions_table(versions))
    out.print(
        f"{len(versions)} version(s)" + (f" (more: raise --limit above {limit})" if more else ""), highlight=False
    )


@models_app.command("register")
def models_register(
    name: str = NameArg,
    path: Path = typer.Argument(
        ..., exists=True, readable=True, help="A file, or a directory such as an MLflow model."
    ),
    description: str = typer.Option(None, "--description", help="The version's description."),
    tag: list[str] = typer.Option(None, "--tag", help="A tag of the version: KEY=VALUE (repeatable)."),
    alias: list[str] = typer.Option(None, "--alias", help="Point this alias at the new version (repeatable)."),
    run_id: str = typer.Option(None, "--run-id", help="The MLflow run the model came from."),
    create: bool = typer.Option(True, "--create/--no-create", help="Create the registered model if it is new."),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Upload chunk size: 64MiB, 8M, 1048576 …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Connections at once."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Upload PATH (resumable, parallel, SHA-256 checked) and register it as a new version of NAME."""
    try:
        size = parse_size(chunk_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chunk-size") from None
    tags = _tags(tag)
    client = _client(url, key)
    with _errors(), client, _bar(path.name) as (update, progress):

        def on_plan(count: int, total: int, reused: int) -> None:
            note = f", {human(reused)} already uploaded by an earlier run" if reused else ""
            progress.console.print(f"{count} file(s), {human(total)}{note}", highlight=False)

        try:
            v = client.model_register(
                name,
                path,
                description=description,
                tags=tags or None,
                aliases=alias or None,
                run_id=run_id,
                create_model=create,
                chunk_size=size,
                parallel=parallel,
                progress=update,
                on_plan=on_plan,
            )
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume (uploaded files are reused)")
            raise typer.Exit(130) from None
    out.print(
        f"registered {v['name']} version {v['version']}\nsource: {v['source']}"
        + (f"\naliases: {', '.join(v['aliases'])}" if v["aliases"] else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@models_app.command("alias")
def models_alias(
    name: str = NameArg,
    alias: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. champion."),
    version: str = typer.Argument(None, metavar="[VERSION]", help="Point the alias here (omit to show it)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Point ALIAS at VERSION, show where it points (no VERSION), or remove it (--delete)."""
    if delete and version is not None:
        raise typer.BadParameter("give VERSION or --delete, not both", param_hint="VERSION / --delete")
    if version is not None and not version.isdecimal():
        raise typer.BadParameter(f"{version!r} is not a version number", param_hint="VERSION")
    with _errors(), _client(url, key) as client:
        if delete:
            client.model_delete_alias(name, alias)
            out.print(f"removed alias {alias} of {name}", highlight=False, markup=False)
            return
        v = (
            client.model_set_alias(name, alias, int(version))
            if version is not None
            else client.model_alias(name, alias)
        )
    out.print(_version_line(v), highlight=False, markup=False)


@models_app.command("stage")
def models_stage(
    name: str = NameArg,
    version: int = typer.Argument(..., metavar="VERSION", min=1, help="The version number."),
    stage: str = typer.Argument(..., metavar="STAGE", help="None, Staging, Production or Archived (any case)."),
    archive_existing: bool = typer.Option(
        False, "--archive-existing", help="Archive the versions already in that stage (Staging/Production)."
    ),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Move a version to a stage."""
    with _errors(), _client(url, key) as client:
        v = client.model_stage(name, version, stage, archive_existing=archive_existing)
    out.print(_version_line(v), highlight=False, markup=False)


@models_app.command("download")
def models_download(
    name: str = NameArg,
    version: str = typer.Argument(None, metavar="[VERSION|@ALIAS]", help="Default: the newest version."),
    output: Path = typer.Option(None, "-o", "--output", help="Destination directory (default: here)."),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Files fetched at once."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Download every file of a version into a directory (skips complete files, resumes partial ones)."""
    ref = _version_ref(version)
    client = _client(url, key)
    with _errors(), client, _bar(name) as (update, progress):

        def on_plan(v: dict[str, Any], count: int, total: int) -> None:
            progress.console.print(
                f"{v['name']} version {v['version']}: {count} file(s), {human(total)}", highlight=False, markup=False
            )

        try:
            result = client.model_download(name, ref, output, parallel=parallel, progress=update, on_plan=on_plan)
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: run the same command again to resume the download")
            raise typer.Exit(130) from None
    skipped = f", {result['skipped']} already complete" if result["skipped"] else ""
    out.print(
        f"{result['root']}\n{result['files']} file(s), {human(result['bytes'])}: {result['downloaded']} downloaded"
        + skipped,
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


# --- serving: deploy, predict, deployments, env --------------------------------------------------
deployments_app = typer.Typer(help="Deployments of a project: list, show, logs.", no_args_is_help=True)
env_app = typer.Typer(
    help="Environment variables of a project, deployment or version: set, list, delete.", no_args_is_help=True
)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name (or id).")
DeploymentArg = typer.Argument(..., metavar="DEPLOYMENT", help="The deployment's name.")
ProjectOpt = typer.Option(..., "--project", "-p", help="The project's name (or id).")
DeploymentOpt = typer.Option(..., "--deployment", "-d", help="The deployment's name.")


def _io(d: dict[str, Any], side: str) -> str:
    if d[f"{side}_type"] == "plain":
        return "plain"
    return ", ".join(f"{f['name']}:{f['data_type']}" for f in d[f"{side}_fields"]) or "-"


@contextmanager
def _build_status() -> Iterator[Callable[[dict[str, Any], float], None]]:
    """``on_status`` for a build: a line per status change, and a live status line on a terminal."""
    last: list[str | None] = [None]
    live = err.status("build: waiting", spinner="dots") if err.is_terminal else None

    def on_status(rev: dict[str, Any], elapsed: float) -> None:
        status = rev["status"]
        if status != last[0]:
            last[0] = status
            err.print(f"build: {status} ({elapsed:.0f} s)", highlight=False)
        if live is not None:
            live.update(f"build: {status} … {elapsed:.0f} s")

    if live is None:
        yield on_status
        return
    with live:
        yield on_status


def _print_build_failure(rev: dict[str, Any]) -> None:
    err.print(f"[red]error:[/] the build failed: {escape(first_line(rev.get('error_message')))}", soft_wrap=True)
    tail = log_tail(rev.get("build_log") or "")
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
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Deploy PATH as a new revision of PROJECT/DEPLOYMENT/VERSION: upload it, then follow its build."""
    if plain and (inputs or outputs):
        raise typer.BadParameter("a plain deployment has no fields", param_hint="--plain / --input / --output")
    try:
        input_fields, output_fields = field_list(inputs or None), field_list(outputs or None)
    except HarborClientError as exc:
        raise typer.BadParameter(exc.message, param_hint="--input / --output") from None
    client = _client(url, key)
    with _errors(), client:
        with _bar(path.resolve().name or str(path)) as (update, progress):

            def on_step(text: str) -> None:
                progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

            try:
                result = client.deploy(
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
            except KeyboardInterrupt:
                progress.stop()
                err.print("interrupted before the package was uploaded: run the command again")
                raise typer.Exit(130) from None
        where = f"{result['project']}/{result['deployment']}/{result['version']}"
        rev = result["revision"]
        if not wait:
            out.print(
                f"{where}: revision {rev['id']} {rev['status']}; follow it with `modelharbor deployments logs "
                f"{result['project']} {result['deployment']} {result['version']} {rev['id']}`",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            return
        try:
            with _build_status() as on_status:
                rev = client.wait_for_revision(
                    result["project"], result["deployment"], version, rev["id"], timeout=timeout, on_status=on_status
                )
        except KeyboardInterrupt:
            err.print(
                f"stopped waiting: the build goes on; see `modelharbor deployments logs {where.replace('/', ' ')}`"
            )
            raise typer.Exit(130) from None
    if rev["status"] == "failed":
        _print_build_failure(rev)
        raise typer.Exit(1)
    out.print(f"deployed {where}: revision {rev['id']} (success)", highlight=False, markup=False, soft_wrap=True)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def _read_data(data: str, plain: bool) -> Any:
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
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Ask a deployment for a prediction and print the result (JSON; text with --plain)."""
    value = _read_data(data, plain)
    with _errors(), _client(url, key) as client:
        answer = client.predict(project, deployment, value, version=version, timeout=timeout, plain=plain)
    if answer["status"] != "completed":
        err.print(
            f"[red]error:[/] the prediction failed ({escape(answer['version'])}): "
            f"{escape(answer['error_message'] or answer['status'])}",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    result = answer["result"]
    if plain and isinstance(result, str):
        typer.echo(result)
    else:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@deployments_app.command("list")
def deployments_list(project: str = ProjectOpt, url: str = UrlOpt, key: str = KeyOpt):
    """Table of a project's deployments."""
    with _errors(), _client(url, key) as client:
        items = client.deployments_list(project)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("name", min_width=8, overflow="fold")
    table.add_column("input", overflow="fold")
    table.add_column("output", overflow="fold")
    table.add_column("default", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("description", overflow="fold")
    for d in items:
        table.add_row(
            escape(d["name"]),
            escape(_io(d, "input")),
            escape(_io(d, "output")),
            escape(d["default_version"] or "-"),
            _when(d["updated_at"]),
            escape(_short(d["description"])),
        )
    out.print(table)
    out.print(f"{len(items)} deployment(s)", highlight=False)


@deployments_app.command("show")
def deployments_show(project: str = ProjectArg, deployment: str = DeploymentArg, url: str = UrlOpt, key: str = KeyOpt):
    """One deployment: its fields and a table of its versions (status, active and latest revision)."""
    with _errors(), _client(url, key) as client:
        d = client.deployment_get(project, deployment)
        versions = client.deployment_versions(project, deployment)
        latest = {
            v["version"]: client.revision_get(project, deployment, v["version"], v["latest_revision"])
            for v in versions
            if v["latest_revision"]
        }
    lines = [f"name: {d['name']}", f"project: {d['project']}"]
    if d["description"]:
        lines.append(f"description: {d['description']}")
    lines += [f"input: {_io(d, 'input')}", f"output: {_io(d, 'output')}", f"default version: {d['default_version']}"]
    out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    if not versions:
        out.print("no versions yet", highlight=False)
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("version", "status", "environment", "instances", "idle", "active revision", "latest revision"):
        table.add_column(column, no_wrap=column != "latest revision", overflow="fold")
    for v in versions:
        rev = latest.get(v["version"])
        newest = "-" if rev is None else f"{rev['id'][:8]} {rev['status']}"
        if rev is not None and rev["status"] == "failed" and rev["error_message"]:
            newest += f": {_short(first_line(rev['error_message']), 60)}"
        table.add_row(
            escape(v["version"] + (" (default)" if v["is_default"] else "")),
            escape(v["status"]),
            escape(v["environment"]),
            f"{v['minimum_instances']}–{v['maximum_instances']}",
            f"{v['maximum_idle_time']} s",
            (v["active_revision"] or "-")[:8],
            escape(newest),
        )
    out.print(table)


@deployments_app.command("logs")
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
    lines: int = typer.Option(100, "--lines", "-n", min=1, max=5000, help="With --runtime: the newest N lines."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """The build log of a revision (default: the version's latest; its status goes to stderr), or with --runtime
    the lines the deployment's instances wrote (all versions unless VERSION is given)."""
    if runtime:
        return _runtime_logs(project, deployment, version, follow, level, grep, lines, url, key)
    if follow or level or grep:
        raise typer.BadParameter("--follow, --level and --grep go with --runtime", param_hint="--runtime")
    if version is None:
        raise typer.BadParameter("give the VERSION whose build log to show (or --runtime)", param_hint="VERSION")
    with _errors(), _client(url, key) as client:
        if revision is None:
            revision = client.deployment_version(project, deployment, version)["latest_revision"]
            if revision is None:
                raise HarborClientError(
                    404, "NOT_FOUND", f"{project}/{deployment}/{version} has no revision yet: deploy a package first"
                )
        rev = client.revision_get(project, deployment, version, revision)
    note = f": {first_line(rev['error_message'])}" if rev["error_message"] else ""
    err.print(f"revision {rev['id']}: {rev['status']}{note}", highlight=False, markup=False, soft_wrap=True)
    if rev["build_log"]:
        typer.echo(rev["build_log"])


def _runtime_logs(project, deployment, version, follow, level, grep, lines, url, key) -> None:
    seen: set[tuple] = set()
    since = None
    with _errors(), _client(url, key) as client:
        while True:
            got = client.deployment_logs(
                project, deployment, version=version, since=since, level=level, contains=grep, limit=lines
            )
            for e in got:
                ident = (e["time"], e["instance"], e["stream"], e["text"])
                if ident in seen:
                    continue
                seen.add(ident)
                where = e["version"] if version is None else e["instance"]
                typer.echo(f"{e['time']} {where} {e['stream']}: {e['text']}")
            if not follow:
                return
            if got:
                since = got[-1]["time"]  # inclusive: lines of that same instant come again and are skipped
                seen = {s for s in seen if s[0] == since}
            try:
                time.sleep(1.0)
            except KeyboardInterrupt:  # Ctrl-C ends a --follow
                return


def _level(deployment: str | None, version: str | None) -> None:
    if version is not None and deployment is None:
        raise typer.BadParameter("--version needs --deployment", param_hint="--version")


def _where(project: str, deployment: str | None, version: str | None) -> str:
    return "/".join(x for x in (project, deployment, version) if x)


EnvDeploymentOpt = typer.Option(None, "--deployment", "-d", help="At deployment level.")
EnvVersionOpt = typer.Option(None, "--version", help="At version level (with --deployment).")


@env_app.command("set")
def env_set(
    project: str = ProjectArg,
    name: str = typer.Argument(..., metavar="NAME", help="Letters, digits and _, starting with a letter."),
    value: str = typer.Argument(None, metavar="[VALUE]", help="The value (omit it to be asked, hidden for secrets)."),
    secret: bool = typer.Option(False, "--secret", help="Never show the value again (it is encrypted either way)."),
    deployment: str = EnvDeploymentOpt,
    version: str = EnvVersionOpt,
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Create or change an environment variable (project level unless --deployment / --version)."""
    _level(deployment, version)
    if value is None:
        value = typer.prompt(f"value of {name}", hide_input=secret, err=True)
    with _errors(), _client(url, key) as client:
        e = client.env_set(project, name, value, secret=secret, deployment=deployment, version=version)
    kind = "secret " if e["secret"] else ""
    out.print(f"set {kind}{e['name']} at {_where(project, deployment, version)}", highlight=False, markup=False)


@env_app.command("list")
def env_list(
    project: str = ProjectArg,
    deployment: str = EnvDeploymentOpt,
    version: str = EnvVersionOpt,
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Table of a level's variables, inherited ones first; secrets' values are never shown."""
    _level(deployment, version)
    with _errors(), _client(url, key) as client:
        items = client.env_list(project, deployment=deployment, version=version)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("level", overflow="fold")
    for e in items:
        value = "(secret)" if e["secret"] else _short(e["value"] or "", 60)
        level = "this level" if e["inheritance_type"] is None else f"{e['inheritance_type']} {e['inheritance_name']}"
        table.add_row(escape(e["name"]), escape(value), escape(level))
    out.print(table)
    out.print(f"{len(items)} variable(s) at {_where(project, deployment, version)}", highlight=False, markup=False)


@env_app.command("delete")
def env_delete(
    project: str = ProjectArg,
    name: str = typer.Argument(..., metavar="NAME"),
    deployment: str = EnvDeploymentOpt,
    version: str = EnvVersionOpt,
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Delete a variable of this level (inherited ones are deleted at their own level)."""
    _level(deployment, version)
    with _errors(), _client(url, key) as client:
        client.env_unset(project, name, deployment=deployment, version=version)
    out.print(f"deleted {name} at {_where(project, deployment, version)}", highlight=False, markup=False)


# --- project exports and imports ---------------------------------------------------------------
exports_app = typer.Typer(help="Exports of a project: list, download, delete.", no_args_is_help=True)
imports_app = typer.Typer(help="Imports into a project: list, delete.", no_args_is_help=True)
ExportIdArg = typer.Argument(..., metavar="EXPORT_ID", help="The export's id.")
ImportIdArg = typer.Argument(..., metavar="IMPORT_ID", help="The import's id.")
_SECRET_KEY = re.compile(r"^[^/=\s]+(?:/[^/=\s]+){0,2}$")


@contextmanager
def _task_status(what: str) -> Iterator[Callable[[dict[str, Any], float], None]]:
    """``on_status`` for an export or import: a line per status change, and a live status line (with the task's
    percent) on a terminal."""
    last: list[str | None] = [None]
    live = err.status(f"{what}: waiting", spinner="dots") if err.is_terminal else None

    def on_status(item: dict[str, Any], elapsed: float) -> None:
        status = item["status"]
        if status != last[0]:
            last[0] = status
            err.print(f"{what}: {status} ({elapsed:.0f} s)", highlight=False, markup=False)
        if live is not None:
            pct = f" {item['percent']}%" if item.get("percent") is not None else ""
            live.update(escape(f"{what}: {status}{pct} … {elapsed:.0f} s"))

    if live is None:
        yield on_status
        return
    with live:
        yield on_status


def _named_versions(items: list[str] | None, option: str) -> dict[str, list[str] | None]:
    """``NAME`` (every version) or ``NAME:V,V…`` per item."""
    out: dict[str, list[str] | None] = {}
    for item in items or []:
        name, colon, versions = item.partition(":")
        chosen = [v.strip() for v in versions.split(",") if v.strip()]
        if not name.strip() or (colon and not chosen):
            raise typer.BadParameter(f"{item!r} is not NAME or NAME:VERSION,VERSION…", param_hint=option)
        if name.strip() in out:
            raise typer.BadParameter(f"{name.strip()!r} is given twice", param_hint=option)
        out[name.strip()] = chosen if colon else None
    return out


def export(
    project: str = ProjectArg,
    output: str = typer.Option(
        None, "-o", "--output", help="The zip to write, or a directory (default: here, the server's name)."
    ),
    everything: bool = typer.Option(False, "--all", help="Everything, with values (the default with no selection)."),
    deployments: list[str] = typer.Option(
        None, "--deployment", "-d", help="D (all its versions) or D:V,V… (repeatable)."
    ),
    pipelines: list[str] = typer.Option(None, "--pipeline", help="P (all its versions) or P:V,V… (repeatable)."),
    packages: bool = typer.Option(True, "--packages/--no-packages", help="Include each version's package."),
    timeout: float = typer.Option(3600, "--timeout", min=1, help="Seconds to wait for the zip to be built."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Export PROJECT (everything, or the deployments and pipelines named) as a zip: wait while the server builds
    it, then download it with a progress bar (resumable) and check its SHA-256."""
    chosen_d = _named_versions(deployments, "--deployment")
    chosen_p = _named_versions(pipelines, "--pipeline")
    if everything and (chosen_d or chosen_p):
        raise typer.BadParameter("--all exports everything: leave out --deployment/--pipeline", param_hint="--all")
    everything = everything or not (chosen_d or chosen_p)
    client = _client(url, key)
    with _errors(), client:
        selection = None if everything else client.export_selection(project, chosen_d, chosen_p)
        e = client.export_create(project, selection, everything=everything, packages=packages)
        err.print(f"export {e['id']} of {e['project']}", highlight=False, markup=False)
        try:
            with _task_status("export") as on_status:
                e = client.wait_for_export(project, e["id"], timeout=timeout, on_status=on_status)
        except KeyboardInterrupt:
            err.print(
                f"stopped waiting: the export goes on; fetch it with `modelharbor exports download {project} {e['id']}`"
            )
            raise typer.Exit(130) from None
        if e["status"] == "failed":
            err.print(
                f"[red]error:[/] export {e['id']} failed: {escape(e['error_message'] or 'no reason given')}",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        path = _download_export(client, project, e, output)
    out.print(f"{path}\nsha256: {e['sha256']}\nsize: {e['size']}", highlight=False, markup=False, soft_wrap=True)


def _download_export(client: Client, project: str, e: dict[str, Any], output: str | None) -> Path:
    with _bar(f"export {e['id'][:8]}") as (update, progress):
        try:
            return client.export_download(project, e["id"], output, progress=update)
        except KeyboardInterrupt:
            progress.stop()
            where = f" -o {output}" if output else ""
            err.print(f"interrupted: resume with `modelharbor exports download {project} {e['id']}{where}`")
            raise typer.Exit(130) from None


@exports_app.command("list")
def exports_list(
    project: str = ProjectArg,
    status: str = typer.Option(None, "--status", help="pending, processing, completed or failed."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Table of a project's exports, newest first."""
    with _errors(), _client(url, key) as client:
        items = client.exports_list(project, status=status)
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "status", "size", "packages", "created", "by", "error"):
        table.add_column(column, no_wrap=column not in ("error", "by"), overflow="fold")
    for e in items:
        state = e["status"] + (f" {e['percent']}%" if e["status"] in ("pending", "processing") else "")
        table.add_row(
            e["id"],
            escape(state),
            human(e["size"]) if e["size"] is not None else "-",
            "yes" if e["packages"] else "no",
            _when(e["created_at"]),
            escape(e["created_by"] or "-"),
            escape(_short(first_line(e["error_message"]), 60) if e["error_message"] else ""),
        )
    out.print(table)
    out.print(f"{len(items)} export(s)", highlight=False)


@exports_app.command("download")
def exports_download(
    project: str = ProjectArg,
    export_id: str = ExportIdArg,
    output: str = typer.Option(None, "-o", "--output", help="The zip to write, or a directory (default: here)."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Download a completed export (resumes a .part left by an interrupted run; checks the SHA-256)."""
    client = _client(url, key)
    with _errors(), client:
        e = client.export_get(project, export_id)
        path = _download_export(client, project, e, output)
    out.print(f"{path}\nsha256: {e['sha256']}\nsize: {e['size']}", highlight=False, markup=False, soft_wrap=True)


@exports_app.command("delete")
def exports_delete(project: str = ProjectArg, export_id: str = ExportIdArg, url: str = UrlOpt, key: str = KeyOpt):
    """Delete an export and its zip."""
    with _errors(), _client(url, key) as client:
        client.export_delete(project, export_id)
    out.print(f"deleted export {export_id}", highlight=False, markup=False)


def _secret_values(items: list[str] | None) -> dict[str, str]:
    """``--secret NAME=VALUE`` (every level), ``D/NAME=VALUE`` (deployment D and its versions), ``D/V/NAME=VALUE``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not _SECRET_KEY.match(name):
            raise typer.BadParameter(
                "expected NAME=VALUE, DEPLOYMENT/NAME=VALUE or DEPLOYMENT/VERSION/NAME=VALUE (the value is not shown)",
                param_hint="--secret",
            )
        out[name] = value
    return out


def _level_text(var: dict[str, Any]) -> str:
    if var["version"] is not None:
        return f"deployment {var['deployment']} version {var['version']}"
    return f"deployment {var['deployment']}" if var["deployment"] is not None else "project"


def _describe_import(imp: dict[str, Any], needed: list[dict[str, Any]]) -> list[str]:
    """What an import's zip holds (or what it imported), a line per object."""
    lacking = {(v["deployment"], v["version"], v["name"]) for v in needed}

    def variables(raw: dict[str, Any] | None, d: str | None = None, v: str | None = None) -> str:
        names = []
        for name, var in (raw or {}).items():
            notes = [
                x
                for x in ("secret" if var.get("secret") else "", "needs a value" if (d, v, name) in lacking else "")
                if x
            ]
            names.append(name + (f" ({', '.join(notes)})" if notes else ""))
        return ", ".join(names)

    lines = []
    for dname, d in (imp.get("deployments") or {}).items():
        lines.append(
            f"deployment {dname}"
            + (
                f": variables {variables(d.get('environment_variables'), dname)}"
                if d.get("environment_variables")
                else ""
            )
        )
        for vname, v in (d.get("versions") or {}).items():
            facts = [f"environment {v.get('environment') or 'default'}", "package" if v.get("zip") else "no package"]
            if v.get("environment_variables"):
                facts.append("variables " + variables(v["environment_variables"], dname, vname))
            lines.append(f"  version {vname}: " + "; ".join(facts))
    for pname, pl in (imp.get("pipelines") or {}).items():
        versions = ", ".join(pl.get("versions") or {}) or "none"
        lines.append(f"pipeline {pname}: versions {versions}")
    for ename, env in (imp.get("environments") or {}).items():
        lines.append(
            f"environment {ename}" + (f" (base {env['base_environment']})" if env.get("base_environment") else "")
        )
    if imp.get("environment_variables"):
        lines.append("project variables: " + variables(imp["environment_variables"]))
    return lines or ["nothing"]


def _values_for(needed: list[dict[str, Any]], given: dict[str, str], interactive: bool) -> dict[tuple, str]:
    """A value for each variable that needs one: the most specific ``--secret``, else asked (hidden for secrets)."""
    values: dict[tuple, str] = {}
    used: set[str] = set()
    missing = []
    for var in needed:
        d, v, name = var["deployment"], var["version"], var["name"]
        keys = [f"{d}/{v}/{name}", f"{d}/{name}", name] if v is not None else [f"{d}/{name}", name] if d else [name]
        found = next((k for k in keys if k in given), None)
        if found is not None:
            values[(d, v, name)] = given[found]
            used.add(found)
        elif interactive:
            kind = "secret" if var["secret"] else "variable"
            values[(d, v, name)] = typer.prompt(
                f"value of {kind} {name} ({_level_text(var)})", hide_input=var["secret"], err=True
            )
        else:
            missing.append(var)
    for k in sorted(set(given) - used):
        err.print(f"warning: --secret {k}=… matches no variable that needs a value", highlight=False, markup=False)
    if missing:
        names = ", ".join(f"{x['name']} ({_level_text(x)})" for x in missing)
        raise HarborClientError(
            0,
            "VALUES_NEEDED",
            f"these variables need a value: {names}; pass each with --secret NAME=VALUE (or DEPLOYMENT/NAME=VALUE)",
        )
    return values


def import_(
    project: str = ProjectArg,
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, metavar="FILE.zip", help="The zip (an export)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Import everything the zip holds without asking."),
    secrets: list[str] = typer.Option(
        None, "--secret", help="NAME=VALUE for a variable that needs a value (repeatable; never shown)."
    ),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Upload chunk size: 64MiB, 8M …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Chunks sent at once."),
    timeout: float = typer.Option(3600, "--timeout", min=1, help="Seconds to wait for each stage."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Import FILE.zip into PROJECT: upload it (resumable), let the server check it, show what it holds, ask
    (unless --yes) and for the values secrets need (unless given with --secret), then create it all."""
    try:
        size = parse_size(chunk_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chunk-size") from None
    given = _secret_values(secrets)
    interactive = sys.stdin.isatty()
    client = _client(url, key)
    with _errors(), client:
        with _bar(file.name) as (update, progress):

            def on_session(session: dict[str, Any], resumed: bool, to_send: list[int]) -> None:
                if resumed:
                    total = session["total_chunks"]
                    progress.console.print(
                        f"resuming upload {session['id']}: {total - len(to_send)} of {total} chunks already on the server",
                        soft_wrap=True,
                    )

            try:
                record = client.upload(
                    file,
                    chunk_size=size,
                    parallel=parallel,
                    context=IMPORT_UPLOAD_CONTEXT,
                    progress=update,
                    on_session=on_session,
                )
            except KeyboardInterrupt:
                progress.stop()
                err.print("interrupted: run the same command again to resume the upload")
                raise typer.Exit(130) from None
        try:
            imp = client.import_create(project, file_id=record["id"])
        finally:
            with contextlib.suppress(HarborClientError):
                client.delete_file(record["id"])  # the import keeps its own record of the bytes
        err.print(f"import {imp['id']} into {imp['project']}", highlight=False, markup=False)
        imp = _follow(client, project, imp, IMPORT_WAITS, timeout)
        if imp["status"] == "confirmation":
            needed = missing_values(imp)
            out.print(f"{file.name} holds:", highlight=False, markup=False)
            out.print(
                "\n".join("  " + line for line in _describe_import(imp, needed)),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            try:
                values = _values_for(needed, given, interactive)
                if not yes:
                    if not interactive:
                        raise HarborClientError(
                            0, "NOT_CONFIRMED", "not confirmed: pass --yes to import without asking"
                        )
                    if not typer.confirm(f"import all this into {imp['project']}?", default=False, err=True):
                        raise HarborClientError(0, "NOT_CONFIRMED", "not confirmed")
            except (HarborClientError, KeyboardInterrupt, typer.Abort) as exc:
                with contextlib.suppress(HarborClientError):
                    client.import_delete(project, imp["id"])
                if isinstance(exc, HarborClientError):
                    raise HarborClientError(exc.status, exc.code, f"{exc.message}; nothing was imported") from None
                err.print("nothing was imported")
                raise typer.Exit(130) from None
            client.import_confirm(project, imp["id"], confirmation_body(imp, values))
            imp = _follow(client, project, imp, IMPORT_DONE, timeout)
        if imp["status"] == "failed":
            err.print(
                f"[red]error:[/] import {imp['id']} failed: {escape(imp['error_message'] or 'no reason given')}",
                soft_wrap=True,
            )
            raise typer.Exit(1)
    counts = {
        kind: len(imp.get(kind) or {}) for kind in ("deployments", "pipelines", "environments", "environment_variables")
    }
    versions = sum(len(d.get("versions") or {}) for d in (imp.get("deployments") or {}).values())
    out.print(
        f"imported into {imp['project']}: {counts['deployments']} deployment(s) with {versions} version(s), "
        f"{counts['pipelines']} pipeline(s), {counts['environments']} environment(s), "
        f"{counts['environment_variables']} project variable(s)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if versions:
        err.print(
            f"packages build in the background: see `modelharbor deployments show {imp['project']} DEPLOYMENT`",
            highlight=False,
            markup=False,
        )


def _follow(
    client: Client, project: str, imp: dict[str, Any], until: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    try:
        with _task_status("import") as on_status:
            return client.wait_for_import(project, imp["id"], until=until, timeout=timeout, on_status=on_status)
    except KeyboardInterrupt:
        err.print(f"stopped waiting: import {imp['id']} goes on; see `modelharbor imports list {project}`")
        raise typer.Exit(130) from None


@imports_app.command("list")
def imports_list(
    project: str = ProjectArg,
    status: str = typer.Option(None, "--status", help="pending, scanning, confirmation, …, completed or failed."),
    url: str = UrlOpt,
    key: str = KeyOpt,
):
    """Table of a project's imports, newest first."""
    with _errors(), _client(url, key) as client:
        items = client.imports_list(project, status=status)
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "status", "source", "size", "created", "by", "error"):
        table.add_column(column, no_wrap=column not in ("error", "by"), overflow="fold")
    for i in items:
        state = i["status"] + (f" {i['percent']}%" if i["percent"] is not None and i["status"] != "completed" else "")
        table.add_row(
            i["id"],
            escape(state),
            escape(i["source"]),
            human(i["size"]) if i["size"] is not None else "-",
            _when(i["created_at"]),
            escape(i["created_by"] or "-"),
            escape(_short(first_line(i["error_message"]), 60) if i["error_message"] else ""),
        )
    out.print(table)
    out.print(f"{len(items)} import(s)", highlight=False)


@imports_app.command("delete")
def imports_delete(project: str = ProjectArg, import_id: str = ImportIdArg, url: str = UrlOpt, key: str = KeyOpt):
    """Delete an import and its zip (the objects it created stay)."""
    with _errors(), _client(url, key) as client:
        client.import_delete(project, import_id)
    out.print(f"deleted import {import_id}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add upload, download, files, catalogue, models, deploy, predict, deployments, env, export, import, exports,
    imports and orgs to ``modelharbor``."""
    app.command("upload")(upload)
    app.command("download")(download)
    app.add_typer(files_app, name="files")
    app.add_typer(catalogue_app, name="catalogue")
    app.add_typer(models_app, name="models")
    app.command("deploy")(deploy)
    app.command("predict")(predict)
    app.add_typer(deployments_app, name="deployments")
    app.add_typer(env_app, name="env")
    app.command("export")(export)
    app.command("import")(import_)
    app.add_typer(exports_app, name="exports")
    app.add_typer(imports_app, name="imports")
    from modelharbor.sdk.cli_orgs import orgs_app  # its commands use this module's helpers: imported once it is

    app.add_typer(orgs_app, name="orgs")


__all__ = ["register", "parse_size", "DEFAULT_CHUNK_SIZE"]
