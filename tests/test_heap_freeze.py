"""A server process moves what start-up allocated out of the garbage collector's sight (``gc.freeze``), so full
collections do not walk it again every few hundred requests (a 100–200 ms pause: bench/README.md); an app built
in a test does not, as a test process builds many apps and drops them."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from modelharbor.app import create_app


def test_a_server_freezes_its_startup_heap_and_a_test_app_does_not(settings, services):
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, services, run_workers=False)) as c:
            assert c.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, services, run_workers=False, freeze_heap=True)) as c:
            assert c.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 100_000  # modules, routes, schemas: several hundred thousand objects
    finally:
        gc.unfreeze()
