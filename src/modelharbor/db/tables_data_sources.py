"""Tables of data sources (Domino's data sources): connection settings, who may use them, their sealed credentials
and an audit log of what was done to them (core/data_sources.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class DataSourceRow(Base):
    """A data source of one organisation: its type, auth type and configuration (JSON, never a secret)."""

    __tablename__ = "data_sources"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    data_source_type: Mapped[str] = mapped_column(String(40))
    auth_type: Mapped[str] = mapped_column(String(40))
    credential_type: Mapped[str] = mapped_column(String(20))  # "Shared" | "Individual"
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[str] = mapped_column(Text)  # a JSON object of strings
    is_everyone: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DataSourceGrantRow(Base):
    """A user or team (Domino's organization) allowed to see and use a data source."""

    __tablename__ = "data_source_grants"
    data_source_id: Mapped[str] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True)
    grantee_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class DataSourceCredentialRow(Base):
    """A data source's credentials: the shared set (``holder`` "*") or one user's own (``holder`` their id). The
    visible part (user names, access key ids) is JSON; the secret part is sealed (core/secretbox.py)."""

    __tablename__ = "data_source_credentials"
    data_source_id: Mapped[str] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(32), primary_key=True)
    visible: Mapped[str] = mapped_column(Text)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class DataSourceAuditRow(Base):
    """One thing done to a data source; kept when the data source is deleted."""

    __tablename__ = "data_source_audit"
    __table_args__ = (Index("ix_data_source_audit_org_id_at", "org_id", "at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    data_source_id: Mapped[str] = mapped_column(String(24), index=True)
    data_source_name: Mapped[str] = mapped_column(String(200))
    data_source_type: Mapped[str] = mapped_column(String(40))
    event_kind: Mapped[str] = mapped_column(String(60))
    details: Mapped[str] = mapped_column(Text)  # a JSON object of strings (never a secret)
    performed_by: Mapped[str] = mapped_column(String(200))  # the username
    performed_by_id: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]
