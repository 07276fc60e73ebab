"""The SDK's calls for organisations (superusers only): mixed into :class:`modelharbor.sdk.client.Client`.

An organisation or a user is named by its id or its name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class OrgsMixin:
    """``GET/POST /orgs``, ``GET/PATCH /orgs/{org}``, ``GET /orgs/{org}/members``, ``PUT /orgs/{org}/members/{user}``
    — through the Client's ``_json`` (its retries and error handling)."""

    def list_orgs(self) -> list[dict[str, Any]]:
        """Every organisation (id, name, created_at, members)."""
        return self._json("GET", "/orgs")

    def create_org(self, name: str) -> dict[str, Any]:
        """A new organisation; the calling superuser is its owner."""
        return self._json("POST", "/orgs", json={"name": name})

    def get_org(self, org: str) -> dict[str, Any]:
        return self._json("GET", f"/orgs/{_seg(org)}")

    def rename_org(self, org: str, name: str) -> dict[str, Any]:
        return self._json("PATCH", f"/orgs/{_seg(org)}", json={"name": name})

    def org_members(self, org: str) -> list[dict[str, Any]]:
        """Its members (user_id, username, org_id, role, is_superuser), by username."""
        return self._json("GET", f"/orgs/{_seg(org)}/members")

    def move_user(self, user: str, org: str, *, role: str | None = None, from_org: str | None = None) -> dict[str, Any]:
        """Move ``user`` into ``org`` out of the organisation they were in (``from_org`` when several); their API
        keys go with them. ``role`` defaults to ``member`` (a user already in ``org`` keeps theirs)."""
        body = {k: v for k, v in {"role": role, "from_org": from_org}.items() if v is not None}
        return self._json("PUT", f"/orgs/{_seg(org)}/members/{_seg(user)}", json=body)
