"""``client.project_files``: a project's versioned files — the log of commits, listings at a commit, a streamed
upload (a new commit) and a verified, resumable download. A project is named by its name or id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from modelharbor.sdk.errors import HarborClientError
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import Counter, Progress, fetch_verified, target_path
from modelharbor.sdk.wire import ProjectCommit, ProjectCommitList, ProjectFileListing

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

PIECE = 1 << 20  # an upload's body is read and sent in pieces of this size (flat memory)


class ProjectFiles:
    """``/api/v1/projects/{id}/commits`` and ``…/files``."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def _base(self, project: str) -> str:
        return f"/projects/{seg(self._client.projects.get(project).id)}"

    def log(self, project: str, limit: int = 100, offset: int = 0) -> list[ProjectCommit]:
        """The project's commits, newest first."""
        page = self._t.call(
            ProjectCommitList, "GET", f"{self._base(project)}/commits", params={"limit": limit, "offset": offset}
        )
        return page.items

    def ls(self, project: str, path: str = "", *, commit: str | None = None) -> ProjectFileListing:
        """The files and directories under ``path`` at ``commit`` (the newest when None)."""
        params: dict[str, Any] = {"path": path}
        if commit:
            params["commit"] = commit
        return self._t.call(ProjectFileListing, "GET", f"{self._base(project)}/files", params=params)

    def upload(
        self,
        project: str,
        src: str | os.PathLike[str],
        path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> ProjectCommit:
        """Write the local file ``src`` as ``path`` (default: its name) in a new commit, streamed in 1 MiB pieces."""
        source = Path(src)
        size = source.stat().st_size
        target = path if path is not None else source.name

        def body() -> Iterator[bytes]:
            counter = Counter(size, progress)
            with open(source, "rb") as f:
                while piece := f.read(PIECE):
                    counter.add(len(piece))
                    yield piece

        headers = {"content-type": "application/octet-stream", "content-length": str(size)}
        resp = self._t.request(
            "PUT",
            f"{self._base(project)}/files",
            params={"path": target},
            headers=headers,
            retries=1,  # the server may have committed: never send a write twice
            per_attempt=lambda: {"content": body()},
        )
        return self._t.parse(ProjectCommit, resp.json(), "PUT …/files")

    def download(
        self,
        project: str,
        path: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        commit: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Download the file ``path`` at ``commit`` (the newest when None) to ``dest`` (a path, or a directory for the
        file's own name; default: here). Resumes ``<dest>.part``; verifies the SHA-256."""
        base = self._base(project)
        listing = self._t.call(
            ProjectFileListing, "GET", f"{base}/files", params={"path": path, **({"commit": commit} if commit else {})}
        )
        if listing.commit is None or len(listing.entries) != 1 or listing.entries[0].is_dir:
            raise HarborClientError(400, "NOT_A_FILE", f"{path!r} is not a file of project {project!r}")
        entry = listing.entries[0]
        query = urlencode({"path": entry.path, "commit": listing.commit.id})
        url = f"{base}/files/content?{query}"
        sha256 = self._t.request("HEAD", url).headers.get("x-content-sha256", "")
        return fetch_verified(self._t, url, target_path(dest, entry.name, entry.key), entry.size, sha256, progress)
