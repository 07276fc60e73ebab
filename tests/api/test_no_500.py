"""Garbage in, 4xx out: every route of every mounted API, hit with malformed ids, bodies and headers, never
answers 5xx — and nothing already stored is lost."""

from __future__ import annotations

import itertools

import pytest
from starlette.routing import Mount

from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.slow  # a long module: it starts first under make test's workers (tests/conftest.py)

IDS = ["x", "0", "-1", "..%2F..%2Fetc", "%00", "ds-", "cm-", "f-", "f-zz.wav", "a" * 300, "9" * 40]
BODIES = [
    (None, None),
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b'{"fileContext": 1, "totalChunks": "many", "fileSize": 1e999, "name": null}', "application/json"),
    (b'{"name": "a", "total_chunks": 99999999999999999999999}', "application/json"),
    (b"\xff\xfe garbage", "application/octet-stream"),
    (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nxx', "application/json; boundary=b"),
    (b"not multipart at all", "multipart/form-data"),
]
HEADERS = [
    {"authorization": f"Bearer {ADMIN_KEY}", "x-api-key": ADMIN_KEY},
    {"authorization": "Bearer", "x-api-key": ""},
    {"authorization": "Basic ???", "x-api-key": "k" * 600, "range": "bytes=zz"},
]


def _routes(app):
    for r in app.routes:
        if isinstance(r, Mount) and hasattr(r.app, "openapi"):
            r.app.openapi_schema = None
            for path, ops in r.app.openapi()["paths"].items():
                for method in ops:
                    yield method.upper(), r.path + path


def _fill(path: str, value: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", value, path)


def test_no_route_answers_5xx_to_garbage(client, services, admin):
    import asyncio

    async def one():
        yield b"precious bytes"

    kept = asyncio.run(services.files.upload(admin, name="keep.bin", data=one()))
    failures = []
    routes = sorted(set(_routes(client.app)))
    assert len(routes) > 20
    cases = [(i, b) for i in IDS for b in BODIES[:2]] + [(IDS[0], b) for b in BODIES[2:]]
    # every id with the caller's credentials; the bad credentials (and the bad range) with every body but one id:
    # what they reach is the authentication, ahead of any id lookup (this test's time grows with every route)
    for (method, path), (ident, (body, ctype)) in itertools.product(routes, cases):
        if ident != IDS[0] and "{" not in path:
            continue  # no id in this path: the same request as with the first id
        for headers in HEADERS if ident == IDS[0] else HEADERS[:1]:
            h = dict(headers)
            if ctype:
                h["content-type"] = ctype
            url = _fill(path, ident) + "?chunkNumber=zz&limit=-5&offset=x&e=1&n=&s=%%%&expires=x&signature=zz"
            r = client.request(method, url, content=body, headers=h)
            if r.status_code >= 500 and r.status_code != 501:
                failures.append((method, url[:80], ctype, r.status_code, r.text[:200]))
    assert not failures, failures[:10]
    _, _, stream = asyncio.run(services.files.open(admin, kept.id))

    async def drain():
        return b"".join([p async for p in stream])

    assert asyncio.run(drain()) == b"precious bytes"
