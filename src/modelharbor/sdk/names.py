"""Names checked before anything is sent, with the server's own rules, so that a bad name fails at once rather
than after an upload (``modelharbor models register "bad/name" DIR`` sends no byte)."""

from __future__ import annotations

import re
from typing import Any

from modelharbor.domain.names import model_name_problem
from modelharbor.sdk.errors import invalid

_SERVING_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SERVING_PROJECT = re.compile(r"[a-z][a-z0-9-]{0,63}")
_PROJECT = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_ALIAS = re.compile(r"[\w\-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")


def model_name(name: Any) -> str:
    """A registered model's name, by the server's own rule (``domain/names.py``) and with its message."""
    problem = model_name_problem(name)
    if problem is not None:
        raise invalid(problem)
    return name


def version_number(version: Any) -> str:
    if isinstance(version, bool) or not isinstance(version, int | str) or not str(version).isdecimal():
        raise invalid(f"a version is a positive whole number, not {version!r}")
    if int(version) < 1:
        raise invalid(f"a version is a positive whole number, not {version!r}")
    return str(int(version))


def alias(name: Any, *, to_set: bool = True) -> str:
    """An alias: letters, digits, '_' and '-'; ``latest`` and ``v<N>`` cannot be set."""
    if not isinstance(name, str) or not _ALIAS.fullmatch(name):
        raise invalid(f"invalid alias {name!r}: use letters, digits, '_' and '-' (at most 255)")
    if to_set and (name.lower() == "latest" or _VERSION_ALIAS.fullmatch(name)):
        raise invalid(f"the alias {name!r} is reserved")
    return name


def serving_name(name: Any, what: str) -> str:
    """A deployment, version or pipeline name: 1 to 64 lowercase letters, digits, '-' or '_'."""
    if not isinstance(name, str) or not _SERVING_NAME.fullmatch(name):
        raise invalid(
            f"invalid {what} name {name!r}: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return name


def serving_project(name: Any) -> str:
    """A project that deployments can live in: 1 to 64 lowercase letters, digits and dashes, from a letter."""
    if not isinstance(name, str) or not _SERVING_PROJECT.fullmatch(name):
        raise invalid(
            f"invalid project name {name!r} for deployments: 1 to 64 lowercase letters, digits and dashes, "
            "starting with a letter"
        )
    return name


def project(name: Any) -> str:
    """A project's name: letters, digits, '_', '.' and '-' (at most 256)."""
    if not isinstance(name, str) or not _PROJECT.fullmatch(name):
        raise invalid(f"invalid project name {name!r}: use letters, digits, '_', '.' and '-' (at most 256)")
    return name
