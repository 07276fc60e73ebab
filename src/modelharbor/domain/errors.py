"""The error catalogue: every failure the core raises, with a stable machine code.

Dialects map these to their own status codes and envelopes in exactly one place each.
"""

from __future__ import annotations

from typing import Any


class HarborError(Exception):
    """Base of every domain error. ``code`` is stable; ``message`` says what to do."""

    code = "ERROR"
    status = 400  # the natural HTTP status; dialects may choose another

    def __init__(self, message: str, *, code: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(HarborError):
    code = "INVALID_INPUT"
    status = 400


class Unauthenticated(HarborError):
    code = "UNAUTHENTICATED"
    status = 401


class Forbidden(HarborError):
    code = "FORBIDDEN"
    status = 403


class NotFound(HarborError):
    code = "NOT_FOUND"
    status = 404


class Conflict(HarborError):
    code = "CONFLICT"
    status = 409


class Gone(HarborError):
    code = "GONE"
    status = 410


class TooLarge(HarborError):
    code = "TOO_LARGE"
    status = 413


class UnsupportedType(HarborError):
    code = "UNSUPPORTED_TYPE"
    status = 415


class RangeNotSatisfiable(HarborError):
    code = "RANGE_NOT_SATISFIABLE"
    status = 416


class LinkInvalid(HarborError):
    code = "INVALID_SIGNATURE"
    status = 403


class LinkExpired(HarborError):
    code = "URL_EXPIRED"
    status = 403
