"""Docs follow the code: every setting, every native route and every Kore.ai route is documented; the route tables of
the dialects restyled by issue 14 name the one core method each route calls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Mount

from modelharbor.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    missing = [n for n in Settings.model_fields if f"`MODELHARBOR_{n.upper()}`" not in text]
    assert not missing, f"add these to docs/settings.md: {missing}"


def _routes(app):
    """(METHOD, path) of every mounted API, from each sub-app's own OpenAPI document."""
    for r in app.routes:
        if isinstance(r, Mount) and hasattr(r.app, "openapi"):
            r.app.openapi_schema = None  # regenerate even for apps that do not publish it
            for path, ops in r.app.openapi()["paths"].items():
                for method in ops:
                    yield method.upper(), r.path + path


def _table_rows(text: str) -> set[tuple[str, str]]:
    rows = set()
    for line in text.splitlines():
        m = re.match(r"\|\s*([A-Z, ]+)\s*\|\s*`([^`]+)`", line)
        if m:
            path = m.group(2).split("?")[0]
            for method in m.group(1).split(","):
                rows.add((method.strip(), path))
    return rows


def test_every_route_is_documented(client):
    documented = set()
    pages = (
        "api.md",
        "dialects/kore.md",
        "dialects/ufdl.md",
        "dialects/mlflow.md",
        "dialects/domino.md",
        "dialects/ubiops.md",
    )
    for page in pages:
        documented |= _table_rows((DOCS / page).read_text())
    routes = {
        (m, p)
        for m, p in _routes(client.app)
        if p.startswith(
            ("/api/v1", "/api/public", "/api/getMediaStream", "/v1/", "/api/2.0/", "/api/registeredmodels", "/v2")
        )
    }

    # docs may name path parameters differently: compare with parameters blanked
    def norm(pairs):  # UbiOps serves one tree under /v2 and /v2.1: the docs list it once
        return {(m, re.sub(r"\{[^}]+\}", "{}", re.sub(r"^/v2\.1/", "/v2/", p))) for m, p in pairs}

    missing = norm(routes) - norm(documented)
    assert not missing, f"document these routes: {sorted(missing)}"
    stale = {x for x in norm(documented) if x[1].startswith(("/api/", "/v1/", "/v2/"))} - norm(routes)
    assert not stale, f"docs list routes that do not exist: {sorted(stale)}"


ROUTE_ROW = re.compile(r"\|\s*[A-Z, ]+\s*\|\s*`[^`]+`")


def core_call_gaps(page: str) -> list[str]:
    """The route rows (``| METHOD | `path` | …``) of ``docs/<page>`` that name no core call: their table has no
    "Core call" column, or their cell in it is empty."""
    gaps, header = [], None
    for line in (DOCS / page).read_text().splitlines():
        if not line.startswith("|"):
            header = None  # a table ended; the next one starts with its header row
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]  # "\|" inside a cell is text
        if header is None:
            header = [c.lower() for c in cells]
        elif ROUTE_ROW.match(line):
            column = header.index("core call") if "core call" in header else len(cells)
            if column >= len(cells) or not cells[column].strip("` "):
                gaps.append(line)
    return gaps


@pytest.mark.parametrize("page", ["dialects/ufdl.md"])  # each dialect's page once its routes make one core call
def test_every_route_names_its_core_call(page):
    gaps = core_call_gaps(page)
    assert not gaps, f"give these rows of docs/{page} a 'Core call' cell: {gaps}"
