"""What lets a chunked upload resume whatever chunk size the resuming client would pick, and what a session may
declare about its bytes: the rules ``uploads.py`` applies (docs/uploads.md, "Resuming and deduplication").

- **Chunk size.** A session has one chunk size: every chunk but the last has exactly that many bytes, the last at
  most that many (with a declared file size: exactly what is left). A client may declare it on start (then every
  chunk is held to it: a chunk of another size is refused and not kept); otherwise the server records it from the
  first full chunk (any chunk but the last; a one-chunk session's only chunk) and keeps it while the chunks agree.
  Chunks that do not (sizes that differ, a last chunk larger than the others, a count the file size does not
  give) make the session *irregular*: its chunk size is unknown (None) for good, and a client cannot resume it
  by chunk size (it starts a new session). A resuming client cuts the file by the session's chunk size, never
  its own.
- **Fingerprint.** The client's hex SHA-256 over the file's size in decimal ASCII, ``\\n``, its first MiB and its
  last MiB (:func:`fingerprint`; both pieces whole when the file is shorter, so they overlap). A resume looks for
  the caller's own open sessions by name, size and fingerprint: a file whose bytes changed has another
  fingerprint and does not find the old session. The server cannot check a fingerprint before the bytes arrive;
  it is the client's claim, and matches only its own sessions.
- **SHA-256.** The whole file's hex SHA-256 as the client computed it: with a size, content the organisation
  already holds completes the session at once (no byte sent); otherwise completing computes the hash as always
  and refuses a file whose hash differs (``SHA256_MISMATCH``), keeping the session so the client can re-send.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from modelharbor.db.tables import UploadSessionRow
from modelharbor.domain.errors import InvalidInput

FINGERPRINT_PIECE = 1 << 20  # bytes of the file's start and of its end a fingerprint covers
DECLARED, SEEN, IRREGULAR = "declared", "seen", "irregular"  # where a session's chunk size came from
_HEX = re.compile(r"[0-9a-fA-F]+")


def fingerprint(size: int, head: bytes, tail: bytes) -> str:
    """The fingerprint of a file of ``size`` bytes: ``head`` its first ``min(size, 1 MiB)`` bytes, ``tail`` its last
    ``min(size, 1 MiB)`` (the reference the SDK's own computation must match)."""
    h = hashlib.sha256(str(size).encode("ascii") + b"\n")
    h.update(head)
    h.update(tail)
    return h.hexdigest()


def hex_digest(value: Any, field: str, *, length: int = 64) -> str | None:
    """A hex digest as a client sends it (any case) in lower case — a SHA-256 (64 characters) or, with ``length``
    32, an MD5; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
        what = "a SHA-256" if length == 64 else "an MD5"
        raise InvalidInput(f"{field} must be {what} in hex ({length} characters 0-9, a-f)", field=field)
    return value.lower()


def chunks_for(size: int, chunk_size: int) -> int:
    """How many chunks of ``chunk_size`` make ``size`` bytes (an empty file is one empty chunk)."""
    return max(1, -(-size // chunk_size))


def check_declared(chunk_size: Any, *, size: int | None, total_chunks: int, max_chunk_size: int) -> int | None:
    """A chunk size declared on start: 1 to ``MAX_CHUNK_SIZE`` bytes, and with a file size, one that gives
    ``total_chunks`` chunks."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= max_chunk_size:
        raise InvalidInput(f"chunk_size must be a whole number of bytes from 1 to {max_chunk_size}", field="chunk_size")
    if size is not None and chunks_for(size, chunk_size) != total_chunks:
        raise InvalidInput(
            f"a file of {size} bytes in chunks of {chunk_size} bytes is {chunks_for(size, chunk_size)} chunk(s), not "
            f"{total_chunks}",
            field="total_chunks",
        )
    return chunk_size


def source(row: UploadSessionRow) -> str | None:
    return (row.meta or {}).get("chunk_size")


def mark(row: UploadSessionRow, how: str) -> None:
    row.meta = {**(row.meta or {}), "chunk_size": how}


def expected(row: UploadSessionRow, number: int) -> int | None:
    """The exact size chunk ``number`` must have under the session's chunk size (None: any up to it, or unknown)."""
    cs = row.chunk_size
    if cs is None:
        return None
    if number < row.total_chunks - 1:
        return cs
    return row.size - (row.total_chunks - 1) * cs if row.size is not None else None


def cap(row: UploadSessionRow, number: int | None) -> int | None:
    """The most bytes a chunk may have under a declared chunk size, so a longer one is refused as it arrives (None:
    no such bound)."""
    if source(row) != DECLARED:
        return None
    want = expected(row, number) if number is not None else None
    return want if want is not None else row.chunk_size


def check_chunk(row: UploadSessionRow, number: int, nbytes: int) -> None:
    """A chunk of a session whose chunk size was declared must have the size it gives (else refused, not kept)."""
    if source(row) != DECLARED:
        return
    want = expected(row, number)
    if (want is not None and nbytes != want) or (want is None and nbytes > row.chunk_size):
        raise InvalidInput(
            f"chunk {number} has {nbytes} bytes; with chunk_size {row.chunk_size} it must have "
            + (f"{want}" if want is not None else f"at most {row.chunk_size}")
            + ": cut the file by the session's chunk_size",
            code="CHUNK_SIZE_MISMATCH",
            chunk_size=row.chunk_size,
            expected_size=want,
            received_size=nbytes,
        )


def note_chunk(row: UploadSessionRow, number: int, nbytes: int, sizes: Mapping[int, int] | None) -> None:
    """After a chunk of a session without a declared chunk size: record the chunk size from the first full chunk,
    or mark the session irregular once its chunks disagree. ``sizes`` (number → bytes of every chunk held, this one
    included) is needed only while no chunk size is known yet (None otherwise: only this chunk is compared)."""
    how = source(row)
    if how in (DECLARED, IRREGULAR):
        return
    if row.chunk_size is None:
        if sizes is None:
            return
        full = {b for n, b in sizes.items() if n < row.total_chunks - 1 or row.total_chunks == 1}
        if not full:
            return  # only the last chunk so far: it says nothing
        cs = full.pop() if len(full) == 1 else None
        if cs == 0:
            return  # an empty file's one empty chunk: nothing to learn
        if cs is None or any(not _fits(row, n, b, cs) for n, b in sizes.items()):
            _irregular(row)
            return
        if row.size is not None and chunks_for(row.size, cs) != row.total_chunks:
            _irregular(row)
            return
        row.chunk_size = cs
        mark(row, SEEN)
    elif not _fits(row, number, nbytes, row.chunk_size):
        _irregular(row)


def _fits(row: UploadSessionRow, number: int, nbytes: int, cs: int) -> bool:
    if number < row.total_chunks - 1:
        return nbytes == cs
    if row.size is not None:
        return nbytes == row.size - (row.total_chunks - 1) * cs
    return nbytes <= cs


def _irregular(row: UploadSessionRow) -> None:
    row.chunk_size = None
    mark(row, IRREGULAR)
