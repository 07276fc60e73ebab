"""The API reference pages, Swagger UI and ReDoc, served with their assets by the server itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine without Internet access.
These pages load theirs from ``<app>/docs/assets/`` — the files the ``fastapi-offline`` package ships
(``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``, ``favicon.png``; a pinned runtime
dependency) — and reference no other host: no fonts, no validator badge (``validatorUrl: null``).

Both pages offer every OpenAPI document the server publishes (the native API's and each dialect's,
``/openapi/<name>.json``) in a drop-down; ``?spec=<name>`` opens one directly.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS_PATH = "/docs/assets"


@dataclass(frozen=True)
class Spec:
    """One OpenAPI document the pages offer: ``url`` is its path from the server's root."""

    name: str  # "native", "ubiops": the ?spec= value
    title: str
    url: str


def install(app: FastAPI, specs: Sequence[Spec], *, docs: str = "/docs", redoc: str = "/redoc") -> None:
    """Add the Swagger UI page (``docs``), the ReDoc page (``redoc``) and their assets to ``app``; the first of
    ``specs`` is the one shown when ``?spec=`` names none."""
    specs = tuple(specs)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(docs, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(_swagger_page(_Page.of(request, specs, docs, redoc)))

    @app.get(redoc, include_in_schema=False)
    async def redoc_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_redoc_page(_Page.of(request, specs, docs, redoc)))


@dataclass(frozen=True)
class _Page:
    specs: tuple[Spec, ...]
    chosen: Spec
    server: str  # the server's root path ("" unless served under a prefix)
    assets: str
    docs: str
    redoc: str

    @classmethod
    def of(cls, request: Request, specs: tuple[Spec, ...], docs: str, redoc: str) -> _Page:
        scope = request.scope
        here = scope.get("root_path", "")  # the app's own mount ("/api/v1")
        server = scope.get("app_root_path", "")
        wanted = request.query_params.get("spec")
        chosen = next((s for s in specs if s.name == wanted), specs[0])
        return cls(specs, chosen, server, here + ASSETS_PATH, here + docs, here + redoc)

    def url(self, spec: Spec) -> str:
        return self.server + spec.url

    def chooser(self, other: str, other_name: str) -> str:
        options = "".join(
            f'<option value="{html.escape(s.name)}"{" selected" if s is self.chosen else ""}>'
            f"{html.escape(s.title)}</option>"
            for s in self.specs
        )
        return (
            '<form class="mh-bar" method="get"><label>API <select name="spec" id="mh-spec">'
            f'{options}</select></label> <a id="mh-other" href="{html.escape(other)}?spec={html.escape(self.chosen.name)}">'
            f"{other_name}</a></form>"
        )

    def head(self, title: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.chosen.title)} — {title}</title>"
            f'<link rel="icon" type="image/png" href="{html.escape(self.assets)}/favicon.png">'
            "<style>.mh-bar{font:14px sans-serif;padding:8px 16px;background:#1b1b1b;color:#fff}"
            ".mh-bar a{color:#9cf;margin-left:1em}.mh-bar select{margin-left:.5em}</style>"
        )


def _script(value: object) -> str:
    """A JSON value written into a <script> (no ``</script>`` can end it early)."""
    return json.dumps(value).replace("<", "\\u003c")


def _swagger_page(page: _Page) -> str:
    urls = {s.name: page.url(s) for s in page.specs}
    return (
        page.head("Swagger UI")
        + f'<link rel="stylesheet" href="{html.escape(page.assets)}/swagger-ui.css"></head><body>'
        + page.chooser(page.redoc, "ReDoc")
        + '<div id="swagger-ui"></div>'
        + f'<script src="{html.escape(page.assets)}/swagger-ui-bundle.js"></script>'
        + "<script>\n"
        + f"const specs = {_script(urls)};\n"
        + "const select = document.getElementById('mh-spec');\n"
        + "function show(name) {\n"
        + "  window.ui = SwaggerUIBundle({url: specs[name], dom_id: '#swagger-ui', layout: 'BaseLayout',\n"
        + "    deepLinking: true, persistAuthorization: true, validatorUrl: null,\n"
        + "    presets: [SwaggerUIBundle.presets.apis]});\n"
        + "}\n"
        + "select.addEventListener('change', () => {\n"
        + "  const here = new URL(window.location.href);\n"
        + "  here.searchParams.set('spec', select.value); here.hash = '';\n"
        + "  window.history.replaceState(null, '', here);\n"
        + "  document.getElementById('mh-other').search = '?spec=' + encodeURIComponent(select.value);\n"
        + "  show(select.value);\n"
        + "});\n"
        + "show(select.value);\n"
        + "</script></body></html>\n"
    )


def _redoc_page(page: _Page) -> str:
    return (
        page.head("ReDoc")
        + "</head><body>"
        + page.chooser(page.docs, "Swagger UI")
        + f'<redoc spec-url="{html.escape(page.url(page.chosen))}"></redoc>'
        + f'<script src="{html.escape(page.assets)}/redoc.standalone.js"></script>'
        + "<script>document.getElementById('mh-spec').addEventListener('change', (e) => e.target.form.submit());"
        + "</script></body></html>\n"
    )
