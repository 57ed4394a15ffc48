"""Table definitions, one module per area; all share one MetaData with the ``mw_`` prefix."""

from __future__ import annotations

from ._types import UTCDateTime, metadata, utcnow
from .audit import audit_events, audit_head
from .data import dataset_versions, datasets
from .governance import (
    approvals,
    dataset_column_tags,
    model_card_fields,
    pii_findings,
    policies,
    policy_evaluations,
    validation_reports,
)
from .lineage import lineage_edges
from .monitoring import (
    alert_deliveries,
    alerts,
    canary_analyses,
    monitor_runs,
    monitoring_plans,
    reference_profiles,
    retrain_runs,
    schedules,
    training_specs,
    workers,
)
from .pipelines import pipeline_runs, step_cache, step_runs
from .registry import (
    alias_history,
    model_aliases,
    model_tags,
    model_versions,
    registered_models,
)
from .serving import deployment_history, deployments, feedback, prediction_files
from .tracking import experiments, latest_metrics, metrics, params, run_artifacts, runs, tags
from .workspace import role_bindings, workspace_info

__all__ = [
    "UTCDateTime",
    "alert_deliveries",
    "alerts",
    "alias_history",
    "approvals",
    "audit_events",
    "audit_head",
    "canary_analyses",
    "dataset_column_tags",
    "dataset_versions",
    "datasets",
    "deployment_history",
    "deployments",
    "experiments",
    "feedback",
    "latest_metrics",
    "lineage_edges",
    "metadata",
    "metrics",
    "model_aliases",
    "model_card_fields",
    "model_tags",
    "model_versions",
    "monitor_runs",
    "monitoring_plans",
    "params",
    "pii_findings",
    "pipeline_runs",
    "policies",
    "policy_evaluations",
    "prediction_files",
    "reference_profiles",
    "registered_models",
    "retrain_runs",
    "role_bindings",
    "run_artifacts",
    "runs",
    "schedules",
    "step_cache",
    "step_runs",
    "tags",
    "training_specs",
    "utcnow",
    "validation_reports",
    "workers",
    "workspace_info",
]
