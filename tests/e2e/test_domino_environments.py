"""The real ``dominodatalab`` 2.2.0 client's environment calls against a running server (its own, this module's):
environments_list, get_default_environment, create_environment (without a base image: the client reads the
default's latestRevisionDetails.dockerImage), create_environment_revision, restrict_environment_revision,
get_environment, archive_environment, and a refused Dockerfile instruction as the client sees it."""

from __future__ import annotations

import pytest

from tests.e2e.domino_client import DominoClient
from tests.servers import create_user, running_server

KEY = "mh_e2e_domino_envs_key_0123456789"

WAIT_BUILT = """
import time
def built(eid, number):
    for _ in range(600):
        env = d.get_environment(eid)['environment']
        if env['latestRevision']['number'] == number and env['latestRevision']['status'] in ('succeeded', 'failed'):
            return env
        time.sleep(0.1)
    raise AssertionError(env)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("domino-envs")
    with running_server(root, KEY) as url:
        yield url, root


@pytest.fixture(scope="module")
def admin(served, domino_python):
    return DominoClient(domino_python, served[0], KEY, project="admin/demo")


def test_environments_through_the_client(served, admin):
    out = admin.run(
        WAIT_BUILT + "default = d.get_default_environment()\n"
        "created = d.create_environment('client-env', 'Global', "
        "dockerfile_instructions='RUN pip install --no-cache-dir \"pip>=1\"', summary='first')\n"
        "eid = created['environment']['id']\n"
        "first = built(eid, 1)\n"
        "rev = d.create_environment_revision(eid, summary='second')['environmentRevision']\n"
        "second = built(eid, 2)\n"
        "d.restrict_environment_revision(eid, rev['id'])\n"
        "restricted = d.get_environment(eid)['environment']['restrictedRevision']['id']\n"
        "listed = d.environments_list()['data']\n"
        "d.archive_environment(eid)\n"
        "after = d.get_environment(eid)['environment']\n"
        "emit([default, created['environment'], first, rev, second, restricted, listed, after,"
        " d.environments_list()['data']])"
    )
    default, created, first, rev, second, restricted, listed, after, remaining = out
    base = default["latestRevisionDetails"]["dockerImage"]
    assert base.startswith("python3-") and default["visibility"] == "Global"
    assert created["name"] == "client-env" and created["visibility"] == "global"
    assert created["latestRevision"]["image"] == base  # what the client read from the default environment
    assert first["latestRevision"]["status"] == "succeeded" and first["latestRevision"]["requirements"] == ["pip>=1"]
    assert rev["number"] == 2 and second["latestRevision"]["status"] == "succeeded"
    assert restricted == rev["id"]
    assert {(e["name"], e["visibility"]) for e in listed} >= {("client-env", "Global")}
    assert after["archived"] is True
    assert created["id"] not in [e["id"] for e in remaining]


def test_a_member_and_refused_instructions(served, admin):
    url, root = served
    rita = DominoClient(admin.python, url, create_user(root, "rita"), project="rita/demo")
    out = rita.run(
        "mine = d.create_environment('mine', 'private')['environment']\n"
        "try:\n"
        "    d.create_environment('apt', 'Private', dockerfile_instructions='RUN apt-get install -y curl')\n"
        "except requests.HTTPError as e:\n"
        "    refused = [e.response.status_code, e.response.json()['errors'][0]]\n"
        "try:\n"
        "    d.restrict_environment_revision(mine['id'], mine['latestRevision']['id'])\n"
        "except requests.HTTPError as e:\n"
        "    forbidden = e.response.status_code\n"
        "emit([mine, refused, forbidden, [e['name'] for e in d.environments_list()['data']]])"
    )
    mine, refused, forbidden, names = out
    assert mine["visibility"] == "private" and mine["owner"]["username"] == "rita"
    assert refused[0] == 400 and "apt-get" in refused[1] and "RUN pip install" in refused[1]
    assert forbidden == 403
    assert "mine" in names and "apt" not in names
    # the admin sees rita's private environment; the listing of another member would not
    assert "mine" in admin.run("emit([e['name'] for e in d.environments_list()['data']])")
