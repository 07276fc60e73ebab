"""Serving: environments, deployments with versions, package revisions and their builds, requests, and
environment variables (with secrets) — all inside a project.

- An **environment** is a base environment (the interpreters this machine has, ``python3-11`` …) or a custom one
  of the project: tags built from environment packages (core/environment_builds.py).
- A **deployment** declares its input and output (``structured`` with typed fields, or ``plain`` text); a
  **version** of it says where and how it runs (environment and tag, instances, idle time, request retention); a
  **revision** is an uploaded package (a zip holding ``deployment.py`` with a ``Deployment`` class whose
  ``request(data)`` answers). Each upload is built in the background (task ``serving_build``): unpacked safely,
  checked, its environment built, one instance started to prove it initialises. A version serves its newest
  revision that built, in the environment that build used; a rebuild (asked for, or after the version's
  environment tag was built or the version moved to another environment) builds the same package again.
- **Requests** are validated against the input fields, answered by the executor (``compute/``), and the output
  checked against the output fields. A failed prediction is an answer with status ``failed``, not an error.
  The route to a version is cached for a moment so a request costs no database round trip.
- **Environment variables** exist at project, deployment and version level; the narrowest wins. Values are
  encrypted at rest with the server key; a secret's value is never returned, logged or exported.

Permission: reading takes ``SERVING_READ`` in the project's organisation; changing takes ``SERVING_WRITE`` and
write access to the project (core/projects.py); requests take ``SERVING_REQUEST``.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import re
import shutil
import stat
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelharbor.compute.base import BuildFailed, EnvironmentBuilder, Executor, WorkerSpec
from modelharbor.compute.sandbox import share_read_only
from modelharbor.core import kept_requests as kept
from modelharbor.core.clock import aware, new_uuid, now
from modelharbor.core.files import FileService
from modelharbor.core.kept_requests import bounded_int as _int
from modelharbor.core.kept_requests import lookup_key
from modelharbor.core.projects import ProjectService, require_project_write
from modelharbor.core.secretbox import SecretBox, SecretUnreadable
from modelharbor.core.tasks import TaskService
from modelharbor.db.engine import Database
from modelharbor.db.tables_registry import RegistryProjectRow
from modelharbor.db.tables_serving import (
    DeploymentRequestRow,
    DeploymentRow,
    DeploymentVersionRow,
    EnvironmentRow,
    EnvVarRow,
    RevisionRow,
)
from modelharbor.domain.errors import Conflict, HarborError, InvalidInput, NotFound, TooLarge
from modelharbor.domain.principal import Action, Principal, require

if TYPE_CHECKING:
    from modelharbor.core.environment_builds import EnvironmentChoice

log = logging.getLogger("modelharbor.serving")

BUILD_TASK = "serving_build"
BATCH_TASK = "serving_batch"
MAX_BATCH = 250
PACKAGE_CONTEXT = "deployment-package"
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
ROUTE_TTL = 2.0  # seconds a cached route may be stale (another server changed the version)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]{0,62}[A-Za-z0-9])?")


# --- entities -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    data_type: str
    widget: dict[str, Any] | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    name: str
    project: str
    system: bool
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    base_environment: str | None = None
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # API v2.1's view of a custom environment's tag ``latest``: its newest and newest successful build
    latest_revision: str | None = None
    latest_build: str | None = None
    active_revision: str | None = None
    active_build: str | None = None


@dataclass(frozen=True)
class Deployment:
    id: str
    project: str
    name: str
    description: str
    input_type: str
    output_type: str
    input_fields: tuple[Field, ...]
    output_fields: tuple[Field, ...]
    labels: dict[str, str]
    supports_request_format: bool
    default_version: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeploymentVersion:
    id: str
    project: str
    deployment: str
    version: str
    description: str
    labels: dict[str, str]
    environment: str
    environment_tag: str | None  # the custom environment's tag it runs on (None: a base environment)
    status: str  # available | unavailable | processing
    is_default: bool
    active_revision: str | None
    latest_revision: str | None
    minimum_instances: int
    maximum_instances: int
    maximum_idle_time: int
    request_retention_mode: str
    request_retention_time: int
    maximum_queue_size: int
    instance_type_group_name: str | None
    settings: dict[str, Any]
    has_request_method: bool | None
    has_requests_method: bool | None
    last_file_upload: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Revision:
    id: str
    version: str
    status: str
    error_message: str | None
    created_by: str | None
    created_at: datetime
    has_request_method: bool | None
    has_requests_method: bool | None
    file_id: str | None


@dataclass(frozen=True)
class RequestResult:
    id: str
    deployment: str
    version: str
    status: str  # completed | failed | pending | processing | cancelled
    result: Any
    error_message: str | None
    timeout: int
    created_at: datetime | None = None
    request_data: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class EnvVar:
    id: str
    name: str
    value: str | None  # None for secrets
    secret: bool
    inheritance_type: str | None = None  # project | deployment | None (own)
    inheritance_name: str | None = None


@dataclass(frozen=True)
class _Route:
    """What a request needs, cached for ROUTE_TTL seconds."""

    expires: float
    org_id: str
    project: str
    deployment: Deployment
    version: DeploymentVersion
    revision_id: str | None
    environment: tuple[str | None, str | None]  # what the revision's last build ran in: (base, environment build)
    env_vars: dict[str, str]


# --- validation -----------------------------------------------------------------------------------
def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"Invalid {what} name {value!r}: use 1 to {MAX_NAME} lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    return value


def _text(value: Any, what: str, limit: int = MAX_DESCRIPTION) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"'{what}' must be a string of at most {limit} characters.")
    return value


def _labels(value: Any) -> dict[str, str]:
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


def _io_type(value: Any, what: str) -> str:
    if value is None:
        return "structured"
    if value not in IO_TYPES:
        raise InvalidInput(f"'{what}' must be 'structured' or 'plain', not {value!r}.")
    return value


def _fields(value: Any, what: str, io_type: str) -> list[dict[str, Any]]:
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


def _fields_of(raw: list[dict[str, Any]]) -> tuple[Field, ...]:
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


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise InvalidInput(
            f"Invalid environment variable name {value!r}: letters, digits and '_', starting with a letter and not "
            f"ending with '_', at most {MAX_NAME} characters."
        )
    return value


def truncate(message: str | None, limit: int = MAX_ERROR) -> str | None:
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


# --- packages -------------------------------------------------------------------------------------
class PackageRejected(HarborError):
    code = "PACKAGE_REJECTED"
    status = 400


def unpack_package(archive: Path, dest: Path) -> Path:
    """Unpack a deployment package (zip, or tar with any compression) safely into ``dest`` and return the
    directory holding ``deployment.py``.

    Refused: not an archive, absolute or ``..`` paths, links, devices, more than PACKAGE_MAX_ENTRIES entries, a
    file over PACKAGE_MAX_FILE or a total over PACKAGE_MAX_TOTAL (uncompressed, counted as it is written, never
    trusted from a header), no ``deployment.py`` at the top or in one top-level folder (``deployment_package``
    wins)."""
    return unpack_archive(archive, dest, _package_root)


def unpack_archive(archive: Path, dest: Path, find_root: Callable[[Path], Path]) -> Path:
    """Unpack an archive as :func:`unpack_package` does; ``find_root(top)`` names the folder that matters (or
    raises PackageRejected)."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _untar(archive, tmp)
        else:
            raise PackageRejected("The package is not a readable zip (or tar) file.")
        root = find_root(tmp)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return dest / root.relative_to(tmp)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise PackageRejected(f"The package is a damaged archive: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Budget:
    """Counts entries and bytes written while unpacking, against the package limits."""

    def __init__(self):
        self.entries = 0
        self.total = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > PACKAGE_MAX_ENTRIES:
            raise PackageRejected(f"The package has more than {PACKAGE_MAX_ENTRIES} entries.")

    def copy(self, src, target: Path, name: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                self.total += len(chunk)
                if written > PACKAGE_MAX_FILE:
                    raise PackageRejected(f"{name!r} is larger than {PACKAGE_MAX_FILE} bytes.")
                if self.total > PACKAGE_MAX_TOTAL:
                    raise PackageRejected(f"The package unpacks to more than {PACKAGE_MAX_TOTAL} bytes.")
                out.write(chunk)


def _safe_target(top: Path, name: str) -> Path:
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if clean.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise PackageRejected(f"The package holds an unsafe path {name!r}.")
    return top.joinpath(*[p for p in parts if p not in ("", ".")]) if parts else top


def _unzip(archive: Path, top: Path) -> None:
    budget = _Budget()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            budget.entry()
            target = _safe_target(top, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise PackageRejected(f"The package holds a symbolic link {info.filename!r}.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                budget.copy(src, target, info.filename)


def _untar(archive: Path, top: Path) -> None:
    budget = _Budget()
    with tarfile.open(archive, mode="r:*") as tf:
        while (member := tf.next()) is not None:
            budget.entry()
            target = _safe_target(top, member.name)
            if member.issym() or member.islnk():
                raise PackageRejected(f"The package holds a link {member.name!r}.")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise PackageRejected(f"The package holds a device or FIFO {member.name!r}.")
            src = tf.extractfile(member)
            if src is not None:
                with src:
                    budget.copy(src, target, member.name)


def _package_root(top: Path) -> Path:
    if (top / "deployment.py").is_file():
        return top
    dirs = [p for p in top.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    named = [d for d in dirs if d.name == "deployment_package"]
    candidates = named or dirs
    for d in candidates:
        if (d / "deployment.py").is_file():
            if len(candidates) > 1 and not named:
                continue
            return d
    raise PackageRejected(
        "The package has no deployment.py: put it at the top of the zip or in one top-level folder "
        "(named deployment_package when there are several)."
    )


def check_ubiops_yaml(text: str, where: str) -> list[str]:
    """Read a package's ``ubiops.yaml``; PackageRejected for what cannot be honoured here: ``apt`` packages (keys,
    sources), build-time ``environment_variables``. Returns notes about keys that are ignored."""
    import yaml  # a dependency; imported here as only builds need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PackageRejected(f"{where} is not valid YAML: {first}") from None
    except (ValueError, RecursionError) as exc:
        raise PackageRejected(f"{where} cannot be read: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise PackageRejected(f"{where} must hold a mapping (apt, environment_variables).")
    apt = doc.get("apt")
    if apt:
        wanted: list[str] = []
        parts = apt.items() if isinstance(apt, dict) else [("packages", apt)]
        for key, value in parts:
            key = str(key)[:64]
            if isinstance(value, dict):
                value = [x for v in value.values() for x in (v if isinstance(v, list) else [v]) if x]
            items = value if isinstance(value, list) else [value]
            # names only: a value that is not text (maybe an alias of a huge structure) is never printed
            names = [item[:100] if isinstance(item, str) else f"<{type(item).__name__}>" for item in items if item]
            wanted += [f"{key}: {name}" if key != "packages" else name for name in names]
        if wanted:
            shown = ", ".join(wanted[:10]) + (", …" if len(wanted) > 10 else "")
            raise PackageRejected(
                f"{where} asks for apt packages ({shown}): system packages are not supported here — environments "
                "are Python virtual environments; list Python packages in requirements.txt and leave 'apt' out."
            )
    if doc.get("environment_variables"):
        raise PackageRejected(
            f"{where} sets environment_variables for the build: not supported here — pip uses the server's own "
            "configuration (index, certificates); leave 'environment_variables' out."
        )
    return [f"{where}: {str(key)[:64]!r} is ignored" for key in doc if key not in ("apt", "environment_variables")]


def environment_key(base: str, requirements: str | None) -> str:
    """The builder's key of the environment ``base`` + ``requirements``: one is built per distinct pair."""
    return "env-" + hashlib.sha256(f"{base}\n{requirements or ''}".encode()).hexdigest()[:24]


def inspect_deployment(root: Path) -> tuple[bool, bool]:
    """(has request, has requests) of the Deployment class in deployment.py, read without running it."""
    source = (root / "deployment.py").read_text(errors="replace")
    try:
        tree = ast.parse(source, filename="deployment.py")
    except SyntaxError as exc:
        raise PackageRejected(f"deployment.py has a syntax error on line {exc.lineno}: {exc.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Deployment":
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            if "request" not in methods and "requests" not in methods:
                raise PackageRejected("The Deployment class in deployment.py has no request(self, data) method.")
            return "request" in methods, "requests" in methods
    raise PackageRejected("deployment.py defines no class named Deployment.")


# --- the service ----------------------------------------------------------------------------------


def held_if_present(s: Session, table: Any, row_id: str) -> bool:
    """Whether the row still exists, held so (share lock) until the transaction ends. Routes and versions are read
    before a request runs and may be deleted meanwhile (or by another server process): what a request stores
    under a version is stored only under this check, so a deletion cannot pass between it and the commit (on
    SQLite the write transaction keeps other writers out)."""
    return s.scalar(select(table.id).where(table.id == row_id).with_for_update(read=True)) is not None


class ServingService(kept.KeptRequests):
    kept_table, kept_versions = DeploymentRequestRow, DeploymentVersionRow  # kept requests: see KeptRequests
    kept_owner_column, kept_what = "deployment_id", "deployment"

    def __init__(
        self,
        db: Database,
        files: FileService,
        tasks: TaskService,
        projects: ProjectService,
        executor: Callable[[], Executor],
        builder: EnvironmentBuilder,
        *,
        secret_key: str,
        work_dir: Path,
        max_package_size: int,
    ):
        self.db = db
        self.files = files
        self.tasks = tasks
        self.projects = projects
        projects.on_delete.append(self.delete_project_objects)
        self._executor_factory = executor  # made on first use: most processes never run a deployment
        self._executor: Executor | None = None
        self.builder = builder
        self.box = SecretBox(secret_key, "env-vars")
        self.work_dir = Path(work_dir)
        self.max_package_size = max_package_size
        self._routes: dict[tuple, _Route] = {}
        # (session, row) callbacks of services that refer to deployments/versions (pipelines): raise to refuse
        self.on_delete_deployment: list[Callable[[Session, DeploymentRow], None]] = []
        self.on_delete_version: list[Callable[[Session, DeploymentVersionRow], None]] = []
        # (session) -> rows removed: other kept requests (pipelines') swept with the deployment requests
        self.on_sweep_requests: list[Callable[[Session], int]] = []
        self._deployed: dict[str, WorkerSpec] = {}
        self._deployed_env: dict[str, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()
        from modelharbor.core.environment_builds import EnvironmentTagService  # it builds on this module

        self.environment_tags = EnvironmentTagService(self)

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = self._executor_factory()
        return self._executor

    # --- projects and permission ----------------------------------------------------------------
    @staticmethod
    def _project(s: Session, principal: Principal, project: Any, *, write: bool = False) -> RegistryProjectRow:
        require(principal, Action.SERVING_WRITE if write else Action.SERVING_READ, principal.org_id, what="project")
        row = None
        if lookup_key(project, 256):
            q = select(RegistryProjectRow).where(
                RegistryProjectRow.org_id == principal.org_id, RegistryProjectRow.name == project
            )
            row = s.scalar(q.with_for_update() if write else q)
        if row is None:
            raise NotFound(f"Project {project!r} not found")
        if write:
            require_project_write(s, principal, row)
        return row

    def delete_project(self, principal: Principal, name: Any) -> None:
        """Delete a project by name with its deployments, environments and variables (models stay)."""
        project = self.projects.get_by_name(principal, name)
        self._drop_blobs(self.projects.delete_project(principal, project.id))

    def _changed(self) -> None:
        with self._lock:
            self._routes.clear()

    # --- environments ---------------------------------------------------------------------------
    def _system_envs(self) -> list[str]:
        return sorted(self.builder.base_environments())

    def list_environments(self, principal: Principal, project: Any, *, system: bool | None = None):
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            custom = list(s.scalars(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id)))
            out = []
            if system in (None, True):
                out += [
                    EnvironmentInfo(name, p.name, True, f"Python {name[6:].replace('-', '.')}")
                    for name in self._system_envs()
                ]
            if system in (None, False):
                out += [self._env_entity(s, p.name, r) for r in sorted(custom, key=lambda r: r.name)]
            return out

    def get_environment(self, principal: Principal, project: Any, name: Any) -> EnvironmentInfo:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            if name in self._system_envs():
                return EnvironmentInfo(name, p.name, True, f"Python {name[6:].replace('-', '.')}")
            return self._env_entity(s, p.name, self._env_row(s, p, name))

    def create_environment(
        self,
        principal: Principal,
        project: Any,
        *,
        name: Any,
        description: Any = None,
        labels: Any = None,
        base_environment: Any = None,
    ) -> EnvironmentInfo:
        if not isinstance(name, str) or not 0 < len(name) <= 256 or not name.isprintable():
            raise InvalidInput("'name' must be 1 to 256 printable characters.")
        if name in self._system_envs():
            raise Conflict(f"{name!r} is a base environment; choose another name.")
        base = base_environment or self._system_envs()[-1]
        if base not in self._system_envs():
            raise InvalidInput(f"Unknown base environment {base!r}: use one of {', '.join(self._system_envs())}.")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            if s.scalar(
                select(EnvironmentRow.id).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name)
            ):
                raise Conflict(f"Environment {name!r} already exists in project {p.name!r}.")
            t = now()
            row = EnvironmentRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=_text(description, "description"),
                labels=_labels(labels),
                base_environment=base,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            self.environment_tags.create_default_in(s, row)
            return self._env_entity(s, p.name, row)

    def update_environment(
        self, principal: Principal, project: Any, name: Any, *, description: Any = None, labels: Any = None
    ) -> EnvironmentInfo:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            if name in self._system_envs():
                raise InvalidInput(f"{name!r} is a base environment: it cannot be changed.")
            row = self._env_row(s, p, name)
            if description is not None:
                row.description = _text(description, "description")
            if labels is not None:
                row.labels = _labels(labels)
            row.updated_at = now()
            s.flush()
            return self._env_entity(s, p.name, row)

    def delete_environment(self, principal: Principal, project: Any, name: Any) -> None:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            if name in self._system_envs():
                raise InvalidInput(f"{name!r} is a base environment: it cannot be deleted.")
            row = self._env_row(s, p, name)
            users = [
                f"{d}/{v}"
                for d, v in s.execute(
                    select(DeploymentRow.name, DeploymentVersionRow.version)
                    .select_from(DeploymentVersionRow)
                    .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
                    .where(DeploymentRow.project_id == p.id, DeploymentVersionRow.environment == row.name)
                )
            ]
            if users:
                raise InvalidInput(f"Environment {row.name!r} is used by {', '.join(users)}; change those first.")
            stale = self.environment_tags.drop_in(s, [row.id])
            s.delete(row)
            s.flush()
        self._drop_blobs(stale)

    @staticmethod
    def _env_row(s: Session, p: RegistryProjectRow, name: Any) -> EnvironmentRow:
        row = (
            s.scalar(select(EnvironmentRow).where(EnvironmentRow.project_id == p.id, EnvironmentRow.name == name))
            if lookup_key(name)
            else None
        )
        if row is None:
            raise NotFound(f"Environment {name!r} not found in project {p.name!r}")
        return row

    def _env_entity(self, s: Session, project: str, r: EnvironmentRow) -> EnvironmentInfo:
        return EnvironmentInfo(
            r.name,
            project,
            False,
            r.description or "",
            dict(r.labels or {}),
            r.base_environment,
            r.id,
            aware(r.created_at),
            aware(r.updated_at),
            **self.environment_tags.revision_summary(s, r),
        )

    # --- deployments ----------------------------------------------------------------------------
    def create_deployment(self, principal: Principal, project: Any, body: dict[str, Any]) -> Deployment:
        name = _name(body.get("name"), "deployment")
        input_type = _io_type(body.get("input_type"), "input_type")
        output_type = _io_type(body.get("output_type"), "output_type")
        input_fields = _fields(body.get("input_fields"), "input_fields", input_type)
        output_fields = _fields(body.get("output_fields"), "output_fields", output_type)
        supports = body.get("supports_request_format", True)
        if not isinstance(supports, bool):
            raise InvalidInput("'supports_request_format' must be a boolean.")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            if s.scalar(select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name)):
                raise Conflict(f"Deployment {name!r} already exists in project {p.name!r}.")
            t = now()
            row = DeploymentRow(
                id=new_uuid(),
                project_id=p.id,
                name=name,
                description=_text(body.get("description"), "description"),
                input_type=input_type,
                output_type=output_type,
                input_fields=input_fields,
                output_fields=output_fields,
                labels=_labels(body.get("labels")),
                supports_request_format=supports,
                default_version_id=None,
                creator_id=principal.user_id,
                created_at=t,
                updated_at=t,
            )
            s.add(row)
            s.flush()
            return self._deployment_entity(s, p.name, row)

    def list_deployments(self, principal: Principal, project: Any) -> list[Deployment]:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            rows = s.scalars(select(DeploymentRow).where(DeploymentRow.project_id == p.id).order_by(DeploymentRow.name))
            return [self._deployment_entity(s, p.name, r) for r in rows]

    def get_deployment(self, principal: Principal, project: Any, name: Any) -> Deployment:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            return self._deployment_entity(s, p.name, self._deployment_row(s, p, name))

    def update_deployment(self, principal: Principal, project: Any, name: Any, body: dict[str, Any]) -> Deployment:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._deployment_row(s, p, name)
            if body.get("name") is not None and body["name"] != row.name:
                new = _name(body["name"], "deployment")
                if s.scalar(
                    select(DeploymentRow.id).where(DeploymentRow.project_id == p.id, DeploymentRow.name == new)
                ):
                    raise Conflict(f"Deployment {new!r} already exists in project {p.name!r}.")
                row.name = new
            if body.get("description") is not None:
                row.description = _text(body["description"], "description")
            if body.get("labels") is not None:
                row.labels = _labels(body["labels"])
            if body.get("input_fields") is not None:
                row.input_fields = _fields(body["input_fields"], "input_fields", row.input_type)
            if body.get("output_fields") is not None:
                row.output_fields = _fields(body["output_fields"], "output_fields", row.output_type)
            if body.get("default_version") is not None:
                row.default_version_id = self._version_row(s, row, body["default_version"]).id
            row.updated_at = now()
            s.flush()
            self._changed()
            return self._deployment_entity(s, p.name, row)

    def delete_deployment(self, principal: Principal, project: Any, name: Any) -> None:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            row = self._deployment_row(s, p, name)
            for hook in self.on_delete_deployment:
                hook(s, row)
            version_ids = list(
                s.scalars(select(DeploymentVersionRow.id).where(DeploymentVersionRow.deployment_id == row.id))
            )
            stale = self._delete_versions(s, version_ids)
            s.execute(delete(EnvVarRow).where(EnvVarRow.deployment_id == row.id))
            s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.deployment_id == row.id))
            s.delete(row)
            s.flush()
        self._drop_blobs(stale)
        self._undeploy(version_ids)

    def delete_project_objects(self, s: Session, project_id: str) -> list[str]:
        """A project is being deleted: its deployments, environments (with their tags and packages) and variables
        go with it (returns the blob keys to delete once the transaction committed)."""
        deps = list(s.scalars(select(DeploymentRow.id).where(DeploymentRow.project_id == project_id)))
        version_ids = list(
            s.scalars(select(DeploymentVersionRow.id).where(DeploymentVersionRow.deployment_id.in_(deps)))
        )
        stale = self._delete_versions(s, version_ids)
        s.execute(delete(EnvVarRow).where(EnvVarRow.project_id == project_id))
        s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.deployment_id.in_(deps)))
        s.execute(delete(DeploymentRow).where(DeploymentRow.project_id == project_id))
        env_ids = list(s.scalars(select(EnvironmentRow.id).where(EnvironmentRow.project_id == project_id)))
        stale += self.environment_tags.drop_in(s, env_ids)
        s.execute(delete(EnvironmentRow).where(EnvironmentRow.project_id == project_id))
        self._undeploy(version_ids)
        return stale

    def _delete_versions(self, s: Session, version_ids: list[str]) -> list[str]:
        """Delete versions with their revisions, variables and requests; the blob keys to delete after commit."""
        if not version_ids:
            return []
        file_ids = [
            f for f in s.scalars(select(RevisionRow.file_id).where(RevisionRow.version_id.in_(version_ids))) if f
        ]
        s.execute(delete(EnvVarRow).where(EnvVarRow.version_id.in_(version_ids)))
        s.execute(delete(DeploymentRequestRow).where(DeploymentRequestRow.version_id.in_(version_ids)))
        s.execute(delete(RevisionRow).where(RevisionRow.version_id.in_(version_ids)))
        s.execute(delete(DeploymentVersionRow).where(DeploymentVersionRow.id.in_(version_ids)))
        s.flush()
        stale: list[str] = []
        for fid in set(file_ids):
            if s.scalar(select(func.count()).select_from(RevisionRow).where(RevisionRow.file_id == fid)) == 0:
                stale += self.files.drop_in(s, fid)
        return stale

    def _drop_blobs(self, keys: list[str]) -> None:
        """Delete blobs no file needs any more (called from worker threads, after the commit)."""
        if keys:
            asyncio.run(self.files.store.delete(keys))

    def _undeploy(self, version_ids: list[str]) -> None:
        self._changed()
        for vid in version_ids:
            with self._lock:
                self._deployed.pop(vid, None)
                self._deployed_env.pop(vid, None)
            if self._executor is None:
                continue
            try:
                self._executor.undeploy(vid)
            except Exception:  # noqa: BLE001 - a stopped instance is not worth failing a delete for
                log.exception("could not stop instances of version %s", vid)

    @staticmethod
    def _deployment_row(s: Session, p: RegistryProjectRow, name: Any) -> DeploymentRow:
        row = (
            s.scalar(select(DeploymentRow).where(DeploymentRow.project_id == p.id, DeploymentRow.name == name))
            if lookup_key(name)
            else None
        )
        if row is None:
            raise NotFound(f"Deployment {name!r} not found in project {p.name!r}")
        return row

    @staticmethod
    def _deployment_entity(s: Session, project: str, r: DeploymentRow) -> Deployment:
        default = s.get(DeploymentVersionRow, r.default_version_id) if r.default_version_id else None
        return Deployment(
            r.id,
            project,
            r.name,
            r.description or "",
            r.input_type,
            r.output_type,
            _fields_of(r.input_fields),
            _fields_of(r.output_fields),
            dict(r.labels or {}),
            r.supports_request_format,
            default.version if default else None,
            aware(r.created_at),
            aware(r.updated_at),
        )

    # --- versions -------------------------------------------------------------------------------
    _VERSION_SETTINGS = (
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

    def create_version(
        self, principal: Principal, project: Any, deployment: Any, body: dict[str, Any]
    ) -> DeploymentVersion:
        version = _name(body.get("version"), "version")
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            if s.scalar(
                select(DeploymentVersionRow.id).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == version
                )
            ):
                raise Conflict(f"Version {version!r} of deployment {d.name!r} already exists.")
            t = now()
            row = DeploymentVersionRow(
                id=new_uuid(),
                deployment_id=d.id,
                version=version,
                creator_id=principal.user_id,
                created_at=t,
                updated_at=t,
                active_revision_id=None,
                latest_revision_id=None,
                labels={},
                settings={},
                description="",
                environment="",
                environment_tag=None,
            )
            self._apply_version(s, p, row, body, creating=True)
            s.add(row)
            s.flush()
            if d.default_version_id is None:
                d.default_version_id = row.id
            s.flush()
            return self._version_entity(s, p.name, d, row)

    def _apply_version(
        self, s: Session, p: RegistryProjectRow, row: DeploymentVersionRow, body: dict[str, Any], *, creating: bool
    ) -> bool:
        """Apply a version body; whether the environment (or its tag) changed."""
        before = (row.environment, row.environment_tag)
        env = body.get("environment_name") or body.get("environment")
        tag = body.get("environment_tag")
        if env is not None or creating:
            env = env or self._system_envs()[-1]
            if not isinstance(env, str):
                raise InvalidInput("'environment_name' must be a string.")
            if env not in self._system_envs():
                self._env_row(s, p, env)
            row.environment = env
        if env is not None or tag is not None or creating:
            row.environment_tag = self.environment_tags.check_version_tag(s, p, row.environment, tag)
        if creating or "description" in body:
            row.description = _text(body.get("description"), "description")
        if creating or body.get("labels") is not None:
            row.labels = _labels(body.get("labels"))
        row.minimum_instances = _int(
            body.get("minimum_instances"),
            "minimum_instances",
            row.minimum_instances if not creating else 0,
            0,
            MAX_INSTANCES,
        )
        row.maximum_instances = _int(
            body.get("maximum_instances"),
            "maximum_instances",
            row.maximum_instances if not creating else 5,
            1,
            MAX_INSTANCES,
        )
        if row.minimum_instances > row.maximum_instances:
            raise InvalidInput("'minimum_instances' cannot be more than 'maximum_instances'.")
        row.maximum_idle_time = _int(
            body.get("maximum_idle_time"),
            "maximum_idle_time",
            row.maximum_idle_time if not creating else 300,
            10,
            7 * 24 * 3600,
        )
        row.request_retention_time = _int(
            body.get("request_retention_time"),
            "request_retention_time",
            row.request_retention_time if not creating else 604800,
            0,
            365 * 24 * 3600,
        )
        row.maximum_queue_size = _int(
            body.get("maximum_queue_size"),
            "maximum_queue_size",
            row.maximum_queue_size if not creating else 100,
            1,
            100_000,
        )
        mode = body.get("request_retention_mode")
        if mode is not None:
            if mode not in RETENTION_MODES:
                raise InvalidInput(f"'request_retention_mode' must be one of {', '.join(RETENTION_MODES)}.")
            row.request_retention_mode = mode
        elif creating:
            row.request_retention_mode = "full"
        if body.get("instance_type_group_name") is not None:
            row.instance_type_group_name = _text(body["instance_type_group_name"], "instance_type_group_name", 256)
        settings = dict(row.settings or {})
        for key in self._VERSION_SETTINGS:
            if body.get(key) is not None:
                settings[key] = body[key]
        row.settings = settings
        return (row.environment, row.environment_tag) != before

    def list_versions(self, principal: Principal, project: Any, deployment: Any) -> list[DeploymentVersion]:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            rows = s.scalars(
                select(DeploymentVersionRow)
                .where(DeploymentVersionRow.deployment_id == d.id)
                .order_by(DeploymentVersionRow.version)
            )
            return [self._version_entity(s, p.name, d, r) for r in rows]

    def get_version(self, principal: Principal, project: Any, deployment: Any, version: Any) -> DeploymentVersion:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            return self._version_entity(s, p.name, d, self._version_row(s, d, version))

    def update_version(
        self, principal: Principal, project: Any, deployment: Any, version: Any, body: dict[str, Any]
    ) -> DeploymentVersion:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            row = self._version_row(s, d, version)
            if body.get("version") is not None and body["version"] != row.version:
                new = _name(body["version"], "version")
                if s.scalar(
                    select(DeploymentVersionRow.id).where(
                        DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == new
                    )
                ):
                    raise Conflict(f"Version {new!r} of deployment {d.name!r} already exists.")
                row.version = new
            moved = self._apply_version(s, p, row, body, creating=False)
            row.updated_at = now()
            latest = s.get(RevisionRow, row.latest_revision_id) if row.latest_revision_id else None
            if moved and latest is not None and latest.file_id is not None:
                self._queue_build(s, latest, p.org_id)  # the package builds again in its new environment
            s.flush()
            self._changed()
            return self._version_entity(s, p.name, d, row)

    def delete_version(self, principal: Principal, project: Any, deployment: Any, version: Any) -> None:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            row = self._version_row(s, d, version)
            if d.default_version_id == row.id:
                others = s.scalar(
                    select(func.count())
                    .select_from(DeploymentVersionRow)
                    .where(DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.id != row.id)
                )
                if others:
                    raise InvalidInput(
                        f"Version {row.version!r} is the default of {d.name!r}: make another version the default first."
                    )
                d.default_version_id = None
            for hook in self.on_delete_version:
                hook(s, row)
            stale = self._delete_versions(s, [row.id])
            vid = row.id
        self._drop_blobs(stale)
        self._undeploy([vid])

    @staticmethod
    def _version_row(s: Session, d: DeploymentRow, version: Any) -> DeploymentVersionRow:
        row = (
            s.scalar(
                select(DeploymentVersionRow).where(
                    DeploymentVersionRow.deployment_id == d.id, DeploymentVersionRow.version == version
                )
            )
            if lookup_key(version)
            else None
        )
        if row is None:
            raise NotFound(f"Version {version!r} of deployment {d.name!r} not found")
        return row

    @staticmethod
    def _version_entity(s: Session, project: str, d: DeploymentRow, r: DeploymentVersionRow) -> DeploymentVersion:
        active = s.get(RevisionRow, r.active_revision_id) if r.active_revision_id else None
        latest = s.get(RevisionRow, r.latest_revision_id) if r.latest_revision_id else None
        if latest is not None and latest.status in ("queued", "building"):
            status = "processing"
        elif active is not None:
            status = "available"
        else:
            status = "unavailable"
        shown = active or latest
        return DeploymentVersion(
            id=r.id,
            project=project,
            deployment=d.name,
            version=r.version,
            description=r.description or "",
            labels=dict(r.labels or {}),
            environment=r.environment,
            environment_tag=r.environment_tag,
            status=status,
            is_default=d.default_version_id == r.id,
            active_revision=r.active_revision_id,
            latest_revision=r.latest_revision_id,
            minimum_instances=r.minimum_instances,
            maximum_instances=r.maximum_instances,
            maximum_idle_time=r.maximum_idle_time,
            request_retention_mode=r.request_retention_mode,
            request_retention_time=r.request_retention_time,
            maximum_queue_size=r.maximum_queue_size,
            instance_type_group_name=r.instance_type_group_name,
            settings=dict(r.settings or {}),
            has_request_method=shown.has_request_method if shown else None,
            has_requests_method=shown.has_requests_method if shown else None,
            last_file_upload=aware(latest.created_at) if latest else None,
            created_at=aware(r.created_at),
            updated_at=aware(r.updated_at),
        )

    # --- revisions ------------------------------------------------------------------------------
    async def upload_revision(
        self,
        principal: Principal,
        project: Any,
        deployment: Any,
        version: Any,
        data: AsyncIterable[bytes],
        filename: str,
    ) -> Revision:
        """Store an uploaded package and queue its build; the version's latest revision is the new one."""
        await asyncio.to_thread(self.get_version, principal, project, deployment, version)  # exists, readable
        await asyncio.to_thread(self._check_write, principal, project)
        if not filename.lower().endswith(".zip"):
            raise InvalidInput(f"A deployment package must be a .zip file, not {filename!r}.")
        record = await self.files.upload(principal, name=filename, data=self._limited(data), context=PACKAGE_CONTEXT)
        try:
            return await asyncio.to_thread(self._new_revision, principal, project, deployment, version, record.id)
        except BaseException:
            await self.files.delete(principal, record.id)
            raise

    async def _limited(self, data: AsyncIterable[bytes]):
        total = 0
        async for piece in data:
            total += len(piece)
            if total > self.max_package_size:
                raise TooLarge(f"A deployment package may be at most {self.max_package_size} bytes.")
            yield piece

    def _check_write(self, principal: Principal, project: Any) -> None:
        with self.db.uow(readonly=True) as s:
            self._project(s, principal, project, write=True)

    def copy_revision(
        self,
        principal: Principal,
        project: Any,
        deployment: Any,
        version: Any,
        source_deployment: Any,
        source_version: Any,
    ) -> Revision:
        """A new revision of ``version`` from the active package of another version (no bytes copied)."""
        src = self.get_version(principal, project, source_deployment, source_version)
        if src.active_revision is None:
            raise InvalidInput(f"Version {source_version!r} of {source_deployment!r} has no built package to copy.")
        with self.db.uow(readonly=True) as s:
            file_id = s.get(RevisionRow, src.active_revision).file_id
        return self._new_revision(principal, project, deployment, version, file_id)

    def new_revision_from_file(
        self, principal: Principal, project: Any, deployment: Any, version: Any, file_id: str, *, build: bool = True
    ) -> Revision:
        """A revision whose package is an existing file (e.g. an imported model's archive, zip or tar); with
        ``build=False`` the caller runs :meth:`build_revision` itself."""
        return self._new_revision(principal, project, deployment, version, file_id, enqueue=build)

    def _new_revision(
        self,
        principal: Principal,
        project: Any,
        deployment: Any,
        version: Any,
        file_id: str | None,
        *,
        enqueue: bool = True,
    ) -> Revision:
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            d = self._deployment_row(s, p, deployment)
            v = self._version_row(s, d, version)
            row = RevisionRow(
                id=new_uuid(),
                version_id=v.id,
                file_id=file_id,
                status="queued",
                error_message=None,
                build_log="",
                has_request_method=None,
                has_requests_method=None,
                build_id=new_uuid(),
                created_by=principal.user_id,
                created_at=now(),
            )
            s.add(row)
            v.latest_revision_id = row.id
            v.updated_at = now()
            s.flush()
            if enqueue:
                self.tasks.enqueue_in(
                    s, BUILD_TASK, {"revision_id": row.id, "build_id": row.build_id}, org_id=principal.org_id
                )
            self._changed()
            return self._revision_entity(v, row)

    def rebuild_revision(
        self, principal: Principal, project: Any, deployment: Any, version: Any, revision_id: Any
    ) -> Revision:
        """Build a revision's package again (in the version's environment as it is now): its status goes back to
        ``queued``; until the new build succeeds the revision keeps serving as it was built before."""
        with self.db.uow() as s:
            p = self._project(s, principal, project, write=True)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            row = self._revision_row(s, v, revision_id)
            if row.file_id is None:
                raise InvalidInput(f"Revision {row.id!r} has no package to rebuild.")
            if row.status in ("queued", "building"):
                raise InvalidInput(f"Revision {row.id!r} is {row.status} already: wait for its build to finish.")
            self._queue_build(s, row, p.org_id)
            s.flush()
            self._changed()
            return self._revision_entity(v, row)

    def _queue_build(self, s: Session, rev: RevisionRow, org_id: str | None) -> None:
        """A new build of ``rev``: any build of it still queued or running stands down."""
        rev.status, rev.error_message, rev.build_id = "queued", None, new_uuid()
        self.tasks.enqueue_in(s, BUILD_TASK, {"revision_id": rev.id, "build_id": rev.build_id}, org_id=org_id)

    def environment_built(self, s: Session, env: EnvironmentRow, tag: Any, *, success: bool) -> int:
        """An environment tag's build finished: every version on the tag builds its latest revision again (after a
        failure only those waiting for the tag, which then fail with its reason). How many were queued."""
        p = s.get(RegistryProjectRow, env.project_id)
        versions = s.scalars(
            select(DeploymentVersionRow)
            .join(DeploymentRow, DeploymentRow.id == DeploymentVersionRow.deployment_id)
            .where(
                DeploymentRow.project_id == env.project_id,
                DeploymentVersionRow.environment == env.name,
                DeploymentVersionRow.environment_tag == tag.name,
            )
        ).all()
        queued = 0
        for v in versions:
            rev = s.get(RevisionRow, v.latest_revision_id) if v.latest_revision_id else None
            if rev is None or rev.file_id is None or not (success or rev.status == "queued"):
                continue
            self._queue_build(s, rev, p.org_id)
            queued += 1
        self._changed()
        return queued

    def list_revisions(self, principal: Principal, project: Any, deployment: Any, version: Any) -> list[Revision]:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            rows = s.scalars(select(RevisionRow).where(RevisionRow.version_id == v.id).order_by(RevisionRow.created_at))
            return [self._revision_entity(v, r) for r in rows]

    def get_revision(
        self, principal: Principal, project: Any, deployment: Any, version: Any, revision_id: Any
    ) -> Revision:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            return self._revision_entity(v, self._revision_row(s, v, revision_id))

    def revision_log(self, principal: Principal, project: Any, deployment: Any, version: Any, revision_id: Any) -> str:
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            v = self._version_row(s, self._deployment_row(s, p, deployment), version)
            return self._revision_row(s, v, revision_id).build_log or ""

    def revision_file(self, principal: Principal, project: Any, deployment: Any, version: Any, revision_id: Any) -> str:
        rev = self.get_revision(principal, project, deployment, version, revision_id)
        if rev.file_id is None:
            raise NotFound("This revision has no package file.")
        return rev.file_id

    @staticmethod
    def _revision_row(s: Session, v: DeploymentVersionRow, revision_id: Any) -> RevisionRow:
        row = s.get(RevisionRow, revision_id) if lookup_key(revision_id, 36) else None
        if row is None or row.version_id != v.id:
            raise NotFound(f"Revision {revision_id!r} not found")
        return row

    @staticmethod
    def _revision_entity(v: DeploymentVersionRow, r: RevisionRow) -> Revision:
        return Revision(
            r.id,
            v.version,
            r.status,
            truncate(r.error_message),
            r.created_by,
            aware(r.created_at),
            r.has_request_method,
            r.has_requests_method,
            r.file_id,
        )

    # --- building (a background task) -----------------------------------------------------------
    def build_revision(
        self, revision_id: str, progress: Callable[[int], None], *, build_id: str | None = None
    ) -> dict[str, Any]:
        """Build a revision (task ``serving_build``). ``build_id``: the build this task was queued for; when the
        revision was queued again since, this task stands down. A revision whose environment tag is still building
        stays ``queued``: it is built again when the tag's build finishes."""
        from modelharbor.core.environment_builds import EnvironmentNotReady

        lines: list[str] = []

        def note(line: str) -> None:
            lines.append(line.rstrip("\n"))
            if len(lines) > 2000:
                del lines[:1000]

        with self.db.uow() as s:
            rev = s.get(RevisionRow, revision_id)
            if rev is None:
                return {"revision_id": revision_id, "status": "gone"}
            if build_id is not None and rev.build_id not in (None, build_id):
                return {"revision_id": revision_id, "status": "superseded"}
            v = s.get(DeploymentVersionRow, rev.version_id)
            p = s.get(RegistryProjectRow, s.get(DeploymentRow, v.deployment_id).project_id)
            try:
                self.environment_tags.resolve(s, p, v)
            except EnvironmentNotReady as exc:
                rev.status, rev.build_log = "queued", f"waiting: {exc.message}; the build starts when it is done"
                return {"revision_id": revision_id, "status": "waiting"}
            except PackageRejected:
                pass  # the build below fails with the reason
            rev.status = "building"
        try:
            progress(10)
            spec, has_request, has_requests, choice = self._prepare(revision_id, note, build=True)
            progress(60)
            note("starting one instance to check that the deployment initialises")
            check = self.executor.check(spec)
            if check.state == "failed":
                raise PackageRejected(f"The deployment failed to start: {check.error}")
            note("the deployment initialised")
        except EnvironmentNotReady as exc:  # the tag was rebuilt meanwhile: its end queues this build again
            note(f"waiting: {exc.message}")
            self._finish(revision_id, "queued", None, lines, build_id=build_id)
            return {"revision_id": revision_id, "status": "waiting"}
        except (PackageRejected, BuildFailed, HarborError) as exc:
            message = exc.message if isinstance(exc, HarborError) else str(exc)
            note(f"build failed: {message}")
            self._finish(revision_id, "failed", build_error(message), lines, build_id=build_id)
            return {"revision_id": revision_id, "status": "failed", "error": build_error(message)}
        self._finish(revision_id, "success", None, lines, has_request, has_requests, choice=choice, build_id=build_id)
        progress(100)
        return {"revision_id": revision_id, "status": "success"}

    def _finish(
        self,
        revision_id: str,
        status: str,
        error: str | None,
        lines: list[str],
        has_request=None,
        has_requests=None,
        *,
        choice: EnvironmentChoice | None = None,
        build_id: str | None = None,
    ) -> None:
        with self.db.uow() as s:
            rev = s.get(RevisionRow, revision_id)
            if rev is None or (build_id is not None and rev.build_id not in (None, build_id)):
                return  # gone, or queued again meanwhile: that build reports
            rev.status, rev.error_message = status, error
            rev.build_log = "\n".join(lines)[-200_000:]
            if has_request is not None:
                rev.has_request_method, rev.has_requests_method = has_request, has_requests
            if status == "success":
                if choice is not None:  # what it serves with from now on
                    rev.environment_base, rev.environment_requirements = choice.base, choice.requirements
                    rev.environment_build_id = choice.build_id
                v = s.get(DeploymentVersionRow, rev.version_id)
                current = s.get(RevisionRow, v.active_revision_id) if v.active_revision_id else None
                if current is None or aware(current.created_at) <= aware(rev.created_at):
                    v.active_revision_id = rev.id
                    v.updated_at = now()
        self._changed()

    def _prepare(
        self, revision_id: str, note: Callable[[str], None], *, build: bool = False
    ) -> tuple[WorkerSpec, bool, bool, EnvironmentChoice]:
        """Unpack the package, inspect it, build its environment; the spec that runs it. Building, the environment
        is the version's now (core/environment_builds.py); serving, the one the revision's last build used."""
        from modelharbor.core.environment_builds import EnvironmentChoice

        with self.db.uow(readonly=True) as s:
            rev = s.get(RevisionRow, revision_id)
            v = s.get(DeploymentVersionRow, rev.version_id) if rev is not None else None
            if v is None:  # deleted after the caller's route was read (routes are cached)
                raise NotFound("Deployment version not found: it was deleted")
            d = s.get(DeploymentRow, v.deployment_id)
            p = s.get(RegistryProjectRow, d.project_id)
            if build:
                choice = self.environment_tags.resolve(s, p, v)
            elif rev.environment_base is not None:
                choice = EnvironmentChoice(
                    rev.environment_base, rev.environment_requirements, rev.environment_build_id, rev.environment_base
                )
            else:  # built before environments had tags: the base alone (custom environments had no packages)
                env_row = s.scalar(
                    select(EnvironmentRow).where(
                        EnvironmentRow.project_id == p.id, EnvironmentRow.name == v.environment
                    )
                )
                base = env_row.base_environment if env_row is not None else v.environment
                choice = EnvironmentChoice(base or v.environment, None, None, v.environment)
            env_vars = self._effective_env(s, p.id, d.id, v.id)
            file_id = rev.file_id
            spec_base = (v.id, v.minimum_instances, v.maximum_instances, v.maximum_idle_time, p.name, d.name, v.version)
            org_id = p.org_id
        root = self._package_dir(revision_id, file_id, note)
        has_request, has_requests = inspect_deployment(root)
        note(
            f"deployment.py defines Deployment with {'request' if has_request else ''}{' and ' if has_request and has_requests else ''}{'requests' if has_requests else ''}"
        )
        if build and (root / "ubiops.yaml").is_file():
            if (root / "ubiops.yaml").stat().st_size > MAX_UBIOPS_YAML:
                raise PackageRejected(f"ubiops.yaml is larger than {MAX_UBIOPS_YAML} bytes.")
            for line in check_ubiops_yaml((root / "ubiops.yaml").read_text(errors="replace"), "ubiops.yaml"):
                note(line)
        own = (root / "requirements.txt").read_text(errors="replace") if (root / "requirements.txt").is_file() else None
        requirements = "\n".join(x for x in (choice.requirements, own) if x).strip() or None
        base = choice.base
        if base not in self._system_envs():
            raise PackageRejected(f"Unknown base environment {base!r}.")
        env_key = environment_key(base, requirements)
        note(
            f"environment {choice.label}"
            + (f" on {base}" if choice.label != base else "")
            + (" with the package's requirements.txt" if own and own.strip() else "")
            + f" ({env_key})"
        )
        environment = self.builder.build(env_key, base, requirements, note)
        vid, lo, hi, idle, project, deployment, version = spec_base
        spec = WorkerSpec(
            key=vid,
            revision=revision_id,
            package_dir=root,
            environment=environment,
            env_vars=env_vars,
            minimum_instances=lo,
            maximum_instances=hi,
            maximum_idle_time=float(idle),
            request_timeout=float(MAX_TIMEOUT),
            context={"project": project, "deployment": deployment, "version": version, "revision": revision_id},
            tenant=org_id,
        )
        return spec, has_request, has_requests, choice

    def _package_dir(self, revision_id: str, file_id: str | None, note: Callable[[str], None]) -> Path:
        """The unpacked package of a revision on this machine (fetched from the blob store once)."""
        dest = self.work_dir / "packages" / revision_id
        marker = dest.with_name(revision_id + ".root")
        if marker.is_file() and (Path(marker.read_text()) / "deployment.py").is_file():
            return Path(marker.read_text())
        if file_id is None:
            raise PackageRejected("The revision has no package.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        zip_path = dest.with_name(revision_id + ".zip")
        note("fetching the package")
        reader = self.files.open_reader(file_id)
        try:
            with open(zip_path, "wb") as out:
                while chunk := reader.read(1 << 20):
                    out.write(chunk)
        finally:
            reader.close()
        try:
            note("unpacking")
            root = unpack_package(zip_path, dest)
            share_read_only(dest)  # the sandboxed worker (another uid) reads it through a read-only mount
        finally:
            zip_path.unlink(missing_ok=True)
        marker.write_text(str(root))
        return root

    # --- environment variables ------------------------------------------------------------------
    def _effective_env(self, s: Session, project_id: str, deployment_id: str, version_id: str) -> dict[str, str]:
        rows = s.scalars(
            select(EnvVarRow).where(
                EnvVarRow.project_id == project_id,
                (EnvVarRow.deployment_id.is_(None) & EnvVarRow.version_id.is_(None))
                | ((EnvVarRow.deployment_id == deployment_id) & EnvVarRow.version_id.is_(None))
                | (EnvVarRow.version_id == version_id),
            )
        ).all()
        rank = {0: [], 1: [], 2: []}
        for r in rows:
            rank[2 if r.version_id else 1 if r.deployment_id else 0].append(r)
        out: dict[str, str] = {}
        for level in (0, 1, 2):
            for r in rank[level]:
                try:
                    out[r.name] = self.box.open(r.value)
                except SecretUnreadable:
                    log.warning("environment variable %s cannot be decrypted (server key changed?)", r.name)
        return out

    def _level(self, s: Session, principal: Principal, project: Any, deployment: Any, version: Any, *, write: bool):
        p = self._project(s, principal, project, write=write)
        d = self._deployment_row(s, p, deployment) if deployment is not None else None
        v = self._version_row(s, d, version) if version is not None and d is not None else None
        return p, d, v

    def list_env_vars(
        self, principal: Principal, project: Any, deployment: Any = None, version: Any = None
    ) -> list[EnvVar]:
        """A level's variables with those it inherits (project, then deployment), own ones last."""
        with self.db.uow(readonly=True) as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=False)
            out: list[EnvVar] = []
            levels = [("project", p.name, None, None)]
            if d is not None:
                levels.append(("deployment", d.name, d.id, None))
            if v is not None:
                levels.append(("version", v.version, d.id, v.id))
            own = levels[-1][0]
            for kind, label, did, vid in levels:
                q = select(EnvVarRow).where(EnvVarRow.project_id == p.id)
                q = q.where(EnvVarRow.deployment_id.is_(None) if did is None else EnvVarRow.deployment_id == did)
                q = q.where(EnvVarRow.version_id.is_(None) if vid is None else EnvVarRow.version_id == vid)
                for r in s.scalars(q.order_by(EnvVarRow.name)):
                    inherited = kind != own
                    out.append(self._env_var(r, kind if inherited else None, label if inherited else None))
            return out

    def get_env_var(
        self, principal: Principal, project: Any, var_id: Any, deployment: Any = None, version: Any = None
    ) -> EnvVar:
        with self.db.uow(readonly=True) as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=False)
            return self._env_var(self._env_var_row(s, p, d, v, var_id))

    def create_env_var(
        self, principal: Principal, project: Any, body: dict[str, Any], deployment: Any = None, version: Any = None
    ) -> EnvVar:
        name, value, secret = self._env_body(body)
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            if self._find_var(s, p, d, v, name) is not None:
                raise Conflict(f"Environment variable {name!r} already exists at this level.")
            count = s.scalar(select(func.count()).select_from(EnvVarRow).where(EnvVarRow.project_id == p.id))
            if count >= MAX_ENV_VARS:
                raise InvalidInput(f"A project may hold at most {MAX_ENV_VARS} environment variables.")
            row = EnvVarRow(
                id=new_uuid(),
                project_id=p.id,
                deployment_id=d.id if d else None,
                version_id=v.id if v else None,
                name=name,
                value=self.box.seal(value),
                secret=secret,
                created_at=now(),
            )
            s.add(row)
            s.flush()
            self._changed()
            return self._env_var(row)

    def update_env_var(
        self,
        principal: Principal,
        project: Any,
        var_id: Any,
        body: dict[str, Any],
        deployment: Any = None,
        version: Any = None,
    ) -> EnvVar:
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            row = self._env_var_row(s, p, d, v, var_id)
            name = _env_name(body["name"]) if body.get("name") is not None else row.name
            if name != row.name and self._find_var(s, p, d, v, name) is not None:
                raise Conflict(f"Environment variable {name!r} already exists at this level.")
            row.name = name
            if "secret" in body and body["secret"] is not None:
                if not isinstance(body["secret"], bool):
                    raise InvalidInput("'secret' must be a boolean.")
                if row.secret and not body["secret"] and body.get("value") is None:
                    raise InvalidInput("To make a secret visible, send its value again.")
                row.secret = body["secret"]
            if body.get("value") is not None:
                row.value = self.box.seal(self._env_value(body["value"]))
            s.flush()
            self._changed()
            return self._env_var(row)

    def delete_env_var(
        self, principal: Principal, project: Any, var_id: Any, deployment: Any = None, version: Any = None
    ) -> None:
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            s.delete(self._env_var_row(s, p, d, v, var_id))
        self._changed()

    def copy_env_vars(
        self,
        principal: Principal,
        project: Any,
        source_deployment: Any,
        source_version: Any,
        deployment: Any,
        version: Any = None,
    ) -> list[EnvVar]:
        """Copy the source level's own variables to the target level; same names are overwritten."""
        with self.db.uow() as s:
            p, d, v = self._level(s, principal, project, deployment, version, write=True)
            _, sd, sv = self._level(s, principal, project, source_deployment, source_version, write=False)
            q = select(EnvVarRow).where(EnvVarRow.project_id == p.id, EnvVarRow.deployment_id == sd.id)
            q = q.where(EnvVarRow.version_id == sv.id if sv is not None else EnvVarRow.version_id.is_(None))
            for src in list(s.scalars(q)):
                existing = self._find_var(s, p, d, v, src.name)
                if existing is None:
                    s.add(
                        EnvVarRow(
                            id=new_uuid(),
                            project_id=p.id,
                            deployment_id=d.id,
                            version_id=v.id if v else None,
                            name=src.name,
                            value=src.value,
                            secret=src.secret,
                            created_at=now(),
                        )
                    )
                else:
                    existing.value, existing.secret = src.value, src.secret
            s.flush()
        self._changed()
        return self.list_env_vars(principal, project, deployment, version)

    def _env_body(self, body: dict[str, Any]) -> tuple[str, str, bool]:
        name = _env_name(body.get("name"))
        secret = body.get("secret", False)
        if not isinstance(secret, bool):
            raise InvalidInput("'secret' must be a boolean.")
        return name, self._env_value(body.get("value")), secret

    @staticmethod
    def _env_value(value: Any) -> str:
        if value is None:
            raise InvalidInput("'value' is required (it may be an empty string).")
        if not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise InvalidInput(f"'value' must be a string of at most {MAX_ENV_VALUE} characters.")
        return value

    @staticmethod
    def _find_var(s: Session, p, d, v, name: str) -> EnvVarRow | None:
        q = select(EnvVarRow).where(EnvVarRow.project_id == p.id, EnvVarRow.name == name)
        q = q.where(EnvVarRow.deployment_id == d.id if d is not None else EnvVarRow.deployment_id.is_(None))
        q = q.where(EnvVarRow.version_id == v.id if v is not None else EnvVarRow.version_id.is_(None))
        return s.scalar(q)

    @staticmethod
    def _env_var_row(s: Session, p, d, v, var_id: Any) -> EnvVarRow:
        row = s.get(EnvVarRow, var_id) if lookup_key(var_id, 36) else None
        if (
            row is None
            or row.project_id != p.id
            or row.deployment_id != (d.id if d is not None else None)
            or row.version_id != (v.id if v is not None else None)
        ):
            raise NotFound(f"Environment variable {var_id!r} not found at this level")
        return row

    def _env_var(
        self, r: EnvVarRow, inheritance_type: str | None = None, inheritance_name: str | None = None
    ) -> EnvVar:
        value = None
        if not r.secret:
            try:
                value = self.box.open(r.value)
            except SecretUnreadable:
                value = None
        return EnvVar(r.id, r.name, value, r.secret, inheritance_type, inheritance_name)

    # --- requests -------------------------------------------------------------------------------
    def _route(self, principal: Principal, project: str, deployment: str, version: str | None) -> _Route:
        key = (principal.org_id, project, deployment, version)
        route = self._routes.get(key)
        if route is not None and route.expires > time.monotonic():
            return route
        with self.db.uow(readonly=True) as s:
            p = self._project(s, principal, project)
            d = self._deployment_row(s, p, deployment)
            if version is None:
                if d.default_version_id is None:
                    raise InvalidInput(f"Deployment {d.name!r} has no versions yet: create one and upload a package.")
                v = s.get(DeploymentVersionRow, d.default_version_id)
            else:
                v = self._version_row(s, d, version)
            route = _Route(
                expires=time.monotonic() + ROUTE_TTL,
                org_id=p.org_id,
                project=p.name,
                deployment=self._deployment_entity(s, p.name, d),
                version=self._version_entity(s, p.name, d, v),
                revision_id=v.active_revision_id,
                environment=self._built_in(s, v),
                env_vars=self._effective_env(s, p.id, d.id, v.id),
            )
        with self._lock:
            self._routes[key] = route
        return route

    @staticmethod
    def _built_in(s: Session, v: DeploymentVersionRow) -> tuple[str | None, str | None]:
        """(base, environment build) the version's serving revision was last built in."""
        rev = s.get(RevisionRow, v.active_revision_id) if v.active_revision_id else None
        return (rev.environment_base, rev.environment_build_id) if rev is not None else (None, None)

    async def request(
        self,
        principal: Principal,
        project: Any,
        deployment: Any,
        data: Any,
        *,
        version: Any = None,
        timeout: Any = None,
    ) -> RequestResult:
        """One direct request: validated, answered, checked, and kept as the version's retention mode says."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="deployment")
        timeout = _int(timeout, "timeout", DEFAULT_TIMEOUT, 10, MAX_TIMEOUT)
        if (
            not isinstance(project, str)
            or not isinstance(deployment, str)
            or (version is not None and not isinstance(version, str))
        ):
            raise NotFound("Deployment not found")
        route = self._routes.get((principal.org_id, project, deployment, version))
        if route is None or route.expires <= time.monotonic():
            route = await asyncio.to_thread(self._route, principal, project, deployment, version)
        d, v = route.deployment, route.version
        self._check_input(d, data)
        if route.revision_id is None:
            raise InvalidInput(
                f"Version {v.version!r} of {d.name!r} is not available: "
                + (
                    "its package is still building; retry shortly."
                    if v.status == "processing"
                    else "upload a deployment package first."
                )
            )
        started = now()
        status, value, error = await self._answer(route, data, timeout)
        request_id = new_uuid()
        if v.request_retention_mode != "none":
            keep = v.request_retention_mode == "full"
            await asyncio.to_thread(
                self._keep,
                request_id,
                d.id,
                v.id,
                principal.user_id,
                status,
                data if keep else None,
                value if keep else None,
                error,
                timeout,
                started,
            )
        return RequestResult(request_id, d.name, v.version, status, value, error, timeout, started)

    async def _answer(self, route: _Route, data: Any, timeout: int) -> tuple[str, Any, str | None]:
        """(status, result, error) of one request — a list is a batch answered item by item — with the output
        checked against the deployment's output fields."""
        await self._ensure_deployed(route)
        d = route.deployment
        result = await self.executor.request(route.version.id, data, timeout=timeout)
        if not result.ok:
            return "failed", None, truncate(result.error)
        values = result.value if isinstance(data, list) else [result.value]
        if isinstance(data, list) and (not isinstance(values, list) or len(values) != len(data)):
            return "failed", None, "The deployment answered a batch with a different number of results."
        for value in values:
            if d.output_type == "structured":
                try:
                    check_fields(d.output_fields, value, what="output")
                except InvalidInput as exc:
                    return "failed", None, truncate(f"The deployment answered a wrong output: {exc.message}")
            elif not isinstance(value, str):
                return "failed", None, "The deployment is plain: request() must return a string."
        return "completed", result.value, None

    def _check_input(self, d: Deployment, data: Any) -> None:
        if d.input_type == "plain":
            if not isinstance(data, str):
                raise InvalidInput(f"Deployment {d.name!r} takes plain text input, not JSON.")
        elif isinstance(data, list):
            if not data:
                raise InvalidInput("A batch of requests must not be empty.")
            for item in data:
                check_fields(d.input_fields, item, what="input")
        else:
            check_fields(d.input_fields, data, what="input")

    async def _ensure_deployed(self, route: _Route) -> None:
        vid = route.version.id
        current = self._deployed.get(vid)
        if (
            current is not None
            and current.revision == route.revision_id
            and self._deployed_env.get(vid) == route.environment
            and current.env_vars == route.env_vars
            and (current.minimum_instances, current.maximum_instances, current.maximum_idle_time)
            == (
                route.version.minimum_instances,
                route.version.maximum_instances,
                float(route.version.maximum_idle_time),
            )
        ):
            return
        spec = await asyncio.to_thread(self._spec_for, route)
        with self._lock:
            self._deployed[vid] = spec
            self._deployed_env[vid] = route.environment
        await asyncio.to_thread(self.executor.deploy, spec)

    def _spec_for(self, route: _Route) -> WorkerSpec:
        spec, _, _, _ = self._prepare(route.revision_id, lambda _line: None)
        return replace(spec, env_vars=route.env_vars)

    def _keep(
        self, request_id, deployment_id, version_id, user_id, status, data, result, error, timeout, started
    ) -> None:
        with self.db.uow() as s:
            if not held_if_present(s, DeploymentVersionRow, version_id):
                return  # deleted while the request ran: its requests went with it
            s.add(
                DeploymentRequestRow(
                    id=request_id,
                    deployment_id=deployment_id,
                    version_id=version_id,
                    status=status,
                    request_data=data,
                    result=result,
                    error_message=error,
                    timeout=timeout,
                    created_by=user_id,
                    created_at=started,
                    started_at=started,
                    finished_at=now(),
                )
            )

    # --- batch (asynchronous) requests -----------------------------------------------------------
    def submit_batch(
        self,
        principal: Principal,
        project: Any,
        deployment: Any,
        items: Any,
        *,
        version: Any = None,
        timeout: Any = None,
    ) -> list[RequestResult]:
        """Queue up to MAX_BATCH requests (each item one request) to be answered in the background; poll each with
        :meth:`get_request`. Their data and results are kept until read or the retention time passes."""
        require(principal, Action.SERVING_REQUEST, principal.org_id, what="deployment")
        timeout = _int(timeout, "timeout", DEFAULT_TIMEOUT, 10, MAX_TIMEOUT)
        if not isinstance(items, list) or not items:
            raise InvalidInput("A batch request is a non-empty JSON array: one element per request.")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"A batch may hold at most {MAX_BATCH} requests, not {len(items)}.")
        route = self._route(principal, project, deployment, version)
        for item in items:
            if isinstance(item, list):
                raise InvalidInput("Each element of a batch is one request (an object, or text for plain input).")
            self._check_input(route.deployment, item)
        t = now()
        ids = [new_uuid() for _ in items]
        with self.db.uow() as s:
            if not held_if_present(s, DeploymentVersionRow, route.version.id):
                raise NotFound(f"Version {route.version.version!r} of deployment {route.deployment.name!r} not found")
            for rid, item in zip(ids, items, strict=True):
                s.add(
                    DeploymentRequestRow(
                        id=rid,
                        deployment_id=route.deployment.id,
                        version_id=route.version.id,
                        status="pending",
                        request_data=item,
                        result=None,
                        error_message=None,
                        timeout=timeout,
                        created_by=principal.user_id,
                        created_at=t,
                        started_at=None,
                        finished_at=None,
                    )
                )
            self.tasks.enqueue_in(
                s, BATCH_TASK, {"request_ids": ids, "user_id": principal.user_id}, org_id=principal.org_id
            )
        return [
            RequestResult(rid, route.deployment.name, route.version.version, "pending", None, None, timeout, t)
            for rid in ids
        ]

    def process_batch(self, request_ids: list[str], progress: Callable[[int], None]) -> dict[str, Any]:
        """Answer queued batch requests (a background task): each pending one becomes completed or failed (one
        cancelled meanwhile stays cancelled)."""
        done = failed = 0
        for n, rid in enumerate(request_ids):
            with self.db.uow() as s:
                row = kept.claim(s, DeploymentRequestRow, rid)
                if row is None:
                    continue
                v = s.get(DeploymentVersionRow, row.version_id)
                d = s.get(DeploymentRow, v.deployment_id)
                p = s.get(RegistryProjectRow, d.project_id)
                route = _Route(
                    expires=0.0,
                    org_id=p.org_id,
                    project=p.name,
                    deployment=self._deployment_entity(s, p.name, d),
                    version=self._version_entity(s, p.name, d, v),
                    revision_id=v.active_revision_id,
                    environment=self._built_in(s, v),
                    env_vars=self._effective_env(s, p.id, d.id, v.id),
                )
                data, timeout, mode = row.request_data, row.timeout, v.request_retention_mode
            if route.revision_id is None:
                status, value, error = "failed", None, "The version has no built package to answer with."
            else:
                try:
                    status, value, error = asyncio.run(self._answer(route, data, timeout))
                except HarborError as exc:
                    status, value, error = "failed", None, truncate(exc.message)
            with self.db.uow() as s:
                kept.settle(s, DeploymentRequestRow, rid, status, value, error, mode)  # not if cancelled meanwhile
            done += status == "completed"
            failed += status == "failed"
            progress(min(99, (n + 1) * 100 // len(request_ids)))
        return {"completed": done, "failed": failed}

    def _kept_owner(self, s: Session, principal: Principal, project: Any, deployment: Any) -> DeploymentRow:
        return self._deployment_row(s, self._project(s, principal, project), deployment)

    def sweep_requests(self) -> int:
        """Delete kept requests older than their version's retention time (with those of the services in
        ``on_sweep_requests``: pipeline requests); returns how many."""
        removed = 0
        with self.db.uow() as s:
            for v in s.scalars(select(DeploymentVersionRow)):
                cutoff = now() - timedelta(seconds=v.request_retention_time)
                removed += (
                    s.execute(
                        delete(DeploymentRequestRow).where(
                            DeploymentRequestRow.version_id == v.id,
                            DeploymentRequestRow.created_at < cutoff,
                            DeploymentRequestRow.status.in_(kept.FINISHED),
                        )
                    ).rowcount
                    or 0
                )
            for hook in self.on_sweep_requests:
                removed += hook(s)
        return removed

    @staticmethod
    def _request_entity(d: DeploymentRow, version: str, row: DeploymentRequestRow) -> RequestResult:
        return RequestResult(
            row.id,
            d.name,
            version,
            row.status,
            row.result,
            row.error_message,
            row.timeout,
            aware(row.created_at),
            request_data=row.request_data,
            started_at=aware(row.started_at) if row.started_at else None,
            finished_at=aware(row.finished_at) if row.finished_at else None,
        )

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        with self._lock:
            self._deployed.clear()
            self._deployed_env.clear()
