"""Signed, expiring download links: HMAC-SHA256 over (file id, expiry, nonce, extra).

The signature is checked before the expiry, so a forged far-future expiry reads as a bad signature.
Dialects choose how the MAC travels (hex, the Kore.ai double-base64 form, ...); the core only signs bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from modelharbor.domain.errors import LinkExpired, LinkInvalid


@dataclass(frozen=True)
class SignedLink:
    file_id: str
    expires: int  # unix seconds
    nonce: str
    mac: bytes

    @property
    def signature(self) -> str:
        return self.mac.hex()


class LinkSigner:
    def __init__(self, secret_key: str):
        # a sub-key, so link MACs never double as anything else signed with the server key
        self._key = hmac.new(secret_key.encode(), b"modelharbor/links/v1", hashlib.sha256).digest()

    def _mac(self, file_id: str, expires: int, nonce: str, extra: str) -> bytes:
        msg = f"{file_id}\n{expires}\n{nonce}\n{extra}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def sign(self, file_id: str, ttl: int, *, extra: str = "", now: float | None = None) -> SignedLink:
        expires = int((now if now is not None else time.time()) + ttl)
        nonce = str(secrets.randbelow(9_000_000_000) + 1_000_000_000)
        return SignedLink(file_id, expires, nonce, self._mac(file_id, expires, nonce, extra))

    def verify(self, file_id: str, expires: str | int, nonce: str, mac: bytes, *, extra: str = "") -> None:
        try:
            expires_i = int(expires)
        except (TypeError, ValueError):
            raise LinkInvalid("the link's signature is invalid") from None
        if not nonce or not hmac.compare_digest(self._mac(file_id, expires_i, nonce, extra), mac):
            raise LinkInvalid("the link's signature is invalid; ask for a new link")
        if time.time() > expires_i:
            raise LinkExpired("the link has expired; ask for a new link")
