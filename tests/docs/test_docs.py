"""Docs follow the code: every setting and every route of every API is documented; the route tables of converted
dialects name each route's core call."""

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


# Pages whose route tables have a "Core call" column (issue 14: a route makes one core call); add each dialect's
# page once its table names them.
CORE_CALL_PAGES = ("dialects/ubiops.md",)


def rows_without_core_call(text: str) -> list[str]:
    """The route rows (``| METHOD | `path` | …``) of a page whose *Core call* cell is empty, or whose table has no
    such column."""
    missing: list[str] = []
    column: int | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["Method", "Path"]:
            column = cells.index("Core call") if "Core call" in cells else None
            continue
        route_row = len(cells) > 1 and re.fullmatch(r"[A-Z, ]+", cells[0]) and cells[1].startswith("`")
        if route_row and (column is None or column >= len(cells) or not cells[column].strip("` ")):
            missing.append(line)
    return missing


@pytest.mark.parametrize("page", CORE_CALL_PAGES)
def test_every_route_row_names_its_core_call(page):
    missing = rows_without_core_call((DOCS / page).read_text())
    assert not missing, f"{page}: name the core call of these routes: {missing}"


def test_rows_without_core_call_finds_the_empty_cells():
    table = "| Method | Path | Status | Core call | Notes |\n|---|---|---|---|---|\n"
    assert rows_without_core_call(table + "| GET | `/a` | supported | `serving.x` | |\n") == []
    assert rows_without_core_call(table + "| GET | `/a` | supported |  | n |\n") == [
        "| GET | `/a` | supported |  | n |"
    ]
    assert rows_without_core_call("| Method | Path | Status | Notes |\n|---|---|---|---|\n| GET | `/a` | s | n |\n")
