"""The SDK's one exception, and the messages that tell a user what to do about a failure.

Every failure of a call is a :class:`HarborClientError`: the server's error (status, code, message, details) or a
local problem (status 0). Its message is one line (a build failure may add the build log's tail) that says what to
do, so the CLI prints it as it is.
"""

from __future__ import annotations

from typing import Any

LOGIN_HINT = "run `modelharbor login` (or pass a valid key: --key / MODELHARBOR_API_KEY)"


class HarborClientError(Exception):
    """A failed call: the server's error (status, code, message, details) or a local problem (status 0)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"HarborClientError(status={self.status}, code={self.code!r}, message={self.message!r})"


class InsecureConfigWarning(UserWarning):
    """The config file that holds API keys can be read by other users."""


def invalid(message: str, **details: Any) -> HarborClientError:
    """A local refusal of bad input (nothing was sent)."""
    return HarborClientError(0, "INVALID_INPUT", message, details)


def local_file(message: str) -> HarborClientError:
    return HarborClientError(0, "LOCAL_FILE", message)


def unauthenticated(server_message: str, url: str, key_source: str | None) -> str:
    """The advice for a 401: the server's reason (without its own advice), where the key came from, what to do."""
    reason = (server_message or "the API key was refused").split(";")[0].strip()
    if key_source is None:
        return f"no API key for {url}: {LOGIN_HINT}"
    return f"{reason} ({key_source}, for {url}): {LOGIN_HINT}"


def unreachable(url: str, exc: Exception) -> HarborClientError:
    text = str(exc).strip() or type(exc).__name__
    return HarborClientError(
        0,
        "UNREACHABLE",
        f"cannot reach ModelHarbor at {url} ({text}): check the URL (`modelharbor login --url`, --url or "
        "MODELHARBOR_URL) and that the server is running",
    )


def not_modelharbor(url: str, method: str, path: str, status: int, reason: str) -> HarborClientError:
    return HarborClientError(
        status,
        "NOT_MODELHARBOR",
        f"{url} does not look like a ModelHarbor server ({method} {path} answered {status} {reason}): check the URL "
        "(`modelharbor login --url`, --url or MODELHARBOR_URL); it is the server's base, e.g. http://127.0.0.1:8000",
    )


def older_server(url: str, method: str, path: str, server_version: str | None, client_version: str) -> str:
    server = f"ModelHarbor {server_version}" if server_version else "an unknown version"
    return (
        f"the server at {url} ({server}) does not offer {method} {path}, which this client ({client_version}) "
        "needs: upgrade the server, or use the client of its version"
    )


def incompatible(url: str, what: str, problem: str, server_version: str | None, client_version: str) -> str:
    server = f"ModelHarbor {server_version}" if server_version else "an unknown version"
    return (
        f"the server at {url} ({server}) answered {what} in a shape this client ({client_version}) does not know "
        f"({problem}): use the client of the server's version (pip install modelharbor=={server_version or '…'})"
    )
