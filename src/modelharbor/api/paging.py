"""Page tokens at the edge: the core pages by offset (:class:`modelharbor.domain.query.Page` carries the next
one); the MLflow dialect, Domino's registry and the native API hand that offset out as an opaque token, base64
JSON ``{"offset": n}``, and read it back here."""

from __future__ import annotations

import base64
import json
from typing import Any

from modelharbor.core.jsontext import token_offset
from modelharbor.domain.errors import InvalidInput


def encode_token(offset: int | None) -> str | None:
    """The page token of a page starting at ``offset`` (None: no next page)."""
    if offset is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: Any) -> int:
    """The offset a page token carries (0 without one: None or empty); a malformed token, or one that is not a
    string, is a 400 ``INVALID_INPUT``."""
    if token is None or token == "":
        return 0
    if not isinstance(token, str):
        raise InvalidInput(f"Invalid page token {token!r}.")
    try:
        return token_offset(token)
    except ValueError:
        raise InvalidInput(f"Invalid page token {token!r}.") from None
