"""``modelharbor login / logout / whoami / profiles``, ``--version``, ``--debug``, shell completion, and the one-line
errors of a wrong URL, a wrong, revoked or expired key and a server of another version — against a real server (and
a small HTTP server that speaks like another version of ModelHarbor)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelharbor import __version__
from modelharbor.cli import app
from modelharbor.sdk import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(harbor, tmp_path):
    """A CLI environment with no URL or key: only what `login` saves (in this test's own config file)."""
    values = harbor.env(tmp_path / "state")
    del values["MODELHARBOR_URL"], values["MODELHARBOR_API_KEY"]
    return values


def run(env: dict[str, str], *args: str, code: int = 0, input: str | None = None):
    result = CliRunner().invoke(app, list(args), env=env, input=input)
    assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def process(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """The real command in a process of its own (what a user's shell runs)."""
    return subprocess.run(
        [sys.executable, "-m", "modelharbor", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_login_whoami_profiles_logout(harbor, env, tmp_path):
    config = Path(env["MODELHARBOR_CONFIG"])
    assert (
        "no API key" in run(env, "files", "list", code=2).stderr
        and "modelharbor login" in run(env, "whoami", code=2).stderr
    )

    # the key piped in (as `modelharbor login < data/initial-admin.env` does), checked with /me, saved 0600
    done = run(env, "login", "--url", harbor.url + "/", input=f"key: {harbor.key}\n")
    assert f"logged in to {harbor.url} (ModelHarbor {__version__}) as admin (owner, superuser)" in done.stdout
    assert f"saved as profile 'default' (the default) in {config}" in done.stdout
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    saved = tomllib.loads(config.read_text())
    assert saved == {"default": "default", "profiles": {"default": {"url": harbor.url, "api_key": harbor.key}}}

    me = run(env, "whoami").stdout
    assert "user: admin" in me and "role: owner (superuser)" in me and f"server: {harbor.url}" in me
    assert f"key: the key of profile 'default' ({config})" in me
    who = json.loads(run(env, "whoami", "--json").stdout)
    assert (who["username"], who["url"], who["profile"], who["server_version"]) == (
        "admin",
        harbor.url,
        "default",
        __version__,
    )
    assert "file(s)" in run(env, "files", "list").stdout  # no --url, no --key: the profile's

    # a second profile, with a key of its own; --profile and MODELHARBOR_PROFILE choose it
    with Client(harbor.url, harbor.key) as c:
        second = c.keys.create("second profile")
    run(env, "login", "--url", harbor.url, "--key", second.key, "--profile", "work", "--no-default")
    assert tomllib.loads(config.read_text())["default"] == "default"
    profiles = json.loads(run(env, "profiles", "--json").stdout)
    assert [(p["name"], p["default"]) for p in profiles] == [("default", True), ("work", False)]
    assert second.key not in run(env, "profiles").stdout  # never the keys
    assert "the key of profile 'work'" in run(env, "whoami", "--profile", "work").stdout
    assert "the key of profile 'work'" in run({**env, "MODELHARBOR_PROFILE": "work"}, "whoami").stdout
    unknown = run(env, "whoami", "--profile", "nope", code=1).stderr
    assert "no profile 'nope'" in unknown and "modelharbor login --profile nope" in unknown

    # the environment beats the default profile; a profile's key never goes to another URL
    assert "the key in MODELHARBOR_API_KEY" in run({**env, "MODELHARBOR_API_KEY": harbor.key}, "whoami").stdout
    elsewhere = run({**env, "MODELHARBOR_URL": "http://127.0.0.1:9"}, "whoami", code=2).stderr
    assert "no API key for http://127.0.0.1:9" in elsewhere

    # a wrong key is refused at login, and nothing is saved
    before = config.read_text()
    wrong = run(env, "login", "--url", harbor.url, "--key", "mh_wrong_key_0123456789", "--profile", "x", code=1)
    assert "refused this key (unknown API key); nothing saved" in wrong.stderr
    assert config.read_text() == before

    assert "forgot 'work'" in run(env, "logout", "--profile", "work").stdout
    assert "forgot 'default'" in run(env, "logout").stdout
    assert tomllib.loads(config.read_text()) == {}
    assert "not logged in" in run(env, "logout", code=1).stderr


def test_a_config_file_others_can_read_is_warned_about(harbor, env):
    run(env, "login", "--url", harbor.url, "--key", harbor.key)
    config = Path(env["MODELHARBOR_CONFIG"])
    config.chmod(0o644)
    warned = run(env, "whoami")
    assert "warning:" in warned.stderr and "can be read by other users (mode 0644)" in warned.stderr
    assert f"chmod 600 {config}" in warned.stderr and "user: admin" in warned.stdout
    config.chmod(0o600)
    assert "warning" not in run(env, "whoami").stderr
    # a broken file says so in one line
    config.write_text("this is = = not toml")
    assert "cannot read the config file" in run(env, "whoami", code=1).stderr


def test_version_debug_and_completion(harbor, env):
    assert run(env, "--version").stdout == f"modelharbor {__version__}\n"
    wrong = {**env, "MODELHARBOR_URL": harbor.url, "MODELHARBOR_API_KEY": "mh_wrong_key_0123456789"}
    plain = process(wrong, "files", "list")
    assert plain.returncode == 1 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    for debug in (("--debug", "files", "list"), ("files", "list", "--debug")):
        shown = process(wrong, *debug)
        assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr, debug
        assert "unknown API key" in shown.stderr.splitlines()[-1]
    script = Path(sys.executable).with_name("modelharbor")
    if not script.exists():
        pytest.skip(f"no console script at {script}")
    completion = {**env, "_MODELHARBOR_COMPLETE": "complete_bash", "COMP_WORDS": "modelharbor fil", "COMP_CWORD": "1"}
    got = subprocess.run([str(script)], env=completion, capture_output=True, text=True, timeout=60)
    assert got.stdout.split() == ["files"]
    assert (
        "_modelharbor_completion"
        in subprocess.run(
            [str(script), "--show-completion", "bash"], env=env, capture_output=True, text=True, timeout=60
        ).stdout
    )


class _OtherVersion(BaseHTTPRequestHandler):
    """A server that calls itself ModelHarbor 9.0.0: its /me answers another shape, and it lacks /files."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/healthz":
            self._send(200, {"status": "ok", "version": "9.0.0"})
        elif self.path.startswith("/api/v1/me"):
            self._send(200, {"who": "admin"})
        elif self.path.startswith("/page/"):
            self._send(200, None)  # a web page where the API should be
        elif self.path.startswith("/api/v1/"):
            error = {"code": "NOT_FOUND", "message": "no such route in the native API; see /api/v1/openapi.json"}
            self._send(404, {"error": {**error, "details": {}}})
        else:
            self._send(404, None)

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode() if body is not None else b"<html>a page</html>"
        self.send_response(status)
        self.send_header("content-type", "application/json" if body is not None else "text/html")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def other_version():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherVersion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_bad_input_is_one_line_that_says_what_to_do(harbor, env, other_version):
    def fails(*args: str, **extra: str) -> str:
        done = process({**env, **extra}, *args)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        (line,) = done.stderr.strip().splitlines()
        return line

    key = {"MODELHARBOR_API_KEY": harbor.key}
    assert "cannot reach ModelHarbor at http://127.0.0.1:9" in fails(
        "files", "list", MODELHARBOR_URL="http://127.0.0.1:9", **key
    )
    assert "check the URL" in fails("files", "list", MODELHARBOR_URL="http://127.0.0.1:9", **key)
    assert "is not a server URL" in fails("files", "list", MODELHARBOR_URL="localhost:8000", **key)
    assert "does not look like a ModelHarbor server" in fails(
        "files", "list", MODELHARBOR_URL=harbor.url + "/api", **key
    )
    line = fails("files", "list", MODELHARBOR_URL=harbor.url, MODELHARBOR_API_KEY="mh_wrong_key_0123456789")
    assert line.startswith("error: unknown API key (the key in MODELHARBOR_API_KEY") and "`modelharbor login`" in line
    assert "keys create" not in line  # the server's advice is for those who have a key

    # a revoked key, an expired key
    with Client(harbor.url, harbor.key) as c:
        revoked, expired = c.keys.create("to revoke"), c.keys.create("to expire", expires_in_days=1)
        c.keys.revoke(revoked.id)
    line = fails("whoami", MODELHARBOR_URL=harbor.url, MODELHARBOR_API_KEY=revoked.key)
    assert "this API key was revoked" in line and "`modelharbor login`" in line
    with sqlite3.connect(harbor.root / "data" / "modelharbor.db") as db:
        db.execute("UPDATE api_keys SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?", (expired.id,))
    line = fails("whoami", MODELHARBOR_URL=harbor.url, MODELHARBOR_API_KEY=expired.key)
    assert "this API key has expired" in line and "`modelharbor login`" in line

    # a server of another version: an answer this client cannot read, a route it lacks
    line = fails("whoami", MODELHARBOR_URL=other_version, **key)
    assert "ModelHarbor 9.0.0" in line
    assert "a shape this client" in line and "pip install modelharbor==9.0.0" in line
    line = fails("files", "list", MODELHARBOR_URL=other_version, **key)
    assert "does not offer GET /api/v1/files" in line and "upgrade the server" in line
    assert "does not look like a ModelHarbor server" in fails("whoami", MODELHARBOR_URL=other_version + "/x", **key)
    page = fails("whoami", MODELHARBOR_URL=other_version + "/page", **key)
    assert "does not look like a ModelHarbor server" in page and "200 OK, not JSON" in page


def test_the_sdk_reads_the_environment_and_the_profile(harbor, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELHARBOR_URL", harbor.url)
    monkeypatch.setenv("MODELHARBOR_API_KEY", harbor.key)
    with Client() as c:
        assert (c.url, c.me().username, c.key_source) == (harbor.url, "admin", "the key in MODELHARBOR_API_KEY")
    monkeypatch.delenv("MODELHARBOR_URL")
    monkeypatch.delenv("MODELHARBOR_API_KEY")
    env = harbor.env(tmp_path / "state")
    del env["MODELHARBOR_URL"], env["MODELHARBOR_API_KEY"]
    run(env, "login", "--url", harbor.url, "--key", harbor.key, "--profile", "lab")
    with Client(config_path=env["MODELHARBOR_CONFIG"]) as c:
        assert (c.url, c.profile, c.me().username) == (harbor.url, "lab", "admin")
    monkeypatch.setenv("MODELHARBOR_CONFIG", env["MODELHARBOR_CONFIG"])
    with Client(profile="lab") as c:
        assert c.api_key == harbor.key
    with Client("http://127.0.0.1:9") as c:
        assert c.api_key is None  # the profile's key stays with its own server


def test_importing_the_sdk_loads_no_server_code():
    code = (
        "import sys, modelharbor.sdk, modelharbor.sdk.cli;"
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'starlette', 'modelharbor.core', 'modelharbor.db',"
        " 'modelharbor.api.native.app') if m in sys.modules]; print(bad)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
