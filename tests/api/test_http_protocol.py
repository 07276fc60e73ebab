"""The server's HTTP protocol (api/http.py): plain prediction requests answered without ASGI, everything else
through uvicorn in order, and sized responses written once. Driven byte by byte over a recording transport, so
where each request's bytes end is under the test's control."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
import uvicorn
from uvicorn.logging import AccessFormatter
from uvicorn.server import ServerState

from modelharbor.api.hot import HotTable, PlainRoute
from modelharbor.api.http import MAX_FAST_BODY, HarborHttpProtocol, plain_request

ROUTE = re.compile(r"^/v2/echo/(?P<n>[^/]+)$")


class Front(HotTable):
    """Stands in for the application's hot-route table: one plain route that answers from the request it is given
    and says which way it came."""

    def __init__(self):
        super().__init__(fallback=None, services=None)
        self.add(PlainRoute("POST", ROUTE, self.echo, b"POST /v2"))
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def echo(self, _services, route, query, headers, body):
        via = "fast" if isinstance(body, bytes) else "asgi"
        if not isinstance(body, bytes):
            chunks = []
            while True:
                message = await body()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
        self.calls.append(f"{via}:{route['n']}")
        if route["n"] == "slow" and self.gate is not None:
            await self.gate.wait()
        answer = {"n": route["n"], "q": (query or b"").decode(), "body": body.decode()}
        answer["ct"] = headers.get(b"content-type", b"").decode()
        denied = route["n"] == "denied"
        return (
            (401 if denied else 200),
            json.dumps(answer).encode(),
            ([(b"www-authenticate", b"Token")] if denied else []),
        )


TABLE = Front()


class App:
    """What HarborApp is to the protocol: an ASGI app with a ``front``; its ASGI route asks the same table."""

    def __init__(self):
        self.front = Front()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        hit = self.front.match(scope["method"], scope["path"])
        if scope["path"] == "/boom":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            raise RuntimeError("failed after the start")
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await self.front.gate.wait()
            await send({"type": "http.response.body", "body": b"late"})
            return
        extra = []
        if hit is None:
            payload = b'{"other":"%s"}' % scope["path"].encode()
            status = 200
        else:
            status, payload, extra = await self.front.respond(
                hit, scope["query_string"], dict(scope["headers"]), receive
            )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data):
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def answers(self) -> list[tuple[int, dict[str, str], bytes]]:
        """The responses written so far, parsed (status, headers, body)."""
        data, out = b"".join(self.writes), []
        while data:
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
            n = int(headers.get("content-length", len(data)))
            out.append((int(lines[0].split()[1]), headers, data[:n]))
            data = data[n:]
        return out


def post(path: str, body: bytes = b'{"x":1}', extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def connect(app: App):
    config = uvicorn.Config(app, http=HarborHttpProtocol, log_level="warning", timeout_keep_alive=5)
    config.load()
    state = ServerState()
    state.default_headers = [
        (b"date", b"Tue, 01 Dec 2026 12:00:00 GMT"),
        (b"server", b"uvicorn"),
    ]  # as uvicorn's server sets
    proto = HarborHttpProtocol(config=config, server_state=state, app_state={})
    transport = Transport()
    proto.connection_made(transport)
    return proto, transport


async def settle(proto) -> None:
    for _ in range(50):
        await asyncio.sleep(0)
    while proto.tasks:
        await asyncio.sleep(0.001)
    for _ in range(20):
        await asyncio.sleep(0)


def run(coro):
    return asyncio.run(coro)


def test_a_plain_request_is_answered_without_asgi_in_one_write():
    async def main():
        app = App()
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/a?timeout=5"))
        await settle(proto)
        assert app.front.calls == ["fast:a"]
        assert len(t.writes) == 1
        [(status, headers, body)] = t.answers()
        assert status == 200 and json.loads(body) == {
            "n": "a",
            "q": "timeout=5",
            "body": '{"x":1}',
            "ct": "application/json",
        }
        assert headers["content-type"] == "application/json" and headers["content-length"] == str(len(body))
        assert "date" in headers and "server" in headers
        assert proto.timeout_keep_alive_task is not None  # keep-alive timer armed, as uvicorn does
        proto.data_received(post("/v2/echo/b"))
        await settle(proto)
        assert app.front.calls == ["fast:a", "fast:b"] and not t.closed

    run(main())


def test_a_401_carries_the_challenge_on_both_paths():
    async def main():
        app = App()
        proto, t = connect(app)
        raw = post("/v2/echo/denied")
        proto.data_received(raw)
        await settle(proto)
        proto.data_received(raw[:20])
        proto.data_received(raw[20:])
        await settle(proto)
        assert app.front.calls == ["fast:denied", "asgi:denied"]
        fast, asgi = t.answers()
        assert fast[0] == 401 and fast[1]["www-authenticate"] == "Token" and fast[2] == asgi[2]

    run(main())


def test_a_request_split_over_reads_goes_through_uvicorn_with_the_same_answer_in_one_write():
    async def main():
        app = App()
        proto, t = connect(app)
        raw = post("/v2/echo/s", b'{"x":22}')
        proto.data_received(raw[:30])
        proto.data_received(raw[30:])
        await settle(proto)
        assert app.front.calls == ["asgi:s"]
        assert len(t.writes) == 1  # head and body together (OneWriteCycle)
        [(status, headers, body)] = t.answers()
        assert status == 200 and json.loads(body)["body"] == '{"x":22}'
        # the next plain request on the same connection takes the fast path again
        proto.data_received(post("/v2/echo/t"))
        await settle(proto)
        assert app.front.calls == ["asgi:s", "fast:t"]

    run(main())


def test_pipelined_requests_are_answered_in_order_behind_a_slow_one():
    async def main():
        app = App()
        app.front.gate = asyncio.Event()
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/slow") + post("/v2/echo/b") + b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
        proto.data_received(post("/v2/echo/c"))  # arrives while the first is answered
        await asyncio.sleep(0.01)
        assert t.writes == [] and app.front.calls == ["fast:slow"]
        app.front.gate.set()
        await settle(proto)
        answers = t.answers()
        assert [json.loads(b).get("n", json.loads(b).get("other")) for _, _, b in answers] == [
            "slow",
            "b",
            "/other",
            "c",
        ]
        # GET /other went to uvicorn's parser, which then read c as well: answered by the ASGI route, in order
        assert app.front.calls == ["fast:slow", "fast:b", "asgi:c"]

    run(main())


def test_connection_close_and_http_1_0_go_through_uvicorn_which_closes():
    async def main():
        app = App()
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/a", extra="Connection: close\r\n"))
        await settle(proto)
        assert app.front.calls == ["asgi:a"] and t.closed and t.answers()[0][0] == 200

    run(main())


def test_shutdown_while_answering_writes_the_answer_then_closes():
    async def main():
        app = App()
        app.front.gate = asyncio.Event()
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/slow"))
        await asyncio.sleep(0.01)
        proto.shutdown()
        assert not t.closed
        app.front.gate.set()
        await settle(proto)
        [(status, headers, _)] = t.answers()
        assert status == 200 and headers["connection"] == "close" and t.closed

    run(main())


def test_a_lost_connection_gets_nothing_written_and_no_error():
    async def main():
        app = App()
        app.front.gate = asyncio.Event()
        proto, t = connect(app)
        proto.data_received(post("/v2/echo/slow") + post("/v2/echo/b"))
        await asyncio.sleep(0.01)
        t.closed = True
        proto.connection_lost(None)
        app.front.gate.set()
        await settle(proto)
        assert t.writes == [] and app.front.calls == ["fast:slow"]

    run(main())


def test_an_app_failing_after_its_start_gets_a_clean_500():
    async def main():
        proto, t = connect(App())
        proto.data_received(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        await settle(proto)
        [(status, _, body)] = t.answers()
        assert status == 500 and body == b"Internal Server Error"

    run(main())


def test_a_response_without_a_length_sends_its_head_at_once():
    async def main():
        app = App()
        app.front.gate = asyncio.Event()
        proto, t = connect(app)
        proto.data_received(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.sleep(0.01)
        assert len(t.writes) == 1 and t.writes[0].startswith(b"HTTP/1.1 200")  # not held back
        app.front.gate.set()
        await settle(proto)
        assert b"late" in b"".join(t.writes[1:])

    run(main())


def _req(head: bytes, body: bytes = b"{}") -> bytes:
    return head + b"\r\n\r\n" + body


PLAIN = b"POST /v2/echo/a HTTP/1.1\r\nHost: t\r\nContent-Length: 2"


@pytest.mark.parametrize(
    "data",
    [
        _req(PLAIN.replace(b"HTTP/1.1", b"HTTP/1.0")),
        _req(PLAIN.replace(b"POST", b"PUT")),
        _req(PLAIN.replace(b"/v2/echo/a", b"/v2/echo/a/more")),
        _req(PLAIN.replace(b"/v2/echo/a", b"/v2/echo/%61")),
        _req(PLAIN.replace(b"/v2/echo/a", b"/v2/echo/a#x")),
        _req(PLAIN.replace(b"/v2/echo/a", "/v2/echo/é".encode())),
        _req(PLAIN + b"\r\nTransfer-Encoding: chunked"),
        _req(PLAIN + b"\r\nExpect: 100-continue"),
        _req(PLAIN + b"\r\nUpgrade: websocket"),
        _req(PLAIN + b"\r\nConnection: close"),
        _req(PLAIN + b"\r\nHost: again"),
        _req(PLAIN + b"\r\nContent-Length: 2"),
        _req(PLAIN + b"\r\nBad Name: x"),
        _req(PLAIN + b"\r\nX-Ctl: a\x01b"),
        _req(PLAIN + b"\r\nX-Bare-LF: a\nb"),
        _req(PLAIN + b"\r\nno-colon"),
        _req(PLAIN.replace(b"Content-Length: 2", b"Content-Length: -2")),
        _req(PLAIN.replace(b"Content-Length: 2", b"Content-Length: 2x")),
        _req(PLAIN.replace(b"Content-Length: 2", b"X-Other: 2")),
        _req(PLAIN.replace(b"Content-Length: 2", b"Content-Length: %d" % (MAX_FAST_BODY + 1))),
        _req(PLAIN.replace(b"Content-Length: 2", b"Content-Length: 3")),  # body not all here yet
        PLAIN + b"\r\n",  # head not all here yet
        _req(b"POST  /v2/echo/a HTTP/1.1\r\nContent-Length: 2"),
    ],
)
def test_anything_less_plain_is_left_to_uvicorn(data):
    assert plain_request(data, TABLE.match) is None


def test_plain_request_cuts_out_one_request_and_keeps_the_rest():
    data = _req(PLAIN + b"\r\nAuthorization:  Token k \r\nConnection: Keep-Alive", b"{}") + b"GET / HTTP/1.1\r\n"
    (_, route), query, headers, body, rest = plain_request(data, TABLE.match)
    assert route["n"] == "a" and query == b"" and body == b"{}" and rest == b"GET / HTTP/1.1\r\n"
    assert headers[b"authorization"] == b"Token k" and headers[b"host"] == b"t"


def test_the_fast_path_is_off_when_a_concurrency_limit_is_set():
    app = App()
    config = uvicorn.Config(app, http=HarborHttpProtocol, limit_concurrency=10)
    config.load()

    async def main():
        proto = HarborHttpProtocol(config=config, server_state=ServerState(), app_state={})
        assert proto.front is None

    run(main())


def test_the_fast_path_writes_uvicorns_access_line_when_access_lines_are_on():
    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines: list[str] = []

        def emit(self, record):
            self.lines.append(self.format(record))

    async def main():
        app = App()
        config = uvicorn.Config(app, http=HarborHttpProtocol, log_level="info")
        config.load()
        keep = Keep()
        keep.setFormatter(AccessFormatter("%(client_addr)s - %(request_line)s %(status_code)s", use_colors=False))
        logging.getLogger("uvicorn.access").addHandler(keep)
        try:
            proto = HarborHttpProtocol(config=config, server_state=ServerState(), app_state={})
            proto.connection_made(Transport())
            proto.data_received(post("/v2/echo/a"))
            await settle(proto)
            proto.data_received(post("/v2/echo/b?timeout=3"))
            await settle(proto)
        finally:
            logging.getLogger("uvicorn.access").removeHandler(keep)
        assert app.front.calls == ["fast:a", "fast:b"]
        assert keep.lines == [
            "127.0.0.1:50000 - POST /v2/echo/a HTTP/1.1 200 OK",  # uvicorn's formatter takes the fields apart
            "127.0.0.1:50000 - POST /v2/echo/b?timeout=3 HTTP/1.1 200 OK",
        ]

    run(main())
