"""Datasets and their content-addressed versions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ._types import UTCDateTime, metadata

__all__ = ["dataset_versions", "datasets"]

datasets = Table(
    "mw_datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
)

dataset_versions = Table(
    "mw_dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("mw_datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("schema", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("source", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "content_hash"),
)
