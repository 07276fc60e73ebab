"""Files: single streamed uploads, ranges, signed links, deletion."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from modelharbor.core.files import ByteRange, extension_of, parse_range
from modelharbor.domain.errors import InvalidInput, LinkExpired, LinkInvalid, NotFound, RangeNotSatisfiable, TooLarge


async def agen(data: bytes, piece: int = 7):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def upload(services, principal, data: bytes, name="w.bin", **kw):
    return asyncio.run(services.files.upload(principal, name=name, data=agen(data), **kw))


def read(services, principal, file_id, rng=None, link=None):
    async def go():
        rec, r, stream = await services.files.open(principal, file_id, rng, link=link)
        return rec, r, b"".join([p async for p in stream])

    return asyncio.run(go())


def test_upload_records_size_hash_type(services, admin):
    rec = upload(services, admin, b"hello", name="Weights.SafeTensors", context="ctx")
    assert (rec.size, rec.sha256, rec.extension, rec.context) == (
        5,
        hashlib.sha256(b"hello").hexdigest(),
        "safetensors",
        "ctx",
    )
    assert len(rec.id) == 24
    assert services.files.get(admin, rec.id) == rec


def test_upload_limit_keeps_nothing(services, admin):
    with pytest.raises(TooLarge):
        upload(services, admin, b"x" * 11, max_size=10)
    assert services.files.list(admin).total == 0
    assert [p for p in services.store.root.rglob("*") if p.is_file()] == []


def test_deferred_context_failure_keeps_nothing(services, admin):
    async def no_context():
        raise InvalidInput("form field 'fileContext' is required")

    with pytest.raises(InvalidInput):
        upload(services, admin, b"abc", context=no_context)
    assert services.files.list(admin).total == 0
    assert [p for p in services.store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, None),
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=2-", ByteRange(2, 10)),
        ("bytes=-3", ByteRange(7, 10)),
        ("bytes=-30", ByteRange(0, 10)),
        ("bytes=5-100", ByteRange(5, 10)),
        ("bytes=0-1,4-5", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=1"])
def test_parse_range_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 10)


def test_ranged_read_across_segments(services, admin):
    data = bytes(range(256)) * 40
    s = services.uploads.start(admin, name="seg.bin", total_chunks=4, size=len(data))
    for n in range(4):
        asyncio.run(services.uploads.put_chunk(admin, s.id, agen(data[n * 2560 : (n + 1) * 2560], 1000), number=n))
    fid = asyncio.run(services.uploads.complete(admin, s.id)).file.id
    for lo, hi in [(0, 1), (2550, 2570), (100, 9000), (9000, 10240), (0, 10240)]:
        _, r, body = read(services, admin, fid, f"bytes={lo}-{hi - 1}")
        assert body == data[lo:hi] and r == ByteRange(lo, hi)


def test_signed_link(services, admin):
    rec = upload(services, admin, b"linked bytes")
    _, link = services.files.sign_link(admin, rec.id, 60)
    got, _, body = read(services, None, rec.id, link=(str(link.expires), link.nonce, link.mac, ""))
    assert body == b"linked bytes" and got.id == rec.id
    with pytest.raises(LinkInvalid):
        read(services, None, rec.id, link=(str(link.expires + 1), link.nonce, link.mac, ""))
    with pytest.raises(LinkInvalid):
        read(services, None, rec.id, link=(str(link.expires), link.nonce, link.mac, "other"))
    with pytest.raises(LinkInvalid):
        read(services, None, rec.id, link=(str(link.expires), link.nonce + "1", link.mac, ""))
    other = upload(services, admin, b"another")
    with pytest.raises(LinkInvalid):
        read(services, None, other.id, link=(str(link.expires), link.nonce, link.mac, ""))
    old = services.signer.sign(rec.id, 60, now=1_000_000)
    with pytest.raises(LinkExpired):
        read(services, None, rec.id, link=(str(old.expires), old.nonce, old.mac, ""))


def test_link_after_delete_is_404(services, admin):
    rec = upload(services, admin, b"gone soon")
    _, link = services.files.sign_link(admin, rec.id, 60)
    asyncio.run(services.files.delete(admin, rec.id))
    with pytest.raises(NotFound):
        read(services, None, rec.id, link=(str(link.expires), link.nonce, link.mac, ""))


def test_list_paging_and_validation(services, admin):
    for i in range(5):
        upload(services, admin, f"file {i}".encode(), name=f"f{i}.txt")
    page = services.files.list(admin, limit=2, offset=1)
    assert page.total == 5 and len(page.items) == 2
    with pytest.raises(InvalidInput):
        services.files.list(admin, limit=0)


def test_names_validated(services, admin):
    for bad in ["", "   ", "a\x00b", "x" * 1025]:
        with pytest.raises(InvalidInput):
            upload(services, admin, b"a", name=bad)


@pytest.mark.parametrize(
    "name,ext", [("a.tar.gz", "tar.gz"), ("A.TGZ", "tgz"), ("noext", ""), (".hidden", ""), ("x.y.Bin", "bin")]
)
def test_extension_of(name, ext):
    assert extension_of(name) == ext


def test_an_upload_cancelled_while_it_commits_keeps_the_bytes_of_what_it_committed(services, admin):
    """The commit runs in a thread that a cancelled caller cannot stop: when it commits, the file keeps its bytes
    (no row without bytes); the caller still sees the cancellation."""
    import threading
    import time

    files = services.files
    real = files._commit_fresh
    entered = threading.Event()

    def slow_record(*a, **kw):
        entered.set()
        time.sleep(0.4)
        return real(*a, **kw)

    files._commit_fresh = slow_record
    data = b"committed while cancelled " * 1000

    async def go():
        task = asyncio.create_task(files.upload(admin, name="c.bin", data=agen(data, 4096)))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
    finally:
        files._commit_fresh = real
    found = [r for r in files.list(admin, limit=1000).items if r.name == "c.bin"]
    assert len(found) == 1
    assert read(services, admin, found[0].id)[2] == data


def test_an_upload_limited_to_some_extensions_refuses_another_before_reading(services, admin):
    from modelharbor.core.files.purposes import MEDIA_EXTENSIONS
    from modelharbor.domain.errors import UnsupportedType

    read_any = []

    async def data():
        read_any.append(True)
        yield b"MZ"

    with pytest.raises(UnsupportedType) as refused:
        asyncio.run(services.files.upload(admin, name="a.exe", data=data(), file_extensions=MEDIA_EXTENSIONS))
    assert refused.value.code == "UNSUPPORTED_FILE_TYPE"
    assert str(refused.value).startswith("file type 'exe' is not supported; allowed: gif, jpeg")
    assert read_any == [] and services.files.list(admin).total == 0
    rec = upload(services, admin, b"ID3", name="a.mp3", file_extensions=MEDIA_EXTENSIONS)
    assert rec.extension == "mp3"
