"""Blob storage: one :class:`BlobStore` over obstore's local, S3 and memory stores.

Keys are opaque strings built by the core; no backend knows the domain.
"""

from modelharbor.storage.base import BlobStore, open_blob_store

__all__ = ["BlobStore", "open_blob_store"]
