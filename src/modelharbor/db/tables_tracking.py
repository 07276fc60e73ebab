"""Tracking tables (MLflow experiments, runs, metrics, params, tags, logged models, artifacts).

Times are MLflow's integer milliseconds since the epoch (``BigInteger``), as the protocol carries them.
Experiment ids are integers (MLflow shows them as strings); each organisation has one default experiment,
which the MLflow dialect also answers to as id ``"0"``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class ExperimentRow(Base):
    __tablename__ = "tracking_experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    creation_time: Mapped[int] = mapped_column(BigInteger)
    last_update_time: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_tracking_experiments_org_name"),)


class ExperimentTagRow(Base):
    __tablename__ = "tracking_experiment_tags"
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("tracking_experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "tracking_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("tracking_experiments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    user_id: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RunParamRow(Base):
    __tablename__ = "tracking_params"
    run_id: Mapped[str] = mapped_column(ForeignKey("tracking_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTagRow(Base):
    __tablename__ = "tracking_run_tags"
    run_id: Mapped[str] = mapped_column(ForeignKey("tracking_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricRow(Base):
    """Every logged metric value (the history), once per run, key, step, timestamp and value, as MLflow keeps them.

    NaN is stored as value 0 with ``is_nan`` set, so it is one value in the unique index (NULLs would all be distinct
    there, on SQLite and PostgreSQL alike); ``core/tracking/metrics.py`` inserts with ON CONFLICT DO NOTHING.
    ``model_id`` is the logged model the first insert of the row named, if any (MLflow's ``Metric.model_id``)."""

    __tablename__ = "tracking_metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("tracking_runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Float)  # 0 when is_nan
    is_nan: Mapped[bool] = mapped_column(Boolean)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        UniqueConstraint("run_id", "key", "step", "timestamp", "value", "is_nan", name="uq_tracking_metrics_identity"),
    )


class LatestMetricRow(Base):
    """A run's latest value of each metric, by MLflow's rule: the highest step, then the latest timestamp, then the
    larger value (NaN compared as 0). What runs show and searches filter."""

    __tablename__ = "tracking_latest_metrics"
    run_id: Mapped[str] = mapped_column(ForeignKey("tracking_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)  # NULL = NaN (SQLite cannot keep NaN)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)


class LoggedModelMetricRow(Base):
    """A metric of a logged model: a run metric logged with ``model_id`` (MLflow's ``LoggedModel.metrics``), once per
    model, run, key, step, timestamp and value (NaN as in ``tracking_metrics``)."""

    __tablename__ = "tracking_logged_model_metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("tracking_logged_models.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(ForeignKey("tracking_runs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Float)  # 0 when is_nan
    is_nan: Mapped[bool] = mapped_column(Boolean)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    dataset_name: Mapped[str | None] = mapped_column(String(500))
    dataset_digest: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        UniqueConstraint(
            "model_id",
            "run_id",
            "key",
            "step",
            "timestamp",
            "value",
            "is_nan",
            name="uq_tracking_logged_model_metrics_identity",
        ),
    )


class LoggedModelRow(Base):
    """An MLflow 3 logged model (id ``m-<32 hex>``); its files live under ``<exp>/models/<id>/artifacts``."""

    __tablename__ = "tracking_logged_models"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("tracking_experiments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    model_type: Mapped[str | None] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    creator_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    creation_timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    last_updated_timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class ArtifactRow(Base):
    """A proxied MLflow artifact: its path (``<experiment_id>/...``) and the file holding its bytes."""

    __tablename__ = "tracking_artifacts"
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("tracking_experiments.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
