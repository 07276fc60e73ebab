"""What an export or an import selects, in one shape: ``{deployments, pipelines, environment_variables,
environments}`` keyed by name — the content an import's scan describes, the confirmation a user sends, what an
import creates.

- :func:`normalise_selection` checks a selection with the serving rules (names, fields, labels, limits) and returns
  it complete: defaults filled, known keys only. A confirmation entry is laid over the zip's (:func:`merge_entry`).
- A secret's value is never shown (:func:`public_view`) and never exported; :func:`missing_values` lists the
  variables an import still needs a value for.
- No string of a selection holds a NUL character (:func:`reject_nul`; PostgreSQL refuses them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelharbor.core.serving.environment_tags import MAX_TAGS, tag_name
from modelharbor.core.serving.validation import (
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_INSTANCES,
    RETENTION_MODES,
    valid_env_name,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
    valid_text,
)
from modelharbor.domain.errors import InvalidInput

KINDS = ("deployments", "pipelines", "environment_variables", "environments")
MAX_PIPELINE_OBJECTS = 100
MAX_PIPELINE_ATTACHMENTS = 500


def is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 36 and "\x00" not in value


def reject_nul(value: Any, what: str) -> None:
    """No string of a selection may hold a NUL character (no name has one; PostgreSQL refuses them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(f"The {what} holds a NUL character.")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def as_object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"'{what}' must be an object.")
    return value


def _within(where: str, fn: Callable[[], Any]) -> Any:
    """Run a validator; its complaint names where it was found."""
    try:
        return fn()
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None


def public_view(selection: dict[str, Any]) -> dict[str, Any]:
    """The selection as it may be shown: every secret's value null."""

    def vars_of(raw: dict[str, Any]) -> dict[str, Any]:
        return {n: {**v, "value": None if v.get("secret") else v.get("value")} for n, v in raw.items()}

    out = json.loads(json.dumps(selection))
    for d in out.get("deployments", {}).values():
        d["environment_variables"] = vars_of(d.get("environment_variables", {}))
        for v in d.get("versions", {}).values():
            v["environment_variables"] = vars_of(v.get("environment_variables", {}))
    out["environment_variables"] = vars_of(out.get("environment_variables", {}))
    return out


def empty_selection() -> dict[str, Any]:
    return {kind: {} for kind in KINDS}


# --- normalising a selection (the zip's content, or a confirmation) ---------------------------------
def _opt_str(value: Any, what: str, limit: int = 256) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{what}' must be a string of at most {limit} characters.")
    return value


def _opt_int(value: Any, what: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"'{what}' must be an integer from {low} to {high}.")
    return value


def _object_name(value: Any, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return valid_name(value, what)


def _norm_vars(raw: Any, where: str) -> dict[str, Any]:
    raw = as_object(raw, f"{where} environment_variables")
    if len(raw) > MAX_ENV_VARS:
        raise InvalidInput(f"{where}: at most {MAX_ENV_VARS} environment variables.")
    out = {}
    for name, spec in raw.items():
        _within(where, lambda n=name: valid_env_name(n))
        spec = as_object(spec, f"{where} variable {name}")
        secret = spec.get("secret", False)
        if secret is None:
            secret = False
        if not isinstance(secret, bool):
            raise InvalidInput(f"{where}: 'secret' of variable {name!r} must be true or false.")
        value = spec.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value):
            raise InvalidInput(
                f"{where}: the value of {name!r} must be a string of at most {MAX_ENV_VALUE} characters."
            )
        out[name] = {"value": value, "secret": secret}
    return out


def _norm_fields(value: Any, what: str, io_type: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k != "widget" or v} for f in valid_fields(value or None, what, io_type)]


def _norm_version(raw: Any, where: str) -> dict[str, Any]:
    raw = as_object(raw, where)
    out = {
        "zip": _within(where, lambda: _opt_str(raw.get("zip"), "zip", 1024)),
        "description": _within(where, lambda: valid_text(raw.get("description"), "description")),
        "labels": _within(where, lambda: valid_labels(raw.get("labels"))),
        "environment": _within(where, lambda: _opt_str(raw.get("environment"), "environment")),
        "environment_tag": _within(where, lambda: _opt_str(raw.get("environment_tag"), "environment_tag", 128)),
        "instance_type_group_name": _within(
            where, lambda: _opt_str(raw.get("instance_type_group_name"), "instance_type_group_name")
        ),
        "instance_type": _within(where, lambda: _opt_str(raw.get("instance_type"), "instance_type")),
        "minimum_instances": _within(
            where, lambda: _opt_int(raw.get("minimum_instances"), "minimum_instances", 0, MAX_INSTANCES)
        ),
        "maximum_instances": _within(
            where, lambda: _opt_int(raw.get("maximum_instances"), "maximum_instances", 1, MAX_INSTANCES)
        ),
        "maximum_idle_time": _within(
            where, lambda: _opt_int(raw.get("maximum_idle_time"), "maximum_idle_time", 10, 7 * 24 * 3600)
        ),
        "request_retention_mode": raw.get("request_retention_mode") or None,
        "request_retention_time": _within(
            where, lambda: _opt_int(raw.get("request_retention_time"), "request_retention_time", 0, 365 * 24 * 3600)
        ),
        "maximum_queue_size": _within(
            where, lambda: _opt_int(raw.get("maximum_queue_size"), "maximum_queue_size", 1, 100_000)
        ),
        "environment_variables": _norm_vars(raw.get("environment_variables"), where),
    }
    if out["request_retention_mode"] not in (None, *RETENTION_MODES):
        raise InvalidInput(f"{where}: 'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
    low, high = out["minimum_instances"], out["maximum_instances"]
    if low is not None and low > (high if high is not None else 5):
        raise InvalidInput(f"{where}: 'minimum_instances' cannot be more than 'maximum_instances'.")
    return out


def _norm_deployment(name: str, raw: Any) -> dict[str, Any]:
    where = f"deployment {name!r}"
    _within(where, lambda: valid_name(name, "deployment"))
    raw = as_object(raw, where)
    input_type = _within(where, lambda: valid_io_type(raw.get("input_type"), "input_type"))
    output_type = _within(where, lambda: valid_io_type(raw.get("output_type"), "output_type"))
    versions = {}
    for vname, v in as_object(raw.get("versions"), f"{where} versions").items():
        vname = _within(where, lambda n=vname: _object_name(n, "version"))
        versions[vname] = _norm_version(v, f"version {vname!r} of deployment {name!r}")
    return {
        "description": _within(where, lambda: valid_text(raw.get("description"), "description")),
        "labels": _within(where, lambda: valid_labels(raw.get("labels"))),
        "input_type": input_type,
        "output_type": output_type,
        "input_fields": _within(where, lambda: _norm_fields(raw.get("input_fields"), "input_fields", input_type)),
        "output_fields": _within(where, lambda: _norm_fields(raw.get("output_fields"), "output_fields", output_type)),
        "default_version": _within(where, lambda: _opt_str(raw.get("default_version"), "default_version", 64)),
        "environment_variables": _norm_vars(raw.get("environment_variables"), where),
        "versions": versions,
    }


def _norm_pipeline_version(raw: Any, where: str) -> dict[str, Any]:
    raw = as_object(raw, where)
    objects = raw.get("objects") or []
    attachments = raw.get("attachments") or []
    if not isinstance(objects, list) or len(objects) > MAX_PIPELINE_OBJECTS:
        raise InvalidInput(f"{where}: 'objects' must be a list of at most {MAX_PIPELINE_OBJECTS} objects.")
    if not isinstance(attachments, list) or len(attachments) > MAX_PIPELINE_ATTACHMENTS:
        raise InvalidInput(f"{where}: 'attachments' must be a list of at most {MAX_PIPELINE_ATTACHMENTS} items.")
    out_objects = []
    for obj in objects:
        if not isinstance(obj, dict):
            raise InvalidInput(f"{where}: each object must be an object {{name, reference_name, ...}}.")
        kind = obj.get("reference_type") or "deployment"
        if kind != "deployment":
            raise InvalidInput(f"{where}: object {obj.get('name')!r} is a {kind!r}; only deployments are supported.")
        out_objects.append(
            {
                "name": _within(where, lambda o=obj: _opt_str(o.get("name"), "name", 64)),
                "reference_name": _within(where, lambda o=obj: _opt_str(o.get("reference_name"), "reference_name", 64)),
                "reference_type": "deployment",
                "reference_version": _within(
                    where,
                    lambda o=obj: _opt_str(
                        o.get("reference_version") if o.get("reference_version") is not None else o.get("version"),
                        "reference_version",
                        64,
                    ),
                ),
            }
        )
    out_attachments = []
    for att in attachments:
        if not isinstance(att, dict) or not isinstance(att.get("sources"), list):
            raise InvalidInput(f"{where}: each attachment must be an object {{destination_name, sources: [...]}}.")
        sources = []
        for src in att["sources"]:
            if not isinstance(src, dict) or not isinstance(src.get("mapping") or [], list):
                raise InvalidInput(f"{where}: each source must be an object {{source_name, mapping: [...]}}.")
            mapping = [
                {
                    "source_field_name": m.get("source_field_name"),
                    "destination_field_name": m.get("destination_field_name"),
                }
                for m in src.get("mapping") or []
                if isinstance(m, dict)
            ]
            sources.append({"source_name": src.get("source_name"), "mapping": mapping})
        out_attachments.append({"destination_name": att.get("destination_name"), "sources": sources})
    mode = raw.get("request_retention_mode") or None
    if mode not in (None, *RETENTION_MODES):
        raise InvalidInput(f"{where}: 'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
    return {
        "description": _within(where, lambda: valid_text(raw.get("description"), "description")),
        "labels": _within(where, lambda: valid_labels(raw.get("labels"))),
        "request_retention_mode": mode,
        "request_retention_time": _within(
            where, lambda: _opt_int(raw.get("request_retention_time"), "request_retention_time", 0, 365 * 24 * 3600)
        ),
        "objects": out_objects,
        "attachments": out_attachments,
    }


def _norm_pipeline(name: str, raw: Any) -> dict[str, Any]:
    where = f"pipeline {name!r}"
    _within(where, lambda: valid_name(name, "pipeline"))
    raw = as_object(raw, where)
    input_type = _within(where, lambda: valid_io_type(raw.get("input_type"), "input_type"))
    output_type = _within(where, lambda: valid_io_type(raw.get("output_type") or input_type, "output_type"))
    versions = {}
    for vname, v in as_object(raw.get("versions"), f"{where} versions").items():
        vname = _within(where, lambda n=vname: _object_name(n, "version"))
        versions[vname] = _norm_pipeline_version(v, f"version {vname!r} of pipeline {name!r}")
    return {
        "description": _within(where, lambda: valid_text(raw.get("description"), "description")),
        "labels": _within(where, lambda: valid_labels(raw.get("labels"))),
        "input_type": input_type,
        "output_type": output_type,
        "input_fields": _within(where, lambda: _norm_fields(raw.get("input_fields"), "input_fields", input_type)),
        "output_fields": _within(where, lambda: _norm_fields(raw.get("output_fields"), "output_fields", output_type)),
        "default_version": _within(where, lambda: _opt_str(raw.get("default_version"), "default_version", 64)),
        "versions": versions,
    }


def _norm_tag(raw: Any, where: str) -> dict[str, Any]:
    raw = as_object(raw, where)
    supports = raw.get("supports_request_format")
    if supports is not None and not isinstance(supports, bool):
        raise InvalidInput(f"{where}: 'supports_request_format' must be true or false.")
    return {
        "zip": _within(where, lambda: _opt_str(raw.get("zip"), "zip", 1024)),
        "base_environment": _within(where, lambda: _opt_str(raw.get("base_environment"), "base_environment")),
        "supports_request_format": True if supports is None else supports,
    }


def _norm_environment(name: str, raw: Any) -> dict[str, Any]:
    where = f"environment {name!r}"
    if not isinstance(name, str) or not 0 < len(name) <= 256 or not name.isprintable():
        raise InvalidInput(f"Invalid environment name {name!r}: 1 to 256 printable characters.")
    raw = as_object(raw, where)
    given = as_object(raw.get("tags"), f"{where} tags")
    if len(given) > MAX_TAGS:
        raise InvalidInput(f"{where}: an environment may have at most {MAX_TAGS} tags.")
    tags = {}
    for tname, spec in given.items():
        tname = _within(where, lambda n=tname: tag_name(n))
        tags[tname] = _norm_tag(spec, f"tag {tname!r} of environment {name!r}")
    return {
        "display_name": _within(where, lambda: _opt_str(raw.get("display_name"), "display_name")),
        "description": _within(where, lambda: valid_text(raw.get("description"), "description")),
        "labels": _within(where, lambda: valid_labels(raw.get("labels"))),
        "base_environment": _within(where, lambda: _opt_str(raw.get("base_environment"), "base_environment")),
        "tags": tags,  # latest first, then as the zip lists them (``latest`` is made with the environment anyway)
    }


def normalise_selection(raw: dict[str, Any]) -> dict[str, Any]:
    """Check a selection in the confirmation's shape and return it complete (defaults filled, known keys only)."""
    out = empty_selection()
    for name, spec in as_object(raw.get("deployments"), "deployments").items():
        out["deployments"][name] = _norm_deployment(name, spec)
    for name, spec in as_object(raw.get("pipelines"), "pipelines").items():
        out["pipelines"][name] = _norm_pipeline(name, spec)
    out["environment_variables"] = _norm_vars(raw.get("environment_variables"), "the project")
    for name, spec in as_object(raw.get("environments"), "environments").items():
        out["environments"][name] = _norm_environment(name, spec)
    return out


CHILDREN: dict[str, dict[str, Any]] = {
    "deployments": {"versions": {"environment_variables": {}}, "environment_variables": {}},
    "pipelines": {"versions": {}},
    "environment_variables": {},
    "environments": {"tags": {}},
}


def merge_entry(given: Any, base: Any, children: dict[str, Any], where: str) -> dict[str, Any]:
    """An entry of a confirmation over the same-named entry of the zip: fields it leaves out come from the zip;
    a dict of entries it gives (versions, environment variables) lists exactly the entries to create."""
    given = as_object(given, where)
    base = base if isinstance(base, dict) else {}
    out = {**base, **given}
    for key, grandchildren in children.items():
        if key in given:
            inner_base = base.get(key) if isinstance(base.get(key), dict) else {}
            out[key] = {
                name: merge_entry(entry, inner_base.get(name), grandchildren, f"{where} {key} {name}")
                for name, entry in as_object(given[key], f"{where} {key}").items()
            }
    return out


def missing_values(selection: dict[str, Any]) -> list[str]:
    """The variables of a selection that have no value (secrets are never exported; others may not be)."""
    out = []

    def check(raw: dict[str, Any], where: str) -> None:
        for name, var in raw.items():
            if var.get("value") is None:
                out.append(f"{name} ({where}{', secret' if var.get('secret') else ''})")

    check(selection["environment_variables"], "project")
    for dname, d in selection["deployments"].items():
        check(d["environment_variables"], f"deployment {dname}")
        for vname, v in d["versions"].items():
            check(v["environment_variables"], f"deployment {dname} version {vname}")
    return out
