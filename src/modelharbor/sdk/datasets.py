"""``client.datasets``: Domino-style read-write datasets (``/api/v1/datasets``) — a project's dataset, its grants,
its immutable snapshots and the tags naming them, listings of its files and a verified, resumable, parallel
download of one file or of a whole directory tree (of the head or of a snapshot), and the resumable, parallel,
verified upload of a folder into the head (sdk/dataset_uploads.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from modelharbor.sdk.dataset_uploads import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PARALLEL,
    DatasetUpload,
    DatasetUploader,
    Landed,
)
from modelharbor.sdk.errors import invalid
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import (
    Fetch,
    Progress,
    fetch_many,
    safe_relative,
    target_path,
)
from modelharbor.sdk.wire import (
    Dataset,
    DatasetGrant,
    DatasetListing,
    DatasetPage,
    DatasetSnapshot,
    DatasetSnapshotPage,
    ProjectFileEntry,
)

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


@dataclass(frozen=True)
class DatasetDownload:
    """What :meth:`Datasets.download` did: ``root`` the local directory (a single file: the file itself)."""

    root: Path
    files: int
    downloaded: int
    skipped: int
    bytes: int


class Datasets:
    """``/api/v1/datasets``, ``/api/v1/dataset-snapshots`` and a dataset's files. Datasets are named by id."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    # --- datasets ---------------------------------------------------------------------------------------------
    def list(
        self, *, project: str | None = None, name: str | None = None, offset: int = 0, limit: int = 100
    ) -> DatasetPage:
        """The datasets you have a role on, newest first (``project``: a project's name or id; ``name``: only
        datasets with this name); ``.items`` and ``.total``."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if project is not None:
            params["project_id"] = self._client.projects.get(project).id
        if name is not None:
            params["name"] = name
        return self._t.call(DatasetPage, "GET", "/datasets", params=params)

    def get(self, dataset_id: str) -> Dataset:
        return self._t.call(Dataset, "GET", f"/datasets/{seg(dataset_id)}")

    def create(self, project: str, name: str, *, description: str = "") -> Dataset:
        """A new dataset in ``project`` (its name or id); you are its DatasetRwOwner."""
        body = {"project_id": self._client.projects.get(project).id, "name": name, "description": description}
        return self._t.call(Dataset, "POST", "/datasets", json=body, retries=1)

    def update(self, dataset_id: str, *, name: str | None = None, description: str | None = None) -> Dataset:
        """Rename or describe (DatasetRwEditor)."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        return self._t.call(Dataset, "PATCH", f"/datasets/{seg(dataset_id)}", json=body)

    def delete(self, dataset_id: str) -> Dataset:
        """Delete the dataset with its snapshots, tags and grants (DatasetRwOwner); the dataset as it was."""
        return self._t.call(Dataset, "DELETE", f"/datasets/{seg(dataset_id)}")

    # --- grants -----------------------------------------------------------------------------------------------
    def grants(self, dataset_id: str) -> list[DatasetGrant]:
        return self._t.call(list[DatasetGrant], "GET", f"/datasets/{seg(dataset_id)}/grants")

    def grant(self, dataset_id: str, target: str, role: str) -> list[DatasetGrant]:
        """Give ``target`` (a user's id or username, a team's id) ``role`` (DatasetRwReader, DatasetRwEditor,
        DatasetRwOwner; any case), replacing its grant (DatasetRwOwner). The grants after the change."""
        body = {"target_id": target, "role": role}
        return self._t.call(list[DatasetGrant], "POST", f"/datasets/{seg(dataset_id)}/grants", json=body)

    def revoke(self, dataset_id: str, target: str, role: str | None = None) -> list[DatasetGrant]:
        """Take ``target``'s grant away (``target``: its id, or the username/team name the grants show; ``role``:
        looked up when None). The grants after the change."""
        found = [g for g in self.grants(dataset_id) if target in (g.target_id, g.target_name)]
        if found:
            target, role = found[0].target_id, role or found[0].role
        if role is None:
            raise invalid(f"{target!r} has no grant on dataset {dataset_id!r}")
        path = f"/datasets/{seg(dataset_id)}/grants/{seg(target)}"
        return self._t.call(list[DatasetGrant], "DELETE", path, params={"role": role})

    # --- snapshots and tags -----------------------------------------------------------------------------------
    def snapshots(self, dataset_id: str, *, offset: int = 0, limit: int = 100) -> DatasetSnapshotPage:
        """The dataset's snapshots, newest first."""
        params = {"offset": offset, "limit": limit}
        return self._t.call(DatasetSnapshotPage, "GET", f"/datasets/{seg(dataset_id)}/snapshots", params=params)

    def snapshot(self, dataset_id: str, paths: Sequence[str] = ()) -> DatasetSnapshot:
        """Freeze the head (all of it, or just ``paths``) as a new snapshot (DatasetRwEditor; no byte copied)."""
        path = f"/datasets/{seg(dataset_id)}/snapshots"
        return self._t.call(DatasetSnapshot, "POST", path, json={"paths": list(paths)}, retries=1)

    def get_snapshot(self, snapshot_id: str) -> DatasetSnapshot:
        return self._t.call(DatasetSnapshot, "GET", f"/dataset-snapshots/{seg(snapshot_id)}")

    def tag(self, dataset_id: str, tag: str, snapshot_id: str) -> Dataset:
        """Name a snapshot of the dataset ``tag`` (an existing tag moves to it)."""
        path = f"/datasets/{seg(dataset_id)}/tags/{seg(tag)}"
        return self._t.call(Dataset, "PUT", path, json={"snapshot_id": snapshot_id})

    def untag(self, dataset_id: str, tag: str) -> Dataset:
        return self._t.call(Dataset, "DELETE", f"/datasets/{seg(dataset_id)}/tags/{seg(tag)}")

    # --- files ------------------------------------------------------------------------------------------------
    def upload(
        self,
        dataset_id: str,
        local: str | os.PathLike[str],
        *,
        target: str = "",
        collision: str = "Ignore",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = DEFAULT_PARALLEL,
        progress: Progress | None = None,
        verify: bool = True,
        resume: bool = True,
    ) -> Landed:
        """Send ``local`` (a folder: every file below it, by its path relative to it; or one file) into the head
        under ``target``, all files landing at once. ``collision``: ``Ignore`` (a taken path is skipped),
        ``Overwrite`` or ``Rename``. Resumes your newest open upload of the same files; each file's SHA-256 is
        checked against what landed (``verify``)."""
        return DatasetUploader(self._t).upload(
            dataset_id, local, target=target, collision=collision, chunk_size=chunk_size, parallel=parallel,
            progress=progress, verify=verify, resume=resume,
        )  # fmt: skip

    def open_uploads(self, dataset_id: str) -> list[DatasetUpload]:
        """Your open uploads into the dataset (what a re-run resumes), with the chunks the server holds."""
        return DatasetUploader(self._t).open_uploads(dataset_id)

    def cancel_upload(self, dataset_id: str, key: str) -> None:
        DatasetUploader(self._t).cancel(dataset_id, key)

    def ls(self, dataset_id: str, path: str = "", *, snapshot: str | None = None) -> DatasetListing:
        """The files and directories directly under ``path`` of the head (or of ``snapshot``, an id or a tag of
        the dataset); the file itself when ``path`` names one."""
        params: dict[str, Any] = {"path": path}
        snapshot_id = self._snapshot_id(dataset_id, snapshot)
        if snapshot_id:
            params["snapshot"] = snapshot_id
        return self._t.call(DatasetListing, "GET", f"/datasets/{seg(dataset_id)}/files", params=params)

    def download(
        self,
        dataset_id: str,
        path: str = "",
        dest: str | os.PathLike[str] | None = None,
        *,
        snapshot: str | None = None,
        parallel: int = 4,
        progress: Progress | None = None,
        on_plan: Callable[[int, int], None] | None = None,
    ) -> DatasetDownload:
        """Download the file ``path`` (to ``dest``: a path, or a directory for the file's own name), or every file
        under the directory ``path`` (the root when ''), recursively, into the directory ``dest`` keeping their
        paths below ``path``; ``dest`` defaults to here. From the head, or from ``snapshot`` (an id or a tag).

        Streamed to disk in 1 MiB pieces; a ``.part`` left by an interrupted run resumes with ``Range``; files
        already there with the right content are skipped; every file's SHA-256 is checked; ``parallel`` files at
        a time. ``on_plan(files, total_bytes)`` is told what comes, ``progress(done, total)`` how it goes."""
        if parallel < 1:
            raise invalid("parallel must be at least 1")
        snapshot_id = self._snapshot_id(dataset_id, snapshot)
        wanted = "/".join(p for p in path.split("/") if p not in ("", "."))
        listing = self.ls(dataset_id, wanted, snapshot=snapshot_id)
        entries = listing.entries
        if len(entries) == 1 and not entries[0].is_dir and entries[0].path == wanted:
            target = target_path(dest, entries[0].name, entries[0].key)
            plan = [(entries[0], target)]
            root = target
        else:
            root = Path(dest).expanduser() if dest is not None else Path.cwd()
            root.mkdir(parents=True, exist_ok=True)
            files = self._walk(dataset_id, entries, snapshot_id)
            plan = [(e, root.joinpath(*safe_relative(e.path[len(wanted) :].lstrip("/")))) for e in files]
        total = sum(e.size for e, _ in plan)
        if on_plan:
            on_plan(len(plan), total)
        base = f"/datasets/{seg(dataset_id)}/files/content?"
        pin = {"snapshot": snapshot_id} if snapshot_id else {}
        fetches = [Fetch(e.path, base + urlencode({"path": e.path, **pin}), t, e.size, e.key) for e, t in plan]
        skipped = len(fetch_many(self._t, fetches, parallel, progress, "mh-dataset"))
        return DatasetDownload(root, len(plan), len(plan) - skipped, skipped, total)

    def _snapshot_id(self, dataset_id: str, snapshot: str | None) -> str | None:
        """A snapshot id, or a tag of the dataset turned into the id it names."""
        if not snapshot:
            return None
        if len(snapshot) == 24 and all(c in "0123456789abcdef" for c in snapshot):
            return snapshot
        return self.get(dataset_id).tags.get(snapshot, snapshot)

    def _walk(
        self, dataset_id: str, entries: list[ProjectFileEntry], snapshot_id: str | None
    ) -> list[ProjectFileEntry]:
        """Every file under ``entries`` (each directory listed in turn), sorted by path."""
        files, todo = [], list(entries)
        while todo:
            e = todo.pop()
            if e.is_dir:
                todo.extend(self.ls(dataset_id, e.path, snapshot=snapshot_id).entries)
            else:
                files.append(e)
        return sorted(files, key=lambda e: e.path)
