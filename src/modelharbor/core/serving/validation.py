"""Field validation and the serving limits: names, descriptions, labels, input/output types and typed fields
(what a deployment or pipeline declares, and what a request's data must match), environment-variable names, and
the bounded error texts kept with builds and requests. Pure functions: no database, no service.

The ``valid_…`` checks take a JSON value of any type and answer the value typed, or InvalidInput with the message a
client reads: the edges call them on a request's values, in the order of the fields, to build the core's typed
inputs (``api/inputs.py``); the imports call them on what a zip's YAML holds (``core/transfer/selection.py``); and
the serving methods, which take typed values (``domain.inputs``), call them again for the domain rules."""

from __future__ import annotations

import re
from typing import Any

from modelharbor.core.files.usage import DEPLOYMENT_PACKAGE
from modelharbor.core.serving.entities import Field
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import FieldIn

BUILD_TASK = "serving_build"
BATCH_TASK = "serving_batch"
MAX_BATCH = 250
PACKAGE_CONTEXT = DEPLOYMENT_PACKAGE  # an internal file (core/files/usage.py)
IO_TYPES = ("structured", "plain")
DATA_TYPES = (
    "int",
    "string",
    "double",
    "bool",
    "dict",
    "file",
    "array_int",
    "array_double",
    "array_string",
    "array_file",
)
RETENTION_MODES = ("none", "metadata", "full")
REVISION_STATUSES = ("queued", "building", "success", "failed")
MAX_NAME = 64
MAX_DESCRIPTION = 400
MAX_FIELDS = 100
MAX_ERROR = 1024
MAX_LABELS = 50
MAX_INSTANCES = 20
MAX_TIMEOUT = 3600
DEFAULT_TIMEOUT = 300
MAX_ENV_VALUE = 64 * 1024
MAX_ENV_VARS = 500
PACKAGE_MAX_ENTRIES = 10_000
PACKAGE_MAX_FILE = 2 * 1024**3
PACKAGE_MAX_TOTAL = 8 * 1024**3
MAX_UBIOPS_YAML = 1 << 20
# a version's UbiOps settings, kept as sent (free-form JSON)
VERSION_SETTINGS = (
    "ports",
    "scaling_strategy",
    "instance_processes",
    "health_check",
    "command",
    "args",
    "restart_request_interruption",
    "instance_type",
    "instance_type_group_id",
)
# a version's numbers, in the order they are checked: (lowest, highest, default of a new version)
VERSION_INTS = {
    "minimum_instances": (0, MAX_INSTANCES, 0),
    "maximum_instances": (1, MAX_INSTANCES, 5),
    "maximum_idle_time": (10, 7 * 24 * 3600, 300),
    "request_retention_time": (0, 365 * 24 * 3600, 604800),
    "maximum_queue_size": (1, 100_000, 100),
}
ROUTE_TTL = 2.0  # seconds a cached route may be stale (another server changed the version)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?")


# --- validation -----------------------------------------------------------------------------------
def valid_name(value: Any, what: str) -> str:
    """A deployment, version or pipeline name (lowercase letters, digits, '-', '_'); else InvalidInput."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"Invalid {what} name {value!r}: use 1 to {MAX_NAME} lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    return value


def valid_text(value: Any, what: str, limit: int = MAX_DESCRIPTION) -> str:
    """A description-like text of at most ``limit`` characters (None: empty); else InvalidInput."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{what}' must be a string of at most {limit} characters.")
    return value


def valid_labels(value: Any) -> dict[str, str]:
    """Labels: a mapping of string keys to string values, bounded (None: none); else InvalidInput."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise InvalidInput(f"'labels' must be an object of at most {MAX_LABELS} key/value pairs.")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not 0 < len(k) <= 64 or (v is not None and len(str(v)) > 64):
            raise InvalidInput(f"Invalid label {k!r}: keys and values are 1 to 64 characters.")
        out[k] = "" if v is None else str(v)
    return out


def valid_io_type(value: Any, what: str) -> str:
    """An input or output type, one of IO_TYPES (None: ``structured``); else InvalidInput."""
    if value is None:
        return "structured"
    if value not in IO_TYPES:
        raise InvalidInput(f"'{what}' must be 'structured' or 'plain', not {value!r}.")
    return value


def valid_fields(value: Any, what: str, io_type: str) -> list[dict[str, Any]]:
    """Declared input or output fields (names and data types) as stored; else InvalidInput."""
    if value is None:
        return []
    if io_type == "plain" and value:
        raise InvalidInput(f"'{what}' must be empty for a plain deployment.")
    if not isinstance(value, list) or len(value) > MAX_FIELDS:
        raise InvalidInput(f"'{what}' must be a list of at most {MAX_FIELDS} {{name, data_type}} objects.")
    out, seen = [], set()
    for item in value:
        if not isinstance(item, dict):
            raise InvalidInput(f"Each of '{what}' must be an object {{name, data_type}}.")
        name, data_type = item.get("name"), item.get("data_type")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise InvalidInput(f"Invalid field name {name!r} in '{what}': 1 to {MAX_NAME} characters.")
        if name in seen:
            raise InvalidInput(f"Field {name!r} appears twice in '{what}'.")
        if data_type not in DATA_TYPES:
            raise InvalidInput(
                f"Invalid data_type {data_type!r} of field {name!r}: use one of {', '.join(DATA_TYPES)}."
            )
        widget = item.get("widget")
        if widget is not None and not isinstance(widget, dict):
            raise InvalidInput(f"'widget' of field {name!r} must be an object.")
        seen.add(name)
        out.append({"name": name, "data_type": data_type, "widget": widget or None})
    return out


def fields_in(raw: list[dict[str, Any]]) -> tuple[FieldIn, ...]:
    """The typed fields of checked field declarations (what :func:`valid_fields` answers)."""
    return tuple(FieldIn(f["name"], f["data_type"], f.get("widget")) for f in raw)


def fields_json(fields: tuple[FieldIn, ...] | None) -> list[dict[str, Any]] | None:
    """Typed fields as :func:`valid_fields` checks them (None stays None)."""
    return None if fields is None else [f.as_json() for f in fields]


def fields_of(raw: list[dict[str, Any]]) -> tuple[Field, ...]:
    """The Field entities of stored field declarations."""
    return tuple(Field(f["name"], f["data_type"], f.get("widget")) for f in raw or [])


def _type_ok(data_type: str, value: Any) -> bool:
    if value is None:
        return True  # fields may be null
    if data_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if data_type == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type in ("string", "file"):
        return isinstance(value, str)
    if data_type == "bool":
        return isinstance(value, bool)
    if data_type == "dict":
        return isinstance(value, dict)
    if data_type.startswith("array_"):
        inner = data_type[len("array_") :]
        return isinstance(value, list) and all(_type_ok(inner if inner != "file" else "file", v) for v in value)
    return False


def check_fields(fields: tuple[Field, ...], data: Any, *, what: str) -> None:
    """Structured data must be an object holding exactly the declared fields, each of its type."""
    if not isinstance(data, dict):
        raise InvalidInput(f"The {what} must be a JSON object with the fields {', '.join(f.name for f in fields)}.")
    declared = {f.name: f for f in fields}
    for name in data:
        if name not in declared:
            raise InvalidInput(f"Unknown {what} field {name!r}; the deployment declares {', '.join(declared)}.")
    for f in fields:
        if f.name not in data:
            raise InvalidInput(f"Missing {what} field {f.name!r} ({f.data_type}).")
        if not _type_ok(f.data_type, data[f.name]):
            raise InvalidInput(
                f"{what.capitalize()} field {f.name!r} must be of type {f.data_type}, got {type(data[f.name]).__name__}."
            )


def check_instances(minimum: int, maximum: int) -> None:
    """A version's instance bounds, each already in its range."""
    if minimum > maximum:
        raise InvalidInput("'minimum_instances' cannot be more than 'maximum_instances'.")


def valid_retention_mode(value: Any) -> str:
    """A version's request retention mode, one of RETENTION_MODES; else InvalidInput."""
    if value not in RETENTION_MODES:
        raise InvalidInput(f"'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
    return value


def environment_name_fault() -> InvalidInput:
    return InvalidInput("'name' must be 1 to 256 printable characters.")


def valid_environment_name(name: str) -> str:
    """A custom environment's name: 1 to 256 printable characters (the edges refuse one that is no string)."""
    if not 0 < len(name) <= 256 or not name.isprintable():
        raise environment_name_fault()
    return name


def valid_env_value(value: Any) -> str:
    """An environment variable's value: a string (it may be empty) of at most MAX_ENV_VALUE characters."""
    if value is None:
        raise InvalidInput("'value' is required (it may be an empty string).")
    if not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
        raise InvalidInput(f"'value' must be a string of at most {MAX_ENV_VALUE} characters.")
    return value


def valid_env_name(value: Any) -> str:
    """An environment variable's name; else InvalidInput."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise InvalidInput(
            f"Invalid environment variable name {value!r}: letters, digits and '_', starting with a letter and not "
            f"ending with '_', at most {MAX_NAME} characters."
        )
    return value


def truncate(message: str | None, limit: int = MAX_ERROR) -> str | None:
    """An error message cut to ``limit`` characters (None stays None)."""
    if message is None:
        return None
    return message if len(message) <= limit else message[: limit - 1] + "…"


def build_error(message: str, limit: int = MAX_ERROR) -> str:
    """A build's error for ``error_message`` (at most ``limit``): its first line and as much of its end (where
    pip says what went wrong) as fits."""
    if len(message) <= limit:
        return message
    head = message.split("\n", 1)[0][: limit // 2]
    return head + "\n…\n" + message[-(limit - len(head) - 3) :]


def hardware_tier_of(group: str | None, settings: dict[str, Any] | None) -> str | None:
    """The hardware tier a version names (its id or name): its instance type group, else its (deprecated) instance
    type; None: the organisation's default tier."""
    if group:
        return group
    instance_type = (settings or {}).get("instance_type")
    return instance_type if isinstance(instance_type, str) and instance_type else None
