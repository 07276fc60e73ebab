"""``client.access_requests``: ask a project's owner for a collaborator role, and (owners, admins) see and decide
the requests (``/api/v1/access-requests``, ``/api/v1/projects/{id}/access-requests``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelharbor.sdk.http import seg
from modelharbor.sdk.wire import AccessRequest

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


class AccessRequests:
    """A project is named by its name or its 24-hex id (``client.projects.get``)."""

    def __init__(self, client: Client):
        self._client = client
        self._t = client._transport

    def _pid(self, project: str) -> str:
        return seg(self._client.projects.get(project).id)

    def ask(self, project: str, *, role: str | None = None, message: str | None = None) -> AccessRequest:
        """Ask for ``role`` (Contributor when None) on the project; asking again updates the open request."""
        body: dict[str, Any] = {k: v for k, v in (("role", role), ("message", message)) if v is not None}
        return self._t.call(AccessRequest, "POST", f"/projects/{self._pid(project)}/access-requests", json=body)

    def list(self, project: str | None = None, *, status: str = "Pending") -> list[AccessRequest]:
        """A project's requests (its owner, admins), or without ``project`` those you decide or made."""
        url = f"/projects/{self._pid(project)}/access-requests" if project else "/access-requests"
        return self._t.call(list[AccessRequest], "GET", url, params={"status": status})

    def approve(self, project: str, request_id: str, *, role: str | None = None) -> AccessRequest:
        """Approve: the user becomes a collaborator with the role asked for (or ``role``)."""
        url = f"/projects/{self._pid(project)}/access-requests/{seg(request_id)}/approve"
        return self._t.call(AccessRequest, "POST", url, json={"role": role} if role else {})

    def decline(self, project: str, request_id: str) -> AccessRequest:
        url = f"/projects/{self._pid(project)}/access-requests/{seg(request_id)}/decline"
        return self._t.call(AccessRequest, "POST", url)
