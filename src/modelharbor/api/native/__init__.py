"""ModelHarbor's own API at ``/api/v1``: Bearer keys, snake_case JSON, one error shape. The SDK's contract.

``create_native_app`` is imported on first use, so that the SDK can import the wire schemas (``schemas.py``, which
imports only pydantic) without loading the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelharbor.api.native.app import create_native_app


def __getattr__(name: str) -> Any:
    if name == "create_native_app":
        from modelharbor.api.native.app import create_native_app

        return create_native_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_native_app"]
