"""What an import zip describes: its yaml files (format.py has the layout) read into a selection
(selection.py) — deployments with their versions and packages, pipelines with theirs, environments with their
tags and packages, project variables.

- Names come from the yaml files, not from the folders; a name or a folder given twice is refused, as is a version
  whose folder has no deployment (pipeline) file.
- A package belongs to the version (the tag) whose name it carries; the scan lists the packages used.
- A secret's value is never taken from a zip (exports never hold one): it is asked for in the confirmation.
- What serving could not create is refused here already (the content is normalised), as a :class:`Rejected`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelharbor.core.serving.environment_tags import DEFAULT_TAG
from modelharbor.core.transfer.format import PACKAGE_KINDS, Rejected, parse_yaml
from modelharbor.core.transfer.selection import empty_selection, normalise_selection
from modelharbor.domain.errors import InvalidInput

_LANGUAGE = re.compile(r"python(\d)\.(\d+)")


@dataclass
class Scan:
    root: str
    content: dict[str, Any]
    packages: list[str]
    hashes: dict[str, tuple[str, int]] = field(default_factory=dict)  # entry → (SHA-256, size), hashed while scanning


def _vars_from_yaml(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        raw = [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise Rejected(f"{where}: environment variables must be a list of {{name, value, secret}}.")
    out: dict[str, Any] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise Rejected(f"{where}: each environment variable must be an object {{name, value, secret}}.")
        secret = item.get("secret") is True
        # a secret's value is never taken from a zip (exports never hold one): it is asked for again
        out[item["name"]] = {"value": None if secret else item.get("value"), "secret": secret}
    return out


def _environment_of(y: dict[str, Any]) -> Any:
    env = y.get("environment") or y.get("environment_name") or y.get("language")
    if isinstance(env, str):
        m = _LANGUAGE.fullmatch(env)
        if m:  # older files say language: python3.8
            return f"python{m.group(1)}-{m.group(2)}"
    return env


def describe(root: str, layout: dict[str, tuple[str, ...]], texts: dict[str, bytes]) -> Scan:
    content = empty_selection()
    info = next((texts[n] for n, k in layout.items() if k[0] == "info"), b"")
    spec = parse_yaml(info, "info.yaml").get("format_spec")
    if not isinstance(spec, str | float | int) or not str(spec).lstrip("v").startswith("1"):
        raise Rejected(f"info.yaml says format_spec {spec!r}; ModelHarbor reads format v1.0.")
    dep_dirs: dict[str, str] = {}
    pipe_dirs: dict[str, str] = {}
    versions: list[tuple[str, str, str]] = []
    pversions: list[tuple[str, str, str]] = []
    package_paths = {n[len(root) :] for n, k in layout.items() if k[0] in PACKAGE_KINDS}
    used: set[str] = set()
    env_dirs: set[str] = set()
    for name in sorted(layout):
        kind, *rest = layout[name]
        rel = name[len(root) :]
        if kind == "deployment":
            y = parse_yaml(texts[name], rel)
            dname = _yaml_name(y, "deployment_name", rel)
            if dname in content["deployments"]:
                raise Rejected(f"Deployment {dname!r} appears twice in the zip ({rel}).")
            if rest[0] in dep_dirs:
                raise Rejected(f"The folder deployments/{rest[0]} holds two deployment files.")
            dep_dirs[rest[0]] = dname
            content["deployments"][dname] = {
                "description": y.get("deployment_description"),
                "labels": y.get("deployment_labels"),
                "input_type": y.get("input_type"),
                "output_type": y.get("output_type"),
                "input_fields": y.get("input_fields"),
                "output_fields": y.get("output_fields"),
                "default_version": y.get("default_version"),
                "environment_variables": _vars_from_yaml(y.get("deployment_environment_variables"), rel),
                "versions": {},
            }
        elif kind == "version":
            versions.append((name, rest[0], rel))
        elif kind == "pipeline":
            y = parse_yaml(texts[name], rel)
            pname = _yaml_name(y, "pipeline_name", rel)
            if pname in content["pipelines"]:
                raise Rejected(f"Pipeline {pname!r} appears twice in the zip ({rel}).")
            if rest[0] in pipe_dirs:
                raise Rejected(f"The folder pipelines/{rest[0]} holds two pipeline files.")
            pipe_dirs[rest[0]] = pname
            content["pipelines"][pname] = {
                "description": y.get("pipeline_description"),
                "labels": y.get("pipeline_labels"),
                "input_type": y.get("input_type"),
                "output_type": y.get("output_type"),
                "input_fields": y.get("input_fields"),
                "output_fields": y.get("output_fields"),
                "default_version": y.get("default_version"),
                "versions": {},
            }
        elif kind == "pversion":
            pversions.append((name, rest[0], rel))
        elif kind == "environment":
            y = parse_yaml(texts[name], rel)
            ename = y.get("environment_name")
            if not isinstance(ename, str) or not ename:
                raise Rejected(f"{rel} has no environment_name.")
            if ename in content["environments"]:
                raise Rejected(f"Environment {ename!r} appears twice in the zip ({rel}).")
            if rest[0] in env_dirs:
                raise Rejected(f"The folder environments/{rest[0]} holds two environment files.")
            env_dirs.add(rest[0])
            tags = _tags_from_yaml(y.get("environment_tags"), rest[0], package_paths, rel)
            used.update(t["zip"] for t in tags.values() if t["zip"])
            content["environments"][ename] = {
                "display_name": y.get("environment_display_name") or y.get("display_name"),
                "description": y.get("environment_description"),
                "labels": y.get("environment_labels"),
                "base_environment": y.get("base_environment") or y.get("environment_base_environment"),
                "tags": tags,
            }
        elif kind == "project_vars":
            y = parse_yaml(texts[name], rel)
            found = _vars_from_yaml(y.get("project_environment_variables"), rel)
            if set(found) & set(content["environment_variables"]):
                raise Rejected(f"{rel} names a project variable twice.")
            content["environment_variables"].update(found)
    for name, folder, rel in versions:
        if folder not in dep_dirs:
            raise Rejected(f"{rel} is in a folder with no deployment file (deployments/{folder}/*.yaml).")
        y = parse_yaml(texts[name], rel)
        vname = _yaml_name(y, "version_name", rel)
        versions_of = content["deployments"][dep_dirs[folder]]["versions"]
        if vname in versions_of:
            raise Rejected(f"Version {vname!r} of {dep_dirs[folder]!r} appears twice in the zip.")
        package = rel.rsplit(".", 1)[0] + ".zip"
        if package in package_paths:
            used.add(package)
        versions_of[vname] = {
            "zip": package if package in package_paths else None,
            "description": y.get("version_description"),
            "labels": y.get("version_labels"),
            "environment": _environment_of(y),
            "environment_tag": y.get("environment_tag"),
            "instance_type_group_name": y.get("instance_type_group_name"),
            "instance_type": y.get("instance_type"),
            "minimum_instances": y.get("minimum_instances"),
            "maximum_instances": y.get("maximum_instances"),
            "maximum_idle_time": y.get("maximum_idle_time"),
            "request_retention_mode": y.get("request_retention_mode"),
            "request_retention_time": y.get("request_retention_time"),
            "maximum_queue_size": y.get("maximum_queue_size"),
            "environment_variables": _vars_from_yaml(y.get("version_environment_variables"), rel),
        }
    for name, folder, rel in pversions:
        if folder not in pipe_dirs:
            raise Rejected(f"{rel} is in a folder with no pipeline file (pipelines/{folder}/*.yaml).")
        y = parse_yaml(texts[name], rel)
        vname = _yaml_name(y, "version_name", rel)
        versions_of = content["pipelines"][pipe_dirs[folder]]["versions"]
        if vname in versions_of:
            raise Rejected(f"Version {vname!r} of pipeline {pipe_dirs[folder]!r} appears twice in the zip.")
        versions_of[vname] = {
            "description": y.get("version_description"),
            "labels": y.get("version_labels"),
            "request_retention_mode": y.get("request_retention_mode"),
            "request_retention_time": y.get("request_retention_time"),
            "objects": y.get("objects"),
            "attachments": y.get("attachments"),
        }
    try:
        normalised = normalise_selection(content)
    except InvalidInput as exc:
        raise Rejected(f"The zip describes an object ModelHarbor cannot create: {exc.message}") from None
    return Scan(root, normalised, sorted(used))


def _tags_from_yaml(raw: Any, folder: str, package_paths: set[str], rel: str) -> dict[str, Any]:
    """An environment yaml's ``environment_tags`` (older exports have none: the environment gets ``latest``
    only), each paired with its package ``environments/<folder>/tags/<folder>_tag_<tag>.zip`` if the zip has it."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise Rejected(f"{rel}: environment_tags must be a list of {{tag_name, base_environment, ...}}.")
    out: dict[str, Any] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise Rejected(f"{rel}: each environment tag must be an object {{tag_name, base_environment, ...}}.")
        name = item.get("tag_name") if item.get("tag_name") is not None else item.get("name")
        if isinstance(name, int | float) and not isinstance(name, bool):
            name = str(name)
        if not isinstance(name, str) or not name:
            raise Rejected(f"{rel}: an environment tag has no tag_name.")
        if name in out:
            raise Rejected(f"{rel} lists tag {name!r} twice.")
        package = f"environments/{folder}/tags/{folder}_tag_{name}.zip"
        out[name] = {
            "zip": package if package in package_paths else None,
            "base_environment": item.get("base_environment"),
            "supports_request_format": item.get("supports_request_format"),
        }
    if DEFAULT_TAG in out:  # made with the environment: first
        out = {DEFAULT_TAG: out.pop(DEFAULT_TAG), **out}
    return out


def _yaml_name(y: dict[str, Any], key: str, rel: str) -> str:
    value = y.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise Rejected(f"{rel} has no {key}.")
    return value
