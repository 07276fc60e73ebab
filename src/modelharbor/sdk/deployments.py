"""``client.deployments``: deployments of a project, their versions, packages (revisions and their builds),
runtime logs and predictions — and :meth:`Deployments.deploy`, which does all of it for a package directory."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from modelharbor.sdk.errors import HarborClientError, invalid
from modelharbor.sdk.http import seg
from modelharbor.sdk.transfers import Counter, Progress, read_hashed, stat_file
from modelharbor.sdk.wire import Deployment, DeploymentVersion, LogLine, Logs, Prediction, Revision, RevisionDetail

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client
    from modelharbor.sdk.deploy import DeployResult

# deployment fields: {"x": "double"}, ["x:double"] or [{"name": "x", "data_type": "double"}]
FieldSpec = dict[str, str] | list[str] | list[dict[str, Any]] | None
BUILD_DONE = ("success", "failed")


def project_path(project: str, *parts: str) -> str:
    """``/projects/{project}/…`` with every segment URL-encoded."""
    return "/projects/" + "/".join(seg(p) for p in (project, *parts))


def field_list(spec: FieldSpec) -> list[dict[str, Any]] | None:
    """Fields as the API takes them, from ``{"x": "double"}``, ``["x:double"]`` or a list of ``{name, data_type}``."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return [{"name": str(k), "data_type": str(v)} for k, v in spec.items()]
    out: list[dict[str, Any]] = []
    for item in spec:
        if isinstance(item, dict):
            out.append(dict(item))
            continue
        name, colon, data_type = str(item).partition(":")
        if not colon or not name.strip() or not data_type.strip():
            raise invalid(f"field {item!r} is not NAME:TYPE (types: int, double, string, bool, dict, …)")
        out.append({"name": name.strip(), "data_type": data_type.strip()})
    return out


def poll(
    fetch: Callable[[], Any],
    until: tuple[str, ...],
    timeout: float,
    on_status: Callable[[Any, float], None] | None,
    what: str,
    *,
    max_delay: float = 1.0,
    later: str = "it goes on on the server",
) -> Any:
    """``fetch()`` (a few times a second, then every ``max_delay``) until its ``status`` is one of ``until``;
    ``on_status(item, elapsed)`` after each call. Past ``timeout`` seconds: a TIMEOUT error ending with ``later``."""
    started = time.monotonic()
    delay = 0.2
    while True:
        item = fetch()
        elapsed = time.monotonic() - started
        if on_status is not None:
            on_status(item, elapsed)
        if item.status in until:
            return item
        if elapsed > timeout:
            raise HarborClientError(
                0, "TIMEOUT", f"{what} is still {item.status} after {int(elapsed)} s; {later}", {"item": item}
            )
        time.sleep(delay)
        delay = min(delay * 1.5, max_delay)


def io_body(
    name: str,
    input_fields: FieldSpec,
    output_fields: FieldSpec,
    plain: bool,
    input_type: str | None = None,
    output_type: str | None = None,
    description: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The body that creates a deployment or a pipeline: its name, input and output (plain, or typed fields)."""
    body: dict[str, Any] = {
        "name": name,
        "input_type": input_type or ("plain" if plain else "structured"),
        "output_type": output_type or ("plain" if plain else "structured"),
        "input_fields": field_list(input_fields) or [],
        "output_fields": field_list(output_fields) or [],
    }
    if description is not None:
        body["description"] = description
    if labels is not None:
        body["labels"] = labels
    return body


def predict_request(url: str, data: Any, version: str | None, timeout: int | None, plain: bool | None) -> dict:
    """The keyword arguments of a prediction request (shared by deployments and pipelines)."""
    params = {k: v for k, v in {"version": version, "timeout": timeout}.items() if v is not None}
    if plain is None:
        plain = isinstance(data, str)
    if plain:
        if not isinstance(data, str):
            raise invalid("plain input is text (a str)")
        kw: dict[str, Any] = {"content": data.encode(), "headers": {"content-type": "text/plain; charset=utf-8"}}
    else:
        try:
            body = json.dumps(data, allow_nan=False, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise invalid(f"the input cannot be sent as JSON: {exc}") from None
        kw = {"content": body, "headers": {"content-type": "application/json"}}
    return {"params": params, "retries": 1, **kw}


class Deployments:
    """``/api/v1/projects/{project}/deployments``. A project is named by its name or its id."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def list(self, project: str) -> list[Deployment]:
        return self._t.call(list[Deployment], "GET", project_path(project, "deployments"))

    def get(self, project: str, deployment: str) -> Deployment:
        return self._t.call(Deployment, "GET", project_path(project, "deployments", deployment))

    def create(
        self,
        project: str,
        name: str,
        *,
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        input_type: str | None = None,
        output_type: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Deployment:
        """Create a deployment. Fields are ``{"x": "double"}``, ``["x:double"]`` or ``[{"name", "data_type"}]``;
        ``plain=True`` makes input and output plain text (or set ``input_type``/``output_type`` one by one)."""
        body = io_body(name, input_fields, output_fields, plain, input_type, output_type, description, labels)
        return self._t.call(Deployment, "POST", project_path(project, "deployments"), json=body)

    def update(self, project: str, deployment: str, **fields: Any) -> Deployment:
        """Change ``name``, ``description``, ``labels``, ``input_fields``, ``output_fields`` or ``default_version``."""
        for key in ("input_fields", "output_fields"):
            if fields.get(key) is not None:
                fields[key] = field_list(fields[key])
        return self._t.call(Deployment, "PATCH", project_path(project, "deployments", deployment), json=fields)

    def delete(self, project: str, deployment: str) -> None:
        """Delete a deployment with its versions (their running instances stop)."""
        self._t.request("DELETE", project_path(project, "deployments", deployment))

    # --- versions -------------------------------------------------------------------------------------------
    def versions(self, project: str, deployment: str) -> list[DeploymentVersion]:
        return self._t.call(
            list[DeploymentVersion], "GET", project_path(project, "deployments", deployment, "versions")
        )

    def version(self, project: str, deployment: str, version: str) -> DeploymentVersion:
        url = project_path(project, "deployments", deployment, "versions", version)
        return self._t.call(DeploymentVersion, "GET", url)

    def create_version(
        self,
        project: str,
        deployment: str,
        version: str,
        *,
        environment: str | None = None,
        minimum_instances: int | None = None,
        maximum_instances: int | None = None,
        maximum_idle_time: int | None = None,
        **fields: Any,
    ) -> DeploymentVersion:
        """Create a version; also ``request_retention_mode``, ``description``, ``labels``, …"""
        body = {
            "version": version,
            "environment": environment,
            "minimum_instances": minimum_instances,
            "maximum_instances": maximum_instances,
            "maximum_idle_time": maximum_idle_time,
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not None}
        url = project_path(project, "deployments", deployment, "versions")
        return self._t.call(DeploymentVersion, "POST", url, json=body)

    def update_version(self, project: str, deployment: str, version: str, **fields: Any) -> DeploymentVersion:
        url = project_path(project, "deployments", deployment, "versions", version)
        return self._t.call(DeploymentVersion, "PATCH", url, json=fields)

    def delete_version(self, project: str, deployment: str, version: str) -> None:
        self._t.request("DELETE", project_path(project, "deployments", deployment, "versions", version))

    # --- packages and their builds --------------------------------------------------------------------------
    def upload_package(
        self,
        project: str,
        deployment: str,
        version: str,
        path: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> Revision:
        """Send a package (a .zip) as a new revision of the version, streamed from disk; returns the revision
        (``queued``). Its build runs on the server: see :meth:`wait_for_revision`."""
        src = Path(path).expanduser()
        size = stat_file(src).st_size
        filename = src.name if src.name.lower().endswith(".zip") else "package.zip"

        def body() -> dict[str, Any]:
            counter = Counter(size, progress)
            counter.add(0)
            return {"content": read_hashed(src, size, hashlib.sha256(), counter)}

        url = project_path(project, "deployments", deployment, "versions", version, "package")
        resp = self._t.request(
            "PUT",
            url,
            params={"filename": filename},
            headers={"content-length": str(size), "content-type": "application/zip"},
            timeout=httpx.Timeout(self._t.timeout, read=None),
            per_attempt=body,
        )
        return self._t.parse(Revision, resp.json(), f"PUT {url}")

    def revisions(self, project: str, deployment: str, version: str) -> list[Revision]:
        """The version's revisions, oldest first (without their logs)."""
        url = project_path(project, "deployments", deployment, "versions", version, "revisions")
        return self._t.call(list[Revision], "GET", url)

    def revision(self, project: str, deployment: str, version: str, revision_id: str) -> RevisionDetail:
        """One revision: status, error_message and ``build_log``."""
        url = project_path(project, "deployments", deployment, "versions", version, "revisions", revision_id)
        return self._t.call(RevisionDetail, "GET", url)

    def wait_for_revision(
        self,
        project: str,
        deployment: str,
        version: str,
        revision_id: str,
        *,
        timeout: float = 1800.0,
        on_status: Callable[[RevisionDetail, float], None] | None = None,
    ) -> RevisionDetail:
        """Poll a revision until its build ends (``success`` or ``failed``) and return it (with its build log).
        ``on_status(revision, elapsed_seconds)`` is called after every poll (about twice a second)."""
        return poll(
            lambda: self.revision(project, deployment, version, revision_id),
            BUILD_DONE,
            timeout,
            on_status,
            f"revision {revision_id}",
            max_delay=0.5,
            later=f"see its log later with `modelharbor deployments logs {project} {deployment} {version} {revision_id}`",
        )

    def logs(
        self,
        project: str,
        deployment: str,
        *,
        version: str | None = None,
        since: str | None = None,
        level: str | None = None,
        contains: str | None = None,
        limit: int | None = None,
    ) -> list[LogLine]:
        """Runtime log lines of the deployment's instances, oldest first (``since``: ISO 8601, inclusive)."""
        params = {"version": version, "since": since, "level": level, "contains": contains, "limit": limit}
        params = {k: v for k, v in params.items() if v is not None}
        return self._t.call(Logs, "GET", project_path(project, "deployments", deployment, "logs"), params=params).items

    # --- predictions ----------------------------------------------------------------------------------------
    def predict(
        self,
        project: str,
        deployment: str,
        data: Any,
        *,
        version: str | None = None,
        timeout: int | None = None,
        plain: bool | None = None,
    ) -> Prediction:
        """Ask a deployment (its default version, or ``version``) for a prediction. ``data`` is the input fields'
        object, or text for a plain deployment (sent as ``text/plain``; ``plain`` defaults to "data is a str"). A
        failed prediction is ``status: "failed"`` with the reason, not an exception."""
        url = project_path(project, "deployments", deployment, "predict")
        read = httpx.Timeout(self._t.timeout, read=float(timeout or 300) + 30.0)
        return self._t.call(
            Prediction, "POST", url, timeout=read, **predict_request(url, data, version, timeout, plain)
        )

    # --- deploy: package, create what is missing, upload, wait for the build --------------------------------
    def deploy(
        self,
        project: str,
        deployment: str,
        path: str | os.PathLike[str],
        *,
        version: str = "v1",
        input_fields: FieldSpec = None,
        output_fields: FieldSpec = None,
        plain: bool = False,
        environment: str | None = None,
        minimum_instances: int | None = None,
        maximum_instances: int | None = None,
        maximum_idle_time: int | None = None,
        create: bool = True,
        wait: bool = True,
        timeout: float = 1800.0,
        progress: Progress | None = None,
        on_status: Callable[[RevisionDetail, float], None] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> DeployResult:
        """Deploy ``path`` (a directory holding ``deployment.py``, zipped on the fly without ``__pycache__`` and
        ``.git``; or a ``.zip``) as a new revision of ``project/deployment/version``.

        The names are checked before anything is sent. With ``create`` the project, deployment (with the given
        fields, or plain) and version (with the given environment and scaling) are created when missing; existing
        ones get changed fields, environment or scaling. The upload reports ``progress(done, total)``; with
        ``wait`` the build is followed (``on_status(revision, elapsed)``) and a failed build raises
        ``HarborClientError`` (code ``BUILD_FAILED``) whose message ends with the build log's tail.
        ``on_step(text)`` narrates. Returns a :class:`~modelharbor.sdk.deploy.DeployResult`."""
        from modelharbor.sdk.deploy import deploy

        return deploy(
            self._client,
            project,
            deployment,
            path,
            version=version,
            input_fields=input_fields,
            output_fields=output_fields,
            plain=plain,
            scaling={
                "environment": environment,
                "minimum_instances": minimum_instances,
                "maximum_instances": maximum_instances,
                "maximum_idle_time": maximum_idle_time,
            },
            create=create,
            wait=wait,
            timeout=timeout,
            progress=progress,
            on_status=on_status,
            on_step=on_step,
        )
