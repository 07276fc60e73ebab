"""``client.data_sources``: named connection settings for external stores (``/api/v1/data-sources``) — S3 and
S3-compatible stores, PostgreSQL, MySQL/MariaDB, Snowflake, JDBC, ODBC. Secret credentials go in and never come
back; ``test(id)`` asks the server to connect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelharbor.sdk.http import seg
from modelharbor.sdk.wire import ConnectionTest, DataSource, DataSourceEvent

if TYPE_CHECKING:
    from modelharbor.sdk.client import Client


class DataSources:
    def __init__(self, client: Client):
        self._t = client._transport

    def list(self, *, names: Sequence[str] = (), offset: int = 0, limit: int = 100) -> list[DataSource]:
        """The data sources you may see, by name (``names``: only these)."""
        params: dict[str, Any] = {"name": list(names), "offset": offset, "limit": limit}
        return self._t.call(list[DataSource], "GET", "/data-sources", params=params)

    def get(self, data_source_id: str) -> DataSource:
        return self._t.call(DataSource, "GET", f"/data-sources/{seg(data_source_id)}")

    def create(
        self,
        name: str,
        data_source_type: str,
        *,
        auth_type: str,
        config: Mapping[str, str],
        visible: Mapping[str, str] | None = None,
        secret: Mapping[str, str] | None = None,
        credential_type: str = "Shared",
        everyone: bool = False,
        grantees: Sequence[str] = (),
        description: str = "",
    ) -> DataSource:
        """A new data source: ``config`` the type's settings, ``visible``/``secret`` its credentials (the secret ones
        are sealed by the server and never returned), ``grantees`` users (id or username) and teams allowed."""
        body = {
            "name": name,
            "data_source_type": data_source_type,
            "auth_type": auth_type,
            "credential_type": credential_type,
            "config": dict(config),
            "credentials": {"visible": dict(visible or {}), "secret": dict(secret or {})},
            "permissions": {"is_everyone": everyone, "grantee_ids": list(grantees)},
            "description": description,
        }
        return self._t.call(DataSource, "POST", "/data-sources", json=body)

    def update(
        self,
        data_source_id: str,
        *,
        config: Mapping[str, str] | None = None,
        visible: Mapping[str, str] | None = None,
        secret: Mapping[str, str] | None = None,
        everyone: bool | None = None,
        grantees: Sequence[str] | None = None,
    ) -> DataSource:
        """Change settings (keys given replace theirs), credentials (give ``visible`` and/or ``secret``: the whole
        set), permissions (give ``everyone`` and/or ``grantees``: both replaced)."""
        body: dict[str, Any] = {}
        if config is not None:
            body["config"] = dict(config)
        if visible is not None or secret is not None:
            body["credentials"] = {"visible": dict(visible or {}), "secret": dict(secret or {})}
        if everyone is not None or grantees is not None:
            body["permissions"] = {"is_everyone": bool(everyone), "grantee_ids": list(grantees or ())}
        return self._t.call(DataSource, "PATCH", f"/data-sources/{seg(data_source_id)}", json=body)

    def delete(self, data_source_id: str) -> DataSource:
        return self._t.call(DataSource, "DELETE", f"/data-sources/{seg(data_source_id)}")

    def test(self, data_source_id: str) -> ConnectionTest:
        """Ask the server to connect; ``ok`` False with the driver's message when it cannot."""
        return self._t.call(ConnectionTest, "POST", f"/data-sources/{seg(data_source_id)}/test")

    def audit(
        self,
        *,
        ids: Sequence[str] = (),
        names: Sequence[str] = (),
        kinds: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[DataSourceEvent]:
        """The organisation's audit events, oldest first (admins)."""
        params: dict[str, Any] = {
            "data_source_id": list(ids),
            "data_source_name": list(names),
            "event_kind": list(kinds),
        }
        if start is not None:
            params["start"] = start.isoformat()
        if end is not None:
            params["end"] = end.isoformat()
        return self._t.call(list[DataSourceEvent], "GET", "/data-source-audit", params=params)
