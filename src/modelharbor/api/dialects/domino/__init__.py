"""Domino Data Lab dialect: ``GET /version`` and the registered-model API (``/api/registeredmodels/v1``, ``/v2``),
so scripts and the ``dominodatalab`` client work against ModelHarbor. Served at the root, as the client strips any
path from its host. See docs/dialects/domino.md for coverage.
"""

from modelharbor.api.dialects.domino.common import mounts, routes

__all__ = ["mounts", "routes"]
