"""``modelharbor login``, ``logout``, ``whoami`` and ``profiles``: which server and key the other commands use.

``login`` checks the URL and key with ``GET /api/v1/me`` and saves them as a profile in the config file (mode 0600;
see :mod:`modelharbor.sdk.config`); the other commands then need no ``--url``/``--key``.
"""

from __future__ import annotations

import os
import re
import sys

import typer

from modelharbor import __version__
from modelharbor.sdk.cli.common import (
    JsonOpt,
    command,
    emit_json,
    fail,
    failures,
    lines,
    show,
    table,
    warning_line,
)
from modelharbor.sdk.client import Client
from modelharbor.sdk.config import (
    DEFAULT_PROFILE,
    DEFAULT_URL,
    KEY_ENV,
    PROFILE_ENV,
    URL_ENV,
    Profile,
    check_profile_name,
    load,
    normal_url,
    save,
)
from modelharbor.sdk.errors import HarborClientError

_KEY_LINE = re.compile(r"^MODELHARBOR_API_KEY=(\S+)$", re.M)  # the server's data/initial-admin.env
_KEY_IN_TEXT = re.compile(r"\bmh_[A-Za-z0-9_\-]{8,}")


def _key_from_stdin() -> str | None:
    """A key piped in (``modelharbor login < data/initial-admin.env``): its ``MODELHARBOR_API_KEY=`` line, else the
    first ``mh_…`` token, else the first non-empty line."""
    text = sys.stdin.read()
    m = _KEY_LINE.search(text) or _KEY_IN_TEXT.search(text)
    if m and m.re is _KEY_LINE:
        return m.group(1)
    if m:
        return m.group(0)
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def login(
    url: str = typer.Option(None, "--url", help=f"The server's base URL (default: {URL_ENV}, else asked)."),
    key: str = typer.Option(
        None,
        "--key",
        help=f"The API key (default: {KEY_ENV}, else read from piped stdin, else asked without echo).",
        show_default=False,
    ),
    profile: str = typer.Option(
        None, "--profile", help=f"Save as this profile (default: {PROFILE_ENV}, else 'default')."
    ),
    make_default: bool = typer.Option(True, "--default/--no-default", help="Make it the default profile."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a failure."),
):
    """Check a server URL and API key (GET /api/v1/me) and save them as a profile (mode 0600 in the user's config
    directory, or MODELHARBOR_CONFIG); later commands use it without --url/--key."""
    from modelharbor.sdk.cli.common import STATE

    STATE.debug = STATE.debug or debug
    with failures():
        name = check_profile_name(profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE)
        config = load()
        existing = config.profiles.get(name)
        interactive = sys.stdin.isatty()
        if url is None:
            url = os.environ.get(URL_ENV) or (existing.url if existing else None)
        if url is None:
            url = typer.prompt("server URL", default=DEFAULT_URL, err=True) if interactive else DEFAULT_URL
        url = normal_url(url)
        if key is None:
            key = os.environ.get(KEY_ENV) or None
        if key is None:
            key = typer.prompt(f"API key for {url}", hide_input=True, err=True) if interactive else _key_from_stdin()
        if not key or not key.strip():
            fail("no API key given: pass --key, pipe it in, or type it when asked", code=2)
        key = key.strip()
        with Client(url, key) as client:
            try:
                me = client.me()
            except HarborClientError as exc:
                if exc.status == 401:
                    reason = exc.message.split(" (the key given")[0]
                    fail(
                        f"{url} refused this key ({reason}); nothing saved: check the key (an admin creates one "
                        "with `modelharbor keys create NAME`; the first is in the server's data/initial-admin.env)"
                    )
                raise
            server = client.server_version()
        config.profiles[name] = Profile(name, url, key)
        if make_default or config.default is None:
            config.default = name
        path = save(config)
    role = me.role + (", superuser" if me.is_superuser else "")
    lines(
        f"logged in to {url} (ModelHarbor {server or 'of an unknown version'}) as {me.username} ({role})",
        f"saved as profile {name!r}{' (the default)' if config.default == name else ''} in {path}",
    )
    if server and server != __version__:
        warning_line(f"the server runs ModelHarbor {server}, this client is {__version__}")


def logout(
    profile: str = typer.Option(
        None, "--profile", help=f"The profile to forget (default: {PROFILE_ENV}, else the default one)."
    ),
    everything: bool = typer.Option(False, "--all", help="Forget every profile."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a failure."),
):
    """Forget a saved profile (its URL and key) — the default one unless --profile; --all forgets every one."""
    from modelharbor.sdk.cli.common import STATE

    STATE.debug = STATE.debug or debug
    with failures():
        config = load()
        if everything:
            gone = sorted(config.profiles)
        else:
            name = profile or os.environ.get(PROFILE_ENV) or config.default
            if not name or name not in config.profiles:
                fail(f"no profile {name!r} in {config.path}" if name else f"not logged in: no profile in {config.path}")
            gone = [name]
        for name in gone:
            config.profiles.pop(name, None)
        if config.default not in config.profiles:
            config.default = min(config.profiles) if config.profiles else None
        path = save(config)
    left = f"; the default is now {config.default!r}" if config.default else ""
    lines(f"logged out: forgot {', '.join(map(repr, gone)) or 'nothing'} in {path}{left}")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)

    @command(app, "whoami")
    def whoami(as_json: bool = JsonOpt, client: Client = None):
        """Who the key acts as, on which server (and which profile and key)."""
        me = client.me()
        server = client.server_version()
        if as_json:
            emit_json(
                {
                    "url": client.url,
                    "profile": client.profile,
                    "key_source": client.key_source,
                    "server_version": server,
                    "client_version": __version__,
                    **me.model_dump(mode="json"),
                }
            )
            return
        lines(
            f"user: {me.username} ({me.user_id})",
            f"organisation: {me.org_id}",
            f"role: {me.role}" + (" (superuser)" if me.is_superuser else ""),
            f"server: {client.url} (ModelHarbor {server or 'of an unknown version'})",
            f"key: {client.key_source}",
        )

    @command(app, "profiles", need_key=False)
    def profiles(as_json: bool = JsonOpt):
        """The saved profiles (never their keys); the default one is marked."""
        config = load()
        items = [
            {"name": p.name, "url": p.url, "default": p.name == config.default, "has_key": bool(p.api_key)}
            for p in sorted(config.profiles.values(), key=lambda p: p.name)
        ]
        if as_json:
            emit_json(items)
            return
        t = table("profile", "url", "default")
        for item in items:
            t.add_row(item["name"], item["url"], "yes" if item["default"] else "")
        show(t)
        lines(f"{len(items)} profile(s) in {config.path}")
