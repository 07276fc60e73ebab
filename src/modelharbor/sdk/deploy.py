"""Deploying a package directory: zip it, create the project, deployment and version when missing (or change their
fields and scaling), upload the package as a new revision and follow its build."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelharbor.sdk import names
from modelharbor.sdk.deployments import FieldSpec, field_list
from modelharbor.sdk.errors import HarborClientError, invalid, local_file
from modelharbor.sdk.transfers import Progress
from modelharbor.sdk.wire import Deployment, DeploymentVersion, Revision, RevisionDetail

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

PACKAGE_EXCLUDED = frozenset({"__pycache__", ".git"})  # folders left out when a directory is zipped
LOG_TAIL_LINES = 20


@dataclass
class DeployResult:
    """What :meth:`Deployments.deploy` did: the revision as last seen (with its ``build_log`` once waited for)."""

    project: str
    deployment: str
    version: str
    revision: Revision | RevisionDetail
    created: list[str] = field(default_factory=list)


def first_line(text: str | None) -> str:
    """The first line of an error message (a build's error may end with the instance's log tail)."""
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "no reason given"


def log_tail(log: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(log.rstrip("\n").splitlines()[-lines:])


def io_text(d: Deployment) -> str:
    def side(kind: str, fields: list[Any]) -> str:
        if kind == "plain":
            return "plain"
        return ", ".join(f"{f.name}:{f.data_type}" for f in fields) or "no fields"

    return f"in {side(d.input_type, d.input_fields)} → out {side(d.output_type, d.output_fields)}"


def deploy(
    client: Client,
    project: str,
    deployment: str,
    path: str | os.PathLike[str],
    *,
    version: str,
    input_fields: FieldSpec,
    output_fields: FieldSpec,
    plain: bool,
    scaling: dict[str, Any],
    create: bool,
    wait: bool,
    timeout: float,
    progress: Progress | None,
    on_status: Callable[[RevisionDetail, float], None] | None,
    on_step: Callable[[str], None] | None,
) -> DeployResult:
    note = on_step or (lambda _text: None)
    names.serving_name(deployment, "deployment")
    names.serving_name(version, "version")
    inputs, outputs = field_list(input_fields), field_list(output_fields)
    if plain and (inputs or outputs):
        raise invalid("a plain deployment has no fields")
    src = Path(path).expanduser()
    p = client.projects.find(project)
    if p is None:
        if not create:
            raise HarborClientError(404, "NOT_FOUND", f"no project {project!r} (create it, or pass create)")
        names.serving_project(project)
    else:
        names.serving_project(p.name)
    package, temporary = _package_of(src)
    created: list[str] = []
    try:
        if p is None:
            p = client.projects.create(project)
            created.append(f"project {p.name}")
            note(f"created project {p.name}")
        name = p.name
        d = _ensure_deployment(client, name, deployment, inputs, outputs, plain, create, note, created)
        _ensure_version(client, name, d.name, version, scaling, create, note, created)
        size = package.stat().st_size
        note(f"uploading {size} bytes to {name}/{d.name}/{version}")
        rev: Revision | RevisionDetail = client.deployments.upload_package(
            name, d.name, version, package, progress=progress
        )
        note(f"revision {rev.id}: {rev.status}")
    finally:
        if temporary:
            package.unlink(missing_ok=True)
    result = DeployResult(name, d.name, version, rev, created)
    if not wait:
        return result
    rev = client.deployments.wait_for_revision(name, d.name, version, rev.id, timeout=timeout, on_status=on_status)
    result.revision = rev
    if rev.status == "failed":
        tail = log_tail(rev.build_log or "")
        raise HarborClientError(
            0,
            "BUILD_FAILED",
            f"the build of {name}/{d.name}/{version} (revision {rev.id}) failed: {first_line(rev.error_message)}"
            + (f"\nbuild log (last lines):\n{tail}" if tail else ""),
            {"revision": rev, "result": result},
        )
    return result


def _fields(fields: list[Any]) -> list[dict[str, str]]:
    return [{"name": f["name"] if isinstance(f, dict) else f.name, "data_type": _type(f)} for f in fields]


def _type(f: Any) -> str:
    return f["data_type"] if isinstance(f, dict) else f.data_type


def _ensure_deployment(client, project, deployment, inputs, outputs, plain, create, note, created) -> Deployment:
    try:
        d = client.deployments.get(project, deployment)
    except HarborClientError as exc:
        if exc.status != 404 or not create:
            raise
        d = client.deployments.create(project, deployment, input_fields=inputs, output_fields=outputs, plain=plain)
        created.append(f"deployment {d.name}")
        note(f"created deployment {d.name} ({io_text(d)})")
        return d
    want = "plain" if plain else "structured"
    if (plain or inputs or outputs) and (d.input_type, d.output_type) != (want, want):
        raise invalid(
            f"deployment {deployment!r} exists with {d.input_type} input and {d.output_type} output; "
            "deploy to it without --plain/fields, or choose another deployment"
        )
    change = {}
    if inputs and _fields(inputs) != _fields(d.input_fields):
        change["input_fields"] = inputs
    if outputs and _fields(outputs) != _fields(d.output_fields):
        change["output_fields"] = outputs
    if change:
        d = client.deployments.update(project, deployment, **change)
        note(f"changed the fields of deployment {d.name} ({io_text(d)})")
    return d


def _ensure_version(client, project, deployment, version, scaling, create, note, created) -> DeploymentVersion:
    wanted = {k: v for k, v in scaling.items() if v is not None}
    try:
        v = client.deployments.version(project, deployment, version)
    except HarborClientError as exc:
        if exc.status != 404 or not create:
            raise
        v = client.deployments.create_version(project, deployment, version, **wanted)
        created.append(f"version {v.version}")
        note(f"created version {v.version} (environment {v.environment})")
        return v
    change = {k: value for k, value in wanted.items() if getattr(v, k, None) != value}
    if change:
        v = client.deployments.update_version(project, deployment, version, **change)
        note("changed version " + v.version + ": " + ", ".join(f"{k} {value}" for k, value in change.items()))
    return v


def _package_of(src: Path) -> tuple[Path, bool]:
    """(the zip to upload, whether it is a temporary file): a .zip as it is, a directory zipped."""
    if src.is_dir():
        top = src / "deployment.py"
        if not top.is_file() and not any((d / "deployment.py").is_file() for d in src.iterdir() if d.is_dir()):
            raise local_file(f"{src} holds no deployment.py (at its top, or in one folder directly below it)")
        return _zip_directory(src), True
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise local_file(f"{src} is not a .zip file; pass a directory or a .zip")
        return src, False
    raise local_file(f"{src} does not exist")


def _zip_directory(src: Path) -> Path:
    """``src``'s files in a temporary zip, relative to ``src``, leaving out ``__pycache__`` and ``.git``."""
    fd, name = tempfile.mkstemp(prefix="modelharbor-package-", suffix=".zip")
    os.close(fd)
    target = Path(name)
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for root, dirs, files in os.walk(src):
                dirs[:] = sorted(d for d in dirs if d not in PACKAGE_EXCLUDED)
                for f in sorted(files):
                    path = Path(root) / f
                    if path.suffix == ".pyc" or not path.is_file():
                        continue
                    zf.write(path, path.relative_to(src).as_posix())
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise local_file(f"cannot zip {src}: {exc.strerror or exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
