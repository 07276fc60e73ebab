"""``client.files``: list, show, delete, signed links, and the verified, resumable download (and upload, through
:class:`~modelharbor.sdk.uploads.Uploads`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import Progress, fetch_verified, target_path
from modelharbor.sdk.wire import File, FileDetail, FilePage, Link

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


class Files:
    """``/api/v1/files``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(
        self, limit: int = 50, offset: int = 0, *, context: str | None = None, include_internal: bool = False
    ) -> FilePage:
        """One page of your files, newest first. Files the server keeps for its own objects (deployment packages,
        export zips, …: ``internal``) are left out unless ``include_internal`` (by a server that marks them)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if context is not None:
            params["context"] = context
        if include_internal:
            params["all"] = "true"
        return self._t.call(FilePage, "GET", "/files", params=params)

    def iter(self, *, context: str | None = None, include_internal: bool = False, page: int = 500) -> Iterator[File]:
        """Every file, following the pages."""
        offset = 0
        while True:
            got = self.list(page, offset, context=context, include_internal=include_internal)
            yield from got.items
            offset += len(got.items)
            if not got.items or offset >= got.total:
                return

    def get(self, file_id: str) -> FileDetail:
        """One file, with what uses it (``used_by``) and whether the server keeps it for itself (``internal``)."""
        return self._t.call(FileDetail, "GET", f"/files/{seg(file_id)}")

    def delete(self, file_id: str) -> None:
        self._t.request("DELETE", f"/files/{seg(file_id)}")

    def link(self, file_id: str, expires_in: int | None = None) -> Link:
        """A signed URL that downloads the file without credentials, for ``expires_in`` seconds."""
        body = {"expires_in": expires_in} if expires_in else {}
        return self._t.call(Link, "POST", f"/files/{seg(file_id)}/links", json=body)

    def download(
        self, file_id: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """Download a file to ``dest`` (a path, or a directory to put the file's own name in; default: the current
        directory). Resumes ``<dest>.part`` left by an interrupted run; verifies the SHA-256."""
        record = self.get(file_id)
        target = target_path(dest, record.name, file_id)
        return fetch_verified(self._t, f"/files/{seg(file_id)}/content", target, record.size, record.sha256, progress)

    def upload(self, path: str | os.PathLike[str], **options: Any) -> File:
        """Upload ``path`` (resumable, parallel, verified; bytes the server holds are not sent): the options of
        :meth:`Uploads.upload <modelharbor.sdk.uploads.Uploads.upload>` (``chunk_size``, ``parallel``, ``context``,
        ``name``, ``progress``, ``state_dir``, ``on_session``, ``hash_first_over``, ``hash_progress``)."""
        return self._client.uploads.upload(path, **options)
