"""Every dialect package has the same files (issue 14): ``__init__.py`` (its dialect), ``schemas.py`` (pydantic
models of its wire shapes), a pure ``mapping.py`` (no queries) and ``routes.py`` or ``routes/<noun>.py``."""

from __future__ import annotations

from pathlib import Path

DIALECTS = Path(__file__).resolve().parents[2] / "src" / "modelharbor" / "api" / "dialects"


def _missing(package: Path) -> list[str]:
    missing = [name for name in ("__init__.py", "schemas.py", "mapping.py") if not (package / name).is_file()]
    if not (package / "routes.py").is_file() and not (package / "routes").is_dir():
        missing.append("routes.py or routes/")
    return missing


def test_every_dialect_package_has_the_four_files():
    packages = sorted(p for p in DIALECTS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert packages, f"no dialect packages under {DIALECTS}"
    missing = {p.name: m for p in packages if (m := _missing(p))}
    assert not missing, f"dialect packages lacking files: {missing}"
