"""Serving: deployments (endpoints) and their history, prediction-log files, feedback."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from ._types import UTCDateTime, metadata

__all__ = ["deployment_history", "deployments", "feedback", "prediction_files"]

# An endpoint: a traffic split over model URIs, optional shadows, an on/off switch.
deployments = Table(
    "mw_deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # active | disabled
    Column("spec", JSON, nullable=False),  # {"routes": [{"model", "weight"}], "shadows": [...]}
    Column("fallback", String(300), nullable=True),  # a model URI served while disabled
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

deployment_history = Table(
    "mw_deployment_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", Integer, ForeignKey("mw_deployments.id"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Index("ix_mw_deployment_history_deployment", "deployment_id", "id"),
)

# Compacted prediction-log files (Parquet in the artifact store), partitioned by model and day.
prediction_files = Table(
    "mw_prediction_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD (UTC)
    Column("artifact_sha256", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("min_ts", UTCDateTime, nullable=False),
    Column("max_ts", UTCDateTime, nullable=False),
    Column("segment", String(256), nullable=False, unique=True),  # journal segment compacted
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_mw_prediction_files_model_day", "model", "day"),
)

# Ground truth for logged predictions (id REQUEST_ID:ROW), for monitoring.
feedback = Table(
    "mw_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(80), nullable=False),
    Column("label", JSON, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Index("ix_mw_feedback_prediction", "prediction_id"),
)
