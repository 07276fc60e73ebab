"""``client.keys``, ``client.users``, ``client.orgs`` and ``client.tasks``: API keys, users (admins), organisations
(superusers), background tasks and imported models.

A user or an organisation is named by its id or its name; a key by its id, or an unambiguous start of its id (or
its shown prefix, ``mh_AbCdE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelharbor.sdk.errors import HarborClientError, invalid
from modelharbor.sdk.http import seg
from modelharbor.sdk.wire import ImportedModel, Key, Member, Org, Task, User

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client

ROLES = ("viewer", "member", "admin", "owner")


class Keys:
    """``/api/v1/keys``."""

    def __init__(self, client: Client):
        self._t = client._transport

    def list(self, *, username: str | None = None, all_users: bool = False) -> list[Key]:
        """Your keys; ``all_users``: every key of the organisation (admins); ``username``: that user's keys (admins,
        on a server that takes it). Never their secrets."""
        params: dict[str, Any] = {}
        if all_users:
            params["all"] = "true"
        if username:
            params["username"] = username
        keys = self._t.call(list[Key], "GET", "/keys", params=params)
        return keys

    def create(self, name: str, *, username: str | None = None, expires_in_days: int | None = None) -> Key:
        """A new key (for ``username``: admins); its secret is in ``key.key``, now and never again."""
        if not name or len(name) > 200:
            raise invalid("a key's name is 1 to 200 characters")
        body: dict[str, Any] = {"name": name}
        if username is not None:
            body["username"] = username
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return self._t.call(Key, "POST", "/keys", json=body)

    def revoke(self, key: str) -> Key:
        """Revoke a key by its id, an unambiguous start of its id, or its shown prefix (``mh_AbCdE``)."""
        try:
            return self._t.call(Key, "DELETE", f"/keys/{seg(key)}")
        except HarborClientError as exc:
            if exc.status != 404 or exc.code == "UNSUPPORTED_BY_SERVER":
                raise
            found = self.find(key)
            if found is None or found.id == key:
                raise
            return self._t.call(Key, "DELETE", f"/keys/{seg(found.id)}")

    def find(self, key: str) -> Key | None:
        """The one key whose id starts with ``key``, or whose shown prefix it is; None when none does; an error
        naming them when several do."""
        try:
            keys = self.list(all_users=True)
        except HarborClientError as exc:
            if exc.status != 403:
                raise
            keys = self.list()
        matches = [k for k in keys if k.id.startswith(key) or k.prefix == key]
        if len(matches) > 1:
            ids = ", ".join(k.id for k in matches)
            raise HarborClientError(400, "AMBIGUOUS", f"{key!r} is the start of several keys ({ids}): give more of it")
        return matches[0] if matches else None


class Users:
    """``/api/v1/users`` (admins): the users of your organisation."""

    def __init__(self, client: Client):
        self._t = client._transport

    def list(self, *, org: str | None = None) -> list[User]:
        """Admins: the users of their organisation. Superusers: every user of every organisation (a row per
        membership), or of ``org`` (id or name)."""
        return self._t.call(list[User], "GET", "/users", params={"org": org} if org else {})

    def get(self, user: str) -> User:
        return self._t.call(User, "GET", f"/users/{seg(user)}")

    def create(
        self, username: str, *, role: str = "member", password: str | None = None, org: str | None = None
    ) -> User:
        """A new user of your organisation (superusers: of ``org``) with ``role`` (viewer, member, admin, owner; at
        most your own) and ``password`` (at least 12 characters), or none: then they use API keys only."""
        role = role.lower()
        if role not in ROLES:
            raise invalid(f"unknown role {role!r}: use viewer, member, admin or owner")
        if not username or not username.strip():
            raise invalid("a username is required")
        body: dict[str, Any] = {"username": username, "role": role}
        if password is not None:
            body["password"] = password
        if org is not None:
            body["org"] = org
        return self._t.call(User, "POST", "/users", json=body)

    def delete(self, user: str) -> None:
        """Delete a user (their keys stop working)."""
        self._t.request("DELETE", f"/users/{seg(user)}")

    def set_password(self, user: str, password: str, *, current_password: str | None = None) -> None:
        """Set a user's password (your own may need ``current_password``)."""
        body: dict[str, Any] = {"password": password}
        if current_password is not None:
            body["current_password"] = current_password
        self._t.request("PUT", f"/users/{seg(user)}/password", json=body)


class Orgs:
    """``/api/v1/orgs`` (superusers only)."""

    def __init__(self, client: Client):
        self._t = client._transport

    def list(self) -> list[Org]:
        """Every organisation (id, name, created_at, members)."""
        return self._t.call(list[Org], "GET", "/orgs")

    def create(self, name: str) -> Org:
        """A new organisation; the calling superuser is its owner."""
        return self._t.call(Org, "POST", "/orgs", json={"name": name})

    def get(self, org: str) -> Org:
        return self._t.call(Org, "GET", f"/orgs/{seg(org)}")

    def rename(self, org: str, name: str) -> Org:
        return self._t.call(Org, "PATCH", f"/orgs/{seg(org)}", json={"name": name})

    def members(self, org: str) -> list[Member]:
        """Its members (user_id, username, org_id, role, is_superuser), by username."""
        return self._t.call(list[Member], "GET", f"/orgs/{seg(org)}/members")

    def move_user(self, user: str, org: str, *, role: str | None = None, from_org: str | None = None) -> Member:
        """Move ``user`` into ``org`` out of the organisation they were in (``from_org`` when several); their API
        keys go with them. ``role`` defaults to ``member`` (a user already in ``org`` keeps theirs)."""
        body = {k: v for k, v in {"role": role, "from_org": from_org}.items() if v is not None}
        return self._t.call(Member, "PUT", f"/orgs/{seg(org)}/members/{seg(user)}", json=body)


class Tasks:
    """``/api/v1/tasks`` and ``/api/v1/imports`` (models brought in by a Kore.ai import)."""

    def __init__(self, client: Client):
        self._t = client._transport

    def get(self, task_id: str) -> Task:
        """A background task's status and percent complete."""
        return self._t.call(Task, "GET", f"/tasks/{seg(task_id)}")

    def imported_model(self, model_id: str) -> ImportedModel:
        """A model brought in by an import, with its status (importing, ready, failed)."""
        return self._t.call(ImportedModel, "GET", f"/imports/{seg(model_id)}")
