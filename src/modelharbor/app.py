"""create_app(settings): wire the services, mount the native API and each dialect, start the task runner."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import shlex
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from time import perf_counter

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route

from modelharbor import __version__
from modelharbor.api import failures
from modelharbor.api.allow import answer_405_with_allow
from modelharbor.api.apidocs import Spec
from modelharbor.api.dialect import mount, openapi_path
from modelharbor.api.dialects import DIALECTS
from modelharbor.api.disconnect import BodyWatch
from modelharbor.api.hot import HotTable, PlainRoute
from modelharbor.api.logs import announce as announce_lines
from modelharbor.api.metrics import GONE, SERVER, Answer, Metrics
from modelharbor.api.metrics import endpoint as metrics_endpoint
from modelharbor.api.native import create_native_app
from modelharbor.api.native.app import internal_error
from modelharbor.core.clock import now
from modelharbor.core.identity import AdminCredentials
from modelharbor.services import Services, build_services
from modelharbor.settings import Settings
from modelharbor.tasks.runner import Runner

log = logging.getLogger("modelharbor")

ADMIN_FILE = "initial-admin.env"  # the first start's admin credentials (bootstrap), mode 0600
LEGACY_ADMIN_KEY_FILE = "initial-admin-key"  # what earlier versions wrote: the first admin key alone
DOCS_PAGE = "/api/v1/docs"  # where GET / leads


class HarborApp(FastAPI):
    """The FastAPI application, with a front handler that sees every HTTP request first.

    The front is the hot-route table (``api/hot.py``): the routes the dialects declare hot (a prediction, a registry
    create) are answered there, ahead of all of FastAPI's layers (telemetry, middleware, routing); everything else
    passes to FastAPI unchanged. Every request's ``receive`` is watched (``api/disconnect.py``): a client gone
    before its body was complete is one warning line, and the ``ClientDisconnect`` that would reach uvicorn (an
    ERROR with a traceback) ends here. Every request that comes through here is counted for ``/metrics`` once it
    ends (``api/metrics.py``: its labels are what routing left in its scope); those the HTTP protocol answers
    itself are counted there.
    """

    front = None
    metrics: Metrics | None = None  # api/metrics.py; None when MODELHARBOR_METRICS=false

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        started = perf_counter()
        watch = BodyWatch(scope, receive)  # a client gone mid-body: one warning line (api/disconnect.py)
        metrics = self.metrics
        answer = Answer(send) if metrics is not None else None
        try:
            if self.front is not None:
                await self.front(scope, watch.receive, answer or send)
            else:
                await super().__call__(scope, watch.receive, answer or send)
        except ClientDisconnect:
            watch.gone()  # logged already when the disconnect came through receive; nothing to answer
        finally:
            if answer is not None:  # counted once, where it ends: its labels are what routing found
                dialect, route = metrics.asgi_labels(scope, self.front)
                status = answer.status or (GONE if watch.logged else 500)
                metrics.observe(
                    dialect, route, scope["method"], status, perf_counter() - started, watch.received, answer.sent
                )


def freeze_startup_heap() -> None:
    """Move what start-up allocated (modules, routes, schemas: several hundred thousand objects) out of the
    garbage collector's sight. Python's full collections otherwise walk it all again every few hundred requests,
    a 100–200 ms pause in whatever request triggers it; the objects live as long as the process anyway."""
    gc.collect()
    gc.freeze()


def bootstrap(services: Services) -> AdminCredentials | None:
    """Ensure the configured admin exists; on a first start with none configured, create one.

    An admin created without credentials gets a generated API key and password (``ensure_admin``). Returns them
    when some were generated now (they are also written to DATA_DIR/initial-admin.env, mode 0600), else None.
    """
    s = services.settings
    if s.admin_user or s.admin_key or s.admin_password:
        created = services.identity.ensure_admin(s.admin_user or "admin", password=s.admin_password, key=s.admin_key)
    elif not services.identity.has_users():
        created = services.identity.ensure_admin("admin")
    else:
        return None
    if created.key is None and created.password is None:
        return None
    _write_admin_file(Path(s.data_dir) / ADMIN_FILE, created)
    return created


def _write_admin_file(path: Path, created: AdminCredentials) -> None:
    lines = [
        f"# ModelHarbor's first admin, created at {now():%Y-%m-%d %H:%M:%S} UTC by a start of the server on this data",
        "# directory, which printed these once and never prints them again. Keep them somewhere safe, then delete",
        f"# this file. The CLI reads MODELHARBOR_API_KEY; in a shell:  set -a; . {path}; set +a",
        f"MODELHARBOR_USERNAME={shlex.quote(created.user.username)}",
    ]
    if created.password is not None:
        lines.append(f"MODELHARBOR_PASSWORD={created.password}")
    if created.key is not None:
        lines.append(f"MODELHARBOR_API_KEY={created.key}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an earlier first start keeps no looser mode
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    run_workers: bool | None = None,
    announce: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    settings = settings or (services.settings if services else Settings())
    services = services or build_services(settings)
    workers = settings.workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        created = bootstrap(services)
        isolation = None
        if services.sandbox is not None:
            isolation = await asyncio.to_thread(services.sandbox.describe)  # runs bwrap once to see if it can
            if not services.sandbox.isolated and not announce:
                log.warning("%s", isolation)
        if announce:
            _announce(settings, created, isolation)
        runner = Runner(services) if workers else None
        app.state.runner = runner
        if runner:
            runner.start()
        if freeze_heap:  # a server process's (not a test's, which builds many apps and drops them)
            freeze_startup_heap()
        try:
            yield
        finally:
            if runner:
                runner.stop()
            if app.metrics is not None:
                app.metrics.close()
            services.serving.shutdown()  # stop the deployments' worker processes

    app = HarborApp(
        title="ModelHarbor", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.services = services
    failures.install(app, internal_error)  # the root's own routes; each mounted API answers its own failures

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        if services.db.ping():
            return {"status": "ok", "version": __version__}
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(DOCS_PAGE, status_code=307)  # the API docs (later: the web UI)

    metrics = app.metrics = Metrics(services) if settings.metrics else None
    if metrics is not None:
        scrape = Route("/metrics", metrics_endpoint(metrics, settings.metrics_token), methods=["GET"])
        app.router.routes.append(scrape)
        metrics.name_root(scrape, SERVER)

    native = create_native_app(services, [Spec(d.name, f"{d.title} dialect", openapi_path(d)) for d in DIALECTS])
    mounts = [Mount("/api/v1", app=native)]
    routes: list = []
    hot: list = []
    for dialect in DIALECTS:  # api/dialect.py: each declares its mounts, root routes and hot routes
        mounted = mount(dialect, services)
        mounts += mounted.mounts
        routes += mounted.routes
        hot += mounted.hot
        if metrics is not None:  # which dialect a request belongs to (its metrics' label)
            for m in mounted.mounts:
                metrics.name_prefix(m.path, dialect.name)
            for r in mounted.routes:
                metrics.name_root(r, dialect.name)
            for entry in mounted.hot:
                if isinstance(entry, PlainRoute):
                    metrics.name_hot(entry, dialect.name)
    if metrics is not None:
        metrics.name_prefix("/api/v1", "native")
    # Longest prefixes first so no dialect shadows another (tests/api/test_routing.py checks this).
    mounts.sort(key=lambda m: len(m.path), reverse=True)
    app.router.routes.extend(routes)  # exact paths outside the mounts (GET /version, GET /status)
    for m in mounts:
        m.path_regex = re.compile(m.path_regex.pattern, re.DOTALL)  # a path may hold a newline (%0A) like any byte
        app.router.routes.append(m)
    answer_405_with_allow(app)  # the dialects' and the native app's own 405s name the methods already
    table = HotTable(partial(FastAPI.__call__, app), services)
    for entry in hot:
        table.add(entry)
    app.front = table  # the hot routes (api/hot.py); the HTTP protocol (api/http.py) consults the same table
    return app


def _announce(settings: Settings, created: AdminCredentials | None, isolation: str | None = None) -> None:
    """What a start prints: the URL; the admin's credentials when they were generated now (the only time a secret
    is printed), else one line saying where they are; whether user code runs isolated."""
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    lines = [f"ModelHarbor {__version__} at {url}  (native API: {url}/api/v1/docs)"]
    admin_file = Path(settings.data_dir) / ADMIN_FILE
    if created is not None:
        lines.append(f"Admin created (shown only now; also saved to {admin_file}, mode 0600):")
        lines.append(f"    username: {created.user.username}")
        password = created.password or "the one in MODELHARBOR_ADMIN_PASSWORD (or set earlier)"
        lines.append(f"    password: {password}")
        lines.append(f"    API key:  {created.key or 'the one in MODELHARBOR_ADMIN_KEY'}")
    elif admin_file.exists():
        lines.append(
            f"Admin credentials: in {admin_file} (from the first start; store them elsewhere, delete the file)"
        )
    elif (Path(settings.data_dir) / LEGACY_ADMIN_KEY_FILE).exists():
        lines.append(f"Admin API key: in {Path(settings.data_dir) / LEGACY_ADMIN_KEY_FILE} (from the first start)")
    elif settings.admin_key:
        lines.append("Admin API key: the one in MODELHARBOR_ADMIN_KEY")
    else:
        lines.append(
            "Admin credentials: shown at the first start only; `modelharbor admin set-password USER` sets a "
            "password on this server's database"
        )
    if isolation:
        lines.append(isolation[:1].upper() + isolation[1:] + "  (docs/security.md)")
    announce_lines(lines, settings.log_format)  # text, or one JSON object per line (api/logs.py)
