"""A synchronous client of the native API (``/api/v1``) with resumable, parallel, verified transfers.

Uploads go through a chunked session: the file is cut into ``chunk_size`` pieces sent by ``parallel`` threads,
each chunk streamed from disk in pieces of at most 1 MiB. A small JSON state file remembers the session so a
re-run after a crash sends only the chunks the server lacks. The local SHA-256 is computed in its own thread
while the chunks travel and is compared with the server's at the end.

Downloads write to ``<dest>.part`` and resume it with a ``Range`` request; the SHA-256 is checked before the
file gets its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelharbor.sdk.orgs import OrgsMixin

MiB = 1024 * 1024
PIECE = MiB  # largest piece read from disk / network at once
DEFAULT_CHUNK_SIZE = 64 * MiB
DEFAULT_URL = "http://127.0.0.1:8000"
STATE_DIR_ENV = "MODELHARBOR_STATE_DIR"
RETRIES = 5  # attempts per chunk / request on connection errors and 5xx
RETRY_STATUSES = {429, 500, 502, 503, 504}
REGISTER_CONTEXT = "registry-upload"  # files uploaded by model_register until the version takes them
MAX_VERSION_FILES = 10_000  # the server's limit of files per version

Progress = Callable[[int, int], None]  # (bytes_done, bytes_total)
SessionCallback = Callable[[dict[str, Any], bool, list[int]], None]  # (upload, resumed, chunks to send)
# deployment fields: {"x": "double"}, ["x:double"] or [{"name": "x", "data_type": "double"}]
FieldSpec = dict[str, str] | list[str] | list[dict[str, Any]] | None
PACKAGE_EXCLUDED = frozenset({"__pycache__", ".git"})  # folders left out when a directory is zipped
LOG_TAIL_LINES = 20
IMPORT_UPLOAD_CONTEXT = "project-import-upload"  # a zip uploaded for an import (deleted once the import has it)
EXPORT_DONE = ("completed", "failed")
IMPORT_DONE = ("completed", "failed")
IMPORT_WAITS = ("confirmation", "completed", "failed")


class HarborClientError(Exception):
    """A failed call: the server's error (status, code, message, details) or a local problem (status 0)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"HarborClientError(status={self.status}, code={self.code!r}, message={self.message!r})"


class _SessionGone(Exception):
    """The upload session expired, was aborted or completed under us: start a new one."""


class _Cancelled(Exception):
    pass


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "modelharbor" / "uploads"


class Client(OrgsMixin):
    """``Client(base_url, api_key)``: the native API of a ModelHarbor server."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._http = self._new_http()

    # --- plumbing ------------------------------------------------------------------------------
    def _new_http(self) -> httpx.Client:
        headers = {"user-agent": "modelharbor-sdk/1"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return httpx.Client(
            base_url=self.base_url + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0)),
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unreachable(self, exc: Exception) -> HarborClientError:
        return HarborClientError(
            0,
            "UNREACHABLE",
            f"cannot reach ModelHarbor at {self.base_url} ({type(exc).__name__}: {exc}); check the URL "
            "(--url or MODELHARBOR_URL) and that the server is running",
        )

    def _error(self, resp: httpx.Response) -> HarborClientError:
        code, message, details = f"HTTP_{resp.status_code}", "", {}
        try:
            body = resp.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                code = err.get("code") or code
                message = err.get("message") or ""
                details = err.get("details") or {}
        except (ValueError, UnicodeDecodeError):
            pass
        if not message:
            try:
                text = resp.text.strip()[:200]
            except httpx.ResponseNotRead:
                text = ""
            message = f"the server answered {resp.status_code} {resp.reason_phrase}" + (f": {text}" if text else "")
        if resp.status_code == 401:
            message += " (check the API key: --key or MODELHARBOR_API_KEY)"
        return HarborClientError(resp.status_code, code, message, details)

    def _request(
        self,
        method: str,
        path: str,
        *,
        http: httpx.Client | None = None,
        retries: int = RETRIES,
        per_attempt: Callable[[], dict[str, Any]] | None = None,
        **kw,
    ) -> httpx.Response:
        """A request with retries on connection errors and 5xx; raises HarborClientError on any error status.

        ``per_attempt`` builds arguments anew for every try (a streamed body cannot be sent twice).
        """
        http = http or self._http
        for attempt in range(retries):
            try:
                resp = http.request(method, path, **kw, **(per_attempt() if per_attempt else {}))
            except httpx.TransportError as exc:
                # a refused connection is rarely fixed by waiting: retry that only once
                if attempt + 1 >= (min(retries, 2) if isinstance(exc, httpx.ConnectError) else retries):
                    raise self._unreachable(exc) from None
                _backoff(attempt)
                continue
            if resp.status_code in RETRY_STATUSES and attempt + 1 < retries:
                _backoff(attempt)
                continue
            if resp.status_code >= 400:
                raise self._error(resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, **kw) -> Any:
        resp = self._request(method, path, **kw)
        return resp.json() if resp.content else None

    # --- simple calls --------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return self._json("GET", "/me")

    def list_files(self, limit: int = 50, offset: int = 0, *, context: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if context is not None:
            params["context"] = context
        return self._json("GET", "/files", params=params)

    def get_file(self, file_id: str) -> dict[str, Any]:
        return self._json("GET", f"/files/{_seg(file_id)}")

    def delete_file(self, file_id: str) -> None:
        self._request("DELETE", f"/files/{_seg(file_id)}")

    def create_link(self, file_id: str, expires_in: int | None = None) -> dict[str, Any]:
        body = {"expires_in": expires_in} if expires_in else {}
        return self._json("POST", f"/files/{_seg(file_id)}/links", json=body)

    def list_uploads(self, *, name: str | None = None, size: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"name": name, "size": size}.items() if v is not None}
        return self._json("GET", "/uploads", params=params)

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        return self._json("GET", f"/uploads/{_seg(upload_id)}")

    def abort_upload(self, upload_id: str) -> None:
        self._request("DELETE", f"/uploads/{_seg(upload_id)}")

    # --- upload --------------------------------------------------------------------------------
    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        context: str = "",
        name: str | None = None,
        progress: Progress | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        on_session: SessionCallback | None = None,
    ) -> dict[str, Any]:
        """Upload ``path`` and return the file record. Resumes an earlier interrupted run of the same file.

        ``on_session(upload, resumed, to_send)`` is told which session is used, whether it was resumed and
        which chunk numbers will be sent.
        """
        src = Path(path).expanduser().resolve()
        if chunk_size < 1:
            raise HarborClientError(0, "INVALID_INPUT", "chunk size must be at least 1 byte")
        if parallel < 1:
            raise HarborClientError(0, "INVALID_INPUT", "parallel must be at least 1")
        try:
            st = src.stat()
        except OSError as exc:
            raise HarborClientError(0, "LOCAL_FILE", f"cannot read {src}: {exc.strerror or exc}") from None
        if not src.is_file():
            raise HarborClientError(0, "LOCAL_FILE", f"{src} is not a regular file")
        size, mtime_ns = st.st_size, st.st_mtime_ns
        total_chunks = max(1, -(-size // chunk_size))
        state = _StateFile(Path(state_dir) if state_dir else default_state_dir(), self.base_url, src, st, chunk_size)
        hasher = _Hasher(src)
        hasher.start()
        try:
            for _attempt in range(3):
                session, resumed = self._session_for(state, src, size, total_chunks, context, name)
                completed = session.get("state") == "completed"  # finished by a run that died before cleaning up
                to_send = [] if completed else _missing(session, size, chunk_size, total_chunks)
                if on_session:
                    on_session(session, resumed, to_send)
                try:
                    self._send_chunks(src, session["id"], to_send, size, chunk_size, parallel, progress)
                    _check_unchanged(src, size, mtime_ns)
                    done = self._complete(session["id"])
                except _SessionGone:
                    state.delete()
                    continue
                if completed and done["file"]["sha256"] != hasher.result():
                    state.delete()  # that earlier upload was of other bytes: send this version afresh
                    continue
                file = done["file"]
                local = hasher.result()
                state.delete()
                if file["sha256"] != local:
                    raise HarborClientError(
                        0,
                        "CHECKSUM_MISMATCH",
                        f"SHA-256 mismatch after upload: local {local}, server {file['sha256']} (file id "
                        f"{file['id']}); delete that file and upload again",
                        {"file_id": file["id"], "local_sha256": local, "server_sha256": file["sha256"]},
                    )
                return file
            raise HarborClientError(
                0, "UPLOAD_FAILED", "the upload session kept disappearing on the server; try again later"
            )
        finally:
            hasher.stop()

    def _session_for(
        self, state: _StateFile, src: Path, size: int, total_chunks: int, context: str, name: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The saved session if the server still has it open (or completed), else a new one."""
        saved = state.load()
        if saved:
            try:
                session = self.get_upload(saved)
            except HarborClientError as exc:
                if exc.status not in (403, 404, 410):
                    raise
                session = None
            if session and _resumable(session, size, total_chunks):
                return session, True
            state.delete()
        body = {"name": name or src.name, "total_chunks": total_chunks, "size": size, "context": context}
        session = self._json("POST", "/uploads", json=body)
        state.save(session["id"])
        return session, False

    def _complete(self, upload_id: str) -> dict[str, Any]:
        try:
            # assembling hashes every byte on the server: no read timeout
            return self._json(
                "POST",
                f"/uploads/{_seg(upload_id)}/complete",
                timeout=httpx.Timeout(self.timeout, read=None),
            )
        except HarborClientError as exc:
            if exc.status == 410 or exc.code in ("SESSION_NOT_FOUND", "FILE_DELETED"):
                raise _SessionGone() from None
            raise

    def _send_chunks(
        self,
        src: Path,
        upload_id: str,
        numbers: list[int],
        size: int,
        chunk_size: int,
        parallel: int,
        progress: Progress | None,
    ) -> None:
        counter = _Counter(size, progress)
        counter.add(size - sum(_chunk_len(n, size, chunk_size) for n in numbers))
        if not numbers:
            return
        stop = threading.Event()
        local = threading.local()
        clients: list[httpx.Client] = []
        lock = threading.Lock()

        def http() -> httpx.Client:
            c = getattr(local, "http", None)
            if c is None:
                c = local.http = self._new_http()
                with lock:
                    clients.append(c)
            return c

        def send(number: int) -> None:
            self._put_chunk(http(), src, upload_id, number, size, chunk_size, counter, stop)

        pool = ThreadPoolExecutor(max_workers=min(parallel, len(numbers)), thread_name_prefix="mh-upload")
        futures = []
        try:
            futures = [pool.submit(send, n) for n in numbers]
            wait(futures, return_when=FIRST_EXCEPTION)
            errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
            if errors:
                raise next((e for e in errors if isinstance(e, _SessionGone)), errors[0])
        finally:
            stop.set()  # running chunks stop at their next piece; queued ones never start
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for c in clients:
                c.close()

    def _put_chunk(
        self,
        http: httpx.Client,
        src: Path,
        upload_id: str,
        number: int,
        size: int,
        chunk_size: int,
        counter: _Counter,
        stop: threading.Event,
    ) -> None:
        offset = number * chunk_size
        length = _chunk_len(number, size, chunk_size)
        for attempt in range(RETRIES):
            if stop.is_set():
                raise _Cancelled()
            sent = [0]
            headers = {"content-length": str(length), "content-type": "application/octet-stream"}
            try:
                resp = http.put(
                    f"/uploads/{_seg(upload_id)}/chunks/{number}",
                    content=_read_range(src, offset, length, sent, counter, stop),
                    headers=headers,
                )
            except httpx.TransportError as exc:
                counter.add(-sent[0])
                if stop.is_set():
                    raise _Cancelled() from None
                if attempt + 1 >= RETRIES:
                    raise self._unreachable(exc) from None
                _backoff(attempt)
                continue
            if resp.status_code < 400:
                return
            counter.add(-sent[0])
            if resp.status_code in RETRY_STATUSES and attempt + 1 < RETRIES:
                _backoff(attempt)
                continue
            err = self._error(resp)
            if err.status == 410 or err.code in ("SESSION_NOT_FOUND", "SESSION_COMPLETED"):
                raise _SessionGone()
            raise err

    # --- download ------------------------------------------------------------------------------
    def download(
        self, file_id: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """Download a file to ``dest`` (a path, or a directory to put the file's own name in; default: the
        current directory). Resumes ``<dest>.part`` left by an interrupted run; verifies the SHA-256."""
        record = self.get_file(file_id)
        size, expected = int(record["size"]), record["sha256"]
        target = Path(dest).expanduser() if dest is not None else Path.cwd()
        if target.is_dir() or str(dest).endswith(("/", os.sep)):
            target = target / _safe_name(record["name"], file_id)
        return self._fetch_verified(f"/files/{_seg(file_id)}/content", target, size, expected, progress)

    def _fetch_verified(
        self,
        url: str,
        target: Path,
        size: int,
        expected: str,
        progress: Progress | None,
        *,
        http: httpx.Client | None = None,
    ) -> Path:
        """Download ``url`` into ``<target>.part`` (resuming it), check the SHA-256, then rename to ``target``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        restarted = False
        while True:
            digest = self._fetch_into(url, part, size, progress, http=http)
            if digest == expected:
                os.replace(part, target)
                return target
            part.unlink(missing_ok=True)
            if restarted:
                raise HarborClientError(
                    0,
                    "CHECKSUM_MISMATCH",
                    f"the downloaded bytes hash to {digest}, not {expected}; try the download again",
                )
            restarted = True  # the old .part may have held other bytes: fetch everything once more

    def _fetch_into(
        self, url: str, part: Path, size: int, progress: Progress | None, *, http: httpx.Client | None = None
    ) -> str:
        """Bring ``part`` to the full ``size`` bytes of ``url`` (resuming it) and return the SHA-256 of its
        content."""
        http = http or self._http
        for attempt in range(RETRIES):
            have = part.stat().st_size if part.exists() else 0
            if have > size:
                part.unlink()
                have = 0
            h = _hash_prefix(part, have)
            if progress:
                progress(have, size)
            if have == size:
                part.touch()
                return h.hexdigest()
            headers = {"accept-encoding": "identity"}
            if have:
                headers["range"] = f"bytes={have}-"
            try:
                with http.stream("GET", url, headers=headers) as resp:
                    if resp.status_code == 416 and have:
                        part.unlink()  # the server disagrees about what we have: start over
                        continue
                    if resp.status_code >= 400:
                        resp.read()
                        if resp.status_code in RETRY_STATUSES and attempt + 1 < RETRIES:
                            _backoff(attempt)
                            continue
                        raise self._error(resp)
                    if have and not _range_ok(resp, have, size):
                        h, have = hashlib.sha256(), 0  # not the range we asked for: take the whole body
                        if resp.status_code != 200:
                            part.unlink()
                            continue
                    if progress:
                        progress(have, size)
                    with open(part, "ab" if have else "wb") as out:
                        for piece in resp.iter_raw(PIECE):
                            out.write(piece)
                            h.update(piece)
                            have += len(piece)
                            if progress:
                                progress(have, size)
                if have != size:
                    raise httpx.ReadError(f"the body ended after {have} of {size} bytes")
                return h.hexdigest()
            except httpx.TransportError as exc:
                if attempt + 1 >= RETRIES:
                    raise self._unreachable(exc) from None
                _backoff(attempt)
        raise HarborClientError(0, "DOWNLOAD_FAILED", "the download kept failing; run it again to resume")

    # --- the pretrained-model catalogue --------------------------------------------------------
    def catalogue_list(
        self,
        *,
        include_inactive: bool = False,
        name_contains: str | None = None,
        framework: int | str | None = None,
        domain: str | None = None,
        licence: str | None = None,
        spec: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The organisation's models. ``spec`` (a full filter spec) replaces the simple filters."""
        if spec is not None:
            return self._json("POST", "/catalogue/models/search", json=spec)
        params: dict[str, Any] = {
            "name_contains": name_contains,
            "framework": framework,
            "domain": domain,
            "licence": licence,
        }
        params = {k: v for k, v in params.items() if v is not None}
        if include_inactive:
            params["include_inactive"] = "true"
        return self._json("GET", "/catalogue/models", params=params)

    def catalogue_get(self, pk: int) -> dict[str, Any]:
        return self._json("GET", f"/catalogue/models/{_pk(pk)}")

    def catalogue_create(
        self,
        *,
        name: str,
        url: str,
        framework: int,
        domain: str,
        licence: str,
        description: str | None = None,
        metadata: str | None = None,
    ) -> dict[str, Any]:
        """Create a model: ``framework`` is a framework pk, ``domain`` a domain code, ``licence`` a licence name."""
        body: dict[str, Any] = {"name": name, "url": url, "framework": framework, "domain": domain, "licence": licence}
        if description is not None:
            body["description"] = description
        if metadata is not None:
            body["metadata"] = metadata
        return self._json("POST", "/catalogue/models", json=body)

    def catalogue_update(self, pk: int, **fields: Any) -> dict[str, Any]:
        """Change some fields of a model."""
        return self._json("PATCH", f"/catalogue/models/{_pk(pk)}", json=fields)

    def catalogue_delete(self, pk: int, *, hard: bool = False) -> dict[str, Any]:
        """Soft-delete a model (``hard=True``: delete it and its data for good). Returns the model."""
        params = {"hard": "true"} if hard else {}
        return self._json("DELETE", f"/catalogue/models/{_pk(pk)}", params=params)

    def catalogue_reinstate(self, pk: int) -> dict[str, Any]:
        return self._json("POST", f"/catalogue/models/{_pk(pk)}/reinstate")

    def catalogue_frameworks(self) -> list[dict[str, Any]]:
        return self._json("GET", "/catalogue/frameworks")

    def catalogue_licences(self) -> list[dict[str, Any]]:
        return self._json("GET", "/catalogue/licences")

    def catalogue_domains(self) -> list[dict[str, Any]]:
        return self._json("GET", "/catalogue/domains")

    def catalogue_data_from_file(self, pk: int, file_id: str) -> dict[str, Any]:
        """Use an already-uploaded file as the model's data; no bytes are sent."""
        return self._json("POST", f"/catalogue/models/{_pk(pk)}/data/from-file", json={"file_id": file_id})

    def catalogue_delete_data(self, pk: int) -> dict[str, Any]:
        return self._json("DELETE", f"/catalogue/models/{_pk(pk)}/data")

    def catalogue_push_data(
        self,
        pk: int,
        path: str | os.PathLike[str],
        *,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Send ``path`` as the model's data (streamed from disk in 1 MiB pieces, with a Content-Length) and
        check the server's SHA-256 against the local one. Returns the model."""
        src = Path(path).expanduser()
        try:
            st = src.stat()
        except OSError as exc:
            raise HarborClientError(0, "LOCAL_FILE", f"cannot read {src}: {exc.strerror or exc}") from None
        if not src.is_file():
            raise HarborClientError(0, "LOCAL_FILE", f"{src} is not a regular file")
        size = st.st_size
        url = f"/catalogue/models/{_pk(pk)}/data"
        params = {"filename": filename or src.name}
        headers = {"content-length": str(size), "content-type": "application/octet-stream"}
        sent: dict[str, Any] = {}

        def body() -> dict[str, Any]:
            sent["sha256"] = h = hashlib.sha256()
            counter = _Counter(size, progress)
            counter.add(0)
            return {"content": _read_hashed(src, size, h, counter)}

        # storing the last bytes may take a while on the server: no read timeout
        resp = self._request(
            "PUT",
            url,
            params=params,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, read=None),
            per_attempt=body,
        )
        model = resp.json()
        _check_unchanged(src, size, st.st_mtime_ns)
        local, remote = sent["sha256"].hexdigest(), (model.get("data") or {}).get("sha256")
        if remote != local:
            raise HarborClientError(
                0,
                "CHECKSUM_MISMATCH",
                f"SHA-256 mismatch after sending the data: local {local}, server {remote}; push the data again",
                {"local_sha256": local, "server_sha256": remote},
            )
        return model

    def catalogue_pull_data(
        self, pk: int, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """Download a model's data to ``dest`` (a path, or a directory to put the data file's name in; default:
        the current directory). Resumes ``<dest>.part`` left by an interrupted run; verifies the SHA-256."""
        model = self.catalogue_get(pk)
        data = model.get("data")
        if not data:
            raise HarborClientError(404, "NO_DATA", f"pretrained model {pk} has no data")
        target = Path(dest).expanduser() if dest is not None else Path.cwd()
        if target.is_dir() or str(dest).endswith(("/", os.sep)):
            fallback = f"model-{model['pk']}.data"
            try:
                name = self.get_file(data["file_id"])["name"]
            except HarborClientError:
                name = fallback
            target = target / _safe_name(name, fallback)
        url = f"/catalogue/models/{_pk(pk)}/data"
        return self._fetch_verified(url, target, int(data["size"]), data["sha256"], progress)

    # --- the model registry ------------------------------------------------------------------------
    def models_list(
        self,
        *,
        name_contains: str | None = None,
        name_prefix: str | None = None,
        tags: dict[str, str | None] | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        """One page of registered models: ``{models, next_page_token}``. ``tags`` maps key → value (None: the
        model has the tag with any value)."""
        params: list[tuple[str, Any]] = []
        for k, v in {
            "name_contains": name_contains,
            "name_prefix": name_prefix,
            "max_results": max_results,
            "page_token": page_token,
        }.items():
            if v is not None:
                params.append((k, v))
        for key, value in (tags or {}).items():
            params.append(("tag", key if value is None else f"{key}={value}"))
        return self._json("GET", "/models", params=params)

    def models_iter(self, *, limit: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every registered model matching ``filters`` (see :meth:`models_list`), following the pages."""
        token, seen = None, 0
        while True:
            page = self.models_list(**filters, page_token=token)
            for m in page["models"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield m
            token = page.get("next_page_token")
            if not token:
                return

    def model_get(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/models/{_name(name)}")

    def model_create(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if tags:
            body["tags"] = tags
        return self._json("POST", "/models", json=body)

    def model_update(self, name: str, *, description: str) -> dict[str, Any]:
        return self._json("PATCH", f"/models/{_name(name)}", json={"description": description})

    def model_delete(self, name: str) -> None:
        self._request("DELETE", f"/models/{_name(name)}")

    def model_versions(
        self, name: str, *, max_results: int | None = None, page_token: str | None = None
    ) -> dict[str, Any]:
        """One page of a model's versions, newest first: ``{versions, next_page_token}``."""
        params = {k: v for k, v in {"max_results": max_results, "page_token": page_token}.items() if v is not None}
        return self._json("GET", f"/models/{_name(name)}/versions", params=params)

    def model_version(self, name: str, version: int | str) -> dict[str, Any]:
        return self._json("GET", f"/models/{_name(name)}/versions/{_version(version)}")

    def model_version_update(self, name: str, version: int | str, *, description: str) -> dict[str, Any]:
        return self._json(
            "PATCH", f"/models/{_name(name)}/versions/{_version(version)}", json={"description": description}
        )

    def model_version_delete(self, name: str, version: int | str) -> None:
        self._request("DELETE", f"/models/{_name(name)}/versions/{_version(version)}")

    def model_alias(self, name: str, alias: str) -> dict[str, Any]:
        """The version ``alias`` points at."""
        return self._json("GET", f"/models/{_name(name)}/aliases/{_seg(alias)}")

    def model_set_alias(self, name: str, alias: str, version: int | str) -> dict[str, Any]:
        return self._json(
            "PUT", f"/models/{_name(name)}/aliases/{_seg(alias)}", json={"version": int(_version(version))}
        )

    def model_delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/models/{_name(name)}/aliases/{_seg(alias)}")

    def model_stage(
        self, name: str, version: int | str, stage: str, *, archive_existing: bool = False
    ) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/models/{_name(name)}/versions/{_version(version)}/stage",
            json={"stage": stage, "archive_existing_versions": archive_existing},
        )

    def model_version_files(self, name: str, version: int | str) -> list[dict[str, Any]]:
        """``[{path, size, sha256, file_id}]``: the version's files (download each with :meth:`download`)."""
        return self._json("GET", f"/models/{_name(name)}/versions/{_version(version)}/files")

    def resolve_version(self, name: str, ref: int | str | None = None) -> dict[str, Any]:
        """A version by number (``3``), alias (``"@champion"``) or, for None / ``"latest"``, the newest one."""
        if isinstance(ref, str) and ref.startswith("@"):
            return self.model_alias(name, ref[1:])
        if ref is None or (isinstance(ref, str) and ref.lower() == "latest"):
            versions = self.model_versions(name, max_results=1)["versions"]
            if not versions:
                raise HarborClientError(404, "NOT_FOUND", f"registered model {name!r} has no versions yet")
            return versions[0]
        return self.model_version(name, ref)

    def model_register(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        aliases: list[str] | None = None,
        run_id: str | None = None,
        create_model: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        progress: Progress | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        on_plan: Callable[[int, int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Register a new version of ``name`` from a file or a directory (e.g. an MLflow model directory).

        Each file is uploaded with the resumable, parallel upload (small files several at a time), then the
        version is created from the uploaded file ids; the server attaches them without copying bytes. A re-run
        after an interruption or a failed registration reuses the files already uploaded. ``on_plan(files,
        total_bytes, reused_bytes)`` is told what will be sent. Returns the new version.
        """
        if parallel < 1:
            raise HarborClientError(0, "INVALID_INPUT", "parallel must be at least 1")
        items = _local_files(Path(path).expanduser())
        state = _RegisterState(Path(state_dir) if state_dir else default_state_dir(), self.base_url, path, name)
        saved = state.load()
        total = sum(st.st_size for _, _, st in items)
        agg = _Aggregate(total, progress)
        done: dict[str, str] = {}  # relative path → file id
        to_send: list[tuple[str, Path, os.stat_result]] = []
        for rel, src, st in items:
            file_id = self._reusable(saved.get(rel), st)
            if file_id:
                done[rel] = file_id
                agg.set(rel, st.st_size)
            else:
                to_send.append((rel, src, st))
        if on_plan:
            on_plan(len(items), total, sum(st.st_size for rel, _, st in items if rel in done))
        agg.report()
        lock = threading.Lock()
        stop = threading.Event()

        def send(rel: str, src: Path, st: os.stat_result, chunk_parallel: int) -> None:
            record = self.upload(
                src,
                chunk_size=chunk_size,
                parallel=chunk_parallel,
                context=REGISTER_CONTEXT,
                name=rel,
                progress=lambda d, _t, rel=rel: agg.set(rel, d, stop),
                state_dir=state_dir,
            )
            with lock:
                done[rel] = record["id"]
                saved[rel] = {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "file_id": record["id"],
                    "sha256": record["sha256"],
                }
                state.save(saved)

        small = [x for x in to_send if x[2].st_size <= chunk_size]
        big = [x for x in to_send if x[2].st_size > chunk_size]
        for rel, src, st in big:  # one at a time, each with parallel chunks
            send(rel, src, st, parallel)
        # one chunk each: several files at a time
        _run_parallel([partial(send, rel, src, st, 1) for rel, src, st in small], parallel, stop, "mh-register")
        body: dict[str, Any] = {
            "files": [{"path": rel, "file_id": done[rel]} for rel, _, _ in items],
            "create_model": create_model,
        }
        for key, value in {"description": description, "tags": tags, "aliases": aliases, "run_id": run_id}.items():
            if value:
                body[key] = value
        version = self._json("POST", f"/models/{_name(name)}/versions", json=body, retries=1)
        state.delete()
        return version

    def _reusable(self, saved: Any, st: os.stat_result) -> str | None:
        """The id of an upload an earlier run made of this very file, if the server still has it unattached."""
        if not isinstance(saved, dict) or saved.get("size") != st.st_size or saved.get("mtime_ns") != st.st_mtime_ns:
            return None
        try:
            record = self.get_file(str(saved.get("file_id")))
        except HarborClientError:
            return None
        if (
            record.get("size") == st.st_size
            and record.get("sha256") == saved.get("sha256")
            and record.get("context") == REGISTER_CONTEXT
        ):
            return record["id"]
        return None

    def model_download(
        self,
        name: str,
        version: int | str | None = None,
        dest: str | os.PathLike[str] | None = None,
        *,
        parallel: int = 4,
        progress: Progress | None = None,
        on_plan: Callable[[dict[str, Any], int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Download every file of a version (number, ``"@alias"``, or None for the newest) into ``dest`` (default:
        the current directory), keeping relative paths. Files already there with the right size and SHA-256 are
        skipped; ``.part`` files left by an interrupted run resume with ``Range``; every file's SHA-256 is
        checked; ``parallel`` files at a time. ``on_plan(version, files, total_bytes)`` is told what comes.
        Returns ``{version, root, files, downloaded, skipped, bytes}``."""
        if parallel < 1:
            raise HarborClientError(0, "INVALID_INPUT", "parallel must be at least 1")
        v = self.resolve_version(name, version)
        files = self.model_version_files(name, v["version"])
        root = Path(dest).expanduser() if dest is not None else Path.cwd()
        plan = [(f, root.joinpath(*_safe_relative(f["path"]))) for f in files]
        total = sum(int(f["size"]) for f in files)
        if on_plan:
            on_plan(v, len(files), total)
        agg = _Aggregate(total, progress)
        agg.report()
        skipped: list[str] = []
        stop = threading.Event()
        local = threading.local()
        clients: list[httpx.Client] = []
        lock = threading.Lock()

        def http() -> httpx.Client:
            c = getattr(local, "http", None)
            if c is None:
                c = local.http = self._new_http()
                with lock:
                    clients.append(c)
            return c

        def fetch(f: dict[str, Any], target: Path) -> None:
            size, sha = int(f["size"]), f["sha256"]
            if target.is_file() and target.stat().st_size == size and _sha256_of(target) == sha:
                with lock:
                    skipped.append(f["path"])
                agg.set(f["path"], size)
                return
            self._fetch_verified(
                f"/files/{_seg(f['file_id'])}/content",
                target,
                size,
                sha,
                lambda d, _t, key=f["path"]: agg.set(key, d, stop),
                http=http(),
            )

        try:
            _run_parallel([partial(fetch, f, target) for f, target in plan], parallel, stop, "mh-fetch")
        finally:
            for c in clients:
                c.close()
        return {
            "version": v,
            "root": root,
            "files": len(plan),
            "downloaded": len(plan) - len(skipped),
            "skipped": len(skipped),
            "bytes": total,
        }

    # --- projects ----------------------------------------------------------------------------------
    def projects_list(self) -> list[dict[str, Any]]:
        """The organisation's projects by name."""
        return self._json("GET", "/projects")

    def project_get(self, project_id: str) -> dict[str, Any]:
        """One project by its 24-hex id."""
        return self._json("GET", f"/projects/{_seg(project_id)}")

    def project_find(self, project: str) -> dict[str, Any] | None:
        """The project named ``project`` (or with that id), or None."""
        for p in self.projects_list():
            if project in (p["name"], p["id"]):
                return p
        return None

    def project_create(self, name: str, *, description: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        return self._json("POST", "/projects", json=body)

    # --- serving: deployments, versions, packages, predictions -----------------------------------
    @staticmethod
    def _sp(project: str, *parts: str) -> str:
        """``/projects/{project}/…`` with every segment URL-encoded."""
        return "/projects/" + "/".join(_seg(p) for p in (project, *parts))

    def environments_list(self, project: str) -> list[dict[str, Any]]:
        """Environments a version may use: base ones (``system``) and the project's custom ones."""
        return self._json("GET", self._sp(project, "environments"))

    def deployments_list(self, project: str) -> list[dict[str, Any]]:
        return self._json("GET", self._sp(project, "deployments"))

    def deployment_get(self, project: str, deployment: str) -> dict[str, Any]:
        return self._json("GET", self._sp(project, "deployments", deployment))

    def deployment_create(
        self,
        project: str,
        name: str,
        *,
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        input_type: str | None = None,
        output_type: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a deployment. Fields are ``{"x": "double"}``, ``["x:double"]`` or ``[{"name", "data_type"}]``;
        ``plain=True`` makes input and output plain text (or set ``input_type``/``output_type`` one by one)."""
        body: dict[str, Any] = {
            "name": name,
            "input_type": input_type or ("plain" if plain else "structured"),
            "output_type": output_type or ("plain" if plain else "structured"),
            "input_fields": field_list(input_fields) or [],
            "output_fields": field_list(output_fields) or [],
        }
        if description is not None:
            body["description"] = description
        if labels is not None:
            body["labels"] = labels
        return self._json("POST", self._sp(project, "deployments"), json=body)

    def deployment_update(self, project: str, deployment: str, **fields: Any) -> dict[str, Any]:
        """Change ``name``, ``description``, ``labels``, ``input_fields``, ``output_fields`` or ``default_version``."""
        for key in ("input_fields", "output_fields"):
            if fields.get(key) is not None:
                fields[key] = field_list(fields[key])
        return self._json("PATCH", self._sp(project, "deployments", deployment), json=fields)

    def deployment_delete(self, project: str, deployment: str) -> None:
        self._request("DELETE", self._sp(project, "deployments", deployment))

    def deployment_versions(self, project: str, deployment: str) -> list[dict[str, Any]]:
        return self._json("GET", self._sp(project, "deployments", deployment, "versions"))

    def deployment_version(self, project: str, deployment: str, version: str) -> dict[str, Any]:
        return self._json("GET", self._sp(project, "deployments", deployment, "versions", version))

    def deployment_version_create(
        self,
        project: str,
        deployment: str,
        version: str,
        *,
        environment: str | None = None,
        minimum_instances: int | None = None,
        maximum_instances: int | None = None,
        maximum_idle_time: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a version; also ``request_retention_mode``, ``description``, ``labels``, …"""
        body = {
            "version": version,
            "environment": environment,
            "minimum_instances": minimum_instances,
            "maximum_instances": maximum_instances,
            "maximum_idle_time": maximum_idle_time,
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self._json("POST", self._sp(project, "deployments", deployment, "versions"), json=body)

    def deployment_version_update(self, project: str, deployment: str, version: str, **fields: Any) -> dict[str, Any]:
        return self._json("PATCH", self._sp(project, "deployments", deployment, "versions", version), json=fields)

    def deployment_version_delete(self, project: str, deployment: str, version: str) -> None:
        self._request("DELETE", self._sp(project, "deployments", deployment, "versions", version))

    def package_upload(
        self,
        project: str,
        deployment: str,
        version: str,
        path: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Send a package (a .zip) as a new revision of the version, streamed from disk; returns the revision
        (``queued``). Its build runs on the server: see :meth:`wait_for_revision`."""
        src = Path(path).expanduser()
        try:
            size = src.stat().st_size
        except OSError as exc:
            raise HarborClientError(0, "LOCAL_FILE", f"cannot read {src}: {exc.strerror or exc}") from None
        if not src.is_file():
            raise HarborClientError(0, "LOCAL_FILE", f"{src} is not a regular file")
        filename = src.name if src.name.lower().endswith(".zip") else "package.zip"

        def body() -> dict[str, Any]:
            counter = _Counter(size, progress)
            counter.add(0)
            return {"content": _read_hashed(src, size, hashlib.sha256(), counter)}

        resp = self._request(
            "PUT",
            self._sp(project, "deployments", deployment, "versions", version, "package"),
            params={"filename": filename},
            headers={"content-length": str(size), "content-type": "application/zip"},
            timeout=httpx.Timeout(self.timeout, read=None),
            per_attempt=body,
        )
        return resp.json()

    def revisions_list(self, project: str, deployment: str, version: str) -> list[dict[str, Any]]:
        """The version's revisions, oldest first (without their logs)."""
        return self._json("GET", self._sp(project, "deployments", deployment, "versions", version, "revisions"))

    def deployment_logs(
        self,
        project: str,
        deployment: str,
        *,
        version: str | None = None,
        since: str | None = None,
        level: str | None = None,
        contains: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runtime log lines of the deployment's instances, oldest first (``since``: ISO 8601, inclusive)."""
        params = {"version": version, "since": since, "level": level, "contains": contains, "limit": limit}
        params = {k: v for k, v in params.items() if v is not None}
        return self._json("GET", self._sp(project, "deployments", deployment, "logs"), params=params)["items"]

    def revision_get(self, project: str, deployment: str, version: str, revision_id: str) -> dict[str, Any]:
        """One revision: status, error_message and ``build_log``."""
        return self._json(
            "GET", self._sp(project, "deployments", deployment, "versions", version, "revisions", revision_id)
        )

    def wait_for_revision(
        self,
        project: str,
        deployment: str,
        version: str,
        revision_id: str,
        *,
        timeout: float = 1800.0,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a revision until its build ends (``success`` or ``failed``) and return it (with its build log).
        ``on_status(revision, elapsed_seconds)`` is called after every poll (about twice a second)."""
        started = time.monotonic()
        delay = 0.2
        while True:
            rev = self.revision_get(project, deployment, version, revision_id)
            elapsed = time.monotonic() - started
            if on_status is not None:
                on_status(rev, elapsed)
            if rev["status"] in ("success", "failed"):
                return rev
            if elapsed > timeout:
                raise HarborClientError(
                    0,
                    "TIMEOUT",
                    f"revision {revision_id} is still {rev['status']} after {int(elapsed)} s; see its log later with "
                    f"`modelharbor deployments logs {project} {deployment} {version} {revision_id}`",
                    {"revision": rev},
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def predict(
        self,
        project: str,
        deployment: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
        plain: bool | None = None,
    ) -> dict[str, Any]:
        """Ask a deployment (its default version, or ``version``) for a prediction → ``{id, deployment, version,
        status, result, error_message}``. ``data`` is the input fields' object, or text for a plain deployment
        (sent as ``text/plain``; ``plain`` defaults to "data is a str"). A failed prediction is ``status:
        "failed"`` with the reason, not an exception."""
        return self._predict(self._sp(project, "deployments", deployment, "predict"), data, version, timeout, plain)

    def _predict(self, url: str, data: Any, version: str | None, timeout: int | None, plain: bool | None) -> Any:
        params = {k: v for k, v in {"version": version, "timeout": timeout}.items() if v is not None}
        if plain is None:
            plain = isinstance(data, str)
        if plain:
            if not isinstance(data, str):
                raise HarborClientError(0, "INVALID_INPUT", "plain input is text (a str)")
            kw: dict[str, Any] = {"content": data.encode(), "headers": {"content-type": "text/plain; charset=utf-8"}}
        else:
            try:
                body = json.dumps(data, allow_nan=False, ensure_ascii=False).encode()
            except (TypeError, ValueError) as exc:
                raise HarborClientError(0, "INVALID_INPUT", f"the input cannot be sent as JSON: {exc}") from None
            kw = {"content": body, "headers": {"content-type": "application/json"}}
        wait_for = float(timeout or 300) + 30.0
        return self._json(
            "POST", url, params=params, timeout=httpx.Timeout(self.timeout, read=wait_for), retries=1, **kw
        )

    # --- environment variables (project, deployment or version level) ------------------------------
    def _env_path(self, project: str, deployment: str | None, version: str | None, *rest: str) -> str:
        if version is not None and deployment is None:
            raise HarborClientError(0, "INVALID_INPUT", "a version-level variable needs its deployment too")
        parts: list[str] = []
        if deployment is not None:
            parts += ["deployments", deployment]
        if version is not None:
            parts += ["versions", version]
        return self._sp(project, *parts, "environment-variables", *rest)

    def env_list(
        self, project: str, *, deployment: str | None = None, version: str | None = None
    ) -> list[dict[str, Any]]:
        """A level's variables, inherited ones first (``inheritance_type`` project/deployment); secrets' values are
        null."""
        return self._json("GET", self._env_path(project, deployment, version))

    def env_create(
        self,
        project: str,
        name: str,
        value: str,
        *,
        secret: bool = False,
        deployment: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "value": value, "secret": secret}
        return self._json("POST", self._env_path(project, deployment, version), json=body)

    def env_update(
        self,
        project: str,
        var_id: str,
        *,
        deployment: str | None = None,
        version: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Change ``name``, ``value`` or ``secret`` of a variable of this level."""
        return self._json("PATCH", self._env_path(project, deployment, version, var_id), json=fields)

    def env_delete(
        self, project: str, var_id: str, *, deployment: str | None = None, version: str | None = None
    ) -> None:
        self._request("DELETE", self._env_path(project, deployment, version, var_id))

    def _own_var(self, project: str, name: str, deployment: str | None, version: str | None) -> dict[str, Any] | None:
        for e in self.env_list(project, deployment=deployment, version=version):
            if e["name"] == name and e["inheritance_type"] is None:
                return e
        return None

    def env_set(
        self,
        project: str,
        name: str,
        value: str,
        *,
        secret: bool = False,
        deployment: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Create the variable at this level, or change its value (and secrecy) if it exists."""
        existing = self._own_var(project, name, deployment, version)
        if existing is None:
            return self.env_create(project, name, value, secret=secret, deployment=deployment, version=version)
        return self.env_update(
            project, existing["id"], deployment=deployment, version=version, value=value, secret=secret
        )

    def env_unset(self, project: str, name: str, *, deployment: str | None = None, version: str | None = None) -> None:
        """Delete the variable called ``name`` of this level (404 if this level has none)."""
        existing = self._own_var(project, name, deployment, version)
        if existing is None:
            where = "/".join(x for x in (project, deployment, version) if x)
            raise HarborClientError(404, "NOT_FOUND", f"no environment variable {name!r} at {where}")
        self.env_delete(project, existing["id"], deployment=deployment, version=version)

    # --- pipelines ---------------------------------------------------------------------------------
    def pipelines_list(self, project: str) -> list[dict[str, Any]]:
        return self._json("GET", self._sp(project, "pipelines"))

    def pipeline_get(self, project: str, pipeline: str) -> dict[str, Any]:
        return self._json("GET", self._sp(project, "pipelines", pipeline))

    def pipeline_create(
        self,
        project: str,
        name: str,
        *,
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        description: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "input_type": "plain" if plain else "structured",
            "output_type": "plain" if plain else "structured",
            "input_fields": field_list(input_fields) or [],
            "output_fields": field_list(output_fields) or [],
        }
        if description is not None:
            body["description"] = description
        return self._json("POST", self._sp(project, "pipelines"), json=body)

    def pipeline_delete(self, project: str, pipeline: str) -> None:
        self._request("DELETE", self._sp(project, "pipelines", pipeline))

    def pipeline_versions(self, project: str, pipeline: str) -> list[dict[str, Any]]:
        return self._json("GET", self._sp(project, "pipelines", pipeline, "versions"))

    def pipeline_version(self, project: str, pipeline: str, version: str) -> dict[str, Any]:
        return self._json("GET", self._sp(project, "pipelines", pipeline, "versions", version))

    def pipeline_version_create(
        self,
        project: str,
        pipeline: str,
        version: str,
        *,
        objects: list[dict[str, Any]],
        attachments: list[dict[str, Any]],
        **fields: Any,
    ) -> dict[str, Any]:
        """``objects``: ``[{name, reference_name, version?}]``; ``attachments``: ``[{destination_name, sources:
        [{source_name, mapping: [{source_field_name, destination_field_name}]}]}]``."""
        body = {"version": version, "objects": objects, "attachments": attachments, **fields}
        return self._json("POST", self._sp(project, "pipelines", pipeline, "versions"), json=body)

    def pipeline_version_delete(self, project: str, pipeline: str, version: str) -> None:
        self._request("DELETE", self._sp(project, "pipelines", pipeline, "versions", version))

    def pipeline_predict(
        self,
        project: str,
        pipeline: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
        plain: bool | None = None,
    ) -> dict[str, Any]:
        """Run a pipeline → ``{id, pipeline, version, status, result, error_message, steps}``."""
        return self._predict(self._sp(project, "pipelines", pipeline, "predict"), data, version, timeout, plain)

    # --- deploy: package, create what is missing, upload, wait for the build -----------------------
    def deploy(
        self,
        project: str,
        deployment: str,
        path: str | os.PathLike[str],
        *,
        version: str = "v1",
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        environment: str | None = None,
        minimum_instances: int | None = None,
        maximum_instances: int | None = None,
        maximum_idle_time: int | None = None,
        create: bool = True,
        wait: bool = True,
        timeout: float = 1800.0,
        progress: Progress | None = None,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Deploy ``path`` (a directory holding ``deployment.py``, zipped on the fly without ``__pycache__`` and
        ``.git``; or a ``.zip``) as a new revision of ``project/deployment/version``.

        With ``create`` the project, deployment (with the given fields, or plain) and version (with the given
        environment and scaling) are created when missing; existing ones get changed fields, environment or
        scaling. The upload reports ``progress(done, total)``; with ``wait`` the build is followed
        (``on_status(revision, elapsed)``) and a failed build raises ``HarborClientError`` (code
        ``BUILD_FAILED``) whose message ends with the build log's tail. ``on_step(text)`` narrates.

        Returns ``{project, deployment, version, revision, created}``: the revision as last seen (with its
        ``build_log`` when waited for) and what was created."""
        note = on_step or (lambda _text: None)
        src = Path(path).expanduser()
        package, temporary = _package_of(src)
        created: list[str] = []
        try:
            p = self.project_find(project)
            if p is None:
                if not create:
                    raise HarborClientError(404, "NOT_FOUND", f"no project {project!r} (create it, or pass create)")
                p = self.project_create(project)
                created.append(f"project {p['name']}")
                note(f"created project {p['name']}")
            name = p["name"]
            d = self._ensure_deployment(name, deployment, input_fields, output_fields, plain, create, note, created)
            scaling = {
                "environment": environment,
                "minimum_instances": minimum_instances,
                "maximum_instances": maximum_instances,
                "maximum_idle_time": maximum_idle_time,
            }
            self._ensure_version(name, d["name"], version, scaling, create, note, created)
            size = package.stat().st_size
            note(f"uploading {size} bytes to {name}/{d['name']}/{version}")
            rev = self.package_upload(name, d["name"], version, package, progress=progress)
            note(f"revision {rev['id']}: {rev['status']}")
        finally:
            if temporary:
                package.unlink(missing_ok=True)
        result = {"project": name, "deployment": d["name"], "version": version, "revision": rev, "created": created}
        if not wait:
            return result
        rev = self.wait_for_revision(name, d["name"], version, rev["id"], timeout=timeout, on_status=on_status)
        result["revision"] = rev
        if rev["status"] == "failed":
            tail = log_tail(rev.get("build_log") or "")
            raise HarborClientError(
                0,
                "BUILD_FAILED",
                f"the build of {name}/{d['name']}/{version} (revision {rev['id']}) failed: "
                f"{first_line(rev.get('error_message'))}" + (f"\nbuild log (last lines):\n{tail}" if tail else ""),
                result,
            )
        return result

    def _ensure_deployment(self, project, deployment, input_fields, output_fields, plain, create, note, created):
        inputs, outputs = field_list(input_fields), field_list(output_fields)
        try:
            d = self.deployment_get(project, deployment)
        except HarborClientError as exc:
            if exc.status != 404 or not create:
                raise
            d = self.deployment_create(project, deployment, input_fields=inputs, output_fields=outputs, plain=plain)
            created.append(f"deployment {d['name']}")
            note(f"created deployment {d['name']} ({_io_text(d)})")
            return d
        want = "plain" if plain else "structured"
        if (plain or inputs or outputs) and (d["input_type"], d["output_type"]) != (want, want):
            raise HarborClientError(
                0,
                "INVALID_INPUT",
                f"deployment {deployment!r} exists with {d['input_type']} input and {d['output_type']} output; "
                "deploy to it without --plain/fields, or choose another deployment",
            )
        change = {}
        have_in = [{"name": f["name"], "data_type": f["data_type"]} for f in d["input_fields"]]
        have_out = [{"name": f["name"], "data_type": f["data_type"]} for f in d["output_fields"]]
        if inputs and [{"name": f["name"], "data_type": f["data_type"]} for f in inputs] != have_in:
            change["input_fields"] = inputs
        if outputs and [{"name": f["name"], "data_type": f["data_type"]} for f in outputs] != have_out:
            change["output_fields"] = outputs
        if change:
            d = self.deployment_update(project, deployment, **change)
            note(f"changed the fields of deployment {d['name']} ({_io_text(d)})")
        return d

    def _ensure_version(self, project, deployment, version, scaling, create, note, created):
        wanted = {k: v for k, v in scaling.items() if v is not None}
        try:
            v = self.deployment_version(project, deployment, version)
        except HarborClientError as exc:
            if exc.status != 404 or not create:
                raise
            v = self.deployment_version_create(project, deployment, version, **wanted)
            created.append(f"version {v['version']}")
            note(f"created version {v['version']} (environment {v['environment']})")
            return v
        change = {k: value for k, value in wanted.items() if v.get(k) != value}
        if change:
            v = self.deployment_version_update(project, deployment, version, **change)
            note("changed version " + v["version"] + ": " + ", ".join(f"{k} {value}" for k, value in change.items()))
        return v

    # --- project exports and imports ---------------------------------------------------------------
    def export_create(
        self,
        project: str,
        selection: dict[str, Any] | None = None,
        *,
        everything: bool = False,
        packages: bool = True,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Start an export of ``selection`` (``{deployments, pipelines, environment_variables, environments}`` in
        the API's shape), or of everything (with values); returns the export (``pending``)."""
        body: dict[str, Any] = {**(selection or {}), "all": everything, "packages": packages}
        if description is not None:
            body["description"] = description
        return self._json("POST", self._sp(project, "exports"), json=body)

    def export_selection(
        self,
        project: str,
        deployments: dict[str, list[str] | None] | None = None,
        pipelines: dict[str, list[str] | None] | None = None,
    ) -> dict[str, Any]:
        """A selection for :meth:`export_create`: each deployment with all its versions (or the listed ones), its
        and those versions' own variables with their values (a secret's value is never exported) and the custom
        environments those versions use; each pipeline with all its versions (or the listed ones)."""
        system = {e["name"] for e in self.environments_list(project) if e["system"]}
        out: dict[str, Any] = {"deployments": {}, "pipelines": {}, "environments": {}}

        def own(deployment: str, version: str | None = None) -> dict[str, Any]:
            found = self.env_list(project, deployment=deployment, version=version)
            return {e["name"]: {"include_value": True} for e in found if e["inheritance_type"] is None}

        for name, wanted in (deployments or {}).items():
            versions = {v["version"]: v for v in self.deployment_versions(project, name)}
            chosen = list(versions) if wanted is None else list(wanted)
            unknown = [v for v in chosen if v not in versions]
            if unknown:
                raise HarborClientError(
                    404, "NOT_FOUND", f"deployment {name!r} has no version {', '.join(map(repr, unknown))}"
                )
            out["deployments"][name] = {
                "environment_variables": own(name),
                "versions": {v: {"environment_variables": own(name, v)} for v in chosen},
            }
            for v in chosen:
                if versions[v]["environment"] not in system:
                    out["environments"][versions[v]["environment"]] = {}
        for name, wanted in (pipelines or {}).items():
            versions = [v["version"] for v in self.pipeline_versions(project, name)]
            chosen = versions if wanted is None else list(wanted)
            unknown = [v for v in chosen if v not in versions]
            if unknown:
                raise HarborClientError(
                    404, "NOT_FOUND", f"pipeline {name!r} has no version {', '.join(map(repr, unknown))}"
                )
            out["pipelines"][name] = {"versions": {v: {} for v in chosen}}
        return out

    def exports_list(self, project: str, *, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        return self._json("GET", self._sp(project, "exports"), params=params)

    def export_get(self, project: str, export_id: str) -> dict[str, Any]:
        """One export with its selection; once completed also the zip's ``file_id`` and ``sha256``."""
        return self._json("GET", self._sp(project, "exports", export_id))

    def export_delete(self, project: str, export_id: str) -> None:
        self._request("DELETE", self._sp(project, "exports", export_id))

    def wait_for_export(
        self,
        project: str,
        export_id: str,
        *,
        timeout: float = 3600.0,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
    ) -> dict[str, Any]:
        """Poll an export until it is ``completed`` or ``failed`` and return it (``on_status(export, elapsed)``
        after every poll)."""
        return _poll(
            lambda: self.export_get(project, export_id), EXPORT_DONE, timeout, on_status, f"export {export_id}"
        )

    def export_download(
        self,
        project: str,
        export_id: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Path:
        """Download a completed export's zip to ``dest`` (a path, or a directory for the server's name
        ``export_<project>_<id8>.zip``; default: here). Resumes ``<dest>.part``; verifies the SHA-256."""
        e = self.export_get(project, export_id)
        if e["status"] != "completed" or not e.get("sha256"):
            raise HarborClientError(
                0, "NOT_READY", f"export {export_id} is {e['status']}: it can be downloaded once completed"
            )
        target = Path(dest).expanduser() if dest is not None else Path.cwd()
        if target.is_dir() or str(dest).endswith(("/", os.sep)):
            target = target / f"export_{_safe_name(e['project'], 'project')}_{e['id'][:8]}.zip"
        url = self._sp(project, "exports", export_id, "download")
        return self._fetch_verified(url, target, int(e["size"]), e["sha256"], progress)

    def export(
        self,
        project: str,
        dest: str | os.PathLike[str] | None = None,
        selection: dict[str, Any] | None = None,
        *,
        everything: bool = False,
        packages: bool = True,
        timeout: float = 3600.0,
        progress: Progress | None = None,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
        on_created: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[dict[str, Any], Path]:
        """Export, wait until the zip is built, download it (resumable, SHA-256 checked): ``(export, path)``.
        A failed export raises ``HarborClientError`` (code ``EXPORT_FAILED``) with the server's reason."""
        e = self.export_create(project, selection, everything=everything, packages=packages)
        if on_created:
            on_created(e)
        e = self.wait_for_export(project, e["id"], timeout=timeout, on_status=on_status)
        if e["status"] == "failed":
            raise HarborClientError(
                0, "EXPORT_FAILED", f"export {e['id']} failed: {e['error_message'] or 'no reason given'}", e
            )
        return e, self.export_download(project, e["id"], dest, progress=progress)

    def import_create(
        self,
        project: str,
        *,
        file_id: str | None = None,
        export_id: str | None = None,
        import_link: str | None = None,
        skip_confirmation: bool = False,
    ) -> dict[str, Any]:
        """Start an import from an uploaded file, an export of the project or a link (exactly one)."""
        body: dict[str, Any] = {
            k: v
            for k, v in {"file_id": file_id, "export_id": export_id, "import_link": import_link}.items()
            if v is not None
        }
        body["skip_confirmation"] = skip_confirmation
        return self._json("POST", self._sp(project, "imports"), json=body)

    def imports_list(self, project: str, *, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        return self._json("GET", self._sp(project, "imports"), params=params)

    def import_get(self, project: str, import_id: str) -> dict[str, Any]:
        """One import with what its zip holds (the confirmation's shape)."""
        return self._json("GET", self._sp(project, "imports", import_id))

    def import_confirm(self, project: str, import_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The confirmation: the objects to create (see :func:`confirmation_body`)."""
        return self._json("PATCH", self._sp(project, "imports", import_id), json=body)

    def import_delete(self, project: str, import_id: str) -> None:
        self._request("DELETE", self._sp(project, "imports", import_id))

    def wait_for_import(
        self,
        project: str,
        import_id: str,
        *,
        until: tuple[str, ...] = IMPORT_WAITS,
        timeout: float = 3600.0,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
    ) -> dict[str, Any]:
        """Poll an import until its status is one of ``until`` (default: ``confirmation``, ``completed``,
        ``failed``) and return it."""
        return _poll(lambda: self.import_get(project, import_id), until, timeout, on_status, f"import {import_id}")

    def import_zip(
        self,
        project: str,
        path: str | os.PathLike[str],
        *,
        skip_confirmation: bool = False,
        confirm: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel: int = 4,
        timeout: float = 3600.0,
        progress: Progress | None = None,
        on_session: SessionCallback | None = None,
        on_created: Callable[[dict[str, Any]], None] | None = None,
        on_status: Callable[[dict[str, Any], float], None] | None = None,
    ) -> dict[str, Any]:
        """Import a zip (an export) into ``project``: a resumable chunked upload (re-run after a crash: only the
        missing chunks are sent), the import from that file (the uploaded file record is deleted then; the import
        keeps the bytes), the scan, and then — unless ``skip_confirmation`` — ``confirm(import)``, which returns
        the confirmation's body (default :func:`confirmation_body`: everything as in the zip) or None to stop
        there (the import is deleted). Returns the completed import; a failed one raises ``HarborClientError``
        (code ``IMPORT_FAILED``) with the server's reason."""
        record = self.upload(
            path,
            chunk_size=chunk_size,
            parallel=parallel,
            context=IMPORT_UPLOAD_CONTEXT,
            progress=progress,
            on_session=on_session,
        )
        try:
            imp = self.import_create(project, file_id=record["id"], skip_confirmation=skip_confirmation)
        finally:
            with contextlib.suppress(HarborClientError):
                self.delete_file(record["id"])
        if on_created:
            on_created(imp)
        imp = self.wait_for_import(project, imp["id"], timeout=timeout, on_status=on_status)
        if imp["status"] == "confirmation":
            body = confirm(imp) if confirm is not None else confirmation_body(imp)
            if body is None:
                with contextlib.suppress(HarborClientError):
                    self.import_delete(project, imp["id"])
                raise HarborClientError(0, "IMPORT_DECLINED", f"import {imp['id']} not confirmed: nothing imported")
            self.import_confirm(project, imp["id"], body)
            imp = self.wait_for_import(project, imp["id"], until=IMPORT_DONE, timeout=timeout, on_status=on_status)
        if imp["status"] == "failed":
            raise HarborClientError(
                0, "IMPORT_FAILED", f"import {imp['id']} failed: {imp['error_message'] or 'no reason given'}", imp
            )
        return imp


# --- helpers -------------------------------------------------------------------------------------
def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _pk(pk: Any) -> str:
    if isinstance(pk, bool) or not isinstance(pk, (int, str)) or not str(pk).isdecimal():
        raise HarborClientError(0, "INVALID_INPUT", f"a model pk is a positive whole number, not {pk!r}")
    return str(int(pk))


def _read_hashed(src: Path, size: int, h: Any, counter: _Counter) -> Iterator[bytes]:
    """``size`` bytes of ``src`` in pieces of at most 1 MiB, hashed and counted on the way."""
    with open(src, "rb") as f:
        left = size
        while left > 0:
            piece = f.read(min(PIECE, left))
            if not piece:
                raise HarborClientError(0, "LOCAL_FILE_CHANGED", f"{src} shrank while it was being sent")
            left -= len(piece)
            h.update(piece)
            counter.add(len(piece))
            yield piece


def _backoff(attempt: int) -> None:
    time.sleep(min(0.25 * 2**attempt, 4.0))


def _chunk_len(number: int, size: int, chunk_size: int) -> int:
    return max(0, min(chunk_size, size - number * chunk_size))


def _resumable(session: dict[str, Any], size: int, total_chunks: int) -> bool:
    if session.get("size") != size or session.get("total_chunks") != total_chunks:
        return False
    if session.get("state") == "completed":
        return bool(session.get("file_id"))
    if session.get("state") != "open":
        return False
    try:
        expires = datetime.fromisoformat(str(session["expires_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires > datetime.now(UTC) + timedelta(minutes=1)


def _missing(session: dict[str, Any], size: int, chunk_size: int, total_chunks: int) -> list[int]:
    """Chunks the server lacks or holds with the wrong size."""
    held = {c["number"]: c["size"] for c in session.get("chunks") or []}
    return [n for n in range(total_chunks) if held.get(n) != _chunk_len(n, size, chunk_size)]


def _check_unchanged(src: Path, size: int, mtime_ns: int) -> None:
    st = src.stat()
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        raise HarborClientError(0, "LOCAL_FILE_CHANGED", f"{src} changed while it was uploading; upload it again")


def _read_range(
    src: Path, offset: int, length: int, sent: list[int], counter: _Counter, stop: threading.Event
) -> Iterator[bytes]:
    with open(src, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            if stop.is_set():
                raise _Cancelled()
            piece = f.read(min(PIECE, left))
            if not piece:
                raise HarborClientError(0, "LOCAL_FILE_CHANGED", f"{src} shrank while it was uploading")
            left -= len(piece)
            sent[0] += len(piece)
            counter.add(len(piece))
            yield piece


def _hash_prefix(path: Path, n: int) -> Any:
    h = hashlib.sha256()
    if n:
        with open(path, "rb") as f:
            left = n
            while left > 0:
                piece = f.read(min(PIECE, left))
                if not piece:
                    break
                h.update(piece)
                left -= len(piece)
    return h


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _range_ok(resp: httpx.Response, start: int, size: int) -> bool:
    if resp.status_code != 206:
        return False
    m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
    return bool(m and int(m.group(1)) == start and int(m.group(2)) == size - 1 and m.group(3) in (str(size), "*"))


def _safe_name(name: str, fallback: str) -> str:
    base = Path(str(name).replace("\\", "/")).name
    return base if base not in ("", ".", "..") else fallback


class _Counter:
    """Thread-safe byte count that reports to a progress callback."""

    def __init__(self, total: int, progress: Progress | None):
        self.total = total
        self.done = 0
        self.progress = progress
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.progress:
            self.progress(done, self.total)


class _Hasher(threading.Thread):
    """SHA-256 of a file, read once in a background thread."""

    def __init__(self, path: Path):
        super().__init__(name="mh-sha256", daemon=True)
        self.path = path
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            h = hashlib.sha256()
            with open(self.path, "rb") as f:
                while not self._stop_event.is_set():
                    piece = f.read(PIECE)
                    if not piece:
                        break
                    h.update(piece)
            self._digest = h.hexdigest()
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self._error = exc

    def stop(self) -> None:
        self._stop_event.set()

    def result(self) -> str:
        self.join()
        if self._error is not None:
            raise HarborClientError(0, "LOCAL_FILE", f"cannot read {self.path}: {self._error}")
        if self._stop_event.is_set() or self._digest is None:  # pragma: no cover
            raise HarborClientError(0, "LOCAL_FILE", f"hashing {self.path} was interrupted")
        return self._digest


class _StateFile:
    """``<state_dir>/<key>.json`` holding the session id of an upload of one particular file version."""

    def __init__(self, directory: Path, base_url: str, src: Path, st: os.stat_result, chunk_size: int):
        self.ident = {
            "base_url": base_url,
            "path": str(src),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "chunk_size": chunk_size,
        }
        key = hashlib.sha256(json.dumps(self.ident, sort_keys=True).encode()).hexdigest()[:32]
        self.path = directory.expanduser() / f"{key}.json"

    def load(self) -> str | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self.ident.items()):
            return None
        upload_id = data.get("upload_id")
        return upload_id if isinstance(upload_id, str) and upload_id else None

    def save(self, upload_id: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**self.ident, "upload_id": upload_id, "saved_at": time.time()}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # resuming is a convenience: the upload itself still works

    def delete(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _name(name: str) -> str:
    """A registered model's name as one URL path segment (names may hold spaces, '%', '?', '#', …)."""
    if not isinstance(name, str) or not name.strip():
        raise HarborClientError(0, "INVALID_INPUT", "a registered model's name is required")
    if "/" in name or name in (".", ".."):
        raise HarborClientError(0, "INVALID_INPUT", f"invalid model name {name!r}: no '/', and not '.' or '..'")
    return _seg(name)


def _version(version: Any) -> str:
    if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).isdecimal():
        raise HarborClientError(0, "INVALID_INPUT", f"a version is a positive whole number, not {version!r}")
    return str(int(version))


def _local_files(src: Path) -> list[tuple[str, Path, os.stat_result]]:
    """(relative '/'-path, path, stat) of a file, or of every regular file under a directory, sorted by path."""
    try:
        st = src.stat()
    except OSError as exc:
        raise HarborClientError(0, "LOCAL_FILE", f"cannot read {src}: {exc.strerror or exc}") from None
    if src.is_file():
        found = [(src.name, src, st)]
    elif src.is_dir():
        found = []
        for folder, dirs, names in os.walk(src):
            dirs.sort()
            for n in sorted(names):
                p = Path(folder) / n
                if p.is_file():
                    found.append((p.relative_to(src).as_posix(), p, p.stat()))
    else:
        raise HarborClientError(0, "LOCAL_FILE", f"{src} is neither a file nor a directory")
    if not found:
        raise HarborClientError(0, "LOCAL_FILE", f"{src} holds no files to register")
    if len(found) > MAX_VERSION_FILES:
        raise HarborClientError(
            0, "TOO_MANY_FILES", f"{src} holds {len(found)} files; a version holds at most {MAX_VERSION_FILES}"
        )
    for rel, _, _ in found:
        if "\\" in rel or not rel.isprintable():
            raise HarborClientError(
                0, "LOCAL_FILE", f"cannot register {rel!r}: paths may not hold backslashes or control characters"
            )
    return found


def _safe_relative(path: str) -> list[str]:
    """The parts of a server-given relative path; refuses anything that could leave the destination folder."""
    parts = str(path).split("/")
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or any(p in ("", ".", "..") for p in parts)
        or re.match(r"^[A-Za-z]:", parts[0])
    ):
        raise HarborClientError(0, "UNSAFE_PATH", f"the server listed the unsafe path {path!r}; nothing written there")
    return parts


def _run_parallel(tasks: list[Callable[[], None]], parallel: int, stop: threading.Event, prefix: str) -> None:
    """Run ``tasks`` on up to ``parallel`` threads. On the first failure (or Ctrl-C) ``stop`` is set, which the
    tasks' progress reports turn into _Cancelled, and the failure is raised once every thread has ended."""
    if not tasks:
        return
    pool = ThreadPoolExecutor(max_workers=min(parallel, len(tasks)), thread_name_prefix=prefix)
    futures = [pool.submit(task) for task in tasks]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
        if errors:
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])
    finally:
        stop.set()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _Aggregate:
    """Bytes done over many concurrent transfers, reported as one total."""

    def __init__(self, total: int, progress: Progress | None):
        self.total = total
        self.progress = progress
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, key: str, done: int, stop: threading.Event | None = None) -> None:
        """Record ``done`` bytes of transfer ``key``; raises _Cancelled once ``stop`` is set (another transfer
        failed, or Ctrl-C), so the transfer ends at its next piece."""
        if stop is not None and stop.is_set():
            raise _Cancelled()
        with self._lock:
            self._done[key] = done
            total_done = sum(self._done.values())
        if self.progress:
            self.progress(total_done, self.total)

    def report(self) -> None:
        if self.progress:
            with self._lock:
                total_done = sum(self._done.values())
            self.progress(total_done, self.total)


class _RegisterState:
    """``<state_dir>/register-<key>.json``: the files an unfinished ``model_register`` of one path already
    uploaded (relative path → size, mtime, file id, SHA-256), so a re-run sends only the rest."""

    def __init__(self, directory: Path, base_url: str, src: str | os.PathLike[str], name: str):
        ident = {"base_url": base_url, "path": str(Path(src).expanduser().resolve()), "name": name}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        self.ident = ident
        self.path = directory.expanduser() / f"register-{key}.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self.ident.items()):
            return {}
        files = data.get("files")
        return dict(files) if isinstance(files, dict) else {}

    def save(self, files: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({**self.ident, "files": files}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # resuming is a convenience

    def delete(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


# --- export and import helpers -------------------------------------------------------------------
def _poll(
    fetch: Callable[[], dict[str, Any]],
    until: tuple[str, ...],
    timeout: float,
    on_status: Callable[[dict[str, Any], float], None] | None,
    what: str,
) -> dict[str, Any]:
    started = time.monotonic()
    delay = 0.2
    while True:
        item = fetch()
        elapsed = time.monotonic() - started
        if on_status is not None:
            on_status(item, elapsed)
        if item["status"] in until:
            return item
        if elapsed > timeout:
            raise HarborClientError(
                0, "TIMEOUT", f"{what} is still {item['status']} after {int(elapsed)} s; it goes on on the server", item
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def missing_values(imp: dict[str, Any]) -> list[dict[str, Any]]:
    """The variables of an import (at ``confirmation``) that need a value: every secret, and those exported without
    theirs. Each ``{name, secret, deployment, version}`` (deployment/version None at the levels above)."""
    out: list[dict[str, Any]] = []

    def check(variables: dict[str, Any] | None, deployment: str | None = None, version: str | None = None) -> None:
        for name, var in (variables or {}).items():
            if var.get("value") is None:
                out.append(
                    {"name": name, "secret": bool(var.get("secret")), "deployment": deployment, "version": version}
                )

    check(imp.get("environment_variables"))
    for dname, d in (imp.get("deployments") or {}).items():
        check(d.get("environment_variables"), dname)
        for vname, v in (d.get("versions") or {}).items():
            check(v.get("environment_variables"), dname, vname)
    return out


def confirmation_body(
    imp: dict[str, Any], values: dict[tuple[str | None, str | None, str], str] | None = None
) -> dict[str, Any]:
    """The confirmation that imports everything as the zip holds it, with ``values[(deployment, version, name)]``
    for the variables that need one (see :func:`missing_values`; a level's key has None for deployment/version
    above it). A variable still without a value makes the server answer 400 naming it."""
    values = values or {}

    def level(variables: dict[str, Any] | None, d: str | None = None, v: str | None = None) -> dict[str, Any] | None:
        variables = variables or {}
        if all(var.get("value") is not None for var in variables.values()):
            return None  # as in the zip
        return {
            name: (
                {"value": values[(d, v, name)], "secret": bool(var.get("secret"))}
                if var.get("value") is None and (d, v, name) in values
                else {}
            )
            for name, var in variables.items()
        }

    body: dict[str, Any] = {
        "deployments": {},
        "pipelines": {name: {} for name in imp.get("pipelines") or {}},
        "environments": {name: {} for name in imp.get("environments") or {}},
        "environment_variables": level(imp.get("environment_variables"))
        or {name: {} for name in imp.get("environment_variables") or {}},
    }
    for dname, d in (imp.get("deployments") or {}).items():
        entry: dict[str, Any] = {}
        own = level(d.get("environment_variables"), dname)
        if own is not None:
            entry["environment_variables"] = own
        versions = {
            vname: level(v.get("environment_variables"), dname, vname) for vname, v in (d.get("versions") or {}).items()
        }
        if any(x is not None for x in versions.values()):
            entry["versions"] = {
                vname: ({"environment_variables": x} if x is not None else {}) for vname, x in versions.items()
            }
        body["deployments"][dname] = entry
    return body


# --- serving helpers -----------------------------------------------------------------------------
def field_list(spec: FieldSpec) -> list[dict[str, Any]] | None:
    """Deployment fields as the API takes them, from ``{"x": "double"}``, ``["x:double"]`` or a list of
    ``{name, data_type}``."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return [{"name": str(k), "data_type": str(v)} for k, v in spec.items()]
    out: list[dict[str, Any]] = []
    for item in spec:
        if isinstance(item, dict):
            out.append(dict(item))
            continue
        name, colon, data_type = str(item).partition(":")
        if not colon or not name.strip() or not data_type.strip():
            raise HarborClientError(
                0, "INVALID_INPUT", f"field {item!r} is not NAME:TYPE (types: int, double, string, bool, dict, …)"
            )
        out.append({"name": name.strip(), "data_type": data_type.strip()})
    return out


def first_line(text: str | None) -> str:
    """The first line of an error message (a build's error may end with the instance's log tail)."""
    return (text or "no reason given").strip().splitlines()[0] if (text or "").strip() else "no reason given"


def log_tail(log: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(log.rstrip("\n").splitlines()[-lines:])


def _io_text(d: dict[str, Any]) -> str:
    def side(kind: str, fields: list[dict[str, Any]]) -> str:
        if kind == "plain":
            return "plain"
        return ", ".join(f"{f['name']}:{f['data_type']}" for f in fields) or "no fields"

    return f"in {side(d['input_type'], d['input_fields'])} → out {side(d['output_type'], d['output_fields'])}"


def _package_of(src: Path) -> tuple[Path, bool]:
    """(the zip to upload, whether it is a temporary file): a .zip as it is, a directory zipped."""
    if src.is_dir():
        top = src / "deployment.py"
        if not top.is_file() and not any((d / "deployment.py").is_file() for d in src.iterdir() if d.is_dir()):
            raise HarborClientError(
                0, "LOCAL_FILE", f"{src} holds no deployment.py (at its top, or in one folder directly below it)"
            )
        return _zip_directory(src), True
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise HarborClientError(0, "LOCAL_FILE", f"{src} is not a .zip file; pass a directory or a .zip")
        return src, False
    raise HarborClientError(0, "LOCAL_FILE", f"{src} does not exist")


def _zip_directory(src: Path) -> Path:
    """``src``'s files in a temporary zip, relative to ``src``, leaving out ``__pycache__`` and ``.git``."""
    fd, name = tempfile.mkstemp(prefix="modelharbor-package-", suffix=".zip")
    os.close(fd)
    target = Path(name)
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for root, dirs, files in os.walk(src):
                dirs[:] = sorted(d for d in dirs if d not in PACKAGE_EXCLUDED)
                for f in sorted(files):
                    path = Path(root) / f
                    if path.suffix == ".pyc" or not path.is_file():
                        continue
                    zf.write(path, path.relative_to(src).as_posix())
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise HarborClientError(0, "LOCAL_FILE", f"cannot zip {src}: {exc.strerror or exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
