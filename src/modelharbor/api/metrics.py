"""Prometheus metrics: what the server answered, moved and ran, at ``GET /metrics`` (docs/observability.md).

Every HTTP request is counted once, where it ends: requests through ASGI (FastAPI, and the application's front)
by ``app.HarborApp``, requests the HTTP protocol answers itself (``api/http.py``'s hot path) by the protocol.
Both hand :meth:`Metrics.observe` the request's labels — its dialect and its **route template**
(``/api/v1/uploads/{upload_id}/chunks/{number}``, never the raw path, so the number of series stays bounded:
paths no route takes are ``route="unmatched"``) — its method and status, its duration and its body bytes in
and out. On the hot path that costs a dict lookup and a few additions: :class:`HttpStats` keeps plain numbers
(the event loop is the only writer) and turns them into Prometheus families only when scraped.

Predictions are counted by the serving core's ``on_prediction`` hooks (the core knows no Prometheus); gauges
(the task backlog, deployment instances by state, requests queued for an instance) are read when scraped.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.requests import Request
from starlette.responses import Response

from modelharbor import __version__
from modelharbor.api.hot import PlainRoute

# Latency buckets (seconds): a prediction answered in a millisecond to an upload chunk of a minute.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BOUNDS = [*BUCKETS, float("inf")]
_LE = [repr(b) for b in BUCKETS] + ["+Inf"]
UNMATCHED = "unmatched"  # the route label of a path no route takes
SERVER = "server"  # the dialect label of the server's own routes (/healthz, /metrics, /)
GONE = 499  # the status label of a request whose client left before any answer (nginx's convention)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PREDICTION_OUTCOMES = ("completed", "failed", "error")
HOT_PATHS = 4096  # paths of hot requests whose series the protocol's counting remembers


class _Series:
    """One (dialect, route, method): answers by status, a latency histogram, body bytes in and out."""

    __slots__ = ("statuses", "buckets", "seconds", "received", "sent")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * len(_BOUNDS)  # per bucket, not cumulative (collect() adds them up)
        self.seconds = 0.0
        self.received = 0
        self.sent = 0

    def add(self, status: int, seconds: float, received: int, sent: int) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.buckets[bisect_left(_BOUNDS, seconds)] += 1
        self.seconds += seconds
        self.received += received
        self.sent += sent

    def histogram(self) -> list[tuple[str, float]]:
        """The cumulative buckets (``le``, count) of a Prometheus histogram."""
        running, out = 0, []
        for le, count in zip(_LE, list(self.buckets), strict=True):
            running += count
            out.append((le, running))
        return out


class HttpStats:
    """The HTTP counters, kept as plain numbers and exported as Prometheus families when scraped. Only the event
    loop adds to them; a scrape reads copies (each copy of a dict or list is atomic)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], _Series] = {}

    def of(self, labels: tuple[str, str, str]) -> _Series:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = _Series()
        return series

    def add(self, labels: tuple[str, str, str], status: int, seconds: float, received: int, sent: int) -> None:
        self.of(labels).add(status, seconds, received, sent)

    def collect(self) -> Iterable[Any]:
        names = ["dialect", "route", "method"]
        requests = CounterMetricFamily(
            "modelharbor_http_requests",
            "HTTP requests answered, by dialect, route template, method and status.",
            labels=[*names, "status"],
        )
        duration = HistogramMetricFamily(
            "modelharbor_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by dialect, route template and method.",
            labels=names,
        )
        received = CounterMetricFamily(
            "modelharbor_http_received_bytes", "Request body bytes received (uploads).", labels=names
        )
        sent = CounterMetricFamily("modelharbor_http_sent_bytes", "Response body bytes sent (downloads).", labels=names)
        for labels, series in list(self.series.items()):  # (the copies are atomic: the loop may add meanwhile)
            values = list(labels)
            for status, count in dict(series.statuses).items():
                requests.add_metric([*values, str(status)], count)
            duration.add_metric(values, series.histogram(), series.seconds)
            received.add_metric(values, series.received)
            sent.add_metric(values, series.sent)
        return [requests, duration, received, sent]


class Predictions:
    """Predictions by outcome (the serving core's ``on_prediction`` hook): counts and a latency histogram, kept as
    plain numbers under a lock (batch requests are answered on the task runner's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: dict[str, _Series] = {o: _Series() for o in PREDICTION_OUTCOMES}

    def __call__(self, outcome: str, seconds: float) -> None:
        with self._lock:
            series = self.outcomes.get(outcome)
            if series is None:
                series = self.outcomes[outcome] = _Series()
            series.add(0, seconds, 0, 0)

    def collect(self) -> Iterable[Any]:
        total = CounterMetricFamily(
            "modelharbor_predictions",
            "Predictions the executor was asked for (direct requests, batch requests, pipeline steps), by outcome: "
            "completed, failed (user code raised, timed out or answered a wrong output), error (refused before "
            "user code ran).",
            labels=["outcome"],
        )
        duration = HistogramMetricFamily(
            "modelharbor_prediction_duration_seconds",
            "Time a prediction took, waiting for an instance included, by outcome.",
            labels=["outcome"],
        )
        with self._lock:
            for outcome, series in self.outcomes.items():
                total.add_metric([outcome], sum(series.buckets))
                duration.add_metric([outcome], series.histogram(), series.seconds)
        return [total, duration]


class _Workload:
    """Scrape-time gauges: the task backlog (from the database) and what the executor runs."""

    def __init__(self, services: Any):
        self.services = services

    def collect(self) -> Iterable[Any]:
        info = GaugeMetricFamily("modelharbor_info", "The server's version.", labels=["version"])
        info.add_metric([__version__], 1)
        tasks = GaugeMetricFamily(
            "modelharbor_tasks",
            "Background tasks not finished yet (the backlog), by kind and status.",
            labels=["kind", "status"],
        )
        oldest = GaugeMetricFamily(
            "modelharbor_task_oldest_age_seconds",
            "Age of the oldest unfinished task, by kind and status.",
            labels=["kind", "status"],
        )
        now = time.time()
        for entry in self.services.tasks.backlog():
            tasks.add_metric([entry.kind, entry.status], entry.count)
            oldest.add_metric([entry.kind, entry.status], max(0.0, now - entry.oldest.timestamp()))
        instances = GaugeMetricFamily(
            "modelharbor_instances", "Worker processes of deployment versions, by state.", labels=["state"]
        )
        versions = GaugeMetricFamily(
            "modelharbor_deployed_versions", "Deployment versions the executor knows, by state.", labels=["state"]
        )
        queued = GaugeMetricFamily(
            "modelharbor_queued_predictions", "Prediction requests waiting for a free instance (all versions)."
        )
        by_state: dict[str, int] = {s: 0 for s in ("starting", "ready", "busy", "stopping", "failed")}
        version_states: dict[str, int] = {s: 0 for s in ("starting", "running", "failed", "stopped")}
        waiting = 0
        for status in self.services.serving.workload():
            version_states[status.state] = version_states.get(status.state, 0) + 1
            waiting += status.queued
            for instance in status.instances:
                by_state[instance.state] = by_state.get(instance.state, 0) + 1
        for state, count in by_state.items():
            instances.add_metric([state], count)
        for state, count in version_states.items():
            versions.add_metric([state], count)
        queued.add_metric([], waiting)
        return [info, tasks, oldest, instances, versions, queued]


class Metrics:
    """The server's metrics: one per application (its own registry, so several apps in one process — tests —
    do not collide). ``name_prefix``/``name_root``/``name_hot`` tell it which dialect a mount, a root route and
    a hot route belong to; ``observe`` counts a request; ``render`` answers a scrape."""

    def __init__(self, services: Any):
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = HttpStats()
        self.registry.register(self.http)
        self.registry.register(_Workload(services))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.predictions = Predictions()
        self.registry.register(self.predictions)
        self._prefixes: dict[str, str] = {}  # mount path -> dialect
        self._roots: dict[int, tuple[str, str]] = {}  # id(a root route's endpoint) -> (dialect, its path)
        self._hot: dict[PlainRoute, tuple[str, list[tuple[str, int]]]] = {}  # -> (dialect, named groups in order)
        self._hot_paths: dict[tuple[str, str], _Series] = {}  # (method, path) -> its series: the hot path's cache
        self._labels: dict[tuple[int, str], tuple[str, str]] = {}  # (id(route), root_path) -> (dialect, template)
        self._serving = services.serving
        self._serving.on_prediction.append(self.predictions)

    def close(self) -> None:
        """Stop listening to the serving core (the application stopped)."""
        if self.predictions in self._serving.on_prediction:
            self._serving.on_prediction.remove(self.predictions)

    # --- what belongs to whom --------------------------------------------------------------------------
    def name_prefix(self, prefix: str, dialect: str) -> None:
        self._prefixes[prefix] = dialect

    def name_root(self, route: Any, dialect: str) -> None:
        """A Starlette route outside the mounts (GET /status, /openapi/<name>.json, /metrics)."""
        self._roots[id(route.endpoint)] = (dialect, route.path)

    def name_hot(self, route: PlainRoute, dialect: str) -> None:
        groups = sorted(route.pattern.groupindex.items(), key=lambda kv: kv[1])
        self._hot[route] = (dialect, groups)

    # --- counting -------------------------------------------------------------------------------------
    def observe(self, dialect: str, route: str, method: str, status: int, seconds: float, received: int, sent: int):
        self.http.add((dialect, route, method if method in METHODS else "other"), status, seconds, received, sent)

    def observe_hot(self, hit: tuple[PlainRoute, Any], status: int, seconds: float, received: int, sent: int):
        """A request ``api/http.py`` answered itself: ``hit`` is the hot table's match. The series of a path seen
        before is one dict lookup away (the table matches a method and path to one route); the cache is emptied
        when it holds more paths than ``HOT_PATHS``, so clients inventing paths cannot grow it."""
        route, found = hit
        key = (route.method, found.string)
        series = self._hot_paths.get(key)
        if series is None:
            if len(self._hot_paths) >= HOT_PATHS:
                self._hot_paths.clear()
            dialect, template = self.hot_labels(route, found)
            series = self._hot_paths[key] = self.http.of((dialect, template, route.method))
        series.add(status, seconds, received, sent)

    def hot_labels(self, route: PlainRoute, found: Any) -> tuple[str, str]:
        """(dialect, template) of a hot route's match: the path with each named group's text as ``{name}``."""
        dialect, groups = self._hot.get(route) or (SERVER, sorted(route.pattern.groupindex.items(), key=lambda g: g[1]))
        path, pos, parts = found.string, found.start(), []
        for name, index in groups:
            start, end = found.span(index)
            if start >= 0:
                parts += (path[pos:start], "{", name, "}")
                pos = end
        parts.append(path[pos : found.end()])
        return dialect, "".join(parts)

    def asgi_labels(self, scope: dict[str, Any], front: Any) -> tuple[str, str]:
        """(dialect, route template) of a request that went through ASGI, from what routing left in its scope:
        FastAPI notes a matched ``APIRoute`` as ``route``; Starlette's routes and mounts leave their
        ``endpoint`` and the ``root_path`` they matched; the hot table's routes are asked for again."""
        route = scope.get("route")
        if route is not None:
            key = (id(route), scope.get("root_path", ""))
        else:
            endpoint = scope.get("endpoint")
            if endpoint is None:
                return self._front_labels(scope, front)
            key = (id(endpoint), scope.get("root_path", ""))
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = self._route_labels(route, scope.get("endpoint"), key[1])
        return labels

    def _route_labels(self, route: Any, endpoint: Any, root_path: str) -> tuple[str, str]:
        if route is None and id(endpoint) in self._roots:  # a Starlette route at the root
            return self._roots[id(endpoint)]
        if root_path in self._prefixes:  # an API's route, or a path under its mount that none of its routes take
            path = getattr(route, "path", None) if route is not None else None
            return self._prefixes[root_path], root_path + path if isinstance(path, str) else UNMATCHED
        if route is not None and isinstance(getattr(route, "path", None), str):
            return SERVER, root_path + route.path  # the server's own routes (/healthz, /)
        # a mount inside an API (its static assets): the API whose prefix it is under
        owner = max((p for p in self._prefixes if root_path.startswith(p + "/")), key=len, default=None)
        return (self._prefixes[owner] if owner else SERVER), (root_path + "/{path}" if root_path else UNMATCHED)

    def _front_labels(self, scope: dict[str, Any], front: Any) -> tuple[str, str]:
        if front is not None and "method" in scope:
            hit = front.match(scope["method"], scope["path"])
            if hit is not None:
                return self.hot_labels(*hit)
            exact = front.exact.get((scope["method"], scope["path"]))
            if exact is not None:
                return self._prefixes.get(exact[1].prefix, SERVER), scope["path"]
        return SERVER, UNMATCHED

    # --- scraping -------------------------------------------------------------------------------------
    async def render(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        return await asyncio.to_thread(encoder, self.registry), content_type  # (the backlog reads the database)


class Answer:
    """Wraps one ASGI ``send``: the status and the body bytes the application sent."""

    __slots__ = ("send", "status", "sent")

    def __init__(self, send: Any):
        self.send = send
        self.status = 0
        self.sent = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            self.sent += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
        await self.send(message)


def endpoint(metrics: Metrics, token: str | None):
    """``GET /metrics``: the text format (or OpenMetrics when the scraper asks), behind ``token`` when one is
    set (``MODELHARBOR_METRICS_TOKEN``: ``Authorization: Bearer <token>``)."""
    expected = f"Bearer {token}".encode() if token else None

    async def scrape(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return Response(
                    "GET /metrics needs 'Authorization: Bearer <MODELHARBOR_METRICS_TOKEN>'.\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"www-authenticate": "Bearer"},
                )
        body, content_type = await metrics.render(request.headers.get("accept", ""))
        return Response(body, media_type=None, headers={"content-type": content_type, "cache-control": "no-store"})

    return scrape
