"""Compute tables: hardware tiers (the CPU, memory and GPU sizes workloads run with), per organisation.

A tier's id is chosen by whoever creates it (Domino's ``NewHardwareTierV1.id``, e.g. ``small``) and is unique within
its organisation; memory sizes are bytes. What ModelHarbor keeps but does not act on (availability zones, pod
customisation, over-provisioning, …) is echoed back from ``extra`` (JSON).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class HardwareTierRow(Base):
    __tablename__ = "hardware_tiers"
    __table_args__ = (UniqueConstraint("org_id", "tier_id"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    tier_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(256))
    cores: Mapped[float] = mapped_column(Float)
    cores_limit: Mapped[float | None] = mapped_column(Float)
    memory: Mapped[int] = mapped_column(BigInteger)
    memory_limit: Mapped[int | None] = mapped_column(BigInteger)
    memory_units: Mapped[str] = mapped_column(String(8), default="GiB")
    gpu_key: Mapped[str | None] = mapped_column(String(100))
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    cents_per_minute: Mapped[float] = mapped_column(Float, default=0.0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    is_global: Mapped[bool] = mapped_column(Boolean, default=True)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    node_pool: Mapped[str] = mapped_column(String(256), default="default")
    max_executions: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[str] = mapped_column(Text, default="{}")  # JSON: Domino fields kept as given
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
