"""Shared fixtures: every contract test runs over a real SQLite file and a real PostgreSQL.

PostgreSQL comes from MODELWORKS_TEST_POSTGRES_URL; each test gets its own schema (via
search_path), so tests never see each other's rows. Without the URL the PostgreSQL cases are
skipped with a visible reason — except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

import modelworks as mw
from modelworks.config import Settings

BACKENDS = ["sqlite", "postgres"]


def postgres_base_url() -> str | None:
    return Settings().test_postgres_url


def _require_postgres() -> str:
    url = postgres_base_url()
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL suite: set MODELWORKS_TEST_POSTGRES_URL")
        pytest.skip("PostgreSQL tests skipped: MODELWORKS_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema (dropped afterwards)."""
    base = _require_postgres()
    schema = f"mwt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(workspace location, artifact root) for the parametrised backend."""
    if backend == "sqlite":
        return str(tmp_path / "ws"), str(tmp_path / "ws" / "artifacts")
    url = request.getfixturevalue("pg_schema_url")
    return url, str(tmp_path / "artifacts")


@pytest.fixture
def workspace(db_location: tuple[str, str]) -> Iterator[mw.Workspace]:
    location, artifacts = db_location
    ws = mw.Workspace(location, artifacts=artifacts, user="alice")
    try:
        yield ws
    finally:
        ws.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A local S3-compatible server (moto) on a free port; yields fsspec storage options."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    opts = {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}",
                              "region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing",
                 ).create_bucket(Bucket="mw-test")
    try:
        yield opts
    finally:
        server.stop()
