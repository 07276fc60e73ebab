"""Domino's legacy ``/v1/projects`` and ``/v1/models`` routes (the ``dominodatalab`` client's),
mounted at those prefixes beside UFDL's ``/v1`` (api/dialect.py ``PrefixMount``: the more specific prefix wins, and
``GET /v1/environments``, served by routes/environments.py, is that mount's route ``/``).

One router per prefix; the routes come with the work that serves them (project files, environments, …). Until a
path has its route it answers Domino's 404 envelope (``no such Domino API route in ModelHarbor; see
docs/dialects/domino.md``), where the gaps are listed — never UFDL's answer.
"""

from __future__ import annotations

from fastapi import APIRouter

projects = APIRouter()  # /v1/projects/{owner}/{project}/…: files, commits, blobs, runs
models = APIRouter()  # /v1/models: legacy Model Manager
