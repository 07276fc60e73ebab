"""The first admin, against a real server: a first start creates it with a key and a password, shows them once and
saves them (0600); the password works for UFDL's JWTs and MLflow's Basic auth; later starts print where the file
is and no secret; `modelharbor admin set-password` changes a password on the server's own database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import first_admin, running_server

NO_ADMIN = {"MODELHARBOR_ADMIN_USER": "", "MODELHARBOR_ADMIN_KEY": "", "MODELHARBOR_ADMIN_PASSWORD": ""}


def admin_cli(root: Path, *args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    if cwd is None:
        env["MODELHARBOR_DATA_DIR"] = str(root / "data")
    return subprocess.run(
        [sys.executable, "-m", "modelharbor", "admin", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or root,
        timeout=60,
    )


def obtain(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(url + "/v1/auth/obtain", json={"username": username, "password": password})


def mlflow_search(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1}, auth=(username, password))


@pytest.fixture(scope="module")
def first_start(tmp_path_factory):
    """A server's first start with no admin configured; yields (root, url, credentials, what the start printed)."""
    root = tmp_path_factory.mktemp("bootstrap")
    with running_server(root, "unused", **NO_ADMIN) as url:
        yield root, url, first_admin(root), (root / "server.log").read_text()


def test_the_first_start_shows_the_admin_once_and_saves_it_private(first_start):
    root, _url, creds, log = first_start
    username, password, key = creds["MODELHARBOR_USERNAME"], creds["MODELHARBOR_PASSWORD"], creds["MODELHARBOR_API_KEY"]
    assert username == "admin" and key.startswith("mh_") and len(password) >= 20
    saved = root / "data" / "initial-admin.env"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert f"Admin created (shown only now; also saved to {root / 'data' / 'initial-admin.env'}, mode 0600):" in log
    assert f"    username: admin\n    password: {password}\n    API key:  {key}\n" in log
    assert log.count(password) == 1 and log.count(key) == 1


def test_the_generated_password_works_for_ufdl_and_mlflow_basic_auth(first_start):
    _root, url, creds, _log = first_start
    username, password = creds["MODELHARBOR_USERNAME"], creds["MODELHARBOR_PASSWORD"]
    r = obtain(url, username, password)
    assert r.status_code == 200 and set(r.json()) == {"access", "refresh"}, r.text
    listed = httpx.post(url + "/v1/pretrained-models/list", headers={"Authorization": f"Bearer {r.json()['access']}"})
    assert listed.status_code == 200 and listed.json() == [], listed.text
    assert obtain(url, username, password + "x").status_code == 401
    r = mlflow_search(url, username, password)
    assert r.status_code == 200 and "experiments" in r.json(), r.text
    assert mlflow_search(url, username, "wrong-password").status_code == 401


def test_the_real_mlflow_client_logs_in_with_the_password(first_start, monkeypatch):
    from mlflow.tracking import MlflowClient

    _root, url, creds, _log = first_start
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", creds["MODELHARBOR_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds["MODELHARBOR_PASSWORD"])
    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment("bootstrap-basic-auth")
    assert client.get_experiment(experiment).name == "bootstrap-basic-auth"


def test_set_password_on_the_local_database_then_a_later_start_prints_no_secret(first_start, tmp_path):
    root, url, creds, _log = first_start
    old = creds["MODELHARBOR_PASSWORD"]
    done = admin_cli(root, "set-password", "admin", "--password-stdin", stdin="a new admin pass\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("password of 'admin' set in the local database sqlite:///")
    assert str(root / "data" / "modelharbor.db") in done.stdout and "initial-admin.env" in done.stdout
    assert obtain(url, "admin", "a new admin pass").status_code == 200  # the running server sees it at once
    assert obtain(url, "admin", old).status_code == 401

    before = len((root / "server.log").read_text())
    with running_server(root, "unused", **NO_ADMIN) as again:  # a later start on the same data directory
        assert mlflow_search(again, "admin", "a new admin pass").status_code == 200
    later = (root / "server.log").read_text()[before:]
    lines = [line for line in later.splitlines() if line.startswith("Admin")]
    assert lines == [
        f"Admin credentials: in {root / 'data' / 'initial-admin.env'} (from the first start; store them elsewhere, "
        "delete the file)"
    ], later
    for secret in (old, creds["MODELHARBOR_API_KEY"], "a new admin pass"):
        assert secret not in later


def test_set_password_refuses_clearly(first_start, tmp_path):
    root, _url, _creds, _log = first_start
    for args, stdin, message in [
        (("set-password", "nobody", "--password-stdin"), "long enough pass\n", "error: no user 'nobody' (database"),
        (("set-password", "admin", "--password-stdin"), "short\n", "error: a password has 12 to 1024 characters"),
        (
            ("set-password", "admin"),
            "",
            "error: no terminal to ask for the password on: pipe it in with --password-stdin",
        ),
    ]:
        done = admin_cli(root, *args, stdin=stdin)
        assert done.returncode == 2 and done.stderr.startswith(message), done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = admin_cli(root, "set-password", "admin", "--password-stdin", stdin="long enough pass\n", cwd=elsewhere)
    assert done.returncode == 2 and done.stderr.startswith(f"error: no database at {elsewhere / 'data'}"), done.stderr
    assert list(elsewhere.iterdir()) == []  # nothing created where it was run
