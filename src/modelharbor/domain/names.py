"""Name rules a client can check before it sends anything: pure functions, standard library only.

The registry refuses a registered model's name by :func:`model_name_problem` (``core/registry/validation.py`` raises
its message as ``InvalidInput``), so a client that runs the same function — the SDK before it uploads a model's
files — refuses exactly the names the server would, with the server's own message, before the first byte.
"""

from __future__ import annotations

import posixpath

MAX_MODEL_NAME = 256


def model_name_problem(name: object, what: str = "name") -> str | None:
    """What is wrong with ``name`` as a registered model's name (the server's message), or None if nothing.

    A name is a string of 1 to 256 characters, not only spaces, without ``/``, ``:``, NUL or other control
    characters, and not ``.``, ``..`` or anything a path would normalise differently (``a/..``, ``./a``)."""
    if name is None:
        return f"Missing value for required parameter '{what}'."
    if not isinstance(name, str):
        return f"Parameter '{what}' must be a string, not {type(name).__name__}."
    if "\x00" in name:
        return f"Parameter '{what}' must not contain NUL characters."
    if len(name) > MAX_MODEL_NAME:
        return f"Parameter '{what}' is {len(name)} characters long; the limit is {MAX_MODEL_NAME}."
    if not name.strip():
        return f"Missing value for required parameter '{what}'."
    if "/" in name or ":" in name:
        return f"Invalid model name '{name}'. Names cannot contain '/' or ':'."
    if not name.isprintable():
        return f"Invalid model name {name!r}. Names cannot contain control characters."
    norm = posixpath.normpath(name)
    if norm != name or norm in (".", "..") or norm.startswith(".."):
        return f"Invalid model name '{name}'. Names may not be '.' or '..' or start with '..'."
    return None


def is_model_name(name: object) -> bool:
    """True if the registry takes ``name`` as a registered model's name."""
    return model_name_problem(name) is None
