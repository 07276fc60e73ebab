"""``blobs.hashed_aside``: a body passed through unchanged while its hashes are fed in a hashing thread."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading

import pytest

from modelharbor.core.files import blobs


async def _pieces(data: bytes, sizes: list[int], fail_at: int | None = None):
    at = 0
    for i, n in enumerate(sizes):
        if i == fail_at:
            raise ConnectionError("cut off")
        yield data[at : at + n]
        at += n


@pytest.mark.parametrize("total", [0, 1, blobs.HASH_BATCH - 1, blobs.HASH_BATCH, 3 * blobs.HASH_BATCH + 12345])
def test_every_byte_is_passed_on_and_hashed_in_order(total):
    rnd = random.Random(total)
    data = rnd.randbytes(total)
    sizes, left = [], total
    while left:
        n = min(left, rnd.choice([1, 17, 4096, 65536, 300_000]))
        sizes.append(n)
        left -= n
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)

    async def run() -> bytes:
        return b"".join([p async for p in blobs.hashed_aside(_pieces(data, sizes), sha, md5)])

    assert asyncio.run(run()) == data
    assert sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()


def test_full_batches_are_hashed_off_the_event_loop_thread():
    seen: set[str] = set()

    class Spy:
        def update(self, piece: bytes) -> None:
            seen.add(threading.current_thread().name)

    async def run() -> None:
        async for _ in blobs.hashed_aside(_pieces(b"x" * (4 * blobs.HASH_BATCH), [65536] * 64), Spy()):
            pass

    asyncio.run(run())
    assert any(name.startswith("modelharbor-hash") for name in seen), seen


def test_a_body_that_fails_raises_through():
    async def run() -> None:
        async for _ in blobs.hashed_aside(_pieces(b"y" * 10 * 65536, [65536] * 10, fail_at=5), hashlib.sha256()):
            pass

    with pytest.raises(ConnectionError, match="cut off"):
        asyncio.run(run())
