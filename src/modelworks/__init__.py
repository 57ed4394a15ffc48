"""modelworks: track, validate, govern, deploy, monitor and retrain models in one package."""

from __future__ import annotations

from .errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelworksError,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    StoreUnavailable,
)
from .pipelines import PipelineFailed, PipelineRun, pipeline, step
from .records import DatasetVersion, Experiment, MetricPoint, RunRecord
from .tracking.active_run import ActiveRun
from .workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Conflict",
    "DatasetVersion",
    "Experiment",
    "IntegrityError",
    "InvalidInput",
    "MetricPoint",
    "ModelworksError",
    "NotFound",
    "PermissionDenied",
    "PipelineFailed",
    "PipelineRun",
    "PolicyViolation",
    "RunRecord",
    "StoreUnavailable",
    "Workspace",
    "__version__",
    "pipeline",
    "step",
]
