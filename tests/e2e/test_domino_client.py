"""The real ``dominodatalab`` 2.2.0 client (its own venv: tests/e2e/domino_client.py) against a running server."""

from __future__ import annotations

import pytest

from tests.e2e.domino_client import DominoClient
from tests.servers import running_server

KEY = "mh_e2e_domino_client_key_0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("domino-client")
    with running_server(root, KEY) as url:
        yield url, root


@pytest.fixture(scope="module")
def admin(served, domino_python):
    return DominoClient(domino_python, served[0], KEY, project="admin/demo")


def test_the_venv_holds_the_pinned_client(domino_python):
    out = DominoClient(domino_python, "http://unused", "k").run(
        "import importlib.metadata as m\nemit([m.version('dominodatalab'), m.version('packaging')])",
        construct=False,
    )
    assert out == ["2.2.0", "23.2"]


def test_constructs_against_the_server(admin):
    # the constructor asks GET /version and parses it with packaging
    assert admin.run("emit(d._version)") == "6.3.0"


def test_a_server_that_is_not_there_fails_construction(domino_python):
    done = DominoClient(domino_python, "http://127.0.0.1:9", KEY).run_raw("emit(1)", timeout=60)
    assert done.returncode != 0 and "Connection" in done.stderr
