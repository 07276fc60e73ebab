"""The registry's limits and the domain rules of its typed inputs: names, version numbers, aliases, tags and free
text (a value that breaks a rule is ``InvalidInput``, a version number out of range ``NotFound``), page sizes, and
MLflow's millisecond timestamps.

The arguments are typed (``str``, ``int``): the edges check the wire types (a version number sent as text, a name
that is not a string) and answer in their own words before they call the core; these checks are the rules every
caller's values follow. An edge that must report faults in the order the registry finds them calls these functions
too, between its own type checks (api/dialects/mlflow/inputs.py)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from datetime import datetime

from modelharbor.core.clock import aware
from modelharbor.core.projects import DEFAULT_STAGES, STAGE_PRODUCTION, STAGE_STAGING
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import UNSET, Unset  # noqa: F401 - the registry's callers import them from here
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


def check_text(value: str | None, what: str, *, max_len: int = MAX_TEXT, optional: bool = True) -> str | None:
    """Free text: no NUL, at most ``max_len`` characters; None is absent (refused when not ``optional``)."""
    if value is None:
        if optional:
            return None
        raise InvalidInput(f"Missing value for required parameter '{what}'.")
    if "\x00" in value:
        raise InvalidInput(f"Parameter '{what}' must not contain NUL characters.")
    if len(value) > max_len:
        raise InvalidInput(f"Parameter '{what}' is {len(value)} characters long; the limit is {max_len}.")
    return value


def validate_name(name: str, what: str = "name") -> str:
    """A registered model's name, by the rule clients can run too (``domain/names.py``)."""
    problem = model_name_problem(name, what)
    if problem is not None:
        raise InvalidInput(problem)
    return name


def validate_version(version: int) -> int:
    """A version number: versions are numbered from 1 and stored as 32-bit integers, so any other number names no
    version (``NotFound``)."""
    if not 0 < version < 2**31:
        raise NotFound(f"Model Version (version={version}) not found")
    return version


def validate_alias(alias: str) -> str:
    check_text(alias, "alias", max_len=MAX_ALIAS)
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


def validate_archive(stage: str | None, archive_existing_versions: bool) -> None:
    """Archiving the versions already in the target stage is for a move into an active stage (as spelled there)."""
    if archive_existing_versions and stage not in ACTIVE_STAGES:
        raise InvalidInput(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            f"Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}."
        )


def validate_tag_key(key: str) -> str:
    check_text(key, "key", max_len=MAX_TAG_KEY, optional=False)
    if not key or not re.fullmatch(r"[\w.\- /:]+", key) or posixpath.normpath(key) != key or key.startswith(".."):
        raise InvalidInput(
            f"Invalid tag key {key!r}: names may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colons (:) and slashes (/), and must be a normalised path."
        )
    return key


def validate_tag_value(key: str, value: str | None) -> str:
    """The value of tag ``key`` (None is the empty value)."""
    return check_text(value, f"value of tag {key!r}", max_len=MAX_TAG_VALUE) or ""


def validate_tag(key: str, value: str | None) -> tuple[str, str]:
    key = validate_tag_key(key)
    return key, validate_tag_value(key, value)


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Tags (a mapping, None for none), each checked by :func:`validate_tag`."""
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
    if not 0 < max_results <= limit:
        raise InvalidInput(f"Invalid value {max_results} for parameter 'max_results': it must be in 1..{limit}.")
    return max_results
