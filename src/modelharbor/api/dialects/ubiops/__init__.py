"""UbiOps dialect: projects, environments, deployments, versions, package revisions, requests and environment
variables as the ``ubiops`` client (4.15; API v2, also v2.1) calls them. Mounted at ``/v2`` and ``/v2.1``;
``GET /status`` is open. See docs/dialects/ubiops.md for coverage and gaps.
"""

from modelharbor.api.dialects.ubiops.common import mounts, routes
from modelharbor.api.dialects.ubiops.fast import FastPath

__all__ = ["FastPath", "mounts", "routes"]
