"""The archive format of project exports and imports: format ``v1.0`` of UbiOps' import template
(docs/dialects/ubiops.md has the layout), its limits and the checks every zip passes before it is read::

    <root>/info.yaml                                           format_spec: v1.0
    <root>/deployments/deployment_<d>/deployment_<d>.yaml
    <root>/deployments/deployment_<d>/versions/deployment_<d>_version_<v>.yaml (+ .zip, the package)
    <root>/pipelines/pipeline_<p>/pipeline_<p>.yaml
    <root>/pipelines/pipeline_<p>/versions/pipeline_<p>_version_<v>.yaml
    <root>/environments/environment_<e>/environment_<e>.yaml  (ModelHarbor convention; lists the tags)
    <root>/environments/environment_<e>/tags/environment_<e>_tag_<t>.zip  (a tag's environment package)
    <root>/project_environment_variables.yaml                 (ModelHarbor convention)

Invariants of reading one (scan.py describes the content, project_imports.py reads the entries):
- The entry count and the central directory's size are read from the end of the zip before ``zipfile`` loads its
  directory; no entry may be absolute, hold ``..``, be a link, a device or encrypted, or appear twice.
- A yaml file of the layout is at most ``MAX_YAML`` bytes (all of them ``MAX_YAML_TOTAL``), is parsed with a safe
  loader and bounded in values (aliases counted each time they are used) and depth; the content is plain JSON.
- Every refusal is a :class:`Rejected` whose message says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from modelharbor.domain.errors import InvalidInput

if TYPE_CHECKING:
    from modelharbor.settings import Settings

FORMAT_SPEC = "v1.0"
CHUNK = 1 << 20
IMPORT_READ = 4 << 20  # reads of an import's entries (scanned, then stored): fewer, larger pieces
MAX_YAML = 1 << 20  # one yaml file of the layout
MAX_YAML_TOTAL = 64 << 20  # all of them together
MAX_YAML_NODES = 200_000  # values in one yaml document, aliases counted each time they are used
MAX_YAML_DEPTH = 64
MAX_CENTRAL_DIRECTORY = 64 << 20
YAML_KINDS = frozenset({"info", "deployment", "version", "pipeline", "pversion", "environment", "project_vars"})
PACKAGE_KINDS = frozenset({"package", "envpackage"})  # deployment packages, environment packages: read alike
_UNSAFE_SLUG = re.compile(r"[^A-Za-z0-9_-]")


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


def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - installed with the server's dependencies
        raise InvalidInput("Exports and imports need PyYAML: install the 'pyyaml' package.") from None
    return yaml


def dump_yaml(data: dict[str, Any]) -> bytes:
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False).encode()


def folder_slug(name: str) -> str:
    return _UNSAFE_SLUG.sub("_", name)[:100] or "environment"


def root_name(project: str, export_id: str) -> str:
    return f"export_{project}_{export_id[:8]}"


def safe_filename(name: str | None, fallback: str) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in "\"'")[:200].strip()
    return base if base.lower().endswith(".zip") else fallback


def field_yaml(f: dict[str, Any]) -> dict[str, Any]:
    out = {"name": f.get("name"), "data_type": f.get("data_type")}
    if f.get("widget"):
        out["widget"] = f["widget"]
    return out


# --- zips -------------------------------------------------------------------------------------------
def check_end_record(src: Path | BinaryIO, max_entries: int) -> None:
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


def check_member(info: zipfile.ZipInfo, seen: set[str]) -> None:
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


def parse_yaml(data: bytes, where: str) -> dict[str, Any]:
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


def layout_kind(name: str, root: str) -> tuple[str, ...] | None:
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


def find_root(files: dict[str, zipfile.ZipInfo]) -> str:
    if "info.yaml" in files or "info.yml" in files:
        return ""
    candidates = [
        n
        for n in files
        if n.count("/") == 1 and n.rsplit("/", 1)[1] in ("info.yaml", "info.yml") and not n.startswith("__MACOSX/")
    ]
    if len(candidates) > 1:
        raise Rejected(f"The zip holds several info.yaml files ({', '.join(sorted(candidates))}): one export per zip.")
    if not candidates:
        raise Rejected(
            "The zip has no info.yaml (at its top or in one top-level folder): it is not an export of a project."
        )
    return candidates[0].split("/", 1)[0] + "/"
