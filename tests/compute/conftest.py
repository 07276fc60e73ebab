"""Fixtures for the compute layer: real worker processes from real packages on disk."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from modelharbor.compute.base import WorkerSpec
from modelharbor.compute.local import LocalExecutor
from tests.compute.helpers import SERVER_ENV, live_children


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """Write a package directory: ``make_package(code, name=..., files={relpath: text})``."""
    counter = iter(range(1000))

    def make(code: str | None, name: str | None = None, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / (name or f"pkg{next(counter)}")
        root.mkdir(parents=True)
        if code is not None:
            (root / "deployment.py").write_text(textwrap.dedent(code))
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(textwrap.dedent(text))
        return root

    return make


@pytest.fixture
def make_spec() -> Callable[..., WorkerSpec]:
    def make(package: Path, key: str = "v1", revision: str = "r1", **kwargs) -> WorkerSpec:
        kwargs.setdefault("environment", SERVER_ENV)
        return WorkerSpec(key=key, revision=revision, package_dir=package, **kwargs)

    return make


@pytest.fixture
def executor():
    """A LocalExecutor with short back-offs; shut down after the test, which must leave no process behind."""
    before = {p.pid for p in live_children()}
    ex = LocalExecutor(backoff=0.05, backoff_max=0.2, stop_grace=2.0, tick=0.05)
    try:
        yield ex
    finally:
        ex.shutdown()
        leftover = [p for p in live_children() if p.pid not in before]
        described = []
        for p in leftover:  # never leave processes behind, even when the test failed
            with contextlib.suppress(psutil.Error):
                described.append((p.pid, p.cmdline()))
                p.kill()
        assert not leftover, f"processes left behind: {described}"
