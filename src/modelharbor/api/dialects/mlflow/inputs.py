"""MLflow's requests into the core's typed arguments: the wire values of a request (JSON of any type, or the query
string's text) checked for their types here, with MLflow's messages, and handed to the core as ``str``, ``int``,
``bool`` and the typed inputs of :mod:`modelharbor.domain.inputs` (``MetricIn``, ``TagIn``, ``ViewType``). The core
checks the domain rules of those values (a name's grammar, lengths, ranges, existence).

Order: a request with several faults answers the first the registry or tracking finds, as it always has. So a parse
function that checks a wire type after another value's domain rule calls that rule itself (the core's pure checks:
:mod:`modelharbor.core.registry.validation`, :mod:`modelharbor.core.tracking.metrics`), and each route parses its
values in the order the core checks them. Pure: no services, no queries.
"""

from __future__ import annotations

from typing import Any

from modelharbor.core.registry.validation import (
    MAX_TAG_KEY,
    MAX_TEXT,
    check_text,
    validate_alias,
    validate_alias_reserved,
    validate_archive,
    validate_name,
    validate_tag_key,
    validate_tag_value,
    validate_version,
)
from modelharbor.core.tracking import now_ms
from modelharbor.core.tracking.metrics import (
    INT64_MAX,
    INT64_MIN,
    MAX_DATASET_DIGEST,
    MAX_DATASET_NAME,
    MAX_KEY,
    check_batch_limits,
    check_key,
)
from modelharbor.core.tracking.metrics import check_text as check_dataset
from modelharbor.core.tracking.validation import (
    DEFAULT_ID,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    RUN_STATUSES,
    check_value,
    exp_int,
)
from modelharbor.domain.errors import InvalidInput, NotFound
from modelharbor.domain.inputs import MetricIn, TagIn, ViewType


# --- registry ---------------------------------------------------------------------------------------------------
def flag(value: Any, name: str) -> bool:
    """A boolean parameter: a JSON boolean or "true"/"false" (any case, as a query string carries it); False when
    absent."""
    if value in (None, ""):
        return False
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidInput(f"Parameter '{name}' must be a boolean.")
    return value


def _string(value: Any, what: str) -> str | None:
    """An optional string parameter's wire type: None when absent."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(f"Parameter '{what}' must be a string, not {type(value).__name__}.")


def _required(value: Any, what: str) -> str:
    """A required string parameter's wire type."""
    if value is None:
        raise InvalidInput(f"Missing value for required parameter '{what}'.")
    return _string(value, what) or ""


def text_in(value: Any, what: str, *, max_len: int = MAX_TEXT) -> str | None:
    """Free text (a description, a run id…): a string, then the registry's length and NUL rule; None when absent."""
    return check_text(_string(value, what), what, max_len=max_len)


def required_text_in(value: Any, what: str, *, max_len: int = MAX_TEXT) -> str:
    """Free text that must be given (a version's source, a tag key to delete)."""
    text = _required(value, what)
    check_text(text, what, max_len=max_len)
    return text


def name_in(value: Any, what: str = "name") -> str:
    """A name for a new (or renamed) model: a string, then the registry's name grammar."""
    return validate_name(_required(value, what), what)


def model_name_in(value: Any) -> str:
    """The name of a model to look up: a string (the registry says when it is empty or names no model)."""
    return _required(value, "name")


def version_in(value: Any) -> int:
    """A version number as MLflow sends it: an integer, or its text (``"3"``); out of range it names no version
    (404, the number as it was sent)."""
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInput("Missing value for required parameter 'version'.")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"Parameter 'version' must be an integer, got {value!r}.") from None
    if isinstance(value, float) and value != number:
        raise InvalidInput(f"Parameter 'version' must be an integer, got {value!r}.")
    try:
        return validate_version(number)
    except NotFound:
        raise NotFound(f"Model Version (version={value}) not found") from None


def alias_in(value: Any) -> str:
    """An alias: a string (absent: the empty name, which the registry refuses), then the registry's alias rule."""
    return validate_alias(_string(value, "alias") or "")


def new_alias_in(value: Any) -> str:
    """An alias to set: :func:`alias_in`, and not one of the reserved names (``latest``, ``v<n>``)."""
    alias = alias_in(value)
    validate_alias_reserved(alias)
    return alias


def tag_pair_in(key: Any, value: Any) -> tuple[str, str]:
    """A registry tag's key and value, each a string checked by the registry's rule, key first."""
    checked = validate_tag_key(_required(key, "key"))
    return checked, validate_tag_value(checked, _string(value, f"value of tag {checked!r}"))


def tag_key_in(value: Any) -> str:
    """The key of a registry tag to delete."""
    return required_text_in(value, "key", max_len=MAX_TAG_KEY)


def tags_in(tags: Any) -> dict[str, str] | None:
    """A registry request's ``tags``: MLflow's list of ``{key, value}`` (or a mapping), each pair checked as the
    registry checks it (:func:`tag_pair_in`)."""
    if tags is None:
        return None
    if isinstance(tags, dict):
        pairs: list = list(tags.items())
    elif isinstance(tags, list):
        pairs = []
        for t in tags:
            if not isinstance(t, dict):
                raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
            pairs.append((t.get("key"), t.get("value")))
    else:
        raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
    return dict(tag_pair_in(k, v) for k, v in pairs)


def stage_in(value: Any) -> str | None:
    """A stage name: MLflow's text; a JSON value of another type is taken as its text (None: no stage named, which
    the registry refuses, naming the model's stages)."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def target_stage_in(value: Any, archive_existing_versions: bool) -> str | None:
    """A transition's target stage (:func:`stage_in`); archiving the versions there takes an active stage."""
    stage = stage_in(value)
    validate_archive(stage, archive_existing_versions)
    return stage


def stages_in(value: Any) -> list[str | None] | None:
    """``get-latest-versions``' ``stages``: a list of stage names (None: every stage)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput("Parameter 'stages' must be a list of stage names.")
    return [stage_in(v) for v in value]


# --- tracking ---------------------------------------------------------------------------------------------------
def experiment_id_in(value: Any) -> str:
    """An experiment id: ``"0"`` (the caller's default experiment) or a number, as a string or, as some clients send
    it, a whole number; any other value names no experiment."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str) and (text == DEFAULT_ID or exp_int(text) is not None):
        return text
    raise NotFound(f"experiment {value!r} does not exist")


def experiment_name_in(value: Any) -> str:
    """An experiment's name: a string (the core refuses a blank or overlong one with the same message)."""
    if not isinstance(value, str):
        raise InvalidInput("an experiment name is required")
    return value


def optional_text_in(value: Any) -> str | None:
    """An optional name (a run's or logged model's, a user id, a model type, a source run id): None when absent or
    empty (``0`` and ``false`` too, as before); any other value that is not a string is taken as its text."""
    return text_of(value) if value else None


def run_status_in(value: Any) -> str | None:
    """A run's new status: one of MLflow's names (the core checks which); None leaves it."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(f"unknown run status {value!r}: use one of {', '.join(RUN_STATUSES)}")


def text_of(value: Any) -> str:
    """A value MLflow takes as text whatever its scalar JSON type (a param's or tag's value, a key to look up): None
    is empty, a number its digits; a list or an object is refused (protobuf would not parse it as a string)."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        raise InvalidInput(f"expected a string, got a JSON {'array' if isinstance(value, list) else 'object'}")
    return value if isinstance(value, str) else str(value)


def key_in(value: Any, what: str) -> str:
    """A metric's, param's or tag's key: a string, then tracking's key rule."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} key must be a non-empty string of at most {MAX_KEY} characters, got {value!r}")
    return check_key(value, what)


def key_values_in(items: Any) -> list[TagIn]:
    """Tags or params of an experiment, a run or a logged model: a list of ``{key, value}`` objects; a key or value
    that is not a string is taken as its text (:func:`text_of`; a missing key is ``"None"``, as before)."""
    if items in (None, ""):
        return []
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise InvalidInput("tags must be a list of {key, value} objects")
    return [
        TagIn(str(t.get("key")) if t.get("key") is None else text_of(t.get("key")), text_of(t.get("value", "")))
        for t in items
    ]


VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def view_type(value: Any) -> ViewType | None:
    """A ``view_type`` / ``run_view_type``: its name (any case) or its protobuf number; None (active only) when
    absent."""
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdecimal():
        value = VIEW_TYPE_NUMBERS.get(int(value), "?")
    name = str(value).upper()
    if not name:
        return None
    if name not in ViewType.__members__:
        raise InvalidInput(f"unknown view type {value!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return ViewType[name]


def to_int(value: Any, what: str, default: int | None = None) -> int:
    """A 64-bit integer (a timestamp, a step): a number or its text; ``default`` when absent."""
    if value is None or value == "":
        if default is None:
            raise InvalidInput(f"{what} is required")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an integer, got {value!r}") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidInput(f"{what} must be a 64-bit integer, got {value!r}")
    return number


def to_float(value: Any) -> float:
    """A metric value: a number, or a string such as "NaN", "Infinity", "-Infinity" as protobuf JSON writes them."""
    if isinstance(value, bool):
        raise InvalidInput(f"metric value must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidInput(f"metric value must be a number, got {value!r}")


def _dataset_in(value: Any, name: str, limit: int) -> str | None:
    """A metric's optional ``dataset_name`` or ``dataset_digest``: None when empty."""
    if value not in (None, "") and not isinstance(value, str):
        raise InvalidInput(f"metric {name} must be a string of at most {limit} characters, got {value!r}")
    return check_dataset(value, name, limit)


def metric_in(raw: Any) -> MetricIn:
    """One metric of a request (``key``, ``value``, ``timestamp``, ``step``, optional ``model_id``, ``dataset_name``
    and ``dataset_digest``), checked as MLflow checks it (in its order, so a request with several faults answers
    the first)."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"a metric must be an object with key, value, timestamp and step, got {raw!r}")
    key = key_in(raw.get("key"), "metric")
    if raw.get("value") is None:
        raise InvalidInput(f"missing value for required parameter 'value' of metric {key!r}")
    timestamp = to_int(raw.get("timestamp"), "timestamp", now_ms())
    if timestamp < 0:
        raise InvalidInput(f"metric {key!r}: timestamp must be a nonnegative long (64-bit integer), got {timestamp}")
    model_id = raw.get("model_id")
    if model_id in (None, ""):
        model_id = None
    elif not isinstance(model_id, str):
        raise InvalidInput(f"metric {key!r}: model_id must be a string, got {model_id!r}")
    dataset_name = _dataset_in(raw.get("dataset_name"), "dataset_name", MAX_DATASET_NAME)
    dataset_digest = _dataset_in(raw.get("dataset_digest"), "dataset_digest", MAX_DATASET_DIGEST)
    if (dataset_name is None) != (dataset_digest is None):
        raise InvalidInput(f"metric {key!r}: both dataset_name and dataset_digest must be given if one is")
    value, step = to_float(raw.get("value")), to_int(raw.get("step"), "step", 0)
    return MetricIn(key, value, timestamp, step, model_id, dataset_name, dataset_digest)


def tag_in(raw: Any, what: str) -> TagIn:
    """A param (``what`` "param") or tag ``{key, value}``; a value that is not a string is sent as its text."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"a {what} must be an object with key and value, got {raw!r}")
    limit = MAX_PARAM_VALUE if what == "param" else MAX_TAG_VALUE
    return TagIn(key_in(raw.get("key"), what), check_value(text_of(raw.get("value")), what, limit))


def batch_in(metrics: list, params: list, tags: list) -> tuple[list[MetricIn], list[TagIn], list[TagIn]]:
    """A ``log-batch`` request's metrics, params and tags, within MLflow's limits of one call."""
    check_batch_limits(len(metrics), len(params), len(tags))
    typed_params = [tag_in(p, "param") for p in params]
    return [metric_in(m) for m in metrics], typed_params, [tag_in(t, "tag") for t in tags]
