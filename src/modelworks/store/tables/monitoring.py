"""Monitoring: reference profiles of model versions and the results of monitor runs."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from ._types import UTCDateTime, metadata

__all__ = ["monitor_runs", "reference_profiles"]

# The reference a version's monitoring compares with (profile JSON in the artifact store).
reference_profiles = Table(
    "mw_reference_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("source", String(300), nullable=False),  # training | validation | dataset:NAME:V
    Column("data_hash", String(64), nullable=True),
    Column("rows", BigInteger, nullable=False),
    Column("profile_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("model_version_id", "source"),
)

# One row per monitor run: queryable by a dashboard (Grafana reads SQL), JSON in artifacts.
monitor_runs = Table(
    "mw_monitor_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("reference_id", Integer, ForeignKey("mw_reference_profiles.id"), nullable=False),
    Column("window_start", UTCDateTime, nullable=True),
    Column("window_end", UTCDateTime, nullable=True),
    Column("source", String(64), nullable=False),  # prediction-log | data
    Column("rows", BigInteger, nullable=False),
    Column("drift_share", Float, nullable=True),
    Column("dataset_drift", Boolean, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("result_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_monitor_runs_version", "model_version_id", "created_at"),
)
