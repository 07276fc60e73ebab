"""The SDK's HTTP layer: one ``httpx`` client per thread that needs one, retries on connection errors and 5xx,
the server's errors as :class:`HarborClientError` with advice, and answers parsed into the typed objects.

Failures a user can act on get a message that says what to do: a server that cannot be reached, a URL that is no
ModelHarbor server, a missing, wrong, revoked or expired key (``modelharbor login``), a route this server does not
have (it is older than the client) and an answer this client cannot read (the server is newer or older).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from modelharbor import __version__
from modelharbor.sdk import errors
from modelharbor.sdk.errors import HarborClientError

API = "/api/v1"
RETRIES = 5  # attempts per request on connection errors and 5xx
RETRY_STATUSES = {429, 500, 502, 503, 504}
T = TypeVar("T")
_ADAPTERS: dict[Any, TypeAdapter] = {}


def seg(value: Any) -> str:
    """One URL path segment (names may hold spaces, '%', '?', '#', '/' …)."""
    return quote(str(value), safe="")


def backoff(attempt: int) -> None:
    time.sleep(min(0.25 * 2**attempt, 4.0))


class Transport:
    """Requests to one server's native API with one key."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float, key_source: str | None):
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        self.key_source = key_source
        self._version: str | None = None
        self.http = self.new_http()

    def new_http(self) -> httpx.Client:
        headers = {"user-agent": f"modelharbor-sdk/{__version__}"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return httpx.Client(
            base_url=self.url + API,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0)),
            follow_redirects=True,
        )

    def close(self) -> None:
        self.http.close()

    # --- errors ---------------------------------------------------------------------------------------------
    def server_version(self) -> str | None:
        """The server's version (``GET /healthz``), or None when it does not say."""
        if self._version is None:
            try:
                resp = httpx.get(self.url + "/healthz", timeout=min(self.timeout, 10.0), follow_redirects=True)
                body = resp.json()
                self._version = str(body["version"]) if isinstance(body, dict) and body.get("version") else ""
            except (httpx.HTTPError, ValueError, KeyError):
                self._version = ""
        return self._version or None

    def unreachable(self, exc: Exception) -> HarborClientError:
        return errors.unreachable(self.url, exc)

    def error(self, resp: httpx.Response) -> HarborClientError:
        """The server's error as a HarborClientError whose message says what to do."""
        code, message, details, enveloped = f"HTTP_{resp.status_code}", "", {}, False
        try:
            body = resp.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict) and isinstance(err.get("code"), str):
                enveloped = True
                code = err["code"]
                message = str(err.get("message") or "")
                details = err.get("details") if isinstance(err.get("details"), dict) else {}
        except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
            pass
        method, path = resp.request.method, resp.request.url.path
        if not enveloped and resp.status_code in (404, 405, 501):
            return errors.not_modelharbor(self.url, method, path, resp.status_code, resp.reason_phrase)
        if resp.status_code == 401:
            return HarborClientError(401, code, errors.unauthenticated(message, self.url, self.key_source), details)
        if (code == "NOT_FOUND" and message.startswith("no such route")) or code == "METHOD_NOT_ALLOWED":
            text = errors.older_server(self.url, method, path, self.server_version(), __version__)
            return HarborClientError(resp.status_code, "UNSUPPORTED_BY_SERVER", text, details)
        if not message:
            try:
                text = resp.text.strip()[:200]
            except httpx.ResponseNotRead:
                text = ""
            message = f"the server answered {resp.status_code} {resp.reason_phrase}" + (f": {text}" if text else "")
        return HarborClientError(resp.status_code, code, message, details)

    # --- requests -------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        http: httpx.Client | None = None,
        retries: int = RETRIES,
        per_attempt: Callable[[], dict[str, Any]] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """A request with retries on connection errors and 5xx; raises HarborClientError on any error status.

        ``per_attempt`` builds arguments anew for every try (a streamed body cannot be sent twice).
        """
        http = http or self.http
        for attempt in range(retries):
            try:
                resp = http.request(method, path, **kw, **(per_attempt() if per_attempt else {}))
            except httpx.TransportError as exc:
                # a refused connection is rarely fixed by waiting: retry that only once
                if attempt + 1 >= (min(retries, 2) if isinstance(exc, httpx.ConnectError) else retries):
                    raise self.unreachable(exc) from None
                backoff(attempt)
                continue
            except httpx.InvalidURL as exc:
                raise HarborClientError(0, "INVALID_URL", f"invalid request URL: {exc}") from None
            if resp.status_code in RETRY_STATUSES and attempt + 1 < retries:
                backoff(attempt)
                continue
            if resp.status_code >= 400:
                raise self.error(resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            # an HTML page or a proxy's answer where the native API should be
            raise errors.not_modelharbor(
                self.url, method, resp.request.url.path, resp.status_code, f"{resp.reason_phrase}, not JSON"
            ) from None

    def call(self, model: type[T] | Any, method: str, path: str, **kw: Any) -> T:
        """``method path`` and its answer as ``model`` (a class, or a type such as ``list[File]``)."""
        return self.parse(model, self.json(method, path, **kw), f"{method} {API}{path}")

    def parse(self, model: type[T] | Any, data: Any, what: str = "a request") -> T:
        adapter = _ADAPTERS.get(model)
        if adapter is None:
            adapter = _ADAPTERS[model] = TypeAdapter(model)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "the answer"
            raise self._incompatible(what, f"{where}: {first.get('msg')}") from None

    def _incompatible(self, what: str, problem: str) -> HarborClientError:
        text = errors.incompatible(self.url, what, problem, self.server_version(), __version__)
        return HarborClientError(0, "INCOMPATIBLE_SERVER", text)
