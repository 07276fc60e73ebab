"""ModelHarbor's own API at ``/api/v1``: Bearer keys, snake_case JSON, one error shape. The SDK's contract."""

from modelharbor.api.native.app import create_native_app

__all__ = ["create_native_app"]
