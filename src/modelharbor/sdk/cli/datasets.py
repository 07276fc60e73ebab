"""``modelharbor datasets``: Domino-style read-write datasets — list, create, show, update, delete, grant, revoke,
snapshot, snapshots, tag, untag, upload, ls, download. A dataset is named by its id (``datasets list`` shows them); a
snapshot by its id or one of the dataset's tags."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import (
    JsonOpt,
    YesOpt,
    bar,
    command,
    confirm_delete,
    emit_json,
    human,
    interruptible,
    lines,
    show,
    show_entries,
    table,
    when,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.wire import Dataset, DatasetGrant

app = typer.Typer(
    help="Datasets: list, create, show, update, delete, grant, revoke, snapshot, snapshots, tag, untag, upload, ls, "
    "download.",
    no_args_is_help=True,
)
IdArg = typer.Argument(..., metavar="DATASET", help="The dataset's id.")
SnapshotOpt = typer.Option(None, "--snapshot", "-s", help="A snapshot id or tag (default: the read-write head).")
ROLES = "DatasetRwReader, DatasetRwEditor or DatasetRwOwner (any case)"


def _one(d: Dataset, as_json: bool, verb: str = "") -> None:
    if as_json:
        emit_json(d)
        return
    head = f"{verb} dataset" if verb else "dataset"
    lines(f"{head} {d.id} ({d.name}) in project {d.project_name}: you are {d.role}")


def _grants(grants: list[DatasetGrant], as_json: bool) -> None:
    if as_json:
        emit_json(grants)
        return
    t = table("target id", "name", "kind", "role")
    for g in grants:
        t.add_row(escape(g.target_id), escape(g.target_name or "-"), "team" if g.is_team else "user", g.role)
    show(t)


# --- datasets -------------------------------------------------------------------------------------------------
@command(app, "list")
def datasets_list(
    project: str = typer.Option(None, "--project", "-p", help="Only this project's (its name or id)."),
    name: str = typer.Option(None, "--name", help="Only datasets with this name."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="How many."),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of the datasets you have a role on, newest first."""
    page = client.datasets.list(project=project, name=name, offset=offset, limit=limit)
    if as_json:
        emit_json(page)
        return
    t = table("id", "name", "project", "role", ("snapshots", {"justify": "right"}), "tags", "created")
    for d in page.items:
        t.add_row(
            escape(d.id), escape(d.name), escape(d.project_name), d.role, str(len(d.snapshot_ids)),
            escape(", ".join(d.tags)) or "-", when(d.created_at),
        )  # fmt: skip
    show(t)
    lines(f"{len(page.items)} of {page.total} dataset(s)")


@command(app, "create")
def datasets_create(
    project: str = typer.Argument(..., metavar="PROJECT", help="The project's name or id."),
    name: str = typer.Argument(..., metavar="NAME"),
    description: str = typer.Option("", "--description", "-d"),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create a dataset in PROJECT (you become its DatasetRwOwner)."""
    _one(client.datasets.create(project, name, description=description), as_json, "created")


@command(app, "show")
def datasets_show(dataset: str = IdArg, as_json: bool = JsonOpt, client: Client = None):
    """One dataset: its project, your role, its snapshots and tags."""
    d = client.datasets.get(dataset)
    if as_json:
        emit_json(d)
        return
    _one(d, False)
    lines(f"  description: {d.description}", f"  created: {when(d.created_at)}")
    lines(f"  snapshots: {len(d.snapshot_ids)}" + (f" (newest {d.snapshot_ids[0]})" if d.snapshot_ids else ""))
    for tag, snapshot_id in d.tags.items():
        lines(f"  tag {tag}: {snapshot_id}")


@command(app, "update")
def datasets_update(
    dataset: str = IdArg,
    name: str = typer.Option(None, "--name", help="A new name (unique in the project)."),
    description: str = typer.Option(None, "--description", "-d", help="A new description."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Rename or describe a dataset (DatasetRwEditor)."""
    if name is None and description is None:
        raise typer.BadParameter("give --name and/or --description")
    _one(client.datasets.update(dataset, name=name, description=description), as_json, "updated")


@command(app, "delete")
def datasets_delete(dataset: str = IdArg, yes: bool = YesOpt, as_json: bool = JsonOpt, client: Client = None):
    """Delete a dataset with its snapshots, tags and grants (DatasetRwOwner)."""
    confirm_delete(f"dataset {dataset} with its snapshots, tags and grants", yes)
    _one(client.datasets.delete(dataset), as_json, "deleted")


# --- grants ---------------------------------------------------------------------------------------------------
@command(app, "grants")
def datasets_grants(dataset: str = IdArg, as_json: bool = JsonOpt, client: Client = None):
    """Who has which role on the dataset."""
    _grants(client.datasets.grants(dataset), as_json)


@command(app, "grant")
def datasets_grant(
    dataset: str = IdArg,
    target: str = typer.Argument(..., metavar="USER_OR_TEAM", help="A username or user id, or a team id."),
    role: str = typer.Argument(..., metavar="ROLE", help=ROLES + "."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Give a user or team a role on the dataset, replacing its grant (DatasetRwOwner)."""
    _grants(client.datasets.grant(dataset, target, role), as_json)


@command(app, "revoke")
def datasets_revoke(
    dataset: str = IdArg,
    target: str = typer.Argument(..., metavar="USER_OR_TEAM", help="Its id, or the name `grants` shows."),
    role: str = typer.Option(None, "--role", help="The role it has (default: the one `grants` shows)."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Take a user's or team's grant away (DatasetRwOwner)."""
    _grants(client.datasets.revoke(dataset, target, role), as_json)


# --- snapshots and tags ---------------------------------------------------------------------------------------
@command(app, "snapshot")
def datasets_snapshot(
    dataset: str = IdArg,
    paths: list[str] = typer.Argument(None, metavar="[PATH]...", help="Keep just these files/directories."),
    tag: str = typer.Option(None, "--tag", "-t", help="Tag the new snapshot."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Freeze the dataset's head (all of it, or just PATHs) as a new snapshot (DatasetRwEditor; no byte copied)."""
    snap = client.datasets.snapshot(dataset, paths or ())
    if tag:
        client.datasets.tag(dataset, tag, snap.id)
    if as_json:
        emit_json(snap)
        return
    lines(f"snapshot {snap.id}: {human(snap.size)}" + (f", tagged {tag}" if tag else ""))


@command(app, "snapshots")
def datasets_snapshots(
    dataset: str = IdArg,
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="How many."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """The dataset's snapshots, newest first, with their tags."""
    page = client.datasets.snapshots(dataset, limit=limit)
    if as_json:
        emit_json(page)
        return
    tags: dict[str, list[str]] = {}
    for tag, snapshot_id in client.datasets.get(dataset).tags.items():
        tags.setdefault(snapshot_id, []).append(tag)
    t = table("snapshot id", ("size", {"justify": "right"}), "tags", "created")
    for x in page.items:
        t.add_row(x.id, human(x.size), escape(", ".join(tags.get(x.id, ()))) or "-", when(x.created_at))
    show(t)
    lines(f"{len(page.items)} of {page.total} snapshot(s)")


@command(app, "tag")
def datasets_tag(
    dataset: str = IdArg,
    tag: str = typer.Argument(..., metavar="TAG"),
    snapshot: str = typer.Argument(..., metavar="SNAPSHOT", help="The snapshot's id."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Name a snapshot TAG (an existing tag moves to it; DatasetRwEditor)."""
    d = client.datasets.tag(dataset, tag, snapshot)
    if as_json:
        emit_json(d)
        return
    lines(f"tag {tag}: {d.tags[tag]}")


@command(app, "untag")
def datasets_untag(
    dataset: str = IdArg, tag: str = typer.Argument(..., metavar="TAG"), as_json: bool = JsonOpt, client: Client = None
):
    """Remove a tag (the snapshot stays; DatasetRwEditor)."""
    d = client.datasets.untag(dataset, tag)
    if as_json:
        emit_json(d)
        return
    lines(f"removed tag {tag}")


# --- files ----------------------------------------------------------------------------------------------------
@command(app, "upload")
def datasets_upload(
    dataset: str = IdArg,
    local: Path = typer.Argument(..., help="A folder (every file below it) or a file."),
    to: str = typer.Option("", "--to", help="A directory of the dataset to put the files under (default: the root)."),
    collision: str = typer.Option(
        "Ignore",
        "--collision",
        help="A path the dataset has: Ignore (skip the file), Overwrite or Rename (name_1.ext).",
    ),
    chunk_mib: int = typer.Option(16, "--chunk-mib", min=1, max=5120, help="MiB per chunk."),
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Chunks sent at once."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check each file's SHA-256 against what landed."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue your open upload of the same files."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Upload a folder into the dataset's head: parallel chunks, all files landing at once; an interrupted upload
    resumes when run again (only missing chunks are sent)."""
    advice = "interrupted: run the same command again to resume the upload"
    with bar(local.name or dataset) as (update, progress), interruptible(progress, advice):
        landed = client.datasets.upload(
            dataset, local, target=to, collision=collision, chunk_size=chunk_mib * 1024 * 1024,
            parallel=parallel, progress=update, verify=verify, resume=resume,
        )  # fmt: skip
    if as_json:
        emit_json(landed)
        return
    size = sum(e.size for e in landed.written)
    out = [f"{len(landed.written)} file(s), {human(size)} written (upload {landed.key})"]
    if landed.skipped:
        out.append(f"{len(landed.skipped)} skipped (the path was taken; --collision Overwrite or Rename): "
                   + ", ".join(landed.skipped[:10]) + (" …" if len(landed.skipped) > 10 else ""))  # fmt: skip
    out += [f"renamed {a} → {b}" for a, b in list(landed.renamed.items())[:20]]
    lines(*out)


@command(app, "ls")
def datasets_ls(
    dataset: str = IdArg,
    path: str = typer.Argument("", help="A directory or file of the dataset (default: the root)."),
    snapshot: str = SnapshotOpt,
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """The files and directories under PATH of the head or of a snapshot."""
    listing = client.datasets.ls(dataset, path, snapshot=snapshot)
    if as_json:
        emit_json(listing)
        return
    show_entries(listing.entries, f"in snapshot {listing.snapshot_id}" if listing.snapshot_id else "in the head")


@command(app, "download")
def datasets_download(
    dataset: str = IdArg,
    path: str = typer.Argument("", help="A file, or a directory downloaded with all below it (default: the root)."),
    output: Path = typer.Option(None, "-o", "--output", help="Destination file or directory (default: here)."),
    snapshot: str = SnapshotOpt,
    parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Files fetched at once."),
    client: Client = None,
):
    """Download a file or a whole directory tree (skips complete files, resumes partial ones, checks SHA-256)."""
    with bar(Path(path).name or dataset) as (update, progress):

        def on_plan(count: int, total: int) -> None:
            progress.console.print(f"{count} file(s), {human(total)}", highlight=False, markup=False)

        with interruptible(progress, "interrupted: run the same command again to resume the download"):
            result = client.datasets.download(
                dataset, path, output, snapshot=snapshot, parallel=parallel, progress=update, on_plan=on_plan
            )
    skipped = f", {result.skipped} already complete" if result.skipped else ""
    lines(str(result.root), f"{result.files} file(s), {human(result.bytes)}: {result.downloaded} downloaded{skipped}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="datasets")
