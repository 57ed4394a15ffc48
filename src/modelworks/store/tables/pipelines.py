"""Pipelines: runs of a pipeline, their step executions, and the step cache."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from ._types import UTCDateTime, metadata

__all__ = ["pipeline_runs", "step_cache", "step_runs"]

# One execution of a pipeline: its parameters, executor, DAG and outcome; ``run_id`` is the
# tracked (parent) run its steps' runs hang under.
pipeline_runs = Table(
    "mw_pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(300), nullable=False),  # module:function or a name
    Column("run_id", String(32), ForeignKey("mw_runs.id"), nullable=True),
    Column("status", String(16), nullable=False),  # RUNNING | FINISHED | FAILED
    Column("executor", String(32), nullable=False),
    Column("params", JSON, nullable=False),
    Column("dag", JSON, nullable=False),  # nodes: id, step, inputs (node ids), params
    Column("outputs", JSON, nullable=False),  # pipeline output -> node id / artifact
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_pipeline_runs_pipeline", "pipeline", "started_at"),
)

# One node of one pipeline run: executed (with attempts) or taken from the cache.
step_runs = Table(
    "mw_step_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline_run_id", String(32), ForeignKey("mw_pipeline_runs.id"), nullable=False),
    Column("node", String(200), nullable=False),
    Column("step", String(300), nullable=False),
    Column("run_id", String(32), ForeignKey("mw_runs.id"), nullable=True),
    Column("status", String(16), nullable=False),  # PENDING | RUNNING | FINISHED | FAILED | CACHED
    Column("cached", Boolean, nullable=False, server_default=false()),
    Column("cache_key", String(64), nullable=True),
    Column("output_sha256", String(64), nullable=True),
    Column("output_format", String(32), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_mw_step_runs_pipeline_run", "pipeline_run_id", "node"),
)

# A step's output by its cache key (code hash + input hashes + parameters).
step_cache = Table(
    "mw_step_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("step", String(300), nullable=False),
    Column("output_sha256", String(64), nullable=False),
    Column("output_format", String(32), nullable=False),
    Column("output_type", String(300), nullable=False),
    Column("step_run_id", Integer, ForeignKey("mw_step_runs.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
