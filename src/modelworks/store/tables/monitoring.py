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
    Text,
    UniqueConstraint,
    false,
)

from ._types import UTCDateTime, metadata

__all__ = ["alert_deliveries", "alerts", "canary_analyses", "monitor_runs", "monitoring_plans",
           "reference_profiles", "retrain_runs", "schedules", "training_specs", "workers"]

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

# A model's monitoring plan: its alert rules and sinks (YAML kept verbatim), versioned.
monitoring_plans = Table(
    "mw_monitoring_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("source_text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("model_id", "version"),
)

# Every alert a rule raised (status firing) or held back by dedupe/cool-down (suppressed).
alerts = Table(
    "mw_alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("monitor_run_id", String(32), ForeignKey("mw_monitor_runs.id"), nullable=True),
    Column("rule", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("metric", String(300), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("status", String(16), nullable=False),  # firing | suppressed
    Column("dedupe_key", String(300), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_alerts_version", "model_version_id", "created_at"),
    Index("ix_mw_alerts_dedupe", "dedupe_key", "created_at"),
)

# Delivery of an alert to one sink (log, file, webhook): attempts and the last error.
alert_deliveries = Table(
    "mw_alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(32), ForeignKey("mw_alerts.id"), nullable=False),
    Column("sink", String(64), nullable=False),
    Column("target", String(500), nullable=True),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_mw_alert_deliveries_alert", "alert_id"),
)

# Work the worker runs on a clock: monitor runs, retraining, pipelines (every N s or cron).
schedules = Table(
    "mw_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # monitor | retrain | pipeline
    Column("target", String(500), nullable=False),
    Column("every_seconds", Float, nullable=True),
    Column("cron", String(100), nullable=True),
    Column("options", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=false()),
    Column("next_run_at", UTCDateTime, nullable=False),
    Column("last_run_at", UTCDateTime, nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("lease_owner", String(256), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_schedules_due", "enabled", "next_run_at"),
)

# How a model is retrained: its entrypoint (module:function), data source, rollout target.
training_specs = Table(
    "mw_training_specs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), nullable=False,
           unique=True),
    Column("entrypoint", String(300), nullable=False),
    Column("data", JSON, nullable=False),  # {"dataset": NAME} | {"prediction_log": {...}}
    Column("label", String(200), nullable=True),
    Column("params", JSON, nullable=False),
    Column("endpoint", String(128), nullable=True),  # where a candidate goes as a canary
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

# One retraining: what triggered it, the steps it went through, the candidate it made.
retrain_runs = Table(
    "mw_retrain_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), nullable=False),
    Column("trigger", String(32), nullable=False),  # alert | schedule | manual
    Column("trigger_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("candidate_version", Integer, nullable=True),
    Column("steps", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("actor", String(256), nullable=False),
    Index("ix_mw_retrain_runs_model", "model_id", "started_at"),
)

# A comparison of a canary (or shadow) with the main version on an endpoint, and its verdict.
canary_analyses = Table(
    "mw_canary_analyses",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment_id", Integer, ForeignKey("mw_deployments.id"), nullable=False),
    Column("baseline", String(300), nullable=False),
    Column("candidate", String(300), nullable=False),
    Column("window_start", UTCDateTime, nullable=True),
    Column("window_end", UTCDateTime, nullable=False),
    Column("verdict", String(16), nullable=False),  # pass | fail | inconclusive
    Column("action", String(32), nullable=False),  # none | rolled_back
    Column("evidence", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_canary_analyses_deployment", "deployment_id", "created_at"),
)

# Workers alive: identity, host and pid, last heartbeat (what `worker` is doing now).
workers = Table(
    "mw_workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("identity", String(256), nullable=False),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # running | stopped
)
