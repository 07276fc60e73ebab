"""``modelharbor project-files upload|download|ls|log``: a project's versioned files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    bar,
    command,
    emit_json,
    interruptible,
    lines,
    show,
    show_entries,
    table,
    when,
)
from modelharbor.sdk.client import Client

app = typer.Typer(help="A project's versioned files: upload, download, ls, log.", no_args_is_help=True)
ProjectArg = typer.Argument(..., metavar="PROJECT", help="The project's name or id.")
CommitOpt = typer.Option(None, "--commit", "-c", help="A commit id (default: the newest).")


def upload(
    project: str = ProjectArg,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The local file."),
    path: str = typer.Option(None, "--path", "-p", help="Its path in the project (default: the file's name)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Upload FILE into PROJECT as a new commit (streamed)."""
    with bar(file.name) as (update, progress), interruptible(progress, "interrupted: nothing was committed"):
        commit = client.project_files.upload(project, file, path, progress=update)
    if as_json:
        emit_json(commit)
        return
    lines(f"commit: {commit.id}", f"path: {commit.path}")


def download(
    project: str = ProjectArg,
    path: str = typer.Argument(..., help="The file's path in the project."),
    output: str = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    commit: str = CommitOpt,
    client: Client = None,
):
    """Download a file of PROJECT at a commit (resumes a .part left by an interrupted run; checks the SHA-256)."""
    advice = "interrupted: run the same command again to resume the download"
    with bar(Path(path).name) as (update, progress), interruptible(progress, advice):
        target = client.project_files.download(project, path, output, commit=commit, progress=update)
    lines(str(target))


def ls(
    project: str = ProjectArg,
    path: str = typer.Argument("", help="A directory or file in the project (default: the root)."),
    commit: str = CommitOpt,
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """The files and directories under PATH at a commit."""
    listing = client.project_files.ls(project, path, commit=commit)
    if as_json:
        emit_json(listing)
        return
    show_entries(listing.entries, "at commit " + (listing.commit.id if listing.commit else "(none yet)"))


def log(
    project: str = ProjectArg,
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many commits."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """PROJECT's commits, newest first."""
    commits = client.project_files.log(project, limit=limit)
    if as_json:
        emit_json(commits)
        return
    t = table("commit", ("#", {"justify": "right"}), ("path", {"min_width": 8}), "author")
    t.add_column("created", no_wrap=True)
    for c in commits:
        t.add_row(c.id, str(c.number), escape(c.path), escape(c.author or ""), when(c.created_at))
    show(t)


def register(root: typer.Typer) -> None:
    command(app, "upload")(upload)
    command(app, "download")(download)
    command(app, "ls")(ls)
    command(app, "log")(log)
    root.add_typer(app, name="project-files")
