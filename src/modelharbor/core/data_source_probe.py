"""Connecting to a data source to see whether its settings and credentials work (core/data_sources.py's
``test_connection``): PostgreSQL (psycopg), MySQL/MariaDB (pymysql) and S3 or S3-compatible
stores (boto3). Every attempt has a short timeout; every failure is an answer ``(False, the driver's message)``,
never an exception. Called outside any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping


def probe(
    kind: str, config: Mapping[str, str], visible: Mapping[str, str], secret: Mapping[str, str], timeout: float
) -> tuple[bool, str]:
    try:
        if kind == "PostgreSQLConfig":
            return _postgres(config, visible, secret, timeout)
        if kind in ("MySQLConfig", "MariaDBConfig"):
            return _mysql(config, visible, secret, timeout)
        if kind in ("S3Config", "GenericS3Config"):
            return _s3(kind, config, visible, secret, timeout)
    except Exception as exc:  # noqa: BLE001 - any driver failure is the answer
        return False, f"{type(exc).__name__}: {exc}".strip()
    return False, f"this server cannot test {kind} connections (PostgreSQL, MySQL/MariaDB and S3 only)"


def _postgres(config, visible, secret, timeout) -> tuple[bool, str]:
    import psycopg

    with psycopg.connect(
        host=config["host"],
        port=int(config.get("port") or 5432),
        dbname=config["database"],
        user=visible.get("username"),
        password=secret.get("password"),
        sslmode=config.get("sslmode") or "prefer",
        connect_timeout=max(1, int(timeout)),
        options=f"-c statement_timeout={int(timeout * 1000)}",
        autocommit=True,
    ) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
    return True, f"connected: {version.split(',')[0]}"


def _mysql(config, visible, secret, timeout) -> tuple[bool, str]:
    import pymysql

    conn = pymysql.connect(
        host=config["host"],
        port=int(config.get("port") or 3306),
        database=config["database"],
        user=visible.get("username"),
        password=secret.get("password"),
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
    finally:
        conn.close()
    return True, f"connected: MySQL {version}"


def _s3(kind, config, visible, secret, timeout) -> tuple[bool, str]:
    import boto3
    from botocore.config import Config

    endpoint = None
    if kind == "GenericS3Config":
        host = config["host"].rstrip("/")
        endpoint = host if "://" in host else f"https://{host}"
        if config.get("port"):
            endpoint += f":{config['port']}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=config.get("region") or "us-east-1",
        aws_access_key_id=visible.get("accessKeyID"),
        aws_secret_access_key=secret.get("secretAccessKey"),
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    bucket = config["bucket"]
    client.head_bucket(Bucket=bucket)
    if config.get("subfolder"):
        client.list_objects_v2(Bucket=bucket, Prefix=config["subfolder"].strip("/") + "/", MaxKeys=1)
    return True, f"connected: bucket {bucket!r} is reachable"
