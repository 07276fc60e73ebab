"""A hostile deployment against a real ``modelharbor serve``: the snoop package of issue 12 reads the server's
environment (it holds the admin key), the secret key, the database, another deployment's package, and tries to
kill the server — it gets nothing and the server keeps answering. Skipped, saying why, where user code cannot be
isolated (no bubblewrap); ``make test`` installs it when run as root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelharbor.compute.sandbox import Sandbox
from modelharbor.sdk import Client
from tests.sdk.test_deploy_cli import ADDER, package_dir
from tests.servers import start_server

KEY = "mh_isolation_test_key_0123456789ab"

SNOOP = """
import json, os, signal

def attempt(fn):
    try:
        value = fn()
        return "GOT: " + (value if isinstance(value, str) else repr(value))[:300]
    except BaseException as exc:
        return "refused: " + type(exc).__name__

class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        ask = json.loads(data)
        out = {"env": sorted(os.environ), "uid": os.getuid()}
        for name, path in ask["read"].items():
            out[name] = attempt(lambda path=path: open(path, "rb").read().decode("latin-1"))
        out["kill_server"] = attempt(lambda: os.kill(ask["server_pid"], signal.SIGKILL))
        out["kill_parent"] = attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))
        return json.dumps(out)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    box = Sandbox("auto")
    if not box.isolated:
        pytest.skip(f"this machine cannot isolate user code: {box.reason}")
    root = tmp_path_factory.mktemp("isolation")
    proc, url = start_server(root, KEY, MODELHARBOR_SECRET_KEY="")  # the key goes into DATA_DIR/secret_key
    try:
        yield proc, url, root
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_snoop_package_gets_nothing_and_the_server_is_unharmed(server, tmp_path):
    proc, url, root = server
    data = root / "data"
    with Client(url, KEY, timeout=60) as client:
        client.deployments.deploy(
            "isolation",
            "adder",
            package_dir(tmp_path / "adder", ADDER),
            input_fields={"n": "int"},
            output_fields={"m": "int"},
            maximum_idle_time=30,
        )
        client.deployments.deploy(
            "isolation", "snoop", package_dir(tmp_path / "snoop", SNOOP), plain=True, maximum_idle_time=30
        )
        packages = sorted((data / "serving" / "packages").glob("*/**/deployment.py"))
        adder_package = next(p for p in packages if "unlucky" in p.read_text())
        ask = {
            "server_pid": proc.pid,
            "read": {
                "server_environ": f"/proc/{proc.pid}/environ",
                "secret_key": str(data / "secret_key"),
                "database": str(data / "modelharbor.db"),
                "other_package": str(adder_package),
            },
        }
        assert all(Path(p).exists() for p in ask["read"].values())  # each is there to be stolen
        answer = client.deployments.predict("isolation", "snoop", json.dumps(ask))
        assert answer.status == "completed", answer
        got = json.loads(answer.result)
        for name in ask["read"]:
            assert got[name] in ("refused: FileNotFoundError", "refused: PermissionError"), (name, got[name])
        assert got["kill_server"].startswith("refused") and got["kill_parent"].startswith("refused")
        assert got["uid"] != os.getuid()
        assert not [k for k in got["env"] if k.startswith("MODELHARBOR")], got["env"]
        # the server is unharmed and still serves the other deployment
        assert proc.poll() is None
        assert client.deployments.predict("isolation", "adder", {"n": 1}).result == {"m": 2}
    # the data directory is the server's alone
    assert Path(data / "secret_key").stat().st_mode & 0o077 == 0
