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


def test_projects_tags_and_archive_through_the_client(served, admin):
    url, root = served
    # project_create_v4 (GET /v4/users for the owner, then POST /v4/projects); the constructor's project lookup
    # (d.project_id: findProjectByOwnerAndName) then finds admin/demo
    out = admin.run(
        "from domino.domino_enums import ProjectVisibility\n"
        "p = d.project_create_v4('demo', description='first', tags=['cv'], visibility=ProjectVisibility.SEARCHABLE)\n"
        "emit([p['name'], p['visibility'], p['ownerUsername'], [t['name'] for t in p['tags']], p['id'], d.project_id])"
    )
    assert out[:4] == ["demo", "Searchable", "admin", ["cv"]] and out[4] == out[5]
    # tags: list, add, details, remove
    tags = admin.run(
        "d.tags_add(['prod', 'nlp'])\n"
        "names = [t['name'] for t in d.tags_list()]\n"
        "details = d.tag_details(d.tag_get_id('prod'))\n"
        "d.tags_remove('cv')\n"
        "emit([names, details['name'], details['isApproved'], [t['name'] for t in d.tags_list()]])"
    )
    assert tags == [["cv", "nlp", "prod"], "prod", True, ["nlp", "prod"]]  # the admin's tags are approved
    # projects_list by relationship; the legacy form create; project_archive by name
    listed = admin.run(
        "d.project_create('legacy')\n"
        "owned = [p['name'] for p in d.projects_list()]\n"
        "collab = d.projects_list(relationship='Collaborating')\n"
        "d.project_archive('legacy')\n"
        "after = [p['name'] for p in d.projects_list(show_completed=True)]\n"
        "try:\n"
        "    d.project_archive('legacy')\n"
        "    again = 'archived twice'\n"
        "except Exception as e:\n"
        "    again = type(e).__name__\n"
        "emit([owned, collab, after, again])"
    )
    assert listed == [["demo", "legacy"], [], ["demo"], "ProjectNotFoundException"]
    # an archived project is read-only through the client too; reads still work
    legacy = DominoClient(admin.python, url, KEY, project="admin/legacy")
    refused = legacy.run(
        "import io\n"
        "try:\n"
        "    d.files_upload('/a.txt', io.BytesIO(b'hello'))\n"
        "    emit('uploaded')\n"
        "except requests.HTTPError as e:\n"
        "    emit([e.response.status_code, e.response.json()['errors'][0], len(d.project_id)])"
    )
    assert refused[0] == 403 and "archived" in refused[1] and refused[2] == 24
    # another member: the searchable project is found (not its contents); an unknown project is a 404
    rita_key = create_user(root, "rita2")
    rita = DominoClient(admin.python, url, rita_key, project="admin/demo")
    seen = rita.run(
        "sug = [p['name'] for p in d.projects_list(relationship='Suggesting')]\n"
        "emit([sug, d.project_id, [t['name'] for t in d.tags_list()]])"
    )
    assert seen == [["demo"], out[4], ["nlp", "prod"]]
    missing = DominoClient(admin.python, url, KEY, project="admin/nope").run(
        "try:\n    d.project_id\nexcept requests.HTTPError as e:\n    emit(e.response.status_code)"
    )
    assert missing == 404
