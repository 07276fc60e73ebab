"""The HTTP/1.1 protocol ``modelharbor serve`` runs: uvicorn's httptools protocol, with two changes for speed.

**Hot routes without ASGI.** The application's front is its hot-route table (``api/hot.py``, ``app.front``): the
plain routes the dialects declare hot (a prediction). A request to one of them that arrives whole in one read and
is as plain as HTTP/1.1 gets — it starts with one of the table's ``heads``, the table's ``match`` knows its method and
path, a ``content-length`` of at most 1 MiB, no ``transfer-encoding``, ``expect``, ``upgrade`` or ``connection``
other than keep-alive, no repeated or malformed header, no ``%`` in the path, at a request boundary of the
connection — is cut out of the bytes here and answered by the table's ``respond`` directly: no parser callbacks,
scope, ASGI messages or cycle, one write carrying the endpoint's status, JSON and extra headers. It is the same
endpoint with the same answers as the ASGI route; anything else on the connection (bytes after it, other
requests, requests split over several reads) goes through uvicorn exactly as before, in order.

**One write per sized response.**
uvicorn writes a response's status line and headers when the application sends ``http.response.start`` and the
body when it sends ``http.response.body``: two writes, so two TCP segments and two wake-ups of the client for
every small JSON answer. Over loopback a send costs about as much as a whole prediction's Python work, so here a
response that announces its ``content-length`` holds its head until the first body message and goes out in one
write with it. Responses without a length (streamed, chunked: log follows, downloads of unknown size) are written
exactly as uvicorn writes them, so nothing that waits for data holds back its headers.

Holding the head also means an application that fails after ``http.response.start`` but before any body gets
uvicorn's clean 500 instead of a head with no body.

**Metrics.** A request answered here never reaches the application, so it is counted here (``api/metrics.py``,
the application's ``metrics``): its dialect, route template, status, duration and body sizes, at the cost of a
dict lookup and a few additions.
"""

from __future__ import annotations

import asyncio
import re
from time import perf_counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

MAX_FAST_BODY = 1 << 20  # larger bodies take uvicorn's path (which streams them)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_REFUSED = (b"transfer-encoding", b"expect", b"upgrade")


class _Collect:
    """Stands in for the transport while uvicorn writes one response: writes are joined, the rest passes."""

    __slots__ = ("parts", "real")

    def __init__(self, real: Any):
        self.real = real
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts.clear()
            self.real.write(data)

    def close(self) -> None:
        self.flush()
        self.real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _sized(message: dict) -> bool:
    return any(name.lower() == b"content-length" for name, _ in message.get("headers", ()))


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, sending a sized response's head together with its first body part."""

    held: dict | None = None

    async def send(self, message: Any) -> None:
        start = self.held
        if start is None:
            if message["type"] == "http.response.start" and not self.response_started and _sized(message):
                self.held = message
            else:
                await super().send(message)
            return
        self.held = None
        if message["type"] != "http.response.body":  # an application error: uvicorn answers it as before
            await super().send(start)
            await super().send(message)
            return
        real = self.transport
        collect = self.transport = _Collect(real)
        try:
            await super().send(start)
            await super().send(message)
        finally:
            self.transport = real
            collect.flush()

    async def send_500_response(self) -> None:
        self.held = None  # the application failed after its start: the client gets the 500 alone
        await super().send_500_response()


def plain_request(data: bytes, match) -> tuple[Any, bytes, dict[bytes, bytes], bytes, bytes] | None:
    """(``match(method, path)``'s hit, query, headers, body, bytes after it) of a whole, plain HTTP/1.1 request with
    a body to a route ``match`` knows, which ``data`` starts with; None for anything else, which uvicorn's parser
    then reads."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or _TOKEN.fullmatch(parts[0]) is None:
        return None
    path, _, query = parts[1].partition(b"?")
    if not path.isascii() or b"%" in path or b"#" in parts[1] or _CONTROL.search(parts[1]):
        return None
    hit = match(parts[0].decode("ascii"), path.decode("ascii"))
    if hit is None:
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None or _CONTROL.search(value):
            return None
        name = name.lower()
        if name in headers or name in _REFUSED:
            return None
        headers[name] = value.strip(b" \t")
    connection = headers.get(b"connection")
    length = headers.get(b"content-length")
    if (connection is not None and connection.lower() != b"keep-alive") or length is None:
        return None
    if not length.isdigit() or int(length) > MAX_FAST_BODY:
        return None
    start = end + 4
    stop = start + int(length)
    if len(data) < stop:
        return None
    return hit, query, headers, data[start:stop], data[stop:]


def _found(app: Any, name: str) -> Any:
    """The attribute ``name`` (``front``: the hot-route table; ``metrics``) of the application uvicorn loaded
    (under its middleware), or None."""
    for _ in range(8):
        value = getattr(app, name, None)
        if value is not None:
            return value
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class HarborHttpProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=HarborHttpProtocol)``: plain requests to hot routes answered here; every other
    request's cycle is a ``OneWriteCycle``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.front = _found(self.config.loaded_app, "front") if self.limit_concurrency is None else None
        self.metrics = _found(self.config.loaded_app, "metrics")  # api/metrics.py: hot requests are counted here
        self.heads: tuple[bytes, ...] = self.front.heads if self.front is not None else ()
        self.in_message = False  # uvicorn's parser has begun a request it has not finished
        self.answering: asyncio.Task | None = None  # a request answered here, not yet written
        self.later = b""  # what arrived meanwhile, read once it is written
        self.close_after = False

    def on_message_begin(self) -> None:
        self.in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self.answering is not None:
            self.later += data
            if len(self.later) > MAX_FAST_BODY:
                self.flow.pause_reading()
            return
        if (
            self.front is not None
            and not self.in_message
            and not self.pipeline
            and (self.cycle is None or self.cycle.response_complete)
            and data.startswith(self.heads)
        ):
            request = plain_request(data, self.front.match)
            if request is not None:
                self._unset_keepalive_if_required()
                hit, query, headers, body, self.later = request
                task = self.answering = self.loop.create_task(self._answer(hit, query, headers, body, perf_counter()))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return
        super().data_received(data)

    async def _answer(self, hit: Any, query: bytes, headers: dict[bytes, bytes], body: bytes, started: float) -> None:
        try:
            status, payload, extra = await self.front.respond(hit, query, headers, body)
            if self.flow.write_paused and not self.transport.is_closing():
                await self.flow.drain()
        finally:
            self.answering = None
        if self.transport.is_closing():  # the client left: counted as 499, as the ASGI path counts it
            if self.metrics is not None:
                self.metrics.observe_hot(hit, 499, perf_counter() - started, len(body), 0)
            return
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(payload))
        for name, value in extra:  # the endpoint's own headers (a 401's challenge)
            head += [name, b": ", value, b"\r\n"]
        if self.close_after:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", payload]
        self.transport.write(b"".join(head))
        self.server_state.total_requests += 1
        if self.metrics is not None:
            self.metrics.observe_hot(hit, status, perf_counter() - started, len(body), len(payload))
        if self.access_log:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
            route, found = hit
            target = found.group(0) + ("?" + query.decode("latin-1") if query else "")
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client, route.method, target, "1.1", status
            )  # its format
        if self.close_after:
            self.transport.close()
            return
        self.flow.resume_reading()
        if self.later:
            data, self.later = self.later, b""
            self.data_received(data)
        else:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self.later = b""
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.answering is not None:
            self.close_after = True  # answer it, then close (uvicorn waits for the task)
        else:
            super().shutdown()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.__class__ = OneWriteCycle
        super()._start_asgi_task(cycle, app)
