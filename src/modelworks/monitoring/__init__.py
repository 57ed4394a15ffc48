"""Monitoring: drift, data quality, performance and segments of served predictions against
a reference; alerts, reports, retraining, canary analysis and the worker build on it.

The records most users touch are exported here; the services are in their modules
(``monitor``, ``alerts``, ``report``, ``retraining``, ``schedules``, ``worker``,
``canary_analysis``). Everything is imported on first use, so that importing a light module
of this package (``retrain_runs``, which every deployment change consults) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .drift import ColumnDrift, DriftDetector, DriftResult, ReferenceProfile
    from .performance import PerformanceAccumulator, PerformanceResult
    from .quality import QualityCheck, QualityResult
    from .segments import SegmentResult

__all__ = ["ColumnDrift", "DriftDetector", "DriftResult", "PerformanceAccumulator",
           "PerformanceResult", "QualityCheck", "QualityResult", "ReferenceProfile",
           "SegmentResult"]

_HOMES = {"ColumnDrift": "drift", "DriftDetector": "drift", "DriftResult": "drift",
          "ReferenceProfile": "drift", "PerformanceAccumulator": "performance",
          "PerformanceResult": "performance", "QualityCheck": "quality",
          "QualityResult": "quality", "SegmentResult": "segments"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
