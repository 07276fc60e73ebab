"""Serving tables: environments with their tags and builds, deployments, their versions and package revisions,
requests and environment variables. Everything hangs off a project (``registry_projects``), so one project holds registered models and
the deployments that serve them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class EnvironmentRow(Base):
    """A custom environment: a named set of tags, each built from a base environment plus requirements. A
    project's (UbiOps') environments have ``project_id``; an organisation's (Domino's, core/serving/
    environment_catalog.py) have ``org_id`` instead, with an owner, a visibility and revisions (the builds of
    their tag ``latest``). The built-in base environments (``python3-11`` …) are not rows."""

    __tablename__ = "serving_environments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    # an organisation's environment (no project): who owns it and who sees it
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    visibility: Mapped[str | None] = mapped_column(String(16))  # global | private | organization
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    restricted_build_id: Mapped[str | None] = mapped_column(String(36))  # the restricted revision
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    base_environment: Mapped[str | None] = mapped_column(String(64))  # of tags built without naming one
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EnvironmentTagRow(Base):
    """A tag of a custom environment: what a deployment version names (``environment_tag``). Its state is that
    of its newest build (none yet: the environment's base environment as it is)."""

    __tablename__ = "serving_environment_tags"
    __table_args__ = (UniqueConstraint("environment_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("serving_environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    supports_request_format: Mapped[bool] = mapped_column(Boolean, default=True)
    latest_build_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EnvironmentBuildRow(Base):
    """One build of an environment tag: an environment package (requirements.txt, ubiops.yaml) on a base."""

    __tablename__ = "serving_environment_builds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("serving_environment_tags.id", ondelete="CASCADE"), index=True)
    # the package it builds, as API v2.1 calls it (an "environment revision"): its first build's id, shared by rebuilds
    revision_id: Mapped[str] = mapped_column(String(36))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="RESTRICT"), index=True)
    base_environment: Mapped[str] = mapped_column(String(64))
    requirements: Mapped[str | None] = mapped_column(Text)  # requirements.txt of the package, once read
    dependency_files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name -> text, once read
    # a revision given as fields rather than a package (Domino's: image, Dockerfile instructions, summary …);
    # its requirements are set when it is made (file_id None)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued | building | success | failed
    error_message: Mapped[str | None] = mapped_column(Text)
    build_log: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int | None] = mapped_column(BigInteger)  # bytes of the package
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class DeploymentRow(Base):
    __tablename__ = "serving_deployments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    input_type: Mapped[str] = mapped_column(String(16))  # structured | plain
    output_type: Mapped[str] = mapped_column(String(16))
    input_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    output_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    supports_request_format: Mapped[bool] = mapped_column(Boolean, default=True)
    default_version_id: Mapped[str | None] = mapped_column(String(36))
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeploymentVersionRow(Base):
    __tablename__ = "serving_versions"
    __table_args__ = (UniqueConstraint("deployment_id", "version"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("serving_deployments.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environment: Mapped[str] = mapped_column(String(256))  # a base environment name or a custom one's name
    environment_tag: Mapped[str | None] = mapped_column(String(128))  # a custom environment's tag (base: None)
    minimum_instances: Mapped[int] = mapped_column(Integer, default=0)
    maximum_instances: Mapped[int] = mapped_column(Integer, default=5)
    maximum_idle_time: Mapped[int] = mapped_column(Integer, default=300)
    request_retention_mode: Mapped[str] = mapped_column(String(16), default="full")
    request_retention_time: Mapped[int] = mapped_column(Integer, default=604800)
    maximum_queue_size: Mapped[int] = mapped_column(Integer, default=100)
    instance_type_group_name: Mapped[str | None] = mapped_column(String(256))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # other fields the client sends
    active_revision_id: Mapped[str | None] = mapped_column(String(36))
    latest_revision_id: Mapped[str | None] = mapped_column(String(36))
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RevisionRow(Base):
    """One uploaded deployment package of a version, and its build."""

    __tablename__ = "serving_revisions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("serving_versions.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | building | success | failed
    error_message: Mapped[str | None] = mapped_column(Text)
    build_log: Mapped[str] = mapped_column(Text, default="")
    has_request_method: Mapped[bool | None] = mapped_column(Boolean)
    has_requests_method: Mapped[bool | None] = mapped_column(Boolean)
    build_id: Mapped[str | None] = mapped_column(String(36))  # the build asked for last; older tasks stand down
    # the environment the last successful build ran in (what the revision serves with): base, the environment
    # tag's requirements and the environment build they came from; None before the first successful build
    environment_base: Mapped[str | None] = mapped_column(String(64))
    environment_requirements: Mapped[str | None] = mapped_column(Text)
    environment_build_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class DeploymentRequestRow(Base):
    """A request kept for later reading: batch (asynchronous) requests always; direct ones as the version's
    retention mode says (``none``: not kept, ``metadata``: without data, ``full``: with data and result)."""

    __tablename__ = "serving_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("serving_deployments.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("serving_versions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | processing | completed | failed
    request_data: Mapped[Any] = mapped_column(JSON, nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    timeout: Mapped[int] = mapped_column(Integer, default=300)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class EnvVarRow(Base):
    """An environment variable of a project, deployment or version (the narrowest level wins). Values are
    encrypted at rest with the server key; a secret's value is never returned."""

    __tablename__ = "serving_env_vars"  # names are unique per level: the service checks under a project lock
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("serving_deployments.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[str | None] = mapped_column(ForeignKey("serving_versions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class PipelineRow(Base):
    __tablename__ = "serving_pipelines"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    input_type: Mapped[str] = mapped_column(String(16))
    output_type: Mapped[str] = mapped_column(String(16))
    input_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    output_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    default_version_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PipelineVersionRow(Base):
    """A version of a pipeline: its objects (deployments it calls) and the attachments between them, stored as
    they were validated (each object and attachment with its own id)."""

    __tablename__ = "serving_pipeline_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "version"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("serving_pipelines.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_retention_mode: Mapped[str] = mapped_column(String(16), default="full")
    request_retention_time: Mapped[int] = mapped_column(Integer, default=604800)
    objects: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    meta: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PipelineRequestRow(Base):
    """A pipeline request kept for later reading: batch (asynchronous) ones always; direct ones as the pipeline
    version's retention mode says (``none``: not kept, ``metadata``: without data and result, ``full``: with
    them). ``deployment_requests`` is what each object did, in the order they finished: ``[{id, pipeline_object,
    deployment, version, status, error_message, started_at, finished_at}]`` (ids of the deployment requests)."""

    __tablename__ = "serving_pipeline_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("serving_pipelines.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("serving_pipeline_versions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | processing | completed | failed | cancelled
    request_data: Mapped[Any] = mapped_column(JSON, nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    timeout: Mapped[int] = mapped_column(Integer, default=3600)
    deployment_requests: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
