"""Domino's wire shapes for data sources (ops 47–52, mounted at ``/api/datasource``; the routes check each field by
hand, api/params.py and core/data_sources.py). :data:`INPUTS` is merged into schemas.INPUTS."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelharbor.api.openapi import JSON, Inputs, Takes

TYPES = (
    "S3Config, GenericS3Config (an S3-compatible store: host is its endpoint), PostgreSQLConfig, MySQLConfig, "
    "MariaDBConfig, SnowflakeConfig, GenericJDBCConfig, GenericODBCConfig (any case, the Config suffix optional)"
)


class DataSourceCredentialsV1(BaseModel):
    secretCredentials: dict[str, str] = Field(
        description="password (Basic), secretAccessKey (AWSIAMBasic) or token (OAuth): sealed, never returned."
    )
    visibleCredentials: dict[str, str] = Field(description="username (Basic) or accessKeyID (AWSIAMBasic).")


class DataSourcePermissionsV1(BaseModel):
    isEveryone: bool
    userAndOrganizationIds: list[str] = Field(description="Users (id or username) and teams of the organisation.")


class NewDataSourceV1(BaseModel):
    name: str
    dataSourceType: str = Field(description=TYPES)
    authType: str = Field(description="Basic; AWSIAMBasic for S3; OAuth for Snowflake; NoAuth for JDBC/ODBC.")
    credentialType: str = Field(description="Shared or Individual.")
    config: dict[str, str] = Field(description="The type's settings: see docs/dialects/domino.md.")
    credentials: DataSourceCredentialsV1
    permissions: DataSourcePermissionsV1
    description: str | None = None


class DataSourceUpdateV1(BaseModel):
    config: dict[str, str] | None = Field(None, description="Keys given replace theirs; '' removes an optional one.")
    credentials: DataSourceCredentialsV1 | None = Field(
        None, description="Shared: the owner's or an admin's; Individual: the caller's own."
    )
    permissions: DataSourcePermissionsV1 | None = None


class DataSourcesQuery(BaseModel):
    dataSourceNames: list[str] | None = None
    offset: int = Field(0, ge=0, le=10**9)
    limit: int = Field(10, ge=1, le=1000)


class DataSourceAuditQuery(BaseModel):
    dataSourceIds: list[str] | None = None
    dataSourceNames: list[str] | None = None
    eventKinds: list[str] | None = None
    startTime: str | None = Field(None, description="ISO-8601 date-time.")
    endTime: str | None = Field(None, description="ISO-8601 date-time.")


INPUTS: Inputs = {
    ("GET", "/v1/audit"): Takes(query=DataSourceAuditQuery),
    ("GET", "/v1/datasources"): Takes(query=DataSourcesQuery),
    ("POST", "/v1/datasources"): Takes({JSON: NewDataSourceV1}),
    ("PATCH", "/v1/datasources/{data_source_id}"): Takes({JSON: DataSourceUpdateV1}),
}
