"""The client commands of ``modelharbor`` (one module per noun), a thin layer over the SDK: they talk to a server —
the one ``modelharbor login`` saved, or ``--url``/``--key``/``--profile``, or ``MODELHARBOR_URL`` /
``MODELHARBOR_API_KEY`` — never to a database file."""

from __future__ import annotations

import typer

from modelharbor.sdk.cli import (
    access_requests,
    catalogue,
    data_sources,
    datasets,
    deployments,
    env,
    files,
    hardware_tiers,
    identity,
    models,
    pipelines,
    project_files,
    projects,
    session,
    transfer,
)
from modelharbor.sdk.cli.common import parse_size

NOUNS = (
    session,
    files,
    catalogue,
    models,
    projects,
    project_files,
    deployments,
    env,
    pipelines,
    transfer,
    identity,
    hardware_tiers,
    access_requests,
    data_sources,
    datasets,
)


def register(app: typer.Typer) -> None:
    """Add every client command to ``modelharbor``."""
    for noun in NOUNS:
        noun.register(app)


__all__ = ["register", "parse_size"]
