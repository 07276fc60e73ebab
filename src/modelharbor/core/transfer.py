"""Project exports and imports: a project's deployments, versions (with their packages), pipelines, custom
environments and environment variables written to a zip, and such a zip read back into a project.

The zip follows format ``v1.0`` of UbiOps' import template (docs/dialects/ubiops.md has the layout)::

    <root>/info.yaml                                           format_spec: v1.0
    <root>/deployments/deployment_<d>/deployment_<d>.yaml
    <root>/deployments/deployment_<d>/versions/deployment_<d>_version_<v>.yaml (+ .zip, the package)
    <root>/pipelines/pipeline_<p>/pipeline_<p>.yaml
    <root>/pipelines/pipeline_<p>/versions/pipeline_<p>_version_<v>.yaml
    <root>/environments/environment_<e>/environment_<e>.yaml  (ModelHarbor convention; lists the tags)
    <root>/environments/environment_<e>/tags/environment_<e>_tag_<t>.zip  (a tag's environment package)
    <root>/project_environment_variables.yaml                 (ModelHarbor convention)

**Exports** (task ``project_export``): ``pending`` → ``processing`` → ``completed`` | ``failed``. A thread writes
the zip (packages streamed into it from the blob store) straight into the files service's upload, which hashes and
stores it meanwhile — no temporary file. A secret's value is never written, whatever the selection says.

**Imports** (task ``project_import``): ``pending`` → ``scanning`` (fetched if it is a link, every entry checked
and read once, counting the bytes; a zip in a local store is read in place, one in S3 copied to a temporary file)
→ ``confirmation`` (``content`` describes the zip in the shape of the confirmation) → after the confirmation
``confirmation_pending`` → ``processing`` → ``completed``; with ``skip_confirmation`` straight from ``scanning`` to
``processing``. Any step may end ``failed``. Objects are created through the serving and pipeline services
(packages become revisions whose builds run as usual; a thread reads each from the zip while its upload hashes and
stores it — unless the organisation already holds the package's bytes: then the revision points at them and nothing
is read or stored again; such packages are hashed while scanning, or before storing, and linked by that SHA-256). The
whole selection is checked against the project first; if a creation still fails, what this import created is
deleted again — an import lands whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import queue
import re
import socket
import ssl
import stat
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.files import FileService, check_name
from modelharbor.core.identity import IdentityService
from modelharbor.core.secretbox import SecretBox, SecretUnreadable
from modelharbor.core.serving import ServingService
from modelharbor.core.serving.environment_tags import DEFAULT_TAG, ENV_PACKAGE_CONTEXT, MAX_TAGS, tag_name
from modelharbor.core.serving.validation import (
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_INSTANCES,
    PACKAGE_CONTEXT,
    RETENTION_MODES,
    truncate,
    valid_env_name,
    valid_fields,
    valid_io_type,
    valid_labels,
    valid_name,
    valid_text,
)
from modelharbor.core.tasks import TaskService
from modelharbor.db.engine import Database
from modelharbor.db.tables import BlobRow, TaskRow, UserRow
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentBuildRow,
    EnvironmentRow,
    EnvironmentTagRow,
    EnvVarRow,
    PipelineRow,
    PipelineVersionRow,
    RevisionRow,
)
from modelharbor.db.tables_transfer import ProjectExportRow, ProjectImportRow
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Action, Principal, require
from modelharbor.storage import BlobStore

if TYPE_CHECKING:
    from modelharbor.core.serving.pipelines import PipelineService
    from modelharbor.settings import Settings

log = logging.getLogger("modelharbor.transfer")

EXPORT_TASK = "project_export"
IMPORT_TASK = "project_import"
EXPORT_CONTEXT = "ubiops-export"
IMPORT_CONTEXT = "ubiops-import"
EXPORT_STATUSES = ("pending", "processing", "completed", "failed")
IMPORT_STATUSES = ("pending", "scanning", "confirmation", "confirmation_pending", "processing", "completed", "failed")
KINDS = ("deployments", "pipelines", "environment_variables", "environments")
FORMAT_SPEC = "v1.0"
CHUNK = 1 << 20
IMPORT_READ = 4 << 20  # reads of an import's entries (scanned, then stored): fewer, larger pieces
PIPE_PIECE = CHUNK  # pieces a _Pipe gathers small writes into (larger ones pass through)
PIPE_DEPTH = 16  # pieces it holds at most (the memory one streamed export or package may take)
MAX_YAML = 1 << 20  # one yaml file of the layout
MAX_YAML_TOTAL = 64 << 20  # all of them together
MAX_YAML_NODES = 200_000  # values in one yaml document, aliases counted each time they are used
MAX_YAML_DEPTH = 64
MAX_CENTRAL_DIRECTORY = 64 << 20
MAX_LINK = 4096
MAX_REDIRECTS = 5
LINK_READ_TIMEOUT = 30.0  # seconds one read of a link's answer may wait
STALE = 15 * 60  # an import scanning/processing that long without a change has lost its worker
MAX_PIPELINE_OBJECTS = 100
MAX_PIPELINE_ATTACHMENTS = 500
_UNSAFE_SLUG = re.compile(r"[^A-Za-z0-9_-]")
_LANGUAGE = re.compile(r"python(\d)\.(\d+)")
YAML_KINDS = frozenset({"info", "deployment", "version", "pipeline", "pversion", "environment", "project_vars"})
PACKAGE_KINDS = frozenset({"package", "envpackage"})  # deployment packages, environment packages: read alike


class Rejected(InvalidInput):
    """An import zip (or link) that cannot be imported; the message says why."""

    code = "IMPORT_REJECTED"


@dataclass(frozen=True)
class TransferLimits:
    max_import_size: int = 8 << 30
    max_entries: int = 10_000
    max_unpacked: int = 16 << 30
    max_member: int = 8 << 30  # one entry of an import zip (a package)
    max_export_size: int = 1 << 40
    allow_private_links: bool = False
    allow_http_links: bool = False
    link_timeout: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TransferLimits:
        return cls(
            max_import_size=settings.max_import_size,
            max_entries=settings.max_import_entries,
            max_unpacked=settings.max_import_unpacked_size,
            max_member=settings.max_package_size,
            max_export_size=settings.max_upload_size,
            allow_private_links=settings.allow_private_import_links,
            allow_http_links=settings.allow_http_import_links,
            link_timeout=float(settings.import_link_timeout),
        )


@dataclass(frozen=True)
class Export:
    id: str
    project: str
    status: str
    error_message: str | None
    description: str
    size: int | None
    created_by: str | None  # username
    created_at: datetime
    selection: dict[str, Any]
    packages: bool


@dataclass(frozen=True)
class Import:
    id: str
    project: str
    status: str
    error_message: str | None
    size: int | None
    created_by: str | None
    created_at: datetime
    content: dict[str, Any]
    source: str
    skip_confirmation: bool


def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - installed with the server's dependencies
        raise InvalidInput("Exports and imports need PyYAML: install the 'pyyaml' package.") from None
    return yaml


def _dump(data: dict[str, Any]) -> bytes:
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False).encode()


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 36 and "\x00" not in value


def _reject_nul(value: Any, what: str) -> None:
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


def _obj(value: Any, what: str) -> dict[str, Any]:
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


def _slug(name: str) -> str:
    return _UNSAFE_SLUG.sub("_", name)[:100] or "environment"


def _root_name(project: str, export_id: str) -> str:
    return f"export_{project}_{export_id[:8]}"


def _safe_filename(name: str | None, fallback: str) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in "\"'")[:200].strip()
    return base if base.lower().endswith(".zip") else fallback


def _public(selection: dict[str, Any]) -> dict[str, Any]:
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


def _empty() -> dict[str, Any]:
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
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"'{what}' must be an integer from {low} to {high}.")
    return value


def _object_name(value: Any, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return valid_name(value, what)


def _norm_vars(raw: Any, where: str) -> dict[str, Any]:
    raw = _obj(raw, f"{where} environment_variables")
    if len(raw) > MAX_ENV_VARS:
        raise InvalidInput(f"{where}: at most {MAX_ENV_VARS} environment variables.")
    out = {}
    for name, spec in raw.items():
        _within(where, lambda n=name: valid_env_name(n))
        spec = _obj(spec, f"{where} variable {name}")
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
    raw = _obj(raw, where)
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
    raw = _obj(raw, where)
    input_type = _within(where, lambda: valid_io_type(raw.get("input_type"), "input_type"))
    output_type = _within(where, lambda: valid_io_type(raw.get("output_type"), "output_type"))
    versions = {}
    for vname, v in _obj(raw.get("versions"), f"{where} versions").items():
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
    raw = _obj(raw, where)
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
    raw = _obj(raw, where)
    input_type = _within(where, lambda: valid_io_type(raw.get("input_type"), "input_type"))
    output_type = _within(where, lambda: valid_io_type(raw.get("output_type") or input_type, "output_type"))
    versions = {}
    for vname, v in _obj(raw.get("versions"), f"{where} versions").items():
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
    raw = _obj(raw, where)
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
    raw = _obj(raw, where)
    given = _obj(raw.get("tags"), f"{where} tags")
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
    out = _empty()
    for name, spec in _obj(raw.get("deployments"), "deployments").items():
        out["deployments"][name] = _norm_deployment(name, spec)
    for name, spec in _obj(raw.get("pipelines"), "pipelines").items():
        out["pipelines"][name] = _norm_pipeline(name, spec)
    out["environment_variables"] = _norm_vars(raw.get("environment_variables"), "the project")
    for name, spec in _obj(raw.get("environments"), "environments").items():
        out["environments"][name] = _norm_environment(name, spec)
    return out


CHILDREN: dict[str, dict[str, Any]] = {
    "deployments": {"versions": {"environment_variables": {}}, "environment_variables": {}},
    "pipelines": {"versions": {}},
    "environment_variables": {},
    "environments": {"tags": {}},
}


def _merge(given: Any, base: Any, children: dict[str, Any], where: str) -> dict[str, Any]:
    """An entry of a confirmation over the same-named entry of the zip: fields it leaves out come from the zip;
    a dict of entries it gives (versions, environment variables) lists exactly the entries to create."""
    given = _obj(given, where)
    base = base if isinstance(base, dict) else {}
    out = {**base, **given}
    for key, grandchildren in children.items():
        if key in given:
            inner_base = base.get(key) if isinstance(base.get(key), dict) else {}
            out[key] = {
                name: _merge(entry, inner_base.get(name), grandchildren, f"{where} {key} {name}")
                for name, entry in _obj(given[key], f"{where} {key}").items()
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


# --- zips -------------------------------------------------------------------------------------------
def _check_end_record(src: Path | BinaryIO, max_entries: int) -> None:
    """Read the entry count from the end of the zip before ``zipfile`` loads its whole directory."""
    with open(src, "rb") if isinstance(src, Path) else contextlib.nullcontext(src) as f:
        size = f.seek(0, os.SEEK_END)
        if size < 22:
            raise Rejected("The import is not a zip file (it is too short).")
        tail_len = min(size, 65536 + 22)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise Rejected("The import is not a zip file (no end of central directory record).")
        _, _, _, entries, cd_size, _, _ = struct.unpack("<HHHHIIH", tail[at + 4 : at + 22])
        if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
            _, offset, _ = struct.unpack("<IQI", tail[at - 16 : at])
            if offset < size:
                f.seek(offset)
                record = f.read(56)
                if len(record) == 56 and record[:4] == b"PK\x06\x06":
                    entries, cd_size = struct.unpack("<QQ", record[32:48])
    if entries > max_entries:
        raise Rejected(f"The zip has {entries} entries; an import may have at most {max_entries}.")
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise Rejected(f"The zip's directory is larger than {MAX_CENTRAL_DIRECTORY} bytes.")


def _check_member(info: zipfile.ZipInfo, seen: set[str]) -> None:
    name = info.filename
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if "\x00" in name or clean.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise Rejected(f"The zip holds an unsafe path {name!r} (absolute, or with '..').")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise Rejected(f"The zip holds a symbolic link {name!r}; links are not imported.")
    if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Rejected(f"The zip holds {name!r}, which is not a regular file.")
    if info.flag_bits & 0x1:
        raise Rejected(f"The zip holds an encrypted entry {name!r}.")
    if clean.rstrip("/") in seen:
        raise Rejected(f"The zip holds {name!r} twice.")
    seen.add(clean.rstrip("/"))


def _bounded(doc: Any, where: str) -> None:
    stack = [(doc, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            raise Rejected(f"{where} is too large or too deeply nested (aliases count each time they are used).")
        if isinstance(value, str) and "\x00" in value:
            raise Rejected(f"{where} holds a NUL character.")
        if isinstance(value, dict):
            stack.extend((x, depth + 1) for kv in value.items() for x in kv)
        elif isinstance(value, list):
            stack.extend((x, depth + 1) for x in value)


def _parse_yaml(data: bytes, where: str) -> dict[str, Any]:
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Rejected(f"{where} is not valid YAML: {first}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejected(f"{where} cannot be read: {exc}") from None
    _bounded(doc, where)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise Rejected(f"{where} must hold a mapping of keys to values.")
    # values YAML types on its own (dates, ...) become strings, so the content is plain JSON
    return json.loads(json.dumps(doc, default=str))


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


@dataclass
class _Scan:
    root: str
    content: dict[str, Any]
    packages: list[str]
    hashes: dict[str, tuple[str, int]] = field(default_factory=dict)  # entry → (SHA-256, size), hashed while scanning


# --- links ------------------------------------------------------------------------------------------
class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address that was checked (no second DNS lookup), certificate checked for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


# --- streaming between a writing thread and an upload -------------------------------------------------
class _PipeClosed(Exception):
    """The reading side of a _Pipe stopped (its upload failed): the writer stops too."""


class _Pipe:
    """A bounded, write-only byte stream whose pieces an async upload reads (``chunks()``) while a thread writes
    them — a zip written by ``zipfile`` (unseekable: it adds data descriptors) goes straight into the files service,
    hashed and stored while the next pieces are produced, without a temporary file. Small writes are gathered into
    pieces of at least ``piece`` bytes; large ones pass through without a copy."""

    _END = object()

    def __init__(self, piece: int = PIPE_PIECE, depth: int = PIPE_DEPTH):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._buf = bytearray()
        self._piece = piece
        self._closed = threading.Event()

    def _put(self, item: Any) -> None:
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _PipeClosed("the upload stopped reading")

    def write(self, data) -> int:
        n = len(data)
        if n >= self._piece:
            if self._buf:  # what was gathered goes first
                self._put(bytes(self._buf))
                self._buf.clear()
            self._put(data if isinstance(data, bytes) else bytes(data))
        else:
            self._buf += data
            if len(self._buf) >= self._piece:
                self._put(bytes(self._buf))
                self._buf.clear()
        return n

    def flush(self) -> None:
        pass

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (``error``: it failed; the reader raises it)."""
        with contextlib.suppress(_PipeClosed):
            if error is None and self._buf:
                self._put(bytes(self._buf))
            self._buf.clear()
            self._put(error if error is not None else self._END)

    def close(self) -> None:
        """The reader gives up: a blocked writer gets _PipeClosed."""
        self._closed.set()

    def _get(self) -> Any:
        while True:
            try:
                return self._q.get(timeout=0.5)
            except queue.Empty:
                if self._closed.is_set():  # nobody waits for this piece any more
                    return self._END

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                item = await loop.run_in_executor(None, self._get)
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


async def _stream_from_thread(
    produce: Callable[[_Pipe], None], consume: Callable[[AsyncIterator[bytes]], Any], *, depth: int = PIPE_DEPTH
):
    """Run ``produce(pipe)`` in a thread while ``consume(pipe.chunks())`` reads what it writes; the producer's
    error is raised by the reading side (so the consumer cleans up as for any failed stream)."""
    pipe = _Pipe(depth=depth)

    def run() -> None:
        try:
            produce(pipe)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            pipe.finish(exc)
        else:
            pipe.finish()

    thread = threading.Thread(target=run, name="modelharbor-transfer-pipe", daemon=True)
    thread.start()
    try:
        return await consume(pipe.chunks())
    finally:
        pipe.close()
        await asyncio.to_thread(thread.join)


# --- packages written while the zip is read ----------------------------------------------------------
STAGED = "staged"  # kind of the ``created`` entry naming a prefix this import writes packages under
STAGE_ROOT = "imports/"  # store keys imports/<import id>/<attempt>/<n>: invisible until a file row points at one


def _staged_prefixes(created: Any) -> list[str]:
    return [x["name"] for x in created or [] if isinstance(x, dict) and x.get("kind") == STAGED and x.get("name")]


def _live_staged(s: Session, keys: list[str]) -> set[str]:
    """Of keys under ``imports/``, those written under a prefix its import still names and has not retired (its
    worker may be writing them; the sweep of pending objects leaves their unfinished writes alone)."""
    by_import: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and _is_id(parts[1]):
            by_import.setdefault(parts[1], []).append(key)
    live: set[str] = set()
    for import_id, mine in by_import.items():
        row = s.get(ProjectImportRow, import_id)
        named = {
            x.get("name")
            for x in (row.created or [] if row is not None else [])
            if isinstance(x, dict) and x.get("kind") == STAGED and not x.get("retired")
        }
        live.update(k for k in mine if k[: k.rindex("/") + 1] in named)
    return live


def _run_coro(make: Callable[[], Any]) -> Any:
    """Run ``make()`` (a coroutine) to completion from synchronous code, inside an event loop or not."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["error"] = exc

    thread = threading.Thread(target=run, name="modelharbor-transfer-io", daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


class _Sink:
    """One package being written to its store key while it is read: SHA-256 of the same buffer the zip's reader
    returned (already CRC-checked by zipfile at the end) and written on — one pass over the bytes."""

    def __init__(self, store: BlobStore, key: str):
        self.key = key
        self.size = 0
        self._h = hashlib.sha256()
        self._store = store
        self._path = store.local_path(key)
        self._fd: int | None = None
        self._pipe: _Pipe | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if self._path is not None:  # a local file, written straight (fsync'd by _Stager.sync before any commit)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        else:  # S3 / memory: the store's streamed put, fed from this thread
            self._pipe = _Pipe(depth=max(1, PIPE_DEPTH * CHUNK // IMPORT_READ))
            self._thread = threading.Thread(target=self._put, name="modelharbor-transfer-put", daemon=True)
            self._thread.start()

    def _put(self) -> None:
        try:
            asyncio.run(self._store.put_stream(self.key, self._pipe.chunks()))  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - raised by finish()
            self._error = exc
            self._pipe.close()  # type: ignore[union-attr]

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._h.update(chunk)
        if self._fd is not None:
            view, done = memoryview(chunk), 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        else:
            self._pipe.write(chunk)  # type: ignore[union-attr]

    def finish(self) -> tuple[str, int]:
        """All bytes were written: (SHA-256, size)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        else:
            self._pipe.finish()  # type: ignore[union-attr]
            self._thread.join()  # type: ignore[union-attr]
            if self._error is not None:
                raise self._error
        return self._h.hexdigest(), self.size

    def abort(self) -> None:
        """Nothing of the key stays."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()  # type: ignore[union-attr]
        elif self._thread is not None:
            self._pipe.finish(Rejected("the package was not stored"))  # type: ignore[union-attr]
            self._thread.join()  # put_stream leaves nothing at the key when its stream fails
            _run_coro(lambda: self._store.delete(self.key))


class _Stager:
    """Packages of one attempt of one import written under ``imports/<import id>/<attempt>/`` — a prefix named in
    the import's ``created`` list before the first byte is written, so whatever a crash leaves there is found
    again (:meth:`TransferService.sweep_staged`). Nothing there is visible until a file row points at a key."""

    def __init__(self, store: BlobStore, import_id: str):
        self.store = store
        self.import_id = import_id
        self.prefix = f"{STAGE_ROOT}{import_id}/{new_uuid()}/"
        self.entries: dict[str, tuple[str, str, int]] = {}  # zip entry → (key, SHA-256, size)
        self.committed: set[str] = set()  # keys a file row points at (or deduplication already deleted)
        self._unsynced: list[str] = []
        self._n = 0

    def open(self) -> _Sink:
        self._n += 1
        return _Sink(self.store, f"{self.prefix}{self._n}")

    def store_entry(self, name: str, sink: _Sink) -> None:
        sha, size = sink.finish()
        self.entries[name] = (sink.key, sha, size)
        self._unsynced.append(sink.key)

    def sync(self) -> None:
        """Make what was written durable before a row may point at it: one fsync per file (after all of them were
        written, so the disk writes back meanwhile), then the new directories."""
        if self.store.kind != "local" or not self._unsynced:
            self._unsynced.clear()
            return
        for key in self._unsynced:
            _fsync_path(self.store.local_path(key))  # type: ignore[arg-type]
        self._unsynced.clear()
        folder = self.store.local_path(self.prefix)
        assert folder is not None and self.store.root is not None
        while True:  # <attempt>/, <import id>/, imports/, the store's root
            _fsync_path(folder)
            if folder == self.store.root or self.store.root not in folder.parents:
                break
            folder = folder.parent

    def leftover(self) -> list[str]:
        """The keys written that no file row points at."""
        return [key for key, _, _ in self.entries.values() if key not in self.committed]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the service ------------------------------------------------------------------------------------
class TransferService:
    def __init__(
        self,
        db: Database,
        files: FileService,
        tasks: TaskService,
        identity: IdentityService,
        serving: ServingService,
        *,
        secret_key: str,
        work_dir: Path,
        limits: TransferLimits | None = None,
    ):
        self.db = db
        self.files = files
        self.tasks = tasks
        self.identity = identity
        self.serving = serving
        self.limits = limits or TransferLimits()
        self.work_dir = Path(work_dir)
        self.box = SecretBox(secret_key, "project-imports")
        serving.projects.on_delete.append(self._delete_project_transfers)
        files.pending.add_owner(STAGE_ROOT, _live_staged)

    @classmethod
    def from_settings(cls, settings: Settings, db, files, tasks, identity, serving) -> TransferService:
        return cls(
            db,
            files,
            tasks,
            identity,
            serving,
            secret_key=settings.resolved_secret_key(),
            work_dir=settings.data_dir.resolve() / "transfer",
            limits=TransferLimits.from_settings(settings),
        )

    # --- helpers ------------------------------------------------------------------------------------
    def _tmp(self, prefix: str) -> Path:
        folder = self.work_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".zip", dir=folder)
        os.close(fd)
        return Path(name)

    def _zip_source(self, file_id: str | None, tmp: Path) -> Path | BinaryIO:
        """The import's zip to read: the stored file itself (read in place) when the store is local, else a copy in
        ``tmp`` (reading a zip seeks: better from a local file than by ranges from S3)."""
        if file_id is not None and self.files.store.kind in ("local", "memory"):
            return self.files.open_reader(file_id)
        self._copy_file(file_id, tmp)
        return tmp

    def _copy_file(self, file_id: str | None, dest: Path) -> None:
        if file_id is None:
            raise Rejected("The import's zip was deleted (through the files API).")
        reader = self.files.open_reader(file_id)
        try:
            with open(dest, "wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
        finally:
            reader.close()

    async def _upload_path(self, principal: Principal, path: Path, name: str, context: str, max_size: int):
        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while piece := f.read(CHUNK):
                    yield piece

        return await self.files.keep(principal, name=name, data=chunks(), context=context, max_size=max_size)

    def _principal(self, user_id: str | None, org_id: str) -> Principal:
        if user_id is None:
            raise InvalidInput("The user who started this no longer exists.")
        return self.identity.principal_by_ids(user_id, org_id)

    @staticmethod
    def _usernames(s: Session, ids: set[str | None]) -> dict[str, str]:
        ids = {i for i in ids if i}
        if not ids:
            return {}
        return dict(s.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))).all())

    def _delete_project_transfers(self, s: Session, project_id: str) -> list[str]:
        stale: list[str] = []
        for model in (ProjectExportRow, ProjectImportRow):
            for row in list(s.scalars(select(model).where(model.project_id == project_id))):
                file_id = row.file_id
                if isinstance(row, ProjectImportRow):  # packages an interrupted import wrote (no worker can
                    stale += self._staged_garbage(_staged_prefixes(row.created), s)  # commit them: no row)
                s.delete(row)
                s.flush()
                if file_id:
                    stale += self.files.drop_in(s, file_id)
        return stale

    def _project(self, s: Session, principal: Principal, project: Any, *, write: bool = False) -> RegistryProjectRow:
        if isinstance(project, str) and "\x00" in project:  # no row has one (and PostgreSQL refuses it)
            raise NotFound(f"Project {project!r} not found")
        return self.serving.project_row(s, principal, project, write=write)

    def check_write(self, principal: Principal, project: Any) -> None:
        with self.db.uow(readonly=True) as s:
            self._project(s, principal, project, write=True)

    def percent(self, item: Export | Import) -> int | None:
        """How far the background task now working on an export or import is (0–100): 100 once completed,
        None when no task works on it (waiting for the confirmation, failed)."""
        if item.status == "completed":
            return 100
        if item.status in ("confirmation", "failed"):
            return None
        kind, key = (EXPORT_TASK, "export_id") if isinstance(item, Export) else (IMPORT_TASK, "import_id")
        with self.db.uow(readonly=True) as s:  # the few tasks of this kind queued or running now
            for payload, pct in s.execute(
                select(TaskRow.payload, TaskRow.percent).where(
                    TaskRow.kind == kind, TaskRow.status.in_(("queued", "running"))
                )
            ):
                if isinstance(payload, dict) and payload.get(key) == item.id:
                    return int(pct or 0)
        return None

    # --- exports ------------------------------------------------------------------------------------
    def create_export(
        self, principal: Principal, project: Any, body: Any, *, all_objects: bool = False, packages: bool = True
    ) -> Export:
        if not isinstance(body, dict):
            raise InvalidInput("The export selection must be a JSON object.")
        _reject_nul(body, "export selection")
        description = valid_text(body.get("description"), "description")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            selection = self._everything(s, p) if all_objects else self._check_selection(s, p, body)
            t = now()
            row = ProjectExportRow(
                id=new_uuid(),
                project_id=p.id,
                status="pending",
                error_message=None,
                description=description,
                selection=selection,
                packages=packages,
                file_id=None,
                size=None,
                created_by=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.tasks.enqueue_in(s, EXPORT_TASK, {"export_id": row.id}, org_id=principal.org_id)
            return self._export_entity(s, p.name, row)

    @staticmethod
    def _level_names(s: Session, p: RegistryProjectRow, did: str | None, vid: str | None) -> set[str]:
        q = select(EnvVarRow.name).where(EnvVarRow.project_id == p.id)
        q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
        q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
        return set(s.scalars(q))

    def _check_vars(self, s: Session, p, raw: Any, did: str | None, vid: str | None, where: str, what: str):
        names = self._level_names(s, p, did, vid)
        out = {}
        for name, spec in _obj(raw, what).items():
            if name not in names:
                raise InvalidInput(f"Environment variable {name!r} does not exist at the level of {where}.")
            include = _obj(spec, f"{what}.{name}").get("include_value", False)
            if include is None:
                include = False
            if not isinstance(include, bool):
                raise InvalidInput(f"'include_value' of {name!r} ({where}) must be true or false.")
            out[name] = {"include_value": include}
        return out

    def _check_selection(self, s: Session, p: RegistryProjectRow, body: dict[str, Any]) -> dict[str, Any]:
        """The selection with every name checked against the project (unknown names are refused)."""
        if body.get("services"):
            raise InvalidInput("Services cannot be exported: ModelHarbor projects have none.")
        out = _empty()
        for name, spec in _obj(body.get("deployments"), "deployments").items():
            d = s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name))
            if d is None:
                raise InvalidInput(f"Deployment {name!r} does not exist in project {p.name!r}.")
            spec = _obj(spec, f"deployments.{name}")
            versions = {}
            for vname, vspec in _obj(spec.get("versions"), f"deployments.{name}.versions").items():
                v = s.scalar(
                    select(DeploymentVersionRow).where(
                        DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == vname
                    )
                )
                if v is None:
                    raise InvalidInput(f"Deployment {name!r} has no version {vname!r}.")
                what = f"deployments.{name}.versions.{vname}"
                versions[vname] = {
                    "environment_variables": self._check_vars(
                        s,
                        p,
                        _obj(vspec, what).get("environment_variables"),
                        d.id,
                        v.id,
                        f"version {vname!r} of {name!r}",
                        what + ".environment_variables",
                    )
                }
            out["deployments"][name] = {
                "versions": versions,
                "environment_variables": self._check_vars(
                    s,
                    p,
                    spec.get("environment_variables"),
                    d.id,
                    None,
                    f"deployment {name!r}",
                    f"deployments.{name}.environment_variables",
                ),
            }
        for name, spec in _obj(body.get("pipelines"), "pipelines").items():
            pl = s.scalar(select(PipelineRow).where(PipelineRow.project_id == p.id, PipelineRow.name == name))
            if pl is None:
                raise InvalidInput(f"Pipeline {name!r} does not exist in project {p.name!r}.")
            versions = {}
            for vname in _obj(_obj(spec, f"pipelines.{name}").get("versions"), f"pipelines.{name}.versions"):
                if not s.scalar(
                    select(PipelineVersionRow.id).where(
                        PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == vname
                    )
                ):
                    raise InvalidInput(f"Pipeline {name!r} has no version {vname!r}.")
                versions[vname] = {}
            out["pipelines"][name] = {"versions": versions}
        out["environment_variables"] = self._check_vars(
            s, p, body.get("environment_variables"), None, None, "the project", "environment_variables"
        )
        base = set(self.serving.system_environments())
        for name in _obj(body.get("environments"), "environments"):
            if name in base:
                raise InvalidInput(f"{name!r} is a base environment: every server has it; export custom environments.")
            if not s.scalar(
                select(EnvironmentRow.id).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name)
            ):
                raise InvalidInput(f"Environment {name!r} does not exist in project {p.name!r}.")
            out["environments"][name] = {}
        return out

    def _everything(self, s: Session, p: RegistryProjectRow) -> dict[str, Any]:
        out = _empty()

        def all_vars(did, vid):
            return {n: {"include_value": True} for n in sorted(self._level_names(s, p, did, vid))}

        for d in s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id).order_by(DeploymentRow.name)):
            versions = {
                v.version: {"environment_variables": all_vars(d.id, v.id)}
                for v in s.scalars(
                    select(DeploymentVersionRow)
                    .where(DeploymentVersionRow.deployment_id == d.id)
                    .order_by(DeploymentVersionRow.version)
                )
            }
            out["deployments"][d.name] = {"versions": versions, "environment_variables": all_vars(d.id, None)}
        for pl in s.scalars(select(PipelineRow).where(PipelineRow.project_id == p.id).order_by(PipelineRow.name)):
            out["pipelines"][pl.name] = {
                "versions": {
                    v: {}
                    for v in s.scalars(
                        select(PipelineVersionRow.version)
                        .where(PipelineVersionRow.pipeline_id == pl.id)
                        .order_by(PipelineVersionRow.version)
                    )
                }
            }
        out["environment_variables"] = all_vars(None, None)
        out["environments"] = {
            name: {}
            for name in s.scalars(
                select(EnvironmentRow.name).where(EnvironmentRow.project_id == p.id).order_by(EnvironmentRow.name)
            )
        }
        return out

    def list_exports(self, principal: Principal, project: Any, *, status: str | None = None) -> list[Export]:
        return self._listing(principal, project, ProjectExportRow, EXPORT_STATUSES, status, self._export_entity)

    def get_export(self, principal: Principal, project: Any, export_id: Any) -> Export:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            return self._export_entity(s, p.name, self._export_row(s, p, export_id))

    def export_file(self, principal: Principal, project: Any, export_id: Any) -> tuple[str, str]:
        """(file id, download name) of a completed export."""
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            row = self._export_row(s, p, export_id)
            if row.status != "completed":
                raise InvalidInput(f"Export {row.id} is {row.status}: it can be downloaded once completed.")
            if row.file_id is None:
                raise NotFound(f"The zip of export {row.id} was deleted (through the files API).")
            return row.file_id, _root_name(p.name, row.id) + ".zip"

    def delete_export(self, principal: Principal, project: Any, export_id: Any) -> None:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._export_row(s, p, export_id)
            file_id = row.file_id
            s.delete(row)
            s.flush()
            stale = self.files.drop_in(s, file_id) if file_id else []
        self.serving.drop_blobs(stale)

    @staticmethod
    def _export_row(s: Session, p: RegistryProjectRow, export_id: Any) -> ProjectExportRow:
        row = s.get(ProjectExportRow, export_id) if _is_id(export_id) else None
        if row is None or row.project_id != p.id:
            raise NotFound(f"Export {export_id!r} not found in project {p.name!r}")
        return row

    def _export_entity(
        self, s: Session, project: str, r: ProjectExportRow, names: dict[str, str] | None = None
    ) -> Export:
        names = names if names is not None else self._usernames(s, {r.created_by})
        return Export(
            r.id,
            project,
            r.status,
            truncate(r.error_message),
            r.description or "",
            r.size,
            names.get(r.created_by) if r.created_by else None,
            aware(r.created_at),
            {**_empty(), **(r.selection or {})},
            r.packages,
        )

    # --- building an export (a background task) -----------------------------------------------------
    def build_export(self, export_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectExportRow, export_id)
            if row is None:
                return {"export_id": export_id, "status": "gone"}
            if row.status not in ("pending", "processing"):
                return {"export_id": export_id, "status": row.status}
            row.status, row.updated_at = "processing", now()
            p = s.get(RegistryProjectRow, row.project_id)
            org_id, user_id, project = p.org_id, row.created_by, p.name
        try:
            principal = self._principal(user_id, org_id)
            name = _root_name(project, export_id) + ".zip"
            # the zip is written by a thread straight into the upload (no temporary file, no second pass)
            record = asyncio.run(
                _stream_from_thread(
                    lambda pipe: self._write_export(export_id, pipe, progress),
                    lambda data: self.files.keep(
                        principal, name=name, data=data, context=EXPORT_CONTEXT, max_size=self.limits.max_export_size
                    ),
                )
            )
        except Exception as exc:  # noqa: BLE001 - any failure fails the export, with its reason
            message = self._reason(exc, "export")
            with self.db.uow() as s:
                row = s.get(ProjectExportRow, export_id)
                if row is not None:
                    row.status, row.error_message, row.updated_at = "failed", truncate(message), now()
            return {"export_id": export_id, "status": "failed", "error": truncate(message)}
        stale: list[str] = []
        with self.db.uow() as s:
            row = s.get(ProjectExportRow, export_id)
            if row is None:  # deleted while it was built
                stale = self.files.drop_in(s, record.id)
            else:
                row.status, row.file_id, row.size, row.updated_at = "completed", record.id, record.size, now()
        self.serving.drop_blobs(stale)
        progress(100)
        return {"export_id": export_id, "status": "completed", "size": record.size}

    @staticmethod
    def _reason(exc: BaseException, what: str) -> str:
        if isinstance(exc, HarborError):
            return exc.message
        log.exception("the %s failed unexpectedly", what)
        return f"The {what} failed: {type(exc).__name__}: {exc}"

    def _vars_for_export(self, s: Session, p, did, vid, chosen: dict[str, Any], where: str) -> list[dict[str, Any]]:
        q = select(EnvVarRow).where(EnvVarRow.project_id == p.id)
        q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
        q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
        rows = {r.name: r for r in s.scalars(q)}
        out = []
        for name, spec in chosen.items():
            r = rows.get(name)
            if r is None:
                raise InvalidInput(f"Environment variable {name!r} of {where} no longer exists.")
            value = None
            if spec.get("include_value") and not r.secret:  # a secret's value is never read here
                try:
                    value = self.serving.box.open(r.value)
                except SecretUnreadable as exc:
                    raise InvalidInput(f"The value of {name!r} ({where}) cannot be read: {exc}") from None
            out.append({"name": name, "value": value, "secret": bool(r.secret)})
        return out

    def _write_export(self, export_id: str, path: Path | _Pipe, progress: Callable[[int], None]) -> None:
        """Write the zip (to a file, or a _Pipe): yaml files from one consistent read, then the packages streamed
        from the store."""
        files: list[tuple[str, dict[str, Any]]] = []
        packages: list[tuple[str, str]] = []
        with self.db.uow(readonly=True) as s:
            row = s.get(ProjectExportRow, export_id)
            p = s.get(RegistryProjectRow, row.project_id)
            selection = {**_empty(), **(row.selection or {})}
            root = _root_name(p.name, row.id) + "/"
            info = {"format_spec": FORMAT_SPEC, "exported_by": "ModelHarbor", "project_name": p.name}
            files.append(("info.yaml", {**info, "export_id": row.id, "creation_date": now().isoformat()}))
            for name, spec in selection["deployments"].items():
                self._deployment_files(s, p, name, spec, row.packages, files, packages)
            for name, spec in selection["pipelines"].items():
                self._pipeline_files(s, p, name, spec, files)
            self._environment_files(s, p, selection["environments"], row.packages, files, packages)
            if selection["environment_variables"]:
                variables = self._vars_for_export(s, p, None, None, selection["environment_variables"], "the project")
                files.append(("project_environment_variables.yaml", {"project_environment_variables": variables}))
        progress(20)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for rel, data in files:
                zf.writestr(root + rel, _dump(data))
            for i, (rel, file_id) in enumerate(packages):
                info = zipfile.ZipInfo(root + rel, date_time=time.localtime()[:6])
                info.compress_type = zipfile.ZIP_STORED  # packages are zips already
                info.external_attr = 0o644 << 16
                reader = self.files.open_reader(file_id)
                try:
                    with zf.open(info, "w", force_zip64=True) as out:
                        while chunk := reader.read(CHUNK):
                            out.write(chunk)
                finally:
                    reader.close()
                progress(20 + 70 * (i + 1) // len(packages))

    def _deployment_files(self, s: Session, p, name: str, spec: dict, with_packages: bool, files: list, packages: list):
        d = s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name))
        if d is None:
            raise InvalidInput(f"Deployment {name!r} no longer exists.")
        default = s.get(DeploymentVersionRow, d.default_version_id) if d.default_version_id else None
        folder = f"deployments/deployment_{name}/"
        variables = self._vars_for_export(
            s, p, d.id, None, spec.get("environment_variables", {}), f"deployment {name!r}"
        )
        files.append(
            (
                f"{folder}deployment_{name}.yaml",
                {
                    "deployment_name": d.name,
                    "deployment_description": d.description or "",
                    "deployment_labels": dict(d.labels or {}),
                    "input_type": d.input_type,
                    "output_type": d.output_type,
                    "input_fields": [_field_yaml(f) for f in d.input_fields or []],
                    "output_fields": [_field_yaml(f) for f in d.output_fields or []],
                    "default_version": default.version if default else None,
                    "deployment_environment_variables": variables,
                },
            )
        )
        for vname, vspec in spec.get("versions", {}).items():
            v = s.scalar(
                select(DeploymentVersionRow).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == vname
                )
            )
            if v is None:
                raise InvalidInput(f"Version {vname!r} of deployment {name!r} no longer exists.")
            base = f"{folder}versions/deployment_{name}_version_{vname}"
            chosen = (vspec or {}).get("environment_variables", {})
            files.append(
                (
                    base + ".yaml",
                    {
                        "version_name": v.version,
                        "version_description": v.description or "",
                        "version_labels": dict(v.labels or {}),
                        "environment": v.environment,
                        **({"environment_tag": v.environment_tag} if v.environment_tag else {}),
                        "instance_type_group_name": v.instance_type_group_name,
                        "instance_type": (v.settings or {}).get("instance_type"),
                        "minimum_instances": v.minimum_instances,
                        "maximum_instances": v.maximum_instances,
                        "maximum_idle_time": v.maximum_idle_time,
                        "request_retention_mode": v.request_retention_mode,
                        "request_retention_time": v.request_retention_time,
                        "maximum_queue_size": v.maximum_queue_size,
                        "version_environment_variables": self._vars_for_export(
                            s, p, d.id, v.id, chosen, f"version {vname!r} of {name!r}"
                        ),
                    },
                )
            )
            if with_packages:  # the package the version serves, else its newest
                for rid in (v.active_revision_id, v.latest_revision_id):
                    rev = s.get(RevisionRow, rid) if rid else None
                    if rev is not None and rev.file_id:
                        packages.append((base + ".zip", rev.file_id))
                        break

    @staticmethod
    def _pipeline_files(s: Session, p, name: str, spec: dict, files: list) -> None:
        pl = s.scalar(select(PipelineRow).where(PipelineRow.project_id == p.id, PipelineRow.name == name))
        if pl is None:
            raise InvalidInput(f"Pipeline {name!r} no longer exists.")
        default = s.get(PipelineVersionRow, pl.default_version_id) if pl.default_version_id else None
        folder = f"pipelines/pipeline_{name}/"
        files.append(
            (
                f"{folder}pipeline_{name}.yaml",
                {
                    "pipeline_name": pl.name,
                    "pipeline_description": pl.description or "",
                    "pipeline_labels": dict(pl.labels or {}),
                    "input_type": pl.input_type,
                    "output_type": pl.output_type,
                    "input_fields": [_field_yaml(f) for f in pl.input_fields or []],
                    "output_fields": [_field_yaml(f) for f in pl.output_fields or []],
                    "default_version": default.version if default else None,
                },
            )
        )
        for vname in spec.get("versions", {}):
            pv = s.scalar(
                select(PipelineVersionRow).where(
                    PipelineVersionRow.pipeline_id == pl.id, PipelineVersionRow.version == vname
                )
            )
            if pv is None:
                raise InvalidInput(f"Version {vname!r} of pipeline {name!r} no longer exists.")
            objects = [
                {
                    "name": o.get("name"),
                    "reference_name": o.get("reference_name"),
                    "reference_type": o.get("reference_type") or "deployment",
                    "reference_version": o.get("version"),
                }
                for o in pv.objects or []
            ]
            attachments = [  # without the ids: the importing server gives its own
                {
                    "destination_name": a.get("destination_name"),
                    "sources": [
                        {"source_name": src.get("source_name"), "mapping": src.get("mapping") or []}
                        for src in a.get("sources") or []
                    ],
                }
                for a in pv.attachments or []
            ]
            files.append(
                (
                    f"{folder}versions/pipeline_{name}_version_{vname}.yaml",
                    {
                        "version_name": pv.version,
                        "version_description": pv.description or "",
                        "version_labels": dict(pv.labels or {}),
                        "request_retention_mode": pv.request_retention_mode,
                        "request_retention_time": pv.request_retention_time,
                        "objects": objects,
                        "attachments": attachments,
                    },
                )
            )

    @staticmethod
    def _environment_files(
        s: Session, p, names: dict[str, Any], with_packages: bool, files: list, packages: list
    ) -> None:
        """Each environment's yaml (its tags listed, ``latest`` first, then oldest first) and, with packages, each
        tag's environment package: that of its newest successful build, else of its newest build (as for versions:
        the package it serves, else its newest), whose base environment the yaml names for the tag."""
        used: set[str] = set()
        for name in names:
            e = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name))
            if e is None:
                raise InvalidInput(f"Environment {name!r} no longer exists.")
            slug, n = _slug(name), 1  # the folder name; the yaml holds the real name
            while slug in used:
                n += 1
                slug = f"{_slug(name)}_{n}"
            used.add(slug)
            folder = f"environments/environment_{slug}/"
            tag_rows = sorted(
                s.scalars(select(EnvironmentTagRow).where(EnvironmentTagRow.environment_id == e.id)),
                key=lambda t: (t.name != DEFAULT_TAG, aware(t.created_at), t.name),
            )
            tags = []
            for t in tag_rows:
                build = s.scalar(
                    select(EnvironmentBuildRow)
                    .where(
                        EnvironmentBuildRow.tag_id == t.id,
                        EnvironmentBuildRow.status == "success",
                        EnvironmentBuildRow.file_id.is_not(None),
                    )
                    .order_by(EnvironmentBuildRow.created_at.desc(), EnvironmentBuildRow.id.desc())
                    .limit(1)
                )
                if build is None and t.latest_build_id:
                    build = s.get(EnvironmentBuildRow, t.latest_build_id)
                if build is not None and build.file_id is None:
                    build = None
                tags.append(
                    {
                        "tag_name": t.name,
                        "supports_request_format": bool(t.supports_request_format),
                        "base_environment": build.base_environment if build is not None else None,
                    }
                )
                if with_packages and build is not None:
                    packages.append((f"{folder}tags/environment_{slug}_tag_{t.name}.zip", build.file_id))
            files.append(
                (
                    f"{folder}environment_{slug}.yaml",
                    {
                        "environment_name": e.name,
                        "environment_description": e.description or "",
                        "environment_labels": dict(e.labels or {}),
                        "base_environment": e.base_environment,
                        "environment_tags": tags,
                    },
                )
            )

    # --- imports: creating --------------------------------------------------------------------------
    async def store_import_file(self, principal: Principal, data: AsyncIterator[bytes], filename: str | None):
        """Stream an uploaded import zip into the files service (the import is created afterwards)."""
        return await self.files.upload(
            principal,
            name=_safe_filename(filename, "import.zip"),
            data=data,
            context=IMPORT_CONTEXT,
            max_size=self.limits.max_import_size,
        )

    def create_import(
        self,
        principal: Principal,
        project: Any,
        *,
        file: FileRecord | None = None,
        import_link: str | None = None,
        export_id: str | None = None,
        skip_confirmation: bool = False,
        file_id: str | None = None,
    ) -> Import:
        """``file`` is a zip stored for this import; ``file_id`` an already-uploaded file of the organisation (e.g.
        through a resumable chunked upload), which the import uses through its own record (no bytes copied)."""
        if sum(x is not None and x != "" for x in (file, import_link, export_id, file_id)) != 1:
            raise InvalidInput("Give exactly one of 'file' (a zip), 'file_id', 'import_link' or 'export_id'.")
        if import_link:
            self._check_link(import_link)
        uploaded, file_id = file_id, None
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            size, source = None, "link"
            if file is not None:
                file_id, size, source = file.id, file.size, "file"
            elif uploaded:
                clone = self.files.clone_in(s, principal, uploaded, context=IMPORT_CONTEXT)
                if clone.size > self.limits.max_import_size:
                    raise TooLarge(f"An import zip may be at most {self.limits.max_import_size} bytes.")
                file_id, size, source = clone.id, clone.size, "file"
            elif export_id:
                exp = s.get(ProjectExportRow, export_id) if _is_id(export_id) else None
                if exp is None or exp.project_id != p.id:
                    raise NotFound(f"Export {export_id!r} not found in project {p.name!r}")
                if exp.status != "completed":
                    raise InvalidInput(f"Export {exp.id} is {exp.status}: import it once it completed.")
                if exp.file_id is None:
                    raise NotFound(f"The zip of export {exp.id} was deleted (through the files API).")
                clone = self.files.clone_in(
                    s, principal, exp.file_id, context=IMPORT_CONTEXT, name=_root_name(p.name, exp.id) + ".zip"
                )
                file_id, size, source = clone.id, clone.size, "export"
            t = now()
            row = ProjectImportRow(
                id=new_uuid(),
                project_id=p.id,
                status="pending",
                error_message=None,
                source=source,
                import_link=import_link or None,
                export_id=export_id or None,
                skip_confirmation=bool(skip_confirmation),
                file_id=file_id,
                size=size,
                content=_empty(),
                packages=[],
                root="",
                confirmed=None,
                created=[],
                created_by=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.tasks.enqueue_in(s, IMPORT_TASK, {"import_id": row.id, "stage": "scan"}, org_id=principal.org_id)
            return self._import_entity(s, p.name, row)

    def list_imports(self, principal: Principal, project: Any, *, status: str | None = None) -> list[Import]:
        return self._listing(principal, project, ProjectImportRow, IMPORT_STATUSES, status, self._import_entity)

    def _listing(self, principal: Principal, project: Any, table, statuses, status: str | None, entity) -> list:
        """The project's exports or imports (``table``), newest first, optionally of one status."""
        if status is not None and status not in statuses:
            raise InvalidInput(f"'status' must be one of {', '.join(statuses)}, not {status!r}.")
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            q = select(table).where(table.project_id == p.id)
            if status is not None:
                q = q.where(table.status == status)
            rows = list(s.scalars(q.order_by(table.created_at.desc(), table.id)))
            names = self._usernames(s, {r.created_by for r in rows})
            return [entity(s, p.name, r, names) for r in rows]

    def get_import(self, principal: Principal, project: Any, import_id: Any) -> Import:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            return self._import_entity(s, p.name, self._import_row(s, p, import_id))

    def import_file(self, principal: Principal, project: Any, import_id: Any) -> tuple[str, str]:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            row = self._import_row(s, p, import_id)
            if row.file_id is None:
                raise InvalidInput(
                    f"Import {row.id} has no zip: a link is fetched while the import is scanned (or its file was "
                    "deleted through the files API)."
                )
            return row.file_id, f"import_{p.name}_{row.id[:8]}.zip"

    def delete_import(self, principal: Principal, project: Any, import_id: Any) -> None:
        """Delete the import and its zip; the objects it created stay."""
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._import_row(s, p, import_id)
            if row.status in ("scanning", "processing") and (now() - aware(row.updated_at)).total_seconds() < STALE:
                raise InvalidInput(f"Import {row.id} is {row.status}: delete it once it finished.")
            file_id, prefixes = row.file_id, _staged_prefixes(row.created)
            s.delete(row)
            s.flush()
            stale = self.files.drop_in(s, file_id) if file_id else []
        self.serving.drop_blobs(stale)
        if prefixes:  # packages it wrote that no file points at (its worker can no longer commit them: no row)
            self._drop_keys(self._staged_garbage(prefixes))

    def confirm_import(self, principal: Principal, project: Any, import_id: Any, body: Any) -> Import:
        """The confirmation: the objects to create keyed by name, in the shape the detail shows. Fields an entry
        leaves out come from the same-named entry of the zip; variables without a value (secrets) need one."""
        if not isinstance(body, dict):
            raise InvalidInput("The confirmation must be a JSON object.")
        _reject_nul(body, "confirmation")
        if body.get("services"):
            raise InvalidInput("Services cannot be imported: ModelHarbor projects have none.")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._import_row(s, p, import_id, lock=True)
            if row.status != "confirmation":
                raise InvalidInput(
                    f"Import {row.id} is {row.status}: only an import waiting for confirmation can be confirmed."
                )
            content = {**_empty(), **(row.content or {})}
            merged = {}
            for kind in KINDS:
                given = _obj(body.get(kind), kind)
                merged[kind] = {
                    name: _merge(entry, content[kind].get(name), CHILDREN[kind], f"{kind} {name}")
                    for name, entry in given.items()
                }
            selection = normalise_selection(merged)
            if not any(selection[k] for k in KINDS):
                raise InvalidInput("The confirmation selects nothing to import: list the objects to create.")
            known = set(row.packages or [])
            for dname, d in selection["deployments"].items():
                for vname, v in d["versions"].items():
                    if v["zip"] is not None and v["zip"] not in known:
                        raise InvalidInput(
                            f"Version {vname!r} of {dname!r}: the zip holds no package {v['zip']!r}"
                            + (f" (it holds {', '.join(sorted(known))})." if known else " (it holds none).")
                        )
            for ename, env in selection["environments"].items():
                for tname, t in env["tags"].items():
                    if t["zip"] is not None and t["zip"] not in known:
                        raise InvalidInput(
                            f"Tag {tname!r} of environment {ename!r}: the zip holds no package {t['zip']!r}"
                            + (f" (it holds {', '.join(sorted(known))})." if known else " (it holds none).")
                        )
            missing = missing_values(selection)
            if missing:
                raise InvalidInput(
                    "These environment variables need a value (secrets are never exported): "
                    + ", ".join(missing)
                    + ". Send them in the confirmation as {'value': ..., 'secret': ...}."
                )
            row.confirmed = self.box.seal(json.dumps(selection))
            row.content = _public(selection)
            row.status, row.updated_at = "confirmation_pending", now()
            s.flush()
            self.tasks.enqueue_in(s, IMPORT_TASK, {"import_id": row.id, "stage": "process"}, org_id=principal.org_id)
            return self._import_entity(s, p.name, row)

    @staticmethod
    def _import_row(s: Session, p: RegistryProjectRow, import_id: Any, *, lock: bool = False) -> ProjectImportRow:
        row = None
        if _is_id(import_id):
            row = s.get(ProjectImportRow, import_id, with_for_update=lock)
        if row is None or row.project_id != p.id:
            raise NotFound(f"Import {import_id!r} not found in project {p.name!r}")
        return row

    def _import_entity(
        self, s: Session, project: str, r: ProjectImportRow, names: dict[str, str] | None = None
    ) -> Import:
        names = names if names is not None else self._usernames(s, {r.created_by})
        return Import(
            r.id,
            project,
            r.status,
            truncate(r.error_message),
            r.size,
            names.get(r.created_by) if r.created_by else None,
            aware(r.created_at),
            {**_empty(), **(r.content or {})},
            r.source,
            r.skip_confirmation,
        )

    # --- import links -------------------------------------------------------------------------------
    def _check_link(self, link: Any) -> None:
        """An import link must be https (http too if allowed) to a host name or a public address."""
        if not isinstance(link, str) or len(link) > MAX_LINK or any(ord(c) <= 32 or ord(c) == 127 for c in link):
            raise InvalidInput(f"'import_link' must be a URL of at most {MAX_LINK} characters, without spaces.")
        parts = urlsplit(link)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.limits.allow_http_links):
            raise InvalidInput(
                "'import_link' must be an https:// URL"
                + (" or http:// URL." if self.limits.allow_http_links else " (plain http is not allowed).")
            )
        try:
            host, _ = parts.hostname, parts.port
        except ValueError:
            raise InvalidInput("'import_link' has an invalid port.") from None
        if not host:
            raise InvalidInput("'import_link' names no host.")
        if parts.username is not None or parts.password is not None:
            raise InvalidInput("'import_link' must not carry credentials; use a link that is publicly downloadable.")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        self._check_address(address, host)

    def _check_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
        if self.limits.allow_private_links:
            return
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        kind = next(
            (
                label
                for label, flag in (
                    ("loopback", address.is_loopback),
                    ("link-local", address.is_link_local),
                    ("multicast", address.is_multicast),
                    ("unspecified", address.is_unspecified),
                    ("reserved", address.is_reserved),
                    ("private", address.is_private),
                    ("non-public", not address.is_global),
                )
                if flag
            ),
            None,
        )
        if kind is not None:
            raise Rejected(
                f"The import link's host {host!r} is a {kind} address ({address}): ModelHarbor fetches links from "
                "public addresses only (MODELHARBOR_ALLOW_PRIVATE_IMPORT_LINKS)."
            )

    def _resolve(self, host: str, port: int) -> str:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Rejected(f"The import link's host {host!r} cannot be resolved: {exc}") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            self._check_address(address, host)  # every address the name has, so none can be picked later
            addresses.append(str(address))
        if not addresses:
            raise Rejected(f"The import link's host {host!r} has no address.")
        return addresses[0]

    def fetch_link(self, link: str, dest: Path, touch: Callable[[], None] = lambda: None) -> None:
        """Download ``link`` to ``dest``: checked hosts and addresses (also after redirects), bounded size and
        time, connected to the address that was checked."""
        deadline = time.monotonic() + self.limits.link_timeout
        url = link
        for _ in range(MAX_REDIRECTS + 1):
            try:
                self._check_link(url)
            except InvalidInput as exc:
                raise Rejected(exc.message) from None
            parts = urlsplit(url)
            https = parts.scheme.lower() == "https"
            host, port = parts.hostname, parts.port or (443 if https else 80)
            address = self._resolve(host, port)
            timeout = max(1.0, min(LINK_READ_TIMEOUT, deadline - time.monotonic()))
            conn = (
                _PinnedHTTPSConnection(host, port, address, timeout, ssl.create_default_context())
                if https
                else _PinnedHTTPConnection(host, port, address, timeout)
            )
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request("GET", target, headers={"User-Agent": "ModelHarbor-import/1", "Accept": "*/*"})
                resp = conn.getresponse()
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.getheader("location")
                    if not location:
                        raise Rejected(f"The import link answered {resp.status} without a Location.")
                    url = urljoin(url, location)
                    continue
                if resp.status != 200:
                    raise Rejected(f"The import link answered HTTP {resp.status} {resp.reason}.")
                declared = resp.getheader("content-length")
                if declared and declared.isdigit() and int(declared) > self.limits.max_import_size:
                    raise Rejected(f"The import link's file is larger than {self.limits.max_import_size} bytes.")
                got, last_touch = 0, time.monotonic()
                with open(dest, "wb") as out:
                    while True:
                        if time.monotonic() > deadline:
                            raise Rejected(f"The import link took longer than {self.limits.link_timeout:g} s.")
                        chunk = resp.read1(CHUNK)
                        if not chunk:
                            break
                        got += len(chunk)
                        if got > self.limits.max_import_size:
                            raise Rejected(
                                f"The import link's file is larger than {self.limits.max_import_size} bytes."
                            )
                        out.write(chunk)
                        if time.monotonic() - last_touch > 60:
                            touch()
                            last_touch = time.monotonic()
                return
            except (OSError, http.client.HTTPException) as exc:
                raise Rejected(f"The import link could not be downloaded: {type(exc).__name__}: {exc}") from None
            finally:
                conn.close()
        raise Rejected(f"The import link redirected more than {MAX_REDIRECTS} times.")

    # --- imports: scanning and processing (background tasks) ---------------------------------------
    def run_import(self, payload: dict[str, Any], progress: Callable[[int], None], pipelines: PipelineService):
        import_id = payload.get("import_id")
        if payload.get("stage") == "process":
            return self._process(import_id, progress, pipelines)
        return self._scan(import_id, progress, pipelines)

    def _touch(self, import_id: str) -> None:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.updated_at = now()

    def _fail(self, import_id: str, exc: BaseException) -> dict[str, Any]:
        message = truncate(self._reason(exc, "import"))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.status, row.error_message, row.confirmed, row.updated_at = "failed", message, None, now()
        return {"import_id": import_id, "status": "failed", "error": message}

    # --- packages written before the import commits ------------------------------------------------
    def _begin_staging(self, import_id: str) -> _Stager:
        """A new prefix for this attempt's packages, named in the import's row before any byte goes there."""
        stager = _Stager(self.files.store, import_id)
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            if row is None:
                raise InvalidInput("The import was deleted while it ran.")
            row.created = [*(row.created or []), {"kind": STAGED, "name": stager.prefix}]
            row.updated_at = now()
        return stager

    def _staged_garbage(self, prefixes: list[str], s: Session | None = None) -> list[str]:
        """The keys under ``prefixes`` that no blob points at: what an import wrote and did not (or not any more)
        make a file of."""
        keys = [k for prefix in prefixes for k in _run_coro(lambda prefix=prefix: self.files.store.list(prefix))]
        if not keys:
            return []
        used: set[str] = set()
        with contextlib.nullcontext(s) if s is not None else self.db.uow(readonly=True) as q:
            for prefix in prefixes:
                like = cast(BlobRow.segments, Text).like(f'%"{prefix}%')
                for segments in q.scalars(select(BlobRow.segments).where(like)):
                    used.update(k for k, _ in segments)
        return [k for k in keys if k not in used]

    def _drop_keys(self, keys: list[str]) -> None:
        if keys:
            _run_coro(lambda: self.files.store.delete(keys))

    def _clean_staged(self, import_id: str, only: set[str] | None = None) -> None:
        """Delete what the import's staged prefixes (``only`` those) hold that no file points at, then forget them.
        The prefixes are retired first (a worker still running commits nothing under a retired prefix), so a
        crash half-way leaves them for the next clean-up."""
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            prefixes = [p for p in _staged_prefixes(row.created if row else []) if only is None or p in only]
            if not prefixes:
                return
            row.created = [
                {**x, "retired": True}
                if isinstance(x, dict) and x.get("kind") == STAGED and x.get("name") in prefixes
                else x
                for x in row.created
            ]
        self._drop_keys(self._staged_garbage(prefixes))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id, with_for_update=True)
            if row is not None:
                row.created = [
                    x
                    for x in row.created or []
                    if not (isinstance(x, dict) and x.get("kind") == STAGED and x.get("name") in prefixes)
                ]

    def _abandon(self, import_id: str, stagers: list[_Stager]) -> None:
        """A failed attempt: nothing it wrote stays (written keys no file points at, whatever its prefixes hold)."""
        try:
            for stager in stagers:
                self._drop_keys(stager.leftover())
            self._clean_staged(import_id)
        except Exception:  # noqa: BLE001 - the sweep retries what is still named in the row
            log.exception("could not remove the packages import %s wrote", import_id)

    def sweep_staged(self) -> int:
        """Remove what imports that no longer run (failed, deleted half-way, or whose worker died) left under their
        staged prefixes; returns how many imports were cleaned. Called with the upload sweep."""
        cutoff = now() - timedelta(seconds=STALE)
        with self.db.uow(readonly=True) as s:
            rows = list(
                s.execute(
                    select(
                        ProjectImportRow.id,
                        ProjectImportRow.status,
                        ProjectImportRow.updated_at,
                        ProjectImportRow.created,
                    )
                    .where(cast(ProjectImportRow.created, Text).like(f'%"{STAGED}"%'))
                    .limit(500)
                )
            )
        cleaned = 0
        for import_id, status, updated_at, created in rows:
            markers = [x for x in created or [] if isinstance(x, dict) and x.get("kind") == STAGED]
            if not markers:
                continue
            running = status in ("scanning", "processing") and aware(updated_at) > cutoff
            retired = {x.get("name") for x in markers if x.get("retired")}
            if running and not retired:
                continue
            self._clean_staged(import_id, retired if running else None)
            cleaned += 1
        return cleaned

    def _stage_member(self, stager: _Stager, zf: zipfile.ZipFile, member: str) -> None:
        """Write one package (read, CRC-checked, hashed and written in one pass) and make it durable."""
        info = zf.getinfo(member)
        self._check_package_size(info.file_size)
        limit = self.limits.max_member
        sink = stager.open()
        try:
            with zf.open(info) as src:
                while chunk := src.read(IMPORT_READ):
                    if sink.size + len(chunk) > limit:
                        raise Rejected(f"{member!r} unpacks to more than {limit} bytes.")
                    sink.write(chunk)
                    self._check_package_size(sink.size)
            stager.store_entry(member, sink)
        except BaseException:
            sink.abort()
            raise
        stager.sync()
        self._touch(stager.import_id)

    def _check_package_size(self, size: int) -> None:
        """The limits an uploaded package has (``upload_revision``, then the files service)."""
        if size > self.serving.max_package_size:
            raise TooLarge(
                f"A package (of a deployment or an environment) may be at most {self.serving.max_package_size} bytes."
            )
        limit = self.files.max_single_upload
        if size > limit:
            raise TooLarge(f"the file is larger than the limit of {limit} bytes", code="FILE_TOO_LARGE", limit=limit)

    def _commit_staged(
        self, principal: Principal, stager: _Stager, member: str, context: str, attach: Callable[[str, int], Any]
    ) -> None:
        """Make a written package a file — its row points at the key (or, if the bytes are held already, at the held
        blob; the key goes) — and hand it to ``attach`` (file id, size: a revision, or an environment tag's build),
        the checks of an upload included; the file goes again if ``attach`` fails."""
        key, sha256, size = stager.entries[member]
        self._check_package_size(size)
        filename = member.rsplit("/", 1)[-1]
        if not filename.lower().endswith(".zip"):  # pragma: no cover - the layout only has .zip packages
            raise InvalidInput(f"A package must be a .zip file, not {filename!r}.")
        check_name(filename)
        require(principal, Action.FILE_WRITE, principal.org_id, what="file")
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, stager.import_id, with_for_update=True)
            live = {"kind": STAGED, "name": stager.prefix}
            if row is None or live not in (row.created or []):  # deleted, or its prefix retired by a clean-up
                raise InvalidInput("The import was deleted while it ran.")
            record, stale = self.files.record_in(
                s,
                principal,
                name=filename,
                context=context,
                extension=None,
                sha256=sha256,
                size=size,
                segments=[(key, size)],
            )
        stager.committed.add(key)
        self.serving.drop_blobs(stale)
        try:
            attach(record.id, size)
        except BaseException:
            with self.db.uow() as s:
                stale = self.files.drop_in(s, record.id)
            self.serving.drop_blobs(stale)
            raise

    def _scan(self, import_id: str, progress: Callable[[int], None], pipelines: PipelineService) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is None:
                return {"import_id": import_id, "status": "gone"}
            if row.status == "processing":  # a skip_confirmation import whose worker died while it created
                resume = True
            elif row.status in ("pending", "scanning"):
                resume = False
                row.status, row.updated_at = "scanning", now()
            else:
                return {"import_id": import_id, "status": row.status}
            p = s.get(RegistryProjectRow, row.project_id)
            source, link, file_id, user_id, org_id = row.source, row.import_link, row.file_id, row.created_by, p.org_id
            skip = row.skip_confirmation
        if resume:
            return self._process(import_id, progress, pipelines)
        path = zip_src = None
        stagers: list[_Stager] = []
        try:
            path = zip_src = self._tmp("import-")
            if source == "link" and file_id is None:
                principal = self._principal(user_id, org_id)
                self.fetch_link(link, path, lambda: self._touch(import_id))
                name = _safe_filename(unquote(urlsplit(link).path), "import.zip")
                record = asyncio.run(
                    self._upload_path(principal, path, name, IMPORT_CONTEXT, self.limits.max_import_size)
                )
                stale: list[str] = []
                with self.db.uow() as s:
                    row = s.get(ProjectImportRow, import_id)
                    gone = row is None
                    if gone:
                        stale = self.files.drop_in(s, record.id)
                    else:
                        row.file_id, row.size, row.updated_at = record.id, record.size, now()
                if gone:
                    self.serving.drop_blobs(stale)
                    return {"import_id": import_id, "status": "gone"}
            else:
                zip_src = self._zip_source(file_id, path)
            progress(20)
            # an import without confirmation hands the scan to the processing at once: hash the packages the
            # organisation may already hold while scanning, so those are neither read again nor stored again, and
            # write the others on the way (one read of the zip); the processing makes them files, or they go
            stager = None
            if skip:
                self._clean_staged(import_id)  # what an interrupted scan of this import wrote
                stager = self._begin_staging(import_id)
                stagers.append(stager)
            scan = self._read_zip(zip_src, hash_for=org_id if skip else None, stage=stager)
            if stager is not None:
                stager.sync()
            progress(50)
            missing = missing_values(scan.content) if skip else []
            with self.db.uow() as s:
                row = s.get(ProjectImportRow, import_id)
                if row is None:
                    self._abandon(import_id, stagers)
                    return {"import_id": import_id, "status": "gone"}
                row.content, row.packages, row.root = scan.content, scan.packages, scan.root
                if not missing:
                    row.status = "processing" if skip else "confirmation"
                row.updated_at = now()
            if missing:
                raise InvalidInput(
                    "These environment variables have no value in the zip (secrets are never exported): "
                    + ", ".join(missing)
                    + ". Import without skip_confirmation and give them in the confirmation."
                )
            if skip:
                return self._process(
                    import_id, progress, pipelines, zip_path=zip_src, hashes=scan.hashes, stager=stager
                )
            return {"import_id": import_id, "status": "confirmation"}
        except Exception as exc:  # noqa: BLE001 - anything wrong with the zip fails the import, with the reason
            self._abandon(import_id, stagers)
            return self._fail(import_id, exc)
        finally:
            if zip_src is not None and not isinstance(zip_src, Path):
                zip_src.close()
            if path is not None:
                path.unlink(missing_ok=True)

    def _read_zip(self, path: Path | BinaryIO, *, hash_for: str | None = None, stage: _Stager | None = None) -> _Scan:
        """Check every entry, read each once (counting what it unpacks to), and describe the content. With
        ``hash_for`` (an organisation id), the packages of a size some file of that organisation has are hashed on
        the way (:meth:`_create_all` links those it holds instead of storing them again); with ``stage``, the
        other packages (within the package limits) are written to it on the way, hashed from the same buffers."""
        _check_end_record(path, self.limits.max_entries)
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, struct.error, EOFError) as exc:
            raise Rejected(f"The import is not a readable zip file: {exc}") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > self.limits.max_entries:
                raise Rejected(f"The zip has more than {self.limits.max_entries} entries.")
            seen: set[str] = set()
            for info in infos:
                _check_member(info, seen)
            files = {i.filename: i for i in infos if not i.is_dir()}
            root = self._find_root(files)
            layout = {name: kind for name in files if (kind := _layout_kind(name, root)) is not None}
            texts: dict[str, bytes] = {}
            hashes: dict[str, tuple[str, int]] = {}
            packages = {n: i.file_size for n, i in files.items() if layout.get(n, ("",))[0] in PACKAGE_KINDS}
            held = self.files.held_sizes(hash_for, set(packages.values())) if hash_for and packages else set()
            total = yaml_total = 0
            stage_limit = min(self.serving.max_package_size, self.files.max_single_upload)
            sink: _Sink | None = None
            try:
                for name, info in files.items():
                    is_yaml = layout.get(name, ("",))[0] in YAML_KINDS
                    limit = MAX_YAML if is_yaml else self.limits.max_member
                    buf = bytearray() if is_yaml else None
                    hasher = hashlib.sha256() if packages.get(name, -1) in held else None
                    if stage is not None and hasher is None and name in packages and info.file_size <= stage_limit:
                        sink = stage.open()
                    size = 0
                    with zf.open(info) as src:
                        while chunk := src.read(IMPORT_READ):
                            size += len(chunk)
                            total += len(chunk)
                            if size > limit:
                                raise Rejected(
                                    f"{name!r} unpacks to more than {limit} bytes"
                                    + (" (a yaml file of the layout may hold at most 1 MiB)." if is_yaml else ".")
                                )
                            if total > self.limits.max_unpacked:
                                raise Rejected(f"The zip unpacks to more than {self.limits.max_unpacked} bytes.")
                            if buf is not None:
                                yaml_total += len(chunk)
                                if yaml_total > MAX_YAML_TOTAL:
                                    raise Rejected(f"The zip's yaml files hold more than {MAX_YAML_TOTAL} bytes.")
                                buf += chunk
                            if hasher is not None:
                                hasher.update(chunk)
                            if sink is not None:
                                sink.write(chunk)
                    # the whole entry was read: zipfile checked its CRC at the end
                    if hasher is not None:
                        hashes[name] = (hasher.hexdigest(), size)
                    if sink is not None:
                        stage.store_entry(name, sink)  # type: ignore[union-attr]
                        sink = None
                        self._touch(stage.import_id)  # type: ignore[union-attr]
                    if buf is not None:
                        texts[name] = bytes(buf)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                NotImplementedError,
                RuntimeError,
                ValueError,
                struct.error,
            ) as exc:
                raise Rejected(f"The zip is damaged: {exc}") from None
            finally:
                if sink is not None:  # this entry failed half-way: nothing of it stays
                    sink.abort()
        scan = self._describe(root, layout, texts)
        scan.hashes = hashes
        return scan

    @staticmethod
    def _find_root(files: dict[str, zipfile.ZipInfo]) -> str:
        if "info.yaml" in files or "info.yml" in files:
            return ""
        candidates = [
            n
            for n in files
            if n.count("/") == 1 and n.rsplit("/", 1)[1] in ("info.yaml", "info.yml") and not n.startswith("__MACOSX/")
        ]
        if len(candidates) > 1:
            raise Rejected(
                f"The zip holds several info.yaml files ({', '.join(sorted(candidates))}): one export per zip."
            )
        if not candidates:
            raise Rejected(
                "The zip has no info.yaml (at its top or in one top-level folder): it is not an export of a project."
            )
        return candidates[0].split("/", 1)[0] + "/"

    def _describe(self, root: str, layout: dict[str, tuple[str, ...]], texts: dict[str, bytes]) -> _Scan:
        content = _empty()
        info = next((texts[n] for n, k in layout.items() if k[0] == "info"), b"")
        spec = _parse_yaml(info, "info.yaml").get("format_spec")
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
                y = _parse_yaml(texts[name], rel)
                dname = self._yaml_name(y, "deployment_name", rel)
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
                y = _parse_yaml(texts[name], rel)
                pname = self._yaml_name(y, "pipeline_name", rel)
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
                y = _parse_yaml(texts[name], rel)
                ename = y.get("environment_name")
                if not isinstance(ename, str) or not ename:
                    raise Rejected(f"{rel} has no environment_name.")
                if ename in content["environments"]:
                    raise Rejected(f"Environment {ename!r} appears twice in the zip ({rel}).")
                if rest[0] in env_dirs:
                    raise Rejected(f"The folder environments/{rest[0]} holds two environment files.")
                env_dirs.add(rest[0])
                tags = self._tags_from_yaml(y.get("environment_tags"), rest[0], package_paths, rel)
                used.update(t["zip"] for t in tags.values() if t["zip"])
                content["environments"][ename] = {
                    "display_name": y.get("environment_display_name") or y.get("display_name"),
                    "description": y.get("environment_description"),
                    "labels": y.get("environment_labels"),
                    "base_environment": y.get("base_environment") or y.get("environment_base_environment"),
                    "tags": tags,
                }
            elif kind == "project_vars":
                y = _parse_yaml(texts[name], rel)
                found = _vars_from_yaml(y.get("project_environment_variables"), rel)
                if set(found) & set(content["environment_variables"]):
                    raise Rejected(f"{rel} names a project variable twice.")
                content["environment_variables"].update(found)
        for name, folder, rel in versions:
            if folder not in dep_dirs:
                raise Rejected(f"{rel} is in a folder with no deployment file (deployments/{folder}/*.yaml).")
            y = _parse_yaml(texts[name], rel)
            vname = self._yaml_name(y, "version_name", rel)
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
            y = _parse_yaml(texts[name], rel)
            vname = self._yaml_name(y, "version_name", rel)
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
        return _Scan(root, normalised, sorted(used))

    @staticmethod
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

    @staticmethod
    def _yaml_name(y: dict[str, Any], key: str, rel: str) -> str:
        value = y.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise Rejected(f"{rel} has no {key}.")
        return value

    def _process(
        self,
        import_id: str,
        progress: Callable[[int], None],
        pipelines: PipelineService,
        *,
        zip_path: Path | BinaryIO | None = None,
        hashes: dict[str, tuple[str, int]] | None = None,
        stager: _Stager | None = None,
    ) -> dict[str, Any]:
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is None:
                return {"import_id": import_id, "status": "gone"}
            if row.status not in ("confirmation_pending", "processing"):
                return {"import_id": import_id, "status": row.status}
            row.status, row.updated_at = "processing", now()
            p = s.get(RegistryProjectRow, row.project_id)
            project, org_id, user_id, file_id, root = p.name, p.org_id, row.created_by, row.file_id, row.root
            sealed, content, created = row.confirmed, row.content, list(row.created or [])
        leftovers = [x for x in created if not (isinstance(x, dict) and x.get("kind") == STAGED)]
        earlier = set(_staged_prefixes(created)) - ({stager.prefix} if stager is not None else set())
        own_path = zip_path is None
        path, tmp = zip_path, None
        stagers = [stager] if stager is not None else []

        def staging() -> _Stager:  # where the packages not written by the scan go (made once one is needed)
            if not stagers:
                stagers.append(self._begin_staging(import_id))
            return stagers[0]

        try:
            principal = self._principal(user_id, org_id)
            if leftovers:  # an earlier attempt died half-way: undo it, then start again
                self._undo(principal, project, leftovers, pipelines, import_id, keep=stager)
            elif earlier:  # what an earlier attempt wrote before it died
                self._clean_staged(import_id, earlier)
            selection = json.loads(self.box.open(sealed)) if sealed else normalise_selection(content)
            if own_path:
                tmp = self._tmp("import-")
                path = self._zip_source(file_id, tmp)
            self._prevalidate(principal, project, selection)
            progress(60)
            with zipfile.ZipFile(path) as zf:
                self._create_all(
                    principal, project, import_id, selection, zf, root, pipelines, progress, hashes or {}, staging
                )
            for st in stagers:  # packages written but not imported (not selected, or linked instead)
                self._drop_keys(st.leftover())
        except Exception as exc:  # noqa: BLE001 - the import fails with the reason; nothing of it stays
            self._abandon(import_id, stagers)
            return self._fail(import_id, exc)
        finally:
            if own_path and path is not None and not isinstance(path, Path):
                path.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:
                row.status, row.error_message, row.confirmed, row.created = "completed", None, None, []
                row.content, row.updated_at = _public(selection), now()
        progress(100)
        return {"import_id": import_id, "status": "completed"}

    def _prevalidate(self, principal: Principal, project: str, selection: dict[str, Any]) -> None:
        """Check the whole selection against the project before anything is created."""
        base = set(self.serving.system_environments())
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project, write=True)
            envs = set(s.scalars(select(EnvironmentRow.name).where(EnvironmentRow.project_id == p.id)))
            deployments = {d.name: d for d in s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id))}
            pipes = set(s.scalars(select(PipelineRow.name).where(PipelineRow.project_id == p.id)))
            project_vars = self._level_names(s, p, None, None)
            var_count = s.scalar(select(func.count()).select_from(EnvVarRow).where(EnvVarRow.project_id == p.id))
            clashes, problems = [], []
            for name, env in selection["environments"].items():
                if name in base:
                    clashes.append(f"environment {name!r} (a base environment)")
                elif name in envs:
                    clashes.append(f"environment {name!r}")
                if env["base_environment"] is not None and env["base_environment"] not in base:
                    problems.append(
                        f"environment {name!r}: unknown base environment {env['base_environment']!r} "
                        f"(this server has {', '.join(sorted(base))})"
                    )
                for tname, t in env["tags"].items():
                    if t["base_environment"] is not None and t["base_environment"] not in base:
                        problems.append(
                            f"tag {tname!r} of environment {name!r}: unknown base environment "
                            f"{t['base_environment']!r} (this server has {', '.join(sorted(base))})"
                        )
            clashes += [
                f"project environment variable {n!r}" for n in selection["environment_variables"] if n in project_vars
            ]
            clashes += [f"deployment {n!r}" for n in selection["deployments"] if n in deployments]
            clashes += [f"pipeline {n!r}" for n in selection["pipelines"] if n in pipes]
            if clashes:
                raise InvalidInput(
                    f"Already in project {p.name!r}: {', '.join(clashes)}. Nothing was imported: delete them, or give "
                    "the imported objects other names in the confirmation, and import again."
                )
            available = base | envs | set(selection["environments"])
            new_vars = len(selection["environment_variables"])
            for dname, d in selection["deployments"].items():
                new_vars += len(d["environment_variables"])
                for vname, v in d["versions"].items():
                    new_vars += len(v["environment_variables"])
                    if v["environment"] is not None and v["environment"] not in available:
                        problems.append(
                            f"version {vname!r} of {dname!r}: unknown environment {v['environment']!r} (this server "
                            f"has {', '.join(sorted(available))}; change it in the confirmation)"
                        )
                    elif v.get("environment_tag") not in (None, DEFAULT_TAG):
                        problem = self._tag_problem(s, p, selection, base, v["environment"], v["environment_tag"])
                        if problem:
                            problems.append(f"version {vname!r} of {dname!r}: {problem}")
            if var_count + new_vars > MAX_ENV_VARS:
                problems.append(f"a project may hold at most {MAX_ENV_VARS} environment variables")
            for pname, pl in selection["pipelines"].items():
                for vname, pv in pl["versions"].items():
                    for obj in pv["objects"]:
                        ref, pinned = obj["reference_name"], obj["reference_version"]
                        where = f"object {obj['name']!r} of pipeline {pname!r} version {vname!r}"
                        if ref in selection["deployments"]:
                            if pinned is not None and pinned not in selection["deployments"][ref]["versions"]:
                                problems.append(f"{where}: deployment {ref!r} gets no version {pinned!r}")
                        elif ref in deployments:
                            if pinned is not None and not s.scalar(
                                select(DeploymentVersionRow.id).where(
                                    DeploymentVersionRow.deployment_id == deployments[ref].id,
                                    DeploymentVersionRow.version == pinned,
                                )
                            ):
                                problems.append(f"{where}: deployment {ref!r} has no version {pinned!r}")
                        else:
                            problems.append(f"{where}: unknown deployment {ref!r}")
            if problems:
                raise InvalidInput("Nothing was imported: " + "; ".join(problems) + ".")

    @staticmethod
    def _tag_problem(
        s: Session, p: RegistryProjectRow, selection: dict[str, Any], base: set[str], env: str | None, tag: str
    ) -> str | None:
        """Why a version cannot run on ``env``'s tag ``tag`` (not ``latest``, which every custom environment has)
        after the import — neither the imported environment nor the project's has it — or None."""
        if env is None or env in base:
            return f"environment tag {tag!r}: a base environment has one tag, 'latest'"
        if env in selection["environments"]:
            tags = selection["environments"][env]["tags"]
            if tag not in tags:
                listed = ", ".join(sorted({DEFAULT_TAG, *tags}))
                return (
                    f"unknown environment tag {tag!r} of environment {env!r} (the import gives it {listed}; "
                    "add the tag to the environment, or change the version's tag in the confirmation)"
                )
            return None
        row = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == env))
        names = set(s.scalars(select(EnvironmentTagRow.name).where(EnvironmentTagRow.environment_id == row.id)))
        if tag not in names:
            return (
                f"unknown environment tag {tag!r} of environment {env!r} (the project's environment has "
                f"{', '.join(sorted(names))}; change the version's tag in the confirmation)"
            )
        return None

    def _create_all(
        self,
        principal: Principal,
        project: str,
        import_id: str,
        selection: dict[str, Any],
        zf: zipfile.ZipFile,
        root: str,
        pipelines: PipelineService,
        progress: Callable[[int], None],
        hashes: dict[str, tuple[str, int]],
        staging: Callable[[], _Stager],
    ) -> None:
        created: list[dict[str, Any]] = []
        serving = self.serving
        members = [
            root + v["zip"] for d in selection["deployments"].values() for v in d["versions"].values() if v["zip"]
        ] + [root + t["zip"] for e in selection["environments"].values() for t in e["tags"].values() if t["zip"]]
        # packages the scan did not hash, of a size some file of the organisation has, are hashed before storing
        names = set(zf.namelist())
        unhashed = {zf.getinfo(m).file_size for m in members if m not in hashes and m in names}
        held = self.files.held_sizes(principal.org_id, unhashed) if unhashed else set()

        def done(kind: str, name: str, ident: str | None = None) -> None:
            created.append({"kind": kind, "name": name, "id": ident})
            with self.db.uow() as s:
                row = s.get(ProjectImportRow, import_id)
                if row is None:
                    raise InvalidInput("The import was deleted while it ran.")
                staged = [x for x in row.created or [] if isinstance(x, dict) and x.get("kind") == STAGED]
                row.created, row.updated_at = staged + list(created), now()

        def add_vars(raw: dict[str, Any], **level: Any) -> None:
            for name, var in raw.items():
                serving.create_env_var(
                    principal, project, {"name": name, "value": var["value"], "secret": var["secret"]}, **level
                )

        def place(member: str, context: str, attach: Callable[[str, int], Any]) -> None:
            """A package of the zip made a file handed to ``attach``: linked to bytes the organisation holds, else
            written once (by the scan already, or now) and committed."""
            known = hashes.get(member)
            if known is None and zf.getinfo(member).file_size in held:
                known = self._hash_member(zf, member)
            if known is None or not self._link_package(principal, member, *known, context, attach):
                stager = staging()
                if member not in stager.entries:  # not written by the scan: written now, in one pass
                    self._stage_member(stager, zf, member)
                self._commit_staged(principal, stager, member, context, attach)

        tags = serving.environment_tags
        steps = max(1, sum(len(selection[k]) for k in KINDS))
        step = 0

        def advance() -> None:
            nonlocal step
            step += 1
            progress(60 + 39 * step // steps)

        try:
            for name, env in selection["environments"].items():
                serving.create_environment(
                    principal,
                    project,
                    name=name,
                    description=env["description"],
                    labels=env["labels"],
                    base_environment=env["base_environment"],
                )
                done("environment", name)
                ordered = sorted(env["tags"].items(), key=lambda item: item[0] != DEFAULT_TAG)  # latest first
                for tname, t in ordered:
                    if tname != DEFAULT_TAG:
                        tags.create_tag(
                            principal,
                            project,
                            name,
                            {"name": tname, "supports_request_format": t["supports_request_format"]},
                        )
                    elif not t["supports_request_format"]:
                        tags.update_tag(principal, project, name, tname, {"supports_request_format": False})
                    if t["zip"] is not None:  # built like …/tags/{tag}/build: in the background

                        def build(file_id: str, size: int, env_name: str = name, tag: str = tname, spec=t) -> None:
                            tags.new_build(
                                principal,
                                project,
                                env_name,
                                tag,
                                file_id=file_id,
                                size=size,
                                base_environment=spec["base_environment"],
                            )

                        place(root + t["zip"], ENV_PACKAGE_CONTEXT, build)
                advance()
            for name, var in selection["environment_variables"].items():
                e = serving.create_env_var(
                    principal, project, {"name": name, "value": var["value"], "secret": var["secret"]}
                )
                done("project_variable", name, e.id)
                advance()
            for dname, d in selection["deployments"].items():
                serving.create_deployment(
                    principal,
                    project,
                    {
                        "name": dname,
                        "description": d["description"],
                        "labels": d["labels"],
                        "input_type": d["input_type"],
                        "output_type": d["output_type"],
                        "input_fields": d["input_fields"],
                        "output_fields": d["output_fields"],
                    },
                )
                done("deployment", dname)
                add_vars(d["environment_variables"], deployment=dname)
                first = None
                for vname, v in d["versions"].items():
                    body = {
                        k: val for k, val in v.items() if k not in ("zip", "environment_variables") and val is not None
                    }
                    serving.create_version(principal, project, dname, {**body, "version": vname})
                    first = first or vname
                    add_vars(v["environment_variables"], deployment=dname, version=vname)
                    if v["zip"] is not None:

                        def revision(file_id: str, size: int, d_name: str = dname, v_name: str = vname) -> None:
                            serving.new_revision_from_file(principal, project, d_name, v_name, file_id)

                        place(root + v["zip"], PACKAGE_CONTEXT, revision)
                if d["default_version"] in d["versions"] and d["default_version"] != first:
                    serving.update_deployment(principal, project, dname, {"default_version": d["default_version"]})
                advance()
            for pname, pl in selection["pipelines"].items():
                pipelines.create_pipeline(
                    principal,
                    project,
                    {
                        "name": pname,
                        "description": pl["description"],
                        "labels": pl["labels"],
                        "input_type": pl["input_type"],
                        "output_type": pl["output_type"],
                        "input_fields": pl["input_fields"],
                        "output_fields": pl["output_fields"],
                    },
                )
                done("pipeline", pname)
                first = None
                for vname, pv in pl["versions"].items():
                    pipelines.create_version(
                        principal,
                        project,
                        pname,
                        {
                            "version": vname,
                            "description": pv["description"],
                            "labels": pv["labels"],
                            "request_retention_mode": pv["request_retention_mode"],
                            "request_retention_time": pv["request_retention_time"],
                            "objects": [
                                {
                                    "name": o["name"],
                                    "reference_type": "deployment",
                                    "reference_name": o["reference_name"],
                                    "version": o["reference_version"],
                                }
                                for o in pv["objects"]
                            ],
                            "attachments": pv["attachments"],
                        },
                    )
                    first = first or vname
                if pl["default_version"] in pl["versions"] and pl["default_version"] != first:
                    pipelines.update_pipeline(principal, project, pname, {"default_version": pl["default_version"]})
                advance()
        except BaseException:
            self._undo(principal, project, created, pipelines, import_id)
            raise

    def _hash_member(self, zf: zipfile.ZipFile, member: str) -> tuple[str, int]:
        """(SHA-256, size) of an entry, read (and CRC-checked) once without storing it."""
        limit, size, hasher = self.limits.max_member, 0, hashlib.sha256()
        with zf.open(member) as src:
            while chunk := src.read(IMPORT_READ):
                size += len(chunk)
                if size > limit:
                    raise Rejected(f"{member!r} unpacks to more than {limit} bytes.")
                hasher.update(chunk)
            return hasher.hexdigest(), size

    def _link_package(
        self,
        principal: Principal,
        member: str,
        sha256: str,
        size: int,
        context: str,
        attach: Callable[[str, int], Any],
    ) -> bool:
        """Make a package the organisation already holds (the SHA-256 of the entry's bytes, as this server read
        them) a file without storing it again and hand it to ``attach`` — the checks of an upload included; False
        when it is not held (then it is stored as usual)."""
        self._check_package_size(size)
        filename = member.rsplit("/", 1)[-1]
        if not filename.lower().endswith(".zip"):  # pragma: no cover - the layout only has .zip packages
            raise InvalidInput(f"A package must be a .zip file, not {filename!r}.")
        record = self.files.link_held(principal, sha256=sha256, size=size, name=filename, context=context)
        if record is None:
            return False
        try:
            attach(record.id, size)
        except BaseException:
            with self.db.uow() as s:
                stale = self.files.drop_in(s, record.id)
            self.serving.drop_blobs(stale)
            raise
        return True

    def _undo(
        self,
        principal: Principal,
        project: str,
        created: list[dict[str, Any]],
        pipelines: PipelineService,
        import_id: str,
        *,
        keep: _Stager | None = None,
    ) -> None:
        """Delete what an import created, newest first (a deployment takes its versions and variables along), and
        the packages it wrote (those of ``keep``, this attempt's scan, excepted)."""
        for item in reversed(created):
            kind, name = item.get("kind"), item.get("name")
            try:
                if kind == "pipeline":
                    pipelines.delete_pipeline(principal, project, name)
                elif kind == "deployment":
                    self.serving.delete_deployment(principal, project, name)
                elif kind == "project_variable":
                    self.serving.delete_env_var(principal, project, item.get("id"))
                elif kind == "environment":
                    self._drop_environment(principal, project, name)
            except NotFound:
                pass
            except Exception:  # noqa: BLE001 - keep undoing the rest
                log.exception("could not remove %s %r created by import %s", kind, name, import_id)
        with self.db.uow(readonly=True) as s:
            row = s.get(ProjectImportRow, import_id)
            prefixes = set(_staged_prefixes(row.created if row is not None else []))
        self._clean_staged(import_id, prefixes - ({keep.prefix} if keep is not None else set()))
        with self.db.uow() as s:
            row = s.get(ProjectImportRow, import_id)
            if row is not None:  # what the processing created is gone; this attempt's packages stay named
                row.created = [{"kind": STAGED, "name": keep.prefix}] if keep is not None else []

    def _drop_environment(self, principal: Principal, project: str, name: str) -> None:
        """Remove a custom environment this import created (once no version uses it)."""
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name))
            if row is None:
                return
            used = s.scalar(
                select(func.count())
                .select_from(DeploymentVersionRow)
                .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
                .where(DeploymentRow.project_id == p.id, DeploymentVersionRow.environment == name)
            )
            if used:
                raise InvalidInput(f"Environment {name!r} is in use by {used} version(s).")
            stale = self.serving.environment_tags.drop_in(s, [row.id])  # its tags, builds and their packages
            s.delete(row)
            s.flush()
        self.serving.drop_blobs(stale)


def _field_yaml(f: dict[str, Any]) -> dict[str, Any]:
    out = {"name": f.get("name"), "data_type": f.get("data_type")}
    if f.get("widget"):
        out["widget"] = f["widget"]
    return out


def _layout_kind(name: str, root: str) -> tuple[str, ...] | None:
    """What an entry is in the layout: ("deployment", folder), ("version", folder), ("package", folder), …"""
    if not name.startswith(root):
        return None
    parts = name[len(root) :].split("/")
    lower = parts[-1].lower()
    yaml_file = lower.endswith((".yaml", ".yml"))
    if len(parts) == 1:
        if lower in ("info.yaml", "info.yml"):
            return ("info",)
        if lower in ("project_environment_variables.yaml", "project_environment_variables.yml"):
            return ("project_vars",)
        return None
    top = parts[0]
    if top == "deployments":
        if len(parts) == 3 and yaml_file:
            return ("deployment", parts[1])
        if len(parts) == 4 and parts[2] == "versions":
            if yaml_file:
                return ("version", parts[1])
            if lower.endswith(".zip"):
                return ("package", parts[1])
    elif top == "pipelines":
        if len(parts) == 3 and yaml_file:
            return ("pipeline", parts[1])
        if len(parts) == 4 and parts[2] == "versions" and yaml_file:
            return ("pversion", parts[1])
    elif top == "environments":
        if len(parts) == 3 and yaml_file:
            return ("environment", parts[1])
        if len(parts) == 4 and parts[2] == "tags" and lower.endswith(".zip"):
            return ("envpackage", parts[1])
    return None
