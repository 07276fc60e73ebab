"""Plain factory functions shared by tests (not fixtures)."""

from __future__ import annotations

from modelharbor.core.clock import new_hex, now
from modelharbor.db.tables import MembershipRow, OrganisationRow, UserRow
from modelharbor.domain.principal import Principal


def member_of_new_org(services, role: str = "owner") -> Principal:
    """A non-superuser principal in a fresh organisation of its own."""
    with services.db.uow() as db:
        org = OrganisationRow(id=new_hex(), name=f"org-{new_hex(4)}", created_at=now())
        user = UserRow(id=new_hex(), username=f"u-{new_hex(4)}", is_superuser=False, created_at=now())
        db.add_all([org, user])
        db.flush()
        db.add(MembershipRow(org_id=org.id, user_id=user.id, role=role))
        name, org_name = user.username, org.name
    return services.identity.principal_for(name, org_name)


def in_same_org(services, principal: Principal, role: str) -> Principal:
    """Another (non-superuser) member of ``principal``'s organisation, with ``role``."""
    with services.db.uow() as db:
        user = UserRow(id=new_hex(), username=f"u-{new_hex(4)}", is_superuser=False, created_at=now())
        db.add(user)
        db.flush()
        db.add(MembershipRow(org_id=principal.org_id, user_id=user.id, role=role))
        org_name = db.get(OrganisationRow, principal.org_id).name
        name = user.username
    return services.identity.principal_for(name, org_name)


def two_step_attachments() -> list[dict]:
    """Attachments of a pipeline ``pipeline_start → first → second → pipeline_end`` over deployments that take
    ``n`` and answer ``m`` (each object's ``m`` is the next one's ``n``). A fresh list each call."""
    return [
        {
            "destination_name": "first",
            "sources": [
                {
                    "source_name": "pipeline_start",
                    "mapping": [{"source_field_name": "n", "destination_field_name": "n"}],
                }
            ],
        },
        {
            "destination_name": "second",
            "sources": [
                {"source_name": "first", "mapping": [{"source_field_name": "m", "destination_field_name": "n"}]}
            ],
        },
        {
            "destination_name": "pipeline_end",
            "sources": [
                {"source_name": "second", "mapping": [{"source_field_name": "m", "destination_field_name": "m"}]}
            ],
        },
    ]
