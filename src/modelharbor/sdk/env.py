"""``client.env``: environment variables at project, deployment or version level (secrets' values are never
returned)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelharbor.sdk.deployments import project_path
from modelharbor.sdk.errors import HarborClientError, invalid
from modelharbor.sdk.wire import EnvVar

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


class EnvVars:
    """``…/environment-variables`` of a project, a deployment (``deployment=``) or a version (``version=`` too)."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def _path(self, project: str, deployment: str | None, version: str | None, *rest: str) -> str:
        if version is not None and deployment is None:
            raise invalid("a version-level variable needs its deployment too")
        parts: list[str] = []
        if deployment is not None:
            parts += ["deployments", deployment]
        if version is not None:
            parts += ["versions", version]
        return project_path(project, *parts, "environment-variables", *rest)

    def list(self, project: str, *, deployment: str | None = None, version: str | None = None) -> list[EnvVar]:
        """A level's variables, inherited ones first (``inheritance_type`` project/deployment); secrets' values are
        None."""
        return self._t.call(list[EnvVar], "GET", self._path(project, deployment, version))

    def create(
        self,
        project: str,
        name: str,
        value: str,
        *,
        secret: bool = False,
        deployment: str | None = None,
        version: str | None = None,
    ) -> EnvVar:
        body = {"name": name, "value": value, "secret": secret}
        return self._t.call(EnvVar, "POST", self._path(project, deployment, version), json=body)

    def update(
        self, project: str, var_id: str, *, deployment: str | None = None, version: str | None = None, **fields: Any
    ) -> EnvVar:
        """Change ``name``, ``value`` or ``secret`` of a variable of this level."""
        return self._t.call(EnvVar, "PATCH", self._path(project, deployment, version, var_id), json=fields)

    def delete(self, project: str, var_id: str, *, deployment: str | None = None, version: str | None = None) -> None:
        self._t.request("DELETE", self._path(project, deployment, version, var_id))

    def _own(self, project: str, name: str, deployment: str | None, version: str | None) -> EnvVar | None:
        return next(
            (
                e
                for e in self.list(project, deployment=deployment, version=version)
                if e.name == name and e.inheritance_type is None
            ),
            None,
        )

    def set(
        self,
        project: str,
        name: str,
        value: str,
        *,
        secret: bool = False,
        deployment: str | None = None,
        version: str | None = None,
    ) -> EnvVar:
        """Create the variable at this level, or change its value (and secrecy) if it exists."""
        existing = self._own(project, name, deployment, version)
        if existing is None:
            return self.create(project, name, value, secret=secret, deployment=deployment, version=version)
        return self.update(project, existing.id, deployment=deployment, version=version, value=value, secret=secret)

    def unset(self, project: str, name: str, *, deployment: str | None = None, version: str | None = None) -> None:
        """Delete the variable called ``name`` of this level (404 if this level has none)."""
        existing = self._own(project, name, deployment, version)
        if existing is None:
            where = "/".join(x for x in (project, deployment, version) if x)
            raise HarborClientError(404, "NOT_FOUND", f"no environment variable {name!r} at {where}")
        self.delete(project, existing.id, deployment=deployment, version=version)
