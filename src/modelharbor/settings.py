"""Settings: the only place the environment is read (``MODELHARBOR_*`` variables or ``.env``).

Every field here is listed in ``docs/settings.md``; a test keeps the two in step.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELHARBOR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the SQLite database, local blobs and the key file.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite (WAL mode) at DATA_DIR/modelharbor.db."
    )
    blob_url: str | None = Field(
        None,
        description="Where file bytes live: a local folder path or file:// URL (default DATA_DIR/blobs), "
        "memory://, or s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret access key.")
    s3_allow_http: bool = Field(False, description="Allow plain-HTTP S3 endpoints (local test servers).")
    public_url: str | None = Field(
        None, description="Base URL put into links the server hands out; default: the request's own host."
    )
    secret_key: str | None = Field(
        None, description="Key for signing links and encrypting secrets; generated into DATA_DIR/secret_key if unset."
    )
    admin_user: str | None = Field(None, description="Admin user to ensure on start.")
    admin_password: str | None = Field(None, description="Password of ADMIN_USER.")
    admin_key: str | None = Field(None, description="API key of ADMIN_USER to ensure on start.")
    host: str = Field("127.0.0.1", description="Interface `modelharbor serve` binds to.")
    port: int = Field(8000, description="Port `modelharbor serve` listens on.")

    upload_session_ttl: int = Field(24 * 3600, description="Seconds an upload session stays open.")
    max_upload_size: int = Field(1024 * GiB, description="Largest file an upload session may declare (bytes).")
    max_chunk_size: int = Field(5 * GiB, description="Largest chunk of the native API (bytes).")
    max_chunks: int = Field(10_000, description="Most chunks one upload session may have.")
    max_single_upload_size: int = Field(
        5 * GiB, description="Largest file one request may upload, on every API (bytes); larger ones use a session."
    )
    kore_max_file_size: int = Field(25 * MiB, description="Kore.ai Mode-1 upload limit (bytes, inclusive).")
    kore_max_chunk_size: int = Field(100 * MiB, description="Kore.ai per-chunk limit (bytes).")
    link_ttl: int = Field(7 * 24 * 3600, description="Seconds a signed download link stays valid by default.")
    max_link_ttl: int = Field(30 * 24 * 3600, description="Longest lifetime a client may ask for a link.")
    max_archive_entries: int = Field(100_000, description="Most entries an imported model archive may hold.")
    jwt_access_ttl: int = Field(300, description="Seconds a UFDL access token (JWT) is valid.")
    jwt_refresh_ttl: int = Field(8 * 3600, description="Seconds a UFDL refresh token (JWT) is valid.")
    sweep_interval: int = Field(300, description="Seconds between sweeps of expired upload sessions.")
    pending_object_grace: int = Field(
        3600, ge=1, description="Seconds before the sweep deletes bytes a writer left unreferenced (crash orphans)."
    )
    workers: bool = Field(True, description="Run the background task runner inside the server process.")
    max_package_size: int = Field(8 * GiB, description="Largest deployment package (zip) an upload may send.")
    build_timeout: int = Field(1800, description="Seconds an environment build (pip install) may take.")
    max_import_size: int = Field(8 * GiB, description="Largest project import zip (upload, link or export) in bytes.")
    max_import_entries: int = Field(10_000, description="Most entries a project import zip may hold.")
    max_import_unpacked_size: int = Field(
        16 * GiB, description="Most bytes a project import zip may unpack to (counted while reading)."
    )
    allow_private_import_links: bool = Field(
        False, description="Let import links point at loopback, private, link-local or reserved addresses."
    )
    allow_http_import_links: bool = Field(False, description="Let import links use plain http (default: https only).")
    import_link_timeout: int = Field(600, description="Seconds the download of an import link may take in all.")
    log_level: str = Field("info", description="Log level of the server.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Server log lines: text (uvicorn's format) or json (one JSON object per line)."
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /metrics.")
    metrics_token: str | None = Field(
        None, description="When set, GET /metrics requires `Authorization: Bearer <this token>`."
    )

    # --- isolation of user code (docs/security.md) ---------------------------------------
    sandbox: Literal["auto", "bwrap", "off"] = Field(
        "auto",
        description="How user code runs: auto (isolated with bubblewrap where the machine allows it), bwrap "
        "(isolated or refuse to start any), off (never isolated: only the home organisation's code runs, unless "
        "SINGLE_TENANT).",
    )
    single_tenant: bool = Field(
        False, description="Trust every organisation's code: let it run even where it cannot be isolated."
    )
    sandbox_network: Literal["host", "none"] = Field(
        "host", description="Network of isolated user code: the host's, or none (its own loopback only)."
    )
    workload_memory: int = Field(
        4 * GiB, ge=0, description="Memory one instance of user code may use (bytes; 0: no limit)."
    )
    workload_cpus: float = Field(0, ge=0, description="CPU cores' worth of time one instance may use (0: no limit).")
    workload_processes: int = Field(512, ge=0, description="Processes and threads one instance may run (0: no limit).")
    workload_file_size: int = Field(
        16 * GiB, ge=0, description="Largest file one instance may write (bytes; 0: no limit)."
    )
    workload_uid_base: int = Field(
        1_100_000, ge=1000, description="First of the unprivileged uids isolated instances run as (root servers)."
    )

    # --- derived values ---------------------------------------------------------------
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelharbor.db').resolve()}"

    def resolved_blob_url(self) -> str:
        if self.blob_url:
            return self.blob_url
        return str((self.data_dir / "blobs").resolve())

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once and kept in DATA_DIR/secret_key (mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
