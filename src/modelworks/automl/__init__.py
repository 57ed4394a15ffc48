"""AutoML: an Optuna search over model families, cross-validated, within a time budget.

``ws.automl(train_df, label=...)`` is the entry point (see docs/automl.md); the search runs
on an executor (``local``, ``processes``, ``ray``), keeps its study in the metadata database,
tracks every trial as a child run, and registers the refitted winner.
"""

from __future__ import annotations

from .leaderboard import COLUMNS as LEADERBOARD_COLUMNS
from .metrics import METRICS, TASKS, Metric, default_metric, infer_task
from .search import AutoMLResult, automl, read_training_data
from .space import FAMILIES, available_families

__all__ = [
    "FAMILIES",
    "LEADERBOARD_COLUMNS",
    "METRICS",
    "TASKS",
    "AutoMLResult",
    "Metric",
    "automl",
    "available_families",
    "default_metric",
    "infer_task",
    "read_training_data",
]
