"""Wire values into the core's typed arguments, for the values several edges send alike: a project's stage list
(native API, Domino) and the serving bodies (native API, UbiOps). Each parse function checks the wire types of a
JSON value (a request body's field, or a native body model's dump) with the messages the core used to answer, and
calls the core's pure checks between them where a later value's type was checked after an earlier value's domain
rule, so a request with several faults answers the first as before. The core checks the domain rules again on the
typed values. Pure: no services, no queries.
"""

from __future__ import annotations

from typing import Any

from modelharbor.core.projects import check_stage_count, check_stage_name, stage_name_fault
from modelharbor.core.serving.environment_tags import tag_name
from modelharbor.core.serving.request_history import (
    bounded_int,
    check_update,
    request_ids_fault,
    request_ids_of,
    request_update_fault,
)
from modelharbor.core.serving.validation import (
    MAX_DESCRIPTION,
    VERSION_INTS,
    VERSION_SETTINGS,
    check_instances,
    environment_name_fault,
    fields_in,
    valid_env_name,
    valid_env_value,
    valid_environment_name,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
    valid_retention_mode,
    valid_text,
)
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import (
    UNSET,
    DeploymentIn,
    DeploymentPatch,
    EnvVarIn,
    FieldIn,
    PipelineIn,
    PipelineVersionIn,
    VersionIn,
    name_in,
)


# --- projects ---------------------------------------------------------------------------------------------------
def stage_list(value: Any) -> list[str]:
    """A project's stage list: a non-empty JSON array of strings (its names checked in order, as the core will)."""
    if not isinstance(value, list):
        raise InvalidInput("'stages' must be a non-empty list of stage names.")
    check_stage_count(len(value))
    seen: set[str] = set()
    for st in value:
        if not isinstance(st, str):
            raise stage_name_fault(st)
        check_stage_name(st, seen)
    return value


# --- serving: deployments, versions, environments, environment variables -----------------------------------------
def _fields(value: Any, what: str, io_type: str) -> tuple[FieldIn, ...] | None:
    return None if value is None else fields_in(valid_fields(value, what, io_type))


def _labels(value: Any) -> dict[str, str] | None:
    return None if value is None else valid_labels(value)


def _text(value: Any, what: str, limit: int = MAX_DESCRIPTION) -> str | None:
    return None if value is None else valid_text(value, what, limit)


def deployment_in(body: dict[str, Any]) -> DeploymentIn:
    """A new deployment's body (UbiOps' JSON, the native API's model dump)."""
    name = valid_name(body.get("name"), "deployment")
    input_type = valid_io_type(body.get("input_type"), "input_type")
    output_type = valid_io_type(body.get("output_type"), "output_type")
    input_fields = _fields(body.get("input_fields"), "input_fields", input_type)
    output_fields = _fields(body.get("output_fields"), "output_fields", output_type)
    supports = body.get("supports_request_format", True)
    if not isinstance(supports, bool):
        raise InvalidInput("'supports_request_format' must be a boolean.")
    return DeploymentIn(
        name=name,
        input_type=input_type,
        output_type=output_type,
        input_fields=input_fields,
        output_fields=output_fields,
        supports_request_format=supports,
        description=_text(body.get("description"), "description"),
        labels=_labels(body.get("labels")),
    )


def deployment_patch(body: dict[str, Any], what: str = "deployment") -> DeploymentPatch:
    """A deployment's (or, ``what``, a pipeline's) change; null is absent. Its fields are checked for their shape
    here and, against its input and output types, by the core."""
    name = body.get("name")
    return DeploymentPatch(
        name=None if name is None else valid_name(name, what),
        description=_text(body.get("description"), "description"),
        labels=_labels(body.get("labels")),
        input_fields=_fields(body.get("input_fields"), "input_fields", "structured"),
        output_fields=_fields(body.get("output_fields"), "output_fields", "structured"),
        default_version=name_in(body.get("default_version")),
    )


def pipeline_in(body: dict[str, Any]) -> PipelineIn:
    """A new pipeline's body (its output type is its input type unless given)."""
    name = valid_name(body.get("name"), "pipeline")
    input_type = valid_io_type(body.get("input_type"), "input_type")
    output_type = valid_io_type(body.get("output_type", input_type), "output_type")
    return PipelineIn(
        name=name,
        input_type=input_type,
        output_type=output_type,
        description=_text(body.get("description"), "description"),
        input_fields=_fields(body.get("input_fields"), "input_fields", input_type),
        output_fields=_fields(body.get("output_fields"), "output_fields", output_type),
        labels=_labels(body.get("labels")),
    )


def pipeline_version_in(body: dict[str, Any], *, creating: bool) -> PipelineVersionIn:
    """A pipeline version's body, new or a change (null is absent; a null description clears it, a null metadata
    is kept as null). Its objects and attachments, JSON, are the core's to check (they name deployments)."""
    version = body.get("version")
    if creating or version is not None:
        version = valid_name(version, "version")
    description = valid_text(body.get("description"), "description") if "description" in body else None
    labels = _labels(body.get("labels"))
    mode = body.get("request_retention_mode")
    if mode is not None:
        mode = valid_retention_mode(mode)
    seconds = body.get("request_retention_time")
    if seconds is not None:
        low, high, default = VERSION_INTS["request_retention_time"]
        seconds = bounded_int(seconds, "request_retention_time", default, low, high)
    return PipelineVersionIn(
        version=version,
        description=description,
        labels=labels,
        request_retention_mode=mode,
        request_retention_time=seconds,
        metadata=body.get("metadata", UNSET),
        objects=body.get("objects"),
        attachments=body.get("attachments"),
    )


def version_in(body: dict[str, Any], *, creating: bool) -> VersionIn:
    """A deployment version's body, new (``creating``: its name required) or a change (null is absent; a null
    description clears it). The numbers are checked in the core's order, with its ranges (VERSION_INTS)."""
    version = body.get("version")
    if creating or version is not None:
        version = valid_name(version, "version")
    env = body.get("environment_name") or body.get("environment")
    if env is not None and not env:
        env = ""  # the newest base environment, as a falsy value always chose
    elif env is not None and not isinstance(env, str):
        raise InvalidInput("'environment_name' must be a string.")
    numbers: dict[str, int | None] = {}
    description = valid_text(body.get("description"), "description") if "description" in body else None
    labels = _labels(body.get("labels"))
    for key, (low, high, default) in VERSION_INTS.items():
        value = body.get(key)
        numbers[key] = None if value is None else bounded_int(value, key, default, low, high)
        if key == "maximum_instances":
            low_n = numbers["minimum_instances"]
            high_n = numbers["maximum_instances"]
            if creating or (low_n is not None and high_n is not None):
                check_instances(
                    VERSION_INTS["minimum_instances"][2] if low_n is None else low_n,
                    VERSION_INTS["maximum_instances"][2] if high_n is None else high_n,
                )
    mode = body.get("request_retention_mode")
    if mode is not None:
        mode = valid_retention_mode(mode)
    return VersionIn(
        version=version,
        environment=env,
        environment_tag=name_in(body.get("environment_tag")),
        description=description,
        labels=labels,
        **numbers,
        request_retention_mode=mode,
        instance_type_group_name=_text(body.get("instance_type_group_name"), "instance_type_group_name", 256),
        settings={key: body[key] for key in VERSION_SETTINGS if body.get(key) is not None},
    )


def environment_in(body: dict[str, Any]) -> tuple[str, str | None, dict[str, str] | None, str | None]:
    """A new environment's (name, description, labels, base environment); a base that is no string names none."""
    name = body.get("name")
    if not isinstance(name, str):
        raise environment_name_fault()
    valid_environment_name(name)
    base = body.get("base_environment")
    return (
        name,
        _text(body.get("description"), "description"),
        _labels(body.get("labels")),
        None if not base else name_in(base),
    )


def environment_patch(body: dict[str, Any]) -> tuple[str | None, dict[str, str] | None]:
    """An environment's change: (description, labels), None where not given."""
    return _text(body.get("description"), "description"), _labels(body.get("labels"))


def tag_in(body: dict[str, Any], *, creating: bool) -> tuple[str | None, bool | None, str | None]:
    """A custom environment's tag, new (``creating``: its name, when given, checked; ``supports_request_format``
    true unless given) or changed: (name, supports_request_format, status). A status may only be sent as the tag
    has it: one that is no string is handed on as an ``Unnamed`` (it is none)."""
    supports = body.get("supports_request_format")
    if supports is None:
        supports = True if creating else None
    elif not isinstance(supports, bool):
        raise InvalidInput("'supports_request_format' must be a boolean.")
    name = body.get("name") if creating else None
    if name is not None:
        name = tag_name(name)
    return name, supports, name_in(body.get("status"))


def env_var_in(body: dict[str, Any], *, creating: bool) -> EnvVarIn:
    """An environment variable (``creating``: name and value required, ``secret`` false unless given) or a change
    of one (null is absent)."""
    name = body.get("name")
    if creating or name is not None:
        name = valid_env_name(name)
    secret = body.get("secret", False) if creating else body.get("secret")
    if (creating or secret is not None) and not isinstance(secret, bool):
        raise InvalidInput("'secret' must be a boolean.")
    value = body.get("value")
    if creating or value is not None:
        value = valid_env_value(value)
    return EnvVarIn(name=name, value=value, secret=secret)


# --- kept requests ----------------------------------------------------------------------------------------------
def request_ids(value: Any) -> list[str]:
    """The ids of a collect / delete / cancel body: a JSON array of 1..MAX_IDS strings."""
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise request_ids_fault()
    request_ids_of(value)
    return value


def request_status(body: dict[str, Any]) -> str:
    """The status a request's PATCH asks for: ``{"status": …}`` and nothing else (the core takes only cancelled)."""
    status = body.get("status")
    if set(body) - {"status"} or not isinstance(status, str):
        raise request_update_fault()
    check_update(status)
    return status
