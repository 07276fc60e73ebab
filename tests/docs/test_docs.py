"""Docs follow the code: every setting and every route of every API is documented; the route tables of converted
dialects name each route's core call."""

from __future__ import annotations

import re
from pathlib import Path

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
            (
                "/api/v1",
                "/api/public",
                "/api/getMediaStream",
                "/v1/",
                "/api/2.0/",
                "/api/registeredmodels",
                "/api/projects",
                "/v2",
            )
        )
    }

    # docs may name path parameters differently: compare with parameters blanked
    def norm(pairs):  # UbiOps serves one tree under /v2 and /v2.1: the docs list it once
        return {(m, re.sub(r"\{[^}]+\}", "{}", re.sub(r"^/v2\.1/", "/v2/", p))) for m, p in pairs}

    missing = norm(routes) - norm(documented)
    assert not missing, f"document these routes: {sorted(missing)}"
    stale = {x for x in norm(documented) if x[1].startswith(("/api/", "/v1/", "/v2/"))} - norm(routes)
    assert not stale, f"docs list routes that do not exist: {sorted(stale)}"


# Dialect pages whose route tables have the "Core call" column (issue 14): every served row names the one core
# method its route calls, as `service.method`. A page joins this list when its dialect is restyled.
CORE_CALL_PAGES: tuple[str, ...] = (
    "dialects/domino.md",
    "dialects/kore.md",
    "dialects/mlflow.md",
    "dialects/ubiops.md",
    "dialects/ufdl.md",
)
_CELL = re.compile(r"(?<!\\)\|")  # a table cell boundary (``\|`` inside a cell is text)


def core_call_problems(text: str) -> list[str]:
    """Rows of the page's route tables (those with a "Core call" column) whose route is served but names no
    `service.method` core call (or says "none", for a route that asks the core nothing, e.g. one answering a
    constant); a table without the column is a problem too."""
    problems, column, status_column, tables = [], None, 2, 0
    for line in text.splitlines():
        cells = [c.strip() for c in _CELL.split(line.strip())[1:-1]] if line.startswith("|") else None
        if cells is None:
            column = None
            continue
        if cells[:2] == ["Method", "Path"]:
            tables += 1
            column = next((i for i, c in enumerate(cells) if c.lower() == "core call"), -1)
            status_column = next((i for i, c in enumerate(cells) if c.lower() == "status"), 2)
            if column < 0:
                problems.append(f"a route table without a 'Core call' column: {line.strip()}")
            continue
        if column is None or column < 0 or set(line) <= set("|-: "):
            continue
        status = cells[status_column].lower() if len(cells) > status_column else ""
        call = cells[column] if column < len(cells) else ""
        named = re.search(r"`[a-z_]+(\.[a-z_]+)+`", call) or re.match(r"none\b", call)
        if "not supported" not in status and not named:
            problems.append(f"no core call named: {line.strip()}")
    if not tables:
        problems.append("no route table")
    return problems


def test_core_call_rule_finds_rows_without_a_call():
    page = (
        "| Method | Path | Status | Core call | Notes |\n|---|---|---|---|---|\n"
        "| GET | `/a` | supported | `registry.get_model` | ok |\n"
        "| GET | `/b` | supported |  | missing |\n"
        "| POST | `/c` | not supported | — | 501 |\n"
        "| GET | `/d` | supported | none (a constant) | ok |\n"
    )
    assert core_call_problems(page) == ["no core call named: | GET | `/b` | supported |  | missing |"]
    assert core_call_problems("| Method | Path | Status | Notes |\n|---|---|---|---|\n")[0].startswith("a route")


def test_restyled_dialect_pages_name_each_routes_core_call():
    for page in CORE_CALL_PAGES:
        problems = core_call_problems((DOCS / page).read_text())
        assert not problems, f"{page}: " + "\n".join(problems)
