"""UFDL dialect: the University of Waikato's UFDL pretrained-model API (plus its JWT auth, frameworks, licences
and domains), so UFDL's Python and TypeScript clients work against ModelHarbor.

Mounted at ``/v1``. See docs/dialects/ufdl.md for coverage and deliberate differences.
"""

from modelharbor.api.dialects.ufdl.routes import mounts

__all__ = ["mounts"]
