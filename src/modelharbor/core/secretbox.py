"""Encryption at rest for values the server must be able to read back (environment variables and secrets).

AES-256-GCM with a key derived (HKDF-SHA256) from the server's secret key and a purpose label, so the same
server key yields different keys for different uses. Each value gets a fresh 96-bit nonce; the stored form is
``version byte || nonce || ciphertext+tag``. Changing MODELHARBOR_SECRET_KEY makes stored values unreadable:
:meth:`SecretBox.open` then raises, and callers report the value as lost rather than returning garbage.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class SecretUnreadable(Exception):
    """A stored value cannot be decrypted (the server key changed, or the data is damaged)."""


class SecretBox:
    def __init__(self, server_key: str, purpose: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"modelharbor/{purpose}".encode()).derive(
            server_key.encode()
        )
        self._aead = AESGCM(key)
        self._aad = purpose.encode()

    def seal(self, value: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode(), self._aad)

    def open(self, sealed: bytes) -> str:
        if not sealed or sealed[:1] != _VERSION or len(sealed) < 29:
            raise SecretUnreadable("the stored value is not in a format this server reads")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], self._aad).decode()
        except InvalidTag:
            raise SecretUnreadable(
                "the stored value cannot be decrypted: was MODELHARBOR_SECRET_KEY changed? Set the value again."
            ) from None
