"""A real ``modelharbor serve`` process for the SDK tests (session-scoped), and its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import running_server

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


@pytest.fixture(scope="session")
def harbor(tmp_path_factory) -> Harbor:
    root = tmp_path_factory.mktemp("harbor")
    with running_server(root, SDK_ADMIN_KEY) as url:
        yield Harbor(url=url, key=SDK_ADMIN_KEY, root=root)
