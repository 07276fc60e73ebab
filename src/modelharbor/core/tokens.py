"""JSON Web Tokens (HS256) for dialects that log in with a username and password (UFDL's /v1/auth).

Access tokens are short-lived (``JWT_ACCESS_TTL``), refresh tokens longer (``JWT_REFRESH_TTL``); neither is
stored. Every use re-reads the user's membership, so removing a user takes effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from modelharbor.core.identity import IdentityService
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal

ACCESS, REFRESH = "access", "refresh"


class TokenInvalid(Unauthenticated):
    code = "token_not_valid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class TokenService:
    def __init__(self, identity: IdentityService, secret_key: str, *, access_ttl: int, refresh_ttl: int):
        self.identity = identity
        self._key = hmac.new(secret_key.encode(), b"modelharbor/jwt/v1", hashlib.sha256).digest()
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def _encode(self, claims: dict[str, Any]) -> str:
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        bad = TokenInvalid("Token is invalid or expired")
        if len(token) > 4096 or token.count(".") != 2:
            raise bad
        head, body, sig = token.split(".")
        try:
            expected = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(sig)):
                raise bad
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
        except (ValueError, TypeError):
            raise bad from None
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
            raise bad
        if claims.get("jtt") != kind or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise bad
        return claims

    def _pair_claims(self, principal: Principal, kind: str, ttl: int) -> dict[str, Any]:
        t = int(time.time())
        return {
            "jtt": kind,
            "upk": principal.user_id,
            "org": principal.org_id,
            "iat": t,
            "exp": t + ttl,
            "jti": secrets.token_hex(8),
        }

    def obtain(self, username: str, password: str) -> tuple[str, str]:
        """(refresh, access) for a username and password (the edge checks they are strings: UFDL's DRF fields)."""
        try:
            principal = self.identity.authenticate_password(username, password)
        except Unauthenticated:
            raise Unauthenticated("No active account found with the given credentials") from None
        return (
            self._encode(self._pair_claims(principal, REFRESH, self.refresh_ttl)),
            self._encode(self._pair_claims(principal, ACCESS, self.access_ttl)),
        )

    def refresh(self, refresh_token: str) -> str:
        claims = self._decode(refresh_token, REFRESH)
        principal = self._principal(claims)
        return self._encode(self._pair_claims(principal, ACCESS, self.access_ttl))

    def verify(self, token: str) -> None:
        """Accepts a valid access or refresh token; raises TokenInvalid otherwise."""
        try:
            self._decode(token, ACCESS)
        except TokenInvalid:
            self._decode(token, REFRESH)

    def authenticate(self, access_token: str) -> Principal:
        return self._principal(self._decode(access_token, ACCESS))

    def _principal(self, claims: dict[str, Any]) -> Principal:
        try:
            return self.identity.principal_by_ids(str(claims.get("upk")), str(claims.get("org")))
        except Exception:
            raise TokenInvalid("Token is invalid or expired") from None
