"""A real ``modelharbor serve`` process for the SDK tests (session-scoped), and its environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SDK_ADMIN_KEY = "mh_sdk_test_admin_key_0123456789"


@dataclass(frozen=True)
class Harbor:
    url: str
    key: str
    root: Path

    def env(self, state_dir: Path, **extra: str) -> dict[str, str]:
        """Environment for a CLI subprocess talking to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
        env.update(
            MODELHARBOR_URL=self.url,
            MODELHARBOR_API_KEY=self.key,
            MODELHARBOR_STATE_DIR=str(state_dir),
            COLUMNS="200",
            **extra,
        )
        return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def harbor(tmp_path_factory) -> Harbor:
    root = tmp_path_factory.mktemp("harbor")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    env.update(
        MODELHARBOR_DATA_DIR=str(root / "data"),
        MODELHARBOR_ADMIN_USER="admin",
        MODELHARBOR_ADMIN_KEY=SDK_ADMIN_KEY,
        MODELHARBOR_SECRET_KEY="x",
        MODELHARBOR_LOG_LEVEL="warning",
    )
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelharbor", "serve", "--port", str(port)],
        cwd=root,  # away from any .env of the checkout
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{(root / 'server.log').read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz in 30 s:\n{(root / 'server.log').read_text()}")
            time.sleep(0.1)
        yield Harbor(url=url, key=SDK_ADMIN_KEY, root=root)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
