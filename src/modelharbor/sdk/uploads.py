"""``client.uploads``: chunked upload sessions, and the resumable, parallel, verified upload of a file.

An upload finds the session to resume whatever the chunk size it is run with: first the one an earlier run of the
same file saved (a small JSON state file in ``MODELHARBOR_STATE_DIR``, default ``~/.cache/modelharbor/uploads``),
then — on a server that knows files by fingerprint — an open session of the same name, size and fingerprint
(SHA-256 of the size, the first and the last MiB). A resumed session keeps its own chunk size; only the chunks the
server lacks are sent. A file of ``hash_first_over`` bytes or more (default 8 MiB) is hashed before its session
starts: a server that already holds those bytes finishes the upload at once, and no byte is sent.

The file is cut into ``chunk_size`` pieces sent by ``parallel`` threads, each streamed from disk in pieces of at
most 1 MiB; its SHA-256 is computed in a thread of its own while they travel, and compared with the server's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from modelharbor.sdk.errors import HarborClientError, invalid
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import (
    Counter,
    Hasher,
    MiB,
    Progress,
    ThreadClients,
    check_unchanged,
    chunk_len,
    fingerprint,
    put_range,
    run_parallel,
    stat_file,
)
from modelharbor.sdk.wire import Completed, File, Upload

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

DEFAULT_CHUNK_SIZE = 64 * MiB
HASH_FIRST_OVER = 8 * MiB
STATE_DIR_ENV = "MODELHARBOR_STATE_DIR"
MAX_FILE_NAME = 1024
NEW_START_FIELDS = ("chunk_size", "fingerprint", "sha256")  # what a newer server's POST /uploads takes

SessionCallback = Callable[[Upload, bool, list[int]], None]  # (session, resumed, chunks to send)


class _SessionGone(Exception):
    """The upload session expired, was aborted or completed under us: start a new one."""


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "modelharbor" / "uploads"


def check_file_name(name: str) -> str:
    """A file name the server takes (checked before anything is sent)."""
    if not name or not name.strip():
        raise invalid("a file name is required")
    if len(name) > MAX_FILE_NAME:
        raise invalid(f"the file name is longer than {MAX_FILE_NAME} characters")
    if any(ord(c) < 32 for c in name):
        raise invalid(f"the file name {name!r} contains control characters")
    return name


class Uploads:
    """``/api/v1/uploads``: open, list, read, complete and abort sessions; :meth:`upload` a file through one."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport
        self._legacy: bool | None = None  # True: the server's POST /uploads takes none of NEW_START_FIELDS

    def list(self, *, name: str | None = None, size: int | None = None, fingerprint: str | None = None) -> list[Upload]:
        """Your open sessions, newest first (a newer server also filters by ``fingerprint``)."""
        params = {k: v for k, v in {"name": name, "size": size, "fingerprint": fingerprint}.items() if v is not None}
        return self._t.call(list[Upload], "GET", "/uploads", params=params)

    def get(self, upload_id: str) -> Upload:
        return self._t.call(Upload, "GET", f"/uploads/{seg(upload_id)}")

    def abort(self, upload_id: str) -> None:
        """Abort an open session: the server drops its chunks."""
        self._t.request("DELETE", f"/uploads/{seg(upload_id)}")

    def start(
        self,
        name: str,
        total_chunks: int,
        *,
        size: int | None = None,
        context: str = "",
        chunk_size: int | None = None,
        fingerprint: str | None = None,
        sha256: str | None = None,
    ) -> Upload:
        """Open a session. ``chunk_size``, ``fingerprint`` and ``sha256`` go only to a server that takes them; one
        that already holds bytes of that ``sha256`` answers a completed session with its ``file_id``."""
        body: dict[str, Any] = {"name": check_file_name(name), "total_chunks": total_chunks, "context": context}
        if size is not None:
            body["size"] = size
        extra = {"chunk_size": chunk_size, "fingerprint": fingerprint, "sha256": sha256}
        extra = {k: v for k, v in extra.items() if v is not None}
        if extra and not self._legacy:
            try:
                return self._t.call(Upload, "POST", "/uploads", json={**body, **extra})
            except HarborClientError as exc:
                if not _refuses_new_fields(exc):
                    raise
                self._legacy = True
        return self._t.call(Upload, "POST", "/uploads", json=body)

    def complete(self, upload_id: str) -> Completed:
        """Assemble and verify (idempotent); the server hashes every byte, so there is no read timeout."""
        timeout = httpx.Timeout(self._t.timeout, read=None)
        return self._t.call(Completed, "POST", f"/uploads/{seg(upload_id)}/complete", timeout=timeout)

    def takes_sha256(self) -> bool:
        """Whether the server dedups by the SHA-256 given when a session starts (asked of its OpenAPI document
        once; never worth hashing a file first for a server that does not)."""
        if self._legacy is None:
            try:
                doc = self._t.json("GET", "/openapi.json")
                props = doc["components"]["schemas"]["UploadStartIn"]["properties"]
                self._legacy = not all(f in props for f in NEW_START_FIELDS)
            except (HarborClientError, KeyError, TypeError):
                self._legacy = True
        return not self._legacy

    # --- the whole upload -----------------------------------------------------------------------------------
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
        hash_first_over: int | None = HASH_FIRST_OVER,
        hash_progress: Progress | None = None,
    ) -> File:
        """Upload ``path`` and return the file record; resumes an earlier interrupted run of the same file.

        ``chunk_size`` is that of a new session (a resumed one keeps its own). ``on_session(upload, resumed,
        to_send)`` is told which session is used, whether it was resumed and which chunks will be sent (none when
        the server already held the bytes: ``upload.deduplicated`` on a newer server). ``hash_first_over``: files
        of at least this many bytes are hashed before a new session starts, so that a server holding the same bytes
        needs none of them (None: never); ``hash_progress(done, total)`` follows that hashing.
        """
        src = Path(path).expanduser().resolve()
        if chunk_size < 1:
            raise invalid("chunk size must be at least 1 byte")
        if parallel < 1:
            raise invalid("parallel must be at least 1")
        st = stat_file(src)
        remote_name = check_file_name(name or src.name)
        size, mtime_ns = st.st_size, st.st_mtime_ns
        state = _StateFile(Path(state_dir) if state_dir else default_state_dir(), self._t.url, src, st)
        plan = _Plan(src, remote_name, size, context, chunk_size, fingerprint(src, size))
        hash_first = hash_first_over is not None and size >= hash_first_over
        hasher: Hasher | None = None
        try:
            for _attempt in range(3):
                session, resumed = self._session_for(state, plan, hash_first, hash_progress)
                if hasher is None:
                    hasher = Hasher(src, plan.sha256)
                    hasher.start()
                cs = session_chunk_size(session, size) or chunk_size
                completed = session.state == "completed"  # deduplicated, or finished by a run that died after it
                to_send = [] if completed else missing_chunks(session, size, cs)
                if on_session:
                    on_session(session, resumed, to_send)
                try:
                    self._send_chunks(src, session.id, to_send, size, cs, parallel, progress)
                    check_unchanged(src, size, mtime_ns)
                    file = self._finish(session)
                except _SessionGone:
                    state.delete()
                    continue
                local = hasher.result()
                if completed and file.sha256 != local:
                    state.delete()  # that earlier upload was of other bytes: send this version afresh
                    plan.sha256 = local
                    continue
                state.delete()
                if file.sha256 != local:
                    raise HarborClientError(
                        0,
                        "CHECKSUM_MISMATCH",
                        f"SHA-256 mismatch after upload: local {local}, server {file.sha256} (file id {file.id}); "
                        "delete that file and upload again",
                        {"file_id": file.id, "local_sha256": local, "server_sha256": file.sha256},
                    )
                return file
            raise HarborClientError(0, "UPLOAD_FAILED", "the upload session kept disappearing on the server; try again")
        finally:
            if hasher is not None:
                hasher.stop()

    def _session_for(
        self, state: _StateFile, plan: _Plan, hash_first: bool, hash_progress: Progress | None
    ) -> tuple[Upload, bool]:
        """The session to use and whether it is resumed: the saved one, the server's match, or a new one."""
        saved = state.load()
        if saved:
            try:
                session = self.get(saved)
            except HarborClientError as exc:
                if exc.status not in (403, 404, 410):
                    raise
                session = None
            if session is not None and resumable(session, plan.size, plan.context):
                return session, True
            state.delete()
        if not self._legacy:
            for session in self.list(name=plan.name, size=plan.size, fingerprint=plan.fingerprint):
                if getattr(session, "fingerprint", None) == plan.fingerprint and resumable(
                    session, plan.size, plan.context
                ):
                    state.save(session.id)
                    return session, True
        if hash_first and plan.sha256 is None and self.takes_sha256():
            counter = Counter(plan.size, hash_progress)
            h = hashlib.sha256()
            with open(plan.src, "rb") as f:
                while piece := f.read(MiB):
                    h.update(piece)
                    counter.add(len(piece))
            plan.sha256 = h.hexdigest()
        total = max(1, -(-plan.size // plan.chunk_size))
        session = self.start(
            plan.name,
            total,
            size=plan.size,
            context=plan.context,
            chunk_size=plan.chunk_size,
            fingerprint=plan.fingerprint,
            sha256=plan.sha256,
        )
        if session.state != "completed":
            state.save(session.id)
        return session, False

    def _finish(self, session: Upload) -> File:
        """The file of a session whose chunks are all sent (or that the server completed itself)."""
        try:
            if session.state == "completed" and session.file_id and getattr(session, "deduplicated", False):
                return self._t.call(File, "GET", f"/files/{seg(session.file_id)}")
            return self.complete(session.id).file
        except HarborClientError as exc:
            if exc.status == 410 or exc.code in ("SESSION_NOT_FOUND", "FILE_DELETED", "NOT_FOUND"):
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
        counter = Counter(size, progress)
        counter.add(size - sum(chunk_len(n, size, chunk_size) for n in numbers))
        if not numbers:
            return
        stop = threading.Event()
        clients = ThreadClients(self._t)

        def send(number: int) -> None:
            self._put_chunk(clients.get(), src, upload_id, number, size, chunk_size, counter, stop)

        tasks = [lambda n=n: send(n) for n in numbers]
        try:
            run_parallel(tasks, parallel, stop, "mh-upload")
        finally:
            clients.close()

    def _put_chunk(
        self,
        http: httpx.Client,
        src: Path,
        upload_id: str,
        number: int,
        size: int,
        chunk_size: int,
        counter: Counter,
        stop: threading.Event,
    ) -> None:
        url = f"/uploads/{seg(upload_id)}/chunks/{number}"
        length = chunk_len(number, size, chunk_size)
        resp = put_range(self._t, http, url, src, number * chunk_size, length, counter, stop)
        if resp.status_code < 400:
            return
        err = self._t.error(resp)
        if err.status == 410 or err.code in ("SESSION_NOT_FOUND", "SESSION_COMPLETED"):
            raise _SessionGone()
        raise err


class _Plan:
    """What one upload sends: the file, its name on the server, and what identifies its bytes."""

    def __init__(self, src: Path, name: str, size: int, context: str, chunk_size: int, fp: str):
        self.src, self.name, self.size, self.context, self.chunk_size = src, name, size, context, chunk_size
        self.fingerprint = fp
        self.sha256: str | None = None


def _refuses_new_fields(exc: HarborClientError) -> bool:
    """An older server's refusal of the fields a newer one takes (its bodies forbid unknown fields)."""
    problems = " ".join(map(str, exc.details.get("problems") or [])) + " " + exc.message
    return exc.status in (400, 422) and any(f"{f}: Extra inputs" in problems for f in NEW_START_FIELDS)


def session_chunk_size(session: Upload, size: int) -> int | None:
    """The chunk size of a session: the one it names (a newer server), else the one its chunks show, else the
    one its chunk count implies; None when no uniform chunk size fits it."""
    total = session.total_chunks
    named = getattr(session, "chunk_size", None)
    candidates: list[int] = [named] if isinstance(named, int) and named > 0 else []
    held = {c.number: c.size for c in session.chunks}
    candidates += [n for k, n in held.items() if k < total - 1]
    if total - 1 in held and total > 1 and (size - held[total - 1]) % (total - 1) == 0:
        candidates.append((size - held[total - 1]) // (total - 1))
    candidates.append(max(1, -(-size // total)))
    for c in candidates:
        if c > 0 and max(1, -(-size // c)) == total and all(held.get(n, s) == s for n, s in _sizes(size, c, total)):
            return c
    return None


def _sizes(size: int, chunk_size: int, total: int) -> list[tuple[int, int]]:
    return [(n, chunk_len(n, size, chunk_size)) for n in range(total)]


def missing_chunks(session: Upload, size: int, chunk_size: int) -> list[int]:
    """Chunks the server lacks or holds with the wrong size."""
    held = {c.number: c.size for c in session.chunks}
    return [n for n in range(session.total_chunks) if held.get(n) != chunk_len(n, size, chunk_size)]


def resumable(session: Upload, size: int, context: str) -> bool:
    """Whether a session can go on to upload a file of ``size`` bytes."""
    if session.size != size or session.context != context or session_chunk_size(session, size) is None:
        return False
    if session.state == "completed":
        return bool(session.file_id)
    if session.state != "open":
        return False
    expires = session.expires_at if session.expires_at.tzinfo else session.expires_at.replace(tzinfo=UTC)
    return expires > datetime.now(UTC) + timedelta(minutes=1)


class _StateFile:
    """``<state_dir>/<key>.json`` holding the session id of an upload of one particular file version (path, size
    and modification time), whatever the chunk size."""

    def __init__(self, directory: Path, base_url: str, src: Path, st: os.stat_result):
        self.ident = {"base_url": base_url, "path": str(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
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
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({**self.ident, "upload_id": upload_id, "saved_at": time.time()}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # resuming is a convenience: the upload itself still works

    def delete(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


__all__ = ["Uploads", "DEFAULT_CHUNK_SIZE", "HASH_FIRST_OVER", "default_state_dir"]
