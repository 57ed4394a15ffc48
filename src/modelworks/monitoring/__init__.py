"""Monitoring: drift between a reference and current data (more to come: quality,
performance, alerts, retraining triggers)."""

from __future__ import annotations

from .drift import ColumnDrift, DriftDetector, DriftResult, ReferenceProfile

__all__ = ["ColumnDrift", "DriftDetector", "DriftResult", "ReferenceProfile"]
