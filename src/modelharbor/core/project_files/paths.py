"""The path rules of project files: relative, ``/``-separated, no ``..``, no NUL or control characters.

``normalise`` is the one place they live: repeated and trailing slashes and ``.`` segments are dropped (the
Domino client's ``files/<sha>//`` names the root), a leading ``/`` (an absolute path), ``..``, a backslash, NUL or
another control character is refused with a 400 naming the field.
"""

from __future__ import annotations

from modelharbor.domain.errors import InvalidInput

MAX_PATH = 1024
MAX_SEGMENT = 255


def normalise(path: str, *, field: str = "path", root_ok: bool = True, absolute_ok: bool = False) -> str:
    """The canonical form of ``path`` (``""`` is the root, allowed only with ``root_ok``). ``absolute_ok`` takes a
    leading ``/`` as the root (URL paths, where the slash is the separator before the path)."""
    if "\x00" in path:
        raise InvalidInput(f"'{field}' must not contain NUL", field=field)
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise InvalidInput(f"'{field}' must not contain control characters", field=field)
    if "\\" in path:
        raise InvalidInput(f"'{field}' must use '/' between its parts, not '\\\\'", field=field)
    if path.startswith("/") and not absolute_ok:
        raise InvalidInput(f"'{field}' must be relative to the project's root, not start with '/'", field=field)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"'{field}' must not contain '..'", field=field)
    if any(len(p) > MAX_SEGMENT for p in parts):
        raise InvalidInput(f"'{field}': each part may be at most {MAX_SEGMENT} characters", field=field)
    out = "/".join(parts)
    if len(out) > MAX_PATH:
        raise InvalidInput(f"'{field}' may be at most {MAX_PATH} characters", field=field)
    if not out and not root_ok:
        raise InvalidInput(f"'{field}' must name a file, not the project's root", field=field)
    return out


def split(path: str) -> list[str]:
    """A normalised path's parts (``[]`` for the root)."""
    return path.split("/") if path else []
