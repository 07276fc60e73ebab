"""A real ``modelharbor serve`` process for tests that drive it with real clients (SDK, mlflow, curl-like)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(root: Path, key: str, **env_extra: str) -> Iterator[str]:
    """Start a server with its data under ``root`` and ``key`` as the admin key; yield its URL; stop it."""
    proc, url = start_server(root, key, **env_extra)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(root: Path, key: str, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """A started server (answering /healthz) and its URL; the caller stops it (or kills it: ``proc.kill()``).
    Its output goes to ``root/server.log`` (appended to, so a restarted server adds to the same log).

    The port is a free one picked just before the start. Under ``pytest -n`` another worker can take it in between:
    a server that exits saying its address is in use is started again on another port (three tries)."""
    for attempt in range(3):
        log = root / "server.log"
        seen = log.stat().st_size if log.exists() else 0
        try:
            return _start_once(root, key, free_port(), env_extra, seen)
        except _PortTaken:
            if attempt == 2:
                pytest.fail(f"three free ports were taken before the server could bind:\n{log.read_text()[seen:]}")
    raise AssertionError("unreachable")


class _PortTaken(Exception):
    pass


def _listens(pid: int, port: int) -> bool:
    """Whether ``pid`` holds the listening socket on ``port`` (not another worker's server that took it first)."""
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def _start_once(root: Path, key: str, port: int, env_extra: dict[str, str], seen: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    env.update(
        MODELHARBOR_DATA_DIR=str(root / "data"),
        MODELHARBOR_ADMIN_USER="admin",
        MODELHARBOR_ADMIN_KEY=key,
        MODELHARBOR_SECRET_KEY="x",
        MODELHARBOR_LOG_LEVEL="warning",
    )
    env.update(env_extra)  # the caller's settings win
    with open(root / "server.log", "ab") as log:  # the child keeps its own descriptor
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
                text = (root / "server.log").read_text()
                if "address already in use" in text[seen:].lower():
                    raise _PortTaken
                pytest.fail(f"the server exited with {proc.returncode}:\n{text}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200 and _listens(proc.pid, port):
                    return proc, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz in 30 s:\n{(root / 'server.log').read_text()}")
            time.sleep(0.1)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def first_admin(root: Path) -> dict[str, str]:
    """The credentials a first start wrote to ``root/data/initial-admin.env`` (``MODELHARBOR_USERNAME``,
    ``MODELHARBOR_PASSWORD``, ``MODELHARBOR_API_KEY``)."""
    text = (root / "data" / "initial-admin.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


_CREATE_USER = """
import sys
from modelharbor.domain.principal import Role
from modelharbor.services import build_services
from modelharbor.settings import Settings

name, role = sys.argv[1], sys.argv[2]
identity = build_services(Settings()).identity
admin = identity.principal_for(identity.first_superuser(), "default")
identity.create_user(admin, name, role=Role(role))
print(identity.create_key(admin, f"{name} (created with the user)", username=name).secret)
"""


def create_user(root: Path, name: str, role: str = "member") -> str:
    """A user (and an API key for them) made directly in a running server's own data directory (``root`` of
    ``running_server``), as an admin on that machine could; returns the user's API key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
    env["MODELHARBOR_DATA_DIR"] = str(root / "data")
    out = subprocess.run(
        [sys.executable, "-c", _CREATE_USER, name, role],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
        timeout=60,
    ).stdout
    return out.strip().splitlines()[-1]
