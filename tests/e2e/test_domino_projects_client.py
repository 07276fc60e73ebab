"""The real ``dominodatalab`` 2.2.0 client's collaborator and fork calls (``collaborators_add``/``_get``/``_remove``,
``fork_project``) against a running server: the v4 collaborator routes, the legacy root
``GET /{owner}/{project}/collaborators`` and ``POST /v4/projects/{id}/fork`` (files shared with the source)."""

from __future__ import annotations

import pytest

from tests.e2e.domino_client import DominoClient
from tests.servers import create_user, running_server

KEY = "mh_e2e_domino_projects_key_0123456789"

# a project made through the native API; the client finds its id with GET /v4/gateway/projects/findProjectByOwnerAndName
PROJECT_ID = """
import io
r = requests.post(host + '/api/v1/projects', headers={'Authorization': 'Bearer ' + api_key}, json={'name': 'demo'})
r.raise_for_status()
pid = r.json()['id']
assert d.project_id == pid
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("domino-projects-client")
    with running_server(root, KEY) as url:
        yield url, root


def test_collaborators_and_fork_through_the_client(served, domino_python):
    url, root = served
    create_user(root, "rita")
    admin = DominoClient(domino_python, url, KEY, project="admin/demo")
    out = admin.run(
        PROJECT_ID + "d.files_upload('/README.md', io.BytesIO(b'hello from the client'))\n"
        "d.collaborators_add('rita')\n"
        "added = d.collaborators_get()\n"
        "v4 = d.request_manager.get(host + f'/v4/projects/{pid}/collaborators').json()\n"
        "d.collaborators_remove('rita')\n"
        "removed = d.collaborators_get()\n"
        "fork = d.fork_project('demo-fork').json()\n"
        "forked = Domino('admin/demo-fork', api_key=api_key, host=host)\n"
        "commits = forked.commits_list()\n"
        "listing = forked.files_list(commits[0], '/')['data']\n"
        "emit({'pid': pid, 'added': added, 'v4': v4, 'removed': removed, 'fork': fork,\n"
        "      'files': [(f['path'], f['size']) for f in listing], 'commits': len(commits)})"
    )
    rita_id = out["added"][0]["id"]
    assert [(c["userName"], c["projectRole"]) for c in out["added"]] == [("rita", "Contributor")]
    assert out["v4"] == [{"collaboratorId": rita_id, "projectRole": "Contributor", "userName": "rita"}]
    assert out["removed"] == []
    assert out["fork"]["name"] == "demo-fork" and out["fork"]["id"] != out["pid"]
    assert out["fork"]["ownerUsername"] == "admin"
    assert out["commits"] == 1 and out["files"] == [["README.md", len(b"hello from the client")]]


def test_client_errors_are_domino_envelopes(served, domino_python):
    url, root = served
    admin = DominoClient(domino_python, url, KEY, project="admin/demo")
    err = admin.run("try:\n    d.collaborators_add('nobody')\nexcept Exception as e:\n    emit(type(e).__name__)")
    assert err == "UserNotFoundException"  # the client looks the user up in GET /v4/users first
    bad = admin.run(
        "r = requests.post(host + '/v4/projects/' + 'f' * 24 + '/fork', json={'name': 'x'},\n"
        "                  headers={'X-Domino-Api-Key': api_key})\n"
        "emit([r.status_code, sorted(r.json())])"
    )
    assert bad == [404, ["errors", "requestId"]]
