"""The end-to-end demo: a synthetic claims table and the scenario that tracks models on it."""

from __future__ import annotations

from .claims_data import (
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    SENSITIVE_COLUMNS,
    generate_claims,
)
from .scenario import EXPERIMENT, QuickstartSummary, run_quickstart

__all__ = [
    "EXPERIMENT",
    "FEATURE_COLUMNS",
    "LABEL_COLUMN",
    "SENSITIVE_COLUMNS",
    "QuickstartSummary",
    "generate_claims",
    "run_quickstart",
]
