"""Moving bytes: streamed reads of a file's ranges, hashes, progress counts, parallel work, and verified downloads
that resume a ``.part`` file with ``Range`` requests.

Every file is read in pieces of at most 1 MiB; no whole file or chunk is held in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from modelharbor.sdk.errors import HarborClientError, local_file
from modelharbor.sdk.http import RETRIES, RETRY_STATUSES, Transport, backoff

MiB = 1024 * 1024
PIECE = MiB  # largest piece read from disk / network at once
FINGERPRINT_SPAN = MiB

Progress = Callable[[int, int], None]  # (bytes_done, bytes_total)


class Cancelled(Exception):
    """Another transfer of the same job failed (or Ctrl-C): this one stops at its next piece."""


def stat_file(src: Path) -> os.stat_result:
    """``src``'s stat, refusing what is not a readable regular file."""
    try:
        st = src.stat()
    except OSError as exc:
        raise local_file(f"cannot read {src}: {exc.strerror or exc}") from None
    if not src.is_file():
        raise local_file(f"{src} is not a regular file")
    return st


def check_unchanged(src: Path, size: int, mtime_ns: int) -> None:
    st = src.stat()
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        raise HarborClientError(0, "LOCAL_FILE_CHANGED", f"{src} changed while it was uploading; upload it again")


def chunk_len(number: int, size: int, chunk_size: int) -> int:
    return max(0, min(chunk_size, size - number * chunk_size))


def fingerprint(path: Path, size: int) -> str:
    """How the server knows a file before it has it: SHA-256 of the size (decimal ASCII), a newline, the first and
    the last MiB of the file."""
    h = hashlib.sha256(str(size).encode() + b"\n")
    with open(path, "rb") as f:
        h.update(f.read(FINGERPRINT_SPAN))
        f.seek(max(0, size - FINGERPRINT_SPAN))
        h.update(f.read(FINGERPRINT_SPAN))
    return h.hexdigest()


def sha256_of(path: Path, stop: threading.Event | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            if stop is not None and stop.is_set():
                raise Cancelled()
            h.update(piece)
    return h.hexdigest()


def read_range(
    src: Path, offset: int, length: int, sent: list[int], counter: Counter, stop: threading.Event
) -> Iterator[bytes]:
    """``length`` bytes of ``src`` from ``offset``, counted as they go (``sent[0]``: this range's bytes so far)."""
    with open(src, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            if stop.is_set():
                raise Cancelled()
            piece = f.read(min(PIECE, left))
            if not piece:
                raise HarborClientError(0, "LOCAL_FILE_CHANGED", f"{src} shrank while it was uploading")
            left -= len(piece)
            sent[0] += len(piece)
            counter.add(len(piece))
            yield piece


def put_range(
    transport: Transport,
    http: httpx.Client,
    url: str,
    src: Path,
    offset: int,
    length: int,
    counter: Counter,
    stop: threading.Event,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    """PUT ``length`` bytes of ``src`` from ``offset`` as the raw body (streamed, counted), retried on transport
    errors and retryable statuses (the bytes counted go back); the final answer — a success, or an error the caller
    reads (its dialect of "session gone")."""
    headers = {"content-length": str(length), "content-type": "application/octet-stream"}
    for attempt in range(RETRIES):
        if stop.is_set():
            raise Cancelled()
        sent = [0]
        try:
            resp = http.put(
                url, params=params, content=read_range(src, offset, length, sent, counter, stop), headers=headers
            )
        except httpx.TransportError as exc:
            counter.add(-sent[0])
            if stop.is_set():
                raise Cancelled() from None
            if attempt + 1 >= RETRIES:
                raise transport.unreachable(exc) from None
            backoff(attempt)
            continue
        if resp.status_code >= 400:
            counter.add(-sent[0])
            if resp.status_code in RETRY_STATUSES and attempt + 1 < RETRIES:
                backoff(attempt)
                continue
        return resp
    raise AssertionError("unreachable")  # pragma: no cover


def read_hashed(src: Path, size: int, h: Any, counter: Counter) -> Iterator[bytes]:
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


def safe_name(name: str, fallback: str) -> str:
    base = Path(str(name).replace("\\", "/")).name
    return base if base not in ("", ".", "..") else fallback


def safe_relative(path: str) -> list[str]:
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


def target_path(dest: str | os.PathLike[str] | None, name: str, fallback: str) -> Path:
    """``dest`` itself, or (a directory, a path ending in '/', or None for here) the server's ``name`` in it."""
    target = Path(dest).expanduser() if dest is not None else Path.cwd()
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        target = target / safe_name(name, fallback)
    return target


class Counter:
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


class Aggregate:
    """Bytes done over many concurrent transfers, reported as one total."""

    def __init__(self, total: int, progress: Progress | None):
        self.total = total
        self.progress = progress
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, key: str, done: int, stop: threading.Event | None = None) -> None:
        """Record ``done`` bytes of transfer ``key``; raises Cancelled once ``stop`` is set (another transfer
        failed, or Ctrl-C), so the transfer ends at its next piece."""
        if stop is not None and stop.is_set():
            raise Cancelled()
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


class Hasher(threading.Thread):
    """SHA-256 of a file, read once in a background thread (or given, when it was computed before)."""

    def __init__(self, path: Path, known: str | None = None):
        super().__init__(name="mh-sha256", daemon=True)
        self.path = path
        self._digest: str | None = known
        self._error: BaseException | None = None
        self._stop_event = threading.Event()

    def start(self) -> None:
        if self._digest is None:
            super().start()

    def run(self) -> None:
        try:
            self._digest = sha256_of(self.path, self._stop_event)
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self._error = exc

    def stop(self) -> None:
        self._stop_event.set()

    def result(self) -> str:
        if self.is_alive() or self.ident is not None:
            self.join()
        if self._error is not None:
            raise local_file(f"cannot read {self.path}: {self._error}")
        if self._digest is None:  # pragma: no cover
            raise local_file(f"hashing {self.path} was interrupted")
        return self._digest


class ThreadClients:
    """One httpx client per worker thread (a client is not shared between threads that stream)."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        c = getattr(self._local, "http", None)
        if c is None:
            c = self._local.http = self.transport.new_http()
            with self._lock:
                self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()


def run_parallel(tasks: list[Callable[[], None]], parallel: int, stop: threading.Event, prefix: str) -> None:
    """Run ``tasks`` on up to ``parallel`` threads. On the first failure (or Ctrl-C) ``stop`` is set, which the
    tasks turn into Cancelled at their next piece, and the failure is raised once every thread has ended."""
    if not tasks:
        return
    pool = ThreadPoolExecutor(max_workers=min(parallel, len(tasks)), thread_name_prefix=prefix)
    futures = [pool.submit(task) for task in tasks]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
        if errors:
            raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
    finally:
        stop.set()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


# --- verified, resumable downloads ---------------------------------------------------------------------------
def digest_matches(digest: str, expected: str) -> bool:
    """A SHA-256 ``digest`` is the one ``expected`` names: the whole of it, or its first 40 or more hex digits."""
    return len(expected) >= 40 and digest.startswith(expected.lower())


def fetch_verified(
    transport: Transport,
    url: str,
    target: Path,
    size: int,
    expected: str,
    progress: Progress | None,
    *,
    http: httpx.Client | None = None,
) -> Path:
    """Download ``url`` into ``<target>.part`` (resuming it), check the SHA-256 (``expected``: all 64 hex digits,
    or a blob key's first 40 or more), then rename to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    restarted = False
    while True:
        digest = _fetch_into(transport, url, part, size, progress, http=http)
        if digest_matches(digest, expected):
            os.replace(part, target)
            return target
        part.unlink(missing_ok=True)
        if restarted:
            raise HarborClientError(
                0, "CHECKSUM_MISMATCH", f"the downloaded bytes hash to {digest}, not {expected}; try the download again"
            )
        restarted = True  # the old .part may have held other bytes: fetch everything once more


@dataclass(frozen=True)
class Fetch:
    """One file of :func:`fetch_many`: its content URL, local path, size and SHA-256 (or its first 40+ hex
    digits); ``name`` keys its progress."""

    name: str
    url: str
    target: Path
    size: int
    sha256: str


def fetch_many(
    transport: Transport, files: list[Fetch], parallel: int, progress: Progress | None, prefix: str
) -> list[str]:
    """Download ``files`` on up to ``parallel`` threads, each with :func:`fetch_verified`; a file already at its
    target with the right size and SHA-256 is skipped. One progress total; the names of the files skipped."""
    agg = Aggregate(sum(f.size for f in files), progress)
    agg.report()
    skipped: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    clients = ThreadClients(transport)

    def fetch(f: Fetch) -> None:
        if f.target.is_file() and f.target.stat().st_size == f.size and digest_matches(sha256_of(f.target), f.sha256):
            with lock:
                skipped.append(f.name)
            agg.set(f.name, f.size)
            return
        report = lambda done, _total, key=f.name: agg.set(key, done, stop)  # noqa: E731
        fetch_verified(transport, f.url, f.target, f.size, f.sha256, report, http=clients.get())

    try:
        run_parallel([partial(fetch, f) for f in files], parallel, stop, prefix)
    finally:
        clients.close()
    return skipped


def _fetch_into(
    transport: Transport, url: str, part: Path, size: int, progress: Progress | None, *, http: httpx.Client | None
) -> str:
    """Bring ``part`` to the full ``size`` bytes of ``url`` (resuming it); the SHA-256 of its content."""
    http = http or transport.http
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
                        backoff(attempt)
                        continue
                    raise transport.error(resp)
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
                raise transport.unreachable(exc) from None
            backoff(attempt)
    raise HarborClientError(0, "DOWNLOAD_FAILED", "the download kept failing; run it again to resume")


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
