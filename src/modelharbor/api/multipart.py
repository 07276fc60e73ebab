"""Streaming multipart/form-data reader for ASGI request bodies.

Request bodies are parsed as they arrive: part data is handed to the caller chunk by chunk and is never
buffered whole nor spooled to disk, so multi-GB uploads can go straight into blob storage.  The scanner
looks for the delimiter with ``bytes.find`` over whole incoming chunks, so there is no per-byte Python work.

Usage::

    boundary = find_boundary(request.headers.get("content-type"), first_chunk)
    async for part in iter_parts(body_chunks, boundary):
        if part.name == "file":
            await storage.write(part.stream())
        else:
            value = (await part.read_all(1024)).decode()

Any malformed input raises :class:`MultipartError` (a ``ValueError``), which callers turn into a 400.
Exceptions raised by the body iterator itself (e.g. a client disconnect) propagate unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote

__all__ = ["MultipartError", "Part", "find_boundary", "iter_parts"]

_CRLF = b"\r\n"
_MAX_BOUNDARY_LEN = 256  # RFC 2046 allows 70; be lenient with odd clients but keep it bounded
_MAX_BOUNDARY_LINE_PADDING = 1024  # transport padding allowed after a delimiter before its CRLF


class MultipartError(ValueError):
    """The request body is not well-formed multipart data (or exceeds a limit)."""


# --------------------------------------------------------------------------------------------------------
# Header parameter parsing (Content-Type, Content-Disposition)


def _parse_header_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``type; k=v; k2="quoted; v"`` into the main value and an ordered list of (lower key, value).

    Quoted values have ``\\"`` and ``\\\\`` unescaped; any other backslash is kept literally (browsers do
    not escape backslashes, and old IE sends full Windows paths).  An unterminated quote runs to the end.
    """
    n = len(value)
    semi = value.find(";")
    if semi < 0:
        return value.strip(), []
    main = value[:semi].strip()
    params: list[tuple[str, str]] = []
    i = semi + 1
    while i < n:
        while i < n and value[i] in " \t;":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and value[j] not in "=;":
            j += 1
        key = value[i:j].strip().lower()
        if j >= n or value[j] == ";":
            if key:
                params.append((key, ""))
            i = j + 1
            continue
        j += 1  # skip '='
        while j < n and value[j] in " \t":
            j += 1
        if j < n and value[j] == '"':
            j += 1
            out: list[str] = []
            while j < n:
                c = value[j]
                if c == "\\" and j + 1 < n and value[j + 1] in '"\\':
                    out.append(value[j + 1])
                    j += 2
                elif c == '"':
                    j += 1
                    break
                else:
                    out.append(c)
                    j += 1
            val = "".join(out)
            while j < n and value[j] != ";":  # ignore junk between the closing quote and the next ';'
                j += 1
        else:
            k = value.find(";", j)
            k = n if k < 0 else k
            val = value[j:k].strip()
            j = k
        if key:
            params.append((key, val))
        i = j + 1
    return main, params


def _decode_ext_value(value: str) -> str:
    """Decode an RFC 5987 / RFC 2231 extended value such as ``UTF-8''na%C3%AFve.tar``."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        raise MultipartError(f"malformed extended header parameter {value!r}")
    charset = parts[0].strip() or "utf-8"
    try:
        return unquote(parts[2], encoding=charset, errors="strict")
    except (LookupError, UnicodeDecodeError) as exc:
        raise MultipartError(f"malformed extended header parameter {value!r}") from exc


def _disposition_params(value: str) -> dict[str, str]:
    """Parameters of a Content-Disposition value; ``name*`` / ``filename*`` win over plain ones."""
    _, params = _parse_header_params(value)
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    for key, val in params:
        if key.endswith("*"):
            extended.setdefault(key[:-1], _decode_ext_value(val))
        else:
            plain.setdefault(key, val)
    plain.update(extended)
    return plain


def _valid_boundary(boundary: bytes) -> bool:
    return (
        0 < len(boundary) <= _MAX_BOUNDARY_LEN
        and all(32 <= b < 127 for b in boundary)
        and boundary[-1:] not in (b" ", b"\t")
    )


def find_boundary(content_type: str | None, first_bytes: bytes) -> bytes | None:
    """Find the multipart boundary of a request body.

    Uses the Content-Type's ``boundary=`` parameter whatever the media type (quoted or not) — the Kore.ai
    sample sends ``application/json; boundary=...`` over a multipart body.  If the header carries several
    boundary parameters (curl appends its own after a user-supplied one) the one the body actually starts
    with is chosen, else the last.  Without a boundary parameter, if the body begins with ``--`` the first
    line minus the leading ``--`` is used.  Otherwise returns None.
    """
    sniffed: bytes | None = None
    if first_bytes.startswith(b"--"):
        eol = first_bytes.find(b"\n", 0, _MAX_BOUNDARY_LEN + _MAX_BOUNDARY_LINE_PADDING)
        if eol >= 0:
            candidate = first_bytes[2:eol].rstrip(b"\r").rstrip(b" \t")
            if _valid_boundary(candidate):
                sniffed = candidate

    candidates: list[bytes] = []
    if content_type:
        _, params = _parse_header_params(content_type)
        for key, val in params:
            if key != "boundary" or not val:
                continue
            try:
                raw = val.encode("latin-1")
            except UnicodeEncodeError:
                raw = val.encode("utf-8")
            if _valid_boundary(raw):
                candidates.append(raw)
    if candidates:
        if sniffed is not None and sniffed in candidates:
            return sniffed
        return candidates[-1]
    return sniffed


# --------------------------------------------------------------------------------------------------------
# Streaming scanner


class _Reader:
    """Buffer over the body iterator, positioned somewhere in the multipart stream.

    ``_buf[_pos:]`` holds bytes received but not yet consumed; it never grows beyond one incoming chunk plus
    a delimiter's worth of bytes (or ``max_header_bytes`` while reading part headers).
    """

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, max_header_bytes: int) -> None:
        self._body = body.__aiter__()
        self._delim = b"\r\n--" + boundary
        self._max_header_bytes = max_header_bytes
        # The leading CRLF lets the first delimiter (which may start the body) be found like any other.
        self._buf = _CRLF
        self._pos = 0
        self._eof = False
        self.current: Part | None = None
        self.part_open = False

    async def _fill(self) -> bool:
        """Append the next non-empty body chunk to the unconsumed buffer; False at end of body."""
        if self._eof:
            return False
        async for chunk in self._body:
            if not chunk:
                continue
            if type(chunk) is not bytes:
                chunk = bytes(chunk)
            rest = self._buf[self._pos :] if self._pos else self._buf
            self._buf = rest + chunk if rest else chunk
            self._pos = 0
            return True
        self._eof = True
        return False

    async def _need(self, n: int) -> None:
        while len(self._buf) - self._pos < n:
            if not await self._fill():
                raise MultipartError("truncated multipart body")

    async def _scan(self) -> bytes | None:
        """Next run of bytes before the delimiter; None once the delimiter has been consumed."""
        delim = self._delim
        dlen = len(delim)
        while True:
            buf = self._buf
            pos = self._pos
            idx = buf.find(delim, pos)
            if idx >= 0:
                self._pos = idx + dlen
                self.part_open = False
                return buf[pos:idx] if idx > pos else None
            # Hold back only a tail that could be the start of a delimiter split across chunks.
            blen = len(buf)
            safe = blen
            k = buf.find(b"\r", max(pos, blen - dlen + 1))
            while k >= 0:
                if delim.startswith(buf[k:]):
                    safe = k
                    break
                k = buf.find(b"\r", k + 1)
            if safe > pos:
                self._pos = safe
                return buf if pos == 0 and safe == blen else buf[pos:safe]
            if not await self._fill():
                raise MultipartError("truncated multipart body")

    async def skip_preamble(self) -> None:
        """Consume everything up to and including the first delimiter."""
        self.part_open = True
        skipped = 0
        while self.part_open:
            try:
                piece = await self._scan()
            except MultipartError:
                raise MultipartError("multipart boundary not found in body") from None
            if piece is not None:
                skipped += len(piece)
                if skipped > self._max_header_bytes:
                    raise MultipartError("multipart boundary not found at start of body")

    async def after_delimiter(self) -> bool:
        """Consume the rest of a delimiter line; True if a part follows, False after the close delimiter."""
        await self._need(2)
        buf, pos = self._buf, self._pos
        if buf[pos : pos + 2] == b"--":
            self._pos = pos + 2
            return False
        while True:
            eol = buf.find(_CRLF, pos)
            if eol >= 0:
                if buf[pos:eol].strip(b" \t"):
                    raise MultipartError("malformed multipart boundary line")
                self._pos = eol + 2
                return True
            if len(buf) - pos > _MAX_BOUNDARY_LINE_PADDING or buf[pos:].strip(b" \t\r"):
                raise MultipartError("malformed multipart boundary line")
            if not await self._fill():
                raise MultipartError("truncated multipart body")
            buf, pos = self._buf, self._pos

    async def read_headers(self) -> list[tuple[str, str]]:
        await self._need(2)
        if self._buf[self._pos : self._pos + 2] == _CRLF:  # no headers at all
            self._pos += 2
            return []
        limit = self._max_header_bytes
        search_from = self._pos
        while True:
            buf, pos = self._buf, self._pos
            end = buf.find(b"\r\n\r\n", search_from)
            if end >= 0:
                if end - pos > limit:
                    break
                self._pos = end + 4
                return _parse_header_block(buf[pos:end])
            if len(buf) - pos > limit + 3:
                break
            search_from = max(pos, len(buf) - 3)
            if not await self._fill():
                raise MultipartError("truncated multipart body")
            search_from -= pos  # _fill rebased the buffer to start at the old _pos
        raise MultipartError(f"multipart part headers too long (limit {limit} bytes)")


def _parse_header_block(block: bytes) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for raw in block.split(_CRLF):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("latin-1")
        if line[:1] in (" ", "\t"):  # obsolete line folding
            if not headers:
                raise MultipartError("malformed multipart part header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name:
            raise MultipartError("malformed multipart part header")
        headers.append((name.lower(), value.strip()))
    return headers


class Part:
    """One part of a multipart form.  Its data must be read before asking ``iter_parts`` for the next part;
    otherwise the rest of it is skipped."""

    __slots__ = ("name", "filename", "content_type", "headers", "_reader", "_claimed")

    def __init__(
        self,
        reader: _Reader,
        name: str,
        filename: str | None,
        content_type: str | None,
        headers: list[tuple[str, str]],
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.headers = headers  # (lower-cased name, value) pairs, in order
        self._reader = reader
        self._claimed = False

    def __repr__(self) -> str:
        return f"Part(name={self.name!r}, filename={self.filename!r}, content_type={self.content_type!r})"

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError(f"multipart part {self.name!r} has already been read")
        if self._reader.current is not self:
            raise RuntimeError(f"multipart part {self.name!r} is no longer current")
        self._claimed = True

    async def _next_piece(self) -> bytes | None:
        reader = self._reader
        if reader.current is not self:
            raise RuntimeError(f"multipart part {self.name!r} is no longer current")
        if not reader.part_open:
            return None
        return await reader._scan()

    async def read_all(self, limit: int) -> bytes:
        """The whole part (meant for small text fields); MultipartError if it exceeds ``limit`` bytes."""
        self._claim()
        out = bytearray()
        while (piece := await self._next_piece()) is not None:
            out += piece
            if len(out) > limit:
                raise MultipartError(f"form field {self.name!r} exceeds {limit} bytes")
        return bytes(out)

    def stream(self) -> AsyncIterator[bytes]:
        """The part's bytes as they arrive (pieces no larger than an incoming chunk plus a delimiter's
        length, never empty).  Can be consumed once."""
        self._claim()
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        while (piece := await self._next_piece()) is not None:
            yield piece

    async def drain(self) -> None:
        """Skip the rest of this part (whether or not reading had started)."""
        self._claimed = True
        while await self._next_piece() is not None:
            pass


async def iter_parts(
    body: AsyncIterator[bytes],
    boundary: bytes,
    *,
    max_header_bytes: int = 16384,
    max_parts: int = 100,
) -> AsyncIterator[Part]:
    """Yield the parts of a multipart body in order, lazily.

    The caller may consume ``part.stream()`` (e.g. hand it to an async storage writer) before asking for
    the next part; if it moves on without consuming, the rest of the part is skipped.  Memory stays bounded
    by the incoming chunk size and ``max_header_bytes`` no matter how large a part is.  A preamble longer
    than ``max_header_bytes`` is rejected, and the epilogue after the close delimiter is not read.
    """
    if isinstance(boundary, str):
        boundary = boundary.encode("latin-1")
    if not _valid_boundary(boundary):
        raise MultipartError("invalid multipart boundary")
    reader = _Reader(body, boundary, max_header_bytes)
    await reader.skip_preamble()
    count = 0
    while await reader.after_delimiter():
        count += 1
        if count > max_parts:
            raise MultipartError(f"too many multipart parts (limit {max_parts})")
        headers = await reader.read_headers()
        disposition = next((v for k, v in headers if k == "content-disposition"), None)
        if disposition is None:
            raise MultipartError("multipart part has no Content-Disposition header")
        params = _disposition_params(disposition)
        name = params.get("name")
        if name is None:
            raise MultipartError("multipart part has no name in its Content-Disposition header")
        content_type = next((v for k, v in headers if k == "content-type"), None)
        part = Part(reader, name, params.get("filename"), content_type or None, headers)
        reader.current = part
        reader.part_open = True
        yield part
        await part.drain()
        reader.current = None
