"""Tests for the streaming multipart reader (sync tests driving async code with asyncio.run)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from modelharbor.api.multipart import MultipartError, Part, find_boundary, iter_parts

BOUNDARY = b"XyZ-boundary-42"

# Data full of near-misses for the delimiter "\r\n--" + BOUNDARY.
TRICKY = b"\r\n--XyZ-boundary-4\r\n-" + b"\r" * 5 + b"--XyZ-boundary-42" + b"\r\n--XyZ-boundary-4" + b"\n--" + b"\r\n"

# Captured from `curl -H 'Content-Type: application/json' -F chunkNumber=3 -F "file=@my model é.tar"
# -F fileContext=bulkImport` (curl 7.88.1) — note curl's "attachment" disposition in this mode.
CURL_CONTENT_TYPE = "application/json; boundary=------------------------92535d4374fda23e"
CURL_BODY = (
    b"--------------------------92535d4374fda23e\r\n"
    b'Content-Disposition: attachment; name="chunkNumber"\r\n\r\n'
    b"3\r\n"
    b"--------------------------92535d4374fda23e\r\n"
    b'Content-Disposition: attachment; name="file"; filename="my model \xc3\xa9.tar"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b"hello tar\r\n--not-a-boundary\r\n\r\n"
    b"--------------------------92535d4374fda23e\r\n"
    b'Content-Disposition: attachment; name="fileContext"\r\n\r\n'
    b"bulkImport\r\n"
    b"--------------------------92535d4374fda23e--\r\n"
)

# Captured from curl given a Postman-style hard-coded boundary: curl appends its own real one.
CURL_DOUBLE_CONTENT_TYPE = (
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW; "
    "boundary=------------------------9e3d53343e6f9494"
)
CURL_DOUBLE_BODY = (
    b"--------------------------9e3d53343e6f9494\r\n"
    b'Content-Disposition: form-data; name="chunkNumber"\r\n\r\n'
    b"3\r\n"
    b"--------------------------9e3d53343e6f9494--\r\n"
)


async def _agen(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def _random_split(body: bytes, rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while i < len(body):
        n = rng.choice([0, 1, 2, 3, rng.randint(1, 40), rng.randint(1, 400)])
        out.append(body[i : i + n])
        i += n
    return out


def _parse(chunks: Iterable[bytes], boundary: bytes = BOUNDARY, **kw) -> list[tuple]:
    """Parse fully; every part read via stream(). Returns (name, filename, content_type, data) tuples."""

    async def run() -> list[tuple]:
        result = []
        async for part in iter_parts(_agen(chunks), boundary, **kw):
            pieces = [piece async for piece in part.stream()]
            assert all(isinstance(p, bytes) and p for p in pieces)
            result.append((part.name, part.filename, part.content_type, b"".join(pieces)))
        return result

    return asyncio.run(run())


def _httpx_body(files, data=None, boundary: bytes = BOUNDARY) -> tuple[str, bytes]:
    req = httpx.Request(
        "POST",
        "http://x",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
        files=files,
        data=data,
    )
    return req.headers["content-type"], req.read()


def _sample_body() -> tuple[bytes, list[tuple]]:
    file_data = bytes(range(256)) * 8 + TRICKY + b"tail\r"
    _, body = _httpx_body(
        data={"chunkNumber": "3", "fileContext": "bulkImport"},
        files=[
            ("file", ("a.tar", file_data, "application/x-tar")),
            ("totalChunks", (None, "7")),
            ("empty", ("e.bin", b"", "application/octet-stream")),
        ],
    )
    expected = [
        ("chunkNumber", None, None, b"3"),
        ("fileContext", None, None, b"bulkImport"),
        ("file", "a.tar", "application/x-tar", file_data),
        ("totalChunks", None, None, b"7"),
        ("empty", "e.bin", "application/octet-stream", b""),
    ]
    return body, expected


def _hand_body(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY, preamble=b"", epilogue=b"") -> bytes:
    """Build a body from (raw header block, data) pairs."""
    out = preamble
    for headers, data in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--" + epilogue


# ------------------------------------------------------------------------------------------------ encoders


def test_httpx_body_with_fields_before_and_after_file():
    body, expected = _sample_body()
    assert _parse([body]) == expected


def test_httpx_generated_boundary_via_find_boundary():
    data = b"\x00\r\n" * 1000
    req = httpx.Request("POST", "http://x", files={"file": ("a.tar", data)}, data={"chunkNumber": "3"})
    body = req.read()
    boundary = find_boundary(req.headers["content-type"], body[:100])
    assert boundary is not None and body.startswith(b"--" + boundary + b"\r\n")
    assert _parse(_split(body, 7), boundary) == [
        ("chunkNumber", None, None, b"3"),
        ("file", "a.tar", "application/x-tar", data),
    ]


def test_curl_body_with_application_json_content_type():
    boundary = find_boundary(CURL_CONTENT_TYPE, CURL_BODY[:64])
    assert boundary == b"------------------------92535d4374fda23e"
    assert _parse([CURL_BODY], boundary) == [
        ("chunkNumber", None, None, b"3"),
        ("file", "my model é.tar", "application/octet-stream", b"hello tar\r\n--not-a-boundary\r\n"),
        ("fileContext", None, None, b"bulkImport"),
    ]


def test_curl_duplicate_boundary_parameters_pick_the_real_one():
    real = b"------------------------9e3d53343e6f9494"
    assert find_boundary(CURL_DOUBLE_CONTENT_TYPE, CURL_DOUBLE_BODY) == real
    # Without the body to check against, the last (curl's own) parameter wins.
    assert find_boundary(CURL_DOUBLE_CONTENT_TYPE, b"") == real
    boundary = find_boundary(CURL_DOUBLE_CONTENT_TYPE, CURL_DOUBLE_BODY)
    assert _parse([CURL_DOUBLE_BODY], boundary) == [("chunkNumber", None, None, b"3")]


# ------------------------------------------------------------------------------------------------ splits


@pytest.mark.parametrize("size", range(1, 18))
def test_every_split_size_gives_identical_results(size):
    body, expected = _sample_body()
    assert _parse(_split(body, size)) == expected
    curl = _parse(_split(CURL_BODY, size), b"------------------------92535d4374fda23e")
    assert curl == _parse([CURL_BODY], b"------------------------92535d4374fda23e")


def test_random_splits_give_identical_results():
    body, expected = _sample_body()
    rng = random.Random(1234)
    for _ in range(300):
        assert _parse(_random_split(body, rng)) == expected


def test_non_bytes_chunks_are_accepted():
    body, expected = _sample_body()
    chunks = [bytearray(c) if i % 2 else memoryview(c) for i, c in enumerate(_split(body, 11))]
    assert _parse(chunks) == expected


# ------------------------------------------------------------------------------------------------ big file


def test_large_file_streams_in_bounded_pieces_and_memory():
    size = 64 * 1024 * 1024
    chunk = 64 * 1024
    head = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="chunkNumber"\r\n\r\n1\r\n'
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.tar"\r\n'
        b"Content-Type: application/x-tar\r\n\r\n"
    )
    tail = b"\r\n--" + BOUNDARY + b"\r\n" + b'Content-Disposition: form-data; name="after"\r\n\r\nok\r\n'
    tail += b"--" + BOUNDARY + b"--\r\n"
    expected_sha = hashlib.sha256()
    produced = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced
        rng = random.Random(99)
        yield head[:10]
        # Odd offset so that chunk edges never line up with the part's start.
        pending = head[10:]
        remaining = size
        while remaining:
            n = min(chunk - len(pending), remaining)
            data = rng.randbytes(n)
            if remaining == size:
                data = TRICKY + data[len(TRICKY) :]
            expected_sha.update(data)
            remaining -= n
            produced += n
            yield pending + data
            pending = b""
        yield tail

    async def run():
        fields = {}
        got = hashlib.sha256()
        total = 0
        biggest = 0
        pieces = 0
        async for part in iter_parts(body(), BOUNDARY):
            if part.filename is None:
                fields[part.name] = await part.read_all(100)
                continue
            assert (part.name, part.filename, part.content_type) == ("file", "big.tar", "application/x-tar")
            async for piece in part.stream():
                # Streaming, not buffering: the producer is never far ahead of us.
                assert produced - total - len(piece) <= 2 * chunk
                pieces += 1
                biggest = max(biggest, len(piece))
                total += len(piece)
                got.update(piece)
        return fields, total, biggest, pieces, got.hexdigest()

    tracemalloc.start()
    try:
        fields, total, biggest, pieces, digest = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fields == {"chunkNumber": b"1", "after": b"ok"}
    assert total == size
    assert digest == expected_sha.hexdigest()
    assert biggest <= chunk + len(BOUNDARY) + 4
    assert pieces >= size // chunk
    assert peak < 4 * 1024 * 1024, peak


# ------------------------------------------------------------------------------------------------ boundary


@pytest.mark.parametrize(
    ("content_type", "first", "expected"),
    [
        ("multipart/form-data; boundary=abc", b"", b"abc"),
        ("application/json; boundary=----x", b"", b"----x"),
        ('multipart/form-data; boundary="a b;c=d"; charset=utf-8', b"", b"a b;c=d"),
        ("Multipart/Form-Data;  BOUNDARY = abc ; charset=utf-8", b"", b"abc"),
        ("multipart/form-data; boundary=abc", b"--other\r\n", b"abc"),
        (None, b"--sniffed-42\r\nContent-Disposition: form-data", b"sniffed-42"),
        ("application/octet-stream", b"--sniffed\nContent-Disposition: form-data", b"sniffed"),
        ("multipart/form-data; boundary=", b"--sniffed \t\r\n", b"sniffed"),
        (None, b"hello world", None),
        ("application/json", b'{"a": 1}', None),
        (None, b"", None),
        (None, b"--no-line-end-yet", None),
        (None, b"--\r\n", None),
        ("", b"\r\n--late\r\n", None),
    ],
)
def test_find_boundary(content_type, first, expected):
    assert find_boundary(content_type, first) == expected


# ------------------------------------------------------------------------------------------------ headers


def test_filename_with_spaces_and_unicode():
    name = "my model ü ✓ (final).tar"
    _, body = _httpx_body(files={"file": (name, b"data")})
    assert _parse([body]) == [("file", name, "application/x-tar", b"data")]


def test_filename_star_and_escapes():
    body = _hand_body(
        (
            b'Content-Disposition: form-data; name="f1"; filename="fallback.tar"; '
            b"filename*=UTF-8''na%C3%AFve%20%E2%9C%93.tar",
            b"1",
        ),
        (b"Content-Disposition: form-data; name=\"f2\"; filename*=utf-8'en'%E2%82%AC.bin", b"2"),
        (b'content-disposition: form-data; filename="a\\"b\\\\c.tar"; name=f3', b"3"),
        (b'Content-Disposition: form-data; name="f4"; filename="C:\\Users\\x\\m.tar"', b"4"),
        (b'Content-Disposition: form-data; name="f5"; filename=""', b"5"),
        (b'Content-Disposition: form-data; name="f6";\r\n\tfilename="folded.txt"', b"6"),
    )
    assert [(n, f) for n, f, _, _ in _parse([body])] == [
        ("f1", "naïve ✓.tar"),
        ("f2", "€.bin"),
        ("f3", 'a"b\\c.tar'),
        ("f4", "C:\\Users\\x\\m.tar"),
        ("f5", ""),
        ("f6", "folded.txt"),
    ]


def test_plain_field_has_no_filename_or_content_type():
    _, body = _httpx_body(files=[("chunkNumber", (None, "3"))])
    [(name, filename, content_type, data)] = _parse([body])
    assert (name, filename, content_type, data) == ("chunkNumber", None, None, b"3")


def test_preamble_epilogue_and_transport_padding():
    body = (
        b"This is the preamble.  It is to be ignored.\r\n"
        b"--" + BOUNDARY + b"  \t\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\nA\r\n'
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="b"\r\n\r\n\r\n'
        b"--" + BOUNDARY + b"--\r\nThis is the epilogue. --" + BOUNDARY + b"\r\nnot a part"
    )
    for size in (1, 2, 3, 5, len(body)):
        assert _parse(_split(body, size)) == [("a", None, None, b"A"), ("b", None, None, b"")]


def test_header_too_long():
    body = _hand_body((b'Content-Disposition: form-data; name="a"\r\nX-Junk: ' + b"j" * 20000, b"x"))
    for chunks in ([body], _split(body, 1), _split(body, 4096)):
        with pytest.raises(MultipartError, match="headers too long"):
            _parse(chunks)
    # The limit is configurable and exact.
    headers = b'Content-Disposition: form-data; name="a"'
    ok = _hand_body((headers, b"x"))
    assert _parse(_split(ok, 3), max_header_bytes=len(headers)) == [("a", None, None, b"x")]
    with pytest.raises(MultipartError, match="headers too long"):
        _parse(_split(ok, 3), max_header_bytes=len(headers) - 1)


def test_too_many_parts():
    fields = [(b'Content-Disposition: form-data; name="f%d"' % i, b"v") for i in range(4)]
    assert len(_parse([_hand_body(*fields[:3])], max_parts=3)) == 3
    with pytest.raises(MultipartError, match="too many"):
        _parse([_hand_body(*fields)], max_parts=3)
    with pytest.raises(MultipartError, match="too many"):
        _parse([_hand_body(*[(b'Content-Disposition: form-data; name="x"', b"")] * 101)])


def test_truncated_body_at_every_position():
    body, _ = _sample_body()
    assert body.endswith(b"--" + BOUNDARY + b"--\r\n")
    for cut in range(len(body) - 2):
        with pytest.raises(MultipartError):
            _parse(_split(body[:cut], 5))
    # Cut in the middle of a part's data: the specific message.
    with pytest.raises(MultipartError, match="truncated multipart body"):
        _parse([body[: len(body) // 2]])
    assert len(_parse([body[:-2]])) == 5  # the closing CRLF is optional


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"this is not multipart at all",
        b'{"chunkNumber": 3}',
        b"--" + BOUNDARY,
        b"--" + BOUNDARY + b"garbage\r\n",
        b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\ndata\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\n: empty name\r\n\r\ndata\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\ndata\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\n\r\ndata\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\ndata\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name*=bogus\r\n\r\nd\r\n--" + BOUNDARY,
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name*=nope''%FF\r\n\r\nd\r\n--" + BOUNDARY,
        b"x" * 100_000 + b"\r\n--" + BOUNDARY + b"\r\n",  # preamble longer than max_header_bytes
        bytes(random.Random(5).randbytes(50_000)),
    ],
)
def test_garbage_raises_multipart_error(body):
    with pytest.raises(MultipartError):
        _parse(_split(body, 1000) if body else [])


@pytest.mark.parametrize("boundary", [b"", b"a\r\nb", b"x" * 300, "bad\nboundary"])
def test_invalid_boundary_argument(boundary):
    with pytest.raises(MultipartError, match="invalid multipart boundary"):
        _parse([b"--x\r\n"], boundary)


def test_fuzzed_bodies_only_raise_multipart_error():
    body, _ = _sample_body()
    rng = random.Random(7)
    for _ in range(1500):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(mutated))
            op = rng.randrange(3)
            if op == 0:
                mutated[pos] = rng.randrange(256)
            elif op == 1:
                del mutated[pos : pos + rng.randint(1, 20)]
            else:
                mutated[pos:pos] = rng.choice([b"\r", b"\n", b"\r\n", b"--", b'"', b";", b"\xff"])
        with contextlib.suppress(MultipartError):
            _parse(_random_split(bytes(mutated), rng))


# ------------------------------------------------------------------------------------------------ laziness


def test_skipping_a_part_without_reading_it():
    body, expected = _sample_body()

    async def run():
        got = []
        async for part in iter_parts(_agen(_split(body, 3)), BOUNDARY):
            if part.name == "file":
                continue  # never touched
            got.append((part.name, await part.read_all(1000)))
        return got

    assert asyncio.run(run()) == [(n, d) for n, _, _, d in expected if n != "file"]


def test_partially_read_and_drained_parts():
    body, expected = _sample_body()

    async def run():
        got = []
        async for part in iter_parts(_agen(_split(body, 64)), BOUNDARY):
            if part.name == "file":
                stream = part.stream()
                first = await stream.__anext__()
                assert expected[2][3].startswith(first)
                continue  # abandon the half-read stream
            if part.name == "fileContext":
                await part.drain()
                await part.drain()  # idempotent
                with pytest.raises(RuntimeError):
                    await part.read_all(10)  # drained parts cannot be read any more
                continue
            got.append((part.name, await part.read_all(1000)))
        return got

    assert asyncio.run(run()) == [("chunkNumber", b"3"), ("totalChunks", b"7"), ("empty", b"")]


def test_misuse_raises_runtime_error():
    body, _ = _sample_body()

    async def run():
        parts = iter_parts(_agen([body]), BOUNDARY)
        first: Part = await parts.__anext__()
        assert await first.read_all(10) == b"3"
        with pytest.raises(RuntimeError):
            first.stream()  # already consumed
        second = await parts.__anext__()
        with pytest.raises(RuntimeError):
            await first.read_all(10)  # no longer current
        stream = second.stream()
        with pytest.raises(RuntimeError):
            second.stream()  # once only
        assert b"".join([p async for p in stream]) == b"bulkImport"

    asyncio.run(run())


def test_read_all_limit():
    _, body = _httpx_body(files=[("chunkNumber", (None, "1234567"))])
    with pytest.raises(MultipartError, match="exceeds 6 bytes"):

        async def run():
            async for part in iter_parts(_agen(_split(body, 2)), BOUNDARY):
                await part.read_all(6)

        asyncio.run(run())


def test_parts_are_yielded_lazily():
    body, _ = _sample_body()
    chunks = _split(body, 16)
    pulled = 0

    async def counting() -> AsyncIterator[bytes]:
        nonlocal pulled
        for c in chunks:
            pulled += 1
            yield c

    async def run():
        parts = iter_parts(counting(), BOUNDARY)
        part = await parts.__anext__()
        assert part.name == "chunkNumber"
        assert pulled < 10
        async for _ in parts:
            pass
        assert pulled == len(chunks)

    asyncio.run(run())
