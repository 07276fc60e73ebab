"""Kore.ai dialect: file upload (single and chunked sessions), model import, dock status, signed media URLs.

Mounted at ``/api/public`` and ``/api/getMediaStream``. See docs/dialects/kore.md for coverage and gaps.
"""

from modelharbor.api.dialects.kore.routes import mounts

__all__ = ["mounts"]
