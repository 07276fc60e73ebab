"""Uploading a folder (or a file) into a dataset's head: resumable, parallel, verified
(``/api/v1/datasets/{id}/uploads``, docs/api.md#dataset-uploads).

- Every file is named on the server by its relative path (``/``-separated, under ``target``) and identified by its
  size and fingerprint (SHA-256 of the size, the first and the last MiB: ``transfers.fingerprint``), so a file that
  changed is never mixed with chunks of its old bytes.
- **Resuming**: the newest of your open uploads into the dataset whose files all still match the local ones (path,
  identifier, chunking) and whose collision setting is the one asked is continued; only the chunks it lacks are sent.
  Nothing is kept on disk: the server's upload is the state (it expires after the server's
  ``MODELHARBOR_UPLOAD_SESSION_TTL``).
- **Parallel**: chunks of all files go out on ``parallel`` threads, each chunk streamed from disk in 1 MiB pieces;
  retried on transport errors and 5xx.
- **Verified**: each file's SHA-256 is computed in a background thread while its chunks travel, and compared with the
  key the server landed it under (the first 40 hex digits of the SHA-256 it computed).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict

from modelharbor.sdk.errors import HarborClientError, invalid, local_file
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import (
    Counter,
    MiB,
    Progress,
    ThreadClients,
    chunk_len,
    fingerprint,
    put_range,
    run_parallel,
    sha256_of,
)
from modelharbor.sdk.wire import ProjectFileEntry

if TYPE_CHECKING:
    from modelharbor.sdk.http import Transport

DEFAULT_CHUNK_SIZE = 16 * MiB
DEFAULT_PARALLEL = 4
COLLISIONS = ("Ignore", "Overwrite", "Rename")
OPEN = ConfigDict(extra="allow")


class UploadedFile(BaseModel):
    """A file of a dataset upload as the server holds it (``UploadFileOut``)."""

    model_config = OPEN
    path: str
    identifier: str
    size: int | None
    total_chunks: int
    received: list[int]
    adopted: bool = False


class DatasetUpload(BaseModel):
    """A dataset upload (``DatasetUploadOut``)."""

    model_config = OPEN
    key: str
    dataset_id: str
    collision: str
    state: str
    created_at: datetime
    expires_at: datetime
    files: list[UploadedFile] = []


class Landed(BaseModel):
    """What ending an upload did (``LandedOut``): files written, paths skipped (Ignore) and renamed (Rename)."""

    model_config = OPEN
    key: str
    written: list[ProjectFileEntry]  # the files written, by the paths they landed at
    skipped: list[str]
    renamed: dict[str, str]


@dataclass(frozen=True)
class LocalFile:
    src: Path
    path: str  # on the server, under the target
    size: int
    identifier: str


class _Gone(Exception):
    """The upload expired or was cancelled under us: start a new one."""


def local_files(local: str | os.PathLike[str]) -> list[LocalFile]:
    """The files to send: ``local`` itself (a file: named by its base name) or every file below it (named by their
    paths relative to it), sorted; symbolic links to files are followed, hidden files included."""
    root = Path(local).expanduser()
    if root.is_file():
        pairs = [(root, root.name)]
    elif root.is_dir():
        pairs = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                src = Path(dirpath) / name
                if src.is_file():
                    pairs.append((src, src.relative_to(root).as_posix()))
    else:
        raise local_file(f"{root} is neither a file nor a folder")
    out = []
    for src, rel in pairs:
        try:
            size = src.stat().st_size
            out.append(LocalFile(src, rel, size, f"{size}-{fingerprint(src, size)}"))
        except OSError as exc:
            raise local_file(f"cannot read {src}: {exc}") from None
    return out


def _total(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))


class DatasetUploader:
    """``client.datasets.upload`` (sdk/datasets.py) and ``modelharbor datasets upload``."""

    def __init__(self, transport: Transport):
        self._t = transport

    def open_uploads(self, dataset_id: str) -> list[DatasetUpload]:
        return self._t.call(list[DatasetUpload], "GET", f"/datasets/{seg(dataset_id)}/uploads")

    def cancel(self, dataset_id: str, key: str) -> None:
        self._t.json("DELETE", f"/datasets/{seg(dataset_id)}/uploads/{seg(key)}")

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
        """Send ``local`` (a folder or a file) into the dataset's head under ``target``; see the module."""
        if collision not in COLLISIONS:
            raise invalid(f"collision must be one of {', '.join(COLLISIONS)}, not {collision!r}")
        if not 1 <= parallel <= 64 or chunk_size < 1:
            raise invalid("parallel must be 1 to 64 and chunk_size at least 1 byte")
        files = local_files(local)
        for _ in range(2):
            upload = self._resumable(dataset_id, files, collision, chunk_size) if resume else None
            if upload is None:
                upload = self._t.call(
                    DatasetUpload, "POST", f"/datasets/{seg(dataset_id)}/uploads", json={"collision": collision}
                )
            try:
                return self._run(dataset_id, upload, files, target, chunk_size, parallel, progress, verify)
            except _Gone:
                continue  # expired or cancelled meanwhile: once more, afresh
        raise HarborClientError(0, "UPLOAD_GONE", "the upload kept closing under us; run the upload again")

    def _resumable(
        self, dataset_id: str, files: list[LocalFile], collision: str, chunk_size: int
    ) -> DatasetUpload | None:
        local = {f.path: f for f in files}
        for upload in self.open_uploads(dataset_id):
            if upload.collision != collision:
                continue
            if all(
                (f := local.get(held.path)) is not None
                and held.identifier == f.identifier
                and held.total_chunks == _total(f.size, chunk_size)
                for held in upload.files
            ):
                return upload
        return None

    def _run(
        self,
        dataset_id: str,
        upload: DatasetUpload,
        files: list[LocalFile],
        target: str,
        chunk_size: int,
        parallel: int,
        progress: Progress | None,
        verify: bool,
    ) -> Landed:
        held = {f.path: set(f.received) for f in upload.files}
        work = [(f, n) for f in files for n in range(_total(f.size, chunk_size)) if n not in held.get(f.path, set())]
        counter = Counter(sum(f.size for f in files), progress)
        counter.add(counter.total - sum(chunk_len(n, f.size, chunk_size) for f, n in work))
        stop = threading.Event()  # set by run_parallel when the chunks are all sent, or one failed
        # the hashing has a stop of its own: it may well outlast the chunks (a fast server), and _verify needs it whole
        stop_hashing = threading.Event()
        hashes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mh-sha256") if verify else None
        digests = {f.path: hashes.submit(sha256_of, f.src, stop_hashing) for f in files} if hashes else {}
        clients = ThreadClients(self._t)
        base = f"/datasets/{seg(dataset_id)}/uploads/{seg(upload.key)}"
        try:
            tasks = [lambda f=f, n=n: self._put(clients.get(), base, f, n, chunk_size, counter, stop) for f, n in work]
            run_parallel(tasks, parallel, stop, "mh-dataset-upload")
            landed = self._end(base, target)
            if verify:
                self._verify(landed, files, target, digests)
            return landed
        finally:
            stop.set()
            stop_hashing.set()
            clients.close()
            if hashes:
                hashes.shutdown(wait=True, cancel_futures=True)

    def _end(self, base: str, target: str) -> Landed:
        try:
            return self._t.call(Landed, "POST", base + "/end", json={"target": target})
        except HarborClientError as exc:
            if exc.status == 410:
                raise _Gone() from None
            raise

    @staticmethod
    def _verify(landed: Landed, files: list[LocalFile], target: str, digests: dict[str, Any]) -> None:
        prefix = "/".join(p for p in target.split("/") if p not in ("", "."))
        at = {e.path: e.key for e in landed.written}
        for f in files:
            path = landed.renamed.get(f.path) or (f"{prefix}/{f.path}" if prefix else f.path)
            if path not in at:
                continue  # skipped (Ignore)
            sha = digests[f.path].result()
            if not sha.startswith(at[path]):
                raise HarborClientError(
                    0,
                    "CHECKSUM_MISMATCH",
                    f"{f.src} landed as {path} with SHA-256 {at[path]}…, but the local file's is {sha}: it changed "
                    "while it was sent; upload it again with collision Overwrite",
                )

    def _put(
        self,
        http: httpx.Client,
        base: str,
        f: LocalFile,
        number: int,
        chunk_size: int,
        counter: Counter,
        stop: threading.Event,
    ) -> None:
        length = chunk_len(number, f.size, chunk_size)
        params = {
            "path": f.path, "size": f.size, "total_chunks": _total(f.size, chunk_size), "chunk_size": chunk_size,
            "identifier": f.identifier,
        }  # fmt: skip
        resp = put_range(
            self._t, http, f"{base}/chunks/{number}", f.src, number * chunk_size, length, counter, stop, params
        )
        if resp.status_code == 410:
            raise _Gone()
        if resp.status_code >= 400:
            raise self._t.error(resp)
