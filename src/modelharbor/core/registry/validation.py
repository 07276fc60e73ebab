"""The registry's limits and input checks: names, versions, aliases, tags and free text as MLflow and Domino send
them (a wrong type or shape is ``InvalidInput``, a version number out of range ``NotFound``), page sizes, and
MLflow's millisecond timestamps."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelharbor.core.clock import aware
from modelharbor.core.projects import DEFAULT_STAGES, STAGE_PRODUCTION, STAGE_STAGING
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.names import MAX_MODEL_NAME, model_name_problem

STAGES = DEFAULT_STAGES
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
STATUS_READY = "READY"

MAX_NAME = MAX_MODEL_NAME
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 100_000
MAX_ALIAS = 255
MAX_TEXT = 1_000_000
MAX_MODELS_PAGE, DEFAULT_MODELS_PAGE = 1000, 100
MAX_VERSIONS_PAGE, DEFAULT_VERSIONS_PAGE = 200_000, 10_000
MAX_IN = 10_000  # values per IN (…) list
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
UNSET: Any = object()  # an argument not given (None may be a value)


def check_text(value: Any, what: str, *, max_len: int = MAX_TEXT, optional: bool = True) -> str | None:
    if value is None:
        if optional:
            return None
        raise InvalidInput(f"Missing value for required parameter '{what}'.")
    if not isinstance(value, str):
        raise InvalidInput(f"Parameter '{what}' must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise InvalidInput(f"Parameter '{what}' must not contain NUL characters.")
    if len(value) > max_len:
        raise InvalidInput(f"Parameter '{what}' is {len(value)} characters long; the limit is {max_len}.")
    return value


def validate_name(name: Any, what: str = "name") -> str:
    """A registered model's name, by the rule clients can run too (``domain/names.py``)."""
    problem = model_name_problem(name, what)
    if problem is not None:
        raise InvalidInput(problem)
    return name


def validate_version(version: Any) -> int:
    if isinstance(version, bool) or version is None or version == "":
        raise InvalidInput("Missing value for required parameter 'version'.")
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidInput(f"Parameter 'version' must be an integer, got {version!r}.") from None
    if isinstance(version, float) and version != number:
        raise InvalidInput(f"Parameter 'version' must be an integer, got {version!r}.")
    if not 0 < number < 2**31:
        raise NotFound(f"Model Version (version={version}) not found")
    return number


def validate_alias(alias: Any) -> str:
    alias = check_text(alias, "alias", max_len=MAX_ALIAS)
    if not alias:
        raise InvalidInput("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    return alias


def validate_alias_reserved(alias: str) -> None:
    if alias.lower() == "latest":
        raise InvalidInput("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidInput(f"Version alias name '{alias}' is reserved.")


def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    key = check_text(key, "key", max_len=MAX_TAG_KEY, optional=False)
    if not key or not re.fullmatch(r"[\w.\- /:]+", key) or posixpath.normpath(key) != key or key.startswith(".."):
        raise InvalidInput(
            f"Invalid tag key {key!r}: names may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colons (:) and slashes (/), and must be a normalised path."
        )
    value = check_text(value, f"value of tag {key!r}", max_len=MAX_TAG_VALUE)
    return key, value or ""


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Tags (a mapping, None for none), each checked by :func:`validate_tag`."""
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
    out: dict[str, str] = {}
    for k, v in (tags or {}).items():
        k, v = validate_tag(k, v)
        out[k] = v
    return out


def ms(dt: datetime) -> int:
    """A datetime as MLflow's milliseconds since the epoch."""
    return int(aware(dt).timestamp() * 1000)


def page_size(max_results: int | None, *, default: int, limit: int) -> int:
    if max_results is None:
        return default
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 0 < max_results <= limit:
        raise InvalidInput(f"Invalid value {max_results} for parameter 'max_results': it must be in 1..{limit}.")
    return max_results
