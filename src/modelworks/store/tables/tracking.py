"""Experiments, runs, params, tags and metrics."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from ._types import UTCDateTime, metadata

__all__ = ["experiments", "latest_metrics", "metrics", "params", "run_artifacts", "runs", "tags"]

experiments = Table(
    "mw_experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
)

runs = Table(
    "mw_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("mw_experiments.id"), nullable=False),
    Column("parent_id", String(32), ForeignKey("mw_runs.id"), nullable=True),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", UTCDateTime, nullable=False),
    Column("end_time", UTCDateTime, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("error", Text, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("git_diff_hash", String(64), nullable=True),
    Column("python_version", String(32), nullable=False),
    Column("packages_hash", String(64), nullable=False),
    Column("host", String(256), nullable=False),
    Column("metric_count", BigInteger, nullable=False, default=0),
    Index("ix_mw_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_mw_runs_parent", "parent_id"),
)

params = Table(
    "mw_params",
    metadata,
    Column("run_id", String(32), ForeignKey("mw_runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_mw_params_key_value", "key", "value"),
)

tags = Table(
    "mw_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("mw_runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every point, append-only; value NULL stands for NaN (SQLite cannot store NaN, so both
# backends use the same encoding). No foreign key: the batch writer inserts in bulk and the
# run is known to exist; an index serves history reads.
metrics = Table(
    "mw_metrics",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_mw_metrics_run_key_step", "run_id", "key", "step"),
)

# The latest point per (run, key): what search filters and sorts on, like a materialised view.
latest_metrics = Table(
    "mw_latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("mw_runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_mw_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "mw_run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("mw_runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)
