"""No module under ``src/`` is over 800 lines (issue 14): the test lists every offender with its length.

A module that would grow past the limit is split instead — by subdomain, behind a public interface (see
docs/architecture.md). There are no exceptions: the SDK and the CLI, the last two, were split by noun (issue 15).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LIMIT = 800


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_the_limit():
    over = {p.relative_to(ROOT).as_posix(): n for p in sorted(SRC.rglob("*.py")) if (n := _lines(p)) > LIMIT}
    offenders = [f"{path}: {n} lines" for path, n in over.items()]
    assert not offenders, f"split these modules (at most {LIMIT} lines each):\n" + "\n".join(offenders)
