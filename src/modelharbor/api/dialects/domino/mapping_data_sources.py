"""Domino's wire shapes for data sources (ops 47–52): pure functions from core/data_sources.py's entities. No
credential appears here: the entities carry none."""

from __future__ import annotations

from typing import Any

from modelharbor.api.dialects.domino.mapping import iso
from modelharbor.core.data_sources import AuditEvent, ConnectionTest, DataSource


def data_source(d: DataSource) -> dict[str, Any]:
    """``DataSourceEnvelopeV1`` (the object itself; Domino names it an envelope)."""
    return {
        "id": d.id,
        "name": d.name,
        "displayName": d.name,
        "description": d.description,
        "dataSourceType": d.data_source_type,
        "authType": d.auth_type,
        "credentialType": d.credential_type,
        "config": dict(d.config),
        "ownerId": d.owner_id or "",
        "ownerUsername": d.owner_username,
        "permissions": {"isEveryone": d.is_everyone, "userAndOrganizationIds": list(d.grantee_ids)},
        "lastUpdated": iso(d.updated_at),
    }


def audit_event(e: AuditEvent) -> dict[str, Any]:
    """``DataSourceAuditDataV1``."""
    return {
        "dataSourceId": e.data_source_id,
        "dataSourceName": e.data_source_name,
        "dataSourceType": e.data_source_type,
        "eventKind": e.event_kind,
        "metadata": dict(e.details),
        "performedBy": e.performed_by,
        "timestamp": iso(e.timestamp),
    }


def connection_test(t: ConnectionTest) -> dict[str, Any]:
    """ModelHarbor's answer to ``POST /api/datasource/v1/datasources/{id}/test``."""
    return {"ok": t.ok, "message": t.message, "dataSourceType": t.data_source_type, "elapsedMs": t.elapsed_ms}
