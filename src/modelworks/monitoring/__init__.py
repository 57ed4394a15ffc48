"""Monitoring: drift, data quality, performance and segments of served predictions against
a reference; alerts, reports, retraining, canary analysis and the worker build on it.

The records most users touch are exported here; the services are in their modules
(``monitor``, ``alerts``, ``report``, ``retraining``, ``schedules``, ``worker``,
``canary_analysis``), imported lazily so that importing this package stays cheap.
"""

from __future__ import annotations

from .drift import ColumnDrift, DriftDetector, DriftResult, ReferenceProfile
from .performance import PerformanceAccumulator, PerformanceResult
from .quality import QualityCheck, QualityResult
from .segments import SegmentResult

__all__ = ["ColumnDrift", "DriftDetector", "DriftResult", "PerformanceAccumulator",
           "PerformanceResult", "QualityCheck", "QualityResult", "ReferenceProfile",
           "SegmentResult"]
