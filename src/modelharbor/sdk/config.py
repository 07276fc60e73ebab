"""Where a client finds its server and key: arguments, environment variables, and the config file's profiles.

The config file (``modelharbor login`` writes it) is TOML in the user's config directory —
``$XDG_CONFIG_HOME/modelharbor/config.toml`` (``~/.config/modelharbor/config.toml``) on Linux,
``~/Library/Application Support/modelharbor/config.toml`` on macOS, ``%APPDATA%\\modelharbor\\config.toml`` on
Windows — or wherever ``MODELHARBOR_CONFIG`` points::

    default = "work"

    [profiles.work]
    url = "https://harbor.example.org"
    api_key = "mh_…"

It holds API keys, so it is written with mode 0600 (its directory 0700); reading one that others may read warns
(:class:`~modelharbor.sdk.errors.InsecureConfigWarning`).

Order (the first that gives a value wins): explicit arguments (``url``, ``api_key``), an explicitly named profile
(``profile=`` / ``--profile``), the environment (``MODELHARBOR_URL``, ``MODELHARBOR_API_KEY``), then the profile
named by ``MODELHARBOR_PROFILE`` or the file's default one. A profile's key is used only for its own URL: a key
is never sent to a server it was not stored for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelharbor.sdk.errors import HarborClientError, InsecureConfigWarning

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV, KEY_ENV, PROFILE_ENV, CONFIG_ENV = (
    "MODELHARBOR_URL",
    "MODELHARBOR_API_KEY",
    "MODELHARBOR_PROFILE",
    "MODELHARBOR_CONFIG",
)
DEFAULT_PROFILE = "default"
PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class Profile:
    name: str
    url: str
    api_key: str | None = None


@dataclass
class Config:
    path: Path
    default: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    def current(self) -> Profile | None:
        return self.profiles.get(self.default) if self.default else None


@dataclass(frozen=True)
class Resolved:
    """A server and key, and where each came from (for messages: "the key in MODELHARBOR_API_KEY")."""

    url: str
    api_key: str | None
    profile: str | None
    url_source: str
    key_source: str | None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file: ``MODELHARBOR_CONFIG``, else the platform's user config directory."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    if sys.platform == "win32":
        base = Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "modelharbor" / "config.toml"


def normal_url(url: str) -> str:
    """``url`` without trailing slashes; refuses what is not an http(s) URL with a host."""
    text = str(url).strip().rstrip("/")
    m = re.fullmatch(r"(https?)://([^/\s?#]+)(/[^\s?#]*)?", text, re.IGNORECASE)
    if not m:
        raise HarborClientError(
            0,
            "INVALID_URL",
            f"{url!r} is not a server URL: give its base, e.g. http://127.0.0.1:8000 or https://harbor.example.org",
        )
    return f"{m.group(1).lower()}://{m.group(2)}{m.group(3) or ''}"


def permission_problem(path: Path) -> str | None:
    """Why ``path`` (holding API keys) is not private enough, or None (always None on Windows)."""
    if os.name != "posix":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} can be read by other users (mode {mode:04o}); it holds API keys: run `chmod 600 {path}`"
    return None


def load(path: Path | None = None) -> Config:
    """The config file (an empty config when there is none); warns when others may read it."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path)
    except OSError as exc:
        raise _bad(path, exc.strerror or str(exc)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _bad(path, str(exc)) from None
    config = Config(path)
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise _bad(path, "[profiles] is not a table")
    for name, entry in profiles.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise _bad(path, f"profile {name!r} has no url")
        key = entry.get("api_key")
        config.profiles[name] = Profile(name, entry["url"], key if isinstance(key, str) and key else None)
    default = data.get("default")
    config.default = default if isinstance(default, str) and default in config.profiles else None
    if any(p.api_key for p in config.profiles.values()) and (problem := permission_problem(path)):
        warnings.warn(problem, InsecureConfigWarning, stacklevel=3)
    return config


def _bad(path: Path, problem: str) -> HarborClientError:
    return HarborClientError(
        0, "BAD_CONFIG", f"cannot read the config file {path} ({problem}): fix it, or delete it and `modelharbor login`"
    )


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, DEL aside)."""
    return json.dumps(value, ensure_ascii=True).replace("\x7f", "\\u007f")


def save(config: Config) -> Path:
    """Write the config file, mode 0600 in a 0700 directory, atomically (a crash leaves the old file)."""
    path = config.path
    lines = ["# ModelHarbor client profiles (`modelharbor login`). It holds API keys: keep it private (mode 0600).", ""]
    if config.default in config.profiles:
        lines += [f"default = {_toml(config.default)}", ""]
    for name, p in sorted(config.profiles.items()):
        lines.append(f"[profiles.{name}]")
        lines.append(f"url = {_toml(p.url)}")
        if p.api_key:
            lines.append(f"api_key = {_toml(p.api_key)}")
        lines.append("")
    text = "\n".join(lines)
    try:
        created = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if created:
            with contextlib.suppress(OSError):
                path.parent.chmod(0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            if os.name == "posix":
                os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise HarborClientError(
            0, "BAD_CONFIG", f"cannot write the config file {path}: {exc.strerror or exc}"
        ) from None
    return path


def check_profile_name(name: str) -> str:
    if not PROFILE_NAME.fullmatch(name or ""):
        raise HarborClientError(
            0, "INVALID_INPUT", f"invalid profile name {name!r}: 1 to 64 letters, digits, '-' or '_'"
        )
    return name


def resolve(
    url: str | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Resolved:
    """The server and key a client uses (see the module's docstring for the order)."""
    env = os.environ if env is None else env
    named = profile or env.get(PROFILE_ENV) or None
    config = None
    if named or not (url and api_key):
        config = load(path or config_path(env))
    chosen: Profile | None = None
    if named:
        chosen = config.profiles.get(named) if config else None
        if chosen is None:
            known = ", ".join(sorted(config.profiles)) if config and config.profiles else "none yet"
            where = "--profile" if profile else PROFILE_ENV
            raise HarborClientError(
                0,
                "UNKNOWN_PROFILE",
                f"no profile {named!r} ({where}) in {config.path if config else config_path(env)} (profiles: {known}): "
                f"log in with `modelharbor login --profile {named}`",
            )
    elif config is not None:
        chosen = config.current()
    explicit_profile = bool(profile)
    env_url, env_key = env.get(URL_ENV) or None, env.get(KEY_ENV) or None
    candidates_url = [(url, "the given URL")]
    candidates_key = [(api_key, "the key given")]
    if explicit_profile and chosen:
        candidates_url.append((chosen.url, f"profile {chosen.name!r}"))
        candidates_url.append((env_url, URL_ENV))
    else:
        candidates_url.append((env_url, URL_ENV))
        if chosen:
            candidates_url.append((chosen.url, f"profile {chosen.name!r}"))
    candidates_url.append((DEFAULT_URL, "the default URL"))
    raw_url, url_source = next((u, s) for u, s in candidates_url if u)
    final_url = normal_url(raw_url)
    profile_key = None
    if chosen and chosen.api_key and _same(chosen.url, final_url):
        where = config.path if config else "the config file"
        profile_key = (chosen.api_key, f"the key of profile {chosen.name!r} ({where})")
    if explicit_profile and profile_key:
        candidates_key.append(profile_key)
    candidates_key.append((env_key, f"the key in {KEY_ENV}"))
    if profile_key:
        candidates_key.append(profile_key)
    key, key_source = next(((k, s) for k, s in candidates_key if k), (None, None))
    used_profile = chosen.name if chosen and (url_source.startswith("profile") or profile_key) else None
    return Resolved(final_url, key, used_profile, url_source, key_source)


def _same(a: str, b: str) -> bool:
    try:
        return normal_url(a) == normal_url(b)
    except HarborClientError:
        return False
