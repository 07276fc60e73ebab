"""docs/architecture.md is a map that stays true (issue 14): every path its feature table names exists, every
feature the README lists has a row, its module tree names what is there, and every page the docs link to exists
(with the heading an anchor names)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "modelharbor"
DOCS = ROOT / "docs"
MAP = DOCS / "architecture.md"

# README feature names whose row in the map is called otherwise (README's bold name -> the row's bold name).
ALIASES = {"One model registry under every dialect": "Registry"}

_CELL = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def feature_rows(text: str) -> list[list[str]]:
    """The cells of each row of the feature table (the first table of "Where each feature lives")."""
    rows = []
    for line in _section(text, "Where each feature lives").splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in _CELL.split(line.strip())[1:-1]]
        if cells[0] == "Feature":
            assert [c.split(" ")[0] for c in cells] == ["Feature", "Edges", "Core", "Tests", "Docs"], cells
            continue
        rows.append(cells)
    return rows


def _paths(cell: str) -> list[str]:
    """The paths a cell names: code spans holding a ``/`` (not a URL path) or ending in ``.py``."""
    return [c for c in _CODE.findall(cell) if not c.startswith("/") and ("/" in c or c.endswith(".py"))]


def map_problems(text: str) -> list[str]:
    problems = []
    for cells in feature_rows(text):
        feature, edges, core, tests, docs = cells
        named = _BOLD.match(feature)
        if named is None:
            problems.append(f"a row whose feature is not in bold: {feature}")
        for cell, base in ((edges, SRC), (core, SRC), (tests, ROOT)):
            for path in _paths(cell):
                if not path.endswith((".py", "/")):
                    problems.append(f"{path!r}: name a module (.py) or a package (ending in /)")
                elif not (base / path).exists():
                    problems.append(f"{path!r} does not exist (under {base.relative_to(ROOT) or '.'})")
        if not any(p.startswith("tests/") for p in _paths(tests)):
            problems.append(f"{feature}: no tests named")
        if not _paths(edges) + _paths(core):
            problems.append(f"{feature}: no code named")
        if not _LINK.search(docs):
            problems.append(f"{feature}: no docs page linked")
    return problems


def test_every_path_in_the_map_exists():
    problems = map_problems(MAP.read_text())
    assert not problems, "docs/architecture.md, the feature table:\n" + "\n".join(problems)


def test_the_map_rule_finds_what_is_wrong():
    page = (
        "# A\n\n## Where each feature lives\n\n| Feature | Edges | Core | Tests | Docs |\n|---|---|---|---|---|\n"
        "| **Uploads** | `api/native/uploads.py` | `core/files/nowhere.py` | `tests/core/` | [u](uploads.md) |\n"
        "| Loose | `api/native` | — | — | — |\n\n## Next\n"
    )
    assert map_problems(page) == [
        "'core/files/nowhere.py' does not exist (under src/modelharbor)",
        "a row whose feature is not in bold: Loose",
        "'api/native': name a module (.py) or a package (ending in /)",
        "Loose: no tests named",
        "Loose: no docs page linked",
    ]


def readme_features() -> list[str]:
    """The bold names that open the bullets of the README's "Features"."""
    return [m.group(1) for m in re.finditer(r"^- \*\*([^*]+)\*\*", _section(README.read_text(), "Features"), re.M)]


README = ROOT / "README.md"


def test_every_readme_feature_has_a_row():
    features = readme_features()
    assert len(features) >= 5, features
    rows = [_BOLD.match(cells[0]).group(1).lower() for cells in feature_rows(MAP.read_text())]
    missing = [f for f in features if not any(ALIASES.get(f, f).lower() in row for row in rows)]
    assert not missing, f"give these README features a row in docs/architecture.md (or an alias here): {missing}"


# --- the module tree ------------------------------------------------------------------------------------------


def tree_entries(text: str) -> list[str]:
    """The paths in the left column of the module tree (the code block of "Module tree")."""
    block = _section(text, "Module tree").split("```")[1]
    return re.findall(r"^  ([\w./]+?(?:\.py|/))(?=\s)", block, re.M)


def test_the_module_tree_matches_the_tree():
    entries = tree_entries(MAP.read_text())
    gone = [e for e in entries if not (SRC / e).exists()]
    assert not gone, f"docs/architecture.md's module tree names what is not there: {gone}"
    expected = {p.name + ("/" if p.is_dir() else "") for p in SRC.iterdir() if _listed(p)}
    expected |= {f"core/{p.name}/" for p in (SRC / "core").iterdir() if p.is_dir() and _listed(p)}
    expected |= {f"api/{p.name}" for p in (SRC / "api").glob("*.py") if _listed(p)}
    expected |= {f"api/{p.name}/" for p in (SRC / "api").iterdir() if p.is_dir() and _listed(p)}
    expected |= {f"api/dialects/{p.name}/" for p in (SRC / "api" / "dialects").iterdir() if p.is_dir() and _listed(p)}
    missing = sorted(expected - set(entries))
    assert not missing, f"add these to docs/architecture.md's module tree: {missing}"


def _listed(path: Path) -> bool:
    if path.is_dir():
        return path.name != "__pycache__" and (path / "__init__.py").exists()
    return path.suffix == ".py" and path.name != "__init__.py"


# --- links ----------------------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not (m := re.match(r"#{1,6} (.+)", line)):
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def link_problems(page: Path) -> list[str]:
    problems = []
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists():
            problems.append(f"{page.relative_to(ROOT)}: {target} — no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{page.relative_to(ROOT)}: {target} — no such heading")
    return problems


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_every_linked_page_and_heading_exists():
    problems = [p for page in pages() for p in link_problems(page)]
    assert not problems, "\n".join(problems)


def test_the_map_links_every_docs_page():
    linked = {(MAP.parent / t.partition("#")[0]).resolve() for t in _LINK.findall(MAP.read_text())}
    unlinked = [str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if p != MAP and p.resolve() not in linked]
    assert not unlinked, f"link these from docs/architecture.md: {unlinked}"


def test_slugs_follow_github():
    assert _slug("Short database calls on the event loop (SQLite)") == "short-database-calls-on-the-event-loop-sqlite"
    assert _slug("`bench/upload.py`: upload/download throughput") == "benchuploadpy-uploaddownload-throughput"
    assert _slug("Serving: deploy and predict") == "serving-deploy-and-predict"
