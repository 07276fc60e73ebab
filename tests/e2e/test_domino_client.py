"""The real ``dominodatalab`` 2.2.0 client (its own venv: tests/e2e/domino_client.py) against a running server."""

from __future__ import annotations

import pytest

from tests.e2e.domino_client import DominoClient
from tests.servers import create_user, running_server

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


def test_users_through_the_client(served, admin):
    url, root = served
    rita_key = create_user(root, "rita")
    rita = DominoClient(admin.python, url, rita_key, project="rita/demo")
    # get_user_id reads GET /v4/users, by username or email
    ids = rita.run("emit([d.get_user_id('admin'), d.get_user_id('rita'), d.get_user_id('nobody')])")
    me = rita.run("emit(d.request_manager.get(host + '/api/users/v1/self').json()['user'])")
    assert ids[1] == me["id"] and me["userName"] == "rita" and ids[0] and ids[2] is None
    # the client's own session (X-Domino-Api-Key) on the public routes: users and organizations
    out = admin.run(
        "rm = d.request_manager\n"
        "users = rm.get(host + '/api/users/v1/users').json()['users']\n"
        f"org = rm.post(host + '/api/organizations/v1/organizations', json={{'name': 'vision', 'members': "
        f"[{{'userId': '{ids[1]}', 'organizationRole': 'member'}}]}}).json()['org']\n"
        "emit([sorted(u['userName'] for u in users), org['name'], len(org['members'])])"
    )
    assert out == [["admin", "rita"], "vision", 2]
    # errors reach the client as HTTP errors with Domino's envelope (a duplicate is 400, never 409)
    err = admin.run(
        "try:\n"
        "    d.request_manager.post(host + '/api/organizations/v1/organizations', json={'name': 'vision', "
        "'members': []})\n"
        "except requests.HTTPError as e:\n"
        "    emit([e.response.status_code, e.response.json()['errors'][0]])"
    )
    assert err == [400, "a team named 'vision' already exists"]
