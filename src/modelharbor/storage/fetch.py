"""Downloading a link a user gave without letting it reach inside the network: an SSRF-safe fetcher on raw sockets.

Invariants (each one a test in tests/core/test_transfer.py, "import links"):

- **Checked before anything is sent.** A link is ``https://`` (``http://`` only if the policy allows it), at most
  ``MAX_LINK`` characters without spaces or control characters, names a host and carries no credentials
  (:func:`check_link`; a literal address is checked as below).
- **Every address checked, then pinned.** The host name is resolved once and every address it has must be public
  (no loopback, private, link-local, multicast, unspecified, reserved or other non-global address, IPv4-mapped IPv6
  included) unless the policy allows private addresses; the connection goes to the address that was checked (no
  second DNS lookup between check and connect), the certificate checked for the host name.
- **Redirects are links too.** Each ``Location`` is checked and resolved the same way, at most ``MAX_REDIRECTS``.
- **Bounded.** The answer is refused above ``max_size`` (declared or counted), the whole download above
  ``timeout`` seconds, and each read waits at most ``READ_TIMEOUT`` seconds.

A link's form that is wrong is a :class:`BadLink`; a host or an answer that is refused, or a download that fails,
a :class:`LinkRefused` (both ``InvalidInput``: the caller's input). The messages name the link as the policy says
(``field`` for its form, ``name`` for the rest), so a caller shows them as they are. Project imports
(core/transfer/project_imports.py) fetch their ``import_link`` with it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from modelharbor.domain.errors import InvalidInput

MAX_LINK = 4096
MAX_REDIRECTS = 5
READ_TIMEOUT = 30.0  # seconds one read of a link's answer may wait
CHUNK = 1 << 20


class BadLink(InvalidInput):
    """A link that is not one to fetch (its form: scheme, length, host, credentials)."""


class LinkRefused(InvalidInput):
    """A link refused (its host's addresses, its answer, its size or time) or that could not be downloaded."""


@dataclass(frozen=True)
class LinkPolicy:
    """What a fetch may do, and how its complaints name the link."""

    max_size: int
    timeout: float = 600.0  # seconds the whole download may take
    allow_private: bool = False
    allow_http: bool = False
    field: str = "link"  # the link in complaints about its form: "'import_link' must be …"
    name: str = "link"  # the link in the others: "The import link answered …"
    private_setting: str = ""  # the setting that allows private addresses, named when one is refused
    user_agent: str = "ModelHarbor/1"


def check_link(link: Any, policy: LinkPolicy) -> None:
    """A link must be https (http too if allowed) to a host name or a public address."""
    field = policy.field
    if not isinstance(link, str) or len(link) > MAX_LINK or any(ord(c) <= 32 or ord(c) == 127 for c in link):
        raise BadLink(f"'{field}' must be a URL of at most {MAX_LINK} characters, without spaces.")
    parts = urlsplit(link)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise BadLink(
            f"'{field}' must be an https:// URL"
            + (" or http:// URL." if policy.allow_http else " (plain http is not allowed).")
        )
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise BadLink(f"'{field}' has an invalid port.") from None
    if not host:
        raise BadLink(f"'{field}' names no host.")
    if parts.username is not None or parts.password is not None:
        raise BadLink(f"'{field}' must not carry credentials; use a link that is publicly downloadable.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    _check_address(address, host, policy)


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str, policy: LinkPolicy) -> None:
    if policy.allow_private:
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kind = next(
        (
            label
            for label, flag in (
                ("loopback", address.is_loopback),
                ("link-local", address.is_link_local),
                ("multicast", address.is_multicast),
                ("unspecified", address.is_unspecified),
                ("reserved", address.is_reserved),
                ("private", address.is_private),
                ("non-public", not address.is_global),
            )
            if flag
        ),
        None,
    )
    if kind is not None:
        hint = f" ({policy.private_setting})" if policy.private_setting else ""
        raise LinkRefused(
            f"The {policy.name}'s host {host!r} is a {kind} address ({address}): ModelHarbor fetches links from "
            f"public addresses only{hint}."
        )


def _resolve(host: str, port: int, policy: LinkPolicy) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise LinkRefused(f"The {policy.name}'s host {host!r} cannot be resolved: {exc}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        _check_address(address, host, policy)  # every address the name has, so none can be picked later
        addresses.append(str(address))
    if not addresses:
        raise LinkRefused(f"The {policy.name}'s host {host!r} has no address.")
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address that was checked (no second DNS lookup), certificate checked for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def fetch(link: str, dest: Path, policy: LinkPolicy, touch: Callable[[], None] = lambda: None) -> None:
    """Download ``link`` to ``dest``: checked hosts and addresses (also after redirects), bounded size and time,
    connected to the address that was checked. ``touch`` is called about once a minute while bytes arrive."""
    deadline = time.monotonic() + policy.timeout
    name, limit = policy.name, policy.max_size
    url = link
    for _ in range(MAX_REDIRECTS + 1):
        check_link(url, policy)
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        host, port = parts.hostname, parts.port or (443 if https else 80)
        address = _resolve(host, port, policy)
        timeout = max(1.0, min(READ_TIMEOUT, deadline - time.monotonic()))
        conn = (
            _PinnedHTTPSConnection(host, port, address, timeout, ssl.create_default_context())
            if https
            else _PinnedHTTPConnection(host, port, address, timeout)
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"User-Agent": policy.user_agent, "Accept": "*/*"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.getheader("location")
                if not location:
                    raise LinkRefused(f"The {name} answered {resp.status} without a Location.")
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise LinkRefused(f"The {name} answered HTTP {resp.status} {resp.reason}.")
            declared = resp.getheader("content-length")
            if declared and declared.isdecimal() and int(declared) > limit:
                raise LinkRefused(f"The {name}'s file is larger than {limit} bytes.")
            got, last_touch = 0, time.monotonic()
            with open(dest, "wb") as out:
                while True:
                    if time.monotonic() > deadline:
                        raise LinkRefused(f"The {name} took longer than {policy.timeout:g} s.")
                    chunk = resp.read1(CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > limit:
                        raise LinkRefused(f"The {name}'s file is larger than {limit} bytes.")
                    out.write(chunk)
                    if time.monotonic() - last_touch > 60:
                        touch()
                        last_touch = time.monotonic()
            return
        except (OSError, http.client.HTTPException) as exc:
            raise LinkRefused(f"The {name} could not be downloaded: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
    raise LinkRefused(f"The {name} redirected more than {MAX_REDIRECTS} times.")
