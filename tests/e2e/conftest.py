"""Fixtures of the end-to-end tests: real clients that cannot share the project's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.domino_client import ensure_domino_venv


@pytest.fixture(scope="session")
def domino_python() -> Path:
    """The python of ``.venv-clients/domino/`` (the real ``dominodatalab`` 2.2.0), created once if missing;
    tests/e2e/domino_client.py's ``DominoClient(domino_python, url, key)`` runs snippets with it."""
    return ensure_domino_venv()
