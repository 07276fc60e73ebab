"""``modelharbor upload``, ``download``, ``files list|show|link|delete`` and ``uploads list|show|abort``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    bar,
    command,
    emit_json,
    err,
    human,
    interruptible,
    lines,
    out,
    show,
    size_option,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.uploads import HASH_FIRST_OVER, session_chunk_size
from modelharbor.sdk.wire import FileDetail, Upload

files_app = typer.Typer(help="Files on the server: list, show, link, delete.", no_args_is_help=True)
uploads_app = typer.Typer(help="Chunked upload sessions: list, show, abort.", no_args_is_help=True)
IdArg = typer.Argument(..., metavar="ID", help="The file's id.")


def upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The file to upload."),
    chunk_size: str = typer.Option("64MiB", "--chunk-size", help="Chunk size of a new session: 64MiB, 8M, 1048576 …"),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Chunks sent at once."),
    context: str = typer.Option("", "--context", help="Context label stored with the file."),
    name: str = typer.Option(None, "--name", help="Name on the server (default: the file's name)."),
    hash_first: str = typer.Option(
        "8MiB",
        "--hash-first-over",
        help="Hash files of this size or more first, so bytes the server holds are not sent.",
    ),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Upload FILE in parallel chunks; run the same command again to resume an interrupted upload (whatever the
    chunk size); bytes the server already holds are not sent again."""
    size = size_option(chunk_size, "--chunk-size")
    threshold = size_option(hash_first, "--hash-first-over") if hash_first else HASH_FIRST_OVER
    with bar(file.name) as (update, progress):

        def on_session(session: Upload, resumed: bool, to_send: list[int]) -> None:
            total = session.total_chunks
            cs = session_chunk_size(session, session.size or 0)
            if session.state == "completed" and not resumed:
                progress.console.print(f"upload {session.id}: the server already holds these bytes; nothing sent")
            elif resumed:
                progress.console.print(  # stderr, above the bar
                    f"resuming upload {session.id}: {total - len(to_send)} of {total} chunks already on the "
                    f"server, sending {len(to_send)}" + (f" (chunks of {human(cs)})" if cs else ""),
                    soft_wrap=True,
                    highlight=False,
                )
            else:
                progress.console.print(f"upload {session.id}: sending {total} chunk(s)", highlight=False)

        hashing: list[bool] = []

        def on_hash(done: int, total: int) -> None:
            if not hashing:
                hashing.append(True)
                progress.console.print(f"hashing {human(total)} first, so bytes the server holds are not sent")

        with interruptible(progress, "interrupted: run the same command again to resume the upload"):
            record = client.files.upload(
                file,
                chunk_size=size,
                parallel=parallel,
                context=context,
                name=name,
                progress=update,
                on_session=on_session,
                hash_first_over=threshold,
                hash_progress=on_hash,
            )
    if as_json:
        emit_json(record)
        return
    lines(f"id: {record.id}", f"sha256: {record.sha256}", f"size: {record.size}")


def download(
    file_id: str = IdArg,
    output: str = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    client: Client = None,
):
    """Download a file by id (resumes a .part left by an interrupted run; checks the SHA-256)."""
    advice = "interrupted: run the same command again to resume the download"
    with bar(file_id[:12]) as (update, progress), interruptible(progress, advice):
        path = client.files.download(file_id, output, progress=update)
    lines(str(path))


def files_list(
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many files."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many."),
    context: str = typer.Option(None, "--context", help="Only files with this context."),
    everything: bool = typer.Option(
        False, "--all", help="Also the files the server keeps for its own objects (packages, export zips, …)."
    ),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """List your files, newest first (without internal ones unless --all)."""
    page = client.files.list(limit=limit, offset=offset, context=context, include_internal=everything)
    items = [f for f in page.items if everything or not getattr(f, "internal", False)]
    if as_json:
        emit_json(items)
        return
    with_context = any(f.context for f in items)
    t = table("id", ("name", {"min_width": 8}), ("size", {"justify": "right", "no_wrap": True}), "sha256")
    if with_context:
        t.add_column("context", overflow="fold")
    t.add_column("created", no_wrap=True)
    for f in items:
        row = [f.id, escape(f.name), human(f.size), f.sha256]
        row += [escape(f.context)] if with_context else []
        t.add_row(*row, when(f.created_at))
    show(t)
    lines(f"{len(items)} of {page.total} file(s)" + (f" from offset {offset}" if offset else ""))


def describe_file(f: FileDetail) -> list[str]:
    found = [
        f"id: {f.id}",
        f"name: {f.name}",
        f"size: {f.size} ({human(f.size)})",
        f"sha256: {f.sha256}",
        f"content type: {f.content_type}",
    ]
    if f.context:
        found.append(f"context: {f.context}")
    found.append(f"internal: {'yes (kept for one of the server own objects)' if f.internal else 'no'}")
    found += [f"owner: {f.owner_id}", f"created: {when(f.created_at)}"]
    if not f.used_by:
        found.append("used by: nothing")
    else:
        found += [f"used by: {u.kind} {u.name} ({u.id})" for u in f.used_by]
    return found


def files_show(file_id: str = IdArg, as_json: bool = JsonOpt, client: Client = None):
    """One file: full SHA-256, size, and what uses it (model versions, deployments, exports, …)."""
    f = client.files.get(file_id)
    if as_json:
        emit_json(f)
        return
    lines(*describe_file(f))


def files_link(
    file_id: str = IdArg,
    expires_in: int = typer.Option(None, "--expires-in", min=1, help="Seconds the link stays valid."),
    client: Client = None,
):
    """Make a signed download link that needs no key."""
    link = client.files.link(file_id, expires_in)
    lines(link.url)
    err.print(f"expires at {link.expires_at:%Y-%m-%d %H:%M:%S %Z}", highlight=False)


def files_delete(file_id: str = IdArg, client: Client = None):
    """Delete a file (the server refuses while a model version, deployment or export uses it)."""
    client.files.delete(file_id)
    lines(f"deleted {file_id}")


# --- upload sessions ----------------------------------------------------------------------------------------
def uploads_list(
    name: str = typer.Option(None, "--name", help="Only sessions for this file name."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Your open upload sessions, newest first: what each holds and when it expires."""
    items = client.uploads.list(name=name)
    if as_json:
        emit_json(items)
        return
    t = table("id", ("name", {"min_width": 8}), ("size", {"justify": "right", "no_wrap": True}), "received")
    t.add_column("chunks", no_wrap=True)
    t.add_column("chunk size", no_wrap=True, justify="right")
    t.add_column("expires", no_wrap=True)
    for u in items:
        cs = session_chunk_size(u, u.size or 0)
        t.add_row(
            u.id,
            escape(u.name),
            human(u.size) if u.size is not None else "?",
            human(u.received_bytes),
            f"{len(u.chunks)}/{u.total_chunks}",
            human(cs) if cs else "?",
            when(u.expires_at),
        )
    show(t)
    lines(f"{len(items)} open upload(s)")


def uploads_show(upload_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt, client: Client = None):
    """One upload session: state, bytes held, missing chunks."""
    u = client.uploads.get(upload_id)
    if as_json:
        emit_json(u)
        return
    cs = session_chunk_size(u, u.size or 0)
    missing = ", ".join(map(str, u.missing_chunks[:20])) + (" …" if len(u.missing_chunks) > 20 else "")
    lines(
        f"id: {u.id}",
        f"name: {u.name}",
        f"state: {u.state}",
        f"size: {u.size if u.size is not None else '?'}",
        f"received: {u.received_bytes} bytes in {len(u.chunks)} of {u.total_chunks} chunk(s)",
        f"chunk size: {cs if cs else '?'}",
        f"missing: {missing or 'none'}",
        f"expires: {when(u.expires_at)}",
        *([f"file: {u.file_id}"] if u.file_id else []),
    )


def uploads_abort(
    upload_ids: list[str] = typer.Argument(None, metavar="ID...", help="The sessions to abort."),
    everything: bool = typer.Option(False, "--all", help="Abort every open session."),
    client: Client = None,
):
    """Abort upload sessions: the server drops the chunks they hold."""
    if bool(upload_ids) == everything:
        raise typer.BadParameter("give session ids or --all", param_hint="ID / --all")
    ids = [u.id for u in client.uploads.list()] if everything else upload_ids
    for upload_id in ids:
        client.uploads.abort(upload_id)
        out.print(f"aborted {upload_id}", highlight=False)
    if everything:
        lines(f"{len(ids)} upload(s) aborted")


def register(app: typer.Typer) -> None:
    command(app, "upload")(upload)
    command(app, "download")(download)
    command(files_app, "list")(files_list)
    command(files_app, "show")(files_show)
    command(files_app, "link")(files_link)
    command(files_app, "delete")(files_delete)
    command(uploads_app, "list")(uploads_list)
    command(uploads_app, "show")(uploads_show)
    command(uploads_app, "abort")(uploads_abort)
    app.add_typer(files_app, name="files")
    app.add_typer(uploads_app, name="uploads")
