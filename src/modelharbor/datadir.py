"""The data directory is the server user's alone: folders 0700, files 0600.

:func:`make_private` runs first in every command that touches the server's data (``serve``, ``worker``, ``db``,
``admin``, ``keys``, ``users``; see ``cli.py``). It sets the process umask to 0077, so whatever the process creates from then
on — the SQLite database and its ``-wal``/``-shm`` (SQLite gives them the database's mode), the blob folders and
files, ``secret_key``, ``initial-admin.env``, environments, deployment packages, import and export scratch files — is
created without any group or other permission; child processes inherit it (a builder that must make files readable
to sandboxed workloads asks for its own umask).

A data directory an older version left readable by others is tightened, not rewritten: DATA_DIR itself becomes
0700 (so nothing below it can be reached by anyone else, whatever the modes below say), and the files that hold
secrets directly — the SQLite database with its ``-wal``/``-shm``, ``secret_key``, ``initial-admin.env`` (and the
``initial-admin-key`` of earlier versions) — become 0600; a local blob folder outside DATA_DIR becomes 0700 too. What changed is logged as one warning line. Nothing
below those is walked: a large blob store is not re-permissioned at every start, and permissions granted on
purpose deeper down (for sandboxed workloads) are left alone.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from urllib.parse import urlparse

from modelharbor.settings import Settings

PRIVATE_UMASK = 0o077
log = logging.getLogger("modelharbor.datadir")


def make_private(settings: Settings) -> list[str]:
    """Set the umask to 0077 and tighten what an earlier start left looser; returns the changes (``path: old ->
    new``), which are also logged as one warning line."""
    os.umask(PRIVATE_UMASK)
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    changes: list[str] = []
    _tighten(data, 0o700, changes)
    for name in ("secret_key", "initial-admin.env", "initial-admin-key"):
        _tighten(data / name, 0o600, changes)
    db = sqlite_path(settings.resolved_database_url())
    if db is not None:
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            _tighten(path, 0o600, changes)
    blobs = local_blob_root(settings.resolved_blob_url())
    if blobs is not None and data not in blobs.parents and blobs != data:
        _tighten(blobs, 0o700, changes)
    if changes:
        log.warning("the data directory was readable by others; made it private: %s", ", ".join(changes))
    return changes


def _tighten(path: Path, mode: int, changes: list[str]) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    old = stat.S_IMODE(st.st_mode)
    if old & ~mode & 0o777:
        try:
            path.chmod(old & mode)
        except OSError as exc:  # not ours to change (another user's folder): say so, and serve on
            log.warning("could not make %s private (%04o): %s", path, old, exc)
            return
        changes.append(f"{path}: {old:04o} -> {old & mode:04o}")


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def local_blob_root(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(parsed.path if parsed.scheme == "file" else url).expanduser().resolve()
