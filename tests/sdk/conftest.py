"""A real ``modelharbor serve`` process for the SDK/CLI tests (session-scoped), its environment, and a config file
of the tests' own (never the user's ``~/.config/modelharbor``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelharbor.sdk import Client
from tests.servers import running_server

SDK_ADMIN_KEY = "mh_sdk_test_admin_key_0123456789"


@dataclass(frozen=True)
class Harbor:
    url: str
    key: str
    root: Path

    def env(self, state_dir: Path, **extra: str) -> dict[str, str]:
        """Environment for a CLI run talking to this server (its own state directory and config file)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHARBOR_")}
        env.update(
            MODELHARBOR_URL=self.url,
            MODELHARBOR_API_KEY=self.key,
            MODELHARBOR_STATE_DIR=str(state_dir),
            MODELHARBOR_CONFIG=str(Path(state_dir) / "config.toml"),
            COLUMNS="200",
            **extra,
        )
        return env


@pytest.fixture(autouse=True)
def _own_config(tmp_path, monkeypatch):
    """Every test gets a config file of its own, and none of the client's settings of the shell running the tests."""
    for name in ("MODELHARBOR_URL", "MODELHARBOR_API_KEY", "MODELHARBOR_PROFILE", "MODELHARBOR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELHARBOR_CONFIG", str(tmp_path / "own-config" / "config.toml"))


@pytest.fixture(scope="session")
def harbor(tmp_path_factory) -> Harbor:
    root = tmp_path_factory.mktemp("harbor")
    with running_server(root, SDK_ADMIN_KEY) as url:
        yield Harbor(url=url, key=SDK_ADMIN_KEY, root=root)


@pytest.fixture
def client(harbor):
    """An SDK client of the session's server, as its admin."""
    with Client(harbor.url, harbor.key, timeout=30) as c:
        yield c
