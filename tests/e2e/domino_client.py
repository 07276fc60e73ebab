"""The real ``dominodatalab`` client, in a virtual environment of its own, driven as a subprocess.

``dominodatalab==2.2.0`` pins ``packaging==23.2``, which the project's own environment cannot hold, so the tests
run it from ``.venv-clients/domino/`` (``MODELHARBOR_CLIENT_VENVS`` moves the parent directory): created on first
use with the interpreter running the tests (``python -m venv``, then ``pip install dominodatalab==2.2.0`` from the
configured package indexes), reused while its stamp says the same version and Python, rebuilt otherwise.

Use (tests/e2e/conftest.py provides the fixtures)::

    def test_x(domino_python, tmp_path_factory):
        with running_server(root, KEY) as url:
            client = DominoClient(domino_python, url, KEY, project="admin/demo")
            assert client.run("emit(d.get_user_id('admin'))") == admin_id

A snippet runs with ``d`` (a constructed ``Domino(project, api_key=..., host=...)``; pass ``construct=False`` to
build it yourself from ``Domino``, ``host``, ``api_key``, ``project``), ``requests`` imported, and ``emit(value)``,
whose JSON-encoded value ``run`` returns. A snippet that raises fails the test with the client's traceback;
``run_raw`` returns the finished process instead (to assert on a failure).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

DOMINO_CLIENT = "dominodatalab==2.2.0"
REPO = Path(__file__).resolve().parents[2]
_RESULT = "@@modelharbor-result@@"

_PRELUDE = f"""
import json, sys
import requests
from domino import Domino

host, api_key, project = sys.argv[1], sys.argv[2], sys.argv[3]

def emit(value):
    print({_RESULT!r} + json.dumps(value, default=str))

if sys.argv[4] == "1":
    d = Domino(project, api_key=api_key, host=host)
"""


def venvs_root() -> Path:
    return Path(os.environ.get("MODELHARBOR_CLIENT_VENVS") or REPO / ".venv-clients")


def _stamp() -> str:
    return f"{DOMINO_CLIENT} python={sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"


def ensure_domino_venv(root: Path | None = None) -> Path:
    """The python of the client's own venv under ``root`` (default :func:`venvs_root`), created if missing or stale.
    Idempotent and safe to call from concurrent test processes (a file lock serialises the build)."""
    root = root or venvs_root()
    venv = root / "domino"
    python = venv / "bin" / "python"
    stamp = venv / ".modelharbor-stamp"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".domino.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        print(f"\n==> creating {venv} for the real Domino client ({DOMINO_CLIENT})", file=sys.stderr)
        steps = (
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DOMINO_CLIENT],
        )
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        stamp.write_text(_stamp())  # last: a half-built venv has no stamp and is rebuilt
        return python


class ClientScriptFailed(AssertionError):
    pass


class DominoClient:
    """Runs snippets with the real client against one server (``url``) as one user (``api_key``)."""

    def __init__(self, python: Path, url: str, api_key: str, project: str = "owner/project"):
        self.python, self.url, self.api_key, self.project = python, url, api_key, project

    def run_raw(
        self, snippet: str, *, construct: bool = True, project: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOMINO_", "MODELHARBOR_", "PYTHON"))}
        args = [self.url, self.api_key, project or self.project, "1" if construct else "0"]
        return subprocess.run(
            [str(self.python), "-c", _PRELUDE + "\n" + snippet, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )

    def popen(self, snippet: str, **kwargs: Any) -> subprocess.Popen:
        """The snippet started in the background (a test that kills it, or the server, mid-way); its output piped."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOMINO_", "MODELHARBOR_", "PYTHON"))}
        args = [self.url, self.api_key, self.project, "1"]
        return subprocess.Popen(
            [str(self.python), "-c", _PRELUDE + "\n" + snippet, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            **kwargs,
        )

    def run(self, snippet: str, **kwargs: Any) -> Any:
        """The value the snippet ``emit``\\ ted (None without one); a failing snippet fails the test."""
        done = self.run_raw(snippet, **kwargs)
        if done.returncode != 0:
            raise ClientScriptFailed(f"the client snippet failed ({done.returncode}):\n{snippet}\n{done.stderr}")
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(_RESULT):
                return json.loads(line[len(_RESULT) :])
        return None
